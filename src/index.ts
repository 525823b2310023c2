// The library's public API (Node entry).
export { SketchError, isSketchError, type ErrorCode } from './errors.ts';
export { createGpuContext, type GpuContext, type GpuOptions } from './gpu/device.ts';
export { nodeGpu } from './gpu/node.ts';
export { ZseModel, type ZseModelOptions } from './models/zse/model.ts';
export type { Precision } from './graph/graph.ts';
export { probeSubgroupMatrixGemm, type SmatCheck } from './graph/smat.ts';
export { type ZseConfig, ZSE_VIT_B16 } from './models/zse/config.ts';
export { loadWeights, convertCheckpoint, parseWeights, loadCaanWeights, loadModelWeights, type LoadedModelWeights } from './io/weights.ts';
export { detectModelKind, type ModelKind } from './models/kind.ts';
export { CaanModel, type CaanModelOptions, type CaanEncodeResult, type CaanTextResult, type ImageSide } from './models/caan/model.ts';
export { type CaanConfig, CAAN_FULL, parseCaanConfig } from './models/caan/config.ts';
export { parseCaanWeights, caanTensorShapes, type LoadedCaanWeights } from './models/caan/weights.ts';
export { ClipTokenizer } from './text/clip-tokenizer.ts';
export { loadClipTokenizer } from './text/clip-vocab-node.ts';
export { decodeImage } from './io/image.ts';
export { loadImageFile } from './io/image-file.ts';
export { preprocessPhoto, preprocessSketch } from './preprocess/index.ts';
export { readNpy, writeNpy } from './io/npy.ts';
export { readSafetensors, writeSafetensors } from './io/safetensors.ts';
export { weightsHash } from './io/weights.ts';
export { GallerySearch, type SearchHit } from './retrieval/search.ts';
export { evaluateScores, perQueryMetrics, rankRow, vocAp, precisionAt, type Metrics, type PerQueryMetrics } from './retrieval/metrics.ts';
export {
  parseIndex, serializeIndex, checkIndexModel, identityDim, INDEX_FORMAT, type GalleryIndex, type ModelIdentity,
} from './retrieval/index-format.ts';
export {
  asRetrievalModel, ZseRetrieval, CaanRetrieval, composeQueries, classPrompt, CLASS_PROMPT_TEMPLATE, type RetrievalModel, type AnyModel, type RelationSide,
} from './retrieval/model.ts';
export { buildIndex, type BuildIndexOptions, type BuildIndexResult } from './retrieval/indexer.ts';
export {
  runQuery, runTextQuery, type QueryOptions, type QueryRun, type QueryResult, type QueryHit, type TextQueryOptions, type TextQueryRun, type TextQueryResult,
} from './retrieval/query.ts';
export { runEval, listDataset, EVAL_MODES, type EvalMode, type EvalResult, type ClassMetrics } from './retrieval/eval.ts';
export { explainPair, strongestLinks, patchHeat, bestMatches, type PairExplanation } from './explain/correspondence.ts';
export { renderExplanation, type Rgba, type ExplainViews } from './explain/render.ts';
