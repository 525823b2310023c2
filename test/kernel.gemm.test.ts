import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gemm } from '../src/graph/ops/gemm.ts';
import { layerNorm } from '../src/graph/ops/layernorm.ts';
import { Graph } from '../src/graph/graph.ts';
import type { Tensor } from '../src/graph/tensor.ts';
import { packF16 } from '../src/gpu/weights.ts';
import { gemmRef, layerNormRef } from './ref.ts';
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

// The vec4-loading variants need K, lda, ldb and the A offset in multiples of 4; M and N stay odd. rowdot (CPU
// drivers): 32x32 tiles. vec4 (GPUs): 128x128 register tiles, K in stages of 16, so its shapes cross the tile (M,
// N > 128, not multiples of it) and the K stage (K not a multiple of 16).
const ALIGNED_CASES = {
  rowdot: { seed: 11, shapes: [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [65, 67, 36, 'gelu'], [130, 70, 100, 'sigmoid'], [3, 201, 16, 'none'], [33, 29, 48, 'quickgelu']] },
  vec4: { seed: 31, shapes: [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [130, 257, 36, 'gelu'], [129, 131, 100, 'sigmoid'], [3, 201, 20, 'none'], [200, 29, 52, 'quickgelu']] },
  // sliced K (GPUs): 16 tiles with 16 K slices of 4 per stage of 64, 32 tiles with 4 of 8 per stage of 32, 64 tiles with one slice and stages of 16: shapes
  // cross both tiles, K ends inside a stage and inside a slice's share of it, and runs over many stages (the slices'
  // partial sums add up at the end).
  sk32: { seed: 81, shapes: [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [65, 67, 36, 'gelu'], [130, 70, 100, 'sigmoid'], [3, 201, 20, 'none'], [33, 29, 260, 'quickgelu']] },
  sk16: { seed: 96, shapes: [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [17, 33, 36, 'gelu'], [130, 70, 100, 'sigmoid'], [3, 201, 20, 'none'], [33, 29, 260, 'quickgelu']] },
  sk64: { seed: 91, shapes: [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [65, 67, 36, 'gelu'], [130, 129, 100, 'sigmoid'], [3, 201, 20, 'none'], [33, 29, 260, 'quickgelu']] },
} as const;
for (const [variant, { seed, shapes }] of Object.entries(ALIGNED_CASES) as [keyof typeof ALIGNED_CASES, (typeof ALIGNED_CASES)[keyof typeof ALIGNED_CASES]][]) {
  for (const [M, N, K, act] of shapes) {
    test(`gemm ${variant} ${M}x${N}x${K} bias ${act}`, async () => {
      const A = rand(M * K, seed), B = rand(N * K, seed + 1), bias = rand(N, seed + 2);
      const out = await runGraph(
        (g) => {
          g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, bias: g.weight('bias', [N]), act, variant }));
        },
        { a: A },
        { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias } },
      );
      assertClose(out.c!, gemmRef(A, B, M, N, K, { bias, act }), TOL, TOL, 'C');
    });
  }
}

// tiled32 (32x32 tiles for small problems on large GPUs) is tiled.wgsl at another tile size: every output sums its K
// products in the same order, so it equals the 64 tile bit for bit; shapes cross the 32 tile, the 64 tile and the K
// step of 16.
for (const [M, N, K] of [[1, 1, 1], [7, 13, 5], [33, 31, 17], [65, 97, 47], [130, 70, 100]] as const) {
  test(`gemm tiled32 ${M}x${N}x${K} equals tiled bit for bit, and the reference`, async () => {
    const A = rand(M * K, 71), B = rand(N * K, 72), bias = rand(N, 73), R = rand(M * N, 74);
    const run = (variant: 'tiled' | 'tiled32') => runGraph(
      (g) => g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, bias: g.weight('bias', [N]), residual: g.input('r', [M, N]), act: 'gelu', variant })),
      { a: A, r: R },
      { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias } },
    );
    const [t64, t32] = [await run('tiled'), await run('tiled32')];
    assert.equal(Array.from(t32.c!), Array.from(t64.c!));
    assertClose(t32.c!, gemmRef(A, B, M, N, K, { bias, act: 'gelu', residual: R }), TOL, TOL, 'C');
  });
}

// QuickGELU (CLIP's text MLP) over pre-activations out to ±150: exp(-1.702v) overflows to inf below v ≈ -52 and the
// result must come out as (-)0 like torch's, not NaN; values are checked relative to their size.
for (const variant of ['tiled', 'tiled32', 'rowdot', 'vec4', 'sk16', 'sk32', 'sk64'] as const) test(`gemm ${variant} quickgelu over a wide range (overflowing exp)`, async () => {
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

for (const variant of ['tiled', 'tiled32', 'rowdot', 'vec4', 'sk16', 'sk32', 'sk64'] as const) test(`gemm ${variant} with residual, alpha, strided A and C`, async () => {
  const scalar = variant === 'tiled' || variant === 'tiled32';
  const M = 9, N = 11, K = scalar ? 19 : 20, lda = scalar ? 23 : 24, ldc = 15;
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

// The f16 precision option: A and B elements are rounded to binary16 on load, products and sums stay f32.
/** The spacing of binary16 values around x (subnormals below 2^-14). */
const f16Step = (x: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(x) || 2 ** -24)), -14) - 10);
const isF16 = (x: number) => Math.abs(x) <= 65504 && Number.isInteger(x / f16Step(x));
/** Round to the nearest binary16 value, ties to the even one, written with plain arithmetic. */
function nearestF16(x: number): number {
  const step = f16Step(x);
  const q = x / step, lo = Math.floor(q);
  const r = q - lo === 0.5 ? (lo % 2 === 0 ? lo : lo + 1) : Math.round(q);
  return r * step;
}

for (const variant of ['tiled', 'tiled32', 'rowdot', 'vec4', 'sk16', 'sk32', 'sk64'] as const) test(`gemm ${variant} f16 operands: A·I returns A rounded to the nearest binary16 (ties to even)`, async () => {
  const M = 13, K = 12;
  const A = rand(M * K, 41, -3, 3);
  A.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -20, -(2 ** -17) * 1.5, 65504, 0], 0); // ties both ways, subnormals, max, 0
  const I = new Float32Array(K * K);
  for (let k = 0; k < K; k++) I[k * K + k] = 1;
  const out = await runGraph((g) => {
    g.output('c', gemm(g, g.input('a', [M, K]), g.weight('i', [K, K]), { M, N: K, K, variant, precision: 'f16' }));
  }, { a: A }, { i: { shape: [K, K], data: I } });
  let changed = 0;
  out.c!.forEach((c, i) => {
    const a = A[i]!;
    if (!isF16(c)) throw new Error(`${c} (from ${a}) is not a binary16 value`);
    if (c !== nearestF16(a)) throw new Error(`${a} rounded to ${c}, not to the nearest binary16 value ${nearestF16(a)}`);
    if (c !== a) changed++;
  });
  assert.ok(changed > M * K / 2, `only ${changed} of ${M * K} values were rounded`);
});

for (const variant of ['tiled', 'tiled32', 'rowdot', 'vec4', 'sk16', 'sk32', 'sk64'] as const) test(`gemm ${variant} f16 operands: within the binary16 rounding bound of the exact product`, async () => {
  const M = 37, N = 45, K = 64;
  const A = rand(M * K, 42), B = rand(N * K, 43), bias = rand(N, 44);
  const out = await runGraph((g) => {
    g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, bias: g.weight('bias', [N]), variant, precision: 'f16' }));
  }, { a: A }, { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias } });
  const ref = gemmRef(A, B, M, N, K, { bias });
  let far = 0;
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let bound = 1e-5;
    for (let k = 0; k < K; k++) bound += Math.abs(A[m * K + k]! * B[n * K + k]!) * 2 * 2 ** -10; // one step each side
    const d = Math.abs(out.c![m * N + n]! - ref[m * N + n]!);
    if (d > bound) throw new Error(`C[${m},${n}] off by ${d}, bound ${bound}`);
    if (d > 1e-4) far++;
  }
  assert.ok(far > 0, 'no entry differs from the f32 product: the rounding is not active');
});

// With the f16 option a weight B is stored as binary16 (two per u32 word, rounded on upload) and read through
// unpack2x16float. It must give exactly what the f32-stored B with rounding on load gives (B as a graph input stays
// f32): the same values in the same summation order. Odd N·K (a half-filled last word), a row stride past K, and
// values that round both ways, to subnormals and to the largest binary16 are included.
for (const variant of ['tiled', 'tiled32', 'rowdot', 'vec4', 'sk16', 'sk32', 'sk64'] as const) test(`gemm ${variant} f16-stored weights equal f32-stored weights rounded on load`, async () => {
  const M = 19, N = 131, K = 36, ldb = 40;
  const A = rand(M * K, 51), bias = rand(N, 53);
  const B = rand(N * ldb, 52, -2, 2);
  B.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -20, -(2 ** -17) * 1.5, 65504, -0.0001], 0);
  const build = (asWeight: boolean) => (g: Graph) => {
    const b = asWeight ? g.weight('b', [N, ldb]) : g.input('b', [N, ldb]);
    g.output('c', gemm(g, g.input('a', [M, K]), b, { M, N, K, ldb, bias: g.weight('bias', [N]), act: 'gelu', variant, precision: 'f16' }));
  };
  const w = { b: { shape: [N, ldb], data: B }, bias: { shape: [N], data: bias } };
  const stored = await runGraph(build(true), { a: A }, w);
  const rounded = await runGraph(build(false), { a: A, b: B }, { bias: w.bias });
  let worst = 0;
  stored.c!.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - rounded.c![i]!))));
  assert.is(worst, 0, `f16-stored and rounded-on-load results differ by up to ${worst}`);
});

// With the f16 option an MLP's hidden activation (only the next GEMM reads it) may be stored as binary16 by the
// GEMM that writes it (storeC4 of gemm/store_f16.wgsl: round to nearest even, then the bits) and read back through
// unpack2x16float: exactly what the f32-stored hidden with rounding on load gives. M and the hidden width cross
// the tiles; the tiled kernel (one-element stores) keeps an f32 hidden.
for (const variant of ['tiled', 'tiled32', 'rowdot', 'vec4', 'sk16', 'sk32', 'sk64'] as const) test(`gemm ${variant} f16-stored hidden activation equals f32-stored rounded on load`, async () => {
  const M = 131, K = 20, H = 140, N = 13;
  const X = rand(M * K, 61, -2, 2), W1 = rand(H * K, 62), W2 = rand(N * H, 63), b1 = rand(H, 64);
  const w = { w1: { shape: [H, K], data: W1 }, b1: { shape: [H], data: b1 }, w2: { shape: [N, H], data: W2 } };
  let hidden: Tensor | undefined;
  const build = (half: boolean) => (g: Graph) => {
    const h = gemm(g, g.input('x', [M, K]), g.weight('w1', [H, K]), { M, N: H, K, bias: g.weight('b1', [H]), act: 'gelu', half, variant, precision: 'f16' });
    if (half) hidden = h;
    g.output('y', gemm(g, h, g.weight('w2', [N, H]), { M, N, K: H, variant, precision: 'f16' }));
  };
  const a = await runGraph(build(true), { x: X }, w);
  assert.is(hidden!.dtype, variant === 'tiled' || variant === 'tiled32' ? 'f32' : 'f16');
  const b = await runGraph(build(false), { x: X }, w);
  let worst = 0;
  a.y!.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.y![i]!))));
  assert.is(worst, 0, `f16-stored and rounded-on-load hidden differ by up to ${worst}`);
});

for (const variant of ['rowdot', 'vec4', 'sk16', 'sk32', 'sk64'] as const) test(`gemm ${variant} f16-stored output: A·I·I returns A rounded to the nearest binary16`, async () => {
  const M = 9, K = 12;
  const A = rand(M * K, 65, -3, 3);
  A.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -20, -(2 ** -17) * 1.5, 65504, 0, -(2 ** -25), 2 ** -14 - 2 ** -25], 0);
  const I = new Float32Array(K * K);
  for (let k = 0; k < K; k++) I[k * K + k] = 1;
  const out = await runGraph((g) => {
    const h = gemm(g, g.input('a', [M, K]), g.weight('i', [K, K]), { M, N: K, K, variant, half: true, precision: 'f16' });
    assert.is(h.dtype, 'f16');
    g.output('c', gemm(g, h, g.weight('i', [K, K]), { M, N: K, K, variant, precision: 'f16' }));
  }, { a: A }, { i: { shape: [K, K], data: I } });
  out.c!.forEach((c, i) => {
    if (c !== nearestF16(A[i]!)) throw new Error(`${A[i]} came back as ${c}, not as ${nearestF16(A[i]!)}`);
  });
});

test('a binary16 tensor cannot be a graph output, nor read by an op other than a GEMM', () => {
  const g = new Graph({ precision: 'f16' });
  const h = gemm(g, g.input('x', [3, 8]), g.weight('w', [8, 8]), { M: 3, N: 8, K: 8, variant: 'rowdot', half: true });
  assert.throws(() => g.output('h', h), /binary16/);
  assert.throws(() => layerNorm(g, h, g.weight('g', [8]), g.weight('b', [8]), { kind: 'torch', eps: 1e-5 }), /only GEMMs read/);
  gemm(g, h, g.weight('w', [8, 8]), { M: 3, N: 8, K: 8, variant: 'rowdot' }); // a GEMM may
});

test('the f16 option binds a GEMM weight in its binary16 form and other readers in f32', () => {
  const g = new Graph({ precision: 'f16' });
  const x = g.input('x', [3, 8]);
  const w = g.weight('w', [5, 8]);
  gemm(g, x, w, { M: 3, N: 5, K: 8 });
  gemm(g, x, g.weight('v', [8, 8]), { M: 3, N: 8, K: 8, precision: 'f32' });
  const read = g.weightDtypes();
  assert.equal([...read.get('w')!], ['f16']);
  assert.equal([...read.get('v')!], ['f32']);
  const g32 = new Graph();
  gemm(g32, g32.input('x', [3, 8]), g32.weight('w', [5, 8]), { M: 3, N: 5, K: 8 });
  assert.equal([...g32.weightDtypes().get('w')!], ['f32']);
});

test('packF16 keeps binary16 data as it is and rounds f32 to nearest even', () => {
  const bits = new Uint16Array([0x3c00, 0x8001, 0x7bff]);
  assert.equal([...packF16({ dtype: 'f16', shape: [3], data: bits })], [0x3c00, 0x8001, 0x7bff, 0]);
  const f = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 65504]);
  assert.equal([...packF16({ dtype: 'f32', shape: [4], data: f })], [0x3c00, 0x3c02, 0x0001, 0x7bff]);
});

// The residual read through a pair table (the cross-attention's output projection adds each pair's own image's
// rows): C's rows are P pairs of T rows; row b*T + t adds row t of item pairs[b][col] of a per-item residual, here
// with a row stride ldr > N. Every kernel, odd sizes, pairs in any order with repeats; with a fused LayerNorm too
// (its gamma and beta, then the table, then C: the bindings of both extras together).
for (const [variant, norm] of [['tiled', false], ['tiled32', false], ['rowdot', false], ['vec4', false], ['sk16', false], ['sk32', false], ['sk64', false], ['tiled', true], ['rowdot', true], ['sk16', true], ['sk32', true], ['sk64', true]] as const) {
  test(`gemm ${variant} residual through a pair table${norm ? ', LayerNorm fused' : ''}`, async () => {
    const T = 7, K = 12, N = 13, ldr = 16, items = 3;
    const pairs = Uint32Array.from([2, 1, 0, 0, 2, 2, 1, 0, 0, 1]); // 5 pairs: [own, other]
    const P = pairs.length / 2, M = P * T, col = 0;
    const A = rand(M * K, 101), B = rand(N * K, 102), bias = rand(N, 103), R = rand(items * T * ldr, 104);
    const gamma = rand(K, 105, 0.5, 1.5), beta = rand(K, 106);
    const out = await runGraph((g) => {
      const o = gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), {
        M, N, K, bias: g.weight('bias', [N]), act: 'relu', variant, residual: g.input('r', [items * T, ldr]), ldr,
        residualTable: { pairs: g.input('pairs', [P, 2], 'u32'), col, rowsPerPair: T },
        ...(norm ? { norm: { gamma: g.weight('gamma', [K]), beta: g.weight('beta', [K]), eps: 1e-5 } } : {}),
      });
      assert.is(g.nodes.length, 1);
      assert.ok(g.nodes[0]!.kernel.name.endsWith(norm ? 'lnpt' : 'pt'), g.nodes[0]!.kernel.name);
      g.output('c', o);
    }, { a: A, r: R, pairs }, { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias }, gamma: { shape: [K], data: gamma }, beta: { shape: [K], data: beta } });
    const Rp = new Float32Array(M * N);
    for (let b = 0; b < P; b++) for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) Rp[(b * T + t) * N + n] = R[(pairs[2 * b + col]! * T + t) * ldr + n]!;
    const a = norm ? layerNormRef(A, M, K, gamma, beta, 'torch', 1e-5) : A;
    assertClose(out.c!, gemmRef(a, B, M, N, K, { bias, act: 'relu', residual: Rp }), TOL, TOL, 'C');
  });
}

// An index past the residual's items (refused on the host: models/pairs.ts) reads its last item, as gather clamps.
test('gemm residual through a pair table clamps an out-of-range index to the last item', async () => {
  const T = 3, K = 8, N = 5, items = 2, M = 2 * T;
  const A = rand(M * K, 107), B = rand(N * K, 108), R = rand(items * T * N, 109);
  const go = (pairs: Uint32Array) => runGraph((g) => {
    g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, residual: g.input('r', [items * T, N]), residualTable: { pairs: g.input('pairs', [2, 2], 'u32'), col: 1, rowsPerPair: T } }));
  }, { a: A, r: R, pairs }, { b: { shape: [N, K], data: B } });
  const [bad, last] = [await go(Uint32Array.from([0, 9, 0, 0])), await go(Uint32Array.from([0, 1, 0, 0]))];
  assert.equal(Array.from(bad.c!), Array.from(last.c!));
});

test.run();
