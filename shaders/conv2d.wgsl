// Direct 2-D convolution with arbitrary input/output strides, one output element per invocation.
// Input element (n, ci, y, x) lives at inOff + n*inSN + ci*inSC + y*inSY + x (unit column stride), output
// (n, co, oy, ox) at outOff + n*outSN + co*outSC + oy*outSY + ox*outSX; weight is [Co, Ci, KH, KW].
// The strides let one kernel read NCHW images, the raw `.view(768,14,14)` of CA tokens (zse-sbir.md §3.4),
// and write either NCHW maps or [tokens, channels] rows, so no transpose pass is ever needed.
// Invocations are ordered with co fastest: neighbours share input pixels.

struct Params {
  N: u32, Ci: u32, H: u32, W: u32,
  Co: u32, OH: u32, OW: u32,
  KH: u32, KW: u32, stride: u32, pad: u32,
  inOff: u32, inSN: u32, inSC: u32, inSY: u32,
  outOff: u32, outSN: u32, outSC: u32, outSY: u32, outSX: u32,
  hasBias: u32, relu: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  let total = p.N * p.OH * p.OW * p.Co;
  if (idx >= total) { return; }
  let co = idx % p.Co;
  var r = idx / p.Co;
  let ox = r % p.OW;
  r = r / p.OW;
  let oy = r % p.OH;
  let n = r / p.OH;
  var acc = 0.0;
  let iy0 = i32(oy * p.stride) - i32(p.pad);
  let ix0 = i32(ox * p.stride) - i32(p.pad);
  for (var ci = 0u; ci < p.Ci; ci++) {
    let xBase = p.inOff + n * p.inSN + ci * p.inSC;
    let wBase = (co * p.Ci + ci) * p.KH * p.KW;
    for (var ky = 0u; ky < p.KH; ky++) {
      let iy = iy0 + i32(ky);
      if (iy < 0 || iy >= i32(p.H)) { continue; }
      for (var kx = 0u; kx < p.KW; kx++) {
        let ix = ix0 + i32(kx);
        if (ix < 0 || ix >= i32(p.W)) { continue; }
        acc = fma(X[xBase + u32(iy) * p.inSY + u32(ix)], Wt[wBase + ky * p.KW + kx], acc);
      }
    }
  }
  if (p.hasBias != 0u) { acc += bias[co]; }
  if (p.relu != 0u) { acc = max(acc, 0.0); }
  Y[p.outOff + n * p.outSN + co * p.outSC + oy * p.outSY + ox * p.outSX] = acc;
}
