/**
 * Node-only: sketch decoding and preprocessing for the search server, on worker threads. Each query's sketch is
 * decoded and preprocessed on the CPU before its batch (2.3 ms for a 256 px PNG on one core of the CI machine); on
 * the server's main thread that caps a GPU server near 430 sketches/s, so `DecodePool` spreads it over threads. A
 * worker runs exactly what `SketchGPU.modelInput(bytes, 'sketch')` runs (decodeImage, the alpha warning,
 * preprocessSketch: `decodeSketchInput` below), so its model input is the same bit for bit (tested).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SketchError, type ErrorCode } from '../core/errors.ts';
import { decodeImage } from '../io/image.ts';
import { preprocessSketch, sketchAlphaWarning } from '../preprocess/index.ts';

/** A sketch file's model input [3, S, S] and the alpha warning `modelInput` would give (null when none). */
export function decodeSketchInput(bytes: Uint8Array, size: number, name: string): { data: Float32Array; warning: string | null } {
  const img = decodeImage(bytes, name);
  return { warning: sketchAlphaWarning(img), data: preprocessSketch(img, size) };
}

interface Job { resolve: (r: { data: Float32Array; warning: string | null }) => void; reject: (e: unknown) => void }
interface Slot { worker: Worker; jobs: Map<number, Job> }

/**
 * The worker module beside this one: decode-worker.ts in the sources (tests run them through tsx, whose loader the
 * workers inherit), decode-worker.js beside the bundle in dist/node/. Null where it is not there (another bundle):
 * the pool then decodes on the calling thread.
 */
function workerFile(): URL | null {
  const here = import.meta.url;
  const names = here.endsWith('.ts') ? ['decode-worker.ts'] : ['decode-worker.js', 'decode-worker.mjs'];
  for (const n of names) {
    const url = new URL(`./${n}`, here);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return null;
}

/**
 * A worker on `file`. The sources' .ts module goes through tsx's loader, which a worker thread does not inherit from
 * the `--import tsx` of its process on Node 20 (the tests run the sources that way); the bundle's .js loads as is.
 */
function startWorker(file: URL): Worker {
  if (!file.pathname.endsWith('.ts')) return new Worker(file);
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(file.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
}

export class DecodePool {
  private slots: Slot[] = [];
  private next = 0;
  private seq = 0;
  private closed = false;
  private readonly file: URL | null;

  /** `threads` workers (0: decode on the calling thread). */
  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 0 || threads > 256) throw new SketchError('BAD_ARGUMENT', `decode threads must be an integer from 0 to 256, not ${threads}`, 'e.g. 4.');
    this.file = threads > 0 ? workerFile() : null;
    if (this.file) for (let i = 0; i < threads; i++) this.slots.push(this.spawn());
  }

  /** Whether decoding runs on worker threads (false: on the calling thread). */
  get onWorkers(): boolean {
    return this.slots.length > 0;
  }

  private spawn(): Slot {
    const slot: Slot = { worker: startWorker(this.file!), jobs: new Map() };
    slot.worker.unref();
    slot.worker.on('message', (m: { id: number; data?: Float32Array; warning?: string | null; error?: { code?: ErrorCode; message: string; hint?: string } }) => {
      const job = slot.jobs.get(m.id);
      if (!job) return;
      slot.jobs.delete(m.id);
      if (m.error) job.reject(m.error.code ? new SketchError(m.error.code, m.error.message, m.error.hint ?? '') : new Error(m.error.message));
      else job.resolve({ data: m.data!, warning: m.warning ?? null });
    });
    const fail = (why: string) => {
      for (const job of slot.jobs.values()) job.reject(new Error(`the decoding thread ${why}`));
      slot.jobs.clear();
      const i = this.slots.indexOf(slot);
      if (i >= 0 && !this.closed) this.slots[i] = this.spawn(); // a fresh one for the next sketches
    };
    slot.worker.on('error', (e) => fail(`failed: ${e.message}`));
    slot.worker.on('exit', (code) => { if (!this.closed) fail(`exited (${code})`); });
    return slot;
  }

  /** The sketch's model input, decoded on the least busy worker (or here). */
  async sketch(bytes: Uint8Array, size: number, name: string): Promise<{ data: Float32Array; warning: string | null }> {
    if (this.closed) throw new SketchError('BUSY', 'the decoder is closed', 'Retry on a running server.');
    if (!this.slots.length) return decodeSketchInput(bytes, size, name);
    let slot = this.slots[this.next++ % this.slots.length]!;
    for (const s of this.slots) if (s.jobs.size < slot.jobs.size) slot = s;
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject });
      slot.worker.ref();
      slot.worker.postMessage({ id, bytes, size, name });
    }).finally(() => { if (!slot.jobs.size) slot.worker.unref(); }) as Promise<{ data: Float32Array; warning: string | null }>;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots = [];
  }
}
