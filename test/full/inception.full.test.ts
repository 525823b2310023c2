// Opt-in full-size check of the InceptionV3 front (src/models/inception.ts) with the teacher's real weights
// (nsfwjs@4.4.0's InceptionV3, ImageNet-trained; batch norms folded) on two real images of the sample gallery at
// 299 px, against tools/teacher/keras_torch.py in float64: `npm run test:full`, or alone with
//   node --import tsx --import ./test/hooks.mjs test/full/inception.full.test.ts
// The weights come from the npm package through tools/teacher/export.mjs (a dependency of the training tools only);
// tools/teacher/front.py writes the folded front and the reference into .cache/teacher (git-ignored), made here
// when missing. On lavapipe the two images take ~10 s (~5.7 GFLOP each to mixed7).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { toFloat32 } from '../../src/core/tensor.ts';
import { inceptionV3 } from '../../src/models/inception.ts';
import { REPO_ROOT } from '../paths.ts';
import { PYTHON, secs } from './fixtures.ts';
import { assertClose, maxAbsDiff, runGraph } from '../util.ts';

// float32 through 70 convolutions of up to 1,728-term sums (K = 192 x 3 x 3 and 160 x 7) against float64: mixed7
// values reach ~6; 2e-4 absolute + 1e-4 relative is ~10x the rounding seen, far below a wrong layer (1e-1 and more).
const TOL = 2e-4;
const DIR = resolve(REPO_ROOT, '.cache', 'teacher');
const REF = resolve(DIR, 'front-mixed7.reference.safetensors');
const log = (s: string) => console.log(`    [full] ${s}`);

test('InceptionV3 front to mixed7, real weights, two sample images at 299 px = keras_torch (float64)', async () => {
  if (!existsSync(resolve(DIR, 'inception_v3.safetensors'))) {
    log('exporting the teacher from nsfwjs (tools/teacher/export.mjs; installs tools/teacher/node_modules)');
    const npm = spawnSync('npm', ['--prefix', resolve(REPO_ROOT, 'tools', 'teacher'), 'ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
    assert.is(npm.status, 0, 'npm ci in tools/teacher');
    const ex = spawnSync(process.execPath, [resolve(REPO_ROOT, 'tools', 'teacher', 'export.mjs'), '--model', 'inception_v3', '--out', DIR], { stdio: 'inherit' });
    assert.is(ex.status, 0, 'tools/teacher/export.mjs');
  }
  if (!existsSync(REF)) {
    const r = spawnSync(PYTHON, [resolve(REPO_ROOT, 'tools', 'teacher', 'front.py'), 'reference', '--end', 'mixed7', '--cache', DIR, '--out', REF], { stdio: 'inherit' });
    assert.is(r.status, 0, 'tools/teacher/front.py reference');
  }
  const file = readSafetensors(readFileSync(REF), 'front-mixed7.reference.safetensors');
  const get = (k: string) => toFloat32(file.tensors.get(k)!);
  const weights: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of file.tensors) if (name.startsWith('front.')) weights[name] = { shape: [...t.shape], data: toFloat32(t) };
  assert.is(Object.keys(weights).length, 140);
  const t0 = performance.now();
  const out = await runGraph((g) => {
    g.output('y', inceptionV3(g, g.input('x', [2, 3, 299, 299]), 2, 299, 'front', { end: 'mixed7' }).out);
  }, { x: get('input') }, weights);
  const want = get('output');
  log(`2 images in ${secs(t0)} (graph, upload and read-back included); max |diff| ${maxAbsDiff(out.y!, want).toExponential(2)}, max |ref| ${want.reduce((m, v) => Math.max(m, Math.abs(v)), 0).toFixed(2)}`);
  assertClose(out.y!, want, TOL, TOL, 'mixed7');
});

test.run();
