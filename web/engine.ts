/**
 * The page's GPU session: one device, the model (ZSE-SBIR or CAAN, as the retrieval interface of
 * src/retrieval/model.ts) and the gallery's search on it, GPU work serialized (an executor's
 * buffers are reused by every run, so two runs must not overlap), and recovery from a lost device: a new device is
 * created, the weights and the gallery embeddings (kept on the host) are uploaded again, and the callers retry.
 */
import {
  browserGpu, CaanModel, CaanRetrieval, checkAdapterLimits, GallerySearch, SketchError, ZseModel, ZseRetrieval,
  type ClipTokenizer, type GalleryIndex, type GpuContext, type LoadedModelWeights, type Precision, type RetrievalModel,
} from '../src/browser.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface EngineEvents {
  onLost?: (info: GPUDeviceLostInfo) => void;
  onRecovered?: (ctx: GpuContext) => void;
  onRecoverFailed?: (e: unknown) => void;
}

export class Engine {
  ctx!: GpuContext;
  model: RetrievalModel | null = null;
  search: GallerySearch | null = null;
  gallery: GalleryIndex | null = null;
  weights: LoadedModelWeights | null = null;
  /** Incremented by each recovery. */
  generation = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private recovering: Promise<void> | null = null;
  private closed = false;

  /**
   * `tokenizer`: how CAAN gets the CLIP tokenizer when a text comes (fetched once by the page, kept across devices).
   * `precision`: the models' (the CLI's --precision; 'f16' stores weights and GEMM inputs as binary16).
   */
  constructor(readonly events: EngineEvents = {}, private readonly tokenizer?: () => Promise<ClipTokenizer>, readonly precision: Precision = 'f32') {}

  /** A device (throws NO_ADAPTER with a clear message when the browser has no WebGPU). */
  async openDevice(): Promise<GpuContext> {
    const ctx = await browserGpu();
    this.ctx = ctx;
    ctx.lost.then((info) => this.lost(ctx, info));
    if (this.weights) this.setup(this.weights);
    return ctx;
  }

  /** Upload the weights (and the gallery, when there is one) to the current device. */
  setWeights(w: LoadedModelWeights): void {
    this.weights = w;
    this.setup(w);
  }

  private setup(w: LoadedModelWeights): void {
    const problems = checkAdapterLimits(this.ctx.adapter.limits, w.weights.config);
    if (problems.length) {
      this.closed = true; // no recovery for this one: a new device on the same adapter has the same limits
      this.ctx.destroy();
      throw new SketchError('MISSING_FEATURE',
        `This GPU adapter (${this.ctx.adapterName}) lacks what sketchgpu needs: ` +
        problems.map((p) => `${p.limit} is ${p.has}, needs ${p.needed}`).join('; ') + '.',
        'Try another browser or GPU, or update the GPU driver.');
    }
    this.model = w.kind === 'caan'
      ? new CaanRetrieval(CaanModel.create(this.ctx, w.weights.config, w.weights.tensors, { precision: this.precision }), this.tokenizer)
      : new ZseRetrieval(ZseModel.create(this.ctx, w.weights.config, w.weights.tensors, { precision: this.precision }));
    if (this.gallery) this.search = GallerySearch.create(this.ctx, this.gallery.embeddings, this.gallery.paths.length, this.gallery.dim);
  }

  setGallery(ix: GalleryIndex): void {
    this.search?.destroy();
    this.gallery = ix;
    this.search = GallerySearch.create(this.ctx, ix.embeddings, ix.paths.length, ix.dim);
  }

  private lost(ctx: GpuContext, info: GPUDeviceLostInfo): void {
    if (this.closed || ctx !== this.ctx) return;
    this.model = null;
    this.search = null;
    this.events.onLost?.(info);
    this.recovering = (async () => {
      let last: unknown;
      for (let attempt = 1; attempt <= 3; attempt++) {
        try {
          await this.openDevice();
          this.generation++;
          this.events.onRecovered?.(this.ctx);
          return;
        } catch (e) {
          last = e;
          await sleep(500 * attempt);
        }
      }
      this.events.onRecoverFailed?.(last);
      throw last;
    })();
    this.recovering.catch(() => undefined);
  }

  /**
   * Run GPU work alone. When the device is lost during it, waits for the recovery and throws DEVICE_LOST, so the
   * caller can run it again on the new device (see `retrying`).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(async () => {
      if (this.recovering) await this.recovering;
      const ctx = this.ctx;
      try {
        return await fn();
      } catch (e) {
        // A lost device shows up as a failed buffer map or a validation error, before or after ctx.lost resolves.
        await Promise.race([ctx.lost, sleep(300)]);
        if (!ctx.isLost()) throw e;
        if (this.recovering) await this.recovering;
        throw new SketchError('DEVICE_LOST', `The GPU device (${ctx.adapterName}) was lost during the work.`, 'It was recreated; run it again.', { cause: e });
      }
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Run `fn` again (up to 3 times) when it fails because the device was lost and recreated. */
  async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof SketchError && e.code === 'DEVICE_LOST') || attempt >= 3) throw e;
        if (this.recovering) await this.recovering;
      }
    }
  }

  requireModel(): RetrievalModel {
    if (!this.model) throw new SketchError('DEVICE_LOST', 'The GPU device is being recreated.', 'Try again in a moment.');
    return this.model;
  }

  /** For tests: lose the device as a driver reset would. Resolves when a new device is in place. */
  async loseDevice(): Promise<void> {
    const gen = this.generation;
    this.ctx.device.destroy();
    while (this.generation === gen) {
      await sleep(50);
      if (this.recovering) await this.recovering;
    }
  }
}
