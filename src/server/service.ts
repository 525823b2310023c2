/**
 * Node-only: the search service behind `sketchgpu serve` (docs/server.md). One model and one gallery stay open;
 * queries from many callers wait in a bounded queue and run in batches: while one batch is on the GPU, the queries
 * that arrive gather, and the next batch takes up to `maxBatch` of those with the same options (one SA forward for
 * all their sketches, one top-k dispatch, one relation-network batch). No query waits for a batch to fill: an idle
 * service runs a lone query at once. A query's results do not depend on the others in its batch (tested).
 *
 * A lost GPU device is reloaded (same weights, same options) and the queued queries run on the new one; the batch
 * that was on the device when it was lost is run again there, once.
 */
import { SketchError, isSketchError } from '../core/errors.ts';
import type { Explanation, ModelInput } from '../api/core.ts';
import type { SketchGPU } from '../api/node.ts';
import { readBoundedFile } from '../io/read-file.ts';
import { confinedGalleryPath } from '../retrieval/gallery.ts';
import { queryEncoder } from '../api/encoders.ts';
import type { ImageEncoder } from '../retrieval/files.ts';
import { checkIndexModel, type GalleryIndex } from '../retrieval/index-format.ts';
import { runQuery, runTextQuery, type AnnSource, type QueryHit } from '../retrieval/query.ts';
import { GallerySearch } from '../retrieval/search.ts';
import { DecodePool } from './decode.ts';
import { CLIP_MAX_TEXT_CHARS } from '../text/clip-tokenizer.ts';

/** One query: a sketch (image file bytes, PNG or JPEG), a text (CAAN), or both (a composed query, CAAN). */
export interface ServiceQuery {
  sketch?: Uint8Array;
  text?: string;
  /** Results wanted (default 10, at most GallerySearch.MAX_K). */
  k?: number;
  /** Re-rank the cosine top `rerankK` with the relation network (sketches) or the text-photo alignment (texts). */
  rerank?: boolean;
  /** Shortlist size for the re-rank (default 100). */
  rerankK?: number;
  /** The text's weight in a composed sketch+text query, in [0, 1] (default 0.5). */
  textWeight?: number;
}

export interface ServiceHit {
  rank: number;
  /** The photo's id: its path relative to the gallery's root, as the index stores it. */
  id: string;
  /** The ranking score: the relation score after a re-rank, else the cosine. */
  score: number;
  cosine: number;
  rn?: number;
}

export interface ServiceResult {
  hits: ServiceHit[];
  /** How many queries ran in this query's batch (1 when it ran alone). */
  batch: number;
  /** queue: waiting for its batch; embed, search, rerank: the batch's stages; total: from submit to result. */
  timings_ms: { queue: number; embed: number; search: number; rerank: number; total: number };
}

export type ServiceEvent =
  | { type: 'device-lost'; reason: string; message: string }
  | { type: 'reloaded'; ms: number }
  | { type: 'fatal'; error: Error };

export interface ServiceOptions {
  /** The loaded model; the service owns it from here (close() disposes it). */
  model: SketchGPU;
  /** The gallery (an .sgi index, or a LanceDB table's rows); with `ann`, only its header. */
  index: GalleryIndex;
  /** ANN candidates (a LanceDB table with a vector index); without it the search is exact over `index`. */
  ann?: AnnSource;
  /** Queries per batch (default 16). */
  maxBatch?: number;
  /** Queries waiting beyond the running batch before new ones are refused with BUSY (default 256). */
  maxQueue?: number;
  /**
   * Threads that decode and preprocess the sketches (default 0: on the calling thread, through
   * `SketchGPU.modelInput`); the same model inputs either way (decode.ts).
   */
  decodeThreads?: number;
  /** Where the warnings of sketches decoded on threads go (the alpha-channel warning of `modelInput`). */
  onWarning?: (warning: string) => void;
  /** Loads the model again after a device loss (the same weights and options); without it a loss is fatal. */
  reload?: () => Promise<SketchGPU>;
  onEvent?: (e: ServiceEvent) => void;
}

/** The longest text a query may hold, in characters: the tokenizer's bound (CAAN reads 77 tokens of it). */
export const MAX_TEXT_CHARS = CLIP_MAX_TEXT_CHARS;

interface Pending {
  key: string;
  name: string;
  input?: Float32Array;
  /** An explanation job (runs alone): the sketch as the model input, the photo's id and file. */
  explain?: { sketch: ModelInput; id: string; file: string; top: number };
  text?: string;
  k: number;
  rerank: boolean;
  rerankK: number;
  textWeight?: number;
  submitted: number;
  retried: boolean;
  resolve: (r: ServiceResult & { explanation?: Explanation }) => void;
  reject: (e: unknown) => void;
}

const intIn = (name: string, v: number, max: number) => {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new SketchError('BAD_ARGUMENT', `${name} must be an integer from 1 to ${max}, not ${v}`, `e.g. ${name} 10.`);
  return v;
};

/**
 * One model and one gallery answering queries in batches (see the module comment); `startSearchServer` puts it on
 * HTTP, or call `query` directly.
 *
 * @example
 * ```ts
 * import { SketchGPU, SearchService, parseIndex } from 'sketchgpu';
 * import { readFileSync } from 'node:fs';
 * const index = parseIndex(readFileSync('photos.sgi'), 'photos.sgi');
 * const service = new SearchService({ model: await SketchGPU.load({ weights: index.weightsPath }), index });
 * const r = await service.query({ sketch: readFileSync('giraffe.png'), k: 5 });
 * console.log(r.hits.map((h) => `${h.id} ${h.score.toFixed(3)}`), `batch of ${r.batch}`);
 * await service.close();
 * ```
 */
export class SearchService {
  private m: SketchGPU;
  private search: GallerySearch | null = null;
  private queue: Pending[] = [];
  private running = false;
  /** The batch on the GPU (settled when it is done; runBatch never rejects). */
  private current: Promise<void> = Promise.resolve();
  private state: 'ready' | 'reloading' | 'failed' | 'closed' = 'ready';
  private gallery: { index: GalleryIndex; ann?: AnnSource };
  /** replaceGallery in progress: no new batch starts. */
  private paused = 0;
  private seq = 0;
  private idle: (() => void)[] = [];
  private readonly decoder: DecodePool;
  readonly maxBatch: number;
  readonly maxQueue: number;
  /** Queries answered, and batches run, since the start. */
  readonly stats = { queries: 0, batches: 0, largestBatch: 0, deviceLosses: 0 };

  constructor(private readonly o: ServiceOptions) {
    this.m = o.model;
    this.gallery = { index: o.index, ann: o.ann };
    this.maxBatch = o.maxBatch ?? 16;
    this.maxQueue = o.maxQueue ?? 256;
    intIn('maxBatch', this.maxBatch, 1024);
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0) throw new SketchError('BAD_ARGUMENT', `maxQueue must be a non-negative integer, not ${this.maxQueue}`, 'e.g. 256.');
    this.decoder = new DecodePool(o.decodeThreads ?? 0);
    this.attach();
  }

  /** The model in use (after a device loss, the reloaded one). */
  get model(): SketchGPU {
    return this.m;
  }

  /** The gallery being searched (after `replaceGallery`, the new one). */
  get index(): GalleryIndex {
    return this.gallery.index;
  }

  /**
   * Searches another gallery from the next batch on (a rebuilt or updated index: `sketchgpu serve` does this on
   * SIGHUP): the running batch finishes on the old one, queued queries run on the new one. The new index must come
   * from the same weights (INDEX_MISMATCH otherwise, and the old gallery stays).
   *
   * @example
   * ```ts
   * await service.replaceGallery(parseIndex(readFileSync('photos.sgi'), 'photos.sgi'));
   * ```
   */
  async replaceGallery(index: GalleryIndex, ann?: AnnSource): Promise<void> {
    this.checkOpen();
    checkIndexModel(index, this.m.info.weightsSha256, index.file ?? 'the new index', this.m.info.weights, this.m.info.model);
    this.paused++;
    try {
      while (this.running) await this.current;
      this.checkOpen(); // closed (or failed) meanwhile: nothing to swap into
      const search = ann ? null : GallerySearch.create(this.m.model.ctx, index.embeddings, index.paths.length, index.dim);
      this.search?.destroy();
      this.search = search;
      this.gallery = { index, ann };
    } finally {
      this.paused--;
      this.pump();
    }
  }

  /** 'ready'; 'reloading' after a device loss; 'failed' when the reload failed; 'closed'. */
  get status(): 'ready' | 'reloading' | 'failed' | 'closed' {
    return this.state;
  }

  private idSets = new WeakMap<GalleryIndex, Set<string>>();
  /** Whether the gallery holds a photo of this id (its relative path); always false with ANN (no rows in memory). */
  hasPhoto(id: string): boolean {
    const ix = this.gallery.index;
    let ids = this.idSets.get(ix);
    if (!ids) this.idSets.set(ix, (ids = new Set(ix.paths)));
    return ids.has(id);
  }

  /** Whether sketches are decoded on worker threads (decodeThreads > 0 and the worker module found). */
  get decodesOnWorkers(): boolean {
    return this.decoder.onWorkers;
  }

  /** Queries waiting for a batch. */
  get queued(): number {
    return this.queue.length;
  }

  private attach(): void {
    const g = this.gallery;
    if (!g.ann) this.search = GallerySearch.create(this.m.model.ctx, g.index.embeddings, g.index.paths.length, g.index.dim);
    const m = this.m;
    void m.deviceLost.then((loss) => {
      if (this.m === m) void this.onLost(loss.reason, loss.message);
    });
  }

  private async onLost(reason: string, message: string): Promise<void> {
    if (this.state === 'closed') return;
    this.stats.deviceLosses++;
    this.state = 'reloading';
    this.search = null; // its buffers went with the device
    this.o.onEvent?.({ type: 'device-lost', reason, message });
    const t0 = performance.now();
    const old = this.m;
    try {
      if (!this.o.reload) throw new SketchError('DEVICE_LOST', `the GPU device was lost (${reason}: ${message})`, 'Restart the server.');
      const m = await this.o.reload();
      if (this.status === 'closed') { // close() was called while it loaded
        await m.dispose();
        return;
      }
      checkIndexModel(this.gallery.index, m.info.weightsSha256, 'the served index', m.info.weights, m.info.model);
      this.m = m;
      this.attach();
      this.state = 'ready';
      void old.dispose().catch(() => undefined);
      this.o.onEvent?.({ type: 'reloaded', ms: performance.now() - t0 });
      this.pump();
    } catch (e) {
      this.state = 'failed';
      const err = isSketchError(e) ? e : new SketchError('DEVICE_LOST', `the GPU device was lost, and loading the model again failed: ${(e as Error)?.message ?? e}`, 'Restart the server.');
      for (const p of this.queue.splice(0)) p.reject(err);
      this.o.onEvent?.({ type: 'fatal', error: err });
      this.wakeIdle();
    }
  }

  /**
   * Checks a query, preprocesses its sketch (off the GPU queue), and queues it. Rejects with a SketchError for a bad
   * query (BAD_ARGUMENT, BAD_IMAGE, EMPTY_SKETCH, ...), BUSY when the queue is full, DEVICE_LOST when the service
   * failed.
   */
  async query(q: ServiceQuery): Promise<ServiceResult> {
    const submitted = performance.now();
    this.checkOpen();
    const info = this.m.info;
    const k = intIn('k', q.k ?? 10, GallerySearch.MAX_K);
    const rerankK = intIn('rerank_k', q.rerankK ?? 100, GallerySearch.MAX_K);
    const rerank = !!q.rerank;
    if (q.sketch === undefined && q.text === undefined) throw new SketchError('BAD_ARGUMENT', 'nothing to search for: the query has neither a sketch nor a text', 'Send a sketch image, a text (CAAN weights), or both.');
    if (q.text !== undefined) {
      if (typeof q.text !== 'string' || q.text.trim() === '') throw new SketchError('BAD_ARGUMENT', 'the text is empty', 'Send a text to search for, e.g. "a giraffe".');
      if (q.text.length > MAX_TEXT_CHARS) throw new SketchError('BAD_ARGUMENT', `the text has ${q.text.length} characters, more than ${MAX_TEXT_CHARS}`, 'Send a shorter text (the text tower reads its first 77 tokens).');
      if (!info.hasText) throw new SketchError('BAD_ARGUMENT', `text queries need a model with a text tower, and these are ${info.label} weights, which have none`, 'Serve an index built with CAAN weights.');
    }
    if (q.textWeight !== undefined) {
      if (q.sketch === undefined || q.text === undefined) throw new SketchError('BAD_ARGUMENT', 'text_weight weighs the text in a composed sketch+text query, and this query is not one', 'Send both a sketch and a text, or drop text_weight.');
      if (!(typeof q.textWeight === 'number' && q.textWeight >= 0 && q.textWeight <= 1)) throw new SketchError('BAD_ARGUMENT', `text_weight must be a number in [0, 1], not ${q.textWeight}`, 'e.g. 0.5 (0: the sketch alone, 1: the text alone).');
    }
    if (rerank && !info.hasRelation) throw new SketchError('BAD_ARGUMENT', 'these weights hold only the SA encoder, so there is no relation network to re-rank with', 'Search without rerank, or serve full weights.');
    this.checkRoom();
    const name = `query #${++this.seq}`;
    const input = q.sketch !== undefined ? await this.decodeSketch(q.sketch) : undefined;
    this.checkOpen();
    this.checkRoom(); // again: others may have queued while this sketch was decoded
    const kind = input && q.text !== undefined ? 'composed' : input ? 'sketch' : 'text';
    const textWeight = kind === 'composed' ? (q.textWeight ?? 0.5) : undefined;
    const key = `${kind}|${rerank ? rerankK : 0}|${textWeight ?? ''}`;
    return new Promise<ServiceResult>((resolve, reject) => {
      this.queue.push({ key, name, input, text: q.text, k, rerank, rerankK, textWeight, submitted, retried: false, resolve, reject });
      this.pump();
    });
  }

  /** A query's sketch as the model input: on the decoding threads when there are some, else through modelInput. */
  private async decodeSketch(bytes: Uint8Array): Promise<Float32Array> {
    if (!this.decoder.onWorkers) return (await this.m.modelInput(bytes, 'sketch', { name: 'the sketch' })).data;
    const r = await this.decoder.sketch(bytes, this.m.info.imageSize, 'the sketch');
    if (r.warning) (this.o.onWarning ?? ((w: string) => console.warn(`sketchgpu: ${w}`)))(r.warning);
    return r.data;
  }

  /** BUSY when maxQueue queries wait already (a query that would run at once on an idle service always may). */
  private checkRoom(): void {
    const idle = this.state === 'ready' && !this.running && !this.paused;
    if (this.queue.length >= this.maxQueue && !(idle && this.queue.length === 0)) {
      throw new SketchError('BUSY', `${this.queue.length} queries are already waiting`, 'Retry in a moment, or run the server with a larger --max-queue.');
    }
  }

  /**
   * Why a sketch matches one photo of the gallery (ZSE-SBIR weights with the relation head): `SketchGPU.explain` of
   * the sketch and the photo the index names `id`, run in the queue like a query (alone, not in a batch).
   *
   * @example
   * ```ts
   * const e = await service.explain({ sketch: readFileSync('giraffe.png'), id: 'giraffe/n02439033_10279.jpg' });
   * writeFileSync('why.png', encodePng(e.views.sheet));
   * ```
   */
  async explain(q: { sketch: Uint8Array; id: string; top?: number }): Promise<Explanation & { timings_ms: ServiceResult['timings_ms'] }> {
    const submitted = performance.now();
    this.checkOpen();
    const top = intIn('top', q.top ?? 12, 64);
    const info = this.m.info;
    if (info.model !== 'zse-sbir' || !info.hasRelation) {
      throw new SketchError('BAD_ARGUMENT', `explanations are drawn from ZSE-SBIR's cross-attention, and these are ${info.label} weights${info.hasRelation ? '' : ' without the relation head'}`, 'Serve an index built with full ZSE-SBIR weights (the bundled ones).');
    }
    const ix = this.gallery.index;
    if (typeof q.id !== 'string' || !this.hasPhoto(q.id)) {
      throw new SketchError('BAD_ARGUMENT', `no photo ${JSON.stringify(String(q.id).slice(0, 200))} in this gallery`, 'Use an id from a search result.');
    }
    const file = confinedGalleryPath(ix.root, q.id, ix.file);
    this.checkRoom();
    const sketch = await this.m.modelInput(q.sketch, 'sketch', { name: 'the sketch' });
    this.checkOpen();
    this.checkRoom();
    const r = await new Promise<ServiceResult & { explanation?: Explanation }>((resolve, reject) => {
      this.queue.push({ key: `explain|${++this.seq}`, name: `explain #${this.seq}`, explain: { sketch, id: q.id, file, top }, k: 1, rerank: false, rerankK: 1, submitted, retried: false, resolve, reject });
      this.pump();
    });
    return { ...r.explanation!, timings_ms: r.timings_ms };
  }

  private checkOpen(): void {
    if (this.state === 'closed') throw new SketchError('BUSY', 'the server is shutting down', 'Retry on a running server.');
    if (this.state === 'failed') throw new SketchError('DEVICE_LOST', 'the GPU device was lost and the model could not be loaded again', 'Restart the server.');
  }

  private pump(): void {
    if (this.running || this.paused || this.state !== 'ready' || this.queue.length === 0) {
      if (!this.running && this.queue.length === 0) this.wakeIdle();
      return;
    }
    const key = this.queue[0]!.key;
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of this.queue) (p.key === key && batch.length < this.maxBatch ? batch : rest).push(p);
    this.queue = rest;
    this.running = true;
    this.current = this.runBatch(batch).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      const runs = await this.execute(batch);
      this.stats.batches++;
      this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
      const end = performance.now();
      batch.forEach((p, i) => {
        this.stats.queries++;
        p.resolve({ hits: runs.hits[i] ?? [], batch: batch.length, timings_ms: { queue: started - p.submitted, ...runs.timings, total: end - p.submitted }, ...(runs.explanation ? { explanation: runs.explanation } : {}) });
      });
    } catch (e) {
      if (isSketchError(e) && e.code === 'DEVICE_LOST' && this.o.reload) {
        // Run it again on the reloaded device (once): a query in flight when the device went is not lost.
        const again = batch.filter((p) => !p.retried);
        for (const p of batch) if (p.retried) p.reject(e);
        for (const p of again) p.retried = true;
        this.queue.unshift(...again);
        return;
      }
      if (batch.length > 1) {
        // One query's failure must not fail the others: run each alone (each then gets its own answer or error).
        for (const p of batch) await this.runBatch([p]);
        return;
      }
      batch[0]!.reject(e);
    }
  }

  private async execute(batch: Pending[]): Promise<{ hits: ServiceHit[][]; timings: { embed: number; search: number; rerank: number }; explanation?: Explanation }> {
    const m = this.m;
    const job = batch[0]!.explain;
    if (job) {
      const t0 = performance.now();
      let photo: Uint8Array;
      try {
        photo = await readBoundedFile(job.file, 'image');
      } catch (e) {
        throw new SketchError('IO', `the photo ${JSON.stringify(job.id)} cannot be read: ${(e as Error).message}`, 'Restore the photo, or rebuild the index.');
      }
      const explanation = await m.explain(job.sketch, photo, { top: job.top });
      return { hits: [], timings: { embed: performance.now() - t0, search: 0, rerank: 0 }, explanation };
    }
    const kmax = Math.max(...batch.map((p) => p.k));
    const first = batch[0]!;
    const g = this.gallery;
    const common = { model: m.model, index: g.index, k: kmax, rerank: first.rerank ? 'rn' as const : undefined, rerankK: first.rerankK, ann: g.ann, search: this.search ?? undefined };
    const base = queryEncoder(m);
    const inputs = new Map(batch.map((p) => [p.name, p.input]));
    // The batch's sketches are already preprocessed; a re-rank's photos are read from the gallery as `query` reads them.
    const encoder: ImageEncoder = {
      load: async (file, modality) => (modality === 'sketch' && inputs.get(file)) || base.load(file, modality),
      embed: base.embed,
    };
    const toHits = (hits: QueryHit[], k: number): ServiceHit[] => hits.slice(0, k).map((h) => ({
      rank: h.rank, id: h.path, score: h.score, cosine: h.cosine, ...(h.rn !== undefined ? { rn: h.rn } : {}),
    }));
    if (first.input === undefined) {
      const run = await runTextQuery({ ...common, encoder, texts: batch.map((p) => p.text!) });
      return { hits: run.results.map((r, i) => toHits(r.hits, batch[i]!.k)), timings: run.timings_ms };
    }
    const run = await runQuery({
      ...common, encoder, sketches: batch.map((p) => p.name),
      ...(first.text !== undefined ? { texts: batch.map((p) => p.text!), textWeight: first.textWeight } : {}),
    });
    return { hits: run.results.map((r, i) => toHits(r.hits, batch[i]!.k)), timings: run.timings_ms };
  }

  private wakeIdle(): void {
    for (const f of this.idle.splice(0)) f();
  }

  /** Resolves when no query is queued or running. */
  drained(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Refuses new queries, lets the queued ones finish (up to `timeoutMs`, then rejects them), frees the GPU. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    if (wasReady || this.running) {
      // The pump stops at 'closed': run what is queued to the end first.
      const queued = this.queue.splice(0);
      const finish = (async () => {
        while (this.running) await this.current;
        for (let i = 0; i < queued.length; i += this.maxBatch) {
          const part = queued.slice(i, i + this.maxBatch);
          const byKey = new Map<string, Pending[]>();
          for (const p of part) byKey.set(p.key, [...(byKey.get(p.key) ?? []), p]);
          for (const b of byKey.values()) await this.runBatch(b);
        }
      })();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([finish.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeoutMs); })]);
      clearTimeout(timer);
      if (timedOut) for (const p of queued) p.reject(new SketchError('BUSY', 'the server shut down before this query ran', 'Retry on a running server.'));
    }
    for (const p of this.queue.splice(0)) p.reject(new SketchError('BUSY', 'the server shut down before this query ran', 'Retry on a running server.'));
    this.search?.destroy();
    this.search = null;
    this.wakeIdle();
    await this.decoder.close();
    await this.m.dispose();
  }
}
