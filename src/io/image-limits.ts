/**
 * The largest image sketchgpu decodes (docs/reliability.md). A PNG or JPEG header names any size up to 2^31 per
 * side, and a few KB of compressed zeros can fill it, so both decoders check the header against these bounds before
 * allocating: each side, and the decoded samples in bytes (pixels x channels x bytes per sample, so a 16-bit RGBA
 * PNG counts 8 bytes a pixel). The model sees 224 px; a 33-megapixel RGB photo (96 MiB decoded) still passes, and
 * decodes and preprocesses within 10 s and 1 GiB on 2 shared cores (docs/reliability.md).
 */
export const MAX_IMAGE_SIDE = 32768;
export const MAX_DECODED_BYTES = 96 * 2 ** 20;

/** Why an image of this header is refused, or null when it is within the bounds. */
export function imageTooLarge(width: number, height: number, channels: number, bitDepth: number): string | null {
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    return `an image of ${width}x${height} pixels is larger than sketchgpu decodes (at most ${MAX_IMAGE_SIDE} pixels a side)`;
  }
  const bytes = width * height * channels * (bitDepth > 8 ? 2 : 1);
  if (bytes > MAX_DECODED_BYTES) {
    return `an image of ${width}x${height} pixels, ${channels} channel${channels > 1 ? 's' : ''} of ${bitDepth > 8 ? 16 : 8} bits, decodes to ${(bytes / 2 ** 20).toFixed(0)} MiB, more than sketchgpu decodes (${MAX_DECODED_BYTES / 2 ** 20} MiB)`;
  }
  return null;
}
