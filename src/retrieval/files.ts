/** Node-only: encode image files in GPU batches, decoding the next batch while the GPU runs. */
import { basename } from 'node:path';
import { SketchError, isSketchError } from '../core/errors.ts';
import { decodeImage } from '../io/image.ts';
import { readBoundedFile } from '../io/read-file.ts';
import { preprocessPhoto, preprocessSketch, sketchAlphaWarning } from '../preprocess/index.ts';
import { asRetrievalModel, type AnyModel } from './model.ts';

export type Modality = 'sketch' | 'photo';

/**
 * How the retrieval machinery (encodeFiles, embedPhotos, and through them index, query, eval) turns image files into
 * model inputs and embeddings. Without one it is the engine's own: `loadModelInput` and the model's `embed`. The CLI
 * passes the public API's (`SketchGPU.preprocessImage`, `embedSketch` / `embedPhoto`), so a command and a library
 * user share one path into the model.
 */
export interface ImageEncoder {
  /** One image file's model input, float32 [3, S, S]; throws a SketchError naming the file when it cannot. */
  load(file: string, modality: Modality): Promise<Float32Array>;
  /** Global embeddings [n, dim] of n model inputs [n, 3, S, S], and their tokens [n, T, dim] when asked. */
  embed(images: Float32Array, n: number, modality: Modality, o: { tokens?: boolean }): Promise<{ emb: Float32Array; tokens?: Float32Array }>;
}

export async function loadModelInput(file: string, modality: Modality, size: number): Promise<Float32Array> {
  const bytes = await readBoundedFile(file, 'image');
  try {
    const img = decodeImage(bytes, basename(file));
    const warning = modality === 'sketch' ? sketchAlphaWarning(img) : null;
    if (warning) console.error(`warning: ${warning}`);
    return modality === 'sketch' ? preprocessSketch(img, size) : preprocessPhoto(img, size);
  } catch (e) {
    if (isSketchError(e) && !e.message.includes(file)) throw new SketchError(e.code, `${file}: ${e.message}`, e.hint, { cause: e });
    throw e;
  }
}

/**
 * Global embeddings (and tokens when asked) of image files, in order, through the modality's tower. Any unreadable
 * file is an error naming it.
 */
export async function encodeFiles(anyModel: AnyModel, files: string[], modality: Modality,
  o: { tokens?: boolean; onProgress?: (done: number) => void; encoder?: ImageEncoder } = {}): Promise<{ emb: Float32Array; tokens?: Float32Array }> {
  const model = asRetrievalModel(anyModel);
  const { dim: D, imageSize: S } = model;
  const px = 3 * S * S;
  const row = model.tokens * D;
  const B = model.maxBatch;
  const emb = new Float32Array(files.length * D);
  const tokens = o.tokens ? new Float32Array(files.length * row) : undefined;
  const prepare = async (from: number) => {
    const n = Math.min(B, files.length - from);
    const data = new Float32Array(n * px);
    for (let i = 0; i < n; i++) data.set(await (o.encoder ? o.encoder.load(files[from + i]!, modality) : loadModelInput(files[from + i]!, modality, S)), i * px);
    return data;
  };
  let next = files.length ? prepare(0) : null;
  for (let i = 0; i < files.length; i += B) {
    const data = await next!;
    const n = data.length / px;
    const run = o.encoder ? o.encoder.embed(data, n, modality, { tokens: o.tokens }) : model.embed(data, n, modality, { tokens: o.tokens });
    next = i + B < files.length ? prepare(i + B) : null;
    next?.catch(() => undefined); // surfaced when awaited
    const r = await run;
    emb.set(r.emb, i * D);
    if (tokens) tokens.set(r.tokens!, i * row);
    o.onProgress?.(i + n);
  }
  return { emb, tokens };
}
