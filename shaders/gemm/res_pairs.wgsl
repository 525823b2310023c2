// The residual R read through a pair table (prepended by ops/gemm.ts instead of gemm/res_none.wgsl): C's rows are
// P pairs of resT rows each, and row r = b*resT + t adds row t of item pairs[b][resCol] of R, a per-image tensor
// [items, resT, N], so no copy of R in pair order is made first (the cross-attention's output projection). The
// table [P, 2] u32 follows the other reads (binding 4, or 6 after a fused LayerNorm's gamma and beta).
@group(0) @binding(@TBL_BINDING@) var<storage, read> RTbl: array<u32>;
// resN: the residual's item count; an index past it (the host refuses such pairs: models/pairs.ts) reads the last
// item, as gather.wgsl clamps, so no read leaves the residual.
fn resRow(r: u32) -> u32 {
  let b = r / p.resT;
  return min(RTbl[2u * b + p.resCol], p.resN - 1u) * p.resT + (r - b * p.resT);
}
