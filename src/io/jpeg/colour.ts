import { type Component, JpegError, type JpegImage } from './types.ts';

/**
 * jdsample.c with do_fancy_upsampling: bring one component to full resolution (width x height, tightly packed).
 * The context row above the first row and below the last real row (downsampledHeight - 1) is a copy of that row
 * (jdmainct.c make_funny_pointers / set_bottom_pointers); columns stop at downsampledWidth likewise.
 */
export function upsample(
  src: { plane: Uint8Array; stride: number },
  c: Component,
  width: number,
  height: number,
  maxH: number,
  maxV: number,
): Uint8Array {
  const { plane, stride } = src;
  const dw = c.downsampledWidth;
  const dh = c.downsampledHeight;
  const out = new Uint8Array(width * height);
  const hExp = maxH / c.h;
  const vExp = maxV / c.v;
  if (!Number.isInteger(hExp) || !Number.isInteger(vExp)) {
    throw new JpegError('unsupported', 'JPEG with fractional sampling ratios');
  }
  const row = (y: number): number => Math.min(Math.max(y, 0), dh - 1) * stride;
  if (hExp === 1 && vExp === 1) {
    for (let y = 0; y < height; y++) out.set(plane.subarray(y * stride, y * stride + width), y * width);
    return out;
  }
  const line = new Uint8Array(2 * dw + 2);
  if (hExp === 2 && vExp === 1 && dw > 2) {
    // h2v1_fancy_upsample: 3/4 nearer + 1/4 further, biases +1 (left output) and +2 (right output).
    for (let y = 0; y < height; y++) {
      const r = y * stride;
      line[0] = plane[r];
      line[1] = (plane[r] * 3 + plane[r + 1] + 2) >> 2;
      for (let i = 1; i < dw - 1; i++) {
        const v = plane[r + i] * 3;
        line[2 * i] = (v + plane[r + i - 1] + 1) >> 2;
        line[2 * i + 1] = (v + plane[r + i + 1] + 2) >> 2;
      }
      const last = dw - 1;
      line[2 * last] = (plane[r + last] * 3 + plane[r + last - 1] + 1) >> 2;
      line[2 * last + 1] = plane[r + last];
      out.set(line.subarray(0, width), y * width);
    }
    return out;
  }
  if (hExp === 1 && vExp === 2) {
    // h1v2_fancy_upsample: vertical triangle filter, bias 1 for the upper output row, 2 for the lower.
    for (let y = 0; y < height; y++) {
      const i = y >> 1;
      const near = row(i);
      const far = (y & 1) === 0 ? row(i - 1) : row(i + 1);
      const bias = (y & 1) === 0 ? 1 : 2;
      for (let x = 0; x < width; x++) out[y * width + x] = (plane[near + x] * 3 + plane[far + x] + bias) >> 2;
    }
    return out;
  }
  if (hExp === 2 && vExp === 2 && dw > 2) {
    // h2v2_fancy_upsample: column sums of 3*nearer row + further row, then the horizontal triangle with
    // biases 8 and 7 over 16.
    const sums = new Int32Array(dw);
    for (let y = 0; y < height; y++) {
      const i = y >> 1;
      const near = row(i);
      const far = (y & 1) === 0 ? row(i - 1) : row(i + 1);
      for (let x = 0; x < dw; x++) sums[x] = plane[near + x] * 3 + plane[far + x];
      line[0] = (sums[0] * 4 + 8) >> 4;
      line[1] = (sums[0] * 3 + sums[1] + 7) >> 4;
      for (let x = 1; x < dw - 1; x++) {
        line[2 * x] = (sums[x] * 3 + sums[x - 1] + 8) >> 4;
        line[2 * x + 1] = (sums[x] * 3 + sums[x + 1] + 7) >> 4;
      }
      const last = dw - 1;
      line[2 * last] = (sums[last] * 3 + sums[last - 1] + 8) >> 4;
      line[2 * last + 1] = (sums[last] * 4 + 7) >> 4;
      out.set(line.subarray(0, width), y * width);
    }
    return out;
  }
  // h2v1_upsample / h2v2_upsample (narrow images) and int_upsample: plain replication.
  for (let y = 0; y < height; y++) {
    const r = Math.floor(y / vExp) * stride;
    for (let x = 0; x < width; x++) out[y * width + x] = plane[r + Math.floor(x / hExp)];
  }
  return out;
}

// jdcolor.c build_ycc_rgb_table (SCALEBITS 16).
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  // RIGHT_SHIFT(FIX(1.40200) * x + ONE_HALF, 16) with FIX(1.40200) = 91881, FIX(1.77200) = 116130.
  CR_R[i] = Math.floor((91881 * x + 32768) / 65536);
  CB_B[i] = Math.floor((116130 * x + 32768) / 65536);
  CR_G[i] = -46802 * x; // -FIX(0.71414) * x
  CB_G[i] = -22554 * x + 32768; // -FIX(0.34414) * x + ONE_HALF
}
const clamp8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

export function colorConvert(planes: Uint8Array[], width: number, height: number, cs: JpegImage['jpegColorSpace']): Uint8Array {
  const n = width * height;
  if (cs === 'gray') return planes[0];
  const nc = planes.length;
  const out = new Uint8Array(n * nc);
  if (cs === 'rgb' || cs === 'cmyk') {
    for (let i = 0; i < n; i++) for (let k = 0; k < nc; k++) out[i * nc + k] = planes[k][i];
    return out;
  }
  const [Y, Cb, Cr] = planes;
  if (cs === 'ycbcr') {
    for (let i = 0; i < n; i++) {
      const y = Y[i];
      const cb = Cb[i];
      const cr = Cr[i];
      out[i * 3] = clamp8(y + CR_R[cr]);
      out[i * 3 + 1] = clamp8(y + ((CB_G[cb] + CR_G[cr]) >> 16));
      out[i * 3 + 2] = clamp8(y + CB_B[cb]);
    }
    return out;
  }
  // ycck_cmyk_convert: CMY = 255 - RGB of the YCbCr part; K passes through.
  const K = planes[3];
  for (let i = 0; i < n; i++) {
    const y = Y[i];
    const cb = Cb[i];
    const cr = Cr[i];
    out[i * 4] = clamp8(255 - (y + CR_R[cr]));
    out[i * 4 + 1] = clamp8(255 - (y + ((CB_G[cb] + CR_G[cr]) >> 16)));
    out[i * 4 + 2] = clamp8(255 - (y + CB_B[cb]));
    out[i * 4 + 3] = K[i];
  }
  return out;
}
