import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SketchError } from '../errors.ts';
import { decodeImage } from '../io/image.ts';
import { readNpy } from '../io/npy.ts';
import { preprocessPhoto, preprocessSketch } from '../preprocess/index.ts';

export type Modality = 'sketch' | 'photo';

export function parseModality(v: string): Modality {
  if (v !== 'sketch' && v !== 'photo') throw new SketchError('BAD_ARGUMENT', `--modality must be "sketch" or "photo", not "${v}"`);
  return v;
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
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new SketchError('IO', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'Check the path.');
    }
    if (bytes.length >= 6 && bytes[0] === 0x93 && String.fromCharCode(...bytes.subarray(1, 6)) === 'NUMPY') {
      const t = readNpy(bytes, basename(path));
      const shape = t.shape;
      const ok = t.dtype === 'f32' && ((shape.length === 3 && shape[0] === 3 && shape[1] === size && shape[2] === size) || (shape.length === 4 && shape[1] === 3 && shape[2] === size && shape[3] === size));
      if (!ok) {
        throw new SketchError('BAD_NPY', `${basename(path)} holds ${t.dtype} [${shape.join(',')}], but the model takes float32 [3,${size},${size}] or [N,3,${size},${size}]`, `Write it with sketchgpu preprocess, or save float32 arrays normalised to [-1,1] of that shape.`);
      }
      const n = shape.length === 3 ? 1 : shape[0]!;
      parts.push(t.data as Float32Array);
      for (let i = 0; i < n; i++) names.push(n === 1 ? path : `${path}[${i}]`);
    } else {
      const img = decodeImage(bytes, basename(path));
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
