// A pre-norm LayerNorm fused into the GEMM that reads its output (prepended by ops/gemm.ts instead of
// gemm/norm_none.wgsl): C = act(alpha * LN(A) · Bᵀ + bias) + R, with LN torch's nn.LayerNorm over each row's K
// elements, y = (x - mean) / sqrt(var_biased + eps) * gamma + beta (eps: the lnEps param). A is stored as f32 (the
// residual stream; gemm/operand_f32.wgsl, binding 0), K, lda and aOff are multiples of 4; gamma and beta [K] are
// bindings 4 and 5, so C and the uniform block move to 6 and 7. The kernel gets a row's statistics (once per row per
// workgroup with normTile in gemm/tiled.wgsl and gemm/smat.wgsl; per invocation with rowNorm in gemm/rowdot.wgsl)
// and loads the normalised values through loadAN / loadAN4, which then apply the f16 option's operand rounding as
// loadA does. rowNorm is layernorm.wgsl's rowStats4 (two passes, four partial sums, the same order of operations),
// and the normalisation is its normed4, so on the same statistics the fused GEMM reads exactly what the separate
// row LayerNorm would have written (binary16 under the f16 option: pack4h and round_f16 round alike); normTile's
// split sums are another summation order, as the workgroup LayerNorm's are.
@group(0) @binding(4) var<storage, read> lnG: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> lnB: array<vec4<f32>>;
const NORM_A = true;
// A row's first pass (the sum of its elements j, j + step, j + 2 step, ... of its K/4 vec4s, in four partial
// sums) and second pass (the sum of squares about the mean, the same way), and 1/std from the second pass's total.
// With j = 0 and step = 1 these are layernorm.wgsl's rowStats4; gemm/tiled.wgsl splits a row over `step` invocations.
fn rowBase(row: u32) -> u32 { return (p.aOff + row * p.lda) / 4u; }
fn rowPartSum(row: u32, j: u32, step: u32) -> f32 {
  let xb = rowBase(row);
  var s = vec4<f32>(0.0);
  for (var c = j; c < p.K / 4u; c += step) { s += A[xb + c]; }
  return (s.x + s.y) + (s.z + s.w);
}
fn rowPartSq(row: u32, j: u32, step: u32, mean: f32) -> f32 {
  let xb = rowBase(row);
  var ss = vec4<f32>(0.0);
  for (var c = j; c < p.K / 4u; c += step) {
    let d = A[xb + c] - mean;
    ss = fma(d, d, ss);
  }
  return (ss.x + ss.y) + (ss.z + ss.w);
}
fn rowInvStd(sq: f32) -> f32 { return 1.0 / sqrt(sq / f32(p.K) + p.lnEps); }
// A row's mean and 1/std, by one invocation.
fn rowNorm(row: u32) -> vec2<f32> {
  let mean = rowPartSum(row, 0u, 1u) / f32(p.K);
  return vec2<f32>(mean, rowInvStd(rowPartSq(row, 0u, 1u, mean)));
}
// The statistics of a workgroup's tile rows row0 .. row0 + rows - 1 (rows <= 64; rows past M repeat the last row), by
// all `threads` invocations of the workgroup (a multiple of rows, at most 256): threads / rows invocations per row,
// each summing every (threads / rows)-th vec4 of it, partial sums meeting in Ared. Called by every invocation at the
// top of the kernel, in uniform control flow (it has barriers); tileStat(r) then reads row row0 + r's.
var<workgroup> Ast: array<vec2<f32>, 64>;
var<workgroup> Ared: array<f32, 256>;
fn normTile(row0: u32, rows: u32, threads: u32, li: u32) {
  let split = threads / rows;
  let r = li / split;
  let j = li % split;
  let row = min(row0 + r, p.M - 1u);
  Ared[li] = rowPartSum(row, j, split);
  workgroupBarrier();
  var tot = 0.0;
  for (var q = 0u; q < split; q++) { tot += Ared[r * split + q]; }
  let mean = tot / f32(p.K);
  workgroupBarrier();
  Ared[li] = rowPartSq(row, j, split, mean);
  workgroupBarrier();
  if (j == 0u) {
    var sq = 0.0;
    for (var q = 0u; q < split; q++) { sq += Ared[r * split + q]; }
    Ast[r] = vec2<f32>(mean, rowInvStd(sq));
  }
  workgroupBarrier();
}
fn tileStat(r: u32) -> vec2<f32> { return Ast[r]; }
// Element i of A (k: its column) and four elements from vec4 index i (k4: the vec4 column), normalised.
fn loadAN(i: u32, k: u32, st: vec2<f32>) -> f32 {
  return op1((A[i >> 2u][i & 3u] - st.x) * st.y * lnG[k >> 2u][k & 3u] + lnB[k >> 2u][k & 3u]);
}
fn loadAN4(i: u32, k4: u32, st: vec2<f32>) -> vec4<f32> { return op4((A[i] - st.x) * st.y * lnG[k4] + lnB[k4]); }
