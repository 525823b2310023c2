// (activate(), erf_ and the operand rounding op1/op4 come from gemm/epilogue.wgsl, prepended by ops/gemm.ts.)
// C = act(alpha * A · Bᵀ + bias) + R, register-tiled for GPUs, with vec4 loads and vec4 FMAs.
// A [M,K] (row stride lda, element offset aOff), B [N,K] (PyTorch Linear weight layout, row stride ldb),
// bias [N], R [M,N] (row stride ldr, offset rOff), C [M,N] (row stride ldc, offset cOff).
// Needs K, lda, ldb and aOff to be multiples of 4 (the global loads are vec4 along K); M and N are free.
//
// A workgroup of 16x16 invocations computes a 128x128 tile of C; each invocation an 8x8 block held in 16 vec4
// registers: rows {4ty..4ty+3, 64+4ty..64+4ty+3} x columns {4tx..4tx+3, 64+4tx..64+4tx+3}. They are 16 vec4
// variables (cR_H: row R of the 8, column half H) updated by straight-line code that ops/gemm.ts writes out (the
// ACC_DECL, STEP, STORE slots), not an array indexed in loops, which a GPU compiler that keeps a loop rolled puts in
// local memory (HOPPER.md; the H200 run found this kernel 6-12x slower than the tiled one, 2026-12-04). K advances in steps of
// 16 through workgroup memory, stored k-major ([16][128] per operand, as vec4 along M or N), so each k step reads
// two vec4 of A and two of B and does 32 vec4 FMAs: 4 loads per 32 FMAs, against 8 per 16 in gemm/tiled.wgsl.
// Loads past M, N or K read zeros; stores past M or N are skipped.

// (Params, the uniform block every GEMM kernel shares, is gemm/params.wgsl.)

// (A and B, bindings 0 and 1, with their loaders loadA4 / loadB4, and C, binding 4, with storeC4, are prepended (no LayerNorm is fused into this kernel):
// gemm/operand_*.wgsl, gemm/store_*.wgsl; so are gemm/stage_rows.wgsl and gemm/stage_quad.wgsl, the staging it
// shares with gemm/sliced.wgsl.)
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> R: array<f32>;
@group(0) @binding(@P_BINDING@) var<uniform> p: Params;

const T = 128u;  // tile rows and columns
const TK = 16u;  // K per stage
const T4 = 32u;  // T / 4: vec4 per k row of a staged tile

var<workgroup> As: array<vec4<f32>, 512>; // [TK][T/4]: As[k*T4 + m/4][m%4] = A[row0 + m, k0 + k]
var<workgroup> Bs: array<vec4<f32>, 512>; // [TK][T/4]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * T;
  let col0 = wg.x * T;
  // Staging: per operand, 128 rows x 4 vec4 (16 k) = 32 groups of 4 rows x 4 k-quads = 128 tasks; invocations
  // 0..127 stage A, 128..255 stage B (whole warps either way). A task loads a 4x4 block (4 rows' vec4 at one
  // k-quad) and writes it transposed as 4 whole vec4 (4 k x 4 rows), so no two invocations touch one vec4.
  let task = li % 128u;
  let rg = task / 4u;
  let lq = task % 4u;
  let isB = li >= 128u;
  let lim = select(p.M - min(p.M, row0), p.N - min(p.N, col0), isB); // valid rows of this operand's tile
  @ACC_DECL@
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    let x = stageQuad(isB, row0, col0, 4u * rg, k0 / 4u + lq, lim);
    let at = 4u * lq * T4 + rg;
    if (isB) {
      Bs[at] = x.k0;
      Bs[at + T4] = x.k1;
      Bs[at + 2u * T4] = x.k2;
      Bs[at + 3u * T4] = x.k3;
    } else {
      As[at] = x.k0;
      As[at + T4] = x.k1;
      As[at + 2u * T4] = x.k2;
      As[at + 3u * T4] = x.k3;
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      let a0 = As[k * T4 + lid.y];
      let a1 = As[k * T4 + 16u + lid.y];
      let b0 = Bs[k * T4 + lid.x];
      let b1 = Bs[k * T4 + 16u + lid.x];
      @STEP@
    }
    workgroupBarrier();
  }
  @STORE@
}

