// The sketch-and-search page with CAAN weights (issue 8), in real Chromium (headless, WebGPU on SwiftShader, driven by
// playwright-core), checked against the Node CLI on the same inputs and the tiny CAAN fixture: the model detected from
// the weights, the sample gallery indexed by the photo tower, a sample sketch's top 10 (sketch tower, cosine), text
// queries (text tower, the CLIP tokenizer fed with the vocabulary the server serves), composed sketch+text queries
// (the CLI's --text-weight), the page's own controls (text box, weight slider, a sample sketch), "why this match"
// (CAAN's relation score against `query --rerank rn`), the messages for an empty and a too-long text, the text box
// hidden with ZSE-SBIR weights, and the browser's gallery-index cache never handing a ZSE-SBIR index to CAAN.
//
// The gallery is the sample's first SKETCHGPU_BROWSER_PERCLASS photos per class (default 2: 42 photos). Screenshots
// go to .cache/screenshots/caan-*.png.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadCaanWeights, loadWeights, nodeWeightsHash as weightsHash } from '../../src/models/load-file.ts';
import { defaultClipVocabPath } from '../../src/text/clip-vocab-node.ts';
import { REPO_ROOT } from '../paths.ts';
import { assertSameHits, browserUnavailable, cli, cliError, openSession, SAMPLE, samplePhotos, screenshot, type Hit, type Session } from './harness.ts';
// @ts-expect-error: plain JS module without types
import { startServer } from '../../web/serve.mjs';

type Server = { url: string; close(): Promise<void> };
/** The page's automation object (web/app.ts SketchgpuDemo), the parts used here. */
type Demo = {
  ready: Promise<void>;
  queryImage(url: string, k?: number, o?: { text?: string; textWeight?: number }): Promise<Hit[]>;
  queryText(text: string, k?: number): Promise<Hit[]>;
  model: { kind: string; label: string; textContext: number | null; defaultTextWeight: number } | null;
  lastResults: Hit[] | null;
  resultsVersion: number;
  lastQuery: { source: string; text?: string; textWeight?: number; generation: number } | null;
  lastExplain: { path: string; cosine: number; rn: number | null } | null;
  busy: boolean;
  indexTimings: { photos: number; ms: number; cached: boolean; family: string; weightsSha256: string } | null;
};
declare const window: { sketchgpuDemo: Demo };

const WEIGHTS_REL = 'test/fixtures/caan/tiny.weights.safetensors';
const WEIGHTS = resolve(REPO_ROOT, WEIGHTS_REL);
const ZSE_REL = 'test/fixtures/zse/tiny224.weights.safetensors';
const PER_CLASS = Number(process.env.SKETCHGPU_BROWSER_PERCLASS ?? 2);
const TOL = 1e-4;
const PAGE_QUERY = `?weights=../${WEIGHTS_REL}&perclass=${PER_CLASS}`;

const skipReason = browserUnavailable()
  ?? (existsSync(defaultClipVocabPath()) ? null : `the CLIP vocabulary ${defaultClipVocabPath()} is missing (set SKETCHGPU_CLIP_VOCAB)`);
if (skipReason) console.log(`\nCAAN browser tests SKIPPED: ${skipReason}\n`);



const hitsOf = (out: string): Hit[] => JSON.parse(out).results[0].hits.map((h: Hit) => ({ path: h.path, score: h.score }));

/** `sketchgpu query` with sketches and/or texts (--text-weight only when given). */
async function cliQuery(o: { sketch?: string; text?: string; textWeight?: number; k: number; index: string }): Promise<Hit[]> {
  const args = ['query', ...(o.sketch ? [o.sketch] : []), ...(o.text !== undefined ? ['--text', o.text] : []),
    ...(o.textWeight !== undefined ? ['--text-weight', String(o.textWeight)] : []), '--index', o.index, '-k', String(o.k), '--json'];
  return hitsOf(await cli(args));
}


const sketchOf = (cls: string) => readdirSync(join(SAMPLE, 'sketch', cls)).sort()[0]!;


const T = suite('browser CAAN');
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-web-caan-'));
let server: Server;
let main: Session;
let cliIndex = '';
let galleryPaths: string[] = [];
const notes: string[] = [];
let maxDiff = 0;
const track = (what: string, d: number) => {
  maxDiff = Math.max(maxDiff, d);
  notes.push(`${what}: max |score diff| vs CLI ${d.toExponential(2)}`);
};

/** Wait for the pad/text query that follows a change (resultsVersion past v0, nothing scheduled or running). */
async function nextResults(v0: number): Promise<Hit[]> {
  await main.page.waitForFunction((v) => window.sketchgpuDemo.resultsVersion > v && !window.sketchgpuDemo.busy, v0, { timeout: 120_000, polling: 100 });
  return main.page.evaluate(() => window.sketchgpuDemo.lastResults!);
}
const version = () => main.page.evaluate(() => window.sketchgpuDemo.resultsVersion);

const NAMES = ['page loads with CAAN', 'sketch vs CLI', 'text vs CLI', 'sketch+text vs CLI', 'text box and slider vs CLI',
  'why this match', 'text messages', 'device loss', 'ZSE-SBIR: no text box; index cache keyed by the weights'];

if (skipReason) {
  for (const name of NAMES) T.skip(name, () => undefined);
} else {
  T.before(async () => {
    server = await startServer({ port: 0 });
    const photos = join(tmp, 'photo');
    galleryPaths = samplePhotos(photos, PER_CLASS);
    cliIndex = join(tmp, 'sample-caan.sgi');
    await cli(['index', photos, '-o', cliIndex, '--weights', WEIGHTS, '--json']);
    main = await openSession();
  });

  T.after(async () => {
    await main?.close();
    await server?.close();
    console.log(`\n${notes.map((t) => `  ${t}`).join('\n')}\n  overall max |score diff| vs CLI: ${maxDiff.toExponential(2)}\n`);
  });

  T(NAMES[0]!, async () => {
    const { page } = main;
    const t0 = Date.now();
    await page.goto(server.url + PAGE_QUERY);
    await page.evaluate(() => window.sketchgpuDemo.ready);
    const ix = (await page.evaluate(() => window.sketchgpuDemo.indexTimings))!;
    notes.push(`page load to ready (CAAN tiny, ${ix.photos} photos through the photo tower on SwiftShader): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.is(ix.photos, galleryPaths.length);
    assert.is(ix.family, 'caan', 'the gallery index records the CAAN family');
    const w = await loadCaanWeights(WEIGHTS);
    assert.is(ix.weightsSha256, weightsHash(w.tensors), 'the index records the weights\' hash (Node\'s weightsHash)');
    const m = (await page.evaluate(() => window.sketchgpuDemo.model))!;
    assert.equal(m, { kind: 'caan', label: 'CAAN', textContext: 77, defaultTextWeight: 0.5 });
    assert.match(await page.textContent('#model') ?? '', /Model: CAAN/);
    assert.match(await page.textContent('#weights-info') ?? '', /tiny\.weights\.safetensors .*CAAN: image towers width 32, depth 2, 112 px; text tower width 16, depth 2, context 77; embed 32/);
    assert.ok(await page.isVisible('#text-query'), 'the text box shows for a model with a text tower');
    assert.ok(await page.isVisible('#text-weight'));
    assert.is(await page.inputValue('#text-weight'), '0.5');
    assert.match(await page.textContent('#note') ?? '', /random test weights/);
    assert.equal(main.errors, [], `console errors: ${main.errors.join('\n')}`);
  });

  T(NAMES[1]!, async () => {
    for (const cls of ['giraffe', 'scissors']) {
      const f = sketchOf(cls);
      const hits: Hit[] = await main.page.evaluate((u) => window.sketchgpuDemo.queryImage(u, 10), `sample/sketch/${cls}/${f}`);
      const ref = await cliQuery({ sketch: join(SAMPLE, 'sketch', cls, f), k: 10, index: cliIndex });
      track(`sketch ${cls} (top 10)`, assertSameHits(hits, ref, `sketch ${cls}`));
    }
  });

  T(NAMES[2]!, async () => {
    for (const text of ['a giraffe', 'a photo of a pair of scissors', 'Windmill &amp; a TREE!']) {
      const hits: Hit[] = await main.page.evaluate((t) => window.sketchgpuDemo.queryText(t, 10), text);
      const ref = await cliQuery({ text, k: 10, index: cliIndex });
      track(`text ${JSON.stringify(text)} (top 10)`, assertSameHits(hits, ref, `text ${text}`));
    }
  });

  T(NAMES[3]!, async () => {
    for (const [cls, text, w] of [['giraffe', 'a giraffe', undefined], ['cow', 'a windmill', 0.3], ['pear', 'a pear', 1]] as const) {
      const f = sketchOf(cls);
      const hits: Hit[] = await main.page.evaluate(([u, t, tw]) => window.sketchgpuDemo.queryImage(u as string, 10, { text: t as string, textWeight: tw as number | undefined }),
        [`sample/sketch/${cls}/${f}`, text, w] as const);
      const ref = await cliQuery({ sketch: join(SAMPLE, 'sketch', cls, f), text, textWeight: w, k: 10, index: cliIndex });
      track(`sketch ${cls} + ${JSON.stringify(text)}, weight ${w ?? '0.5 (default)'}`, assertSameHits(hits, ref, `sketch ${cls} + ${text}`));
    }
    // Weight 1 is the text alone.
    const textOnly: Hit[] = await main.page.evaluate(() => window.sketchgpuDemo.queryText('a pear', 10));
    const w1: Hit[] = await main.page.evaluate((u) => window.sketchgpuDemo.queryImage(u, 10, { text: 'a pear', textWeight: 1 }), `sample/sketch/pear/${sketchOf('pear')}`);
    assertSameHits(w1, textOnly, 'text weight 1 vs the text alone');
  });

  T(NAMES[4]!, async () => {
    const { page } = main;
    // A typed text with an empty pad: a text query.
    let v0 = await version();
    await page.fill('#text-query', 'a giraffe');
    let hits = await nextResults(v0);
    assert.is(await page.evaluate(() => window.sketchgpuDemo.lastQuery!.source), 'text');
    track('text box "a giraffe" (top 12)', assertSameHits(hits, await cliQuery({ text: 'a giraffe', k: hits.length, index: cliIndex }), 'text box'));
    assert.match(await page.textContent('#query-info') ?? '', /text "a giraffe": cosine with the text tower's embedding/);
    assert.match(await page.textContent('#text-tokens') ?? '', /^4 \/ 77 tokens$/);
    // A sample sketch with the text: composed with the default weight.
    const f = sketchOf('giraffe');
    v0 = await version();
    await page.click('#samples button[data-sketch^="giraffe/"]');
    hits = await nextResults(v0);
    const q = (await page.evaluate(() => window.sketchgpuDemo.lastQuery))!;
    assert.is(q.source, f);
    assert.is(q.text, 'a giraffe');
    assert.is(q.textWeight, 0.5);
    const sketch = join(SAMPLE, 'sketch', 'giraffe', f);
    track('sample sketch + text box, slider 0.5 (top 12)', assertSameHits(hits, await cliQuery({ sketch, text: 'a giraffe', k: hits.length, index: cliIndex }), 'composed, default weight'));
    assert.match(await page.textContent('#query-info') ?? '', /sketch \+ text "a giraffe", text weight 0\.50/);
    // The slider.
    v0 = await version();
    await page.locator('#text-weight').evaluate((e) => {
      (e as HTMLInputElement).value = '0.25';
      e.dispatchEvent(new Event('input', { bubbles: true }));
    });
    hits = await nextResults(v0);
    assert.is(await page.evaluate(() => window.sketchgpuDemo.lastQuery!.textWeight), 0.25);
    assert.is(await page.textContent('#text-weight-value'), '0.25');
    track('sample sketch + text box, slider 0.25 (top 12)', assertSameHits(hits, await cliQuery({ sketch, text: 'a giraffe', textWeight: 0.25, k: hits.length, index: cliIndex }), 'composed, weight 0.25'));
    assert.is(await page.locator('#results li').count(), hits.length);
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('#results img')).every((i) => i.complete));
    await screenshot(page, 'caan-1-sketch-and-text');
    // Emptying the box: the drawing alone.
    v0 = await version();
    await page.fill('#text-query', '');
    hits = await nextResults(v0);
    assert.is(await page.evaluate(() => window.sketchgpuDemo.lastQuery!.text), undefined);
    track('sample sketch after the text is cleared (top 12)', assertSameHits(hits, await cliQuery({ sketch, k: hits.length, index: cliIndex }), 'sketch alone'));
  });

  T(NAMES[5]!, async () => {
    const { page } = main;
    const first = (await page.evaluate(() => window.sketchgpuDemo.lastResults!))[0]!;
    await page.evaluate(() => (window.sketchgpuDemo.lastExplain = null));
    await page.click('#results li >> nth=0');
    await page.waitForFunction(() => window.sketchgpuDemo.lastExplain !== null, null, { timeout: 120_000 });
    const ex = (await page.evaluate(() => window.sketchgpuDemo.lastExplain))!;
    assert.is(ex.path, first.path);
    assert.ok(ex.rn !== null && ex.rn > 0 && ex.rn < 1, `a relation score in (0, 1): ${ex.rn}`);
    // The CLI's relation re-rank of the same sketch, every photo shortlisted: the same pair's score.
    const sketch = join(SAMPLE, 'sketch', 'giraffe', sketchOf('giraffe'));
    const out = JSON.parse(await cli(['query', sketch, '--index', cliIndex, '--rerank', 'rn', '--rerank-k', String(galleryPaths.length), '-k', String(galleryPaths.length), '--json']));
    const ref = out.results[0].hits.find((h: { path: string }) => h.path === ex.path) as { rn: number; cosine: number };
    const d = Math.abs(ex.rn! - ref.rn);
    track(`why this match: relation score of ${ex.path} vs query --rerank rn`, d);
    assert.ok(d <= TOL, `relation score ${ex.rn} vs CLI ${ref.rn}`);
    assert.ok(Math.abs(ex.cosine - ref.cosine) <= TOL, `cosine ${ex.cosine} vs CLI ${ref.cosine}`);
    const scores = await page.textContent('#explain-scores') ?? '';
    assert.ok(/^cosine -?\d\.\d{6} · CAAN relation score 0\.\d{6} \(/.test(scores), scores);
    assert.is(await page.locator('#explain-slot canvas').count(), 0, 'no ZSE-SBIR correspondence views for CAAN');
    assert.match(await page.textContent('#explain-slot') ?? '', /drawn for ZSE-SBIR weights only/);
    await page.waitForTimeout(200);
    await screenshot(page, 'caan-2-why-this-match');
    await page.click('#explain-close');
  });

  T(NAMES[6]!, async () => {
    const { page } = main;
    await page.click('#clear');
    await page.waitForFunction(() => !window.sketchgpuDemo.busy && document.querySelectorAll('#results li').length === 0, null, { timeout: 30_000 });
    // Search with an empty box.
    await page.fill('#text-query', '   ');
    await page.click('#text-search');
    await page.waitForSelector('#text-message:not([hidden])');
    assert.match(await page.textContent('#text-message') ?? '', /The text is empty: type what to find/);
    assert.is(await page.locator('#results li').count(), 0);
    const empty: string = await page.evaluate(() => window.sketchgpuDemo.queryText('').then(() => 'resolved', (e) => String(e.message)));
    assert.match(empty, /The text is empty/);
    // Longer than the context: the token count (with SOT and EOT) and the limit, the count the CLI reports.
    const long = Array.from({ length: 80 }, (_, i) => `giraffe${i % 2 ? '' : 's'}`).join(' ');
    const cliMsg = await cliError(['query', '--text', long, '--index', cliIndex]);
    const n = Number(/is (\d+) tokens long/.exec(cliMsg)?.[1]);
    assert.ok(n > 77, `the CLI's message gives the count: ${cliMsg}`);
    await page.fill('#text-query', long);
    await page.waitForFunction(() => /tokens long/.test(document.getElementById('text-message')!.textContent ?? ''), null, { timeout: 30_000 });
    const msg = await page.textContent('#text-message') ?? '';
    assert.ok(msg.includes(`The text is ${n} tokens long (with the start and end tokens); the model's text context holds 77. Shorten it by ${n - 77} tokens.`), msg);
    assert.match(await page.textContent('#text-tokens') ?? '', new RegExp(`^${n} / 77 tokens$`));
    assert.ok(await page.locator('#text-tokens.over').count() === 1);
    assert.is(await page.locator('#results li').count(), 0);
    const tooLong: string = await page.evaluate((t) => window.sketchgpuDemo.queryText(t).then(() => 'resolved', (e) => String(e.message)), long);
    assert.match(tooLong, new RegExp(`is ${n} tokens long`));
    await screenshot(page, 'caan-3-too-long');
    await page.fill('#text-query', '');
    assert.equal(main.errors, [], `console errors: ${main.errors.join('\n')}`);
  });

  T(NAMES[7]!, async () => {
    // A lost device: CAAN's towers and the gallery are uploaded again, the tokenizer is kept.
    const { page } = main;
    const url = `sample/sketch/cow/${sketchOf('cow')}`;
    const before: [Hit[], Hit[]] = await page.evaluate((u) => Promise.all([window.sketchgpuDemo.queryText('a cow', 10), window.sketchgpuDemo.queryImage(u, 10, { text: 'a cow' })]), url);
    await page.evaluate(() => (window as unknown as { sketchgpuDemo: { loseDevice(): Promise<void> } }).sketchgpuDemo.loseDevice());
    const after: [Hit[], Hit[]] = await page.evaluate((u) => Promise.all([window.sketchgpuDemo.queryText('a cow', 10), window.sketchgpuDemo.queryImage(u, 10, { text: 'a cow' })]), url);
    assert.equal(after, before, 'the same results on the recreated device');
    assert.match(await page.textContent('#banner') ?? '', /Recovered/);
  });

  T(NAMES[8]!, async () => {
    const { page } = main;
    // ZSE-SBIR weights in the same profile (the same Cache Storage): no text box, no text queries.
    await page.goto(`${server.url}?weights=../${ZSE_REL}&perclass=1`);
    await page.evaluate(() => window.sketchgpuDemo.ready);
    const zix = (await page.evaluate(() => window.sketchgpuDemo.indexTimings))!;
    assert.is(zix.family, 'zse-sbir');
    assert.not.ok(zix.cached);
    assert.not.ok(await page.isVisible('#text-panel'), 'no text box for ZSE-SBIR');
    assert.not.ok(await page.isVisible('#text-query'));
    assert.match(await page.textContent('#model') ?? '', /Model: ZSE-SBIR/);
    assert.is((await page.evaluate(() => window.sketchgpuDemo.model))!.textContext, null);
    const refused: string = await page.evaluate(() => window.sketchgpuDemo.queryText('a giraffe').then(() => 'resolved', (e) => String(e.message)));
    assert.match(refused, /ZSE-SBIR has no text tower/);
    assert.match(await page.textContent('#tag') ?? '', /\(ZSE-SBIR\)/);
    await screenshot(page, 'caan-4-zse-no-text-box');
    // Plant the ZSE-SBIR index the page just cached under the key CAAN's index of the same gallery would have: the
    // CAAN page must not use it (the hash and family in the index are checked), and indexes with the photo tower.
    const zseSha = weightsHash((await loadWeights(resolve(REPO_ROOT, ZSE_REL))).tensors);
    const caanSha = weightsHash((await loadCaanWeights(WEIGHTS)).tensors);
    const planted: number = await page.evaluate(async ([z, c]) => {
      const cache = await caches.open('sketchgpu-index-v1');
      let n = 0;
      for (const req of await cache.keys()) {
        if (!req.url.includes(`/zse-sbir/${z}/`)) continue;
        await cache.put(req.url.replace(`/zse-sbir/${z}/`, `/caan/${c}/`), (await cache.match(req))!);
        n++;
      }
      return n;
    }, [zseSha.slice(0, 24), caanSha.slice(0, 24)]);
    assert.is(planted, 1, 'the ZSE-SBIR page cached its index');
    await page.goto(`${server.url}?weights=../${WEIGHTS_REL}&perclass=1`);
    await page.evaluate(() => window.sketchgpuDemo.ready);
    const cix = (await page.evaluate(() => window.sketchgpuDemo.indexTimings))!;
    assert.is(cix.family, 'caan');
    assert.is(cix.weightsSha256, caanSha);
    assert.not.ok(cix.cached, 'the planted ZSE-SBIR index was not used');
    assert.ok(await page.isVisible('#text-query'));
    // Its own index is cached and used on the next load.
    await page.reload();
    await page.evaluate(() => window.sketchgpuDemo.ready);
    const again = (await page.evaluate(() => window.sketchgpuDemo.indexTimings))!;
    assert.ok(again.cached, 'CAAN\'s own index comes from the cache');
    assert.is(again.family, 'caan');
    const f = sketchOf('cow');
    const hits: Hit[] = await page.evaluate((u) => window.sketchgpuDemo.queryImage(u, 10), `sample/sketch/cow/${f}`);
    const onePer = join(tmp, 'one-per-class');
    samplePhotos(onePer, 1);
    const idx = join(tmp, 'one-caan.sgi');
    await cli(['index', onePer, '-o', idx, '--weights', WEIGHTS, '--json']);
    track('cached CAAN index (1 per class), sketch cow (top 10)', assertSameHits(hits, await cliQuery({ sketch: join(SAMPLE, 'sketch', 'cow', f), k: 10, index: idx }), 'cached index'));
    assert.equal(main.errors, [], `console errors: ${main.errors.join('\n')}`);
  });
}

T.run();
