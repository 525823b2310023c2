import { SketchError } from '../core/errors.ts';

/**
 * How far outside [-1, 1] a model input may stray: normalised pixels lie in [-1, 1] exactly (zse-sbir.md §5), so a
 * value beyond this is not a preprocessed image but something else (raw 0-255 pixels, a wrong file, 1e30).
 */
export const INPUT_RANGE_SLACK = 0.01;

/**
 * Refuses a preprocessed model input (a .npy, an API tensor) holding NaN, an infinity, or values far outside the
 * normalised range, naming the first; `px` is the values per image (3·S·S).
 */
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
