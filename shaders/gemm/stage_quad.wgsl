// What the vec4-loading tiled kernels (gemm/sliced.wgsl, gemm/vec4.wgsl; prepended by ops/gemm.ts) share: staging, 4 rows
// m .. m+3 of A's tile (rows from row0, read through stageA of gemm/stage_rows.wgsl or conv2d/gemm.wgsl) or of B's
// (the weight rows from col0) at k-quad kq, transposed for k-major workgroup memory: k0 holds the 4 rows' values at
// k = 4kq, k1 at 4kq+1, and so on. Rows past `lim` (the operand's valid rows in the tile) and quads past K are zeros.
struct Quad { k0: vec4<f32>, k1: vec4<f32>, k2: vec4<f32>, k3: vec4<f32> }
fn stageQuad(isB: bool, row0: u32, col0: u32, m: u32, kq: u32, lim: u32) -> Quad {
  var x0 = vec4<f32>(0.0);
  var x1 = vec4<f32>(0.0);
  var x2 = vec4<f32>(0.0);
  var x3 = vec4<f32>(0.0);
  if (kq < p.K / 4u) {
    if (isB) {
      let ldb4 = p.ldb / 4u;
      let bb = (col0 + m) * ldb4 + kq;
      if (m < lim) { x0 = loadB4(bb); }
      if (m + 1u < lim) { x1 = loadB4(bb + ldb4); }
      if (m + 2u < lim) { x2 = loadB4(bb + 2u * ldb4); }
      if (m + 3u < lim) { x3 = loadB4(bb + 3u * ldb4); }
    } else {
      let ra = row0 + m;
      if (m < lim) { x0 = stageA(ra, kq, m); }
      if (m + 1u < lim) { x1 = stageA(ra + 1u, kq, m + 1u); }
      if (m + 2u < lim) { x2 = stageA(ra + 2u, kq, m + 2u); }
      if (m + 3u < lim) { x3 = stageA(ra + 3u, kq, m + 3u); }
    }
  }
  return Quad(vec4<f32>(x0.x, x1.x, x2.x, x3.x), vec4<f32>(x0.y, x1.y, x2.y, x3.y), vec4<f32>(x0.z, x1.z, x2.z, x3.z), vec4<f32>(x0.w, x1.w, x2.w, x3.w));
}

// The epilogue of 4 outputs of row r, columns c0 .. c0+3 (those inside N): alpha, bias, activation, residual, then
// storeOut (gemm/stage_rows.wgsl or conv2d/gemm.wgsl); nothing past M or N.
fn epilogue4(r: u32, c0: u32, acc: vec4<f32>) {
  if (r >= p.M || c0 >= p.N) { return; }
  let n = min(4u, p.N - c0);
  var v4 = vec4<f32>(0.0);
  for (var j = 0u; j < n; j++) {
    let c = c0 + j;
    var v = p.alpha * acc[j];
    if (p.hasBias != 0u) { v += bias[c]; }
    v = activate(v, p.act);
    if (p.hasRes != 0u) { v += R[p.rOff + resRow(r) * p.ldr + c]; }
    v4[j] = v;
  }
  storeOut(r, c0, v4, n);
}
