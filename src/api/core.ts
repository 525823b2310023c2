/**
 * The embedding API, platform-neutral: `SketchGPUModel` holds one model on one device and offers the six calls of
 * the public API (embedSketch, embedPhoto, index, search, explain, dispose). The Node entry (api/node.ts) and the
 * browser entry (api/browser.ts) subclass it with a `Platform` that knows how to open a device, read weights and
 * turn that platform's image values into decoded pixels; the arithmetic is the engine's own, shared by the CLI and
 * the page: `preprocessSketch` / `preprocessPhoto`, the `RetrievalModel` adapters, `indexPhotos`, `GallerySearch`
 * (cosine top-k on the GPU), the relation network and `explainPair` / `renderExplanation`.
 *
 * Browser-safe: no `node:` import here.
 */
import { SketchError, isSketchError } from '../core/errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { DecodedImage } from '../io/image.ts';
import { decodeImage } from '../io/image.ts';
import { checkAdapterLimits } from '../models/limits.ts';
import { MODEL_LABEL, type LoadedModelWeights, type ModelKind } from '../models/load.ts';
import { ZseModel } from '../models/zse/model.ts';
import { CaanModel } from '../models/caan/model.ts';
import { preprocessPhoto, preprocessSketch, sketchAlphaWarning } from '../preprocess/index.ts';
import { checkFiniteScores } from '../models/embedding-check.ts';
import { parseIndex, serializeIndex, checkIndexModel, isConfinedRelativePath, type GalleryIndex, type ModelIdentity } from '../retrieval/index-format.ts';
import { imageFromRgba, indexPhotos, type PhotoSource } from '../retrieval/index-photos.ts';
import { CaanRetrieval, ZseRetrieval, composeQueries, noTextTower, type RetrievalModel } from '../retrieval/model.ts';
import { GallerySearch } from '../retrieval/search.ts';
import { explainPair } from '../explain/correspondence.ts';
import { renderExplanation, type Rgba } from '../explain/render.ts';
import type { ClipTokenizer } from '../text/clip-tokenizer.ts';
import {
  Embeddings, ModelInput, Scores, type DeviceLoss, type Explanation, type Hit, type ImageInput, type IndexOptions, type IndexSummary, type LoadIndexOptions,
  type LoadOptions, type ModelInfo, type NamedPhoto, type RawImage, type ScoreOptions, type SearchOptions, type TextQuery, type VocabSource, type WeightsSource, type EmbedOptions,
} from './types.ts';

export * from './types.ts';

/**
 * What a platform gives the model: a device, the weights, images as decoded pixels. The public entry points are
 * `SketchGPU` of `sketchgpu` (Node) and of `sketchgpu/browser`.
 * @internal
 */
export interface Platform<I> {
  /**
   * A device and how to let it go: the browser's own device is destroyed; Node's is the one device per process
   * (`nodeGpu`, shared with every other model and the lower-level API), which stays.
   */
  gpu(o: { adapter?: string }): Promise<{ ctx: GpuContext; release(): void }>;
  /** The weights and their SHA-256 identity; `undefined` means the bundled ZSE-SBIR weights. */
  weights(source: WeightsSource | undefined, o: { model?: ModelKind; saHeads?: number; caHeads?: number; onProgress?: (loaded: number, total: number) => void }): Promise<{ loaded: LoadedModelWeights; sha256: string; name: string }>;
  /** An image value of this platform as decoded pixels; `name` for error messages. */
  image(input: I, what: string): Promise<DecodedImage>;
  /** The CLIP tokenizer for CAAN's text tower (read when the first text comes). */
  tokenizer(vocab: VocabSource | undefined): Promise<ClipTokenizer>;
  /** A photo list given as one value (Node: a folder or a list file); `null` when the platform has none. */
  photoList?(input: unknown): Promise<{ root: string; photos: { id: string; image: I }[] } | null>;
  /** The photos of an index file's folder, to re-read for a re-rank (Node); absent where photos cannot be found by path. */
  galleryFiles?(root: string, paths: string[]): { id: string; image: I }[];
  /** A name for an image value in results and errors (a path, a URL), or null. */
  nameOf(input: I): string | null;
  /** Where preprocessing warnings go (LoadOptions.onWarning); default console.warn with a `sketchgpu:` prefix. */
  warn?(message: string): void;
}

function isRaw(x: unknown): x is RawImage {
  return typeof x === 'object' && x !== null && 'data' in x && 'width' in x && 'height' in x
    && (x.data instanceof Uint8Array || x.data instanceof Uint8ClampedArray);
}

/** Bytes or raw pixels, on every platform; `null` for a platform-specific value. @internal */
export function commonImage(input: unknown, what: string): DecodedImage | null {
  if (input instanceof ArrayBuffer) return decodeImage(new Uint8Array(input), what);
  if (input instanceof Uint8Array) return decodeImage(input, what);
  if (isRaw(input)) {
    const { data, width, height } = input;
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) || data.length !== width * height * 4) {
      throw new SketchError('BAD_IMAGE', `${what}: raw pixels must be RGBA, width*height*4 bytes; got ${data.length} bytes for ${width}x${height}`,
        'Pass { data, width, height } with 4 bytes (R, G, B, A) per pixel, as a canvas\'s getImageData() gives.');
    }
    return imageFromRgba(data, width, height, what);
  }
  return null;
}

const toRaw = (r: Rgba): RawImage => ({ data: r.data, width: r.width, height: r.height });

/** CAAN's tokenizer of each model (kept beside the model for `textTokens`; read when the first text comes). */
const tokenizers = new WeakMap<RetrievalModel, () => Promise<ClipTokenizer>>();

interface Gallery<I> { index: GalleryIndex; search: GallerySearch; sources: Map<string, I> }

/**
 * One model on one device, with its photo index. Created by `SketchGPU.load` (Node: `import { SketchGPU } from
 * 'sketchgpu'`; browser: `from 'sketchgpu/browser'`), which are subclasses for each platform.
 *
 * Calls on one model run one at a time (GPU work is queued), so they may be issued concurrently.
 *
 * @example
 * ```ts
 * const m = await SketchGPU.load();
 * await m.index('photos/');
 * const hits = await m.search('sketch.png', { k: 5 });
 * m.dispose();
 * ```
 */
export class SketchGPUModel<I> {
  private gallery: Gallery<I> | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private disposed = false;

  /** @internal Use `SketchGPU.load`. */
  protected constructor(
    protected readonly platform: Platform<I>,
    /** The engine's retrieval view of the model (ZSE-SBIR or CAAN). Advanced use: the lower-level API. */
    readonly model: RetrievalModel,
    private readonly device: { ctx: GpuContext; release(): void },
    /** What the model is. */
    readonly info: ModelInfo,
    private readonly identity: ModelIdentity,
  ) {}

  /** @internal Opens the device, reads the weights and uploads them. */
  protected static async open<I>(platform: Platform<I>, o: LoadOptions = {}): Promise<{ model: RetrievalModel; device: { ctx: GpuContext; release(): void }; info: ModelInfo; identity: ModelIdentity; platform: Platform<I> }> {
    if (o.model !== undefined && o.model !== 'zse' && o.model !== 'caan') {
      throw new SketchError('BAD_ARGUMENT', `model must be "zse" or "caan", not ${JSON.stringify(o.model)}`, 'Leave it out to detect the model from the weights.');
    }
    if (o.precision !== undefined && o.precision !== 'f32' && o.precision !== 'f16') {
      throw new SketchError('BAD_ARGUMENT', `precision must be "f32" or "f16", not ${JSON.stringify(o.precision)}`, 'Leave it out for f32.');
    }
    if (o.onWarning !== undefined && typeof o.onWarning !== 'function') {
      throw new SketchError('BAD_ARGUMENT', 'onWarning must be a function', 'e.g. { onWarning: (m) => console.error(m) }.');
    }
    if (o.onWarning) platform = { ...platform, warn: o.onWarning };
    const { loaded, sha256, name } = await platform.weights(o.weights, {
      model: o.model === 'caan' ? 'caan' : o.model === 'zse' ? 'zse-sbir' : undefined, saHeads: o.heads?.sa, caHeads: o.heads?.ca, onProgress: o.onWeightsProgress,
    });
    const device = await platform.gpu({ adapter: o.adapter });
    const { ctx } = device;
    try {
      const problems = checkAdapterLimits(ctx.adapter.limits, loaded.weights.config);
      if (problems.length) {
        throw new SketchError('MISSING_FEATURE', `the GPU adapter ${ctx.adapterName} lacks what sketchgpu needs: ${problems.map((p) => `${p.limit} is ${p.has}, needs ${p.needed}`).join('; ')}`,
          'Use another GPU or browser, or update the GPU driver.');
      }
      const precision = o.precision ?? 'f32';
      let tokenizer: Promise<ClipTokenizer> | undefined;
      const model: RetrievalModel = loaded.kind === 'caan'
        ? new CaanRetrieval(CaanModel.create(ctx, loaded.weights.config, loaded.weights.tensors, { precision }), () => tokenizers.get(model)!(),
          { trainedTokens: loaded.weights.tokenIds, warn: (w) => (platform.warn ? platform.warn(w) : console.warn(`sketchgpu: ${w}`)) })
        : new ZseRetrieval(ZseModel.create(ctx, loaded.weights.config, loaded.weights.tensors, { precision }));
      const info: ModelInfo = {
        model: loaded.kind, dim: model.dim, imageSize: model.imageSize, hasRelation: model.hasRelation, hasText: model.textContext !== undefined,
        adapter: ctx.adapterName, weightsSha256: sha256, weights: name,
        label: MODEL_LABEL[loaded.kind], textContext: model.textContext ?? null, config: loaded.weights.config, features: { ...ctx.features },
      };
      if (loaded.kind === 'caan') tokenizers.set(model, () => (tokenizer ??= platform.tokenizer(o.vocab).catch((e) => {
        tokenizer = undefined; // a later text tries again
        throw e;
      })));
      return { model, device, info, identity: model.identity(sha256), platform };
    } catch (e) {
      device.release();
      throw e;
    }
  }

  /** Runs GPU work alone (an executor's buffers serve every run of a model). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new SketchError('BAD_ARGUMENT', 'this model was disposed', 'Load it again with SketchGPU.load().'));
    const p = this.chain.then(() => this.onDevice(fn));
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Runs GPU work; a failure that comes with (or after) a lost device is a DEVICE_LOST error. */
  private async onDevice<T>(fn: () => Promise<T>): Promise<T> {
    const { ctx } = this.device;
    const lost = (cause?: unknown) => new SketchError('DEVICE_LOST', `the GPU device (${ctx.adapterName}) was lost`,
      'Load the model again with SketchGPU.load() and reopen its index (loadIndex(old.saveIndex())); `deviceLost` says when.', { cause });
    if (ctx.isLost()) throw lost();
    try {
      return await fn();
    } catch (e) {
      // A lost device shows up as a failed buffer map or a validation error, before or after ctx.lost resolves.
      if (!ctx.isLost() && !(isSketchError(e) && e.code !== 'DEVICE_LOST')) await Promise.race([ctx.lost, new Promise((r) => setTimeout(r, 300))]);
      throw ctx.isLost() ? lost(e) : e;
    }
  }

  private async inputs(images: ImageInput<I> | ImageInput<I>[], modality: 'sketch' | 'photo'): Promise<{ data: Float32Array; n: number }> {
    const list = Array.isArray(images) ? images : [images];
    if (list.length === 0) throw new SketchError('BAD_ARGUMENT', `no ${modality} given`, `Pass one ${modality} image or an array of them.`);
    const S = this.model.imageSize, px = 3 * S * S;
    // A preprocessed tensor stands for as many images as it holds; anything else for one.
    const parts: Float32Array[] = [];
    for (let i = 0; i < list.length; i++) parts.push(await this.preprocess(list[i]!, modality, i, list.length));
    if (parts.length === 1) return { data: parts[0]!, n: parts[0]!.length / px };
    const data = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    return { data, n: data.length / px };
  }

  private async preprocess(input: ImageInput<I>, modality: 'sketch' | 'photo', i = 0, n = 1, name?: string): Promise<Float32Array> {
    if (input instanceof ModelInput) return this.checkInput(input, modality);
    const what = name ?? this.platform.nameOf(input) ?? (n > 1 ? `${modality} ${i + 1} of ${n}` : `the ${modality}`);
    const img = await this.platform.image(input, what);
    if (modality === 'sketch') {
      const w = sketchAlphaWarning(img);
      if (w) {
        if (this.platform.warn) this.platform.warn(w);
        else console.warn(`sketchgpu: ${w}`);
      }
      return preprocessSketch(img, this.model.imageSize);
    }
    return preprocessPhoto(img, this.model.imageSize);
  }

  /**
   * L2-normalised global embeddings of sketches (ZSE-SBIR's SA cls token; CAAN's sketch tower), `[n, dim]`, in input
   * order. Preprocessing is the reference's (ink crop, pad, resize), as `sketchgpu embed --modality sketch`. A
   * preprocessed tensor (`{ tensor }`) gives a row per image it holds; `{ tokens: true }` also returns the tokens.
   *
   * @example
   * ```ts
   * const e = await m.embedSketch(['cat.png', 'dog.png']);
   * console.log(e.shape, e.rows[0].slice(0, 4));
   * ```
   */
  embedSketch(images: ImageInput<I> | ImageInput<I>[], o: EmbedOptions = {}): Promise<Embeddings> {
    return this.embed(images, 'sketch', o);
  }

  /**
   * L2-normalised global embeddings of photos (ZSE-SBIR's SA cls token; CAAN's photo tower), `[n, dim]`.
   *
   * @example
   * ```ts
   * const e = await m.embedPhoto(bytes);   // PNG or JPEG bytes
   * ```
   */
  embedPhoto(images: ImageInput<I> | ImageInput<I>[], o: EmbedOptions = {}): Promise<Embeddings> {
    return this.embed(images, 'photo', o);
  }

  /**
   * Text embeddings `[n, dim]` in the photos' space (CAAN's text tower; ZSE-SBIR has none and refuses).
   *
   * @example
   * ```ts
   * const t = await m.embedText(['a giraffe', 'a cow']);
   * ```
   */
  embedText(texts: string | string[]): Promise<Embeddings> {
    const list = Array.isArray(texts) ? texts : [texts];
    return this.exclusive(async () => new Embeddings(await this.model.encodeTexts(list), [list.length, this.model.dim]));
  }

  private async embed(images: ImageInput<I> | ImageInput<I>[], modality: 'sketch' | 'photo', o: EmbedOptions = {}): Promise<Embeddings> {
    const x = await this.inputs(images, modality);
    const r = await this.exclusive(() => this.model.embed(x.data, x.n, modality, o.tokens ? { tokens: true } : undefined));
    return new Embeddings(r.emb, [x.n, this.model.dim], r.tokens);
  }

  /**
   * Embeds photos into the model's in-memory index, replacing any earlier one. `photos`: an array of images (or of
   * `{ id, image }`); in Node also a folder (searched recursively for .png/.jpg/.jpeg) or a text file listing image
   * paths. Unreadable images are skipped and listed; rows are sorted by id (ties in a search go to the lower row).
   *
   * @example
   * ```ts
   * const r = await m.index(['photos/cat.jpg', 'photos/dog.jpg'], { onProgress: (d, t) => console.log(d, '/', t) });
   * console.log(`${r.photos} photos indexed in ${r.ms.toFixed(0)} ms`);
   * ```
   */
  async index(photos: string | I[] | NamedPhoto<I>[], o: IndexOptions = {}): Promise<IndexSummary> {
    const t0 = performance.now();
    let root = '';
    let named: NamedPhoto<I>[];
    const list = !Array.isArray(photos) ? await this.platform.photoList?.(photos) : null;
    if (list) {
      root = list.root;
      named = list.photos;
    } else if (Array.isArray(photos)) {
      named = (photos as (I | NamedPhoto<I>)[]).map((p, i) => (typeof p === 'object' && p !== null && 'id' in p && 'image' in p
        ? p as NamedPhoto<I> : { id: this.platform.nameOf(p as I) ?? `photo-${i + 1}`, image: p as I }));
    } else {
      throw new SketchError('BAD_ARGUMENT', 'photos must be an array of images', 'Pass an array of images (URLs, Blobs, bytes, canvases ...).');
    }
    if (named.length === 0) throw new SketchError('EMPTY_GALLERY', 'no photos to index', 'Pass at least one photo.');
    const sources = new Map<string, I>();
    for (const p of named) {
      if (typeof p.id !== 'string' || p.id === '') throw new SketchError('BAD_ARGUMENT', 'a photo id must be a non-empty string', 'Give each { id, image } a name.');
      if (sources.has(p.id)) throw new SketchError('BAD_ARGUMENT', `two photos have the id ${JSON.stringify(p.id)}`, 'Give each photo its own id.');
      sources.set(p.id, p.image);
    }
    const srcs: PhotoSource[] = named.map((p) => ({ path: p.id, load: () => this.platform.image(p.image, p.id) }));
    const index = await indexPhotos(this.model, srcs, {
      identity: this.identity, weightsName: this.info.weights, root, batch: o.batch, signal: o.signal, done: o.embedded,
      exclusive: (fn) => this.exclusive(fn),
      onProgress: o.onProgress ? (done, total, skipped) => o.onProgress!(done, total, skipped) : undefined,
    });
    o.signal?.throwIfAborted();
    await this.useIndex(index, sources);
    return { photos: index.paths.length, skipped: index.skipped.map(([id, reason]) => ({ id, reason })), ms: performance.now() - t0 };
  }

  private async useIndex(index: GalleryIndex, sources: Map<string, I>): Promise<void> {
    await this.exclusive(async () => {
      this.gallery?.search.destroy();
      this.gallery = null;
      const search = GallerySearch.create(this.device.ctx, index.embeddings, index.paths.length, index.dim);
      this.gallery = { index, search, sources };
    });
  }

  /**
   * The current index as a file (the format of `sketchgpu index`, docs/index-format.md), to store and reopen with
   * `loadIndex` (or query with the CLI).
   *
   * @example
   * ```ts
   * await m.index(photos);
   * const bytes = m.saveIndex();   // Uint8Array
   * ```
   */
  saveIndex(): Uint8Array {
    const ix = this.requireGallery().index;
    // loadIndex (and every reader of index files) refuses any other photo path as a crafted file: say so now, while
    // the embeddings are still in memory, instead of writing a file that cannot be opened again.
    const bad = ix.paths.find((p) => !isConfinedRelativePath(p));
    if (bad !== undefined) {
      throw new SketchError('BAD_ARGUMENT', `the photo id ${JSON.stringify(bad.slice(0, 200))} cannot go into an index file: its photo ids are relative image paths such as "cat/1.jpg" (no leading '/', no '..', no URL, a .png/.jpg/.jpeg ending)`,
        'Index the photos as { id, image } pairs with such ids (e.g. { id: "cat/1.jpg", image: url }); the in-memory index searches as it is.');
    }
    return serializeIndex(ix);
  }

  /**
   * Opens an index file (from `saveIndex` or `sketchgpu index`) made with these weights. Re-ranking needs the photos'
   * tokens: from the index's cache (`sketchgpu index --rn-cache`), else the photos are re-read (Node, from the
   * index's folder; anywhere, from `o.photos`).
   *
   * @example
   * ```ts
   * await m.loadIndex(bytes);
   * await m.loadIndex(bytes, 'cached index', { photos: ids.map((id) => ({ id, image: `photos/${id}` })) });
   * ```
   */
  async loadIndex(file: Uint8Array | ArrayBuffer, name = 'the index', o: LoadIndexOptions<I> = {}): Promise<{ photos: number }> {
    const bytes = file instanceof ArrayBuffer ? new Uint8Array(file) : file;
    const index = parseIndex(bytes, name);
    checkIndexModel(index, this.info.weightsSha256, name, this.info.weights, this.info.model);
    const sources = new Map<string, I>();
    if (index.root && this.platform.galleryFiles) for (const p of this.platform.galleryFiles(index.root, index.paths)) sources.set(p.id, p.image);
    for (const p of o.photos ?? []) sources.set(p.id, p.image);
    await this.useIndex(index, sources);
    return { photos: index.paths.length };
  }

  private requireGallery(): Gallery<I> {
    if (!this.gallery) throw new SketchError('BAD_ARGUMENT', 'nothing is indexed yet', 'Call index(photos) (or loadIndex) before search.');
    return this.gallery;
  }

  /**
   * The best photos of the index for a sketch, a text (CAAN) or a sketch composed with a text (CAAN), best first.
   * Cosine top-k on the GPU; with `rerank`, the cosine top `rerankK` re-scored by the relation network (sketches) or
   * the local text-photo alignment score (texts), as `sketchgpu query --rerank rn`.
   *
   * @example
   * ```ts
   * const hits = await m.search('sketch.png', { k: 5, rerank: true });
   * const byText = await m.search({ text: 'a giraffe' });   // CAAN weights
   * ```
   */
  async search(query: ImageInput<I> | TextQuery<I>, o: SearchOptions = {}): Promise<Hit[]> {
    const g = this.requireGallery();
    const k = o.k ?? 10;
    const rerankK = o.rerankK ?? 100;
    for (const [name, v] of [['k', k], ['rerankK', rerankK]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > GallerySearch.MAX_K) {
        throw new SketchError('BAD_ARGUMENT', `${name} must be an integer from 1 to ${GallerySearch.MAX_K}, not ${v}`, `e.g. { ${name}: 10 }.`);
      }
    }
    const rerank = !!o.rerank;
    if (rerank && !this.model.hasRelation) {
      throw new SketchError('BAD_WEIGHTS', 'these weights hold only the SA encoder, so there is no relation network to re-rank with', 'Search without rerank, or use full weights.');
    }
    const tq = typeof query === 'object' && query !== null && 'text' in query && typeof (query as TextQuery<I>).text === 'string' ? query as TextQuery<I> : null;
    const sketch = tq ? tq.sketch : query as ImageInput<I>;
    const K = rerank ? Math.max(k, rerankK) : k;
    const D = this.model.dim;
    const x = sketch !== undefined ? this.single(await this.preprocess(sketch, 'sketch'), 'search') : null;
    return this.exclusive(async () => {
      let q: Float32Array;
      let skTokens: Float32Array | undefined;
      let textTokens: Float32Array | undefined;
      if (x) {
        const r = await this.model.embed(x, 1, 'sketch', { tokens: rerank });
        q = r.emb;
        skTokens = r.tokens;
      }
      if (tq) {
        if (tq.textWeight !== undefined && !x) throw new SketchError('BAD_ARGUMENT', 'textWeight weighs the text against a sketch, and this query has none', 'Add a sketch, or drop textWeight.');
        const useTokens = rerank && !x;
        const t = useTokens ? await this.model.encodeTextTokens([tq.text]) : { emb: await this.model.encodeTexts([tq.text]), tokens: [] };
        textTokens = t.tokens[0];
        q = x ? composeQueries(q!, 1, t.emb, () => 0, tq.textWeight ?? 0.5, D) : t.emb;
      }
      const shortlist = (await g.search.search(q!, 1, Math.min(K, GallerySearch.MAX_K)))[0]!;
      let local: Float32Array | undefined;
      if (rerank) {
        const rows = shortlist.map((h) => h.index);
        const photoTokens = await this.photoTokens(g, rows);
        const side = await this.model.relationSide(photoTokens, rows.length, 'photo', false);
        if (skTokens) {
          const sk = await this.model.relationSide(skTokens, 1, 'sketch', false);
          local = await this.model.relation(sk, side, Uint32Array.from(rows.flatMap((_, i) => [0, i])));
        } else {
          local = await this.model.textRelation('photo', textTokens!, photoTokens, rows.length, Uint32Array.from(rows, (_, i) => i));
        }
      }
      let list = shortlist.map((h, i) => ({ row: h.index, cosine: h.score, rn: local?.[i] }));
      if (local) list = list.sort((a, b) => b.rn! - a.rn! || a.row - b.row);
      return list.slice(0, k).map((h, i) => ({
        rank: i + 1, id: g.index.paths[h.row]!, row: h.row, score: local ? h.rn! : h.cosine, cosine: h.cosine, ...(local ? { rn: h.rn } : {}),
      }));
    });
  }

  /** The shortlisted photos' tokens: from the index's cache, else re-encoded from their sources. */
  private async photoTokens(g: Gallery<I>, rows: number[]): Promise<Float32Array> {
    const row = this.model.tokens * this.model.dim;
    if (g.index.tokens) {
      const out = new Float32Array(rows.length * row);
      rows.forEach((r, i) => out.set(g.index.tokens!.subarray(r * row, (r + 1) * row), i * row));
      return out;
    }
    const S = this.model.imageSize, px = 3 * S * S;
    const data = new Float32Array(rows.length * px);
    for (let i = 0; i < rows.length; i++) {
      const id = g.index.paths[rows[i]!]!;
      const src = g.sources.get(id);
      if (src === undefined) {
        throw new SketchError('BAD_INDEX', `re-ranking needs the photo ${id}, and this index neither caches its tokens nor knows where it is`,
          'Index the photos with index(), or open an index built with `sketchgpu index --rn-cache`.');
      }
      data.set(await this.preprocess(src, 'photo'), i * px);
    }
    const out = new Float32Array(rows.length * row);
    for (let i = 0; i < rows.length; i += this.model.maxBatch) {
      const n = Math.min(this.model.maxBatch, rows.length - i);
      out.set((await this.model.embed(data.subarray(i * px, (i + n) * px), n, 'photo', { tokens: true })).tokens!, i * row);
    }
    return out;
  }

  /**
   * Why a sketch matches a photo (ZSE-SBIR weights with the cross-attention head): the relation score, the
   * strongest cross-attention correspondences, heat maps, patch replacement and the anchor matrix, as `sketchgpu
   * explain` shows them.
   *
   * @example
   * ```ts
   * const e = await m.explain('sketch.png', 'photo.jpg', { top: 8 });
   * console.log(`RN ${e.rn.toFixed(3)}`, e.views.sheet.width, e.views.sheet.height);
   * ```
   */
  async explain(sketch: ImageInput<I>, photo: ImageInput<I>, o: { top?: number } = {}): Promise<Explanation> {
    const top = o.top ?? 12;
    if (!Number.isInteger(top) || top < 1) throw new SketchError('BAD_ARGUMENT', `top must be a positive integer, not ${top}`, 'e.g. { top: 12 }.');
    if (!(this.model instanceof ZseRetrieval)) {
      throw new SketchError('BAD_WEIGHTS', `explanations are drawn from ZSE-SBIR's cross-attention, and these are ${MODEL_LABEL[this.info.model]} weights`, 'Use ZSE-SBIR weights (the bundled ones are the default) to explain a match.');
    }
    const zse = this.model.model;
    if (!zse.hasHead) throw new SketchError('BAD_WEIGHTS', 'these weights hold only the SA encoder; explanations need the cross-attention and RN tensors', 'Use full ZSE-SBIR weights.');
    const sk = this.single(await this.preprocess(sketch, 'sketch'), 'explain');
    const im = this.single(await this.preprocess(photo, 'photo'), 'explain');
    const e = await this.exclusive(() => explainPair(zse, sk, im));
    const v = renderExplanation(e, sk, im, top);
    const G = e.grid;
    const at = (p: number): [number, number] => [Math.floor(p / G), p % G];
    const A = e.anchorGrid * e.anchorGrid;
    return {
      rn: e.rn, cosine: e.cosine, grid: G, imageSize: e.imageSize,
      links: v.linkList.map((l) => ({ sketchPatch: at(l.sketchPatch), photoPatch: at(l.photoPatch), weight: l.weight })),
      anchors: { shape: [A, A], data: e.anchorCosine },
      views: {
        sheet: toRaw(v.sheet), links: toRaw(v.links), heatSketch: toRaw(v.heatSketch), heatPhoto: toRaw(v.heatPhoto),
        sketchFromPhoto: toRaw(v.sketchFromPhoto), photoFromSketch: toRaw(v.photoFromSketch), anchors: toRaw(v.anchors),
      },
    };
  }

  /**
   * Frees the GPU buffers of the model and its index, and in the browser its device (Node keeps its one device per
   * process, which other models share). Idempotent.
   *
   * @example
   * ```ts
   * const m = await SketchGPU.load();
   * try { await m.embedSketch('s.png'); } finally { m.dispose(); }
   * ```
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.chain;
    this.disposed = true;
    this.gallery?.search.destroy();
    this.gallery = null;
    await this.model.destroy();
    this.device.release();
  }

  /**
   * Every sketch scored against every photo, `[sketches, photos]` (a row per sketch), as `sketchgpu score`:
   * by default the cosine of their global embeddings; with `{ relation: true }` the relation network's score (ZSE-SBIR
   * weights with the CA and RN head; CAAN's local sketch-photo score).
   *
   * @example
   * ```ts
   * const s = await m.score(['cat.png', 'dog.png'], ['a.jpg', 'b.jpg', 'c.jpg'], { relation: true });
   * console.log(s.shape, s.rows[0]);   // [2, 3], the first sketch's three scores
   * ```
   */
  async score(sketches: ImageInput<I> | ImageInput<I>[], photos: ImageInput<I> | ImageInput<I>[], o: ScoreOptions = {}): Promise<Scores> {
    if (o.relation && !this.model.hasRelation) {
      throw new SketchError('BAD_WEIGHTS', 'these weights hold only the SA encoder, so there is no relation network to score with', 'Use full weights (with the cross-attention and RN tensors).');
    }
    const sk = await this.inputs(sketches, 'sketch');
    const im = await this.inputs(photos, 'photo');
    const rn = !!o.relation;
    const scores = await this.exclusive(async () => {
      const m = this.model;
      const es = await m.embed(sk.data, sk.n, 'sketch', { tokens: rn });
      const ei = await m.embed(im.data, im.n, 'photo', { tokens: rn });
      if (!rn) return m.cosine(es.emb, sk.n, ei.emb, im.n);
      const pairs = new Uint32Array(2 * sk.n * im.n);
      for (let s = 0; s < sk.n; s++) for (let j = 0; j < im.n; j++) pairs.set([s, j], 2 * (s * im.n + j));
      const sides = [await m.relationSide(es.tokens!, sk.n, 'sketch', false), await m.relationSide(ei.tokens!, im.n, 'photo', false)] as const;
      return m.relation(sides[0], sides[1], pairs);
    });
    checkFiniteScores(scores, 'score');
    return new Scores(scores, [sk.n, im.n]);

  }

  private lostP: Promise<DeviceLoss> | undefined;

  /**
   * Resolves when the GPU device under this model is lost (a driver reset, the GPU taken away, the browser reclaiming
   * it). The model cannot be used from then on: its calls reject with a `DEVICE_LOST` SketchError. To go on, load it
   * again and reopen the index, which stays readable: `m2.loadIndex(m.saveIndex())`. Never resolves for a model
   * that was disposed.
   *
   * @example
   * ```ts
   * m.deviceLost.then(async (loss) => {
   *   console.warn(`GPU lost (${loss.reason}): reloading`);
   *   const m2 = await SketchGPU.load(options);
   *   await m2.loadIndex(m.saveIndex());
   *   m.dispose();
   * });
   * ```
   */
  get deviceLost(): Promise<DeviceLoss> {
    return (this.lostP ??= this.device.ctx.lost.then((info) => (this.disposed
      ? new Promise<never>(() => undefined)
      : { reason: info.reason, message: info.message, adapter: this.device.ctx.adapterName })));
  }

  /** One image's model input (a ModelInput of several images is refused where one image is asked for). */
  private single(x: Float32Array, call: string): Float32Array {
    const px = 3 * this.model.imageSize ** 2;
    if (x.length !== px) throw new SketchError('BAD_ARGUMENT', `${call} takes one image, and this model input holds ${x.length / px}`, 'Pass one image, or a ModelInput of one image.');
    return x;
  }

  private checkInput(x: ModelInput, modality: 'sketch' | 'photo'): Float32Array {
    if (x.modality !== modality || x.size !== this.model.imageSize) {
      throw new SketchError('BAD_ARGUMENT', `this model input is a ${x.modality} of ${x.size} px, and a ${modality} of ${this.model.imageSize} px is needed here`,
        `Make it with modelInput(image, '${modality}') of this model.`);
    }
    return x.data;
  }

  /**
   * An image preprocessed as the model will see it (sketches: the reference's ink crop, pad and resize; photos: its
   * resize), `[1, 3, S, S]` floats in [-1, 1] (S = `info.imageSize`). Search, explain, score, embed and
   * `relationScore` take it in place of an image without preprocessing it again, so an app that shows what the model
   * sees, or asks twice about one drawing, does the work once. A blank sketch is an `EMPTY_SKETCH` SketchError here,
   * before any GPU work. `name` names the image in errors and warnings (default: its path or URL). Inputs
   * preprocessed elsewhere (a `.npy` of `sketchgpu preprocess`) come in through `ModelInput.fromTensor`.
   *
   * @example
   * ```ts
   * const x = await m.modelInput(canvas, 'sketch');
   * const hits = await m.search(x, { k: 5 });
   * const why = await m.explain(x, photoUrl);
   * ctx2d.putImageData(new ImageData(new Uint8ClampedArray(x.toImage().data), x.size, x.size), 0, 0);
   * ```
   */
  async modelInput(image: ImageInput<I>, modality: 'sketch' | 'photo', o: { name?: string } = {}): Promise<ModelInput> {
    if (this.disposed) throw new SketchError('BAD_ARGUMENT', 'this model was disposed', 'Load it again with SketchGPU.load().');
    if (modality !== 'sketch' && modality !== 'photo') throw new SketchError('BAD_ARGUMENT', `modality must be "sketch" or "photo", not ${JSON.stringify(modality)}`, 'e.g. modelInput(canvas, \'sketch\').');
    if (image instanceof ModelInput) {
      this.checkInput(image, modality);
      return image;
    }
    return new ModelInput(await this.preprocess(image, modality, 0, 1, o.name), modality, this.model.imageSize);
  }

  /**
   * The relation score of one sketch-photo pair: the local score a re-ranked search (`rerank: true`) ranks by
   * (ZSE-SBIR's relation network; CAAN's cross-attention, anchors and relation network), as `sketchgpu score --mode
   * rn` (ZSE-SBIR) and `sketchgpu query --rerank rn` give it.
   *
   * @example
   * ```ts
   * const rn = await m.relationScore('sketch.png', 'photo.jpg');
   * ```
   */
  async relationScore(sketch: ImageInput<I>, photo: ImageInput<I>): Promise<number> {
    return (await this.score(sketch, photo, { relation: true })).data[0]!;
  }

  /**
   * How many of the text context's tokens a text takes, start and end tokens included (CAAN); a text longer than
   * `info.textContext` is refused by `search` and `embedText`. ZSE-SBIR has no text tower and refuses.
   *
   * @example
   * ```ts
   * const n = await m.textTokens('a giraffe');   // 4
   * if (n > m.info.textContext!) console.warn('too long');
   * ```
   */
  async textTokens(text: string): Promise<number> {
    const tok = tokenizers.get(this.model);
    if (!tok) return noTextTower();
    return (await tok()).encode(text).length + 2;
  }
}
