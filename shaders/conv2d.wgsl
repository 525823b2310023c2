// Direct 2-D convolution with arbitrary input/output strides.
// Input element (n, ci, y, x) lives at inOff + n*inSN + ci*inSC + y*inSY + x (unit column stride), output
// (n, co, oy, ox) at outOff + n*outSN + co*outSC + oy*outSY + ox*outSX; weight is [Co, Ci, KH, KW].
// The strides let one kernel read NCHW images, the raw `.view(768,14,14)` of CA tokens (zse-sbir.md §3.4),
// and write either NCHW maps or [tokens, channels] rows, so no transpose pass is ever needed.
//
// Register blocking. An invocation computes a block of P neighbouring output pixels of one row times COB output
// channels (8 x 8 = 64 accumulators; 4 x 4 on GPUs for convolutions too small to fill them with 8 x 8 blocks,
// ops/conv2d.ts): every input value it loads serves COB channels and every weight P pixels,
// against one load per multiply-add before. That is what matters on llvmpipe, where each load costs per lane,
// and it is the classic direct-convolution register tile on a GPU. The invocations of a workgroup take 64
// neighbouring pixel blocks and the same COB channels (workgroup_id.y), so their weight reads are the same
// addresses (broadcasts). Invocations past the last pixel block return at once (no barrier to wait for).
// Taps outside the image read a clamped address and count as zero, so the tap loops never branch.
//
// Entry points: `direct` for any shape; `patch4` for the non-overlapping patch conv (kernel == stride, no
// padding, kernel width and every input stride multiples of 4), which is a GEMM [pixels, Ci*K*K] x [Ci*K*K, Co]
// in disguise: it reads inputs and weights as vec4 along kx and needs no bounds checks.

struct Params {
  N: u32, Ci: u32, H: u32, W: u32,
  Co: u32, OH: u32, OW: u32,
  KH: u32, KW: u32, stride: u32, padY: u32, padX: u32,
  inOff: u32, inSN: u32, inSC: u32, inSY: u32,
  outOff: u32, outSN: u32, outSC: u32, outSY: u32, outSX: u32,
  hasBias: u32, relu: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> Wt: array<f32>;
@group(0) @binding(0) var<storage, read> X4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> Wt4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const WG = 64u;
const P = @P@u;   // output pixels per invocation (along x): 8, or 4 (ops/conv2d.ts fills the slots)
const COB = @COB@u; // output channels per invocation: 8, or 4

// The pixel block and channel block of an invocation: (n, oy, ox0) and co0.
struct Block { n: u32, oy: u32, ox0: u32, co0: u32, live: bool }

fn block(wg: vec3<u32>, nwg: vec3<u32>, li: u32) -> Block {
  let xBlocks = (p.OW + P - 1u) / P;
  let idx = (wg.x + wg.z * nwg.x) * WG + li;
  let xb = idx % xBlocks;
  let r = idx / xBlocks;
  var blk: Block;
  blk.live = r < p.N * p.OH;
  blk.oy = r % p.OH;
  blk.n = r / p.OH;
  blk.ox0 = xb * P;
  blk.co0 = wg.y * COB;
  return blk;
}

// Bias, ReLU and the strided store of 4 channels c0 .. c0+3 of pixel ox0 + q (those inside Co and OW).
fn store4(blk: Block, q: u32, c0: u32, a: vec4<f32>) {
  let ox = blk.ox0 + q;
  if (ox >= p.OW) { return; }
  let ob = p.outOff + blk.n * p.outSN + blk.oy * p.outSY + ox * p.outSX;
  for (var j = 0u; j < 4u; j++) {
    let co = blk.co0 + c0 + j;
    if (co >= p.Co) { return; }
    var v = a[j] + select(0.0, bias[co], p.hasBias != 0u);
    if (p.relu != 0u) { v = max(v, 0.0); }
    Y[ob + co * p.outSC] = v;
  }
}

// The accumulators are P x COB/4 vec4 variables (aQ_C: pixel Q, channels 4C .. 4C+3), declared and updated by
// straight-line code that ops/conv2d.ts generates (the @...@ slots): no private array indexed in a loop, which a GPU
// compiler that does not unroll the loop would put in local memory (HOPPER.md: run-time indices into register
// arrays). Each accumulator lane gets the same fma / dot in the same order as a loop over pixels and channels would.
@compute @workgroup_size(WG)
fn direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
  let blk = block(wg, nwg, li);
  if (!blk.live) { return; }
  let KK = p.KH * p.KW;
  let wStride = p.Ci * KK; // between output channels
  let lastCo = p.Co - 1u;
  @ACC_DECL@
  let iy0 = i32(blk.oy * p.stride) - i32(p.padY);
  let ix0 = i32(blk.ox0 * p.stride) - i32(p.padX);
  let xn = p.inOff + blk.n * p.inSN;
  for (var ci = 0u; ci < p.Ci; ci++) {
    for (var ky = 0u; ky < p.KH; ky++) {
      let iy = iy0 + i32(ky);
      let rowOk = iy >= 0 && iy < i32(p.H);
      let xr = xn + ci * p.inSC + u32(clamp(iy, 0, i32(p.H) - 1)) * p.inSY;
      let wr = ci * KK + ky * p.KW;
      for (var kx = 0u; kx < p.KW; kx++) {
        @DIRECT_STEP@
      }
    }
  }
  @STORE@
}

@compute @workgroup_size(WG)
fn patch4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
  let blk = block(wg, nwg, li);
  if (!blk.live) { return; }
  let K4 = p.KW / 4u;
  let wStride = p.Ci * p.KH * K4; // vec4s between output channels
  let lastCo = p.Co - 1u;
  let lastX = p.OW - 1u;
  @ACC_DECL@
  let xn = (p.inOff + blk.n * p.inSN + blk.oy * p.stride * p.inSY) / 4u;
  for (var ci = 0u; ci < p.Ci; ci++) {
    for (var ky = 0u; ky < p.KH; ky++) {
      let xr = xn + (ci * p.inSC + ky * p.inSY) / 4u;
      let wr = (ci * p.KH + ky) * K4;
      for (var k4 = 0u; k4 < K4; k4++) {
        @PATCH_STEP@
      }
    }
  }
  @STORE@
}
