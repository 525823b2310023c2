/**
 * The page's model session: the one `SketchGPU` model (sketchgpu/browser) the page searches with, and recovery from a
 * lost device on top of the API: when the model's `deviceLost` resolves, the model is loaded again with the same
 * options and the gallery index (kept on the host, `saveIndex`) is reopened on it; calls that failed with DEVICE_LOST
 * are run again on the new model (`retrying`). No model internals: everything goes through the API.
 */
import { SketchError, isSketchError, SketchGPU, type DeviceLoss, type LoadOptions, type NamedPhoto, type BrowserImage } from '../src/browser.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface SessionEvents {
  onLost?: (loss: DeviceLoss) => void;
  onRecovered?: (m: SketchGPU) => void;
  onRecoverFailed?: (e: unknown) => void;
}

export class Session {
  model: SketchGPU | null = null;
  /** Incremented by each recovery. */
  generation = 0;
  /** Where the current gallery's photos are (by id), for the index reopened on a new model. */
  photos: NamedPhoto<BrowserImage>[] = [];
  private options: LoadOptions = {};
  private recovering: Promise<void> | null = null;

  constructor(readonly events: SessionEvents = {}) {}

  /** Loads the model (the options are kept for a reload after a lost device). */
  async load(options: LoadOptions): Promise<SketchGPU> {
    const m = await SketchGPU.load(options);
    this.options = { ...options, onWeightsProgress: undefined };
    this.use(m);
    return m;
  }

  private use(m: SketchGPU): void {
    this.model = m;
    void m.deviceLost.then((loss) => this.lost(m, loss));
  }

  private lost(m: SketchGPU, loss: DeviceLoss): void {
    if (m !== this.model) return;
    this.events.onLost?.(loss);
    this.recovering = (async () => {
      let index: Uint8Array | null = null;
      try {
        index = m.saveIndex();
      } catch {
        // Nothing indexed yet: the gallery being indexed is resumed on the new model by its own retry.
      }
      void m.dispose();
      let last: unknown;
      for (let attempt = 1; attempt <= 3; attempt++) {
        try {
          const m2 = await SketchGPU.load(this.options);
          if (index) await m2.loadIndex(index, 'the gallery index', { photos: this.photos });
          this.generation++;
          this.use(m2);
          this.recovering = null;
          this.events.onRecovered?.(m2);
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

  requireModel(): SketchGPU {
    if (!this.model || this.recovering) throw new SketchError('DEVICE_LOST', 'The GPU device is being recreated.', 'Try again in a moment.');
    return this.model;
  }

  /** Runs `fn` on the model, and again (up to 3 times) on the new one when it failed because the device was lost. */
  async retrying<T>(fn: (m: SketchGPU) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.recovering) await this.recovering;
      const m = this.requireModel();
      try {
        return await fn(m);
      } catch (e) {
        if (!(isSketchError(e) && e.code === 'DEVICE_LOST') || attempt >= 3) throw e;
        // The loss is known to the model before its deviceLost handlers (this.lost) have run: wait for them.
        if (m === this.model) await Promise.race([m.deviceLost, sleep(1000)]);
        await sleep(0);
      }
    }
  }

  /** For tests: lose the device as a driver reset would. Resolves when a new model is in place. */
  async loseDevice(): Promise<void> {
    const gen = this.generation;
    this.requireModel().loseDevice();
    while (this.generation === gen) {
      await sleep(50);
      if (this.recovering) await this.recovering;
    }
  }
}
