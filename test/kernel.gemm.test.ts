import { test } from 'uvu';
import { gemm } from '../src/graph/ops/gemm.ts';
import { gemmRef } from './ref.ts';
import { assertClose, rand, runGraph } from './util.ts';

// fp32 accumulation over K terms of magnitude <= 1: error grows ~ sqrt(K)·2^-24·K in the worst case;
// 1e-5 absolute + 1e-5 relative covers K up to a few hundred with margin.
const TOL = 1e-5;

for (const [M, N, K, act] of [[1, 1, 1, 'none'], [7, 13, 5, 'relu'], [65, 67, 33, 'gelu'], [130, 70, 100, 'sigmoid'], [3, 200, 17, 'none'], [33, 29, 47, 'quickgelu']] as const) {
  test(`gemm ${M}x${N}x${K} bias ${act}`, async () => {
    const A = rand(M * K, 1), B = rand(N * K, 2), bias = rand(N, 3);
    const out = await runGraph(
      (g) => {
        const a = g.input('a', [M, K]);
        const b = g.weight('b', [N, K]);
        const bb = g.weight('bias', [N]);
        g.output('c', gemm(g, a, b, { M, N, K, bias: bb, act }));
      },
      { a: A },
      { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias } },
    );
    assertClose(out.c!, gemmRef(A, B, M, N, K, { bias, act }), TOL, TOL, 'C');
  });
}

// The rowdot variant (CPU drivers) needs K, lda, ldb and the A offset in multiples of 4; M and N stay odd.
for (const [M, N, K, act] of [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [65, 67, 36, 'gelu'], [130, 70, 100, 'sigmoid'], [3, 201, 16, 'none'], [33, 29, 48, 'quickgelu']] as const) {
  test(`gemm rowdot ${M}x${N}x${K} bias ${act}`, async () => {
    const A = rand(M * K, 11), B = rand(N * K, 12), bias = rand(N, 13);
    const out = await runGraph(
      (g) => {
        g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, bias: g.weight('bias', [N]), act, variant: 'rowdot' }));
      },
      { a: A },
      { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias } },
    );
    assertClose(out.c!, gemmRef(A, B, M, N, K, { bias, act }), TOL, TOL, 'C');
  });
}

// The vec4 register-tiled variant (GPUs): 128x128 tiles, K in stages of 16; the same alignment rule as rowdot.
// Shapes cross the tile (M, N > 128, not multiples of it) and the K stage (K not a multiple of 16).
for (const [M, N, K, act] of [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [130, 257, 36, 'gelu'], [129, 131, 100, 'sigmoid'], [3, 201, 20, 'none'], [200, 29, 52, 'quickgelu']] as const) {
  test(`gemm vec4 ${M}x${N}x${K} bias ${act}`, async () => {
    const A = rand(M * K, 31), B = rand(N * K, 32), bias = rand(N, 33);
    const out = await runGraph(
      (g) => {
        g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, bias: g.weight('bias', [N]), act, variant: 'vec4' }));
      },
      { a: A },
      { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias } },
    );
    assertClose(out.c!, gemmRef(A, B, M, N, K, { bias, act }), TOL, TOL, 'C');
  });
}

// QuickGELU (CLIP's text MLP) over pre-activations out to ±150: exp(-1.702v) overflows to inf below v ≈ -52 and the
// result must come out as (-)0 like torch's, not NaN; values are checked relative to their size.
for (const variant of ['tiled', 'rowdot', 'vec4'] as const) test(`gemm ${variant} quickgelu over a wide range (overflowing exp)`, async () => {
  const M = 17, N = 23, K = 12;
  const A = rand(M * K, 21), B = rand(N * K, 22);
  const out = await runGraph((g) => {
    g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, act: 'quickgelu', alpha: 40, variant }));
  }, { a: A }, { b: { shape: [N, K], data: B } });
  const ref = gemmRef(A, B, M, N, K, { act: 'quickgelu', alpha: 40 });
  assertClose(out.c!, ref, 1e-5, 1e-5, 'C');
  const pre = gemmRef(A, B, M, N, K, { alpha: 40 });
  if (!pre.some((v) => v > 50) || !pre.some((v) => v < -60)) throw new Error('the test does not reach the overflow range');
});

for (const variant of ['tiled', 'rowdot', 'vec4'] as const) test(`gemm ${variant} with residual, alpha, strided A and C`, async () => {
  const M = 9, N = 11, K = variant !== 'tiled' ? 20 : 19, lda = variant !== 'tiled' ? 24 : 23, ldc = 15;
  const A = rand(M * lda + 4, 4), B = rand(N * K, 5), R = rand(M * N, 6);
  const out = await runGraph(
    (g) => {
      const a = g.input('a', [M * lda + 4]);
      const b = g.input('b', [N, K]);
      const r = g.input('r', [M, N]);
      const c = g.intermediate('c', [2 + M * ldc]);
      gemm(g, a, b, { M, N, K, lda, aOffset: 4, ldc, cOffset: 2, residual: r, alpha: 0.5, out: c, variant });
      g.output('c', c);
    },
    { a: A, b: B, r: R },
  );
  const dense = new Float32Array(M * K);
  for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) dense[m * K + k] = A[4 + m * lda + k]!;
  const ref = gemmRef(dense, B, M, N, K, { residual: R, alpha: 0.5 });
  const got = new Float32Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) got[m * N + n] = out.c![2 + m * ldc + n]!;
  assertClose(got, ref, TOL, TOL, 'C');
});

test.run();
