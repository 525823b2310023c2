// Bilinear resize with align_corners=True (torch.nn.functional.interpolate(mode='bilinear', align_corners=True),
// which is also TensorFlow's resizeBilinear(alignCorners=true)), then an affine map a·v + b per output value.
// NCHW in, NCHW out; one invocation per output value. The source position is scale · dst with scale = (in - 1) /
// (out - 1) computed on the host in float32 (ops/resize.ts), and the four taps are weighted as PyTorch's CPU
// kernel does: (1 - ly) · ((1 - lx) · v00 + lx · v01) + ly · ((1 - lx) · v10 + lx · v11).

struct Params { N: u32, C: u32, H: u32, W: u32, OH: u32, OW: u32, scaleY: f32, scaleX: f32, a: f32, b: f32 }

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.N * p.C * p.OH * p.OW) { return; }
  let ox = i % p.OW;
  let oy = (i / p.OW) % p.OH;
  let nc = i / (p.OW * p.OH);
  let sy = p.scaleY * f32(oy);
  let sx = p.scaleX * f32(ox);
  let y0 = min(u32(sy), p.H - 1u);
  let x0 = min(u32(sx), p.W - 1u);
  let dy = select(0u, p.W, y0 < p.H - 1u);
  let dx = select(0u, 1u, x0 < p.W - 1u);
  let ly = sy - f32(y0);
  let lx = sx - f32(x0);
  let base = nc * p.H * p.W + y0 * p.W + x0;
  let top = (1.0 - lx) * X[base] + lx * X[base + dx];
  let bot = (1.0 - lx) * X[base + dy] + lx * X[base + dy + dx];
  Y[i] = p.a * ((1.0 - ly) * top + ly * bot) + p.b;
}
