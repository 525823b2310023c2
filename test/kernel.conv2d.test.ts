import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d, CONV_SMALL_INVOCATIONS, nchw, tokensLayout, type ConvBlock, type ConvVariant } from '../src/graph/ops/conv2d.ts';
import { Graph } from '../src/graph/graph.ts';
import { conv2dRef } from './ref.ts';
import { assertClose, rand, runGraph } from './util.ts';

// Sums of Ci*K*K products of values in [-1,1]: 2e-5 absolute covers fp32 rounding for up to ~1000 terms.
const TOL = 2e-5;

const cases = [
  // the ZSE-SBIR conv shapes at odd sizes: patch (k16 s16 bias), stem (k7 s2 p3, k3 s2 p1), anchor (k2 s2 bias)
  { N: 2, Ci: 3, H: 35, W: 33, Co: 5, k: 16, s: 16, p: 0, bias: true, relu: false },
  { N: 1, Ci: 3, H: 23, W: 19, Co: 7, k: 7, s: 2, p: 3, bias: false, relu: true },
  { N: 3, Ci: 5, H: 13, W: 11, Co: 9, k: 3, s: 2, p: 1, bias: false, relu: false },
  { N: 2, Ci: 6, H: 7, W: 7, Co: 3, k: 2, s: 2, p: 0, bias: true, relu: false },
  // off the 8-pixel x 8-channel register block and the 64-block workgroup: partial pixel and channel blocks,
  // more than one workgroup, odd batches; the model's stem at a smaller size
  { N: 3, Ci: 3, H: 61, W: 45, Co: 12, k: 7, s: 2, p: 3, bias: false, relu: true },
  { N: 1, Ci: 9, H: 30, W: 30, Co: 17, k: 3, s: 2, p: 1, bias: false, relu: true },
  { N: 2, Ci: 5, H: 9, W: 20, Co: 8, k: 3, s: 1, p: 1, bias: true, relu: false },
  { N: 1, Ci: 2, H: 5, W: 5, Co: 3, k: 5, s: 1, p: 2, bias: true, relu: true },
  // the patch conv's vec4 path (kernel == stride, no padding, rows a multiple of 4 floats), with a ragged edge
  { N: 3, Ci: 3, H: 48, W: 56, Co: 11, k: 16, s: 16, p: 0, bias: true, relu: false },
  { N: 1, Ci: 2, H: 35, W: 44, Co: 9, k: 4, s: 4, p: 0, bias: false, relu: true },
];

// Each case with both register blocks: 8 x 8 (the default here) and 4 x 4 (GPUs' for small convolutions).
for (const block of [8, 4] as ConvBlock[]) for (const c of cases) {
  test(`conv2d N${c.N} ${c.Ci}->${c.Co} ${c.H}x${c.W} k${c.k} s${c.s} p${c.p}${block === 4 ? ' [4x4 blocks]' : ''}`, async () => {
    const x = rand(c.N * c.Ci * c.H * c.W, 11), w = rand(c.Co * c.Ci * c.k * c.k, 12), b = rand(c.Co, 13);
    const out = await runGraph((g) => {
      const xi = g.input('x', [c.N, c.Ci, c.H, c.W]);
      const wi = g.input('w', [c.Co, c.Ci, c.k, c.k]);
      const bi = g.input('b', [c.Co]);
      g.output('y', conv2d(g, xi, wi, { N: c.N, Ci: c.Ci, H: c.H, W: c.W, Co: c.Co, kernel: c.k, stride: c.s, pad: c.p, bias: c.bias ? bi : null, relu: c.relu, block }));
      assert.is(g.nodes[0]!.kernel.name, block === 4 ? 'conv2d/b4' : 'conv2d');
    }, { x, w, b });
    const ref = conv2dRef(x, w, c.bias ? b : null, c.N, c.Ci, c.H, c.W, c.Co, c.k, c.k, c.s, c.p, c.relu);
    assertClose(out.y!, ref.out, TOL, TOL, 'conv');
  });
}

// The kernels every layout test runs: the direct kernel at both blocks and the implicit GEMM at both tiles.
const KERNELS: { tag: string; o: { block?: ConvBlock; variant?: ConvVariant } }[] = [
  { tag: '', o: { block: 8 } }, { tag: ' [4x4 blocks]', o: { block: 4 } }, { tag: ' [gemm32]', o: { variant: 'gemm32' } }, { tag: ' [gemm64]', o: { variant: 'gemm64' } },
];

for (const { tag, o: kern } of KERNELS) test(`conv2d patch path writes token rows from an offset input (the model's patch embedding, zse-sbir.md §3.1)${tag}`, async () => {
  // Images at an offset of 8 floats in their buffer; output [N, 1 + G*G, Co] rows after one cls row.
  const N = 3, Ci = 3, S = 64, k = 16, G = S / k, Co = 10, rowsPer = 1 + G * G, off = 8;
  const x = rand(off + N * Ci * S * S, 23), w = rand(Co * Ci * k * k, 24), b = rand(Co, 25);
  const out = await runGraph((g) => {
    const xi = g.input('x', [off + N * Ci * S * S]);
    const y = g.intermediate('y', [N, rowsPer, Co]);
    conv2d(g, xi, g.input('w', [Co, Ci, k, k]), { N, Ci, H: S, W: S, Co, kernel: k, stride: k, pad: 0, bias: g.input('b', [Co]), inLayout: nchw(Ci, S, S, off), out: y, outLayout: tokensLayout(Co, rowsPer, G, G, 1), ...kern });
    g.output('y', y);
  }, { x, w, b });
  const ref = conv2dRef(x.subarray(off), w, b, N, Ci, S, S, Co, k, k, k, 0).out;
  const got = new Float32Array(ref.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < Co; c++) for (let t = 0; t < G * G; t++) got[(n * Co + c) * G * G + t] = out.y![(n * rowsPer + 1 + t) * Co + c]!;
  assertClose(got, ref, TOL, TOL, 'patch tokens');
});

for (const { tag, o: kern } of KERNELS) test(`conv2d writes token layout with a row offset${tag}`, async () => {
  // (4 input channels for the implicit GEMM, whose Ci*K*K must be a multiple of 4.)
  const N = 2, Ci = kern.variant ? 4 : 3, H = 9, W = 10, Co = 4, k = 3, s = 2, p = 1;
  const OH = 5, OW = 5, rowsPer = OH * OW + 1;
  const x = rand(N * Ci * H * W, 21), w = rand(Co * Ci * k * k, 22);
  const out = await runGraph((g) => {
    const xi = g.input('x', [N, Ci, H, W]);
    const wi = g.input('w', [Co, Ci, k, k]);
    const y = g.intermediate('y', [N, rowsPer, Co]);
    conv2d(g, xi, wi, { N, Ci, H, W, Co, kernel: k, stride: s, pad: p, out: y, outLayout: tokensLayout(Co, rowsPer, OH, OW, 1), ...kern });
    g.output('y', y);
  }, { x, w });
  const ref = conv2dRef(x, w, null, N, Ci, H, W, Co, k, k, s, p).out;
  const got = new Float32Array(ref.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < Co; c++) for (let t = 0; t < OH * OW; t++) got[(n * Co + c) * OH * OW + t] = out.y![(n * rowsPer + 1 + t) * Co + c]!;
  assertClose(got, ref, TOL, TOL, 'conv tokens');
});

for (const { tag, o: kern } of KERNELS) test(`conv2d reads the raw view of [T, D] tokens as [D, G, G] (zse-sbir.md §3.4)${tag}`, async () => {
  // per sample: [1 + G*G, D] tokens; drop cls, reinterpret the [G*G, D] memory as D channels of GxG
  const N = 2, G = 5, D = 7, Co = 3, T = 1 + G * G;
  const tok = rand(N * T * D, 31), w = rand(Co * D * 4, 32), b = rand(Co, 33);
  const out = await runGraph((g) => {
    const x = g.input('x', [N, T, D]);
    const wi = g.input('w', [Co, D, 2, 2]);
    const bi = g.input('b', [Co]);
    g.output('y', conv2d(g, x, wi, { N, Ci: D, H: G, W: G, Co, kernel: 2, stride: 2, pad: 0, bias: bi, inLayout: { ...nchw(D, G, G, D), sN: T * D }, ...kern }));
  }, { x: tok, w, b });
  const raw = new Float32Array(N * D * G * G);
  for (let n = 0; n < N; n++) raw.set(tok.subarray(n * T * D + D, (n + 1) * T * D), n * D * G * G);
  assertClose(out.y!, conv2dRef(raw, w, b, N, D, G, G, Co, 2, 2, 2, 0).out, TOL, TOL, 'anchor conv');
});

// The implicit GEMM (shaders/conv2d/gemm.wgsl on the sliced-K kernel) at both tiles: every case above whose
// Ci*K*K is a multiple of 4, and more with padding, strides and channel counts across the 32 and 64 tiles.
const gemmCases = [
  ...cases.filter((c) => (c.Ci * c.k * c.k) % 4 === 0),
  { N: 2, Ci: 4, H: 13, W: 11, Co: 9, k: 3, s: 2, p: 1, bias: false, relu: false },
  { N: 1, Ci: 8, H: 30, W: 29, Co: 37, k: 3, s: 2, p: 1, bias: false, relu: true },
  { N: 3, Ci: 4, H: 9, W: 20, Co: 70, k: 3, s: 1, p: 1, bias: true, relu: false },
  { N: 1, Ci: 4, H: 23, W: 19, Co: 7, k: 7, s: 2, p: 3, bias: false, relu: true },
  { N: 2, Ci: 12, H: 17, W: 15, Co: 65, k: 3, s: 2, p: 1, bias: true, relu: true },
];
for (const variant of ['gemm32', 'gemm64'] as ConvVariant[]) for (const c of gemmCases) {
  test(`conv2d ${variant} N${c.N} ${c.Ci}->${c.Co} ${c.H}x${c.W} k${c.k} s${c.s} p${c.p}`, async () => {
    const x = rand(c.N * c.Ci * c.H * c.W, 14), w = rand(c.Co * c.Ci * c.k * c.k, 15), b = rand(c.Co, 16);
    const out = await runGraph((g) => {
      g.output('y', conv2d(g, g.input('x', [c.N, c.Ci, c.H, c.W]), g.input('w', [c.Co, c.Ci, c.k, c.k]), { N: c.N, Ci: c.Ci, H: c.H, W: c.W, Co: c.Co, kernel: c.k, stride: c.s, pad: c.p, bias: c.bias ? g.input('b', [c.Co]) : null, relu: c.relu, variant }));
      assert.is(g.nodes[0]!.kernel.name, `conv2d_gemm/sk${variant.slice(4)}`);
    }, c.bias ? { x, w, b } : { x, w });
    assertClose(out.y!, conv2dRef(x, w, c.bias ? b : null, c.N, c.Ci, c.H, c.W, c.Co, c.k, c.k, c.s, c.p, c.relu).out, TOL, TOL, 'conv');
  });
}

test('conv2d gemm refuses what it cannot run, with the reason', () => {
  const g = new Graph();
  assert.throws(() => conv2d(g, g.input('x', [1, 3, 9, 9]), g.input('w', [4, 3, 3, 3]), { N: 1, Ci: 3, H: 9, W: 9, Co: 4, kernel: 3, stride: 1, pad: 1, variant: 'gemm32' }), /Ci\*K\*K = 27 must be a multiple of 4/);
});

// The default block: 8 x 8 on CPU drivers, and on hardware for convolutions with enough 8 x 8 invocations; 4 x 4 on
// hardware below CONV_SMALL_INVOCATIONS (the ViT-B/16 stem at one image).
test('conv2d picks 4x4 blocks on hardware targets for small convolutions only', () => {
  const kernel = (software: boolean, N: number) => {
    const g = new Graph({ software });
    conv2d(g, g.input('x', [N, 64, 112, 112]), g.weight('w', [128, 64, 3, 3]), { N, Ci: 64, H: 112, W: 112, Co: 128, kernel: 3, stride: 2, pad: 1 });
    return g.nodes[0]!.kernel.name;
  };
  assert.ok(1 * 56 * 7 * 16 < CONV_SMALL_INVOCATIONS && 16 * 56 * 7 * 16 >= CONV_SMALL_INVOCATIONS);
  assert.is(kernel(false, 1), 'conv2d/b4');
  assert.is(kernel(true, 1), 'conv2d');
  assert.is(kernel(false, 16), 'conv2d');
});


// Non-square kernels with their own padding along x (InceptionV3's factorised 1x7 / 7x1 convolutions, 'same'
// padded), each written into a channel slice of one wider map: how an Inception block concatenates its branches
// (each branch's convolution stores at its channel offset, no copy). Three convolutions with their own weights fill
// channels [0, 2), [2, 2+Co), [2+Co, Co+4); a store outside its slice would overwrite a neighbour and fail.
const rectCases = [
  { N: 2, Ci: 4, H: 9, W: 11, Co: 5, kh: 1, kw: 7, s: 1, p: 0, px: 3 },
  { N: 1, Ci: 8, H: 10, W: 7, Co: 9, kh: 7, kw: 1, s: 1, p: 3, px: 0 },
  { N: 3, Ci: 4, H: 6, W: 13, Co: 3, kh: 3, kw: 5, s: 2, p: 1, px: 2 },
];
for (const { tag, o: kern } of KERNELS) for (const c of rectCases) {
  test(`conv2d ${c.kh}x${c.kw} kernel, padding ${c.p}/${c.px}, three into channel slices of one map${tag}`, async () => {
    const { N, Ci, H, W, Co, kh, kw, s, p, px } = c;
    const slices = [{ c0: 0, co: 2 }, { c0: 2, co: Co }, { c0: 2 + Co, co: 2 }], Ct = Co + 4;
    const OH = Math.floor((H + 2 * p - kh) / s) + 1, OW = Math.floor((W + 2 * px - kw) / s) + 1;
    const x = rand(N * Ci * H * W, 41);
    const ws = slices.map((sl, i) => rand(sl.co * Ci * kh * kw, 42 + i)), bs = slices.map((sl, i) => rand(sl.co, 52 + i));
    const inputs: Record<string, Float32Array> = { x };
    slices.forEach((_, i) => { inputs[`w${i}`] = ws[i]!; inputs[`b${i}`] = bs[i]!; });
    const out = await runGraph((g) => {
      const y = g.intermediate('y', [N, Ct, OH, OW]), xi = g.input('x', [N, Ci, H, W]);
      slices.forEach((sl, i) => conv2d(g, xi, g.input(`w${i}`, [sl.co, Ci, kh, kw]), {
        N, Ci, H, W, Co: sl.co, kernel: kh, kernelX: kw, stride: s, pad: p, padX: px, bias: g.input(`b${i}`, [sl.co]), relu: i === 1,
        out: y, outLayout: { ...nchw(Ct, OH, OW, sl.c0 * OH * OW) }, ...kern,
      }));
      g.output('y', y);
    }, inputs);
    slices.forEach((sl, i) => {
      const ref = conv2dRef(x, ws[i]!, bs[i]!, N, Ci, H, W, sl.co, kh, kw, s, p, i === 1, px);
      assert.is(ref.OH * ref.OW, OH * OW);
      const got = new Float32Array(ref.out.length);
      for (let n = 0; n < N; n++) for (let ch = 0; ch < sl.co; ch++) for (let t = 0; t < OH * OW; t++) got[(n * sl.co + ch) * OH * OW + t] = out.y![(n * Ct + sl.c0 + ch) * OH * OW + t]!;
      assertClose(got, ref.out, TOL, TOL, `slice ${i}`);
    });
  });
}

test('conv2d refuses a kernel larger than its padded input, with the sizes', () => {
  const g = new Graph();
  assert.throws(() => conv2d(g, g.input('x', [1, 2, 3, 5]), g.input('w', [2, 2, 1, 7]), { N: 1, Ci: 2, H: 3, W: 5, Co: 2, kernel: 1, kernelX: 7, stride: 1, pad: 0 }), /1x7 kernel .* 3x5 input/);
});

test.run();
