// Cosine matrices between two sets of rows per pair, as the reference's cos_similar (zse-sbir.md §3.5):
//   S[p, i, j] = (X[p, i] · Y[p, j]) / ||X[p, i]|| / ||Y[p, j]||,   NaN -> 0 (a zero norm), no eps,
// divided by the first norm, then the second, as the reference does. X is [P, A, C], Y is [P, B, C].
//   main: S flattened i-major ([P, A*B], i*B + j): the relation network's input (B = A, sketch anchors first).
//   best: max over j of S[p, i, j] ([P, A]): CAAN's local text-image score, each anchor's best-matching word.

struct Params { P: u32, A: u32, B: u32, C: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Y: array<f32>;
@group(0) @binding(2) var<storage, read_write> S: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn cosine(pr: u32, i: u32, j: u32) -> f32 {
  let a = (pr * p.A + i) * p.C;
  let b = (pr * p.B + j) * p.C;
  var dot = 0.0;
  var na = 0.0;
  var nb = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let x = X[a + c];
    let y = Y[b + c];
    dot = fma(x, y, dot);
    na = fma(x, x, na);
    nb = fma(y, y, nb);
  }
  // A zero norm makes the reference's 0/0 a NaN, which it replaces by 0. Tested explicitly: compilers may
  // fold `s != s` to false.
  var s = 0.0;
  if (na > 0.0 && nb > 0.0) { s = dot / sqrt(na) / sqrt(nb); }
  return s;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.P * p.A * p.B) { return; }
  let j = idx % p.B;
  let i = (idx / p.B) % p.A;
  let pr = idx / (p.A * p.B);
  S[idx] = cosine(pr, i, j);
}

@compute @workgroup_size(64)
fn best(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.P * p.A) { return; }
  let i = idx % p.A;
  let pr = idx / p.A;
  var m = cosine(pr, i, 0u);
  for (var j = 1u; j < p.B; j++) { m = max(m, cosine(pr, i, j)); }
  S[idx] = m;
}
