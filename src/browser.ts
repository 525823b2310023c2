/**
 * sketchgpu in the browser: the same `SketchGPU` calls as in Node on `navigator.gpu`, then the lower-level engine.
 * `import { SketchGPU } from 'sketchgpu/browser'` (a bundler picks it for `'sketchgpu'` too, by the `browser`
 * condition).
 *
 * @example
 * ```ts
 * import { SketchGPU } from 'sketchgpu/browser';
 * const m = await SketchGPU.load();
 * await m.index(['photos/cat.jpg', 'photos/dog.jpg']);
 * console.log(await m.search(canvas, { k: 5 }));
 * ```
 * @module sketchgpu/browser
 */
// The library's public API, listed once: everything here runs in the browser and in Node (src/index.ts re-exports
// it and adds what needs files). `SketchGPU` (src/api) is the embedding API: the same calls on both platforms; the
// names after it are the lower-level engine it is built on. What touches the file system in Node has a bytes-in counterpart here:
// `parseWeights` for `loadWeights`, `indexPhotos` for `sketchgpu index`, `imageFromRgba` for canvas pixels.
export { SketchGPU, bundledWeights, BUNDLED_WEIGHTS, checkImage, type BrowserImage } from './api/browser.ts';
export {
  SketchGPUModel, Embeddings, type RawImage, type LoadOptions, type WeightsSource, type VocabSource, type NamedPhoto, type IndexOptions, type IndexSummary,
  type TextQuery, type SearchOptions, type Hit, type Explanation, type ModelInfo,
  ModelInput, type DeviceLoss, type LoadIndexOptions,
} from './api/core.ts';
export { Scores, RowMatrix, type ImageInput, type EmbedOptions, type ScoreOptions } from './api/core.ts';
export { SketchError, isSketchError, type ErrorCode } from './core/errors.ts';
export { createGpuContext, describeAdapter, type GpuContext, type GpuOptions, type GpuFeatures } from './gpu/device.ts';
export { browserGpu } from './gpu/browser.ts';
export { ZseModel, type ZseModelOptions, type EncodeResult } from './models/zse/model.ts';
export type { Precision } from './graph/graph.ts';
export { probeSubgroupMatrixGemm, type SmatCheck } from './graph/smat.ts';
export { type ZseConfig, ZSE_VIT_B16 } from './models/zse/config.ts';
export { CaanModel, type CaanModelOptions, type CaanEncodeResult, type CaanTextResult, type ImageSide } from './models/caan/model.ts';
export { type CaanConfig, CAAN_FULL, parseCaanConfig } from './models/caan/config.ts';
export { parseCaanWeights, caanTensorShapes, type LoadedCaanWeights } from './models/caan/weights.ts';
export { ClipTokenizer, CLIP_CONTEXT_LENGTH } from './text/clip-tokenizer.ts';
export { detectModelKind, MODEL_LABEL, parseModelWeights, type ModelKind, type LoadedModelWeights } from './models/load.ts';
export { parseWeights, type LoadedWeights, type WeightsOptions } from './models/zse/weights.ts';
export { weightsHash } from './io/weights-hash.ts';
export { decodeImage, type DecodedImage } from './io/image.ts';
export { preprocessPhoto, preprocessSketch } from './preprocess/index.ts';
export { readNpy, writeNpy } from './io/npy.ts';
export { readSafetensors, writeSafetensors } from './io/safetensors.ts';
export { GallerySearch, type SearchHit } from './retrieval/search.ts';
export { evaluateScores, perQueryMetrics, rankRow, vocAp, precisionAt, type Metrics, type PerQueryMetrics } from './retrieval/metrics.ts';
export {
  parseIndex, serializeIndex, checkIndexModel, identityDim, INDEX_FORMAT, type GalleryIndex, type ModelIdentity,
} from './retrieval/index-format.ts';
export {
  asRetrievalModel, ZseRetrieval, CaanRetrieval, composeQueries, classPrompt, CLASS_PROMPT_TEMPLATE, type RetrievalModel, type AnyModel, type RelationSide,
} from './retrieval/model.ts';
export { indexPhotos, modelIdentity, imageFromRgba, GALLERY_IMAGE_EXT, type PhotoSource, type IndexPhotosOptions } from './retrieval/index-photos.ts';
export { checkAdapterLimits, type LimitProblem } from './models/limits.ts';
export { explainPair, strongestLinks, patchHeat, bestMatches, type PairExplanation } from './explain/correspondence.ts';
export { renderExplanation, type Rgba, type ExplainViews } from './explain/render.ts';
