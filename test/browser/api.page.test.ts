// What the page needs of the browser API (issue 17: the page is built on SketchGPU, no second path into the engine),
// in real Chromium on SwiftShader with the tiny CAAN fixture, against the same API in Node: the weights' progress,
// index progress and `embedded` (read and filled), modelInput reused by a composed sketch+text search (= Node's
// composed search), relationScore (= Node's re-rank score of the pair), textTokens, and a lost device: deviceLost,
// DEVICE_LOST refusals, and a model loaded again with loadIndex(saveIndex(), { photos }) ranking and re-ranking as
// before; checkImage and modelInput refusals with hints.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SketchGPU } from '../../src/index.ts';
import { defaultClipVocabPath } from '../../src/text/clip-vocab-node.ts';
import { REPO_ROOT } from '../paths.ts';
import { browserUnavailable, openSession } from './harness.ts';
// @ts-expect-error: plain JS module without types
import { startServer } from '../../web/serve.mjs';

const T = suite('browser API for the page');
const skip = browserUnavailable() ?? (existsSync(defaultClipVocabPath()) ? null : `the CLIP vocabulary ${defaultClipVocabPath()} is missing`);
const WEIGHTS_REL = 'test/fixtures/caan/tiny.weights.safetensors';
const SAMPLE = resolve(REPO_ROOT, 'web', 'sample');
const sketchRel = `web/sample/sketch/cow/${readdirSync(join(SAMPLE, 'sketch', 'cow')).sort()[0]}`;
const photoRels = ['cow', 'bat', 'pear'].flatMap((c) => readdirSync(join(SAMPLE, 'photo', c)).sort().slice(0, 2).map((f) => `web/sample/photo/${c}/${f}`));
const TEXT = 'a cow';
const WEIGHT = 0.3;

type H = { id: string; score: number; rn?: number };
type PageResult = {
  progress: [number, number][]; indexProgress: [number, number, number][]; embeddedAfter: number;
  info: { label: string; textContext: number | null; model: string; f16: boolean };
  tokens: number; composed: H[]; reranked: H[]; rn: number; rnId: string;
  loss: { reason: string; adapter: string }; afterLoss: { code: string; hint: string };
  again: H[]; againReranked: H[]; swapped: H[];
  badImage: { code: string; message: string; hint: string }; badModality: { code: string; hint: string };
};

if (skip) T.skip(`the page's API calls equal Node's (SKIPPED: ${skip})`, () => undefined);
else T('weights and index progress, modelInput + composed search, relationScore, textTokens, device loss and reload, refusals', async () => {
  const server = await startServer({ port: 0 });
  const s = await openSession();
  const node = await SketchGPU.load({ weights: resolve(REPO_ROOT, WEIGHTS_REL) });
  try {
    await s.page.goto(new URL('/dist/browser/sketchgpu.js', server.url).href); // a same-origin document to import from
    const r: PageResult = await s.page.evaluate(async ([weights, sketch, photos, text, weight]) => {
      const { SketchGPU: B, checkImage } = await import('/dist/browser/sketchgpu.js' as string);
      const progress: [number, number][] = [];
      // Methods, not arrow functions in properties: tsx would wrap those in a __name() the page does not have.
      const options = { weights: `/${weights}`, vocab: '/clip/bpe_simple_vocab_16e6.txt.gz', onWeightsProgress(a: number, b: number) { progress.push([a, b]); } };
      const m = await B.load(options);
      // Ids relative to the gallery, as the page names its photos (an index file holds relative paths only).
      const named = (photos as string[]).map((p) => ({ id: p.split('/').slice(-2).join('/'), image: `/${p}` }));
      const indexProgress: [number, number, number][] = [];
      const embedded = new Map<string, Float32Array>();
      await m.index(named, { batch: 4, embedded, onProgress(d: number, t: number, k: number) { indexProgress.push([d, t, k]); } });
      const x = await m.modelInput(`/${sketch}`, 'sketch');
      const u = { pick(hs: H[]) { return hs.map((h) => ({ id: h.id, score: h.score, ...(h.rn !== undefined ? { rn: h.rn } : {}) })); } };
      const pick = u.pick;
      const composed = pick(await m.search({ sketch: x, text, textWeight: weight }, { k: 6 }));
      const reranked = pick(await m.search(x, { k: 6, rerank: true, rerankK: 6 }));
      const rnId = composed[2]!.id;
      const rn = await m.relationScore(x, named.find((p) => p.id === rnId)!.image);
      const tokens = await m.textTokens('a giraffe');
      // A lost device: deviceLost resolves, calls refuse; the index (on the host) reopens on a model loaded again.
      const lost = m.deviceLost;
      m.loseDevice();
      const loss = await lost;
      let afterLoss = { code: 'none', hint: '' };
      try {
        await m.search(x, { k: 6 });
      } catch (e) {
        afterLoss = { code: (e as { code: string }).code, hint: (e as { hint: string }).hint };
      }
      const saved = m.saveIndex();
      await m.dispose();
      const m2 = await B.load({ ...options, onWeightsProgress: undefined });
      await m2.loadIndex(saved, 'the saved index', { photos: named });
      const again = pick(await m2.search({ sketch: x, text, textWeight: weight }, { k: 6 }));
      const againReranked = pick(await m2.search(x, { k: 6, rerank: true, rerankK: 6 }));
      // `embedded` is read: the first photo given the second one's embedding scores as the second.
      const ids = named.map((p) => p.id).sort();
      embedded.set(ids[0]!, embedded.get(ids[1]!)!);
      await m2.index(named, { embedded });
      const swapped = pick(await m2.search(x, { k: 6 }));
      let badImage = { code: '', message: '', hint: '' };
      try {
        await checkImage(new File([new TextEncoder().encode('not an image')], 'notes.png'));
      } catch (e) {
        badImage = { code: (e as { code: string }).code, message: (e as Error).message, hint: (e as { hint: string }).hint };
      }
      let badModality = { code: '', hint: '' };
      try {
        await m2.search(await m2.modelInput(`/${sketch}`, 'photo'));
      } catch (e) {
        badModality = { code: (e as { code: string }).code, hint: (e as { hint: string }).hint };
      }
      const info = { label: m2.info.label, textContext: m2.info.textContext, model: m2.info.model, f16: typeof m2.info.features.f16 === 'boolean' };
      await m2.dispose();
      return {
        progress, indexProgress, embeddedAfter: embedded.size, info, tokens, composed, reranked, rn, rnId,
        loss: { reason: loss.reason, adapter: loss.adapter }, afterLoss, again, againReranked, swapped, badImage, badModality,
      };
    }, [WEIGHTS_REL, sketchRel, photoRels, TEXT, WEIGHT] as const);

    // Progress: the weights' bytes end at the file's size; the index counts up to the 6 photos, none skipped.
    const size = statSync(resolve(REPO_ROOT, WEIGHTS_REL)).size;
    assert.equal(r.progress.at(-1), [size, size]);
    assert.ok(r.progress.every(([a], i) => i === 0 || a >= r.progress[i - 1]![0]), 'weights progress never goes back');
    assert.equal(r.indexProgress.at(-1), [6, 6, 0]);
    assert.ok(r.indexProgress.length >= 3, `index progress after each batch: ${JSON.stringify(r.indexProgress)}`);
    assert.is(r.embeddedAfter, 6, 'index fills `embedded`');
    assert.equal(r.info, { label: 'CAAN', textContext: 77, model: 'caan', f16: true });
    assert.is(r.tokens, 4);

    // Node's API on the same files: the composed search, the re-rank and the pair's relation score.
    const idOf = (p: string) => p.split('/').slice(-2).join('/');
    await node.index(photoRels.map((p) => ({ id: idOf(p), image: resolve(REPO_ROOT, p) })));
    const sketch = resolve(REPO_ROOT, sketchRel);
    const close = (got: H[], want: H[], what: string, key: 'score' | 'rn' = 'score') => {
      assert.equal(got.map((h) => h.id), want.map((h) => h.id), `${what}: ranking`);
      got.forEach((h, i) => assert.ok(Math.abs(h[key]! - want[i]![key]!) < 1e-4, `${what} rank ${i + 1}: ${h[key]} vs ${want[i]![key]}`));
    };
    const composed = await node.search({ sketch, text: TEXT, textWeight: WEIGHT }, { k: 6 });
    close(r.composed, composed, 'modelInput + composed search vs Node');
    const reranked = await node.search(sketch, { k: 6, rerank: true, rerankK: 6 });
    close(r.reranked, reranked, 're-rank vs Node', 'rn');
    const pair = reranked.find((h) => h.id === r.rnId)!;
    assert.ok(Math.abs(r.rn - pair.rn!) < 1e-4, `relationScore ${r.rn} vs Node's re-rank score ${pair.rn}`);

    // The lost device, and the model loaded again: the same rankings (the re-rank re-reads the photos it was given).
    assert.is(r.loss.reason, 'destroyed');
    assert.match(r.loss.adapter, /swiftshader/i);
    assert.is(r.afterLoss.code, 'DEVICE_LOST');
    assert.match(r.afterLoss.hint, /SketchGPU\.load/);
    assert.equal(r.again, r.composed, 'the reloaded model ranks as before the loss');
    close(r.againReranked, r.reranked, 'the reloaded model re-ranks as before', 'rn');

    // `embedded` is read: the first photo scored with the second one's embedding.
    const ids = photoRels.map(idOf).sort();
    const sw = new Map(r.swapped.map((h) => [h.id, h.score]));
    assert.is(sw.get(ids[0]!), sw.get(ids[1]!));

    assert.is(r.badImage.code, 'BAD_IMAGE');
    assert.match(r.badImage.message, /^notes\.png: not a PNG or JPEG file/);
    assert.ok(r.badImage.hint.length > 0);
    assert.is(r.badModality.code, 'BAD_ARGUMENT');
    assert.match(r.badModality.hint, /modelInput\(image, 'sketch'\)/);
    assert.equal(s.errors.filter((e) => !/status of 404/.test(e)), [], 'console errors');
  } finally {
    await node.dispose();
    await s.close();
    await server.close();
  }
});

T.run();
