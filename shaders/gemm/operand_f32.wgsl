// A GEMM input operand stored as f32 (prepended by ops/gemm.ts, after epilogue.wgsl, once for A and once for B:
// ops/gemm.ts fills the X slot with the operand's name and BINDING with its binding). The kernels read operands
// only through loadA / loadB (element index) and loadA4 / loadB4 (vec4 index), which apply the f16 operand
// rounding when it is on.
@group(0) @binding(@BINDING@) var<storage, read> @X@: array<vec4<f32>>;
fn load@X@(i: u32) -> f32 { return op1(@X@[i >> 2u][i & 3u]); }
fn load@X@4(i: u32) -> vec4<f32> { return op4(@X@[i]); }
