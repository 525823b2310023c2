// A GEMM input operand stored as f32 (prepended by ops/gemm.ts, after gemm_epilogue.wgsl, once for A and once for
// B: ops/gemm.ts puts the operand's name for X and its binding for X_BINDING). The kernels read operands only
// through loadX (element index) and loadX4 (vec4 index), which apply the f16 operand rounding when it is on.
@group(0) @binding(X_BINDING) var<storage, read> X: array<vec4<f32>>;
fn loadX(i: u32) -> f32 { return op1(X[i >> 2u][i & 3u]); }
fn loadX4(i: u32) -> vec4<f32> { return op4(X[i]); }
