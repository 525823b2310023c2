/** A tensor in host memory, as read from or written to a file. Row-major (C order). */
export type DType = 'f64' | 'f32' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

export type TypedData =
  | Float64Array
  | Float32Array
  | Uint16Array // f16 and bf16 are kept as raw 16-bit patterns
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: TypedData;
}

export const DTYPE_BYTES: Record<DType, number> = {
  f64: 8, f32: 4, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1,
};

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** IEEE half (as a 16-bit pattern) to float. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** Float to IEEE half bits, round-to-nearest-even (as torch's .half()). */
export function f32ToF16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function bf16ToF32(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0]!;
}

/** Any float tensor as Float32Array (copy unless it already is f32). */
export function toFloat32(t: HostTensor): Float32Array {
  const { dtype, data } = t;
  if (dtype === 'f32') return data as Float32Array;
  const n = data.length;
  const out = new Float32Array(n);
  if (dtype === 'f16') for (let i = 0; i < n; i++) out[i] = f16ToF32((data as Uint16Array)[i]!);
  else if (dtype === 'bf16') for (let i = 0; i < n; i++) out[i] = bf16ToF32((data as Uint16Array)[i]!);
  else if (dtype === 'i64') for (let i = 0; i < n; i++) out[i] = Number((data as BigInt64Array)[i]!);
  else for (let i = 0; i < n; i++) out[i] = Number(data[i]!);
  return out;
}
