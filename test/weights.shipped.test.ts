// The shipped demo weights (weights/zse-sketchy104-small.safetensors: the ImageNet-trained InceptionV3 front stored as
// its own uint8 values, the head in float16) in the engine equal the reference reading the same file
// (tools/training/eval_zse.py --embed: tools/reference/zse_ref.py, the front expanded by tools/teacher/front.py
// dequantize) on real sample images: a sketch and a photo, through the CLI's `embed`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';
import { assertClose } from './util.ts';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch, numpy, PIL, cv2'], { stdio: 'ignore' }).status === 0;
const WEIGHTS = resolve(REPO_ROOT, 'weights', 'zse-sketchy104-small.safetensors');
const SAMPLE = resolve(REPO_ROOT, 'web', 'sample');
// Unit vectors from two float32 computations (engine, PyTorch) through 70 front convolutions and the head: 1e-4 is
// well above the differences seen (the weights are the same values: the front's uint8 expanded the same way on both
// sides) and far below a wrong layer or preprocessing step.
const TOL = 1e-4;

(hasTorch ? test : test.skip)('the shipped weights: engine embeddings = the reference on a sample sketch and photo', () => {
  for (const [modality, cls] of [['sketch', 'giraffe'], ['photo', 'cow']] as const) {
    const dir = join(SAMPLE, modality, cls);
    const file = join(dir, readdirSync(dir).sort()[0]!);
    const ref = JSON.parse(execFileSync(PY, [join(REPO_ROOT, 'tools', 'training', 'eval_zse.py'), WEIGHTS, '--embed', file, '--modality', modality], { encoding: 'utf8' }));
    const got = JSON.parse(execFileSync(process.execPath, [join(REPO_ROOT, 'bin', 'sketchgpu.js'), 'embed', '--weights', WEIGHTS, '--modality', modality, '--json', file], { encoding: 'utf8' }));
    assertClose(Float32Array.from(got.embeddings[0]), Float32Array.from(ref.embeddings[0]), TOL, 0, `${modality} ${cls}`);
  }
});

test.run();
