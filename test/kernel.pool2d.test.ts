// 2-D max and average pooling (src/graph/ops/pool2d.ts, shaders/pool2d.wgsl) against pool2dRef on odd shapes: the
// InceptionV3 (Keras) front end's pools ('valid' 3x3/2 max pools, the 'same' 3x3/1 average pool of every mixed
// block) at small sizes, non-square windows, strided layouts, and a channel slice of a concatenated map.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Graph } from '../src/graph/graph.ts';
import { nchw, tokensLayout } from '../src/graph/ops/conv2d.ts';
import { pool2d, POOL2D_AVG, POOL2D_MAX, type PoolMode, type PoolOptions } from '../src/graph/ops/pool2d.ts';
import { pool2dRef } from './ref.ts';
import { assertClose, rand, runGraph } from './util.ts';

// Max: exact, as the maximum of f32 values is one of them (the float64 reference picks the same one).
// Avg: the kernel sums a window's n <= 9 real pixels in f32 and divides once; on inputs of one sign each of the n-1
// additions and the division round by at most 2^-24 relative (the division up to 2.5 ULP in WGSL), so the mean is
// within ~(n + 1.5) * 2^-24 < 7e-7 of the float64 mean, relatively: 1e-6 relative, no absolute part. On inputs of
// mixed sign the sum may cancel, so there the bound is absolute: (n-1) * 2^-24 * max|x| + 2.5 ULP < 1e-6 for |x| <= 1.
const AVG_RTOL = 1e-6;
const MIXED_ATOL = 1e-6;

// Inputs: max pools see strictly negative values, so a window that let a zero of the padding in would show at every
// border; avg pools see positive values (the relative bound above), and a case with mixed signs follows.
const input = (n: number, seed: number, mode: PoolMode) => (mode === 'max' ? rand(n, seed, -2, -0.25) : rand(n, seed, 0.25, 2));

interface Case { N: number; C: number; H: number; W: number; k: number; kx?: number; s: number; sx?: number; p: number; px?: number; what: string }
const cases: Case[] = [
  { N: 2, C: 5, H: 13, W: 9, k: 3, s: 2, p: 0, what: "Inception's 'valid' 3x3/2 pool" },
  { N: 2, C: 3, H: 11, W: 10, k: 3, s: 1, p: 1, what: "Inception's 'same' 3x3/1 pool" },
  { N: 1, C: 4, H: 9, W: 7, k: 3, kx: 1, s: 1, p: 1, px: 0, what: 'a 3x1 window, no padding along x' },
  { N: 1, C: 3, H: 8, W: 11, k: 1, kx: 3, s: 2, sx: 1, p: 0, px: 1, what: 'a 1x3 window, strides 2x1' },
  { N: 3, C: 2, H: 12, W: 11, k: 3, s: 2, p: 1, what: 'stride 2, pad 1' },
  { N: 1, C: 3, H: 7, W: 8, k: 2, s: 2, p: 1, what: 'even kernel, pad 1' },
  { N: 2, C: 9, H: 17, W: 15, k: 5, kx: 3, s: 3, sx: 2, p: 2, px: 1, what: 'several workgroups, ragged strides' },
  { N: 1, C: 2, H: 5, W: 6, k: 2, s: 3, p: 0, what: 'stride past the kernel (pixels no window reads)' },
];

const opts = (c: Case, mode: PoolMode): PoolOptions => ({ N: c.N, C: c.C, H: c.H, W: c.W, kernel: c.k, kernelX: c.kx, stride: c.s, strideX: c.sx, pad: c.p, padX: c.px, mode });
const ref = (x: ArrayLike<number>, c: Case, mode: PoolMode) => pool2dRef(x, c.N, c.C, c.H, c.W, c.k, c.kx ?? c.k, c.s, c.sx ?? c.s, c.p, c.px ?? c.p, mode);

for (const mode of ['max', 'avg'] as const) for (const [i, c] of cases.entries()) {
  test(`pool2d ${mode} N${c.N} C${c.C} ${c.H}x${c.W} k${c.k}x${c.kx ?? c.k} s${c.s}x${c.sx ?? c.s} p${c.p}x${c.px ?? c.p}: ${c.what}`, async () => {
    const x = input(c.N * c.C * c.H * c.W, 40 + i, mode);
    const out = await runGraph((g) => {
      g.output('y', pool2d(g, g.input('x', [c.N, c.C, c.H, c.W]), opts(c, mode)));
      assert.is(g.nodes[0]!.kernel, mode === 'max' ? POOL2D_MAX : POOL2D_AVG);
    }, { x });
    const r = ref(x, c, mode);
    assert.is(out.y!.length, c.N * c.C * r.OH * r.OW);
    if (mode === 'max') assertClose(out.y!, r.out, 0, 0, 'max pool');
    else assertClose(out.y!, r.out, 0, AVG_RTOL, 'avg pool');
  });
}

test('pool2d avg on inputs of both signs (absolute bound: sums may cancel)', async () => {
  const c = cases[1]!, x = rand(c.N * c.C * c.H * c.W, 50);
  const out = await runGraph((g) => { g.output('y', pool2d(g, g.input('x', [c.N, c.C, c.H, c.W]), opts(c, 'avg'))); }, { x });
  assertClose(out.y!, ref(x, c, 'avg').out, MIXED_ATOL, 0, 'avg pool');
});

test("pool2d avg 3x3/1 pad 1 ('same'): border outputs are the mean of the real pixels only (count_include_pad=False)", async () => {
  const H = 5, W = 4;
  const x = rand(H * W, 51, 0.25, 2);
  const out = await runGraph((g) => { g.output('y', pool2d(g, g.input('x', [1, 1, H, W]), { N: 1, C: 1, H, W, kernel: 3, stride: 1, pad: 1, mode: 'avg' })); }, { x });
  const px = (y: number, xx: number) => x[y * W + xx]!;
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const y = out.y!;
  // A corner: 4 real pixels of 9; an edge: 6; the interior: all 9.
  const corner = mean([px(0, 0), px(0, 1), px(1, 0), px(1, 1)]);
  const edge = mean([px(0, 0), px(0, 1), px(0, 2), px(1, 0), px(1, 1), px(1, 2)]);
  const inner = mean([0, 1, 2].flatMap((dy) => [0, 1, 2].map((dx) => px(dy, dx))));
  const far = mean([px(3, 2), px(3, 3), px(4, 2), px(4, 3)]);
  assertClose([y[0]!, y[1]!, y[1 * W + 1]!, y[4 * W + 3]!], [corner, edge, inner, far], 0, AVG_RTOL, 'avg borders');
  // What count_include_pad=True (a zero-padded mean over 9) would give is well away from it.
  assert.ok(Math.abs(y[0]! - corner * 4 / 9) > 0.1, 'the corner is not divided by 9');
});

test('pool2d max: a window of negative pixels at the border stays negative (the padding never wins), -inf stays -inf', async () => {
  const H = 4, W = 5;
  const x = rand(H * W, 52, -3, -1);
  x[0] = -Infinity; x[1] = -Infinity; x[W] = -Infinity; x[W + 1] = -Infinity; // the top-left corner's whole window
  const out = await runGraph((g) => { g.output('y', pool2d(g, g.input('x', [1, 1, H, W]), { N: 1, C: 1, H, W, kernel: 3, kernelX: 3, stride: 1, pad: 1, mode: 'max' })); }, { x });
  assert.is(out.y![0], -Infinity);
  assert.ok(out.y!.every((v) => v < 0));
  assert.equal(Array.from(out.y!), Array.from(pool2dRef(x, 1, 1, H, W, 3, 3, 1, 1, 1, 1, 'max').out)); // exact, infinities too
});

test('pool2d writes channel slices of a concatenated map (the Inception concat), other channels untouched', async () => {
  // Two branches pooled from the same [N, C, H, W] map (a 3x3/2 max pool, a 3x2 average pool at strides 2x3) into
  // channels [2, 2+C) and [2+C, 2+2C) of an [N, Ct, OH, OW] map that holds a sentinel (copied in first by a 1x1 max
  // pool, an exact copy); channels 0-1 and the last must keep it.
  const N = 2, C = 3, H = 9, W = 8, Ct = 2 + 2 * C + 1, k = 3, s = 2, OH = 4, OW = 3, c0 = 2;
  const x = rand(N * C * H * W, 53, -1.5, -0.5);
  const sentinel = new Float32Array(N * Ct * OH * OW).fill(12345.5);
  const got = await runGraph((g) => {
    const xi = g.input('x', [N, C, H, W]);
    const y = pool2d(g, g.input('fill', [N, Ct, OH, OW]), { N, C: Ct, H: OH, W: OW, kernel: 1, stride: 1, pad: 0, mode: 'max', label: 'fill' });
    pool2d(g, xi, { N, C, H, W, kernel: k, stride: s, pad: 0, mode: 'max', out: y, outLayout: nchw(Ct, OH, OW, c0 * OH * OW) });
    pool2d(g, xi, { N, C, H, W, kernel: k, kernelX: 2, stride: s, strideX: 3, pad: 0, mode: 'avg', out: y, outLayout: nchw(Ct, OH, OW, (c0 + C) * OH * OW) });
    g.output('y', y);
  }, { x, fill: sentinel });
  const mx = pool2dRef(x, N, C, H, W, k, k, s, s, 0, 0, 'max'), av = pool2dRef(x, N, C, H, W, k, 2, s, 3, 0, 0, 'avg');
  assert.is(mx.OH * mx.OW, OH * OW);
  assert.is(av.OH * av.OW, OH * OW);
  const y = got.y!, P = OH * OW;
  for (let n = 0; n < N; n++) for (let c = 0; c < Ct; c++) {
    const plane = y.subarray((n * Ct + c) * P, (n * Ct + c + 1) * P);
    if (c >= c0 && c < c0 + C) assertClose(plane, mx.out.subarray((n * C + c - c0) * P, (n * C + c - c0 + 1) * P), 0, 0, `max branch n${n} c${c}`);
    else if (c >= c0 + C && c < c0 + 2 * C) assertClose(plane, av.out.subarray((n * C + c - c0 - C) * P, (n * C + c - c0 - C + 1) * P), 0, AVG_RTOL, `avg branch n${n} c${c}`);
    else assert.ok(plane.every((v) => v === 12345.5), `channel ${c} of image ${n} was overwritten`);
  }
});

test('pool2d reads and writes channels-last token rows (column strides other than 1), at a row offset', async () => {
  // Per image [1 + H*W, C] tokens (a cls row first): read as a C x H x W map, pooled into [1 + OH*OW, C] rows.
  const N = 2, C = 5, H = 7, W = 6, k = 3, s = 2, p = 1, OH = 4, OW = 3, T = 1 + H * W, TO = 1 + OH * OW;
  const tok = rand(N * T * C, 54, -2, -0.5);
  for (const mode of ['max', 'avg'] as const) {
    const out = await runGraph((g) => {
      const y = g.intermediate('y', [N, TO, C]);
      pool2d(g, g.input('x', [N, T, C]), { N, C, H, W, kernel: k, stride: s, pad: p, mode, inLayout: tokensLayout(C, T, H, W, 1), out: y, outLayout: tokensLayout(C, TO, OH, OW, 1) });
      g.output('y', y);
    }, { x: tok });
    const nchwX = new Float32Array(N * C * H * W);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let t = 0; t < H * W; t++) nchwX[(n * C + c) * H * W + t] = tok[(n * T + 1 + t) * C + c]!;
    const r = pool2dRef(nchwX, N, C, H, W, k, k, s, s, p, p, mode).out;
    const got = new Float32Array(r.length);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let t = 0; t < OH * OW; t++) got[(n * C + c) * OH * OW + t] = out.y![(n * TO + 1 + t) * C + c]!;
    if (mode === 'max') assertClose(got, r, 0, 0, 'max tokens');
    else assertClose(got, r, 0, AVG_RTOL, 'avg tokens');
  }
});

test('pool2d folds its workgroups into y past 65535 and covers every output', async () => {
  // 5 x 917 x 917 outputs: 65,689 workgroups of 64.
  const N = 1, C = 5, H = 918, W = 918, OH = 917, OW = 917;
  const x = rand(N * C * H * W, 55);
  const out = await runGraph((g) => {
    g.output('y', pool2d(g, g.input('x', [N, C, H, W]), { N, C, H, W, kernel: 2, stride: 1, pad: 0, mode: 'max' }));
    const [gx, gy, gz] = g.nodes[0]!.dispatch;
    assert.ok(gx <= 65535 && gy === 2 && gz === 1 && gx * gy * 64 >= N * C * OH * OW, `dispatch ${gx}x${gy}x${gz}`);
  }, { x });
  assertClose(out.y!, pool2dRef(x, N, C, H, W, 2, 2, 1, 1, 0, 0, 'max').out, 0, 0, 'max pool');
});

test('pool2d refuses what it cannot run, with the reason', () => {
  const base: PoolOptions = { N: 1, C: 2, H: 7, W: 7, kernel: 3, stride: 2, pad: 1, mode: 'max' };
  const refuse = (o: Partial<PoolOptions>, re: RegExp, x?: (g: Graph) => ReturnType<Graph['input']>) => {
    const g = new Graph();
    const xi = x ? x(g) : g.input('x', [1, 2, 7, 7]);
    assert.throws(() => pool2d(g, xi, { ...base, ...o }), re, JSON.stringify(o));
    assert.is(g.nodes.length, 0);
  };
  refuse({ pad: 3 }, /padding 3x3 must be less than the kernel 3x3/);
  refuse({ kernelX: 1 }, /padding 1x1 must be less than the kernel 3x1/);
  refuse({ kernel: 1, pad: 0, padX: 1 }, /padding 0x1 must be less than the kernel 1x1/);
  refuse({ kernel: 0 }, /kernel must be a positive integer/);
  refuse({ stride: 0 }, /stride must be a positive integer/);
  refuse({ strideX: -1 }, /strideX must be a positive integer/);
  refuse({ N: 0 }, /N must be a positive integer/);
  refuse({ C: 2.5 }, /C must be a positive integer/);
  refuse({ W: -7 }, /W must be a positive integer/);
  refuse({ pad: -1 }, /pad must be a non-negative integer/);
  refuse({ kernel: 11, pad: 1 }, /kernel 11x11 is larger than the padded input 9x9/);
  refuse({ mode: 'sum' as PoolMode }, /mode must be 'max' or 'avg'/);
  refuse({}, /f32 tensors only/, (g) => g.input('x', [1, 2, 7, 7], 'u32'));
  refuse({}, /reaches element 97 of x\[1,2,7,6\]/, (g) => g.input('x', [1, 2, 7, 6]));
  refuse({ inLayout: { ...nchw(2, 7, 7), sX: -1 } }, /input layout's offset and strides must be non-negative integers/);
  refuse({ outLayout: nchw(2, 4, 4, 1) }, /output layout reaches element 32 of pool2d\[1,2,4,4\], which has 32/);
  // And a valid one passes: OH = OW = floor((7 + 2 - 3) / 2) + 1 = 4.
  const g = new Graph();
  const y = pool2d(g, g.input('x', [1, 2, 7, 7]), base);
  assert.equal([...y.shape], [1, 2, 4, 4]);
});

test.run();
