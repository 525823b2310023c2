/**
 * The public values and types of the embedding API (src/api/core.ts's `SketchGPUModel` takes and returns them):
 * images and model inputs, options, results. Browser-safe: no `node:` import here.
 */
import { SketchError } from '../core/errors.ts';
import type { GpuFeatures } from '../gpu/device.ts';
import type { Precision } from '../graph/graph.ts';
import type { ModelKind } from '../models/load.ts';
import type { ZseConfig } from '../models/zse/config.ts';
import type { CaanConfig } from '../models/caan/config.ts';
import { checkInputRange } from '../preprocess/index.ts';

/**
 * A row-major float matrix with its shape: `data` the flat `Float32Array`, `rows` the same numbers as nested arrays
 * (also what `JSON.stringify` writes). The base of `Embeddings` and `Scores`.
 *
 * @example
 * ```ts
 * const e = await m.embedSketch('s.png');
 * JSON.stringify(e);   // {"shape":[1,384],"rows":[[...]]}
 * ```
 */
export class RowMatrix {
  constructor(readonly data: Float32Array, readonly shape: readonly [number, number]) {}
  /** The matrix as `number[][]`, one array per row. */
  get rows(): number[][] {
    const [n, d] = this.shape;
    return Array.from({ length: n }, (_, i) => Array.from(this.data.subarray(i * d, (i + 1) * d)));
  }
  /** `{ shape, rows }`: what `JSON.stringify` writes. */
  toJSON(): { shape: [number, number]; rows: number[][] } {
    return { shape: [this.shape[0], this.shape[1]], rows: this.rows };
  }
}
/**
 * Raw pixels: RGBA, 8 bits per channel, row-major, `width * height * 4` bytes (a canvas's `ImageData` is one).
 *
 * @example
 * ```ts
 * const white: RawImage = { data: new Uint8Array(64 * 64 * 4).fill(255), width: 64, height: 64 };
 * const e = await m.embedSketch(white);
 * ```
 */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/**
 * Weights: a path or URL (Node: a file path or `file:` URL; browser: a URL to fetch), or the file's bytes.
 *
 * @example
 * ```ts
 * await SketchGPU.load({ weights: 'my-zse.safetensors' });
 * await SketchGPU.load({ weights: await (await fetch(url)).arrayBuffer() });
 * ```
 */
export type WeightsSource = string | URL | Uint8Array | ArrayBuffer;
/**
 * The CLIP vocabulary (`bpe_simple_vocab_16e6.txt.gz`, for CAAN's text tower): a path or URL, or its bytes.
 *
 * @example
 * ```ts
 * await SketchGPU.load({ weights: caanUrl, vocab: '/clip/bpe_simple_vocab_16e6.txt.gz' });
 * ```
 */
export type VocabSource = string | URL | Uint8Array | ArrayBuffer;

/**
 * Options of `SketchGPU.load`.
 *
 * @example
 * ```ts
 * const m = await SketchGPU.load({ weights: 'weights/caan-sketchy104-demo.safetensors', precision: 'f16' });
 * ```
 */
export interface LoadOptions {
  /** The weights (default: the bundled ZSE-SBIR weights, `sketchgpu/weights/zse-sketchy104-small.safetensors`). */
  weights?: WeightsSource;
  /** The model the weights must hold (default: detected from the file). */
  model?: 'zse' | 'caan';
  /** 'f16' rounds GEMM operands to binary16 and stores Linear weights so (about half the GPU memory); default 'f32'. */
  precision?: Precision;
  /** Node: pick the adapter whose name contains this (also `SKETCHGPU_ADAPTER`). */
  adapter?: string;
  /**
   * Head counts for ZSE-SBIR weights whose file does not record them (a `.pth` checkpoint; default 12 SA, 8 CA heads),
   * as the CLI's `--sa-heads` / `--ca-heads`.
   */
  heads?: { sa?: number; ca?: number };
  /** CAAN's CLIP vocabulary (Node default: `SKETCHGPU_CLIP_VOCAB` or `../shared/data/clip/`; browser: required for text). */
  vocab?: VocabSource;
  /**
   * Receives warnings: a sketch whose ink is in its alpha channel (which the reference ignores); with CAAN weights
   * that store a compact token table, a text whose words occur in no training text (their token embedding is zero,
   * one warning per call naming them). Default: `console.warn('sketchgpu: ' + message)`.
   */
  onWarning?: (message: string) => void;
  /**
   * Browser: called as the weights download (or are read from given bytes) with the bytes so far and the total (0
   * when the server sends no length); once more at the end with both equal to the file's size. Node reads the file
   * at once and does not call it.
   *
   * @example
   * ```ts
   * await SketchGPU.load({ weights: url, onWeightsProgress: (got, total) => (bar.value = total ? got / total : 0) });
   * ```
   */
  onWeightsProgress?: (loaded: number, total: number) => void;
}

/**
 * Row-major embeddings with their shape `[n, dim]`: `data` is the flat `Float32Array`, `rows` the same numbers as
 * plain nested arrays (also what `JSON.stringify` writes).
 *
 * @example
 * ```ts
 * const e = await m.embedPhoto(['a.jpg', 'b.jpg']);
 * e.shape;        // [2, 384]
 * e.rows[1][0];   // first value of b.jpg's embedding
 * ```
 */
export class Embeddings extends RowMatrix {
  constructor(data: Float32Array, shape: readonly [number, number],
    /**
     * `[n, T, dim]` per-image tokens, when asked for (`{ tokens: true }`): ZSE-SBIR's SA output tokens, CAAN's
     * projected tokens; the input of the relation network. Not part of `toJSON`.
     */
    readonly tokens?: Float32Array) {
    super(data, shape);
  }
}

/**
 * A photo to index with the id it is known by in results (default: its path or URL, else `photo-<n>`).
 *
 * @example
 * ```ts
 * await m.index([{ id: 'cat-1', image: bytes }, { id: 'cat-2', image: 'photos/cat2.jpg' }]);
 * ```
 */
export interface NamedPhoto<I> {
  id: string;
  image: I;
}

/**
 * Options of `index`.
 *
 * @example
 * ```ts
 * await m.index(photos, { onProgress: (done, total) => console.log(`${done}/${total}`) });
 * ```
 */
export interface IndexOptions {
  /** Called after each batch with the photos done (embedded or skipped), the total, and how many of them were skipped. */
  onProgress?: (done: number, total: number, skipped: number) => void;
  /** Images per GPU forward (default 8). */
  batch?: number;
  /** Stops between batches with the signal's reason (and before the new index replaces the old one). */
  signal?: AbortSignal;
  /**
   * Embeddings by photo id, read and filled: photos found here are not embedded again, and each photo embedded is
   * added. Pass the same map to a second `index` (e.g. on a model loaded again after a lost device) to go on where an
   * interrupted one stopped. Only embeddings of the same weights belong in it.
   *
   * @example
   * ```ts
   * const embedded = new Map<string, Float32Array>();
   * try { await m.index(photos, { embedded }); } catch { await m2.index(photos, { embedded }); }
   * ```
   */
  embedded?: Map<string, Float32Array>;
}

/**
 * What `index` did: how many photos are searchable, and the ones skipped as unreadable with the reason.
 *
 * @example
 * ```ts
 * const r = await m.index('photos/');
 * if (r.skipped.length) console.warn(r.skipped);
 * ```
 */
export interface IndexSummary {
  photos: number;
  skipped: { id: string; reason: string }[];
  ms: number;
}

/**
 * A text query (CAAN), or a sketch composed with a text: normalise((1 - textWeight)·sketch + textWeight·text).
 *
 * @example
 * ```ts
 * await m.search({ text: 'a giraffe' });
 * await m.search({ sketch: 'giraffe.png', text: 'a giraffe', textWeight: 0.3 });
 * ```
 */
export interface TextQuery<I> {
  text: string;
  sketch?: I | ModelInput;
  /** Weight of the text in a composed query, in [0, 1] (default 0.5). */
  textWeight?: number;
}

/**
 * Options of `search`.
 *
 * @example
 * ```ts
 * const hits = await m.search('sketch.png', { k: 5, rerank: true, rerankK: 50 });
 * ```
 */
export interface SearchOptions {
  /** Results (default 10, at most 1024). */
  k?: number;
  /** Re-rank the cosine top `rerankK` with the relation network (sketch queries) or the text-photo score (CAAN text). */
  rerank?: boolean;
  /** The shortlist size of the re-rank (default 100). */
  rerankK?: number;
}

/**
 * One search result. `score` ranks: the relation score after a re-rank, else the cosine.
 *
 * @example
 * ```ts
 * for (const h of await m.search('sketch.png')) console.log(h.rank, h.id, h.score.toFixed(3));
 * ```
 */
export interface Hit {
  rank: number;
  /** The photo's id (its path relative to the indexed folder, its URL, or the id given). */
  id: string;
  /** The photo's row in the index (ids sorted). */
  row: number;
  score: number;
  cosine: number;
  /** The relation score (re-ranked searches only). */
  rn?: number;
}

/**
 * Why a sketch matches a photo (ZSE-SBIR with its cross-attention head): the relation-network score, the SA cosine,
 * the strongest patch correspondences and the pictures (`RawImage`s; `views.sheet` has them all).
 *
 * @example
 * ```ts
 * const e = await m.explain('sketch.png', 'photo.jpg');
 * console.log(e.rn, e.links[0]);   // { sketchPatch: [3, 4], photoPatch: [2, 5], weight: 0.21 }
 * ```
 */
export interface Explanation {
  rn: number;
  cosine: number;
  /** Patch grid side: the model input is grid x grid patches. */
  grid: number;
  imageSize: number;
  /** Sketch patch -> its most attended photo patch, as [row, col], strongest first. */
  links: { sketchPatch: [number, number]; photoPatch: [number, number]; weight: number }[];
  /** The anchor cosine matrix the relation network reads, [A, A] with A = anchorGrid². */
  anchors: { shape: [number, number]; data: Float32Array };
  views: {
    sheet: RawImage; links: RawImage; heatSketch: RawImage; heatPhoto: RawImage;
    sketchFromPhoto: RawImage; photoFromSketch: RawImage; anchors: RawImage;
  };
}

/**
 * What a loaded model is.
 *
 * @example
 * ```ts
 * if (m.info.hasText) await m.search({ text: 'a cow' });
 * ```
 */
export interface ModelInfo {
  model: ModelKind;
  /** Embedding width. */
  dim: number;
  /** Model input side in pixels. */
  imageSize: number;
  /** Whether the weights hold the relation head (re-rank, explain). */
  hasRelation: boolean;
  /** Whether the model has a text tower (CAAN). */
  hasText: boolean;
  /** The GPU adapter in use. */
  adapter: string;
  /** The SHA-256 of the weights' tensors (an index records it). */
  weightsSha256: string;
  /** The weights file (or 'bytes'). */
  weights: string;
  /** The model's name for people: 'ZSE-SBIR' or 'CAAN'. */
  label: string;
  /** The text tower's context in tokens, start and end tokens included (CAAN: 77); null without a text tower. */
  textContext: number | null;
  /** The architecture read from the weights (widths, depths, input size; ZSE-SBIR's `hasHead`). */
  config: ZseConfig | CaanConfig;
  /** The optional GPU features the device has and the kernels use (shader-f16, subgroups, subgroup matrices, timestamps). */
  features: GpuFeatures;
}


/**
 * What the model calls take as an image: one of the platform (`I`: Node's `NodeImage`, the browser's `BrowserImage`)
 * or a `ModelInput` (already preprocessed).
 *
 * @example
 * ```ts
 * const inputs: ImageInput<NodeImage>[] = ['cat.png', await m.modelInput('dog.png', 'sketch')];
 * const e = await m.embedSketch(inputs);
 * ```
 */
export type ImageInput<I> = I | ModelInput;

/**
 * Options of `embedSketch` / `embedPhoto`.
 *
 * @example
 * ```ts
 * const e = await m.embedPhoto('a.jpg', { tokens: true });
 * e.tokens;   // Float32Array [1, T, dim]
 * ```
 */
export interface EmbedOptions {
  /** Also return each image's tokens (`Embeddings.tokens`), e.g. for the lower-level relation calls. */
  tokens?: boolean;
}

/**
 * Options of `score`.
 *
 * @example
 * ```ts
 * await m.score('s.png', ['a.jpg', 'b.jpg'], { relation: true });
 * ```
 */
export interface ScoreOptions {
  /** Score with the relation network instead of the cosine of the global embeddings (default false). */
  relation?: boolean;
}

/**
 * A `[sketches, photos]` score matrix, row-major: `data` the flat `Float32Array`, `rows` the same numbers as nested
 * arrays (also what `JSON.stringify` writes). Higher is more similar.
 *
 * @example
 * ```ts
 * const s = await m.score(['s1.png', 's2.png'], ['a.jpg', 'b.jpg']);
 * s.rows[1][0];   // sketch 2 against photo a
 * ```
 */
export class Scores extends RowMatrix {}

/**
 * Why a device was lost: WebGPU's reason ('destroyed' or 'unknown') and message, and the adapter.
 *
 * @example
 * ```ts
 * const loss = await m.deviceLost;
 * console.warn(`${loss.adapter}: ${loss.reason} ${loss.message}`);
 * ```
 */
export interface DeviceLoss {
  reason: string;
  message: string;
  adapter: string;
}

/**
 * Images as the model sees them: `[n, 3, size, size]` floats in [-1, 1], channel-major, of one modality. Made by
 * `modelInput` (one image) or `ModelInput.fromTensor` (preprocessed elsewhere: n >= 1 images, e.g. the `.npy` that
 * `sketchgpu preprocess` writes); it stands for the n images it holds wherever the model calls take images.
 *
 * @example
 * ```ts
 * const x = await m.modelInput('sketch.png', 'sketch');
 * console.log(x.size, x.count, x.data.length);   // 224, 1, 150528
 * ```
 */
export class ModelInput {
  /** @internal Use `modelInput` or `ModelInput.fromTensor`. */
  constructor(
    /** `[n, 3, size, size]` values in [-1, 1]. */
    readonly data: Float32Array,
    readonly modality: 'sketch' | 'photo',
    /** The model's input side in pixels. */
    readonly size: number,
  ) {}

  /**
   * Model inputs preprocessed elsewhere, checked: a Float32Array of n x 3 x size x size values (n >= 1), every one
   * finite and within [-1, 1] (the reference's normalisation). `name` names them in errors.
   *
   * @example
   * ```ts
   * const x = ModelInput.fromTensor(npy.data, 'sketch', m.info.imageSize, 'sketches.npy');
   * const e = await m.embedSketch(x);   // a row per image of the tensor
   * ```
   */
  static fromTensor(tensor: Float32Array, modality: 'sketch' | 'photo', size: number, name = `the ${modality} tensor`): ModelInput {
    const px = 3 * size * size;
    if (modality !== 'sketch' && modality !== 'photo') throw new SketchError('BAD_ARGUMENT', `modality must be "sketch" or "photo", not ${JSON.stringify(modality)}`, 'Pass \'sketch\' or \'photo\'.');
    if (!Number.isInteger(size) || size < 1) throw new SketchError('BAD_ARGUMENT', `size must be a positive integer, not ${size}`, 'Pass the model\'s info.imageSize.');
    if (!(tensor instanceof Float32Array) || tensor.length === 0 || tensor.length % px !== 0) {
      throw new SketchError('BAD_ARGUMENT', `${name}: a preprocessed tensor must be a Float32Array of n x 3x${size}x${size} values; got ${tensor instanceof Float32Array ? `${tensor.length} values` : Object.prototype.toString.call(tensor)}`,
        `Preprocess images with modelInput() (or \`sketchgpu preprocess --size ${size}\`), or pass the images themselves.`);
    }
    checkInputRange(tensor, name, px);
    return new ModelInput(tensor, modality, size);
  }

  /** How many images it holds. */
  get count(): number {
    return this.data.length / (3 * this.size * this.size);
  }

  /** Image `i` (default the first) as RGBA pixels: what the model sees, as a picture. */
  toImage(i = 0): RawImage {
    const S = this.size, n = S * S, x = this.data.subarray(3 * n * i, 3 * n * (i + 1));
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new SketchError('BAD_ARGUMENT', `image ${i} of ${this.count}`, `Pass 0 to ${this.count - 1}.`);
    const data = new Uint8ClampedArray(4 * n);
    for (let p = 0; p < n; p++) {
      for (let ch = 0; ch < 3; ch++) data[4 * p + ch] = Math.round((x[ch * n + p]! * 0.5 + 0.5) * 255);
      data[4 * p + 3] = 255;
    }
    return { data, width: S, height: S };
  }
}

/**
 * Options of `loadIndex`.
 *
 * @example
 * ```ts
 * await m.loadIndex(bytes, 'cached index', { photos: [{ id: 'cat/1.jpg', image: 'photos/cat/1.jpg' }] });
 * ```
 */
export interface LoadIndexOptions<I> {
  /** Where the index's photos are (by id), for a re-rank of an index without a token cache. */
  photos?: NamedPhoto<I>[];
}
