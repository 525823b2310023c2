// Multi-head scaled-dot-product attention for any layout and head dim up to 256: the fallback of the flash kernel
// (attention/flash.wgsl), which needs every offset, stride and the head dim to be multiples of 4 and dh <= 128. The
// model never takes this path; it keeps the op total. Same algorithm, plainly written: one invocation per (query
// row, head, batch), its query and accumulator in private arrays, an online softmax over the keys one at a time
// (running max and sum), no workgroup memory and no barrier. Loops run to a bound read from the uniforms, so
// no compiler unrolls them (llvmpipe compiles this in well under a second).
// Layouts, scaling and the causal mask as in attention/flash.wgsl (zse-sbir.md §3.3, §11.5-6).

struct Params {
  B: u32, H: u32, Tq: u32, Tk: u32, dh: u32,
  qOff: u32, qSB: u32, qSR: u32,
  kOff: u32, kSB: u32, kSR: u32,
  vOff: u32, vSB: u32, vSR: u32,
  oOff: u32, oSB: u32, oSR: u32,
  divide: u32, scale: f32, causal: u32,
  qCol: u32, kCol: u32, vCol: u32, // the pair-table column of each operand (rowOf), 2: none
  qN: u32, kN: u32, vN: u32, // and its batch count
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
@group(0) @binding(@O_BINDING@) var<storage, read_write> O: array<f32>;
@group(0) @binding(@P_BINDING@) var<uniform> p: Params;

const WG = 64u;
const MAXC = 64u; // vec4 columns: dh <= 256

// Features d..d+3 of the row at `base`, zero past dh (the clamp keeps the reads inside the row).
fn inHead(d: u32) -> vec4<bool> {
  return vec4<u32>(d, d + 1u, d + 2u, d + 3u) < vec4<u32>(p.dh);
}
fn ldQ(base: u32, d: u32) -> vec4<f32> {
  let e = p.dh - 1u;
  return select(vec4<f32>(0.0), vec4<f32>(Q[base + min(d, e)], Q[base + min(d + 1u, e)], Q[base + min(d + 2u, e)], Q[base + min(d + 3u, e)]), inHead(d));
}
fn ldK(base: u32, d: u32) -> vec4<f32> {
  let e = p.dh - 1u;
  return select(vec4<f32>(0.0), vec4<f32>(K[base + min(d, e)], K[base + min(d + 1u, e)], K[base + min(d + 2u, e)], K[base + min(d + 3u, e)]), inHead(d));
}
fn ldV(base: u32, d: u32) -> vec4<f32> {
  let e = p.dh - 1u;
  return select(vec4<f32>(0.0), vec4<f32>(V[base + min(d, e)], V[base + min(d + 1u, e)], V[base + min(d + 2u, e)], V[base + min(d + 3u, e)]), inHead(d));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.x * WG + li;
  let b = wg.z;
  let hd = wg.y * p.dh;
  let nc = (p.dh + 3u) / 4u;
  let qb = p.qOff + rowOf(b, p.qCol, p.qN) * p.qSB + min(i, p.Tq - 1u) * p.qSR + hd;
  let kBase = p.kOff + rowOf(b, p.kCol, p.kN) * p.kSB + hd;
  let vBase = p.vOff + rowOf(b, p.vCol, p.vN) * p.vSB + hd;
  var q: array<vec4<f32>, MAXC>;
  var a: array<vec4<f32>, MAXC>;
  for (var c = 0u; c < nc; c++) {
    q[c] = ldQ(qb, 4u * c);
    a[c] = vec4<f32>(0.0);
  }
  var m = -3.4e38;
  var l = 0.0;
  // Causal (CLIP's text tower): row i sees keys 0..i; a clamped row past Tq computes a copy and is not stored.
  let keys = select(p.Tk, min(p.Tk, min(i, p.Tq - 1u) + 1u), p.causal != 0u);
  for (var j = 0u; j < keys; j++) {
    let kb = kBase + j * p.kSR;
    var dv = vec4<f32>(0.0);
    for (var c = 0u; c < nc; c++) { dv = fma(q[c], ldK(kb, 4u * c), dv); }
    let dot = (dv.x + dv.y) + (dv.z + dv.w);
    let s = select(dot * p.scale, dot / p.scale, p.divide != 0u);
    let mt = max(m, s);
    let corr = exp(m - mt);
    let pr = exp(s - mt);
    m = mt;
    l = l * corr + pr;
    let vb = vBase + j * p.vSR;
    for (var c = 0u; c < nc; c++) { a[c] = fma(vec4<f32>(pr), ldV(vb, 4u * c), a[c] * corr); }
  }
  if (i < p.Tq) {
    let ob = p.oOff + b * p.oSB + i * p.oSR + hd;
    for (var c = 0u; c < nc; c++) {
      let o = a[c] / l;
      for (var k = 0u; k < 4u; k++) {
        if (4u * c + k < p.dh) { O[ob + 4u * c + k] = o[k]; }
      }
    }
  }
}
