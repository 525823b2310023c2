// Opt-in full-size (ViT-B/16, 224 px, heads 12/8) parity check: `npm run test:full`, or alone with
//   node --import tsx --import ./test/hooks.mjs test/full/zse.full.test.ts
// tools/fixtures/full_parity.py writes seeded random weights in the official checkpoint format (~409 MB .pth), n sketches
// and n photos, and the float64 reference (embeddings, ret cosine, RN scores for all n×n pairs) into .cache/zse-full
// (git-ignored; the generator runs each time and regenerates only when its stamp is missing or stale). The engine loads the .pth through its own checkpoint
// reader, runs SA and CA+RN, and must match the reference to 1e-4 absolute. On lavapipe (software Vulkan) this
// takes minutes: an SA image is ~37 GFLOP.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadWeights } from '../../src/models/load-file.ts';
import type { LoadedWeights } from '../../src/models/zse/weights.ts';
import { readNpy } from '../../src/io/npy.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { toFloat32 } from '../../src/core/tensor.ts';
import { ZseModel } from '../../src/models/zse/model.ts';
import { ZSE_VIT_B16 } from '../../src/models/zse/config.ts';
import { REPO_ROOT } from '../paths.ts';
import { ensureFixtures, mb, secs } from './fixtures.ts';
import { assertClose, gpu, maxAbsDiff } from '../util.ts';

// Embeddings are unit vectors and RN scores sigmoids: the 1e-4 bound is absolute, as in the tiny-config test.
const TOL = 1e-4;
const DIR = resolve(REPO_ROOT, '.cache', 'zse-full');
const PTH = resolve(DIR, 'zse-full-random.pth');
const FILES = ['zse-full-random.pth', 'inputs.npy', 'expected.safetensors', 'stamp.json'];

const t = suite('ZSE-SBIR full-size parity (ViT-B/16, official .pth)');
const log = (s: string) => console.log(`    [full] ${s}`);

let n = 0;
let inputs: Float32Array;
let exp: Map<string, Float32Array>;
let weights: LoadedWeights | undefined;
let model: ZseModel | undefined;
let sk: { emb: Float32Array; tokens: Float32Array };
let im: { emb: Float32Array; tokens: Float32Array };

t.before(() => {
  ensureFixtures({ dir: DIR, files: FILES, script: 'tools/fixtures/full_parity.py', what: 'full-size ZSE-SBIR', log });
  const x = readNpy(readFileSync(resolve(DIR, 'inputs.npy')), 'inputs.npy');
  assert.equal(x.shape.slice(1), [3, 224, 224], 'inputs.npy shape');
  n = x.shape[0]! / 2;
  inputs = toFloat32(x);
  const e = readSafetensors(readFileSync(resolve(DIR, 'expected.safetensors')), 'expected.safetensors').tensors;
  exp = new Map([...e].map(([k, v]) => [k, toFloat32(v)]));
});

t.after(async () => {
  await model?.destroy();
});

t('loads the 409 MB official-format .pth through the engine loader', async () => {
  // Loaded before the GPU device exists, so the process's peak RSS is the loader's peak.
  global.gc?.();
  const m0 = process.memoryUsage();
  const t0 = performance.now();
  weights = await loadWeights(PTH);
  const dt = secs(t0);
  const m1 = process.memoryUsage();
  const peak = process.resourceUsage().maxRSS * 1024;
  let bytes = 0;
  for (const v of weights.tensors.values()) bytes += v.data.byteLength;
  log(`load: ${dt} for ${mb(statSync(PTH).size)} on disk -> ${weights.tensors.size} tensors, ${mb(bytes)} (` +
    `${weights.dropped.length} dead keys dropped); RSS ${mb(m0.rss)} -> ${mb(m1.rss)}, peak RSS ${mb(peak)}, ` +
    `ArrayBuffers ${mb(m0.arrayBuffers)} -> ${mb(m1.arrayBuffers)}`);
  assert.equal(weights.format, 'torch');
  assert.equal(weights.config, ZSE_VIT_B16);
  assert.equal(weights.tensors.size, 194);
  let params = 0;
  for (const v of weights.tensors.values()) params += v.data.length;
  // 102,180,632 parameters in 210 keys, less the dead ca.encoder.layers.0 clone (16 keys, 3,940,096 parameters).
  assert.is(weights.dropped.length, 16);
  assert.is(params, 102180632 - 3940096);
  assert.is(weights.metadata['checkpoint.epoch'], '7');

  const t1 = performance.now();
  model = ZseModel.create(await gpu(), weights.config, weights.tensors);
  await model.ctx.device.queue.onSubmittedWorkDone();
  log(`GPU device + weight upload: ${secs(t1)}`);
});

t('SA: embeddings and ret cosine of n sketches and n photos', async () => {
  assert.ok(model, 'model not loaded');
  const px = 3 * 224 * 224;
  const run = async (what: string, from: number) => {
    const t0 = performance.now();
    const r = await model!.encode(inputs.subarray(from * px, (from + n) * px), n, { tokens: true });
    log(`SA ${what}: ${n} images in ${secs(t0)}${from === 0 ? ' (includes pipeline creation)' : ''}`);
    return { emb: r.emb, tokens: r.tokens! };
  };
  sk = await run('sketches', 0);
  im = await run('photos', n);
  const D = 768;
  const cos = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += sk.emb[i * D + d]! * im.emb[j * D + d]!;
    cos[i * n + j] = s;
  }
  const checks: [string, Float32Array][] = [['sketch.emb', sk.emb], ['photo.emb', im.emb], ['ret.cosine', cos]];
  for (const [k, got] of checks) log(`max |diff| ${k}: ${maxAbsDiff(got, exp.get(k)!).toExponential(3)}`);
  for (const [k, got] of checks) assertClose(got, exp.get(k)!, TOL, 0, k);
});

t('CA + RN: scores of all n×n pairs', async () => {
  assert.ok(model && sk && im, 'SA did not run');
  const pairs = new Uint32Array(2 * n * n);
  for (let s = 0; s < n; s++) for (let j = 0; j < n; j++) pairs.set([s, j], 2 * (s * n + j));
  const t0 = performance.now();
  const score = await model.relation(sk.tokens, n, im.tokens, n, pairs);
  log(`RN: ${n * n} pairs in ${secs(t0)} (includes pipeline creation)`);
  const want = exp.get('rn.score')!;
  log(`rn.score engine ${Array.from(score, (v) => v.toFixed(6)).join(' ')} | reference ${Array.from(want, (v) => v.toFixed(6)).join(' ')}`);
  log(`max |diff| rn.score: ${maxAbsDiff(score, want).toExponential(3)}`);
  assertClose(score, want, TOL, 0, 'rn.score');
});

// The f16 option at full size (K up to 3072, the binary16-stored weights and MLP hiddens of every layer): the speed
// issue's bar is cosine >= 0.999 to f32 for embeddings; RN scores are sigmoids, 1e-2 absolute.
t('f16 option: embeddings within cosine 0.999 of f32, RN scores close, Linear weights stored as binary16', async () => {
  assert.ok(model && weights && sk && im, 'the f32 run did not happen');
  const m16 = ZseModel.create(model.ctx, weights.config, weights.tensors, { precision: 'f16' });
  try {
    const px = 3 * 224 * 224, D = 768;
    const t0 = performance.now();
    const s16 = await m16.encode(inputs.subarray(0, n * px), n, { tokens: true });
    const i16 = await m16.encode(inputs.subarray(n * px, 2 * n * px), n, { tokens: true });
    log(`SA f16: ${2 * n} images in ${secs(t0)} (includes pipeline creation)`);
    let minCos = 1;
    for (const [a, b] of [[sk.emb, s16.emb], [im.emb, i16.emb]] as const) {
      for (let i = 0; i < n; i++) {
        let c = 0;
        for (let d = 0; d < D; d++) c += a[i * D + d]! * b[i * D + d]!;
        minCos = Math.min(minCos, c);
      }
    }
    const pairs = new Uint32Array(2 * n * n);
    for (let s = 0; s < n; s++) for (let j = 0; j < n; j++) pairs.set([s, j], 2 * (s * n + j));
    const d = maxAbsDiff(await m16.relation(s16.tokens!, n, i16.tokens!, n, pairs), exp.get('rn.score')!);
    log(`f16 vs f32: min embedding cosine ${minCos.toFixed(7)}, RN score max |diff| to the reference ${d.toExponential(3)}; ` +
      `weights on the GPU ${mb(model.weightBytes)} -> ${mb(m16.weightBytes)}`);
    assert.ok(minCos >= 0.999, `min cosine ${minCos}`);
    assert.ok(d < 1e-2, `RN scores moved by ${d}`);
    assert.ok(m16.weightBytes < 0.55 * model.weightBytes, `f16 weights ${m16.weightBytes} B vs ${model.weightBytes} B`);
  } finally {
    await m16.destroy();
  }
});

t.run();
