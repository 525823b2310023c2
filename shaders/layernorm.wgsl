// Row-wise layer normalisation, one workgroup per row, two passes (mean, then centred sum of squares) for
// accuracy. Two conventions (zse-sbir.md §11.2-3):
//   kind 0, nn.LayerNorm:     y = (x - mean) / sqrt(var_biased + eps) * g + b      (SA, eps 1e-5)
//   kind 1, ZSE's CA norm:    y = g * (x - mean) / (std_unbiased + eps) + b        (CA, eps 1e-6 on the std)

struct Params { rows: u32, D: u32, ldx: u32, ldy: u32, kind: u32, eps: f32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const WG = 128u;
var<workgroup> red: array<f32, WG>;

fn reduceSum(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; }
  let xb = row * p.ldx;
  var s = 0.0;
  for (var d = li; d < p.D; d += WG) { s += X[xb + d]; }
  let mean = reduceSum(s, li) / f32(p.D);
  var ss = 0.0;
  for (var d = li; d < p.D; d += WG) {
    let c = X[xb + d] - mean;
    ss += c * c;
  }
  let sq = reduceSum(ss, li);
  let yb = row * p.ldy;
  if (p.kind == 0u) {
    let inv = 1.0 / sqrt(sq / f32(p.D) + p.eps);
    for (var d = li; d < p.D; d += WG) { Y[yb + d] = (X[xb + d] - mean) * inv * G[d] + B[d]; }
  } else {
    let den = sqrt(sq / f32(p.D - 1u)) + p.eps;
    for (var d = li; d < p.D; d += WG) { Y[yb + d] = G[d] * (X[xb + d] - mean) / den + B[d]; }
  }
}
