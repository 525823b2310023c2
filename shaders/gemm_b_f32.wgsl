// GEMM operand B stored as f32 (prepended by ops/gemm.ts, after gemm_epilogue.wgsl). The kernels read B only
// through loadB (element index) and loadB4 (vec4 index), which apply the f16 operand rounding when it is on.
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
fn loadB(i: u32) -> f32 { return op1(B[i >> 2u][i & 3u]); }
fn loadB4(i: u32) -> vec4<f32> { return op4(B[i]); }
