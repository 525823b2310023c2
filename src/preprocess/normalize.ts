/**
 * torchvision `ToTensor()` + `Normalize([0.5]*3, [0.5]*3)` (zse-sbir.md §5): HWC uint8 to CHW float32 in [-1, 1].
 * torch computes x.float().div(255), then .sub(0.5).div(0.5), each rounded to float32; a uint8 input has only 256
 * possible outputs, so they are tabulated once with the same three roundings.
 */
export const NORMALIZE_LUT: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5);
  return t;
})();

/** HWC RGB uint8 (size x size x 3) to a CHW Float32Array [3, size, size]. */
export function toNormalizedCHW(hwc: Uint8Array, size: number): Float32Array {
  const n = size * size;
  if (hwc.length !== n * 3) throw new RangeError(`expected ${n * 3} bytes for ${size}x${size}x3, got ${hwc.length}`);
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = NORMALIZE_LUT[hwc[i * 3]];
    out[n + i] = NORMALIZE_LUT[hwc[i * 3 + 1]];
    out[2 * n + i] = NORMALIZE_LUT[hwc[i * 3 + 2]];
  }
  return out;
}
