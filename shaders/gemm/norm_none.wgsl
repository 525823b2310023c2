// The plain A operand of a GEMM (prepended by ops/gemm.ts when no LayerNorm is fused into it): rowNorm, normTile,
// tileStat, loadAN and loadAN4 are the hooks the kernels that can fuse a pre-norm LayerNorm call (gemm/tiled.wgsl, gemm/rowdot.wgsl);
// here they are loadA / loadA4 unchanged and NORM_A is false, so the kernels compile to what they were without it.
const NORM_A = false;
fn rowNorm(row: u32) -> vec2<f32> { return vec2<f32>(0.0, 1.0); }
fn normTile(row0: u32, rows: u32, threads: u32, li: u32) {}
fn tileStat(r: u32) -> vec2<f32> { return vec2<f32>(0.0, 1.0); }
fn loadAN(i: u32, k: u32, st: vec2<f32>) -> f32 { return loadA(i); }
fn loadAN4(i: u32, k4: u32, st: vec2<f32>) -> vec4<f32> { return loadA4(i); }
