/**
 * Bit-exact ports of the parts of Pillow 9.4 that `Image.open(p).resize((S, S)).convert('RGB')` runs
 * (zse-sbir.md §5.1, §11 quirk 15): Image.resize's choice of filter and its RGBA/LA premultiplication,
 * libImaging/Resample.c (separable antialiased convolution, 8-bit fixed point for uint8 images and double
 * precision for 32-bit 'I' images), Geometry.c's nearest-neighbour affine scaling for 'P'/'1' images, and the
 * Convert.c routines that bring every mode to RGB.
 */
import type { DecodedImage } from '../io/image.ts';

/** An image as Pillow holds it: interleaved bands, 8-bit except mode 'I' (int32 in `data32`). */
export interface PilImage {
  mode: DecodedImage['mode'] | 'RGBa' | 'La';
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
  data32?: Int32Array;
  palette?: Uint8Array;
}

export function pilFromDecoded(img: DecodedImage): PilImage {
  const out: PilImage = { mode: img.mode, width: img.width, height: img.height, channels: img.channels, data: img.data };
  if (img.mode === 'I') out.data32 = Int32Array.from(img.data16!);
  if (img.palette) out.palette = img.palette;
  return out;
}

// Resample.c: BICUBIC with a = -0.5, support 2.
function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
const BICUBIC_SUPPORT = 2.0;

/** 8 bits for the result plus 2 for the over/undershoot of the negative lobes (Resample.c). */
const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  ksize: number;
  /** Per output pixel: first input index and number of taps. */
  bounds: Int32Array;
  kk: Float64Array;
}

/** Resample.c precompute_coeffs, with the same double arithmetic and truncating casts. */
function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number): Coeffs {
  // box coordinates are C floats; (double)(in1 - in0) subtracts in float precision first.
  const scale = Math.fround(Math.fround(in1) - Math.fround(in0)) / outSize;
  let filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const kk = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let ww = 0.0;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicFilter((x + xmin - center + 0.5) * ss);
      kk[k + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0.0) kk[k + x] /= ww;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Resample.c normalize_coeffs_8bpc: doubles to PRECISION_BITS fixed point, rounding half away from zero. */
function normalizeCoeffs8bpc(kk: Float64Array): Int32Array {
  const out = new Int32Array(kk.length);
  const one = 1 << PRECISION_BITS;
  for (let i = 0; i < kk.length; i++) {
    out[i] = kk[i] < 0 ? Math.trunc(-0.5 + kk[i] * one) : Math.trunc(0.5 + kk[i] * one);
  }
  return out;
}

/** clip8(): the accumulator carries a rounding half, so shifting down and clamping is the whole job. */
const clip8 = (ss: number): number => {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** ImagingResampleInner + the 8bpc / 32bpc passes, for a full-image box. */
function resampleBicubic(im: PilImage, xsize: number, ysize: number): PilImage {
  const needHorizontal = xsize !== im.width;
  const needVertical = ysize !== im.height;
  const horiz = precomputeCoeffs(im.width, 0, im.width, xsize);
  const vert = precomputeCoeffs(im.height, 0, im.height, ysize);
  // Only the source rows the vertical pass will read go through the horizontal pass.
  const yboxFirst = vert.bounds[0];
  const yboxLast = vert.bounds[ysize * 2 - 2] + vert.bounds[ysize * 2 - 1];
  let cur = im;
  if (needHorizontal) {
    for (let i = 0; i < ysize; i++) vert.bounds[i * 2] -= yboxFirst;
    cur = resamplePass(cur, xsize, yboxLast - yboxFirst, yboxFirst, horiz, true);
  }
  if (needVertical) cur = resamplePass(cur, cur.width, ysize, 0, vert, false);
  return cur === im ? { ...im, data: im.data.slice() } : cur;
}

function resamplePass(im: PilImage, outW: number, outH: number, offset: number, c: Coeffs, horizontal: boolean): PilImage {
  const cn = im.channels;
  const { ksize, bounds } = c;
  if (im.mode === 'I') {
    // ImagingResample{Horizontal,Vertical}_32bpc: double accumulation, ROUND_UP to int.
    const src = im.data32!;
    const dst = new Int32Array(outW * outH);
    const kk = c.kk;
    for (let yy = 0; yy < outH; yy++) {
      for (let xx = 0; xx < outW; xx++) {
        const i = horizontal ? xx : yy;
        const min = bounds[i * 2];
        const n = bounds[i * 2 + 1];
        const k = i * ksize;
        let ss = 0.0;
        if (horizontal) {
          const row = (yy + offset) * im.width;
          for (let x = 0; x < n; x++) ss += src[row + x + min] * kk[k + x];
        } else {
          for (let y = 0; y < n; y++) ss += src[(y + min) * im.width + xx] * kk[k + y];
        }
        dst[yy * outW + xx] = Math.trunc(ss >= 0.0 ? ss + 0.5 : ss - 0.5);
      }
    }
    return { ...im, width: outW, height: outH, data: new Uint8Array(0), data32: dst };
  }
  const kk = normalizeCoeffs8bpc(c.kk);
  const src = im.data;
  const dst = new Uint8Array(outW * outH * cn);
  const half = 1 << (PRECISION_BITS - 1);
  const stride = im.width * cn;
  if (horizontal) {
    for (let yy = 0; yy < outH; yy++) {
      const row = (yy + offset) * stride;
      for (let xx = 0; xx < outW; xx++) {
        const min = bounds[xx * 2];
        const n = bounds[xx * 2 + 1];
        const k = xx * ksize;
        for (let ch = 0; ch < cn; ch++) {
          let ss = half;
          for (let x = 0; x < n; x++) ss += src[row + (x + min) * cn + ch] * kk[k + x];
          dst[(yy * outW + xx) * cn + ch] = clip8(ss);
        }
      }
    }
  } else {
    for (let yy = 0; yy < outH; yy++) {
      const min = bounds[yy * 2];
      const n = bounds[yy * 2 + 1];
      const k = yy * ksize;
      for (let xx = 0; xx < outW * cn; xx++) {
        let ss = half;
        for (let y = 0; y < n; y++) ss += src[(y + min) * stride + xx] * kk[k + y];
        dst[yy * outW * cn + xx] = clip8(ss);
      }
    }
  }
  return { ...im, width: outW, height: outH, data: dst };
}

/**
 * Geometry.c ImagingScaleAffine, which `resize` reaches for NEAREST (always used for 'P' and '1'). The source
 * position is accumulated step by step in double precision, as Pillow does, not recomputed per pixel.
 */
function resizeNearest(im: PilImage, xsize: number, ysize: number): PilImage {
  const a0 = Math.fround(im.width) / xsize;
  const a4 = Math.fround(im.height) / ysize;
  const coord = (v: number): number => (v < 0.0 ? -1 : Math.trunc(v));
  const xintab = new Int32Array(xsize);
  let xmin = xsize;
  let xmax = 0;
  let xo = 0 + a0 * 0.5;
  for (let x = 0; x < xsize; x++) {
    const xin = coord(xo);
    if (xin >= 0 && xin < im.width) {
      xmax = x + 1;
      if (x < xmin) xmin = x;
      xintab[x] = xin;
    }
    xo += a0;
  }
  const cn = im.channels;
  const dst = new Uint8Array(xsize * ysize * cn); // fill = 1: rows start zeroed
  let yo = 0 + a4 * 0.5;
  for (let y = 0; y < ysize; y++) {
    const yi = coord(yo);
    if (yi >= 0 && yi < im.height) {
      for (let x = xmin; x < xmax; x++) {
        for (let ch = 0; ch < cn; ch++) dst[(y * xsize + x) * cn + ch] = im.data[(yi * im.width + xintab[x]) * cn + ch];
      }
    }
    yo += a4;
  }
  return { ...im, width: xsize, height: ysize, data: dst };
}

/** MULDIV255 of Convert.c: a*b/255 rounded, in integer arithmetic. */
const muldiv255 = (a: number, b: number): number => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};
const clip8i = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Convert.c rgbA2rgba / lA2la: premultiply by alpha (LA becomes 'La' with the same 2-sample layout here). */
function premultiply(im: PilImage): PilImage {
  const cn = im.channels;
  const d = new Uint8Array(im.data.length);
  for (let i = 0; i < d.length; i += cn) {
    const alpha = im.data[i + cn - 1];
    for (let c = 0; c < cn - 1; c++) d[i + c] = muldiv255(im.data[i + c], alpha);
    d[i + cn - 1] = alpha;
  }
  return { ...im, mode: im.mode === 'RGBA' ? 'RGBa' : 'La', data: d };
}

/** Convert.c rgba2rgbA / la2lA: undo the premultiplication with integer division, alpha 0 and 255 untouched. */
function unpremultiply(im: PilImage): PilImage {
  const cn = im.channels;
  const d = new Uint8Array(im.data.length);
  for (let i = 0; i < d.length; i += cn) {
    const alpha = im.data[i + cn - 1];
    for (let c = 0; c < cn - 1; c++) {
      const v = im.data[i + c];
      d[i + c] = alpha === 255 || alpha === 0 ? v : clip8i(Math.trunc((255 * v) / alpha));
    }
    d[i + cn - 1] = alpha;
  }
  return { ...im, mode: im.mode === 'RGBa' ? 'RGBA' : 'LA', data: d };
}

/**
 * `Image.resize((w, h))` with Pillow 9.4's default filter: BICUBIC, except NEAREST for '1' and 'P' (Image.py
 * resize); RGBA and LA go through premultiplied RGBa / La and back; a same-size resize is a plain copy.
 */
export function pilResize(im: PilImage, w: number, h: number): PilImage {
  if (im.width === w && im.height === h) return { ...im, data: im.data.slice() };
  if (im.mode === '1' || im.mode === 'P') return resizeNearest(im, w, h);
  if (im.mode === 'RGBA' || im.mode === 'LA') return unpremultiply(resampleBicubic(premultiply(im), w, h));
  return resampleBicubic(im, w, h);
}

/** `Image.convert('RGB')` as Convert.c does it for each mode; returns tightly packed RGB. */
export function pilConvertRGB(im: PilImage): Uint8Array {
  const n = im.width * im.height;
  const out = new Uint8Array(n * 3);
  const d = im.data;
  switch (im.mode) {
    case 'RGB':
      out.set(d.subarray(0, n * 3));
      break;
    case 'RGBA':
    case 'RGBa': // not reached: resize converts back to RGBA
      for (let i = 0; i < n; i++) {
        out[i * 3] = d[i * 4];
        out[i * 3 + 1] = d[i * 4 + 1];
        out[i * 3 + 2] = d[i * 4 + 2];
      }
      break;
    case '1':
    case 'L':
    case 'LA':
    case 'La': {
      const cn = im.channels;
      for (let i = 0; i < n; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = d[i * cn];
      break;
    }
    case 'I': {
      // i2rgb clips the 32-bit value to 0..255 (so a 16-bit PNG photo is mostly white: Pillow's behaviour).
      const d32 = im.data32!;
      for (let i = 0; i < n; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = clip8i(d32[i]);
      break;
    }
    case 'P': {
      // Pillow's palette starts as a gray ramp; PLTE overwrites its first entries only.
      const pal = im.palette!;
      const np = pal.length / 3;
      for (let i = 0; i < n; i++) {
        const p = d[i];
        if (p < np) {
          out[i * 3] = pal[p * 3];
          out[i * 3 + 1] = pal[p * 3 + 1];
          out[i * 3 + 2] = pal[p * 3 + 2];
        } else {
          out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = p;
        }
      }
      break;
    }
    case 'CMYK':
      // cmyk2rgb
      for (let i = 0; i < n; i++) {
        const nk = 255 - d[i * 4 + 3];
        out[i * 3] = clip8i(nk - muldiv255(d[i * 4], nk));
        out[i * 3 + 1] = clip8i(nk - muldiv255(d[i * 4 + 1], nk));
        out[i * 3 + 2] = clip8i(nk - muldiv255(d[i * 4 + 2], nk));
      }
      break;
  }
  return out;
}
