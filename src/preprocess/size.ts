import { SketchError } from '../core/errors.ts';

/** Input resolutions are whole pixels; the model configs use 224 (ViT-B/16), 112 or 64. */
export function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw new SketchError('BAD_ARGUMENT', `preprocessing size must be an integer from 1 to 4096, got ${size}`,
      'Use the input resolution of the model config (224 for ZSE-SBIR).');
  }
}
