// (activate(), round_f16, the operand loaders loadA4 / loadB4 and storeC4 are prepended by ops/gemm.ts, after the
// `enable f16; enable chromium_experimental_subgroup_matrix;` directives; so is gemm/norm_none.wgsl, or
// gemm/norm_ln.wgsl for a LayerNorm fused into A's loads, whose row statistics normTile computes once per workgroup;
// C then moves to binding 6 and the uniform block to 7.)
// C = act(alpha * A · Bᵀ + bias) + R on subgroup matrices (tensor cores): the f16 option's GEMM where the adapter
// offers chromium-experimental-subgroup-matrix with f16 16x16x16 configs. Operands are binary16 (rounded on load
// when stored as f32, read as they are when stored as f16), products are accumulated in f32: the same arithmetic
// as the other kernels under the f16 option, in another summation order. Needs K, lda, ldb and aOff multiples of 4
// (vec4 loads); M and N are free.
//
// A workgroup of 128 invocations, taken as 4 subgroups of 32 (NVIDIA's size; src/graph/smat.ts checks the kernel
// on the adapter before any model uses it), computes a 64x64 tile of C: subgroup s owns the 32x32 quarter at rows
// 32*(s/2), columns 32*(s%2), as 2x2 result matrices of 16x16. K advances in steps of 32 through workgroup memory:
// A's 64 rows x 32 k row-major (the left matrices, row_major), B's 64 columns x 32 k (the right matrices K x N,
// column-major). Majorness is a template argument (`subgroupMatrixLoad<T, col_major>(p, offset, stride)`): Dawn
// deprecated the form with a bool argument, and the 2026-12-04 H200 run's compile of it failed with that warning
// first. The results go through workgroup memory to the epilogue (bias, activation, residual), which each
// invocation applies to groups of 4 columns.

@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> R: array<f32>;
@group(0) @binding(@P_BINDING@) var<uniform> p: Params;

const TILE = 64u; // rows and columns of C per workgroup

var<workgroup> As: array<f16, 2048>; // [64 rows][32 k]
var<workgroup> Bs: array<f16, 2048>; // [64 columns][32 k]
var<workgroup> Cs: array<f32, 4096>; // [64][64]

alias Left = subgroup_matrix_left<f16, 16, 16>;
alias Right = subgroup_matrix_right<f16, 16, 16>;
alias Acc = subgroup_matrix_result<f32, 16, 16>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  let K4 = p.K / 4u;
  let lda4 = p.lda / 4u;
  let ldb4 = p.ldb / 4u;
  let aOff4 = p.aOff / 4u;
  let sg = li / 32u;
  let sm = (sg / 2u) * 32u;
  let sn = (sg % 2u) * 32u;
  var c00 = Acc();
  var c01 = Acc();
  var c10 = Acc();
  var c11 = Acc();
  normTile(row0, TILE, 128u, li); // the fused LayerNorm's row statistics (nothing without one)
  for (var k0 = 0u; k0 < p.K; k0 += 32u) {
    // Stage 64 x 8 vec4 of each operand: 4 of A and 4 of B per invocation.
    for (var e = 0u; e < 4u; e++) {
      let idx = li + 128u * e;
      let r = idx / 8u;
      let q = idx % 8u;
      let kq = k0 / 4u + q;
      var a = vec4<f32>(0.0);
      if (row0 + r < p.M && kq < K4) { a = loadAN4(aOff4 + (row0 + r) * lda4 + kq, kq, tileStat(r)); }
      var b = vec4<f32>(0.0);
      if (col0 + r < p.N && kq < K4) { b = loadB4((col0 + r) * ldb4 + kq); }
      let ah = vec4<f16>(a); // exact: the values are binary16 already
      let bh = vec4<f16>(b);
      for (var j = 0u; j < 4u; j++) {
        As[r * 32u + 4u * q + j] = ah[j];
        Bs[r * 32u + 4u * q + j] = bh[j];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 32u; kk += 16u) {
      let a0 = subgroupMatrixLoad<Left, row_major>(&As, sm * 32u + kk, 32u);
      let a1 = subgroupMatrixLoad<Left, row_major>(&As, (sm + 16u) * 32u + kk, 32u);
      let b0 = subgroupMatrixLoad<Right, col_major>(&Bs, sn * 32u + kk, 32u);
      let b1 = subgroupMatrixLoad<Right, col_major>(&Bs, (sn + 16u) * 32u + kk, 32u);
      c00 = subgroupMatrixMultiplyAccumulate(a0, b0, c00);
      c01 = subgroupMatrixMultiplyAccumulate(a0, b1, c01);
      c10 = subgroupMatrixMultiplyAccumulate(a1, b0, c10);
      c11 = subgroupMatrixMultiplyAccumulate(a1, b1, c11);
    }
    workgroupBarrier();
  }
  subgroupMatrixStore<row_major>(&Cs, sm * 64u + sn, c00, 64u);
  subgroupMatrixStore<row_major>(&Cs, sm * 64u + sn + 16u, c01, 64u);
  subgroupMatrixStore<row_major>(&Cs, (sm + 16u) * 64u + sn, c10, 64u);
  subgroupMatrixStore<row_major>(&Cs, (sm + 16u) * 64u + sn + 16u, c11, 64u);
  workgroupBarrier();
  // Epilogue: 64 rows x 16 groups of 4 columns, 8 groups per invocation.
  for (var e = 0u; e < 8u; e++) {
    let gi = li + 128u * e;
    let r = gi / 16u;
    let c4 = gi % 16u;
    let row = row0 + r;
    let c0 = col0 + 4u * c4;
    if (row >= p.M || c0 >= p.N) { continue; }
    let n = min(4u, p.N - c0);
    var v4 = vec4<f32>(0.0);
    for (var j = 0u; j < n; j++) {
      let c = c0 + j;
      var v = p.alpha * Cs[r * 64u + 4u * c4 + j];
      if (p.hasBias != 0u) { v += bias[c]; }
      v = activate(v, p.act);
      if (p.hasRes != 0u) { v += R[p.rOff + resRow(row) * p.ldr + c]; }
      v4[j] = v;
    }
    storeC4(p.cOff + row * p.ldc + c0, v4, n);
  }
}
