// The uniform block every GEMM kernel shares (prepended by ops/gemm.ts): the fields of ops/gemm.ts's params, in order;
// EXTRA: more fields after them (empty for a GEMM; a convolution's for the implicit GEMM, shaders/conv2d/gemm.wgsl).
struct Params {
  M: u32, N: u32, K: u32,
  lda: u32, ldb: u32, ldc: u32, ldr: u32,
  aOff: u32, cOff: u32, rOff: u32,
  hasBias: u32, hasRes: u32, act: u32,
  alpha: f32,
  lnEps: f32, // the fused LayerNorm's eps (gemm/norm_ln.wgsl); unused without one
  resT: u32, resCol: u32, resN: u32, // rows per pair, table column and items of a residual read through a pair table (gemm/res_pairs.wgsl)
  @EXTRA@
}
