// out[p] = in[index[p*stride + col]] for rows of `rowSize` floats: builds pair batches (sketch s, photo j)
// from per-image tensors without a host round trip.

struct Params { P: u32, rowSize: u32, stride: u32, col: u32, rowsIn: u32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 64u;
  if (idx >= p.P * p.rowSize) { return; }
  let pr = idx / p.rowSize;
  let src = min(index[pr * p.stride + p.col], p.rowsIn - 1u);
  Y[idx] = X[src * p.rowSize + idx % p.rowSize];
}
