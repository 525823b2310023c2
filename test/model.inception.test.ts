// The InceptionV3 front (src/models/inception.ts) against tools/teacher/keras_torch.py, the PyTorch reading of the
// Keras topology that nsfwjs ships: the real topology with every channel count / 16 and random weights and
// batch-norm statistics (tools/teacher/front.py fixture), folded as the engine's weights are, at two input sizes
// (75 px: the smallest the valid convolutions allow; 83 px), read at mixed2, mixed3 (the stride-2 block) and mixed7.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readSafetensors } from '../src/io/safetensors.ts';
import { toFloat32 } from '../src/core/tensor.ts';
import { Graph } from '../src/graph/graph.ts';
import { inceptionOutputShape, inceptionV3, INCEPTION_BLOCKS, type InceptionBlock } from '../src/models/inception.ts';
import { FIXTURES } from './paths.ts';
import { assertClose, maxAbsDiff, runGraph } from './util.ts';

// The reference is float64; the engine float32 through 5 + 4 x 3 + 1 + 4 x 4 conv layers of up to 12 x 3 x 3 x 24
// = 2,592-term sums with ReLUs. Values reach ~30 at mixed7; 1e-4 absolute + 1e-4 relative is ~100x the float32
// rounding seen (SKETCHGPU_VERBOSE=1 prints it), far below what a wrong tap, padding, branch order or pool rule
// gives (1e-1 and more).
const TOL = 1e-4;
const verbose = !!process.env.SKETCHGPU_VERBOSE;

const file = readSafetensors(readFileSync(resolve(FIXTURES, 'inception', 'tiny16.safetensors')));
const meta = JSON.parse(readFileSync(resolve(FIXTURES, 'inception', 'tiny16.json'), 'utf8')) as { width_divisor: number; cases: { name: string; side: number; batch: number; ends: InceptionBlock[] }[] };
const get = (k: string): Float32Array => {
  const v = file.tensors.get(k);
  if (!v) throw new Error(`fixture has no ${k}`);
  return toFloat32(v);
};
const weights: Record<string, { shape: number[]; data: Float32Array }> = {};
for (const [name, t] of file.tensors) if (name.startsWith('front.')) weights[name] = { shape: [...t.shape], data: toFloat32(t) };

for (const c of meta.cases) for (const end of c.ends) test(`inception front (channels / ${meta.width_divisor}) ${c.batch} x ${c.side} px to ${end} = keras_torch`, async () => {
  const out = await runGraph((g) => {
    const x = g.input('x', [c.batch, 3, c.side, c.side]);
    g.output('y', inceptionV3(g, x, c.batch, c.side, 'front', { end, widthDivisor: meta.width_divisor }).out);
  }, { x: get(`${c.name}.input`) }, weights);
  const want = get(`${c.name}.${end}`);
  const shape = inceptionOutputShape(c.side, { end, widthDivisor: meta.width_divisor });
  assert.is(out.y!.length, c.batch * shape.C * shape.side * shape.side);
  assert.is(want.length, out.y!.length);
  if (verbose) console.log(`    ${c.name} ${end}: max |diff| ${maxAbsDiff(out.y!, want).toExponential(2)}, max |ref| ${want.reduce((m, v) => Math.max(m, Math.abs(v)), 0).toFixed(2)}`);
  assertClose(out.y!, want, TOL, TOL, `${c.name} ${end}`);
});

test('inception front: weights named as Keras numbers them, 70 convolutions to mixed7; the full-size shapes', () => {
  const g = new Graph();
  inceptionV3(g, g.input('x', [1, 3, 299, 299]), 1, 299, 'front', { end: 'mixed7' });
  const names = g.tensors.filter((t) => t.kind === 'weight').map((t) => t.name);
  assert.is(names.length, 140);
  assert.ok(names.includes('front.conv2d_70.bias') && names.includes('front.conv2d_1.weight'));
  const w33 = g.tensors.find((t) => t.name === 'front.conv2d_33.weight')!;
  assert.equal([...w33.shape], [128, 128, 1, 7]);
  assert.equal(inceptionOutputShape(299, { end: 'mixed7' }), { C: 768, side: 17 });
  assert.equal(inceptionOutputShape(299, { end: 'mixed2' }), { C: 288, side: 35 });
  assert.equal(inceptionOutputShape(224, { end: 'mixed7' }), { C: 768, side: 12 });
  for (const end of INCEPTION_BLOCKS) assert.ok(inceptionOutputShape(75, { end }).side >= 1);
  const fresh = (S: number) => { const h = new Graph(); return [h, h.input('x', [1, 3, S, S])] as const; };
  assert.throws(() => inceptionV3(...fresh(74), 1, 74, 'front', { end: 'mixed0' }), /below 75/);
  assert.throws(() => inceptionV3(...fresh(80), 1, 80, 'front', { end: 'mixed0', widthDivisor: 7 }), /divide/);
});

test.run();
