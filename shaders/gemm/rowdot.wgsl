// (activate(), erf_ and the operand rounding op1/op4 come from gemm/epilogue.wgsl, prepended by ops/gemm.ts.)
// C = act(alpha * A · Bᵀ + bias) + R, the same contract as gemm/tiled.wgsl, for adapters where workgroup memory and
// barriers are expensive (CPU drivers such as lavapipe and SwiftShader): no workgroup memory at all. Both A [M,K]
// and B [N,K] are read along K as vec4 (K, lda, ldb and aOff must be multiples of 4; the host checks), each
// invocation keeps a 4x4 block of C in registers: 8 vec4 loads feed 16 vec4 FMAs per step of 4 along K.
// Rows and columns past M or N are clamped on load and skipped on store, so any M and N work.

// (Params, the uniform block every GEMM kernel shares, is gemm/params.wgsl.)

// (A and B, bindings 0 and 1, with their loaders loadA4 / loadB4, and C, binding 4, with storeC4, are prepended:
// gemm/operand_*.wgsl, gemm/store_*.wgsl; so is gemm/norm_none.wgsl, or gemm/norm_ln.wgsl for a LayerNorm fused
// into A's loads, which moves C to binding 6 and the uniform block to 7: each invocation computes the statistics of
// its own 4 rows, as there is no workgroup memory to share them in.)
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> R: array<f32>;
@group(0) @binding(@P_BINDING@) var<uniform> p: Params;


// 8x8 invocations, each a 4x4 block: a TILE x TILE tile of C per workgroup.
const TILE = 32u;
@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m0 = wg.y * TILE + lid.y * 4u;
  let n0 = wg.x * TILE + lid.x * 4u;
  if (m0 >= p.M || n0 >= p.N) { return; }
  let K4 = p.K / 4u;
  var a: array<u32, 4>;
  var b: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    a[i] = (p.aOff + min(m0 + i, p.M - 1u) * p.lda) / 4u;
    b[i] = (min(n0 + i, p.N - 1u) * p.ldb) / 4u;
  }
  var st: array<vec2<f32>, 4>; // the fused LayerNorm's mean and 1/std of the 4 rows (NORM_A)
  if (NORM_A) {
    for (var i = 0u; i < 4u; i++) { st[i] = rowNorm(min(m0 + i, p.M - 1u)); }
  }
  var acc: array<vec4<f32>, 4>; // acc[i][j] = C[m0+i, n0+j]
  for (var k = 0u; k < K4; k++) {
    let b0 = loadB4(b[0] + k);
    let b1 = loadB4(b[1] + k);
    let b2 = loadB4(b[2] + k);
    let b3 = loadB4(b[3] + k);
    for (var i = 0u; i < 4u; i++) {
      let av = loadAN4(a[i] + k, k, st[i]);
      acc[i] += vec4<f32>(dot(av, b0), dot(av, b1), dot(av, b2), dot(av, b3));
    }
  }
  let n = min(4u, p.N - n0);
  for (var i = 0u; i < 4u; i++) {
    let r = m0 + i;
    if (r >= p.M) { break; }
    var v4 = vec4<f32>(0.0);
    for (var j = 0u; j < n; j++) {
      let c = n0 + j;
      var v = p.alpha * acc[i][j];
      if (p.hasBias != 0u) { v += bias[c]; }
      v = activate(v, p.act);
      if (p.hasRes != 0u) { v += R[p.rOff + resRow(r) * p.ldr + c]; }
      v4[j] = v;
    }
    storeC4(p.cOff + r * p.ldc + n0, v4, n);
  }
}
