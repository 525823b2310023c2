// 2-D max and average pooling with arbitrary input and output strides (ops/pool2d.ts).
// Input element (n, c, y, x) lives at inOff + n*inSN + c*inSC + y*inSY + x*inSX, output (n, c, oy, ox) at
// outOff + n*outSN + c*outSC + oy*outSY + ox*outSX: the same layouts as shaders/conv2d.wgsl, here with any column
// stride on both sides, so a pool reads NCHW maps or channels-last token rows and writes into a channel slice of
// a larger map (the Inception concat, without a copy).
//
// Window of output (oy, ox): rows oy*SH - PH .. + KH - 1, columns ox*SW - PW .. + KW - 1. Only the positions
// inside the input take part, as in PyTorch and TensorFlow:
//   entry `maxPool`: the maximum of the real pixels (padding never wins: F.max_pool2d's implicit -inf padding);
//   entry `avgPool`: their sum divided by their count (F.avg_pool2d(count_include_pad=False), TF's 'same' pooling),
//                    summed in f32 row by row, left to right.
// The window is clamped to the image once, so the loops visit real pixels only and never branch; ops/pool2d.ts
// refuses a padding of a kernel or more, so every window holds at least one real pixel (for max the first one
// starts the maximum: no -inf constant, an input of -inf stays -inf).
//
// One invocation per output element, neighbouring invocations on neighbouring output columns; workgroups in x,
// folded into y past 65535 (graph/kernel.ts grid1d).

struct Params {
  N: u32, C: u32, H: u32, W: u32, OH: u32, OW: u32,
  KH: u32, KW: u32, SH: u32, SW: u32, PH: u32, PW: u32,
  inOff: u32, inSN: u32, inSC: u32, inSY: u32, inSX: u32,
  outOff: u32, outSN: u32, outSC: u32, outSY: u32, outSX: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

const WG = 64u;

// An output element's window clamped to the image (rows y0 .. y1-1, columns x0 .. x1-1), the input address of its
// (n, c) plane and its output address; ok is false past the last element.
struct Window { ok: bool, y0: u32, y1: u32, x0: u32, x1: u32, base: u32, out: u32 }

fn window(wg: vec3<u32>, nwg: vec3<u32>, li: u32) -> Window {
  var w: Window;
  let idx = (wg.x + wg.y * nwg.x) * WG + li;
  w.ok = idx < p.N * p.C * p.OH * p.OW;
  if (!w.ok) { return w; }
  let ox = idx % p.OW;
  let r = idx / p.OW;
  let oy = r % p.OH;
  let nc = r / p.OH;
  let c = nc % p.C;
  let n = nc / p.C;
  let iy = i32(oy * p.SH) - i32(p.PH);
  let ix = i32(ox * p.SW) - i32(p.PW);
  w.y0 = u32(max(iy, 0));
  w.y1 = u32(min(iy + i32(p.KH), i32(p.H)));
  w.x0 = u32(max(ix, 0));
  w.x1 = u32(min(ix + i32(p.KW), i32(p.W)));
  w.base = p.inOff + n * p.inSN + c * p.inSC;
  w.out = p.outOff + n * p.outSN + c * p.outSC + oy * p.outSY + ox * p.outSX;
  return w;
}

@compute @workgroup_size(WG)
fn maxPool(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
  let w = window(wg, nwg, li);
  if (!w.ok) { return; }
  var m = X[w.base + w.y0 * p.inSY + w.x0 * p.inSX];
  for (var y = w.y0; y < w.y1; y++) {
    let row = w.base + y * p.inSY;
    for (var x = w.x0; x < w.x1; x++) { m = max(m, X[row + x * p.inSX]); }
  }
  Y[w.out] = m;
}

@compute @workgroup_size(WG)
fn avgPool(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
  let w = window(wg, nwg, li);
  if (!w.ok) { return; }
  var s = 0.0;
  for (var y = w.y0; y < w.y1; y++) {
    let row = w.base + y * p.inSY;
    for (var x = w.x0; x < w.x1; x++) { s += X[row + x * p.inSX]; }
  }
  Y[w.out] = s / f32((w.y1 - w.y0) * (w.x1 - w.x0));
}
