// Where gemm/sliced.wgsl reads A and writes C for a plain GEMM (prepended by ops/gemm.ts): A's rows at stride lda
// from aOff (through loadAN4, so a fused LayerNorm applies; r is the row within the tile, for its statistics), C's
// rows at stride ldc from cOff. conv2d/gemm.wgsl gives the same two functions for a convolution (A an implicit
// im2col of the input, C the output map in its layout).
fn stageA(row: u32, kq: u32, r: u32) -> vec4<f32> {
  return loadAN4(p.aOff / 4u + row * (p.lda / 4u) + kq, kq, tileStat(r));
}
fn storeOut(row: u32, c0: u32, v: vec4<f32>, n: u32) {
  storeC4(p.cOff + row * p.ldc + c0, v, n);
}
