// Opt-in full-size CAAN parity check (CaanConfig.full(): ViT-B/16 sketch and photo towers at 224 px, CLIP ViT-B's
// text tower, 254,878,620 params): `npm run test:full`, or alone with
//   XDG_RUNTIME_DIR=/tmp node --import tsx --import ./test/hooks.mjs node_modules/uvu/bin.js test/full caan
// tools/fixtures/caan_full_parity.py writes seeded random F32 weights (~1.02 GB safetensors), n sketches, n photos, two texts
// of different lengths and the float64 reference (projected tokens, embeddings of both towers and the text tower,
// cosines, anchors, the anchor cosine matrix and the RN score of all n×n pairs, each anchor's best word and the
// local score of every text × image pair) into .cache/caan-full (git-ignored, regenerated only when missing or stale). The engine loads the weights through loadCaanWeights and must match.
// SKETCHGPU_CAAN_FULL_DIR points it at another generator output (e.g. a --preset tiny smoke run).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadCaanWeights } from '../../src/models/load-file.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { toFloat32, type HostTensor } from '../../src/core/tensor.ts';
import { CaanModel } from '../../src/models/caan/model.ts';
import { loadClipTokenizer } from '../../src/text/clip-vocab-node.ts';
import { REPO_ROOT } from '../paths.ts';
import { ensureFixtures, mb, secs } from './fixtures.ts';
import { assertClose, gpu, maxAbsDiff } from '../util.ts';

// Tolerances (the reference is float64 from the same F32 weights and inputs; the engine is fp32 with its own
// summation orders). Embeddings are unit vectors, cosines and RN scores lie in [-1, 1] / (0, 1): 1e-4 absolute, as
// the ZSE full check and the tiny CAAN test. The projected tokens, the EOT features and the anchors are not
// normalised (entries up to ~10), so they get 1e-4 absolute + 1e-4 relative. At full size every dot product sums
// up to K = 3072 fp32 products (2304 in the stem's last conv) through 12 blocks, yet the measured max |diff| (seed
// 2024, n = 2, lavapipe) is 1.4e-7 for the embeddings, 7.6e-8 for the cosines, 6.6e-7 for the RN scores, 2.2e-7 /
// 6.0e-8 for the text-image best-word cosines / scores and 3.8e-6 /
// 3.7e-6 / 9.8e-6 for the projected tokens / EOT features / anchors (|ref| up to ~5, so ~2e-6 relative): the
// bounds leave 10x-700x headroom, no wider tolerance is needed at full size, and a wrong stage moves things >1e-2.
const TOL = 1e-4;
const DIR = process.env.SKETCHGPU_CAAN_FULL_DIR ? resolve(process.env.SKETCHGPU_CAAN_FULL_DIR) : resolve(REPO_ROOT, '.cache', 'caan-full');
const WEIGHTS = resolve(DIR, 'caan-full-random.safetensors');
const FILES = ['caan-full-random.safetensors', 'expected.safetensors', 'stamp.json'];

const t = suite('CAAN full-size parity (ViT-B/16 towers + CLIP ViT-B text tower, F32 weights)');
const log = (s: string) => console.log(`    [caan-full] ${s}`);

let exp: Map<string, HostTensor>;
let meta: Record<string, string>;
let full = true;
let n = 0;
let model: CaanModel | undefined;
let sk: { emb: Float32Array; tokens: Float32Array };
let im: { emb: Float32Array; tokens: Float32Array };
const worst: Record<string, number> = {};

const get = (k: string) => {
  const v = exp.get(k);
  if (!v) throw new Error(`expected.safetensors has no ${k}`);
  return toFloat32(v);
};
const cmp = (got: Float32Array | undefined, key: string, rtol = 0) => {
  if (!got) throw new Error(`engine produced no output for ${key}`);
  worst[key] = maxAbsDiff(got, get(key));
  log(`max |diff| ${key}: ${worst[key]!.toExponential(3)} (max |ref| ${maxAbsDiff(get(key), new Float32Array(got.length)).toExponential(2)})`);
  assertClose(got, get(key), TOL, rtol, key);
};

t.before(() => {
  ensureFixtures({ dir: DIR, files: FILES, script: 'tools/fixtures/caan_full_parity.py', what: 'full-size CAAN', log });
  const e = readSafetensors(readFileSync(resolve(DIR, 'expected.safetensors')), 'expected.safetensors');
  exp = e.tensors;
  meta = e.metadata;
  full = !('preset' in JSON.parse(meta['sketchgpu.stamp'] ?? '{}'));
  n = exp.get('sketch.input')!.shape[0]!;
});

t.after(async () => {
  if (Object.keys(worst).length) log(`max |diff| overall ${Math.max(...Object.values(worst)).toExponential(3)}`);
  await model?.destroy();
});

t('loads the F32 weights (~1 GB) through loadCaanWeights and uploads them', async () => {
  const t0 = performance.now();
  const w = await loadCaanWeights(WEIGHTS);
  let params = 0;
  let bytes = 0;
  for (const v of w.tensors.values()) {
    params += v.data.length;
    bytes += v.data.byteLength;
  }
  log(`load: ${secs(t0)} for ${mb(statSync(WEIGHTS).size)} on disk -> ${w.tensors.size} tensors, ${params.toLocaleString('en')} params, ` +
    `${mb(bytes)}; peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`);
  if (full) {
    assert.is(w.tensors.size, 569);
    assert.is(params, 254878620);
    const c = w.config;
    assert.equal([c.image.width, c.image.depth, c.image.heads, c.image.mlp, c.image.grid], [768, 12, 12, 3072, 14]);
    assert.equal([c.text.width, c.text.depth, c.text.heads, c.text.mlp, c.text.context, c.embed], [512, 12, 8, 2048, 77, 512]);
  }
  const t1 = performance.now();
  model = CaanModel.create(await gpu(), w.config, w.tensors, { tokenizer: await loadClipTokenizer() });
  await model.ctx.device.queue.onSubmittedWorkDone();
  log(`GPU device + weight upload: ${secs(t1)}`);
});

t('image towers: projected tokens, embeddings, sketch-photo cosines', async () => {
  assert.ok(model, 'model not loaded');
  const run = async (what: 'sketch' | 'photo') => {
    const t0 = performance.now();
    const f = what === 'sketch' ? model!.encodeSketches.bind(model) : model!.encodePhotos.bind(model);
    const r = await f(get(`${what}.input`), n, { tokens: true });
    log(`${what} tower: ${n} images in ${secs(t0)} (includes pipeline creation)`);
    return { emb: r.emb, tokens: r.tokens! };
  };
  sk = await run('sketch');
  im = await run('photo');
  cmp(sk.tokens, 'sketch.proj', TOL);
  cmp(im.tokens, 'photo.proj', TOL);
  cmp(sk.emb, 'sketch.emb');
  cmp(im.emb, 'photo.emb');
  cmp(await model.cosine(sk.emb, n, im.emb, n), 'sim.sketch_photo');
});

t('text tower from strings (two lengths): ids, EOT features, embeddings, text-image cosines', async () => {
  assert.ok(model && sk && im, 'image towers did not run');
  const texts = JSON.parse(meta['sketchgpu.texts']!) as string[];
  const ids = exp.get('text.ids')!;
  const ctx = ids.shape[1]!;
  assert.equal(Array.from(model.tokenizer!.tokenize(texts, ctx).data), Array.from(ids.data as Int32Array), 'TS tokenizer vs clip_tokenizer_ref.py');
  const lens = Array.from(exp.get('text.eot')!.data as Int32Array, (e) => e + 1);
  const t0 = performance.now();
  const r = await model.encodeTexts(texts);
  log(`text tower: ${texts.length} texts (${lens.join(' and ')} tokens) in ${secs(t0)} (includes pipeline creation)`);
  cmp(r.features, 'text.eot_features', TOL);
  cmp(r.emb, 'text.emb');
  cmp(await model.cosine(r.emb, texts.length, im.emb, n), 'sim.text_photo');
  cmp(await model.cosine(r.emb, texts.length, sk.emb, n), 'sim.text_sketch');
});

t('sketch-photo relation: anchors, anchor cosine matrix and RN score of all n×n pairs', async () => {
  assert.ok(model && sk && im, 'image towers did not run');
  const pairs = new Uint32Array(2 * n * n);
  for (let s = 0; s < n; s++) for (let j = 0; j < n; j++) pairs.set([s, j], 2 * (s * n + j));
  const t0 = performance.now();
  const r = await model.debugRelation(sk.tokens, n, im.tokens, n, pairs);
  log(`relation (debug): ${n * n} pairs in ${secs(t0)} (includes pipeline creation)`);
  cmp(r['anchors.sketch'], 'pair.anchors.sketch', TOL);
  cmp(r.cos, 'pair.cos');
  cmp(r.score, 'rn.score');
  const t1 = performance.now();
  const score = await model.relation(sk.tokens, n, im.tokens, n, pairs);
  log(`relation: ${n * n} pairs in ${secs(t1)} (includes pipeline creation)`);
  const want = get('rn.score');
  log(`rn.score engine ${Array.from(score, (v) => v.toFixed(6)).join(' ')} | reference ${Array.from(want, (v) => v.toFixed(6)).join(' ')}`);
  cmp(score, 'rn.score');
});

t('text-image alignment: best word per anchor and local score for every text × photo and text × sketch pair', async () => {
  assert.ok(model && sk && im, 'image towers did not run');
  const texts = JSON.parse(meta['sketchgpu.texts']!) as string[];
  const r = await model.encodeTexts(texts, undefined, { tokens: true });
  const E = model.config.embed;
  const eot = Array.from(exp.get('text.eot')!.data as Int32Array);
  assert.equal(r.tokens!.map((x) => x.length / E), eot.map((e) => e + 1));
  const pairs = new Uint32Array(2 * n);
  for (let j = 0; j < n; j++) pairs.set([0, j], 2 * j);
  for (const [side, m, tok] of [['photo', 'text_photo', im.tokens], ['sketch', 'text_sketch', sk.tokens]] as const) {
    const best: Float32Array[] = [], score: Float32Array[] = [];
    const t0 = performance.now();
    for (let ti = 0; ti < texts.length; ti++) {
      const d = await model.debugTextRelation(side, r.tokens![ti]!, 1, eot[ti]! + 1, tok, n, pairs);
      best.push(d.best!);
      score.push(d.score!);
      const s = await model.textRelation(side, r.tokens![ti]!, tok, n, Uint32Array.from({ length: n }, (_, j) => j));
      assertClose(s, d.score!, 1e-6, 0, 'textRelation() vs debugTextRelation()');
    }
    log(`${m}: ${texts.length * n} pairs twice in ${secs(t0)} (includes pipeline creation)`);
    const cat = (xs: Float32Array[]) => { const o = new Float32Array(xs.reduce((a, x) => a + x.length, 0)); let k = 0; for (const x of xs) { o.set(x, k); k += x.length; } return o; };
    cmp(cat(best), `${m}.best`);
    cmp(cat(score), `${m}.score`);
  }
});

t.run();
