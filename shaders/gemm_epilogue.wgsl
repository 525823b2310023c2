// GEMM epilogue activations and operand rounding, shared by the GEMM kernels (prepended by ops/gemm.ts), and their
// common uniform block: the fields of ops/gemm.ts's params, in order.
struct Params {
  M: u32, N: u32, K: u32,
  lda: u32, ldb: u32, ldc: u32, ldr: u32,
  aOff: u32, cOff: u32, rOff: u32,
  hasBias: u32, hasRes: u32, act: u32,
  alpha: f32,
}

// The f16 precision option: every A and B element is rounded to binary16 as it is loaded, while products and sums
// stay f32, which is what a tensor-core GEMM with f16 inputs and f32 accumulation computes. Off: loads unchanged.
// Rounding is done on the bits (round to nearest, ties to even; binary16 subnormals below 2^-14 to multiples of
// 2^-24; past the binary16 range the value is left as it is): a pack2x16float/unpack2x16float round trip leaves the
// rounding direction to the implementation, and a CPU driver folded it away as an identity.
override F16_OPERANDS: bool = false;
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
fn op1(x: f32) -> f32 {
  if (F16_OPERANDS) { return round_f16(x); }
  return x;
}
fn op4(v: vec4<f32>) -> vec4<f32> {
  if (F16_OPERANDS) { return vec4<f32>(round_f16(v.x), round_f16(v.y), round_f16(v.z), round_f16(v.w)); }
  return v;
}

const ACT_RELU = 1u;
const ACT_GELU = 2u;
const ACT_SIGMOID = 3u;
const ACT_QUICKGELU = 4u;

// erf for exact (not tanh) GELU, as torch's nn.GELU() (zse-sbir.md §11.4). Numerical Recipes' erfc
// Chebyshev fit: fractional error < 1.2e-7, below f32 rounding of the result.
fn erf_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}

fn activate(v: f32, act: u32) -> f32 {
  switch act {
    case ACT_RELU: { return max(v, 0.0); }
    case ACT_GELU: { return 0.5 * v * (1.0 + erf_(v * 0.70710678118654752)); }
    case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-v)); }
    // CLIP's QuickGELU x*sigmoid(1.702x) (caan.md, text tower); exp overflows to inf for v < -52, giving -0 as torch.
    case ACT_QUICKGELU: { return v / (1.0 + exp(-1.702 * v)); }
    default: { return v; }
  }
}
