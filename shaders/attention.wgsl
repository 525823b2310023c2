// Multi-head scaled-dot-product attention, one workgroup per (query row, head, batch), keys streamed in
// blocks of 64 with an online softmax (running max and sum), so any sequence length works.
// Q, K, V and O are [B, T, *] buffers addressed by (offset, batch stride, row stride); head h reads the
// features h*dh .. h*dh+dh-1 of a row. That covers SA's packed [q|k|v] rows (zse-sbir.md §11.6) and ZSE's
// cross-attention, where Q and V come from one modality and K from the other (§3.3): the caller just passes
// those tensors. Scores are dot*scale (SA: ×0.125) or dot/divisor (CA: /sqrt(96)), as the reference rounds.

struct Params {
  B: u32, H: u32, Tq: u32, Tk: u32, dh: u32,
  qOff: u32, qSB: u32, qSR: u32,
  kOff: u32, kSB: u32, kSR: u32,
  vOff: u32, vSB: u32, vSR: u32,
  oOff: u32, oSB: u32, oSR: u32,
  divide: u32, scale: f32,
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const BLK = 64u;
const MAXD = 256u;
var<workgroup> q: array<f32, MAXD>;
var<workgroup> prob: array<f32, BLK>;
var<workgroup> red: array<f32, BLK>;

fn reduceMax(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = BLK / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = BLK / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.x;
  let h = wg.y;
  let b = wg.z;
  let hd = h * p.dh;
  let qb = p.qOff + b * p.qSB + i * p.qSR + hd;
  for (var d = li; d < p.dh; d += BLK) { q[d] = Q[qb + d]; }
  workgroupBarrier();

  var m = -3.4e38;
  var l = 0.0;
  var acc: array<f32, 4>; // output features li, li+64, li+128, li+192
  let kBase = p.kOff + b * p.kSB + hd;
  let vBase = p.vOff + b * p.vSB + hd;
  for (var j0 = 0u; j0 < p.Tk; j0 += BLK) {
    let j = j0 + li;
    var s = -3.4e38;
    if (j < p.Tk) {
      var dot = 0.0;
      let kr = kBase + j * p.kSR;
      for (var d = 0u; d < p.dh; d++) { dot = fma(q[d], K[kr + d], dot); }
      s = select(dot * p.scale, dot / p.scale, p.divide != 0u);
    }
    let mNew = max(m, reduceMax(s, li));
    var e = 0.0;
    if (j < p.Tk) { e = exp(s - mNew); }
    prob[li] = e;
    let corr = exp(m - mNew);
    l = l * corr + reduceSum(e, li);
    m = mNew;
    let n = min(BLK, p.Tk - j0);
    for (var r = 0u; r < 4u; r++) {
      let d = li + r * BLK;
      if (d >= p.dh) { break; }
      var a = acc[r] * corr;
      for (var t = 0u; t < n; t++) { a = fma(prob[t], V[vBase + (j0 + t) * p.vSR + d], a); }
      acc[r] = a;
    }
    workgroupBarrier();
  }
  let ob = p.oOff + b * p.oSB + i * p.oSR + hd;
  for (var r = 0u; r < 4u; r++) {
    let d = li + r * BLK;
    if (d >= p.dh) { break; }
    O[ob + d] = acc[r] / l;
  }
}
