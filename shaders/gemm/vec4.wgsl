// (activate(), erf_ and the operand rounding op1/op4 come from gemm/epilogue.wgsl, prepended by ops/gemm.ts.)
// C = act(alpha * A · Bᵀ + bias) + R, register-tiled for GPUs, with vec4 loads and vec4 FMAs.
// A [M,K] (row stride lda, element offset aOff), B [N,K] (PyTorch Linear weight layout, row stride ldb),
// bias [N], R [M,N] (row stride ldr, offset rOff), C [M,N] (row stride ldc, offset cOff).
// Needs K, lda, ldb and aOff to be multiples of 4 (the global loads are vec4 along K); M and N are free.
//
// A workgroup of 16x16 invocations computes a 128x128 tile of C; each invocation an 8x8 block held in 16 vec4
// registers: rows {4ty..4ty+3, 64+4ty..64+4ty+3} x columns {4tx..4tx+3, 64+4tx..64+4tx+3}. K advances in steps of
// 16 through workgroup memory, stored k-major ([16][128] per operand, as vec4 along M or N), so each k step reads
// two vec4 of A and two of B and does 32 vec4 FMAs: 4 loads per 32 FMAs, against 8 per 16 in gemm/tiled.wgsl.
// Loads past M, N or K read zeros; stores past M or N are skipped.

// (Params, the uniform block every GEMM kernel shares, is in gemm/epilogue.wgsl.)

// (A and B, bindings 0 and 1, with their loaders loadA4 / loadB4, and C, binding 4, with storeC4, are prepended (no LayerNorm is fused into this kernel):
// gemm/operand_*.wgsl, gemm/store_*.wgsl.)
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
  let K4 = p.K / 4u;
  let lda4 = p.lda / 4u;
  let ldb4 = p.ldb / 4u;
  let aOff4 = p.aOff / 4u;
  // Staging: per operand, 128 rows x 4 vec4 (16 k) = 32 groups of 4 rows x 4 k-quads = 128 tasks; invocations
  // 0..127 stage A, 128..255 stage B (whole warps either way). A task loads a 4x4 block (4 rows' vec4 at one
  // k-quad) and writes it transposed as 4 whole vec4 (4 k x 4 rows), so no two invocations touch one vec4.
  let task = li % 128u;
  let rg = task / 4u;
  let lq = task % 4u;
  let isB = li >= 128u;
  let lim = select(p.M - min(p.M, row0), p.N - min(p.N, col0), isB); // valid rows of this operand's tile
  var acc: array<vec4<f32>, 16>; // acc[2*i + h]: row (i<4 ? 4ty+i : 64+4ty+i-4), columns 64h+4tx .. +3
  for (var k0 = 0u; k0 < p.K; k0 += TK) {
    let kq = k0 / 4u + lq;
    var x: array<vec4<f32>, 4>;
    for (var e = 0u; e < 4u; e++) {
      let m = 4u * rg + e;
      if (m < lim && kq < K4) {
        if (isB) { x[e] = loadB4((col0 + m) * ldb4 + kq); } else { x[e] = loadA4(aOff4 + (row0 + m) * lda4 + kq); }
      } else {
        x[e] = vec4<f32>(0.0);
      }
    }
    for (var kk = 0u; kk < 4u; kk++) {
      let v = vec4<f32>(x[0][kk], x[1][kk], x[2][kk], x[3][kk]);
      let at = (4u * lq + kk) * T4 + rg;
      if (isB) { Bs[at] = v; } else { As[at] = v; }
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      let a0 = As[k * T4 + lid.y];
      let a1 = As[k * T4 + 16u + lid.y];
      let b0 = Bs[k * T4 + lid.x];
      let b1 = Bs[k * T4 + 16u + lid.x];
      for (var i = 0u; i < 4u; i++) {
        acc[2u * i] = fma(vec4<f32>(a0[i]), b0, acc[2u * i]);
        acc[2u * i + 1u] = fma(vec4<f32>(a0[i]), b1, acc[2u * i + 1u]);
        acc[8u + 2u * i] = fma(vec4<f32>(a1[i]), b0, acc[8u + 2u * i]);
        acc[8u + 2u * i + 1u] = fma(vec4<f32>(a1[i]), b1, acc[8u + 2u * i + 1u]);
      }
    }
    workgroupBarrier();
  }
  for (var ri = 0u; ri < 8u; ri++) {
    let r = row0 + select(4u * lid.y + ri, 64u + 4u * lid.y + ri - 4u, ri >= 4u);
    if (r >= p.M) { continue; }
    for (var h = 0u; h < 2u; h++) {
      let c0 = col0 + 64u * h + 4u * lid.x;
      if (c0 >= p.N) { continue; }
      let n = min(4u, p.N - c0);
      let a4 = acc[2u * ri + h];
      var v4 = vec4<f32>(0.0);
      for (var j = 0u; j < n; j++) {
        let c = c0 + j;
        var v = p.alpha * a4[j];
        if (p.hasBias != 0u) { v += bias[c]; }
        v = activate(v, p.act);
        if (p.hasRes != 0u) { v += R[p.rOff + resRow(r) * p.ldr + c]; }
        v4[j] = v;
      }
      storeC4(p.cOff + r * p.ldc + c0, v4, n);
    }
  }
}
