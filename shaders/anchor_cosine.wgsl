// The relation network's input (zse-sbir.md §3.5, cos_similar): for each pair p, the A x A matrix
//   S[p, i, j] = (sk[p, i] · im[p, j]) / ||sk[p, i]|| / ||im[p, j]||,   NaN -> 0 (a zero norm), no eps,
// divided by the sketch norm first and the photo norm second, as the reference does. Flattened
// sketch-anchor-major (i*A + j), which is the order the RN's first Linear expects.

struct Params { P: u32, A: u32, C: u32 }

@group(0) @binding(0) var<storage, read> SK: array<f32>;
@group(0) @binding(1) var<storage, read> IM: array<f32>;
@group(0) @binding(2) var<storage, read_write> S: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.P * p.A * p.A) { return; }
  let j = idx % p.A;
  let i = (idx / p.A) % p.A;
  let pr = idx / (p.A * p.A);
  let a = (pr * p.A + i) * p.C;
  let b = (pr * p.A + j) * p.C;
  var dot = 0.0;
  var na = 0.0;
  var nb = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let x = SK[a + c];
    let y = IM[b + c];
    dot = fma(x, y, dot);
    na = fma(x, x, na);
    nb = fma(y, y, nb);
  }
  // A zero norm makes the reference's 0/0 a NaN, which it replaces by 0. Tested explicitly: compilers may
  // fold `s != s` to false.
  var s = 0.0;
  if (na > 0.0 && nb > 0.0) { s = dot / sqrt(na) / sqrt(nb); }
  S[idx] = s;
}
