// GEMM epilogue activations and operand rounding, shared by the GEMM kernels (prepended by ops/gemm.ts, after
// lib/f16.wgsl). Their common uniform block, Params, is gemm/params.wgsl (conv2d's implicit GEMM has its own,
// conv2d/gemm.wgsl).

// The f16 precision option: every A and B element is rounded to binary16 (round_f16 of lib/f16.wgsl, prepended) as it
// is loaded, while products and sums stay f32, which is what a tensor-core GEMM with f16 inputs and f32
// accumulation computes. Off: loads unchanged.
const F16_OPERANDS = @F16_OPERANDS@; // filled by ops/gemm.ts: true under the f16 option
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
