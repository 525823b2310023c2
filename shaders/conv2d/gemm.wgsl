// A 2-D convolution as an implicit GEMM on gemm/sliced.wgsl (ops/conv2d.ts, variant 'gemm'): C [M = N*OH*OW output
// pixels, Co] = A [M, K = Ci*KH*KW] · Wᵀ, with A the im2col of the input, never written out: stageA gathers the 4
// elements of a k-quad straight from the input map (zero where a tap falls in the padding), and the weight
// [Co, Ci, KH, KW] is B as it is stored ([N, K], K contiguous; K a multiple of 4 for its vec4 loads). storeOut writes
// each output element at its place in the output layout (NCHW maps or [tokens, channels] rows), so no transpose pass
// is needed, as with the direct kernel (conv2d.wgsl). Bias and ReLU come from the GEMM epilogue (act 1); there is
// no residual and no fused LayerNorm. Why: the direct kernel re-reads each input 8 (4) times per tap and runs on
// the fp32 cores one output block per invocation; as a GEMM the convolution stages tiles of its im2col in workgroup
// memory and reuses each staged value across a whole output tile (and can move to tensor cores with the GEMMs).
//
// (Prepended by ops/conv2d.ts with the GEMM snippets: lib/f16.wgsl, gemm/epilogue.wgsl, operand A (the input, read
// through loadA) and B (the weight), gemm/norm_none.wgsl, gemm/res_none.wgsl, gemm/store_f32.wgsl, then this, then
// gemm/sliced.wgsl. The uniform block is gemm/params.wgsl's with the convolution's fields after the GEMM's
// (ops/conv2d.ts CONV_PARAMS): input H x W, output OH x OW, kernel KH x KW, stride, padding padY rows and padX columns; input element (n, ci, y,
// x) at inOff + n*inSN + ci*inSC + y*inSY + x; output (n, co, oy, ox) at outOff + n*outSN + co*outSC + oy*outSY +
// ox*outSX.)

// Row `row` of the im2col (output pixel n, oy, ox), columns 4kq .. 4kq+3 (k = (ci*KH + ky)*KW + kx).
fn stageA(row: u32, kq: u32, r: u32) -> vec4<f32> {
  let hw = p.OH * p.OW;
  let n = row / hw;
  let rem = row - n * hw;
  let oy = rem / p.OW;
  let ox = rem - oy * p.OW;
  let base = p.inOff + n * p.inSN;
  let y0 = i32(oy * p.stride) - i32(p.padY);
  let x0 = i32(ox * p.stride) - i32(p.padX);
  let kk = p.KH * p.KW;
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let k = 4u * kq + j;
    let ci = k / kk;
    let t = k - ci * kk;
    let ky = t / p.KW;
    let kx = t - ky * p.KW;
    let iy = y0 + i32(ky);
    let ix = x0 + i32(kx);
    if (k < p.K && iy >= 0 && iy < i32(p.H) && ix >= 0 && ix < i32(p.W)) {
      v[j] = loadA(base + ci * p.inSC + u32(iy) * p.inSY + u32(ix));
    }
  }
  return v;
}

// Output pixel `row`, channels c0 .. c0+n-1.
fn storeOut(row: u32, c0: u32, v: vec4<f32>, n: u32) {
  let hw = p.OH * p.OW;
  let b = row / hw;
  let rem = row - b * hw;
  let oy = rem / p.OW;
  let ox = rem - oy * p.OW;
  let o = p.outOff + b * p.outSN + oy * p.outSY + ox * p.outSX;
  for (var j = 0u; j < n; j++) { C[o + (c0 + j) * p.outSC] = v[j]; }
}
