/**
 * sketchgpu in Node: `SketchGPU` (load weights, embed sketches and photos, index, search, explain) on a dawn.node
 * device, then the lower-level engine it is built on. `import { SketchGPU } from 'sketchgpu'`.
 *
 * @example
 * ```ts
 * import { SketchGPU } from 'sketchgpu';
 * const m = await SketchGPU.load();
 * await m.index('photos/');
 * console.log(await m.search('sketch.png', { k: 5 }));
 * await m.dispose();
 * ```
 * @module sketchgpu
 */
// The library's public API in Node: all of src/browser.ts, plus what reads files or runs Dawn.
export * from './browser.ts';
// The embedding API in Node (these names shadow the browser ones of the same name above).
export { SketchGPU, bundledWeights, BUNDLED_WEIGHTS, type NodeImage } from './api/node.ts';
export { nodeGpu } from './graph/node-gpu.ts';
export { loadWeights, convertCheckpoint, loadCaanWeights, loadModelWeights, nodeWeightsHash as weightsHash } from './models/load-file.ts';
export { loadClipTokenizer } from './text/clip-vocab-node.ts';
export { loadImageFile } from './io/image-file.ts';
export { buildIndex, type BuildIndexOptions, type BuildIndexResult } from './retrieval/indexer.ts';
export {
  runQuery, runTextQuery, type QueryOptions, type QueryRun, type QueryResult, type QueryHit, type TextQueryOptions, type TextQueryRun, type TextQueryResult,
} from './retrieval/query.ts';
export { runEval, listDataset, EVAL_MODES, type EvalMode, type EvalResult, type ClassMetrics } from './retrieval/eval.ts';
export {
  openStore, parseStoreSpec, buildLanceIndex, exportToLance, shardOf, parseShard,
  type GalleryStore, type StoreSpec, type BuildLanceOptions, type BuildLanceResult,
} from './retrieval/store/store.ts';
export type { AnnSource } from './retrieval/query.ts';
export type { EvalOptions } from './retrieval/eval.ts';
export {
  SearchService, MAX_TEXT_CHARS, type ServiceOptions, type ServiceQuery, type ServiceResult, type ServiceHit, type ServiceEvent,
} from './server/service.ts';
export {
  startSearchServer, searchHandler, DEFAULT_MAX_BODY, type SearchHandlerOptions, type StartOptions, type RunningServer, type RequestLog,
} from './server/http.ts';
export { parseSearchRequest, parseExplainRequest } from './server/requests.ts';
