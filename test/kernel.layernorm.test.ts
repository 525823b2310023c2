import { test } from 'uvu';
import { layerNorm } from '../src/graph/ops/layernorm.ts';
import { layerNormRef } from './ref.ts';
import { assertClose, rand, runGraph } from './util.ts';

// Outputs are O(1); a two-pass fp32 norm is accurate to a few ulps: 2e-6 absolute.
for (const [rows, D, kind, eps] of [[1, 1 + 1, 'torch', 1e-5], [5, 37, 'torch', 1e-5], [3, 200, 'ca', 1e-6], [9, 129, 'ca', 1e-6], [2, 768, 'torch', 1e-5]] as const) {
  test(`layernorm ${kind} ${rows}x${D}`, async () => {
    const x = rand(rows * D, 41, -3, 2), gm = rand(D, 42, 0.5, 1.5), bt = rand(D, 43);
    const out = await runGraph((g) => {
      const xi = g.input('x', [rows, D]);
      g.output('y', layerNorm(g, xi, g.input('g', [D]), g.input('b', [D]), { kind, eps }));
    }, { x, g: gm, b: bt });
    assertClose(out.y!, layerNormRef(x, rows, D, gm, bt, kind, eps), 2e-6, 2e-6, 'layernorm');
  });
}

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

test.run();
