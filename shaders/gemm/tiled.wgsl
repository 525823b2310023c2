// (activate(), erf_ and the operand rounding op1/op4 come from gemm/epilogue.wgsl, prepended by ops/gemm.ts.)
// C = act(alpha * A · Bᵀ + bias) + R
// A [M,K] (row stride lda, element offset aOff), B [N,K] (PyTorch Linear weight layout, row stride ldb),
// bias [N], R [M,N] (row stride ldr, offset rOff), C [M,N] (row stride ldc, offset cOff).
// A TILE x TILE output tile per workgroup (64 or 32: the @TILE@ slot, filled by ops/gemm.ts), 4x4 per thread on a
// (TILE/4)^2 thread grid, K in steps of 16 through workgroup memory. The 16 accumulators are scalar variables
// (cI_J: row lid.y + WGS*I, column lid.x + WGS*J) updated by straight-line code that ops/gemm.ts writes out (the
// ACC_DECL, STEP and STORE slots), not a private array indexed in loops: a GPU compiler that keeps such a loop
// rolled puts the array in local memory (HOPPER.md). The same fma in the same order as loops over I and J. The 32 tile makes 4x the workgroups: for
// problems too small to fill a large GPU with 64-wide tiles (ViT-B's GEMMs at batch 1: 197 rows).
// Every load and store is bounds-checked, so M, N, K need not be multiples of the tile.

// (Params, the uniform block every GEMM kernel shares, is gemm/params.wgsl.)

// (A and B, bindings 0 and 1, with their loaders loadA / loadB, and C, binding 4, with storeC, are prepended:
// gemm/operand_*.wgsl, gemm/store_f32.wgsl; so is gemm/norm_none.wgsl, or gemm/norm_ln.wgsl for a LayerNorm fused
// into A's loads, which moves C to binding 6 and the uniform block to 7: its row statistics are computed once per
// workgroup, for the tile's rows, by normTile.)
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> R: array<f32>;
@group(0) @binding(@P_BINDING@) var<uniform> p: Params;

const TM = @TILE@u;
const TN = TM;
const TK = 16u;
const WGS = @WGS@u; // TM / 4: threads per side
const PANEL = @PANEL@u; // TK * TM

var<workgroup> As: array<f32, PANEL>; // [TK][TM]
var<workgroup> Bs: array<f32, PANEL>; // [TK][TN]

@compute @workgroup_size(WGS, WGS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * TM;
  let col0 = wg.x * TN;
  @ACC_DECL@
  normTile(row0, TM, WGS * WGS, li); // the fused LayerNorm's row statistics (nothing without one)
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    for (var e = li; e < PANEL; e += WGS * WGS) {
      let r = e / TK;
      let k = e % TK;
      let gk = k0 + k;
      var a = 0.0;
      if (row0 + r < p.M && gk < p.K) { a = loadAN(p.aOff + (row0 + r) * p.lda + gk, gk, tileStat(r)); }
      As[k * TM + r] = a;
      var b = 0.0;
      if (col0 + r < p.N && gk < p.K) { b = loadB((col0 + r) * p.ldb + gk); }
      Bs[k * TN + r] = b;
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      @STEP@
    }
    workgroupBarrier();
  }
  @STORE@
}

// Output (r, c) of the tile: alpha, bias, activation, residual, store (skipped past M or N).
fn epilogue1(r: u32, c: u32, acc: f32) {
  if (r >= p.M || c >= p.N) { return; }
  var v = p.alpha * acc;
  if (p.hasBias != 0u) { v += bias[c]; }
  v = activate(v, p.act);
  if (p.hasRes != 0u) { v += R[p.rOff + resRow(r) * p.ldr + c]; }
  storeC(p.cOff + r * p.ldc + c, v);
}
