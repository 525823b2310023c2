// Token embedding lookup plus learned positions (CLIP's text tower input, docs/caan.md):
//   out[n, t, :] = table[ids[n, t], :] + pos[t, :]
// ids are u32 [N, L]; an id past the table is clamped here (the host rejects it before, with a message).

struct Params { N: u32, L: u32, D: u32, vocab: u32 }

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.N * p.L * p.D) { return; }
  let d = idx % p.D;
  let row = idx / p.D;
  let id = min(ids[row], p.vocab - 1u);
  out[idx] = table[id * p.D + d] + pos[(row % p.L) * p.D + d];
}
