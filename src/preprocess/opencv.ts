/**
 * Bit-exact ports of what the sketch path (zse-sbir.md §5.2) runs inside OpenCV 4.6 (Debian's build: baseline
 * SSE2 universal intrinsics, no IPP): `cv2.imread` turning a decoded file into 3-channel BGR, and `cv2.resize`
 * with its default INTER_LINEAR on uint8 (imgproc/src/resize.cpp).
 */
import type { DecodedImage } from '../io/image.ts';

/**
 * `cv2.imread(p)` (IMREAD_COLOR) followed by `cvtColor(BGR2RGB)`: tightly packed RGB.
 * - grayscale is replicated, alpha is dropped without compositing (libpng png_set_strip_alpha);
 * - 16-bit PNG samples are cut to their high byte (png_set_strip_16);
 * - palette entries beyond PLTE read as black (libpng's zero-filled 256-entry palette);
 * - CMYK JPEGs go through icvCvt_CMYK2BGR_8u_C4C3R on libjpeg's (non-inverted) CMYK;
 * - the EXIF orientation is applied (imread's ApplyExifOrientation), unlike Pillow's open.
 */
export function cvImreadRGB(img: DecodedImage): { data: Uint8Array; width: number; height: number } {
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  const d = img.data;
  switch (img.mode) {
    case 'RGB':
      out.set(d.subarray(0, n * 3));
      break;
    case 'RGBA':
      for (let i = 0; i < n; i++) {
        out[i * 3] = d[i * 4];
        out[i * 3 + 1] = d[i * 4 + 1];
        out[i * 3 + 2] = d[i * 4 + 2];
      }
      break;
    case '1':
    case 'L':
    case 'I':
    case 'LA': {
      const cn = img.channels;
      for (let i = 0; i < n; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = d[i * cn];
      break;
    }
    case 'P': {
      const pal = img.palette!;
      const np = pal.length / 3;
      for (let i = 0; i < n; i++) {
        const p = d[i];
        if (p < np) {
          out[i * 3] = pal[p * 3];
          out[i * 3 + 1] = pal[p * 3 + 1];
          out[i * 3 + 2] = pal[p * 3 + 2];
        }
      }
      break;
    }
    case 'CMYK':
      for (let i = 0; i < n; i++) {
        // OpenCV sees libjpeg's raw CMYK, 255 minus the Pillow polarity that DecodedImage holds, and computes
        // c = k - ((255 - c) * k >> 8) on it.
        const k = 255 - d[i * 4 + 3];
        for (let c = 0; c < 3; c++) out[i * 3 + c] = k - ((d[i * 4 + c] * k) >> 8);
      }
      break;
  }
  return applyExifOrientation(out, img.width, img.height, img.exifOrientation ?? 1);
}

/** imgcodecs ApplyExifOrientation: flips and transposes for orientations 2..8. */
function applyExifOrientation(src: Uint8Array, w: number, h: number, o: number): { data: Uint8Array; width: number; height: number } {
  if (o < 2 || o > 8) return { data: src, width: w, height: h };
  const transpose = o >= 5;
  const ow = transpose ? h : w;
  const oh = transpose ? w : h;
  // After the optional transpose: flip horizontally for 2, 3, 6, 7; vertically for 3, 4, 7, 8.
  const flipX = o === 2 || o === 3 || o === 6 || o === 7;
  const flipY = o === 3 || o === 4 || o === 7 || o === 8;
  const out = new Uint8Array(src.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const tx = flipX ? ow - 1 - x : x;
      const ty = flipY ? oh - 1 - y : y;
      const sx = transpose ? ty : tx;
      const sy = transpose ? tx : ty;
      const s = (sy * w + sx) * 3;
      const t = (y * ow + x) * 3;
      out[t] = src[s];
      out[t + 1] = src[s + 1];
      out[t + 2] = src[s + 2];
    }
  }
  return { data: out, width: ow, height: oh };
}

/** INTER_RESIZE_COEF_BITS: uint8 resizing uses 11-bit fixed-point weights. */
const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

/** cvRound of a float: round half to even (lrintf). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `cv2.resize(src, (dw, dh))` with INTER_LINEAR on uint8, `cn` interleaved channels. Reproduces resize.cpp:
 * - the same-size shortcut (a copy) and the exact-2x-downscale switch to INTER_AREA's fast 2x2 average;
 * - source mapping fx = (float)((dx + 0.5) * scale - 0.5), scale = 1 / (dw / sw) in double, edge clamping;
 * - 11-bit weights saturate_cast<short>(w * 2048) (round half even);
 * - horizontal pass in int32; then the vertical pass, which is NOT the textbook (S0*b0 + S1*b1 + 2^21) >> 22:
 *   OpenCV specialises VResizeLinear for uchar (and VResizeLinearVec_32s8u does the same in SIMD) as
 *   (((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16) + 2) >> 2, dropping low bits before the multiply.
 *   The exact formula matches cv2 on only 4 of the 525 unseen21 sketches; this one matches all of them.
 */
export function cvResizeLinear(src: Uint8Array, sw: number, sh: number, cn: number, dw: number, dh: number): Uint8Array {
  if (dw <= 0 || dh <= 0) throw new RangeError(`cv2.resize to ${dw}x${dh}`);
  if (sw === dw && sh === dh) return src.slice();
  const invScaleX = dw / sw;
  const invScaleY = dh / sh;
  const scaleX = 1 / invScaleX;
  const scaleY = 1 / invScaleY;
  const iscaleX = roundEven(scaleX);
  const iscaleY = roundEven(scaleY);
  const isAreaFast = Math.abs(scaleX - iscaleX) < Number.EPSILON && Math.abs(scaleY - iscaleY) < Number.EPSILON;
  if (isAreaFast && iscaleX === 2 && iscaleY === 2) return areaFast2x(src, sw, cn, dw, dh);

  const width = dw * cn;
  const xofs = new Int32Array(width);
  const ialpha = new Int32Array(width * 2);
  let xmax = dw;
  for (let dx = 0; dx < dw; dx++) {
    let fx = Math.fround((dx + 0.5) * scaleX - 0.5);
    let sx = Math.floor(fx);
    fx = Math.fround(fx - sx);
    if (sx < 0) {
      fx = 0;
      sx = 0;
    }
    if (sx + 1 >= sw) {
      xmax = Math.min(xmax, dx);
      if (sx >= sw - 1) {
        fx = 0;
        sx = sw - 1;
      }
    }
    const a0 = roundEven(Math.fround(Math.fround(1 - fx) * COEF_SCALE));
    const a1 = roundEven(Math.fround(fx * COEF_SCALE));
    for (let k = 0; k < cn; k++) {
      xofs[dx * cn + k] = sx * cn + k;
      ialpha[(dx * cn + k) * 2] = a0;
      ialpha[(dx * cn + k) * 2 + 1] = a1;
    }
  }
  const xmaxE = xmax * cn;
  const hresize = (row: number, out: Int32Array): void => {
    const base = row * sw * cn;
    let j = 0;
    for (; j < xmaxE; j++) {
      const s = base + xofs[j];
      out[j] = src[s] * ialpha[j * 2] + src[s + cn] * ialpha[j * 2 + 1];
    }
    for (; j < width; j++) out[j] = src[base + xofs[j]] * COEF_SCALE;
  };

  const dst = new Uint8Array(dh * width);
  // Horizontally resized source rows, computed once each (resizeGeneric_ also reuses them across dst rows).
  const hrows = new Map<number, Int32Array>();
  const hrow = (sy: number): Int32Array => {
    let r = hrows.get(sy);
    if (!r) {
      r = new Int32Array(width);
      hresize(sy, r);
      hrows.set(sy, r);
    }
    return r;
  };
  for (let dy = 0; dy < dh; dy++) {
    let fy = Math.fround((dy + 0.5) * scaleY - 0.5);
    const sy = Math.floor(fy);
    fy = Math.fround(fy - sy);
    const b0 = roundEven(Math.fround(Math.fround(1 - fy) * COEF_SCALE));
    const b1 = roundEven(Math.fround(fy * COEF_SCALE));
    const y0 = Math.min(Math.max(sy, 0), sh - 1);
    const y1 = Math.min(Math.max(sy + 1, 0), sh - 1);
    for (const k of hrows.keys()) if (k < y0) hrows.delete(k);
    const S0 = hrow(y0);
    const S1 = hrow(y1);
    const o = dy * width;
    for (let x = 0; x < width; x++) {
      dst[o + x] = ((((S0[x] >> 4) * b0) >> 16) + (((S1[x] >> 4) * b1) >> 16) + 2) >> 2;
    }
  }
  return dst;
}

/** resizeAreaFast_ for a 2x2 box on cn = 1, 3 or 4 (ResizeAreaFastVec): (sum of 4 + 2) >> 2. */
function areaFast2x(src: Uint8Array, sw: number, cn: number, dw: number, dh: number): Uint8Array {
  const dst = new Uint8Array(dw * dh * cn);
  const stride = sw * cn;
  for (let dy = 0; dy < dh; dy++) {
    const r0 = 2 * dy * stride;
    const r1 = r0 + stride;
    for (let dx = 0; dx < dw; dx++) {
      for (let c = 0; c < cn; c++) {
        const i = 2 * dx * cn + c;
        dst[(dy * dw + dx) * cn + c] = (src[r0 + i] + src[r0 + i + cn] + src[r1 + i] + src[r1 + i + cn] + 2) >> 2;
      }
    }
  }
  return dst;
}
