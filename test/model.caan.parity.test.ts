// CAAN engine vs. the PyTorch reference (tools/reference/caan_ref.py in float64 from the same F16 weights and inputs; fixture
// from tools/fixtures/make_caan_fixtures.py) at every stage the engine runs: both image towers, the text tower, the
// sketch-photo relation and the text-image (text<->sketch, text<->photo) local alignment.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadCaanWeights } from '../src/models/load-file.ts';
import { parseCaanWeights } from '../src/models/caan/weights.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { toFloat32, type HostTensor } from '../src/core/tensor.ts';
import { CaanModel } from '../src/models/caan/model.ts';
import { CaanRetrieval } from '../src/retrieval/model.ts';
import { CLIP_EOT, CLIP_SOT } from '../src/text/clip-tokenizer.ts';
import { loadClipTokenizer } from '../src/text/clip-vocab-node.ts';
import { isSketchError } from '../src/core/errors.ts';
import { FIXTURES } from './paths.ts';
import { assertClose, gpu, maxAbsDiff } from './util.ts';

// Tolerances. The reference is float64, the engine fp32 with other summation orders. Activations are O(1) after
// each LayerNorm and every stage sums at most a few hundred products, so fp32 rounding is ~1e-6 and grows mildly
// through the blocks: 1e-4 absolute + 1e-4 relative (as the ZSE parity test) is an order above the measured error
// (SKETCHGPU_VERBOSE=1 prints it) and far below what a wrong mask, activation or pooling row does (>1e-2).
const TOL = 1e-4;
const verbose = !!process.env.SKETCHGPU_VERBOSE;
const DIR = resolve(FIXTURES, 'caan');
const WEIGHTS = resolve(DIR, 'tiny.weights.safetensors');

const t = suite('CAAN parity tiny');
const exp = readSafetensors(readFileSync(resolve(DIR, 'tiny.expected.safetensors'))).tensors;
const summary = JSON.parse(readFileSync(resolve(DIR, 'tiny.expected.json'), 'utf8')) as { texts: string[] };
const get = (k: string) => {
  const v = exp.get(k);
  if (!v) throw new Error(`fixture has no ${k}`);
  return toFloat32(v);
};
const worst: Record<string, number> = {};
const cmp = (got: Float32Array | undefined, key: string, tol = TOL) => {
  if (!got) throw new Error(`engine produced no output for ${key}`);
  worst[key] = maxAbsDiff(got, get(key));
  if (verbose) console.log(`    ${key}: max |diff| ${worst[key]!.toExponential(2)}`);
  assertClose(got, get(key), tol, tol, key);
};
const ns = exp.get('sketch.input')!.shape[0]!;
const np = exp.get('photo.input')!.shape[0]!;
const ids = exp.get('text.ids')!;
const [nt, ctx] = ids.shape as [number, number];
const eot = Array.from(exp.get('text.eot')!.data as Int32Array);
let model: CaanModel;
let sk: Record<string, Float32Array>;
let im: Record<string, Float32Array>;

t.before(async () => {
  const w = await loadCaanWeights(WEIGHTS);
  model = CaanModel.create(await gpu(), w.config, w.tensors, { tokenizer: await loadClipTokenizer() });
  sk = await model.debugEncode('sketch', get('sketch.input'), ns);
  im = await model.debugEncode('photo', get('photo.input'), np);
});
t.after(async () => {
  if (verbose) console.log('    max |diff| overall', Math.max(...Object.values(worst)).toExponential(2));
  await model.destroy();
});

t('image towers: tokens, blocks, final norm, projected tokens, embeddings (separate weights)', () => {
  for (const [m, out] of [['sketch', sk], ['photo', im]] as const) {
    cmp(out.tokens, `${m}.tokens`);
    for (let l = 0; l < model.config.image.depth; l++) cmp(out[`layer${l}`], `${m}.layer${l}`);
    cmp(out.ln, `${m}.ln`);
    cmp(out.proj, `${m}.proj`);
    cmp(out.emb, `${m}.emb`);
  }
});

t('image towers: the batched path and the cosine op', async () => {
  const s = await model.encodeSketches(get('sketch.input'), ns, { tokens: true });
  assert.is(maxAbsDiff(s.emb, sk.emb!), 0, 'encodeSketches() and debugEncode() differ');
  assert.is(maxAbsDiff(s.tokens!, sk.proj!), 0);
  const p = await model.encodePhotos(get('photo.input'), np);
  cmp(await model.cosine(s.emb, ns, p.emb, np), 'sim.sketch_photo');
});

t('text tower over the full context: embedding, causal blocks, ln_final, EOT features, embedding', async () => {
  const u = Uint32Array.from(ids.data as Int32Array);
  const out = await model.debugText(u, nt, ctx, eot);
  cmp(out.tokens, 'text.tokens');
  for (let l = 0; l < model.config.text.depth; l++) cmp(out[`layer${l}`], `text.layer${l}`);
  cmp(out.ln, 'text.ln');
  cmp(out.features, 'text.eot_features');
  cmp(out.emb, 'text.emb');
});

t('text tower from strings: the real tokenizer, sequences cut at the longest EOT; text-image cosines', async () => {
  const r = await model.encodeTexts(summary.texts);
  cmp(r.features, 'text.eot_features');
  cmp(r.emb, 'text.emb');
  // the fixture's ids are what the TS tokenizer gives
  const tok = model.tokenizer!.tokenize(summary.texts, ctx);
  assert.equal(Array.from(tok.data), Array.from(ids.data as Int32Array));
  const p = await model.encodePhotos(get('photo.input'), np);
  cmp(await model.cosine(r.emb, nt, p.emb, np), 'sim.text_photo');
  cmp(await model.cosine(r.emb, nt, sk.emb!, ns), 'sim.text_sketch');
});

t('sketch-photo relation: cross-attention, anchors, cosine matrix, RN score for every pair', async () => {
  const pairs = new Uint32Array(2 * ns * np);
  for (let s = 0; s < ns; s++) for (let j = 0; j < np; j++) pairs.set([s, j], 2 * (s * np + j));
  const r = await model.debugRelation(sk.proj!, ns, im.proj!, np, pairs);
  cmp(r['ca.sketch'], 'pair.ca.sketch');
  cmp(r['ca.photo'], 'pair.ca.photo');
  cmp(r['anchors.sketch'], 'pair.anchors.sketch');
  cmp(r['anchors.photo'], 'pair.anchors.photo');
  cmp(r.cos, 'pair.cos');
  cmp(r.score, 'rn.score');
  // the chunked production path, pairs reversed, two pairs per forward
  const rev = new Uint32Array(pairs.length);
  for (let p = 0; p < ns * np; p++) rev.set(pairs.subarray(2 * (ns * np - 1 - p), 2 * (ns * np - p)), 2 * p);
  const small = CaanModel.create(model.ctx, model.config, (await loadCaanWeights(WEIGHTS)).tensors, { maxPairs: 2 });
  try {
    const scores = await small.relation(sk.proj!, ns, im.proj!, np, rev);
    assertClose(scores.slice().reverse(), r.score!, 1e-6, 0, 'relation() vs debugRelation()');
  } finally {
    await small.destroy();
  }
});

t('text-image alignment: cross-attention both ways, best word per anchor, score for every text x image pair', async () => {
  const r = await model.encodeTexts(summary.texts, undefined, { tokens: true });
  const E = model.config.embed, T = model.tokens, A = get('text_photo.best').length / (nt * np);
  assert.equal(r.tokens!.map((x) => x.length / E), eot.map((e) => e + 1), 'one token row per position up to EOT');
  for (const [side, m, n, tok] of [['photo', 'text_photo', np, im.proj!], ['sketch', 'text_sketch', ns, sk.proj!]] as const) {
    const caImage = get(`${m}.ca.image`), caText = get(`${m}.ca.text`), best = get(`${m}.best`), score = get(`${m}.score`);
    for (let ti = 0; ti < nt; ti++) {
      const L = eot[ti]! + 1;
      const pairs = new Uint32Array(2 * n);
      for (let j = 0; j < n; j++) pairs.set([0, j], 2 * j);
      const d = await model.debugTextRelation(side, r.tokens![ti]!, 1, L, tok, n, pairs);
      const rows = (x: Float32Array, perPair: number, keep: number) => {
        const out = new Float32Array(n * keep * E);
        for (let j = 0; j < n; j++) out.set(x.subarray((ti * n + j) * perPair * E, ((ti * n + j) * perPair + keep) * E), j * keep * E);
        return out;
      };
      const at = (key: string, got: Float32Array | undefined, want: Float32Array) => {
        worst[key] = Math.max(worst[key] ?? 0, maxAbsDiff(got!, want));
        assertClose(got!, want, TOL, TOL, `${key} (text ${ti})`);
      };
      at(`${m}.ca.image`, d['ca.image'], rows(caImage, T, T));
      at(`${m}.ca.text`, d['ca.text'], rows(caText, ctx, L)); // the reference's rows past EOT are never used
      at(`${m}.best`, d.best, best.slice(ti * n * A, (ti + 1) * n * A));
      at(`${m}.score`, d.score, score.slice(ti * n, (ti + 1) * n));
      // the chunked production path: images in reverse order, one repeated, two pairs per forward
      const small = CaanModel.create(model.ctx, model.config, (await loadCaanWeights(WEIGHTS)).tensors, { maxPairs: 2 });
      try {
        const images = Uint32Array.from([...Array.from({ length: n }, (_, j) => n - 1 - j), 0]);
        const got = await small.textRelation(side, r.tokens![ti]!, tok, n, images);
        assertClose(got, Array.from(images, (j) => d.score![j]!), 1e-6, 0, 'textRelation() vs debugTextRelation()');
        await small.textRelation(side, r.tokens![ti]!, tok, n, Uint32Array.of(n)).then(() => assert.unreachable('accepted an image index past n'), (e) => assert.match(String(e), /out of range/));
      } finally {
        await small.destroy();
      }
    }
    if (verbose) console.log(`    ${m}: scores ${Array.from(score, (v) => v.toFixed(4)).join(' ')}`);
  }
});

t('token ids outside the vocabulary or past the context are refused with a message', async () => {
  const bad = Int32Array.from(ids.data as Int32Array);
  bad[3] = 49408;
  await model.encodeTokenIds(bad, nt, ctx).then(() => assert.unreachable('accepted id 49408'), (e) => assert.match(String(e), /outside the vocabulary/));
  const long = new Int32Array(ctx + 3).fill(400);
  long[ctx + 1] = 49407;
  await model.encodeTokenIds(long, 1, ctx + 3).then(() => assert.unreachable('accepted a text past the context'), (e) => assert.match(String(e), /more than the model's context/));
});

/** parseCaanWeights refuses `bytes` with a SketchError whose message matches `re`. */
function expectError(bytes: Uint8Array, re: RegExp): void {
  try {
    parseCaanWeights(bytes, 'x.safetensors');
  } catch (e) {
    assert.ok(isSketchError(e), String(e));
    assert.match(String((e as Error).message), re);
    return;
  }
  assert.unreachable('accepted bad weights');
}

t('weights: a missing and a mis-shaped tensor are named; ZSE weights and a missing config are told apart', () => {
  const file = readSafetensors(readFileSync(WEIGHTS));
  const tensors = new Map<string, HostTensor>(file.tensors);
  tensors.delete('photo.proj');
  const ln = tensors.get('text.ln_final.weight')!;
  tensors.set('text.ln_final.weight', { ...ln, shape: [ln.shape[0]! / 2, 2] });
  expectError(writeSafetensors(tensors, file.metadata), /missing {5}photo\.proj[\s\S]*mis-shaped {2}text\.ln_final\.weight: expected \[16\], found \[8, 2\]/);
  expectError(writeSafetensors(file.tensors, { ...file.metadata, 'sketchgpu.model': 'zse-sbir' }), /not a CAAN weights file/);
  const { ['sketchgpu.config']: _drop, ...noConfig } = file.metadata;
  expectError(writeSafetensors(file.tensors, noConfig), /has no sketchgpu\.config/);
  expectError(writeSafetensors(file.tensors, { ...file.metadata, 'sketchgpu.config': file.metadata['sketchgpu.config']!.replace('"heads": 2', '"heads": 3') }), /text\.width 16 is not divisible by text\.heads 3/);
});

/** The fixture file with the compact token table (caan_ref.prune_token_table's layout) keeping `keep` ids. */
function compact(keep: number[], edit?: (rows: HostTensor, ids: HostTensor) => void): { bytes: Uint8Array; ids: Int32Array } {
  const file = readSafetensors(readFileSync(WEIGHTS));
  const table = file.tensors.get('text.token_embedding.weight')!;
  const W = table.shape[1]!;
  const sorted = Int32Array.from([...new Set(keep)].sort((a, b) => a - b));
  const src = table.data as Uint16Array;
  const rows = new Uint16Array(sorted.length * W);
  sorted.forEach((id, i) => rows.set(src.subarray(id * W, (id + 1) * W), i * W));
  const tensors = new Map<string, HostTensor>(file.tensors);
  tensors.delete('text.token_embedding.weight');
  const r: HostTensor = { dtype: table.dtype, shape: [sorted.length, W], data: rows };
  const i: HostTensor = { dtype: 'i32', shape: [sorted.length], data: Int32Array.from(sorted) };
  edit?.(r, i);
  tensors.set('text.token_embedding.rows', r);
  tensors.set('text.token_embedding.ids', i);
  return { bytes: writeSafetensors(tensors, file.metadata), ids: sorted };
}

t('compact token table: the stored rows in place, zeros elsewhere; the texts that use only those give the same embeddings', async () => {
  const used = [...new Set(Array.from(ids.data as Int32Array))];
  const { bytes, ids: kept } = compact([...used, 5, 49407, 1000]);
  const w = parseCaanWeights(bytes, 'compact.safetensors');
  assert.equal(Array.from(w.tokenIds!), Array.from(kept));
  const full = readSafetensors(readFileSync(WEIGHTS)).tensors.get('text.token_embedding.weight')!;
  const got = w.tensors.get('text.token_embedding.weight')!;
  assert.equal(got.shape, full.shape);
  const W = full.shape[1]!, keptSet = new Set(kept);
  let same = 0, zero = 0;
  for (let id = 0; id < full.shape[0]!; id++) {
    const a = (got.data as Uint16Array).subarray(id * W, (id + 1) * W), b = (full.data as Uint16Array).subarray(id * W, (id + 1) * W);
    if (keptSet.has(id)) same += Number(a.every((v, k) => v === b[k]));
    else zero += Number(a.every((v) => v === 0));
  }
  assert.is(same, kept.length, 'every stored row in its place');
  assert.is(zero, full.shape[0]! - kept.length, 'every other row zero');
  const m = CaanModel.create(model.ctx, w.config, w.tensors, { tokenizer: await loadClipTokenizer() });
  try {
    const a = await m.encodeTexts(summary.texts), b = await model.encodeTexts(summary.texts);
    assert.is(maxAbsDiff(a.emb, b.emb), 0, 'texts whose ids are all stored embed as with the whole table');
  } finally {
    await m.destroy();
  }
});

t('compact token table: texts with words whose rows are not stored are embedded, with one warning naming the words', async () => {
  const tok = model.tokenizer!;
  const cat = tok.encode('cat');
  const base = [...new Set([...tok.encode('a photo of a dog'), CLIP_SOT, CLIP_EOT, 0])];
  const w = parseCaanWeights(compact(base).bytes, 'compact.safetensors');
  const m = CaanModel.create(model.ctx, w.config, w.tensors, { tokenizer: tok });
  const warnings: string[] = [];
  const r = new CaanRetrieval(m, undefined, { trainedTokens: w.tokenIds, warn: (x) => warnings.push(x) });
  try {
    await r.encodeTexts(['a photo of a dog']);
    assert.equal(warnings, [], 'every word stored: no warning');
    const emb = await r.encodeTexts(['a photo of a cat', 'a dog', 'a cat or a dog']);
    assert.is(emb.length, 3 * w.config.embed);
    assert.is(warnings.length, 1, warnings.join('\n'));
    assert.ok(warnings[0]!.startsWith(`2 of 3 texts: "${tok.decode(cat).trim()}", "or" occur `), warnings[0]);
    assert.match(warnings[0]!, /in no training text of these weights/);
  } finally {
    await m.destroy();
  }
});

t('compact token table: bad ids, a row count that does not match, both forms at once are refused with a message', () => {
  expectError(compact([1, 2, 3], (_r, i) => { (i.data as Int32Array)[1] = 1; }).bytes, /strictly ascending/);
  expectError(compact([1, 2, 3], (_r, i) => { (i.data as Int32Array)[2] = 49408; }).bytes, /is not a token id/);
  expectError(compact([1, 2, 3], (r) => { r.shape = [1, 3 * r.shape[1]!]; }).bytes, /text\.token_embedding\.rows has shape \[1, 48\], not \[3, 16\]/);
  const file = readSafetensors(compact([1, 2, 3]).bytes);
  const both = new Map(file.tensors);
  both.set('text.token_embedding.weight', readSafetensors(readFileSync(WEIGHTS)).tensors.get('text.token_embedding.weight')!);
  expectError(writeSafetensors(both, file.metadata), /holds both/);
  const onlyRows = new Map(file.tensors);
  onlyRows.delete('text.token_embedding.ids');
  expectError(writeSafetensors(onlyRows, file.metadata), /text\.token_embedding\.ids is missing/);
  const huge = file.metadata['sketchgpu.config']!.replace(/"text": \{([^}]*)"width": 16/, '"text": {$1"width": 4000000');
  assert.not.equal(huge, file.metadata['sketchgpu.config']);
  expectError(writeSafetensors(file.tensors, { ...file.metadata, 'sketchgpu.config': huge }), /would take \d+ MiB/);
});

// The graphs a GPU adapter gets (pre-norm LayerNorms fused into the GEMMs that read them, in the image towers' and
// the text tower's blocks), run on this adapter: the same reference, the same tolerances.
t('image and text towers on the graphs of a hardware adapter (fused LayerNorms)', async () => {
  const w = await loadCaanWeights(WEIGHTS);
  const m = CaanModel.create({ ...model.ctx, software: false, gemmTuner: undefined }, w.config, w.tensors, { tokenizer: await loadClipTokenizer() });
  try {
    for (const side of ['sketch', 'photo'] as const) {
      const n = side === 'sketch' ? ns : np;
      const out = await m.debugEncode(side, get(`${side}.input`), n);
      for (let l = 0; l < m.config.image.depth; l++) cmp(out[`layer${l}`], `${side}.layer${l}`);
      cmp(out.emb, `${side}.emb`);
    }
    const out = await m.debugText(Uint32Array.from(ids.data as Int32Array), nt, ctx, eot);
    for (let l = 0; l < m.config.text.depth; l++) cmp(out[`layer${l}`], `text.layer${l}`);
    cmp(out.emb, 'text.emb');
  } finally {
    await m.destroy();
  }
});

t.run();
