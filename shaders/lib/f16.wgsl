// Binary16 rounding and storage, shared by the kernels that round operands to binary16 or store values as binary16
// (prepended by ops/gemm.ts, ops/layernorm.ts and ops/attention.ts).
//
// round_f16: x rounded to binary16 on the bits (round to nearest, ties to even; binary16 subnormals below 2^-14 to
// multiples of 2^-24; past the binary16 range the value is left as it is), kept as f32. A pack2x16float /
// unpack2x16float round trip leaves the rounding direction to the implementation, and a CPU driver folded it away
// as an identity.
fn round_f16(x: f32) -> f32 {
  let a = abs(x);
  if (a < 6.103515625e-5) { return round(x * 16777216.0) / 16777216.0; }
  let u = bitcast<u32>(x);
  return bitcast<f32>((u + 0xfffu + ((u >> 13u) & 1u)) & 0xffffe000u);
}
// The binary16 bits of x rounded as round_f16 does (what unpack2x16float turns back into round_f16(x)); past the
// binary16 range inf, NaN stays NaN.
fn f16bits(x: f32) -> u32 {
  let y = round_f16(x);
  let u = bitcast<u32>(y);
  let s = (u >> 16u) & 0x8000u;
  let a = abs(y);
  if (a != a) { return 0x7e00u; }
  if (a > 65504.0) { return s | 0x7c00u; }
  if (a < 6.103515625e-5) { return s | u32(a * 16777216.0); }
  return s | ((((u >> 23u) & 0xffu) - 112u) << 10u) | ((u >> 13u) & 0x3ffu);
}
// Four values as binary16, two per word, the first in the low half: a tensor stored as binary16 (graph dtype f16).
fn pack4h(v: vec4<f32>) -> vec2<u32> {
  return vec2<u32>(f16bits(v.x) | (f16bits(v.y) << 16u), f16bits(v.z) | (f16bits(v.w) << 16u));
}
