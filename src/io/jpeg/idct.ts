import type { Component } from './types.ts';

/*
 * The accurate integer IDCT (JDCT_ISLOW) as libjpeg-turbo's x86 SIMD code computes it (jidctint-sse2.asm /
 * jidctint-avx2.asm, chosen at run time on every x86-64 CPU). On valid data it is bit-identical to jidctint.c;
 * on damaged data (huge coefficients) it differs, because it works in 16-bit lanes: the dequantising multiply
 * keeps the low 16 bits, sums of two inputs wrap at 16 bits, pass 1 saturates its output to int16, and the final
 * range limit saturates (where the C code wraps through a masked table). This port follows the SIMD lanes so
 * that damaged files decode as Pillow and cv2 decode them too.
 * Constants are jidctint.c's FIX() values (CONST_BITS = 13) pre-combined as the asm's pmaddwd pairs.
 */
const F054 = 4433; // FIX(0.541196100)
const F130_A = 4433 + 6270; // F_0_541 + F_0_765
const F130_B = 4433 - 15137; // F_0_541 - F_1_847
const F117 = 9633;
const MF078 = 9633 - 16069; // F_1_175 - F_1_961
const F078 = 9633 - 3196; // F_1_175 - F_0_390
const MF060 = 2446 - 7373; // F_0_298 - F_0_899
const MF089 = -7373;
const F060 = 12299 - 7373; // F_1_501 - F_0_899
const MF050 = 16819 - 20995; // F_2_053 - F_2_562
const MF256 = -20995;
const F050 = 25172 - 20995; // F_3_072 - F_2_562

const wrap16 = (v: number): number => (v << 16) >> 16;
const sat16 = (v: number): number => (v < -32768 ? -32768 : v > 32767 ? 32767 : v);

/**
 * One 8-point pass over `src` at offsets base + k*step (k = 0..7), writing 32-bit sums before descaling into
 * out[0..7] in output order. All arithmetic stays inside int32 as pmaddwd/paddd do.
 */
function idct8(src: Int16Array | Int32Array, base: number, step: number, out: Int32Array): void {
  const in0 = src[base];
  const in1 = src[base + step];
  const in2 = src[base + 2 * step];
  const in3 = src[base + 3 * step];
  const in4 = src[base + 4 * step];
  const in5 = src[base + 5 * step];
  const in6 = src[base + 6 * step];
  const in7 = src[base + 7 * step];
  // Even part.
  const tmp3e = in2 * F130_A + in6 * F054;
  const tmp2e = in2 * F054 + in6 * F130_B;
  const tmp0e = wrap16(in0 + in4) * 8192;
  const tmp1e = wrap16(in0 - in4) * 8192;
  const tmp10 = (tmp0e + tmp3e) | 0;
  const tmp13 = (tmp0e - tmp3e) | 0;
  const tmp11 = (tmp1e + tmp2e) | 0;
  const tmp12 = (tmp1e - tmp2e) | 0;
  // Odd part: inputs in7, in5, in3, in1 are the C code's tmp0..tmp3.
  const z3 = wrap16(in7 + in3);
  const z4 = wrap16(in5 + in1);
  const z3r = z3 * MF078 + z4 * F117;
  const z4r = z3 * F117 + z4 * F078;
  const tmp0 = (in7 * MF060 + in1 * MF089 + z3r) | 0;
  const tmp3 = (in7 * MF089 + in1 * F060 + z4r) | 0;
  const tmp1 = (in5 * MF050 + in3 * MF256 + z4r) | 0;
  const tmp2 = (in5 * MF256 + in3 * F050 + z3r) | 0;
  out[0] = (tmp10 + tmp3) | 0;
  out[7] = (tmp10 - tmp3) | 0;
  out[1] = (tmp11 + tmp2) | 0;
  out[6] = (tmp11 - tmp2) | 0;
  out[2] = (tmp12 + tmp1) | 0;
  out[5] = (tmp12 - tmp1) | 0;
  out[3] = (tmp13 + tmp0) | 0;
  out[4] = (tmp13 - tmp0) | 0;
}

/** Dequantise and inverse-DCT every block of a component; returns a plane of widthInBlocks*8 columns. */
export function idctComponent(c: Component): { plane: Uint8Array; stride: number } {
  const stride = c.widthInBlocks * 8;
  const plane = new Uint8Array(stride * c.heightInBlocks * 8);
  // The SIMD build keeps the multipliers as 16-bit shorts (MULTIPLIER) and multiplies with pmullw.
  const q = Int16Array.from(c.quant ?? new Int32Array(64));
  const deq = new Int16Array(64);
  const ws = new Int16Array(64);
  const t = new Int32Array(8);
  const coefs = c.coefs;
  for (let by = 0; by < c.heightInBlocks; by++) {
    for (let bx = 0; bx < c.widthInBlocks; bx++) {
      const off = (by * c.blocksPerLine + bx) * 64;
      let acZero = true;
      for (let k = 8; k < 64 && acZero; k++) if (coefs[off + k] !== 0) acZero = false;
      // Pass 1: columns, into a 16-bit workspace scaled by 2^PASS1_BITS.
      if (acZero) {
        // Every coefficient below row 0 is zero: the asm shifts the dequantised row 0 (psllw, wrapping).
        for (let col = 0; col < 8; col++) {
          const v = wrap16(wrap16(Math.imul(coefs[off + col], q[col])) * 4);
          for (let r = 0; r < 8; r++) ws[r * 8 + col] = v;
        }
      } else {
        for (let k = 0; k < 64; k++) deq[k] = Math.imul(coefs[off + k], q[k]); // Int16Array keeps the low 16 bits
        for (let col = 0; col < 8; col++) {
          idct8(deq, col, 8, t);
          for (let r = 0; r < 8; r++) ws[r * 8 + col] = sat16((t[r] + 1024) >> 11);
        }
      }
      // Pass 2: rows, descale by CONST_BITS + PASS1_BITS + 3, saturate to int16 then int8, recentre by 128.
      for (let row = 0; row < 8; row++) {
        idct8(ws, row * 8, 1, t);
        const o = (by * 8 + row) * stride + bx * 8;
        for (let k = 0; k < 8; k++) {
          const v = ((t[k] + 131072) | 0) >> 18;
          plane[o + k] = v < -128 ? 0 : v > 127 ? 255 : v + 128;
        }
      }
    }
  }
  return { plane, stride };
}
