// Attention operands read by batch index directly (prepended by ops/attention.ts when the node has no pair table):
// rowOf(b, col, n) is the batch the kernels read for batch b.
fn rowOf(b: u32, col: u32, n: u32) -> u32 { return b; }
