/**
 * The embedding API in the browser: `SketchGPU.load()` on `navigator.gpu`. Images are URLs (fetched), `Blob`s and
 * `File`s, `ImageBitmap`s, `ImageData`, canvases and `<img>` elements, PNG/JPEG bytes or raw RGBA pixels. URLs, Blobs
 * and bytes are decoded by the engine's own PNG/JPEG decoders, as in Node, so their results equal the CLI's.
 */
import { SketchError } from '../core/errors.ts';
import { browserGpu } from '../gpu/browser.ts';
import { decodeImage, type DecodedImage } from '../io/image.ts';
import { weightsHash } from '../io/weights-hash.ts';
import { parseModelWeights } from '../models/load.ts';
import { imageFromRgba } from '../retrieval/index-photos.ts';
import { ClipTokenizer } from '../text/clip-tokenizer.ts';
import { commonImage, SketchGPUModel, type LoadOptions, type Platform, type RawImage, type WeightsSource } from './core.ts';

/**
 * An image in the browser.
 *
 * @example
 * ```ts
 * await m.embedSketch(canvas);                    // what the user drew
 * await m.embedPhoto(fileInput.files[0]);         // a File (a Blob)
 * await m.embedPhoto('photos/cat.jpg');           // a URL, fetched
 * await m.search(await m.modelInput(canvas, 'sketch'));   // already preprocessed (every call takes a ModelInput too)
 * ```
 */
export type BrowserImage =
  | string | URL | Uint8Array | ArrayBuffer | RawImage
  | Blob | ImageBitmap | ImageData | HTMLCanvasElement | OffscreenCanvas | HTMLImageElement;

/**
 * The weights shipped in the package (`sketchgpu/weights/...`): `zse`, ZSE-SBIR small (the default).
 *
 * @example
 * ```ts
 * const url = `/node_modules/sketchgpu/weights/${BUNDLED_WEIGHTS.zse}`;
 * ```
 */
export const BUNDLED_WEIGHTS = {
  zse: 'zse-sketchy104-small.safetensors',
} as const;

/**
 * The URL of a bundled weights file: the package's `weights/` folder, beside `dist/browser/` (served as the package
 * is laid out, or rewritten by a bundler that understands `new URL(..., import.meta.url)`).
 *
 * @example
 * ```ts
 * const m = await SketchGPU.load({ weights: bundledWeights('zse') });
 * ```
 */
export function bundledWeights(which: keyof typeof BUNDLED_WEIGHTS = 'zse'): URL {
  return new URL(`../../weights/${BUNDLED_WEIGHTS[which]}`, import.meta.url);
}

async function fetchBytes(url: string | URL, what: string, onProgress?: (loaded: number, total: number) => void): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new SketchError('IO', `${what} ${String(url)} could not be fetched: ${(e as Error).message}`, 'Check the URL and that the server allows the request (CORS).', { cause: e });
  }
  if (!res.ok) throw new SketchError('IO', `${what} ${String(url)} could not be fetched: HTTP ${res.status}`, 'Check the URL.');
  if (!onProgress || !res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress?.(bytes.length, bytes.length);
    return bytes;
  }
  const total = Number(res.headers.get('content-length') ?? 0);
  const chunks: Uint8Array[] = [];
  let got = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onProgress(got, total);
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  onProgress(got, got);
  return out;
}

const bytesOf = (b: Uint8Array | ArrayBuffer) => (b instanceof ArrayBuffer ? new Uint8Array(b) : b);

/** Pixels of anything a 2-D canvas can draw (ImageBitmap, a canvas, an <img>). */
function drawn(src: CanvasImageSource & { width: number; height: number }, what: string): DecodedImage {
  const w = 'naturalWidth' in src ? (src as HTMLImageElement).naturalWidth : src.width;
  const h = 'naturalHeight' in src ? (src as HTMLImageElement).naturalHeight : src.height;
  if (!(w > 0 && h > 0)) throw new SketchError('BAD_IMAGE', `${what} has no pixels (${w}x${h})`, 'Wait until the image has loaded, or draw something first.');
  const c = new OffscreenCanvas(w, h);
  const g = c.getContext('2d')!;
  g.drawImage(src, 0, 0);
  return imageFromRgba(g.getImageData(0, 0, w, h).data, w, h, what);
}

const has = (name: string) => typeof (globalThis as Record<string, unknown>)[name] === 'function';

const browserPlatform: Platform<BrowserImage> = {
  async gpu() {
    const ctx = await browserGpu();
    return { ctx, release: () => ctx.destroy() };
  },
  async weights(source: WeightsSource | undefined, o) {
    const url = source === undefined ? bundledWeights('zse') : source instanceof Uint8Array || source instanceof ArrayBuffer ? null : source;
    const bytes = url === null ? bytesOf(source as Uint8Array | ArrayBuffer) : await fetchBytes(url, 'the weights', o.onProgress);
    if (url === null) o.onProgress?.(bytes.length, bytes.length);
    const name = url === null ? 'bytes' : String(url);
    const loaded = parseModelWeights(bytes, name.split('/').pop() || name, { model: o.model, saHeads: o.saHeads, caHeads: o.caHeads });
    return { loaded, sha256: weightsHash(loaded.weights.tensors), name };
  },
  async image(input, what) {
    const common = commonImage(input, what);
    if (common) return common;
    if (typeof input === 'string' || input instanceof URL) return decodeImage(await fetchBytes(input, 'the image'), String(input).split('/').pop());
    if (has('Blob') && input instanceof Blob) return decodeImage(new Uint8Array(await input.arrayBuffer()), (input as File).name ?? what);
    if ((has('ImageBitmap') && input instanceof ImageBitmap) || (has('OffscreenCanvas') && input instanceof OffscreenCanvas)
      || (has('HTMLCanvasElement') && input instanceof HTMLCanvasElement) || (has('HTMLImageElement') && input instanceof HTMLImageElement)) {
      return drawn(input, what);
    }
    throw new SketchError('BAD_ARGUMENT', `${what} is not an image: ${Object.prototype.toString.call(input)}`,
      'Pass a URL, a Blob or File, an ImageBitmap, ImageData, a canvas, an <img>, PNG/JPEG bytes or raw RGBA pixels { data, width, height }.');
  },
  async tokenizer(vocab) {
    if (vocab === undefined) {
      throw new SketchError('BAD_ARGUMENT', 'text queries need CLIP\'s vocabulary, and no `vocab` was given to SketchGPU.load',
        'Pass { vocab: <URL or bytes of bpe_simple_vocab_16e6.txt.gz> } to SketchGPU.load.');
    }
    return ClipTokenizer.fromBytes(vocab instanceof Uint8Array || vocab instanceof ArrayBuffer ? bytesOf(vocab) : await fetchBytes(vocab, 'the CLIP vocabulary'));
  },
  nameOf(input) {
    return typeof input === 'string' ? input : input instanceof URL ? input.href : (has('File') && input instanceof File) ? input.name : null;
  },
};

/**
 * sketchgpu in the browser: one model (ZSE-SBIR or CAAN) on WebGPU, with an in-memory photo index. The same calls
 * as in Node.
 *
 * @example
 * ```ts
 * import { SketchGPU } from 'sketchgpu/browser';
 *
 * const m = await SketchGPU.load();                          // the bundled weights, fetched beside the bundle
 * await m.index(['photos/cat.jpg', 'photos/dog.jpg']);
 * const hits = await m.search(canvas, { k: 5 });
 * ```
 */
export class SketchGPU extends SketchGPUModel<BrowserImage> {
  /**
   * Fetches weights (default: the bundled ZSE-SBIR weights) and uploads them to a WebGPU device of its own.
   *
   * @example
   * ```ts
   * const m = await SketchGPU.load({ weights: '/models/zse.safetensors' });
   * ```
   */
  static async load(options: LoadOptions = {}): Promise<SketchGPU> {
    const o = await SketchGPUModel.open(browserPlatform, options);
    return new SketchGPU(o.platform, o.model, o.device, o.info, o.identity);
  }

  /**
   * Destroys this model's own device as a driver reset would (as WebGL's `WEBGL_lose_context` does for a context), so
   * an app can test its recovery: `deviceLost` resolves with reason 'destroyed' and later calls reject with
   * `DEVICE_LOST`.
   *
   * @example
   * ```ts
   * m.deviceLost.then(() => console.log('lost; reloading'));
   * m.loseDevice();
   * ```
   */
  loseDevice(): void {
    this.model.ctx.destroy();
  }
}

/**
 * Reads an image as the model will (URLs, Blobs and bytes through the engine's PNG/JPEG decoders), without a model:
 * to check a file the user picked before it is used. A file that is not PNG or JPEG, or is damaged, is a `BAD_IMAGE`
 * SketchError that names it and says what to do.
 *
 * @example
 * ```ts
 * try { await checkImage(file); } catch (e) { alert(`${e.message}: ${e.hint}`); }
 * ```
 */
export async function checkImage(input: BrowserImage, name?: string): Promise<{ width: number; height: number }> {
  const what = name ?? browserPlatform.nameOf(input) ?? 'the image';
  const img = await browserPlatform.image(input, what);
  return { width: img.width, height: img.height };
}
