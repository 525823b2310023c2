// The GEMM output C stored as f32 (prepended by ops/gemm.ts): storeC one element, storeC4 the first n (<= 4) of
// four consecutive elements from element index i.
@group(0) @binding(@C_BINDING@) var<storage, read_write> C: array<f32>;
fn storeC(i: u32, v: f32) { C[i] = v; }
fn storeC4(i: u32, v: vec4<f32>, n: u32) {
  for (var j = 0u; j < n; j++) { C[i + j] = v[j]; }
}
