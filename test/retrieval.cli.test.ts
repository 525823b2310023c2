// Retrieval end to end through the real CLI and the library, on the tiny64 test model and a small synthetic
// gallery: index (skips, resume, refusals), query (GPU top-k against a host ranking, RN re-rank against `score`),
// eval (metrics recomputed from the dumped scores) and the bad inputs of issue 3.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readNpy } from '../src/io/npy.ts';
import { loadWeights, nodeWeightsHash as weightsHash } from '../src/models/load-file.ts';
import { ZseModel } from '../src/models/zse/model.ts';
import { parseIndex } from '../src/retrieval/index-format.ts';
import { buildIndex } from '../src/retrieval/indexer.ts';
import { evaluateScores, rankRow } from '../src/retrieval/metrics.ts';
import { RERANK_OFFSET } from '../src/retrieval/eval.ts';
import { FIXTURES, REPO_ROOT } from './paths.ts';
import { assertCleanError, cli, json, png, smallGallery } from './cli-util.ts';
import { assertClose, gpu, rand } from './util.ts';

const W64 = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
const W224 = resolve(FIXTURES, 'zse', 'tiny224.weights.safetensors');
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-retrieval-'));

// Gallery: 3 classes x 3 photos in class folders, plus one corrupt JPEG.
const { gallery, classes } = smallGallery(join(tmp, 'gallery'));
const sk1 = join(tmp, 'sk1.png');
const sk2 = join(tmp, 'sk2.png');
png(sk1, 90, 80, 7, 'sketch');
png(sk2, 64, 100, 8, 'sketch');
const photoFiles = classes.flatMap((c) => [0, 1, 2].map((k) => join(gallery, c, `p${k}.png`)));

test('index: embeds every readable photo in sorted path order, skips the corrupt one with a warning', () => {
  const out = join(tmp, 'g.sgi');
  const r = cli(['index', gallery, '-o', out, '--weights', W64, '--json']);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /warning: skipped boat\/broken\.jpg/);
  const s = JSON.parse(r.out);
  assert.is(s.complete, true);
  assert.is(s.photos, 10);
  assert.is(s.skipped, 1);
  const ix = parseIndex(readFileSync(out), out);
  assert.equal(ix.paths, classes.flatMap((c) => [0, 1, 2].map((k) => `${c}/p${k}.png`)));
  assert.equal(ix.skipped.map((x) => x[0]), ['boat/broken.jpg']);
  const e = json(['embed', '--weights', W64, '--modality', 'photo', '--json', ...photoFiles]).embeddings as number[][];
  assertClose(ix.embeddings, e.flat(), 1e-6, 0, 'index embeddings vs embed');
  assert.not.ok(existsSync(`${out}.partial`), 'journal removed');
});

test('index and query --precision f16: the f16 option\'s embeddings (as embed gives them), close to f32', () => {
  const out = join(tmp, 'g16.sgi');
  const s = json(['index', gallery, '-o', out, '--weights', W64, '--precision', 'f16', '--json']);
  assert.is(s.precision, 'f16');
  const ix = parseIndex(readFileSync(out), out), ix32 = parseIndex(readFileSync(join(tmp, 'g.sgi')), 'g.sgi');
  const e = json(['embed', '--weights', W64, '--modality', 'photo', '--precision', 'f16', '--json', ...photoFiles]).embeddings as number[][];
  assertClose(ix.embeddings, e.flat(), 1e-6, 0, 'f16 index embeddings vs embed --precision f16');
  const d = Math.max(...Array.from(ix.embeddings, (v, i) => Math.abs(v - ix32.embeddings[i]!)));
  assert.ok(d > 0 && d < 1e-2, `f16 vs f32 index embeddings differ by ${d}`);
  const q16 = json(['query', sk1, '--index', out, '--precision', 'f16', '-k', '3', '--json']);
  const q32 = json(['query', sk1, '--index', join(tmp, 'g.sgi'), '-k', '3', '--json']);
  assertClose(q16.results[0].hits.map((h: { score: number }) => h.score), q32.results[0].hits.map((h: { score: number }) => h.score), 1e-2, 0, 'scores');
});

test('query: GPU top-k equals the host ranking of the cosines; --html writes a sheet', () => {
  const out = join(tmp, 'g.sgi');
  const q = json(['query', sk1, sk2, '--index', out, '-k', '4', '--json', '--html', join(tmp, 'sheet.html')]);
  const e = json(['score', '--weights', W64, '--mode', 'ret', '--json', '--sketch', sk1, sk2, '--photo', ...photoFiles]).scores as number[][];
  q.results.forEach((res: { hits: { path: string; score: number }[] }, s: number) => {
    const want = Array.from(rankRow(e[s]!)).slice(0, 4);
    assert.equal(res.hits.map((h) => h.path), want.map((j) => photoFiles[j]!.slice(gallery.length + 1)));
    assertClose(res.hits.map((h) => h.score), want.map((j) => e[s]![j]!), 1e-5, 0, 'cosines');
  });
  const html = readFileSync(join(tmp, 'sheet.html'), 'utf8');
  assert.is((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 2 + 8, 'two sketches and eight results inlined');
});

test('query --rerank rn: RN scores equal `score --mode rn`, sorted; same with cached tokens', () => {
  const rn = json(['score', '--weights', W64, '--mode', 'rn', '--json', '--sketch', sk1, sk2, '--photo', ...photoFiles]).scores as number[][];
  const cached = join(tmp, 'g-cache.sgi');
  json(['index', gallery, '-o', cached, '--weights', W64, '--rn-cache', '--json']);
  for (const index of [join(tmp, 'g.sgi'), cached]) {
    const q = json(['query', sk1, sk2, '--index', index, '-k', '3', '--rerank', 'rn', '--rerank-k', '6', '--json']);
    assert.is(q.rerank_tokens, index === cached ? 'index cache' : 'recomputed from the photo files');
    q.results.forEach((res: { hits: { path: string; score: number; rn: number }[] }, s: number) => {
      assert.is(res.hits.length, 3);
      for (const h of res.hits) {
        const j = photoFiles.findIndex((f) => f.endsWith(h.path));
        assert.ok(Math.abs(h.rn - rn[s]![j]!) < 1e-5, `${h.path}: rn ${h.rn} vs score ${rn[s]![j]}`);
        assert.is(h.score, h.rn);
      }
      for (let i = 1; i < res.hits.length; i++) assert.ok(res.hits[i - 1]!.score >= res.hits[i]!.score, 'sorted by RN');
    });
  }
});

test('index resumes after an interruption, keeping finished batches (and a torn journal tail)', async () => {
  const w = await loadWeights(W64);
  const model = ZseModel.create(await gpu(), w.config, w.tensors);
  const identity = { family: 'zse-sbir' as const, weights_sha256: weightsHash(w.tensors), config: w.config };
  const out = join(tmp, 'resume.sgi');
  const base = { model, identity, weightsPath: W64, input: gallery, out, batch: 2 };
  let batches = 0;
  const first = await buildIndex({ ...base, shouldStop: () => ++batches >= 2 });
  assert.is(first.complete, false);
  assert.ok(existsSync(`${out}.partial`));
  assert.not.ok(existsSync(out));
  appendFileSync(`${out}.partial`, Buffer.from([0x53, 0x47, 0x49, 0x4a, 9, 9])); // a torn record
  const second = await buildIndex(base);
  assert.is(second.complete, true);
  assert.is(second.resumed, first.embedded);
  assert.is(second.resumed + second.embedded, 9);
  const full = parseIndex(readFileSync(out), out);
  const ref = parseIndex(readFileSync(join(tmp, 'g.sgi')), 'g.sgi');
  assert.equal(full.paths, ref.paths);
  assertClose(full.embeddings, ref.embeddings, 1e-7, 0, 'resumed index = one-shot index');
  await model.destroy();
});

test('bad inputs: empty gallery, existing index, an index from other weights, a file that is not an index', () => {
  mkdirSync(join(tmp, 'empty'), { recursive: true });
  assertCleanError(cli(['index', join(tmp, 'empty'), '-o', join(tmp, 'e.sgi'), '--weights', W64]), /no images in/);
  assertCleanError(cli(['index', gallery, '-o', join(tmp, 'g.sgi'), '--weights', W64]), /already exists/);
  const other = cli(['query', sk1, '--index', join(tmp, 'g.sgi'), '--weights', W224]);
  assertCleanError(other, /built with other weights/);
  assertCleanError(cli(['query', sk1, '--index', W64]), /not a sketchgpu gallery index/);
  assertCleanError(cli(['query', sk1, '--index', join(tmp, 'nope.sgi')]), /cannot read the index/);
});

test('eval: metrics match the dumped scores; rn and ret+rn modes are consistent with `score`', () => {
  const data = join(tmp, 'data');
  classes.forEach((c, ci) => {
    mkdirSync(join(data, 'photo', c), { recursive: true });
    mkdirSync(join(data, 'sketch', c), { recursive: true });
    for (let k = 0; k < 3; k++) png(join(data, 'photo', c, `p${k}.png`), 70, 60, 1000 + 10 * ci + k, 'photo');
    for (let k = 0; k < 2; k++) png(join(data, 'sketch', c, `s${k}.png`), 80, 80, 50 + 10 * ci + k, 'sketch');
  });
  const labelsSk = [0, 0, 1, 1, 2, 2], labelsIm = [0, 0, 0, 1, 1, 1, 2, 2, 2];
  const dumps: Record<string, Float32Array> = {};
  for (const mode of ['ret', 'rn', 'ret+rn']) {
    const file = join(tmp, `scores-${mode}.npy`);
    const r = json(['eval', '--data', data, '--weights', W64, '--mode', mode, '--rerank-k', '4', '--json', '--dump-scores', file]);
    const t = readNpy(readFileSync(file), file);
    assert.equal(t.shape, [6, 9]);
    dumps[mode] = t.data as Float32Array;
    const m = evaluateScores(dumps[mode]!, labelsSk, labelsIm);
    for (const k of ['map_all', 'map_200', 'precision_100', 'precision_200'] as const) assert.ok(Math.abs(r[k] - m[k]) < 1e-6, `${mode} ${k}`);
    assert.is(r.n_sketches, 6);
    assert.is(r.rn_pairs, mode === 'ret' ? 0 : mode === 'rn' ? 54 : 24);
  }
  const skFiles = classes.flatMap((c) => [0, 1].map((k) => join(data, 'sketch', c, `s${k}.png`)));
  const imFiles = classes.flatMap((c) => [0, 1, 2].map((k) => join(data, 'photo', c, `p${k}.png`)));
  const rn = (json(['score', '--weights', W64, '--mode', 'rn', '--json', '--sketch', ...skFiles, '--photo', ...imFiles]).scores as number[][]).flat();
  assertClose(dumps.rn!, rn, 1e-5, 0, 'rn mode = score --mode rn');
  // ret+rn: each sketch's cosine top 4 carry RN scores, the rest cosine - offset.
  for (let s = 0; s < 6; s++) {
    const top = new Set(Array.from(rankRow(dumps.ret!.subarray(s * 9, s * 9 + 9))).slice(0, 4));
    for (let j = 0; j < 9; j++) {
      const got = dumps['ret+rn']![s * 9 + j]!;
      const want = top.has(j) ? rn[s * 9 + j]! : dumps.ret![s * 9 + j]! - RERANK_OFFSET;
      assert.ok(Math.abs(got - want) < 1e-5, `ret+rn [${s},${j}] ${got} vs ${want}`);
    }
  }
});

test.run();
