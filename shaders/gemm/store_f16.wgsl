// The GEMM output C stored as binary16, two per u32 word (prepended by ops/gemm.ts): with the f16 option, a hidden
// activation that only another GEMM reads (an MLP's first layer), which rounds it to binary16 anyway. Only
// whole groups of four are written, at element indices that are multiples of 4 (the host asks for N, ldc and the
// C offset to be multiples of 4), so no two invocations share a word. Kernels with one-element stores (gemm/tiled.wgsl)
// do not take this output.
@group(0) @binding(@C_BINDING@) var<storage, read_write> C: array<vec2<u32>>;
fn storeC4(i: u32, v: vec4<f32>, n: u32) {
  C[i >> 2u] = pack4h(v);
}
