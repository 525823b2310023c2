import { basename } from 'node:path';
import { SketchError } from '../core/errors.ts';
import { decodeImage } from '../io/image.ts';
import { readNpy } from '../io/npy.ts';
import { FILE_LIMITS, readBoundedFile } from '../io/read-file.ts';
import { preprocessPhoto, preprocessSketch, sketchAlphaWarning } from '../preprocess/index.ts';

export type Modality = 'sketch' | 'photo';

export function parseModality(v: string): Modality {
  if (v !== 'sketch' && v !== 'photo') throw new SketchError('BAD_ARGUMENT', `--modality must be "sketch" or "photo", not "${v}"`, 'Pass --modality sketch or --modality photo.');
  return v;
}

/**
 * How far outside [-1, 1] a model input may stray: normalised pixels lie in [-1, 1] exactly (zse-sbir.md §5), so a
 * value beyond this is not a preprocessed image but something else (raw 0-255 pixels, a wrong file, 1e30).
 */
export const INPUT_RANGE_SLACK = 0.01;

/** Refuses a .npy input holding NaN, an infinity, or values far outside the normalised range, naming the first. */
export function checkInputRange(x: Float32Array, name: string, px: number): void {
  const lim = 1 + INPUT_RANGE_SLACK;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v >= -lim && v <= lim) continue; // false for NaN too
    const where = `image ${Math.floor(i / px)}, element ${i % px}`;
    throw new SketchError('BAD_NPY',
      Number.isFinite(v) ? `${name} holds ${v} (${where}), far outside the [-1, 1] of a normalised image`
        : `${name} holds ${v} (${where}); model inputs must be finite numbers`,
      'Write model inputs with `sketchgpu preprocess`, or normalise pixels as (x / 255 - 0.5) / 0.5 before saving.');
  }
}

/**
 * Model inputs from the command line: a PNG/JPEG file is decoded and preprocessed as the reference does
 * (zse-sbir.md §5); a .npy holds already-normalised float32 [3,S,S] or [N,3,S,S].
 */
export async function loadInputs(paths: string[], modality: Modality, size: number): Promise<{ data: Float32Array; n: number; names: string[] }> {
  const px = 3 * size * size;
  const parts: Float32Array[] = [];
  const names: string[] = [];
  for (const path of paths) {
    // The larger of the two bounds first; an image is then held to its own (a .npy batch may be larger).
    const bytes = await readBoundedFile(path, 'npy');
    const isNpy = bytes.length >= 6 && bytes[0] === 0x93 && String.fromCharCode(...bytes.subarray(1, 6)) === 'NUMPY';
    if (!isNpy && bytes.length > FILE_LIMITS.image) await readBoundedFile(path, 'image'); // refuses, naming the bound
    if (isNpy) {
      const t = readNpy(bytes, basename(path));
      const shape = t.shape;
      const ok = t.dtype === 'f32' && ((shape.length === 3 && shape[0] === 3 && shape[1] === size && shape[2] === size) || (shape.length === 4 && shape[1] === 3 && shape[2] === size && shape[3] === size));
      if (!ok) {
        throw new SketchError('BAD_NPY', `${basename(path)} holds ${t.dtype} [${shape.join(',')}], but the model takes float32 [3,${size},${size}] or [N,3,${size},${size}]`, `Write it with sketchgpu preprocess, or save float32 arrays normalised to [-1,1] of that shape.`);
      }
      const n = shape.length === 3 ? 1 : shape[0]!;
      checkInputRange(t.data as Float32Array, basename(path), px);
      parts.push(t.data as Float32Array);
      for (let i = 0; i < n; i++) names.push(n === 1 ? path : `${path}[${i}]`);
    } else {
      const img = decodeImage(bytes, basename(path));
      const warning = modality === 'sketch' ? sketchAlphaWarning(img) : null;
      if (warning) console.error(`warning: ${warning}`);
      parts.push(modality === 'sketch' ? preprocessSketch(img, size) : preprocessPhoto(img, size));
      names.push(path);
    }
  }
  const data = new Float32Array(names.length * px);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, n: names.length, names };
}
