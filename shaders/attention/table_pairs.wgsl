// Attention operands read through a pair table (prepended by ops/attention.ts instead of attention/table_none.wgsl):
// the cross-attention of sketch-photo pairs reads batch b (a pair) of an operand as row pairs[b][col] of that
// operand's per-image tensor (col 0: the sketch, 1: the photo; 2 and above: batch b itself), so no copy of the rows
// in pair order is made first. The table [P, 2] u32 is binding 3; the output and the uniform block move to 4 and 5.
@group(0) @binding(3) var<storage, read> Tbl: array<u32>;
// n: the operand's batch count; an index past it (the host refuses such pairs: models/pairs.ts) reads the last
// batch, as gather.wgsl clamps, so no read leaves the operand.
fn rowOf(b: u32, col: u32, n: u32) -> u32 {
  if (col > 1u) { return b; }
  return min(Tbl[2u * b + col], n - 1u);
}
