import { basename } from 'node:path';
import { ModelInput } from '../api/core.ts';
import type { SketchGPU } from '../api/node.ts';
import { SketchError } from '../core/errors.ts';
import { readNpy } from '../io/npy.ts';
import { FILE_LIMITS, readBoundedFile } from '../io/read-file.ts';

export type Modality = 'sketch' | 'photo';

export function parseModality(v: string): Modality {
  if (v !== 'sketch' && v !== 'photo') throw new SketchError('BAD_ARGUMENT', `--modality must be "sketch" or "photo", not "${v}"`, 'Pass --modality sketch or --modality photo.');
  return v;
}

/**
 * Model inputs from the command line, in order: a PNG/JPEG file is decoded and preprocessed by the model
 * (`modelInput`, as the reference does, zse-sbir.md §5); a .npy holds already-normalised float32 [3,S,S] or
 * [N,3,S,S], which the model checks and takes as it is. Each file is read and checked before the next.
 */
export async function loadInputs(m: SketchGPU, paths: string[], modality: Modality): Promise<{ data: Float32Array; n: number; names: string[] }> {
  const size = m.info.imageSize;
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
      // The model refuses values outside the normalised range (NaN, raw 0-255 pixels), naming the file.
      parts.push(ModelInput.fromTensor(t.data as Float32Array, modality, size, basename(path)).data);
      for (let i = 0; i < n; i++) names.push(n === 1 ? path : `${path}[${i}]`);
    } else {
      parts.push((await m.modelInput(bytes, modality, { name: basename(path) })).data);
      names.push(path);
    }
  }
  const data = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { data, n: names.length, names };
}
