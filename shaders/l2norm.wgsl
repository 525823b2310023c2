// Row-wise L2 normalisation as F.normalize(x, dim=-1, eps=1e-12): x / max(||x||, eps).
// Reads row r at inOff + r*ldx (so it can pick the cls token out of [B, T, D] tokens), writes dense rows.

struct Params { rows: u32, D: u32, ldx: u32, inOff: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

const WG = 64u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; }
  let xb = p.inOff + row * p.ldx;
  var s = 0.0;
  for (var d = li; d < p.D; d += WG) { s = fma(X[xb + d], X[xb + d], s); }
  red[li] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (li < k) { red[li] += red[li + k]; }
    workgroupBarrier();
  }
  let n = max(sqrt(red[0]), p.eps);
  for (var d = li; d < p.D; d += WG) { Y[row * p.D + d] = X[xb + d] / n; }
}
