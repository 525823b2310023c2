// CAAN through the retrieval commands (issue 8 item 4), on the tiny CAAN fixture and small synthetic images: model
// detection and --model, index + query against a direct CaanModel cosine ranking, text and composed sketch+text
// queries against encodeTexts + cosine computed here, the relation re-rank against CaanModel.relation, eval's
// text / sketch+text / rn modes against scores and metrics computed here independently, and the refusals.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isSketchError } from '../src/core/errors.ts';
import { readNpy } from '../src/io/npy.ts';
import { loadCaanWeights, loadModelWeights, loadWeights, nodeWeightsHash as weightsHash } from '../src/models/load-file.ts';
import { CaanModel } from '../src/models/caan/model.ts';
import { detectModelKind } from '../src/models/load.ts';
import { ZseModel } from '../src/models/zse/model.ts';
import { loadModelInput } from '../src/retrieval/files.ts';
import { parseIndex } from '../src/retrieval/index-format.ts';
import { buildIndex } from '../src/retrieval/indexer.ts';
import { CaanRetrieval, ZseRetrieval } from '../src/retrieval/model.ts';
import { loadClipTokenizer } from '../src/text/clip-vocab-node.ts';
import { FIXTURES, REPO_ROOT } from './paths.ts';
import { assertCleanError, cli, json, png } from './cli-util.ts';
import { assertClose, gpu, rand } from './util.ts';

const WC = resolve(FIXTURES, 'caan', 'tiny.weights.safetensors');
const WZ = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-caan-retrieval-'));

// A data root (sketch/<class>, photo/<class>) whose photo folder is also the gallery. Class names with _ and - check
// the prompt template.
const classes = ['apple', 'hot-air_balloon', 'sea_turtle'];
const data = join(tmp, 'data');
const gallery = join(data, 'photo');
classes.forEach((c, ci) => {
  mkdirSync(join(data, 'photo', c), { recursive: true });
  mkdirSync(join(data, 'sketch', c), { recursive: true });
  for (let k = 0; k < 3; k++) png(join(data, 'photo', c, `p${k}.png`), 70 + 5 * k, 60 + 4 * ci, 2000 + 10 * ci + k, 'photo');
  for (let k = 0; k < 2; k++) png(join(data, 'sketch', c, `s${k}.png`), 80, 76, 300 + 10 * ci + k, 'sketch');
});
const photoPaths = classes.flatMap((c) => [0, 1, 2].map((k) => `${c}/p${k}.png`));
const photoFiles = photoPaths.map((p) => join(gallery, p));
const sketchFiles = classes.flatMap((c) => [0, 1].map((k) => join(data, 'sketch', c, `s${k}.png`)));
const labelsIm = [0, 0, 0, 1, 1, 1, 2, 2, 2], labelsSk = [0, 0, 1, 1, 2, 2];
const sk1 = sketchFiles[0]!, sk2 = sketchFiles[3]!;
const prompts = ['a photo of a apple', 'a photo of a hot air balloon', 'a photo of a sea turtle'];

// ---- direct computations with the library ------------------------------------------------------------------------
let model: CaanModel;
const E = 32;
let photoEmb: Float32Array, photoTok: Float32Array, sketchEmb: Float32Array, sketchTok: Float32Array;

async function inputs(files: string[], modality: 'sketch' | 'photo') {
  const S = model.imageSize;
  const out = new Float32Array(files.length * 3 * S * S);
  for (let i = 0; i < files.length; i++) out.set(await loadModelInput(files[i]!, modality, S), i * 3 * S * S);
  return out;
}
const dot = (a: Float32Array, i: number, b: Float32Array, j: number) => {
  let s = 0;
  for (let d = 0; d < E; d++) s += a[i * E + d]! * b[j * E + d]!;
  return s;
};
/** Rows best first: cosine (of unit rows) descending, ties to the lower index. */
const ranking = (q: Float32Array, i: number, g: Float32Array, n: number) =>
  Array.from({ length: n }, (_, j) => [j, dot(q, i, g, j)] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
/** normalise((1 - w)·s + w·t), written out here independently of composeQueries. */
function compose(s: Float32Array, i: number, t: Float32Array, j: number, w: number): Float32Array {
  const v = Array.from({ length: E }, (_, d) => (1 - w) * s[i * E + d]! + w * t[j * E + d]!);
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
}

test.before(async () => {
  const w = await loadCaanWeights(WC);
  model = CaanModel.create(await gpu(), w.config, w.tensors, { tokenizer: await loadClipTokenizer() });
  const p = await model.encodePhotos(await inputs(photoFiles, 'photo'), photoFiles.length, { tokens: true });
  const s = await model.encodeSketches(await inputs(sketchFiles, 'sketch'), sketchFiles.length, { tokens: true });
  [photoEmb, photoTok, sketchEmb, sketchTok] = [p.emb, p.tokens!, s.emb, s.tokens!];
});
test.after(async () => {
  await model.destroy();
});

test('model detection: sketchgpu.model metadata says CAAN, everything else is ZSE-SBIR; --model must agree', async () => {
  assert.is(detectModelKind(readFileSync(WC)), 'caan');
  assert.is(detectModelKind(readFileSync(WZ)), 'zse-sbir');
  assert.is(detectModelKind(readFileSync(resolve(FIXTURES, 'zse', 'tiny64.pth'))), 'zse-sbir');
  assert.is((await loadModelWeights(WC)).kind, 'caan');
  assert.is((await loadModelWeights(WZ, { model: 'zse-sbir' })).kind, 'zse-sbir');
  for (const [file, wanted, re] of [[WC, 'zse-sbir', /--model zse was given, but tiny\.weights\.safetensors holds CAAN weights/], [WZ, 'caan', /--model caan was given, but tiny64\.weights\.safetensors holds ZSE-SBIR weights/]] as const) {
    await loadModelWeights(file, { model: wanted }).then(() => assert.unreachable('accepted'), (e) => {
      assert.ok(isSketchError(e));
      assert.match(e.message, re);
    });
  }
  assertCleanError(cli(['embed', '--weights', WC, '--model', 'zse', '--modality', 'photo', photoFiles[0]!]), /holds CAAN weights/);
  assertCleanError(cli(['index', gallery, '-o', join(tmp, 'never.sgi'), '--weights', WZ, '--model', 'caan']), /holds ZSE-SBIR weights/);
});

test('embed: CAAN photo, sketch and text towers, as CaanModel gives them', () => {
  const p = json(['embed', '--weights', WC, '--modality', 'photo', '--json', ...photoFiles.slice(0, 2)]).embeddings as number[][];
  assertClose(p.flat(), photoEmb.subarray(0, 2 * E), 1e-6, 0, 'photo');
  const s = json(['embed', '--weights', WC, '--model', 'caan', '--modality', 'sketch', '--json', sk1]).embeddings as number[][];
  assertClose(s.flat(), sketchEmb.subarray(0, E), 1e-6, 0, 'sketch');
});

test('index + query: a CAAN index (family "caan", projected tokens cached) and its top-k equal a direct cosine ranking', async () => {
  const out = join(tmp, 'caan.sgi');
  const r = json(['index', gallery, '-o', out, '--weights', WC, '--rn-cache', '--json']);
  assert.is(r.complete, true);
  const ix = parseIndex(readFileSync(out), out);
  assert.is(ix.model.family, 'caan');
  assert.equal(ix.paths, photoPaths);
  assertClose(ix.embeddings, photoEmb, 1e-6, 0, 'index embeddings');
  assertClose(ix.tokens!, photoTok, 1e-6, 0, 'cached tokens');
  assert.is(ix.projections, undefined, 'CAAN caches no projections');
  // The same index without the cache, built in-process through the adapter.
  const plain = join(tmp, 'caan-plain.sgi');
  const adapter = new CaanRetrieval(model);
  await buildIndex({ model: adapter, identity: adapter.identity(weightsHash((await loadCaanWeights(WC)).tensors)), weightsPath: WC, input: gallery, out: plain });
  const ix2 = parseIndex(readFileSync(plain), plain);
  assert.is(ix2.model.weights_sha256, ix.model.weights_sha256);
  assertClose(ix2.embeddings, ix.embeddings, 1e-7, 0, 'library index = CLI index');

  const q = json(['query', sk1, sk2, '--index', out, '-k', '4', '--json']);
  assert.is(q.mode, 'ret');
  q.results.forEach((res: { hits: { path: string; score: number }[] }, s: number) => {
    const want = ranking(sketchEmb, s === 0 ? 0 : 3, photoEmb, 9).slice(0, 4);
    assert.equal(res.hits.map((h) => h.path), want.map(([j]) => photoPaths[j]));
    assertClose(res.hits.map((h) => h.score), want.map(([, v]) => v), 1e-5, 0, 'cosines');
  });
});

test('query --text: text -> photo top-k equals encodeTexts + cosine; --html renders the texts', async () => {
  const texts = ['a red apple', 'a hot air balloon in the sky'];
  const q = json(['query', '--text', texts[0]!, '--text', texts[1]!, '--index', join(tmp, 'caan.sgi'), '-k', '5', '--json', '--html', join(tmp, 'text.html')]);
  assert.is(q.mode, 'text');
  const te = (await model.encodeTexts(texts)).emb;
  q.results.forEach((res: { text: string; hits: { path: string; score: number }[] }, i: number) => {
    assert.is(res.text, texts[i]);
    const want = ranking(te, i, photoEmb, 9).slice(0, 5);
    assert.equal(res.hits.map((h) => h.path), want.map(([j]) => photoPaths[j]));
    assertClose(res.hits.map((h) => h.score), want.map(([, v]) => v), 1e-5, 0, 'text cosines');
  });
  const html = readFileSync(join(tmp, 'text.html'), 'utf8');
  assert.ok(html.includes('a hot air balloon in the sky'));
  assert.is((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 10, 'ten results, no sketch');
});

test('query sketch + --text: ranks by normalise((1-w)·sketch + w·text); --rerank rn scores equal CaanModel.relation', async () => {
  const text = 'a sea turtle';
  const te = (await model.encodeTexts([text])).emb;
  const q = json(['query', sk1, sk2, '--text', text, '--text-weight', '0.3', '--index', join(tmp, 'caan.sgi'), '-k', '9', '--json']);
  assert.is(q.query, 'sketch+text');
  assert.is(q.text_weight, 0.3);
  q.results.forEach((res: { text: string; hits: { path: string; score: number }[] }, s: number) => {
    assert.is(res.text, text);
    const c = compose(sketchEmb, s === 0 ? 0 : 3, te, 0, 0.3);
    const want = ranking(c, 0, photoEmb, 9);
    assert.equal(res.hits.map((h) => h.path), want.map(([j]) => photoPaths[j]));
    assertClose(res.hits.map((h) => h.score), want.map(([, v]) => v), 1e-5, 0, 'composed cosines');
  });
  // The re-rank: with the index cache and recomputed from the files; the same RN scores as relation() directly.
  const pairs = new Uint32Array(2 * 2 * 9);
  for (let s = 0; s < 2; s++) for (let j = 0; j < 9; j++) pairs.set([s === 0 ? 0 : 3, j], 2 * (s * 9 + j));
  const rn = await model.relation(sketchTok, 6, photoTok, 9, pairs);
  for (const [index, from] of [['caan.sgi', 'index cache'], ['caan-plain.sgi', 'recomputed from the photo files']]) {
    const r = json(['query', sk1, sk2, '--text', text, '--index', join(tmp, index), '-k', '3', '--rerank', 'rn', '--rerank-k', '6', '--json']);
    assert.is(r.rerank_tokens, from);
    r.results.forEach((res: { hits: { path: string; score: number; rn: number }[] }, s: number) => {
      assert.is(res.hits.length, 3);
      for (const h of res.hits) {
        const j = photoPaths.indexOf(h.path);
        assert.ok(Math.abs(h.rn - rn[s * 9 + j]!) < 1e-5, `${h.path}: rn ${h.rn} vs relation ${rn[s * 9 + j]}`);
      }
      for (let i = 1; i < res.hits.length; i++) assert.ok(res.hits[i - 1]!.score >= res.hits[i]!.score, 'sorted by RN');
    });
  }
});

test('query --text --rerank rn: the cosine top K re-ranked by the local text-photo score, = CaanModel.textRelation', async () => {
  const text = 'a hot air balloon in the sky';
  const r = await model.encodeTexts([text], undefined, { tokens: true });
  const top6 = ranking(r.emb, 0, photoEmb, 9).slice(0, 6).map(([j]) => j);
  const local = await model.textRelation('photo', r.tokens![0]!, photoTok, 9, Uint32Array.from(top6));
  const want = top6.map((j, t) => [j, local[t]!] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 4);
  for (const [index, from] of [['caan.sgi', 'index cache'], ['caan-plain.sgi', 'recomputed from the photo files']]) {
    const q = json(['query', '--text', text, '--index', join(tmp, index), '-k', '4', '--rerank', 'rn', '--rerank-k', '6', '--json']);
    assert.is(q.mode, 'text+rn');
    assert.is(q.rerank_tokens, from);
    const hits = q.results[0].hits as { path: string; score: number; rn: number; cosine: number }[];
    assert.equal(hits.map((h) => h.path), want.map(([j]) => photoPaths[j]), from);
    assertClose(hits.map((h) => h.rn), want.map(([, v]) => v), 1e-5, 0, 'text-photo scores');
    assertClose(hits.map((h) => h.cosine), want.map(([j]) => dot(r.emb, 0, photoEmb, j)), 1e-5, 0, 'cosines kept');
  }
});

/** VOC-interpolated AP written out independently: each relevant hit adds 1/P x the best precision at or after it. */
function apIndependent(rel: number[]): number {
  const P = rel.reduce((a, b) => a + b, 0);
  const prec = rel.map((_, i) => rel.slice(0, i + 1).reduce((a, b) => a + b, 0) / (i + 1));
  let ap = 0;
  rel.forEach((r, i) => { if (r) ap += Math.max(...prec.slice(i)) / P; });
  return ap;
}

test('eval --mode text: one "a photo of a <class>" query per class; scores, mean and per-class metrics checked here', async () => {
  const file = join(tmp, 'scores-text.npy');
  const r = json(['eval', '--data', data, '--weights', WC, '--mode', 'text', '--json', '--dump-scores', file]);
  assert.is(r.mode, 'text');
  assert.is(r.n_queries, 3);
  assert.is(r.prompt_template, 'a photo of a {class}');
  assert.equal(r.per_class.map((c: { prompt: string }) => c.prompt), prompts);
  const t = readNpy(readFileSync(file), file);
  assert.equal(t.shape, [3, 9]);
  const te = (await model.encodeTexts(prompts)).emb;
  const want = Array.from({ length: 27 }, (_, k) => dot(te, Math.floor(k / 9), photoEmb, k % 9));
  assertClose(t.data as Float32Array, want, 1e-5, 0, 'text x photo scores');
  const aps: number[] = [], p3: number[] = [];
  for (let c = 0; c < 3; c++) {
    const rel: number[] = ranking(te, c, photoEmb, 9).map(([j]) => (labelsIm[j] === c ? 1 : 0));
    aps.push(apIndependent(rel));
    p3.push(rel.slice(0, 3).reduce((a, b) => a + b, 0) / 3); // P@100 with 3 relevant photos: the top 3
    const pc = r.per_class[c];
    assert.is(pc.class, classes[c]);
    assert.is(pc.n_photos, 3);
    assert.ok(Math.abs(pc.ap_all - aps[c]!) < 1e-6 && Math.abs(pc.ap_200 - aps[c]!) < 1e-6, `${classes[c]} AP ${pc.ap_all} vs ${aps[c]}`);
    assert.ok(Math.abs(pc.p_100 - p3[c]!) < 1e-6 && Math.abs(pc.p_200 - p3[c]!) < 1e-6, `${classes[c]} P ${pc.p_100} vs ${p3[c]}`);
  }
  const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
  assert.ok(Math.abs(r.map_all - mean(aps)) < 1e-6, `mAP ${r.map_all} vs ${mean(aps)}`);
  assert.ok(Math.abs(r.precision_100 - mean(p3)) < 1e-6);
});

test('eval --mode sketch+text and rn: composed scores and relation scores as computed here', async () => {
  const te = (await model.encodeTexts(prompts)).emb;
  const file = join(tmp, 'scores-st.npy');
  const r = json(['eval', '--data', data, '--weights', WC, '--mode', 'sketch+text', '--text-weight', '0.25', '--json', '--dump-scores', file]);
  assert.is(r.text_weight, 0.25);
  assert.is(r.n_queries, 6);
  const want: number[] = [];
  for (let s = 0; s < 6; s++) {
    const c = compose(sketchEmb, s, te, labelsSk[s]!, 0.25);
    for (let j = 0; j < 9; j++) want.push(dot(c, 0, photoEmb, j));
  }
  assertClose(readNpy(readFileSync(file), file).data as Float32Array, want, 1e-5, 0, 'sketch+text scores');
  const fileRn = join(tmp, 'scores-rn.npy');
  const rn = json(['eval', '--data', data, '--weights', WC, '--mode', 'rn', '--json', '--dump-scores', fileRn]);
  assert.is(rn.rn_pairs, 54);
  const pairs = new Uint32Array(2 * 54);
  for (let s = 0; s < 6; s++) for (let j = 0; j < 9; j++) pairs.set([s, j], 2 * (s * 9 + j));
  assertClose(readNpy(readFileSync(fileRn), fileRn).data as Float32Array, await model.relation(sketchTok, 6, photoTok, 9, pairs), 1e-5, 0, 'rn scores');
});

test('eval --mode text+rn: each class text\'s cosine top K re-ranked by textRelation, the rest below', async () => {
  const file = join(tmp, 'scores-text-rn.npy');
  const r = json(['eval', '--data', data, '--weights', WC, '--mode', 'text+rn', '--rerank-k', '4', '--json', '--dump-scores', file]);
  assert.is(r.mode, 'text+rn');
  assert.is(r.rerank_k, 4);
  assert.is(r.rn_pairs, 12);
  const got = readNpy(readFileSync(file), file).data as Float32Array;
  const t = await model.encodeTexts(prompts, undefined, { tokens: true });
  for (let c = 0; c < 3; c++) {
    const order = ranking(t.emb, c, photoEmb, 9).map(([j]) => j);
    const local = await model.textRelation('photo', t.tokens![c]!, photoTok, 9, Uint32Array.from(order.slice(0, 4)));
    order.forEach((j, k) => {
      const want = k < 4 ? local[k]! : dot(t.emb, c, photoEmb, j) - 3;
      assert.ok(Math.abs(got[c * 9 + j]! - want) < 1e-5, `class ${c} photo ${j}: ${got[c * 9 + j]} vs ${want}`);
    });
  }
  assert.is(r.per_class.length, 3);
});

test('refusals: text on a ZSE index or with ZSE weights, an empty or too-long text, each model\'s index with the other\'s weights', async () => {
  const zw = await loadWeights(WZ);
  const zse = new ZseRetrieval(ZseModel.create(await gpu(), zw.config, zw.tensors));
  const zIndex = join(tmp, 'zse.sgi');
  try {
    await buildIndex({ model: zse, identity: zse.identity(weightsHash(zw.tensors)), weightsPath: WZ, input: gallery, out: zIndex });
    await zse.encodeTexts(['a cat']).then(() => assert.unreachable('ZSE encoded a text'), (e) => assert.match(e.message, /ZSE-SBIR has none/));
  } finally {
    await zse.destroy();
  }
  const caan = new CaanRetrieval(model);
  await caan.encodeTexts(['a cat', ' ']).then(() => assert.unreachable('accepted an empty text'), (e) => assert.match(e.message, /text 2 of 2 is empty/));
  const cIndex = join(tmp, 'caan.sgi');
  assertCleanError(cli(['query', '--text', 'a giraffe', '--index', zIndex]), /was built with ZSE-SBIR weights, which have none/);
  assertCleanError(cli(['eval', '--data', data, '--weights', WZ, '--mode', 'text']), /need a model with a text tower/);
  assertCleanError(cli(['query', '--text', '', '--index', cIndex]), /the text is empty/);
  assertCleanError(cli(['query', '--text', 'giraffe '.repeat(80), '--index', cIndex]), /is 82 tokens long with the start and end tokens; the model's text context holds 77/);
  assertCleanError(cli(['query', sk1, '--index', zIndex, '--weights', WC]), /built with ZSE-SBIR weights .* but .*tiny\.weights\.safetensors holds CAAN weights/);
  assertCleanError(cli(['query', sk1, '--index', cIndex, '--weights', WZ]), /built with CAAN weights .* but .*tiny64\.weights\.safetensors holds ZSE-SBIR weights/);
});

test.run();
