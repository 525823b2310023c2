// Row-wise layer normalisation, two passes over the row (mean, then the centred sum of squares) for accuracy.
// Software adapters: one invocation per row and no workgroup memory or barrier (on llvmpipe a barrier turns the
// shader into a coroutine, and the old 128-wide tree reduction per row cost more than the arithmetic); neighbouring
// invocations take neighbouring rows. GPUs (entries wg4, wg4h): one workgroup per row, its WG invocations striding
// over the row's vec4s, two tree reductions in workgroup memory: on the H200 the one-row-per-invocation entry took
// 0.12 ms for 197 x 768 (each invocation walking a whole row alone, reads uncoalesced). Two conventions (zse-sbir.md §11.2-3):
//   kind 0, nn.LayerNorm:     y = (x - mean) / sqrt(var_biased + eps) * g + b      (SA, eps 1e-5)
//   kind 1, ZSE's CA norm:    y = g * (x - mean) / (std_unbiased + eps) + b        (CA, eps 1e-6 on the std)
// Entry point `rows4` reads and writes vec4s (D, ldx and ldy multiples of 4, every model shape); `rows4h` stores
// binary16 instead (lib/f16.wgsl is prepended); `rows1` is the same on f32 for any D. All accumulate in four partial
// sums.

struct Params { rows: u32, D: u32, ldx: u32, ldy: u32, kind: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(0) var<storage, read> X4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> G4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Y4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> Yh: array<vec2<u32>>; // binary16, 4 per element (rows4h)
@group(0) @binding(4) var<uniform> p: Params;

const WG = 64u;

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// A row's mean and its scale: 1/sqrt(var_biased + eps) (kind 0) or std_unbiased + eps (kind 1), two passes.
fn rowStats4(xb: u32, n: u32) -> vec2<f32> {
  var s = vec4<f32>(0.0);
  for (var c = 0u; c < n; c++) { s += X4[xb + c]; }
  let mean = hsum(s) / f32(p.D);
  var ss = vec4<f32>(0.0);
  for (var c = 0u; c < n; c++) {
    let d = X4[xb + c] - mean;
    ss = fma(d, d, ss);
  }
  if (p.kind == 0u) { return vec2<f32>(mean, 1.0 / sqrt(hsum(ss) / f32(p.D) + p.eps)); }
  return vec2<f32>(mean, sqrt(hsum(ss) / f32(p.D - 1u)) + p.eps);
}
// Four outputs of a row, each convention with its own order of operations (as the reference rounds).
fn normed4(xb: u32, c: u32, st: vec2<f32>) -> vec4<f32> {
  if (p.kind == 0u) { return (X4[xb + c] - st.x) * st.y * G4[c] + B4[c]; }
  return G4[c] * (X4[xb + c] - st.x) / st.y + B4[c];
}

// The row an invocation of rows4 / rows4h takes (neighbouring invocations, neighbouring rows), its vec4 offsets and
// stats; ok is false past the last row.
struct Row4 { ok: bool, xb: u32, yb: u32, st: vec2<f32> }
fn row4(wg: vec3<u32>, nwg: vec3<u32>, li: u32) -> Row4 {
  let row = (wg.x + wg.y * nwg.x) * WG + li;
  if (row >= p.rows) { return Row4(false, 0u, 0u, vec2<f32>(0.0)); }
  let xb = row * (p.ldx / 4u);
  return Row4(true, xb, row * (p.ldy / 4u), rowStats4(xb, p.D / 4u));
}

@compute @workgroup_size(WG)
fn rows4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
  let r = row4(wg, nwg, li);
  if (!r.ok) { return; }
  for (var c = 0u; c < p.D / 4u; c++) { Y4[r.yb + c] = normed4(r.xb, c, r.st); }
}

// rows4 with the output stored as binary16 (pack4h of lib/f16.wgsl): the f16 option's input of a GEMM, which would
// round it to binary16 on load anyway.
@compute @workgroup_size(WG)
fn rows4h(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
  let r = row4(wg, nwg, li);
  if (!r.ok) { return; }
  for (var c = 0u; c < p.D / 4u; c++) { Yh[r.yb + c] = pack4h(normed4(r.xb, c, r.st)); }
}

// One workgroup per row (GPUs): the sum of each invocation's partial over the workgroup (every invocation calls
// it, in uniform control flow).
var<workgroup> red: array<f32, WG>;
fn wgSum(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wgStats4(xb: u32, n: u32, li: u32) -> vec2<f32> {
  var s = vec4<f32>(0.0);
  for (var c = li; c < n; c += WG) { s += X4[xb + c]; }
  let mean = wgSum(hsum(s), li) / f32(p.D);
  var ss = vec4<f32>(0.0);
  for (var c = li; c < n; c += WG) {
    let d = X4[xb + c] - mean;
    ss = fma(d, d, ss);
  }
  let q = wgSum(hsum(ss), li);
  if (p.kind == 0u) { return vec2<f32>(mean, 1.0 / sqrt(q / f32(p.D) + p.eps)); }
  return vec2<f32>(mean, sqrt(q / f32(p.D - 1u)) + p.eps);
}

@compute @workgroup_size(WG)
fn wg4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; } // the same for the whole workgroup
  let xb = row * (p.ldx / 4u);
  let yb = row * (p.ldy / 4u);
  let st = wgStats4(xb, p.D / 4u, li);
  for (var c = li; c < p.D / 4u; c += WG) { Y4[yb + c] = normed4(xb, c, st); }
}

@compute @workgroup_size(WG)
fn wg4h(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; }
  let xb = row * (p.ldx / 4u);
  let yb = row * (p.ldy / 4u);
  let st = wgStats4(xb, p.D / 4u, li);
  for (var c = li; c < p.D / 4u; c += WG) { Yh[yb + c] = pack4h(normed4(xb, c, st)); }
}

@compute @workgroup_size(WG)
fn rows1(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
  let row = (wg.x + wg.y * nwg.x) * WG + li;
  if (row >= p.rows) { return; }
  let n4 = p.D & ~3u;
  let xb = row * p.ldx;
  var s = vec4<f32>(0.0);
  for (var d = 0u; d < n4; d += 4u) { s += vec4<f32>(X[xb + d], X[xb + d + 1u], X[xb + d + 2u], X[xb + d + 3u]); }
  for (var d = n4; d < p.D; d++) { s.x += X[xb + d]; }
  let mean = hsum(s) / f32(p.D);
  var ss = vec4<f32>(0.0);
  for (var d = 0u; d < n4; d += 4u) {
    let c = vec4<f32>(X[xb + d], X[xb + d + 1u], X[xb + d + 2u], X[xb + d + 3u]) - mean;
    ss = fma(c, c, ss);
  }
  for (var d = n4; d < p.D; d++) {
    let c = X[xb + d] - mean;
    ss.x = fma(c, c, ss.x);
  }
  let yb = row * p.ldy;
  if (p.kind == 0u) {
    let inv = 1.0 / sqrt(hsum(ss) / f32(p.D) + p.eps);
    for (var d = 0u; d < p.D; d++) { Y[yb + d] = (X[xb + d] - mean) * inv * G[d] + B[d]; }
  } else {
    let den = sqrt(hsum(ss) / f32(p.D - 1u)) + p.eps;
    for (var d = 0u; d < p.D; d++) { Y[yb + d] = G[d] * (X[xb + d] - mean) / den + B[d]; }
  }
}
