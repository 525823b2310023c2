import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Graph } from '../src/graph/graph.ts';
import { layerNorm } from '../src/graph/ops/layernorm.ts';
import { layerNormRef } from './ref.ts';
import { asF16, assertClose, eye, rand, readBackF16, runGraph } from './util.ts';

// Outputs are O(1); a two-pass fp32 norm is accurate to a few ulps: 2e-6 absolute.
// Row counts off the 64-row workgroup (the model's 197 tokens times odd batches), widths on the vec4 path (D a
// multiple of 4: 32, 192, 200, 768) and off it (2, 37, 129, 13).
for (const [rows, D, kind, eps] of [
  [1, 1 + 1, 'torch', 1e-5], [5, 37, 'torch', 1e-5], [3, 200, 'ca', 1e-6], [9, 129, 'ca', 1e-6], [2, 768, 'torch', 1e-5],
  [591, 32, 'torch', 1e-5], [591, 32, 'ca', 1e-6], [197, 192, 'ca', 1e-6], [65, 13, 'torch', 1e-5], [197, 768, 'ca', 1e-6],
] as const) {
  // Each width through both variants: one invocation per row (software adapters' default) and one workgroup per
  // row (GPUs'; D a multiple of 4 only, else it falls back to the row kernel).
  for (const variant of ['row', 'workgroup'] as const) test(`layernorm ${kind} ${rows}x${D} (${variant})`, async () => {
    const x = rand(rows * D, 41, -3, 2), gm = rand(D, 42, 0.5, 1.5), bt = rand(D, 43);
    const out = await runGraph((g) => {
      const xi = g.input('x', [rows, D]);
      g.output('y', layerNorm(g, xi, g.input('g', [D]), g.input('b', [D]), { kind, eps, variant }));
      assert.is(g.nodes.at(-1)!.kernel.entry, variant === 'workgroup' && D % 4 === 0 ? 'wg4' : D % 4 === 0 ? 'rows4' : 'rows1');
    }, { x, g: gm, b: bt });
    assertClose(out.y!, layerNormRef(x, rows, D, gm, bt, kind, eps), 2e-6, 2e-6, 'layernorm');
  });
}

test('layernorm is two-pass: a large common offset does not cost accuracy', async () => {
  // Rows of 100 + values in [-1,1]. The fp32 mean is good to ~1e-5 here, so two passes stay within 1e-4; a
  // one-pass E[x²]-E[x]² would cancel 1e4 against 1e4 and be off by ~1e-3.
  for (const [D, kind, eps, variant] of [[64, 'torch', 1e-5, 'row'], [61, 'ca', 1e-6, 'row'], [64, 'torch', 1e-5, 'workgroup'], [300, 'ca', 1e-6, 'workgroup']] as const) {
    const rows = 70;
    const x = rand(rows * D, 45, 99, 101), gm = rand(D, 46, 0.5, 1.5), bt = rand(D, 47);
    const out = await runGraph((g) => {
      g.output('y', layerNorm(g, g.input('x', [rows, D]), g.input('g', [D]), g.input('b', [D]), { kind, eps, variant }));
    }, { x, g: gm, b: bt });
    assertClose(out.y!, layerNormRef(x, rows, D, gm, bt, kind, eps), 1e-4, 0, `layernorm ${kind} offset (${variant})`);
  }
});

test('the two layer norms differ as the reference says', async () => {
  // nn.LayerNorm and the CA norm on the same row must not agree: guards against a swapped `kind`.
  const D = 8, x = rand(D, 44, -2, 2), gm = new Float32Array(D).fill(1), bt = new Float32Array(D);
  const a = layerNormRef(x, 1, D, gm, bt, 'torch', 1e-5), b = layerNormRef(x, 1, D, gm, bt, 'ca', 1e-6);
  const out = await runGraph((g) => {
    const xi = g.input('x', [1, D]);
    g.output('t', layerNorm(g, xi, g.input('g', [D]), g.input('b', [D]), { kind: 'torch', eps: 1e-5 }));
    g.output('c', layerNorm(g, xi, g.input('g2', [D]), g.input('b2', [D]), { kind: 'ca', eps: 1e-6 }));
  }, { x, g: gm, b: bt, g2: gm, b2: bt });
  assertClose(out.t!, a, 2e-6, 0, 'torch');
  assertClose(out.c!, b, 2e-6, 0, 'ca');
  if (Math.abs(a[0]! - b[0]!) < 1e-3) throw new Error('test inputs do not separate the two norms');
});

// The f16 option's binary16 output (entry rows4h): exactly the f32 output rounded to nearest binary16, both
// conventions, rows not a multiple of the 64-row workgroup; and only under the f16 option.
for (const kind of ['torch', 'ca'] as const) for (const variant of ['row', 'workgroup'] as const) test(`layernorm ${kind} (${variant}): binary16 output is the f32 output rounded to binary16`, async () => {
  const rowsN = 67, D = 24, eps = kind === 'torch' ? 1e-5 : 1e-6;
  const X = rand(rowsN * D, 81, -3, 3), G = rand(D, 82), Bv = rand(D, 83);
  const w = { g: { shape: [D], data: G }, b: { shape: [D], data: Bv }, eye: eye(D) };
  const ln = (g: Graph, half: boolean) => layerNorm(g, g.input('x', [rowsN, D]), g.weight('g', [D]), g.weight('b', [D]), { kind, eps, half, variant });
  const f32 = await runGraph((g) => { g.output('y', ln(g, false)); }, { x: X }, w, { precision: 'f16' });
  const h = await runGraph((g) => {
    const y = ln(g, true);
    assert.is(y.dtype, 'f16');
    g.output('y', readBackF16(g, y, rowsN, D));
  }, { x: X }, w, { precision: 'f16' });
  assert.equal(Array.from(h.y!), Array.from(asF16(f32.y!)));
  const g32 = new Graph();
  assert.is(ln(g32, true).dtype, 'f32', 'half without the f16 option');
});

test.run();
