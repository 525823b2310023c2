// The subgroup-matrix (tensor-core) f16 GEMM, shaders/gemm/smat.wgsl. It runs only where the adapter offers
// chromium-experimental-subgroup-matrix and src/graph/smat.ts's check passed; elsewhere (lavapipe, SwiftShader)
// the f16 option must never pick it, and the kernel tests below are reported as skipped, not passed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Graph } from '../src/graph/graph.ts';
import { gemm } from '../src/graph/ops/gemm.ts';
import { probeSubgroupMatrixGemm } from '../src/graph/smat.ts';
import { gemmRef, layerNormRef } from './ref.ts';
import { emulateSubgroupMatrices } from './smat-emulation.ts';
import { assertClose, gpu, rand, runGraph } from './util.ts';

const ctx = await gpu();
const check = await probeSubgroupMatrixGemm(ctx);
console.log(`    [smat] ${ctx.adapterName}: ${check.ok ? 'on' : 'off'} (${check.reason})`);

test('the subgroup-matrix GEMM is on exactly where the adapter offers subgroup matrices (and then passes its check)', () => {
  if (!ctx.features.subgroupMatrix) {
    assert.is(check.ok, false);
    assert.match(check.reason, /subgroup-matrix|SKETCHGPU_SMAT/);
  } else {
    assert.ok(check.ok, check.reason);
  }
});

test('graphs pick smat only under the f16 option, on a device that passed the check, for vec4-aligned layouts', () => {
  const kernelOf = (target: ConstructorParameters<typeof Graph>[0], K: number) => {
    const g = new Graph(target);
    gemm(g, g.input('x', [5, K]), g.weight('w', [6, K]), { M: 5, N: 6, K });
    return g.nodes[0]!.kernel.name;
  };
  assert.is(kernelOf({ precision: 'f16', smat: true }, 8), 'gemm_smat/b16');
  assert.is(kernelOf({ precision: 'f16', smat: true }, 7), 'gemm/b16'); // K not a multiple of 4
  assert.not.match(kernelOf({ precision: 'f32', smat: true }, 8), /smat/);
  assert.not.match(kernelOf({ precision: 'f16' }, 8), /smat/);
  assert.not.match(kernelOf({ precision: 'f16', software: true }, 8), /smat/);
  const g = new Graph({ precision: 'f16', smat: true });
  assert.ok(gemm(g, g.input('x', [5, 8]), g.weight('w', [6, 8]), { M: 5, N: 6, K: 8 }) && g.nodes[0]!.kernel.wgsl.startsWith('enable f16;\nenable chromium_experimental_subgroup_matrix;'));
  const g32 = new Graph();
  assert.throws(() => gemm(g32, g32.input('y', [5, 8]), g32.weight('w', [6, 8]), { M: 5, N: 6, K: 8, variant: 'smat' }), /f16 precision/);
});

// The kernel on odd shapes across the 64x64 tile and the 32-deep K step, every epilogue, strided A and C with a
// residual, an f16-stored hidden: within the binary16 rounding bound of the exact product (one half-step per
// operand, as the other kernels' f16 tests), and equal to the vec4 kernel up to summation order. 'real' runs the
// kernel as it is where the adapter offers subgroup matrices and the check passed (skipped elsewhere); 'emulated'
// runs its staging, offsets and epilogue everywhere with shader-f16, subgroup matrices done in software
// (test/smat-emulation.ts).
const modes = [['emulated', ctx.features.f16], ['real', ctx.features.subgroupMatrix && check.ok]] as const;
/** Swap the smat nodes' kernel for the emulated one. */
const emulate = (g: Graph) => {
  for (const n of g.nodes) if (n.kernel.name.startsWith('gemm_smat')) n.kernel = emulateSubgroupMatrices(n.kernel);
};
for (const [mode, on] of modes) {
  const run = on ? test : test.skip;
  for (const [M, N, K, act] of [[1, 1, 4, 'none'], [7, 13, 8, 'relu'], [70, 75, 36, 'gelu'], [65, 70, 68, 'sigmoid'], [70, 29, 52, 'quickgelu']] as const) {
    run(`gemm smat (${mode}) ${M}x${N}x${K} bias ${act}: within the binary16 rounding bound`, async () => {
      const A = rand(M * K, 71), B = rand(N * K, 72), bias = rand(N, 73);
      const out = await runGraph((g) => {
        g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), { M, N, K, bias: g.weight('bias', [N]), act, variant: 'smat', precision: 'f16' }));
        if (mode === 'emulated') emulate(g);
      }, { a: A }, { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias } });
      const ref = gemmRef(A, B, M, N, K, { bias });
      const refAct = gemmRef(A, B, M, N, K, { bias, act });
      let far = 0;
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
        let bound = 1e-5;
        for (let k = 0; k < K; k++) bound += Math.abs(A[m * K + k]! * B[n * K + k]!) * 2 * 2 ** -10;
        // the activations' slopes stay under 1.2 (GELU's peaks at ~1.13), so the pre-activation bound carries over
        const d = Math.abs(out.c![m * N + n]! - refAct[m * N + n]!);
        if (d > 1.2 * bound) throw new Error(`C[${m},${n}] off by ${d}, bound ${bound} (pre-activation ${ref[m * N + n]})`);
        if (d > 1e-4) far++;
      }
      if (M * N > 1000) assert.ok(far > 0, 'no entry differs from the f32 product: the operands were not binary16');
    });
  }

  run(`gemm smat (${mode}): strided A and C, residual, f16-stored hidden equal the vec4 kernel up to summation order`, async () => {
    const M = 77, K = 40, H = 68, N = 24, lda = 48, ldc = 30;
    const A = rand(4 + M * lda, 74), W1 = rand(H * K, 75), W2 = rand(N * H, 76), Rz = rand(M * N, 77);
    const w = { w1: { shape: [H, K], data: W1 }, w2: { shape: [N, H], data: W2 } };
    const build = (variant: 'smat' | 'vec4') => (g: Graph) => {
      const h = gemm(g, g.input('a', [4 + M * lda]), g.weight('w1', [H, K]), { M, N: H, K, lda, aOffset: 4, act: 'gelu', half: true, variant, precision: 'f16' });
      assert.is(h.dtype, 'f16');
      const c = g.intermediate('c', [2 + M * ldc]);
      gemm(g, h, g.weight('w2', [N, H]), { M, N, K: H, ldc, cOffset: 2, residual: g.input('r', [M, N]), out: c, variant, precision: 'f16' });
      g.output('c', c);
      if (mode === 'emulated') emulate(g);
    };
    const [s, v] = [await runGraph(build('smat'), { a: A, r: Rz }, w), await runGraph(build('vec4'), { a: A, r: Rz }, w)];
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
      const i = 2 + m * ldc + n;
      const d = Math.abs(s.c![i]! - v.c![i]!);
      if (d > 1e-4 * (1 + Math.abs(v.c![i]!))) throw new Error(`C[${m},${n}]: smat ${s.c![i]} vs vec4 ${v.c![i]}`);
    }
  });

  // A pre-norm LayerNorm fused into the kernel (gemm option norm): the row statistics by normTile, two invocations
  // per row as in the tiled32 kernel, whose fused result it must equal up to summation order (the same binary16
  // operands), and within the binary16 bound of the f64 reference (normalised |A| < 4, |B| < 1, K = 68).
  // With it, the residual read through a pair table (binding 6 after gamma and beta; C at 7): 10 pairs of 7 rows.
  run(`gemm smat (${mode}) with a fused LayerNorm and a residual pair table equals tiled32 with both, up to summation order`, async () => {
    const M = 70, N = 75, K = 68, T = 7;
    const A = rand(M * K, 81).map((x, i) => 2 + 3 * x + (Math.floor(i / K) % 3)), B = rand(N * K, 82), bias = rand(N, 83);
    const gamma = rand(K, 84, 0.5, 1.5), beta = rand(K, 85), R = rand(3 * T * N, 86);
    const pairs = Uint32Array.from({ length: 20 }, (_, i) => (i * 7 + 1) % 3);
    const w = { b: { shape: [N, K], data: B }, bias: { shape: [N], data: bias }, gamma: { shape: [K], data: gamma }, beta: { shape: [K], data: beta } };
    const build = (variant: 'smat' | 'tiled32') => (g: Graph) => {
      g.output('c', gemm(g, g.input('a', [M, K]), g.weight('b', [N, K]), {
        M, N, K, bias: g.weight('bias', [N]), act: 'gelu', variant, precision: 'f16', norm: { gamma: g.weight('gamma', [K]), beta: g.weight('beta', [K]), eps: 1e-5 },
        residual: g.input('r', [3 * T, N]), residualTable: { pairs: g.input('pairs', [10, 2], 'u32'), col: 1, rowsPerPair: T },
      }));
      assert.ok(g.nodes.length === 1 && g.nodes[0]!.kernel.name.endsWith('lnpt'), g.nodes.map((n) => n.kernel.name).join(' '));
      if (mode === 'emulated') emulate(g);
    };
    const inputs = { a: A, r: R, pairs };
    const [s, t] = [await runGraph(build('smat'), inputs, w), await runGraph(build('tiled32'), inputs, w)];
    assertClose(s.c!, t.c!, 1e-4, 1e-4, 'smat vs tiled32, both fused');
    const Rp = new Float32Array(M * N);
    for (let r = 0; r < M; r++) Rp.set(R.subarray((pairs[2 * Math.floor(r / T) + 1]! * T + (r % T)) * N, (pairs[2 * Math.floor(r / T) + 1]! * T + (r % T) + 1) * N), r * N);
    const ref = gemmRef(layerNormRef(A, M, K, gamma, beta, 'torch', 1e-5), B, M, N, K, { bias, act: 'gelu', residual: Rp });
    assertClose(s.c!, ref, 2e-2, 2e-2, 'smat fused vs the reference');
  });
}

test.run();
