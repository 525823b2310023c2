/**
 * Browser-safe gallery building and sketch input, the in-memory counterparts of the Node-only indexer.ts and
 * files.ts: photos come as bytes (fetch, File, IndexedDB ...) instead of paths on disk, and the result is the same
 * `GalleryIndex` that index-format.ts serializes, so an index built in a page can be saved with `serializeIndex` and
 * read back with `parseIndex` (or by the CLI), and vice versa.
 *
 * The arithmetic is the CLI's: photos are decoded by the engine's own decoders (`decodeImage`) and go through
 * `preprocessPhoto`; sketches through `preprocessSketch`; rows are sorted by relative path (code-unit order) as
 * `sketchgpu index` sorts them, so ties in a search break the same way.
 */
import { SketchError, isSketchError } from '../core/errors.ts';
import { decodeImage, type DecodedImage } from '../io/image.ts';
import type { HostTensor } from '../core/tensor.ts';
import type { CaanConfig } from '../models/caan/config.ts';
import type { ZseConfig } from '../models/zse/config.ts';
import { preprocessPhoto } from '../preprocess/index.ts';
import type { GalleryIndex, ModelIdentity } from './index-format.ts';
import { asRetrievalModel, type AnyModel } from './model.ts';
import { weightsHash } from '../io/weights-hash.ts';

/** Image files in a gallery: .png, .jpg, .jpeg (as `sketchgpu index` picks them). */
export const GALLERY_IMAGE_EXT = /\.(png|jpe?g)$/i;

/**
 * One photo of a gallery: its '/'-separated path relative to the gallery root, and a way to get its bytes (PNG or
 * JPEG, decoded here) or its decoded pixels.
 */
export interface PhotoSource {
  path: string;
  load(): Promise<Uint8Array | DecodedImage>;
}

export interface IndexPhotosOptions {
  /** The weights' identity, stored in the index (see `modelIdentity`). */
  identity: ModelIdentity;
  /** Recorded as `sketchgpu.index.weights` (a URL or file name in the browser). */
  weightsName?: string;
  /** Recorded as `sketchgpu.index.root`. */
  root?: string;
  /** Images per GPU forward (default 8, at most the model's maxBatch). */
  batch?: number;
  /** Embeddings already computed (a resumed run, e.g. after a lost device): these photos are not embedded again. */
  done?: Map<string, Float32Array>;
  /** Called with each embedded photo (so a caller can keep `done` for a resume). */
  onEmbedded?: (path: string, emb: Float32Array) => void;
  onProgress?: (done: number, total: number, skipped: number) => void;
  /** Runs each GPU forward; lets a page serialize GPU work with its queries. Default: call it directly. */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Checked between batches; when aborted the build throws the signal's reason. */
  signal?: AbortSignal;
}

/**
 * The identity of a model for index metadata: the same SHA-256 that Node's `weightsHash` computes, and the family of
 * the config (a CAAN config has `image` and `text` sections, a ZSE-SBIR one has neither).
 */
export function modelIdentity(tensors: ReadonlyMap<string, HostTensor>, config: ZseConfig | CaanConfig): ModelIdentity {
  const weights_sha256 = weightsHash(tensors);
  return 'image' in config ? { family: 'caan', weights_sha256, config } : { family: 'zse-sbir', weights_sha256, config };
}

const yieldToUi = () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * Embed a gallery of photos into a `GalleryIndex` (f32, no token cache) with the model's photo encoder (ZSE-SBIR's
 * one encoder, CAAN's photo tower). Unreadable images are skipped and listed in `skipped` with the reason, as the CLI
 * does; an empty result is an EMPTY_GALLERY error.
 */
export async function indexPhotos(anyModel: AnyModel, photos: PhotoSource[], o: IndexPhotosOptions): Promise<GalleryIndex> {
  const model = asRetrievalModel(anyModel);
  const { dim: D, imageSize: S } = model;
  const px = 3 * S * S;
  const byPath = new Map(photos.map((p) => [p.path, p]));
  const paths = [...byPath.keys()].sort();
  const done = o.done ?? new Map<string, Float32Array>();
  const skipped: [string, string][] = [];
  const todo = paths.filter((p) => !done.has(p));
  const B = Math.max(1, Math.min(o.batch ?? 8, model.maxBatch));
  const run = o.exclusive ?? (<T>(fn: () => Promise<T>) => fn());
  const report = () => o.onProgress?.(paths.filter((p) => done.has(p)).length + skipped.length, paths.length, skipped.length);
  report();

  const prepare = async (batch: string[]) => {
    const data = new Float32Array(batch.length * px);
    const ok: string[] = [];
    for (const p of batch) {
      try {
        const src = await byPath.get(p)!.load();
        const img = src instanceof Uint8Array ? decodeImage(src, p.split('/').pop()) : src;
        data.set(preprocessPhoto(img, S), ok.length * px);
        ok.push(p);
      } catch (e) {
        skipped.push([p, isSketchError(e) ? e.message : (e as Error).message]);
      }
      await yieldToUi();
    }
    return { data: data.subarray(0, ok.length * px), ok };
  };
  // Decode batch i+1 while the GPU encodes batch i.
  let next = todo.length ? prepare(todo.slice(0, B)) : null;
  for (let i = 0; i < todo.length; i += B) {
    o.signal?.throwIfAborted();
    const cur = await next!;
    const enc = cur.ok.length ? run(() => model.embed(cur.data, cur.ok.length, 'photo')) : Promise.resolve(null);
    next = i + B < todo.length ? prepare(todo.slice(i + B, i + 2 * B)) : null;
    next?.catch(() => undefined); // surfaced when awaited
    let r;
    try {
      r = await enc;
    } catch (e) {
      await next?.catch(() => undefined);
      throw e;
    }
    cur.ok.forEach((p, k) => {
      const emb = r!.emb.slice(k * D, (k + 1) * D);
      done.set(p, emb);
      o.onEmbedded?.(p, emb);
    });
    report();
  }
  const kept = paths.filter((p) => done.has(p));
  if (kept.length === 0) {
    throw new SketchError('EMPTY_GALLERY', `none of the ${paths.length} images could be read`,
      skipped.length ? `The first error: ${skipped[0]![0]}: ${skipped[0]![1]}` : 'Pick a folder with .png or .jpg photos.');
  }
  const embeddings = new Float32Array(kept.length * D);
  kept.forEach((p, i) => embeddings.set(done.get(p)!, i * D));
  return {
    model: o.identity, weightsPath: o.weightsName ?? '', root: o.root ?? '', paths: kept, dim: D, dtype: 'f32', embeddings,
    skipped, created: new Date().toISOString(),
  };
}

/**
 * RGBA pixels (a canvas's `getImageData().data`) as the `DecodedImage` an RGBA PNG of the same pixels decodes to, so
 * `preprocessSketch(imageFromRgba(...))` equals the CLI's preprocessing of the canvas saved as PNG.
 */
export function imageFromRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, name = 'drawing'): DecodedImage {
  if (rgba.length !== width * height * 4) throw new RangeError(`expected ${width}x${height}x4 bytes, got ${rgba.length}`);
  const data = rgba instanceof Uint8Array ? rgba : new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return { format: 'png', width, height, mode: 'RGBA', channels: 4, data, bitDepth: 8, name };
}
