// ViT token assembly for ZSE's learnable tokenizer (zse-sbir.md §3.1):
//   out[b, 0]   = cls + pos[0]
//   out[b, 1+t] = (patch[b, t] + stem[b, t]) / 2 + pos[1+t]
// patch and stem are already in token layout [B, T-1, D] (the convs write them so).

struct Params { B: u32, T: u32, D: u32 }

@group(0) @binding(0) var<storage, read> patchTok: array<f32>;
@group(0) @binding(1) var<storage, read> stem: array<f32>;
@group(0) @binding(2) var<storage, read> cls: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.B * p.T * p.D) { return; }
  let d = idx % p.D;
  let t = (idx / p.D) % p.T;
  let b = idx / (p.D * p.T);
  if (t == 0u) {
    out[idx] = cls[d] + pos[d];
  } else {
    let s = (b * (p.T - 1u) + t - 1u) * p.D + d;
    out[idx] = (patchTok[s] + stem[s]) / 2.0 + pos[t * p.D + d];
  }
}
