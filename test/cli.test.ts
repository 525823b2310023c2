// The command-line contract (issue 2 §8) through the real bin script, and every bad input it must refuse
// with a clear message: exit code 2, "error: ..." and "hint: ...", no stack trace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { readSafetensors } from '../src/io/safetensors.ts';
import { toFloat32 } from '../src/core/tensor.ts';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { FIXTURES, REPO_ROOT } from './paths.ts';
import { assertCleanError, cli } from './cli-util.ts';
import { assertClose } from './util.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-cli-'));
const W224 = resolve(FIXTURES, 'zse', 'tiny224.weights.safetensors');

const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'zse', 'tiny224.expected.safetensors'))).tensors;
const sketches = toFloat32(exp.get('sketch.input')!);
const photos = toFloat32(exp.get('photo.input')!);
const skNpy = join(tmp, 'sk.npy');
const imNpy = join(tmp, 'im.npy');
writeFileSync(skNpy, writeNpy({ dtype: 'f32', shape: [2, 3, 224, 224], data: sketches }));
writeFileSync(imNpy, writeNpy({ dtype: 'f32', shape: [2, 3, 224, 224], data: photos }));

test('--help on every command', () => {
  for (const c of [[], ['convert'], ['preprocess'], ['embed'], ['score'], ['info'], ['demo'], ['index'], ['query'], ['eval'], ['explain'], ['describe']]) {
    const r = cli([...c, '--help']);
    assert.is(r.code, 0, c.join(' '));
    assert.match(r.out, 'Usage: sketchgpu');
  }
});

test('embed --json gives the reference embeddings, in input order', () => {
  const r = cli(['embed', '--weights', W224, '--modality', 'sketch', '--json', skNpy]);
  assert.is(r.code, 0, r.err);
  const e = JSON.parse(r.out).embeddings as number[][];
  assert.is(e.length, 2);
  assertClose(e.flat(), toFloat32(exp.get('sketch.emb')!), 1e-4, 0, 'embeddings');
});

test('score --json in ret and rn modes matches the reference', () => {
  const ret = cli(['score', '--weights', W224, '--mode', 'ret', '--sketch', skNpy, '--photo', imNpy, '--json']);
  assert.is(ret.code, 0, ret.err);
  assertClose((JSON.parse(ret.out).scores as number[][]).flat(), toFloat32(exp.get('ret.cosine')!), 1e-4, 0, 'ret');
  const rn = cli(['score', '--weights', resolve(FIXTURES, 'zse', 'tiny224.pth'), '--mode', 'rn', '--sketch', skNpy, '--photo', imNpy, '--json']);
  assert.is(rn.code, 0, rn.err);
  assertClose((JSON.parse(rn.out).scores as number[][]).flat(), toFloat32(exp.get('rn.score')!), 1e-4, 0, 'rn');
});

test('convert writes fp16 safetensors that load and score like the original', () => {
  const out = join(tmp, 'tiny224.f16.safetensors');
  const r = cli(['convert', resolve(FIXTURES, 'zse', 'tiny224.pth'), '-o', out, '--fp16', '--json']);
  assert.is(r.code, 0, r.err);
  const rep = JSON.parse(r.out);
  assert.is(rep.tensorsDropped, 16);
  assert.is(rep.dtype, 'f16');
  const s = cli(['score', '--weights', out, '--mode', 'ret', '--sketch', skNpy, '--photo', imNpy, '--json']);
  // fp16 weights round each parameter by up to 2^-11 relative; cosines of unit vectors move by ~1e-3.
  assertClose((JSON.parse(s.out).scores as number[][]).flat(), toFloat32(exp.get('ret.cosine')!), 5e-3, 0, 'fp16 ret');
});

test('preprocess writes float32 [3,224,224]', () => {
  const png = new PNG({ width: 40, height: 30 });
  png.data.fill(255);
  for (let x = 5; x < 30; x++) png.data.fill(0, (12 * 40 + x) * 4, (12 * 40 + x) * 4 + 3);
  const f = join(tmp, 'line.png');
  writeFileSync(f, PNG.sync.write(png));
  const r = cli(['preprocess', '--modality', 'sketch', f, '-o', join(tmp, 'line.npy')]);
  assert.is(r.code, 0, r.err);
  const t = readNpy(readFileSync(join(tmp, 'line.npy')));
  assert.equal(t.shape, [3, 224, 224]);
  assert.is(t.dtype, 'f32');
});

test('bad inputs: corrupt image, empty sketch, wrong .npy, not a checkpoint, missing and mis-shaped tensors, no adapter', () => {
  const corrupt = join(tmp, 'corrupt.jpg');
  writeFileSync(corrupt, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(40, 7)]));
  assertCleanError(cli(['embed', '--weights', W224, '--modality', 'photo', corrupt]), /corrupt\.jpg/);

  const white = new PNG({ width: 64, height: 64 });
  white.data.fill(255);
  const empty = join(tmp, 'empty.png');
  writeFileSync(empty, PNG.sync.write(white));
  assertCleanError(cli(['embed', '--weights', W224, '--modality', 'sketch', empty]), /empty|no ink|blank/i);

  const wrongShape = join(tmp, 'wrong.npy');
  writeFileSync(wrongShape, writeNpy({ dtype: 'f32', shape: [3, 64, 64], data: new Float32Array(3 * 64 * 64) }));
  assertCleanError(cli(['embed', '--weights', W224, '--modality', 'sketch', wrongShape]), /\[3,64,64\]/);
  const wrongType = join(tmp, 'f64.npy');
  writeFileSync(wrongType, writeNpy({ dtype: 'f64', shape: [3, 224, 224], data: new Float64Array(3 * 224 * 224) }));
  assertCleanError(cli(['embed', '--weights', W224, '--modality', 'sketch', wrongType]), /f64/);

  assertCleanError(cli(['convert', corrupt, '-o', join(tmp, 'x.safetensors')]), /JPEG|not a/i);
  assertCleanError(cli(['convert', resolve(FIXTURES, 'ckpt', 'zse_tiny_missing.pth'), '-o', join(tmp, 'y.safetensors'), '--sa-heads', '4', '--ca-heads', '2']), /missing/i);
  assertCleanError(cli(['convert', resolve(FIXTURES, 'ckpt', 'zse_tiny_misshaped.pth'), '-o', join(tmp, 'z.safetensors'), '--sa-heads', '4', '--ca-heads', '2']), /shape/i);
  assertCleanError(cli(['convert', resolve(FIXTURES, 'ckpt', 'malicious.pth'), '-o', join(tmp, 'm.safetensors')]), /system/);

  const noGpu = cli(['info'], { VK_ICD_FILENAMES: join(tmp, 'no-such-driver.json'), VK_DRIVER_FILES: join(tmp, 'no-such-driver.json') });
  assertCleanError(noGpu, /adapter/i);
  assert.match(noGpu.err, /ensure-vulkan|driver/);
});

test.run();
