import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Graph } from '../src/graph/graph.ts';
import { resizeBilinear } from '../src/graph/ops/resize.ts';
import { resizeBilinearRef } from './ref.ts';
import { assertClose, rand, runGraph } from './util.ts';

// Each output is a convex combination of 4 inputs in [-1, 1] (then a·v + b): a few float32 roundings, so 1e-6
// absolute is ample; a wrong tap or weight moves values by ~1e-2.
const TOL = 1e-6;

const cases = [
  // the teacher's upsampling (128 -> 299 at a smaller size: odd ratios), a downsampling, a non-square map, 1 -> many
  { N: 2, C: 3, H: 12, W: 12, OH: 29, OW: 29, a: 0.5, b: 0.5 },
  { N: 1, C: 2, H: 17, W: 9, OH: 5, OW: 13, a: 1, b: 0 },
  { N: 3, C: 1, H: 7, W: 11, OH: 7, OW: 11, a: 2, b: -1 },
  { N: 1, C: 2, H: 1, W: 4, OH: 3, OW: 9, a: 1, b: 0 },
];
for (const c of cases) test(`resize bilinear (align corners) ${c.N}x${c.C}x${c.H}x${c.W} -> ${c.OH}x${c.OW}, ${c.a}v${c.b >= 0 ? '+' : ''}${c.b}`, async () => {
  const x = rand(c.N * c.C * c.H * c.W, 61);
  const out = await runGraph((g) => { g.output('y', resizeBilinear(g, g.input('x', [c.N, c.C, c.H, c.W]), c)); }, { x });
  const ref = resizeBilinearRef(x, c.N, c.C, c.H, c.W, c.OH, c.OW, c.a, c.b);
  assertClose(out.y!, ref, TOL, TOL, 'resize');
  if (c.OH === c.H && c.OW === c.W) for (let i = 0; i < x.length; i++) assert.ok(Math.abs(out.y![i]! - (c.a * x[i]! + c.b)) < TOL, 'same size: the input itself');
});

test('resize keeps the corners (align_corners) and refuses bad sizes', async () => {
  const x = rand(2 * 5 * 6, 62);
  const out = await runGraph((g) => { g.output('y', resizeBilinear(g, g.input('x', [1, 2, 5, 6]), { N: 1, C: 2, H: 5, W: 6, OH: 23, OW: 31 })); }, { x });
  for (let c = 0; c < 2; c++) {
    assert.ok(Math.abs(out.y![c * 23 * 31]! - x[c * 30]!) < TOL);
    assert.ok(Math.abs(out.y![c * 23 * 31 + 23 * 31 - 1]! - x[c * 30 + 29]!) < TOL);
  }
  const g = new Graph();
  assert.throws(() => resizeBilinear(g, g.input('x', [1, 1, 2, 2]), { N: 1, C: 1, H: 2, W: 2, OH: 0, OW: 3 }), /positive integers/);
});

test.run();
