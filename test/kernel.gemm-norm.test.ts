// A pre-norm LayerNorm fused into the GEMM that reads it (gemm option `norm`, shaders/gemm/norm_ln.wgsl): against
// the TypeScript reference (layerNormRef, then gemmRef), against the same two ops run apart (one LayerNorm dispatch,
// then the GEMM), and the fallback where a kernel cannot take it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gemm, NORM_FUSE_MAX_ROWS, NORM_VARIANTS, type GemmVariant } from '../src/graph/ops/gemm.ts';
import { Graph, type GraphTarget } from '../src/graph/graph.ts';
import { gemmRef, layerNormRef } from './ref.ts';
import { assertClose, rand, runGraph } from './util.ts';

// The reference normalises in f64, the kernels in f32 (two-pass statistics, then a K-term f32 dot product of
// values of magnitude up to ~3 after normalisation): 2e-5 absolute + 2e-5 relative is a few ulps of the
// largest partial sums at K <= 100, with margin.
const TOL = 2e-5;
const EPS = 1e-5;

// M and N odd, crossing the 32 and 64 tiles; K a multiple of 4 (the fused loads are vec4), not of the K step of 16.
const SHAPES = [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [65, 67, 36, 'gelu'], [130, 70, 100, 'none'], [33, 29, 48, 'quickgelu']] as const;

interface Case { M: number; N: number; K: number; act: 'none' | 'relu' | 'gelu' | 'quickgelu'; seed: number }
const data = ({ M, N, K, seed }: Case) => ({
  // A shifted and scaled per row like a residual stream (mean far from 0), so a wrong mean or variance shows.
  A: rand(M * K, seed).map((v, i) => 3 + 2 * v + (Math.floor(i / K) % 5)), B: rand(N * K, seed + 1), bias: rand(N, seed + 2), R: rand(M * N, seed + 3),
  gamma: rand(K, seed + 4, 0.5, 1.5), beta: rand(K, seed + 5),
});

function run(c: Case, d: ReturnType<typeof data>, variant: GemmVariant, target: GraphTarget, nodes?: (g: Graph) => void) {
  const { M, N, K, act } = c;
  return runGraph(
    (g) => {
      const a = g.input('a', [M, K]);
      g.output('c', gemm(g, a, g.weight('b', [N, K]), {
        M, N, K, bias: g.weight('bias', [N]), residual: g.input('r', [M, N]), act, variant,
        norm: { gamma: g.weight('gamma', [K]), beta: g.weight('beta', [K]), eps: EPS },
      }));
      nodes?.(g);
    },
    { a: d.A, r: d.R },
    { b: { shape: [N, K], data: d.B }, bias: { shape: [N], data: d.bias }, gamma: { shape: [K], data: d.gamma }, beta: { shape: [K], data: d.beta } },
    target,
  );
}

let seed = 400;
// (smat, the subgroup-matrix kernel, is tested with a fused LayerNorm in kernel.gemm-smat.test.ts.)
for (const variant of NORM_VARIANTS.filter((v) => v !== 'smat')) {
  for (const [M, N, K, act] of SHAPES) {
    const c: Case = { M, N, K, act, seed: (seed += 10) };
    test(`gemm ${variant} with a fused LayerNorm ${M}x${N}x${K} ${act}: the reference, and the two ops apart`, async () => {
      const d = data(c);
      let kernels: string[] = [];
      // A hardware target (software unset) fuses by default.
      const fused = await run(c, d, variant, {}, (g) => (kernels = g.nodes.map((n) => n.kernel.name)));
      assert.equal(kernels.length, 1, `one dispatch: ${kernels}`);
      assert.ok(kernels[0]!.endsWith('ln'), kernels[0]);
      const ln = layerNormRef(d.A, M, K, d.gamma, d.beta, 'torch', EPS);
      assertClose(fused.c!, gemmRef(ln, d.B, M, N, K, { bias: d.bias, act, residual: d.R }), TOL, TOL, 'C');
      // The same two ops apart: a LayerNorm dispatch writes the normalised rows, the GEMM reads them. rowdot's
      // statistics are the row LayerNorm kernel's (one invocation per row, the same order of operations), which a
      // CPU driver's target (software) runs apart: there the two agree bit for bit. The tiled kernels split each
      // row's sums over 4 (2) invocations, another summation order, as the workgroup LayerNorm that GPUs run apart
      // has: they agree with it to f32 rounding (the tolerance against the reference).
      let apart: string[] = [];
      const software = variant === 'rowdot';
      const sep = await run(c, d, variant, { software, fuseNorm: false }, (g) => (apart = g.nodes.map((n) => n.kernel.name)));
      assert.equal(apart, [software ? 'layernorm' : 'layernorm/wg', kernels[0]!.replace(/\/?ln$/, '')]);
      if (software) assert.equal(Array.from(fused.c!), Array.from(sep.c!), 'fused vs apart, bit for bit');
      else assertClose(fused.c!, sep.c!, TOL, TOL, 'fused vs apart');
    });
  }
}

// Under the f16 option the normalised values are rounded to binary16 as the GEMM loads them; apart, the LayerNorm
// stores them as binary16 (pack4h, the same rounding) and the GEMM reads them as they are: on the row statistics
// (rowdot, software target) the same operands, bit for bit.
test('gemm rowdot with a fused LayerNorm under the f16 option equals the two ops apart', async () => {
  const c: Case = { M: 37, N: 45, K: 64, act: 'gelu', seed: 900 };
  const d = data(c);
  const fused = await run(c, d, 'rowdot', { precision: 'f16', software: true, fuseNorm: true });
  const sep = await run(c, d, 'rowdot', { precision: 'f16', software: true, fuseNorm: false });
  assert.equal(Array.from(fused.c!), Array.from(sep.c!), 'fused vs apart (f16), bit for bit');
});
// An MLP's first layer as the models build it under the f16 option: LayerNorm fused into fc1, its GELU hidden stored
// as binary16 (store_f16 at the fused kernel's binding 6), read by fc2: the same bits as the ops apart.
test('gemm rowdot: fused LayerNorm, binary16 hidden, second GEMM under the f16 option equal the ops apart', async () => {
  const M = 29, K = 40, H = 52, N = 18;
  const A = rand(M * K, 960).map((v) => 1 + 2 * v), W1 = rand(H * K, 961), W2 = rand(N * H, 962), gamma = rand(K, 963, 0.5, 1.5), beta = rand(K, 964);
  const w = { w1: { shape: [H, K], data: W1 }, w2: { shape: [N, H], data: W2 }, gamma: { shape: [K], data: gamma }, beta: { shape: [K], data: beta } };
  const go = (fuseNorm: boolean) => runGraph((g) => {
    const h = gemm(g, g.input('a', [M, K]), g.weight('w1', [H, K]), { M, N: H, K, act: 'gelu', half: true, variant: 'rowdot', norm: { gamma: g.weight('gamma', [K]), beta: g.weight('beta', [K]), eps: 1e-5 } });
    assert.is(h.dtype, 'f16');
    g.output('c', gemm(g, h, g.weight('w2', [N, H]), { M, N, K: H, variant: 'rowdot' }));
    assert.is(g.nodes.length, fuseNorm ? 2 : 3);
  }, { a: A }, w, { precision: 'f16', software: true, fuseNorm });
  const [fused, apart] = [await go(true), await go(false)];
  assert.equal(Array.from(fused.c!), Array.from(apart.c!));
  const ref = gemmRef(gemmRef(layerNormRef(A, M, K, gamma, beta, 'torch', 1e-5), W1, M, H, K, { act: 'gelu' }), W2, M, N, H);
  assertClose(fused.c!, ref, 3e-2, 3e-2, 'C (f16) vs the reference');
});

// The tiled kernel under the f16 option: against the f64 reference with binary16 operands (relative rounding 2^-11
// each, |normalised A| < 4, |B| < 1) over K = 64 terms.
test('gemm tiled with a fused LayerNorm under the f16 option', async () => {
  const c: Case = { M: 37, N: 45, K: 64, act: 'gelu', seed: 900 };
  const d = data(c);
  const fused = await run(c, d, 'tiled', { precision: 'f16' });
  const ln = layerNormRef(d.A, c.M, c.K, d.gamma, d.beta, 'torch', EPS);
  assertClose(fused.c!, gemmRef(ln, d.B, c.M, c.N, c.K, { bias: d.bias, act: c.act, residual: d.R }), 2e-2, 2e-2, 'C (f16)');
});

// Where the kernel cannot take the LayerNorm (vec4: 128-wide register tiles; an unaligned K) or the target does
// not fuse (software adapters by default), it is a dispatch of its own.
for (const [variant, K, target] of [['vec4', 36, {}], ['tiled', 35, {}], ['rowdot', 36, { software: true }]] as const) test(`gemm ${variant} K=${K} with a LayerNorm on ${JSON.stringify(target)}: a separate dispatch`, async () => {
  const c: Case = { M: 19, N: 21, K, act: 'relu', seed: 950 };
  const d = data(c);
  let kernels: string[] = [];
  const out = await run(c, d, variant, target, (g) => (kernels = g.nodes.map((n) => n.kernel.name)));
  assert.equal(kernels.length, 2, `${kernels}`);
  assert.ok(kernels[0]!.startsWith('layernorm'), kernels[0]);
  const ln = layerNormRef(d.A, c.M, K, d.gamma, d.beta, 'torch', EPS);
  assertClose(out.c!, gemmRef(ln, d.B, c.M, c.N, K, { bias: d.bias, act: c.act, residual: d.R }), TOL, TOL, 'C');
});

// Which graphs fuse (no GPU work): a hardware target up to NORM_FUSE_MAX_ROWS rows by default, any size when asked
// (fuseNorm true), never when told not to or on a software target unless asked.
test('fusion by default on hardware targets up to NORM_FUSE_MAX_ROWS rows; fuseNorm overrides', () => {
  const nodes = (target: GraphTarget, M: number) => {
    const g = new Graph(target);
    const K = 8;
    gemm(g, g.input('a', [M, K]), g.weight('b', [3, K]), { M, N: 3, K, variant: 'tiled', norm: { gamma: g.weight('g', [K]), beta: g.weight('bt', [K]), eps: 1e-5 } });
    return g.nodes.length;
  };
  const n = NORM_FUSE_MAX_ROWS;
  assert.equal([nodes({}, n), nodes({}, n + 1), nodes({ fuseNorm: true }, n + 1), nodes({ fuseNorm: false }, 1)], [1, 2, 1, 2]);
  assert.equal([nodes({ software: true }, 1), nodes({ software: true, fuseNorm: true }, n + 1)], [2, 1]);
});

test.run();
