// (activate(), erf_ and the operand rounding op1/op4 come from gemm/epilogue.wgsl, prepended by ops/gemm.ts.)
// C = act(alpha * A · Bᵀ + bias) + R, the contract of gemm/tiled.wgsl, written for GPUs that the tiled kernel leaves
// idle or waiting (the 2026-12-04 H200 run: 4-11 % of the fp32 peak at one image, 22 % at 128). A TILE x TILE tile of
// C per workgroup, 4x4 per invocation as four vec4 accumulators (no private arrays, so nothing is indexed at run
// time), and S slices of (TILE/4)^2 invocations that each take every S-th share of each K stage ("sliced K"): at one
// image (197 rows) the 32 tile with 4 slices puts 4x as many warps on each output tile as the tiled kernel's 32 tile,
// whose SMs otherwise run one or two warps and wait on memory. The slices' partial sums meet at the end through
// workgroup memory, in a fixed order (a tree: slice s + h into slice s), so results are deterministic.
//
// Staging, per stage of KD columns of K: A's TILE rows and B's TILE columns (both stored K-contiguous: A [M,K] and B
// [N,K], PyTorch's Linear layout) are read as vec4 along K, each task 4 rows at one k-quad (a warp's tasks read whole
// 64- or 128-byte runs of rows), and written k-major ([k][row], a row of LDT4 vec4 padded by one vec4
// against bank conflicts) as 4 vec4, each the 4 rows at one k: so the multiply loop reads A's 4 rows and B's 4
// columns of one k as one vec4 each (2 workgroup loads for 16 FMAs, against 8 scalar loads in gemm/tiled.wgsl).
// Needs K, lda, ldb and aOff multiples of 4 (vec4 loads); M and N are free (loads past them read zeros, stores are
// skipped). Workgroup memory stays within WebGPU's default 16 KiB, with a fused LayerNorm's statistics too.
//
// Slots (ops/gemm.ts): TILE, S, KD (stage depth: TILE * S / 2 at most, so that the staging tasks fit the invocations),
// THREADS = (TILE/4)^2 * S, LDT4 = TILE/4 + 1, SMV = 2 * KD * LDT4 (vec4s of workgroup memory).

// (A and B, bindings 0 and 1, with their loaders loadA4 / loadB4, and C, binding 4, with storeC4, are prepended:
// gemm/operand_*.wgsl, gemm/store_*.wgsl; so is gemm/norm_none.wgsl, or gemm/norm_ln.wgsl for a LayerNorm fused
// into A's loads (loadAN4, with the tile's row statistics from normTile), which moves C to binding 6 and the uniform
// block to 7; gemm/res_none.wgsl or gemm/res_pairs.wgsl (resRow); where A's rows are read and C's written:
// stageA / storeOut of gemm/stage_rows.wgsl, or of conv2d/gemm.wgsl for a convolution as an implicit GEMM; and
// stageQuad, gemm/stage_quad.wgsl.)
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> R: array<f32>;
@group(0) @binding(@P_BINDING@) var<uniform> p: Params;

const TILE = @TILE@u;       // rows and columns of C per workgroup
const S = @S@u;             // K slices per workgroup
const KD = @KD@u;           // K per stage (all slices)
const THREADS = @THREADS@u; // (TILE/4)^2 * S
const LDT4 = @LDT4@u;       // vec4s per staged k row (TILE/4, plus one of padding)
const SMV = @SMV@u;         // 2 * KD * LDT4
const WGS = TILE / 4u;      // invocations per side of a slice
const KSL = KD / S;         // K per slice per stage
const Q = KD / 4u;          // k-quads per staged row
const TASKS = WGS * Q;      // staging tasks per operand (4 rows x 1 quad each)
const B0 = KD * LDT4;       // where B's stage starts in Sm

var<workgroup> Sm: array<vec4<f32>, SMV>; // A's stage [KD][LDT4], then B's; at the end the slices' partial sums


@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  let s = li / (WGS * WGS); // this invocation's slice
  let t = li % (WGS * WGS);
  let tx = t % WGS; // columns col0 + 4tx .. +3
  let ty = t / WGS; // rows row0 + 4ty .. +3
  let rowsA = p.M - min(p.M, row0); // valid rows of A's tile and of B's
  let rowsB = p.N - min(p.N, col0);
  var acc0 = vec4<f32>(0.0); // row 4ty + 0, columns 4tx .. 4tx + 3
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  normTile(row0, TILE, THREADS, li); // the fused LayerNorm's row statistics (nothing without one)
  for (var k0 = 0u; k0 < p.K; k0 += KD) {
    for (var task = li; task < 2u * TASKS; task += THREADS) {
      let isB = task >= TASKS;
      let tk = task % TASKS;
      // Eight consecutive tasks take 2 neighbouring quads (32 bytes: a whole memory sector) of 4 row groups, so the
      // 8 vec4 stores of those tasks fall in 8 different bank groups; a warp reads whole 64- or 128-byte row runs.
      let rest = tk >> 3u;
      let q = (rest % (Q / 2u)) * 2u + (tk & 1u);
      let rg = (rest / (Q / 2u)) * 4u + ((tk >> 1u) & 3u);
      let x = stageQuad(isB, row0, col0, 4u * rg, k0 / 4u + q, select(rowsA, rowsB, isB));
      let at = select(0u, B0, isB) + 4u * q * LDT4 + rg;
      Sm[at] = x.k0;
      Sm[at + LDT4] = x.k1;
      Sm[at + 2u * LDT4] = x.k2;
      Sm[at + 3u * LDT4] = x.k3;
    }
    workgroupBarrier();
    let kb = s * KSL;
    for (var kk = 0u; kk < KSL; kk++) {
      let a = Sm[(kb + kk) * LDT4 + ty];
      let b = Sm[B0 + (kb + kk) * LDT4 + tx];
      acc0 = fma(vec4<f32>(a.x), b, acc0);
      acc1 = fma(vec4<f32>(a.y), b, acc1);
      acc2 = fma(vec4<f32>(a.z), b, acc2);
      acc3 = fma(vec4<f32>(a.w), b, acc3);
    }
    workgroupBarrier();
  }
  // The slices' sums: slice s + h adds into slice s, for h = S/2, S/4, .., 1 (the stage memory is free now), through
  // [slice][accumulator][invocation] (consecutive invocations, consecutive vec4s).
  const N2 = WGS * WGS;
  for (var h = S / 2u; h >= 1u; h /= 2u) {
    if (s >= h && s < 2u * h) {
      let o = (s - h) * 4u * N2 + t;
      Sm[o] = acc0;
      Sm[o + N2] = acc1;
      Sm[o + 2u * N2] = acc2;
      Sm[o + 3u * N2] = acc3;
    }
    workgroupBarrier();
    if (s < h) {
      let o = s * 4u * N2 + t;
      acc0 += Sm[o];
      acc1 += Sm[o + N2];
      acc2 += Sm[o + 2u * N2];
      acc3 += Sm[o + 3u * N2];
    }
    workgroupBarrier();
  }
  if (s == 0u) {
    let r = row0 + 4u * ty;
    let c0 = col0 + 4u * tx;
    epilogue4(r, c0, acc0);
    epilogue4(r + 1u, c0, acc1);
    epilogue4(r + 2u, c0, acc2);
    epilogue4(r + 3u, c0, acc3);
  }
}
