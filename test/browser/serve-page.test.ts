// The page of `sketchgpu serve` (src/server/page.ts) in real Chromium, without WebGPU (the server does the GPU work):
// a sketch drawn with the mouse, the same with the RN re-rank, and an opened sketch file give, in the page, the
// ranking and scores the CLI gives for the exact bytes the page sent (read from the request); the photos load; "why?"
// shows the explanation sheet; the
// Content-Security-Policy lets the page's own script run (no console errors) and nothing else. The shipped weights
// and the sample gallery, so the screenshot (.cache/screenshots/serve-page-giraffe.png) shows what a user sees.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SketchGPU, bundledWeights } from '../../src/api/node.ts';
import { parseIndex } from '../../src/retrieval/index-format.ts';
import { SearchService } from '../../src/server/service.ts';
import { startSearchServer, type RunningServer } from '../../src/server/http.ts';
import { assertSameHits, browserUnavailable, cli, openSession, SAMPLE, screenshot, type Hit, type Session } from './harness.ts';

const T = suite('serve page');
const skipReason = browserUnavailable();
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-serve-page-'));
const sgi = join(tmp, 'sample.sgi');
const weights = bundledWeights('zse');
let srv: RunningServer;
let s: Session;

async function pageHits(n: number): Promise<Hit[]> {
  await s.page.waitForSelector(`body[data-searches="${n}"]`, { timeout: 120_000 });
  return s.page.$$eval('#hits li', (lis) => lis.map((li) => ({ path: (li as HTMLElement).dataset.id!, score: Number((li as HTMLElement).dataset.score) })));
}

async function cliHits(png: string, extra: string[] = []): Promise<Hit[]> {
  const out = JSON.parse(await cli(['query', png, '--index', sgi, '-k', '10', '--json', ...extra]));
  return out.results[0].hits.map((h: Hit) => ({ path: h.path, score: h.score }));
}

/** Every POST /search body the page sent, in order. */
const sent: Buffer[] = [];
/** The n-th body (1-based) as a file for the CLI. */
function sentFile(n: number, name: string): string {
  assert.ok(sent.length >= n, `the page sent ${sent.length} searches, not ${n}`);
  const file = join(tmp, name);
  writeFileSync(file, sent[n - 1]!);
  return file;
}

if (skipReason) {
  for (const name of ['page loads', 'mouse drawing vs CLI', 're-rank vs CLI', 'opened sketch vs CLI', 'token']) T.skip(name, () => undefined);
} else {
  T.before(async () => {
    await cli(['index', join(SAMPLE, 'photo'), '-o', sgi, '--weights', weights, '--rn-cache']);
    const service = new SearchService({ model: await SketchGPU.load({ weights }), index: parseIndex(readFileSync(sgi), sgi) });
    srv = await startSearchServer(service, { port: 0 });
    s = await openSession({ webgpu: false });
    s.page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/search') sent.push(r.postDataBuffer()!);
    });
  });
  T.after(async () => {
    await s?.close();
    await srv?.close();
  });

  T('page loads: the gallery and the model named, no WebGPU needed, nothing refused by its CSP', async () => {
    await s.page.goto(`${srv.url}/`);
    await s.page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
    const info = await s.page.textContent('#info');
    assert.match(info!, /84 photos · ZSE-SBIR weights/);
    assert.ok(await s.page.isVisible('#rerank'), 'the re-rank box (these weights have the relation head)');
    assert.not.ok(await s.page.isVisible('#text'), 'no text box (no text tower)');
    assert.equal(s.errors, [], s.log.join('\n'));
  });

  T('mouse drawing vs CLI: the page shows what `query` gives for the PNG it sent', async () => {
    const box = (await s.page.locator('#pad').boundingBox())!;
    // A long neck and a body: something giraffe-like, in three strokes; each stroke's end searches (waited for
    // here, so no search is superseded by the next: the page drops an answer that a newer search has overtaken).
    const strokes = [[[0.45, 0.15], [0.5, 0.2], [0.52, 0.55]], [[0.3, 0.55], [0.75, 0.55], [0.78, 0.7], [0.3, 0.7], [0.3, 0.55]], [[0.35, 0.7], [0.35, 0.9]]];
    for (const st of strokes) {
      await s.page.mouse.move(box.x + st[0]![0]! * box.width, box.y + st[0]![1]! * box.height);
      await s.page.mouse.down();
      for (const [x, y] of st.slice(1)) await s.page.mouse.move(box.x + x! * box.width, box.y + y! * box.height, { steps: 5 });
      await s.page.mouse.up();
      await pageHits(strokes.indexOf(st) + 1);
    }
    const hits = await pageHits(3);
    const file = sentFile(3, 'drawn.png');
    assert.is(readFileSync(file).subarray(1, 4).toString('latin1'), 'PNG');
    assertSameHits(hits, await cliHits(file), 'drawn sketch', 1e-5);
  });

  T('re-rank vs CLI: the RN ranking of the same drawing', async () => {
    await s.page.check('#rerank');
    const hits = await pageHits(4);
    const file = sentFile(4, 'drawn-rn.png');
    assert.equal(new Uint8Array(readFileSync(file)), new Uint8Array(sent[2]!), 'the same drawing');
    assertSameHits(hits, await cliHits(file, ['--rerank', 'rn']), 'drawn sketch, RN', 1e-5);
    await s.page.uncheck('#rerank');
    await pageHits(5);
  });

  T('opened sketch vs CLI: the file goes as it is; the photos load', async () => {
    const dir = join(SAMPLE, 'sketch', 'giraffe');
    const giraffe = join(dir, readdirSync(dir).sort()[0]!);
    await s.page.setInputFiles('#file', giraffe);
    const hits = await pageHits(6);
    const file = sentFile(6, 'opened.png');
    assert.equal(new Uint8Array(readFileSync(file)), new Uint8Array(readFileSync(giraffe)), 'the page sent the file itself');
    assertSameHits(hits, await cliHits(giraffe), 'opened sketch', 1e-5);
    await s.page.waitForFunction(() => Array.from(document.querySelectorAll('#hits img')).every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0), undefined, { timeout: 30_000 });
    assert.match((await s.page.textContent('#status'))!, /^10 results, \d+ ms on the server/);
    const shot = await screenshot(s.page, 'serve-page-giraffe');
    console.log(`  screenshot: ${shot}`);
    // "why?" on the giraffe photo (or the first hit): the explanation sheet in a dialog.
    const target = hits.find((h) => h.path.startsWith('giraffe/')) ?? hits[0]!;
    await s.page.click(`#hits li[data-id="${target.path}"] button`);
    await s.page.waitForSelector(`body[data-explained="${target.path}"]`, { timeout: 60_000 });
    await s.page.waitForFunction(() => { const i = document.getElementById('why-img') as HTMLImageElement; return i.complete && i.naturalWidth > 0; }, undefined, { timeout: 30_000 });
    assert.match((await s.page.textContent('#why-cap'))!, /relation score \d\.\d{4}, cosine/);
    console.log(`  screenshot: ${await screenshot(s.page, 'serve-page-why')}`);
    await s.page.click('#why-close');
    assert.equal(s.errors, [], s.log.join('\n'));
  });

  T('token: opened as /#token=..., the page sends it, and its photos come through fetch', async () => {
    const token = 'page-token-0123456789abcdef';
    const service = new SearchService({ model: await SketchGPU.load({ weights }), index: parseIndex(readFileSync(sgi), sgi) });
    const guarded = await startSearchServer(service, { port: 0, token });
    const t = await openSession({ webgpu: false });
    try {
      await t.page.goto(`${guarded.url}/#token=${token}`);
      await t.page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      const dir = join(SAMPLE, 'sketch', 'giraffe');
      await t.page.setInputFiles('#file', join(dir, readdirSync(dir).sort()[0]!));
      await t.page.waitForSelector('body[data-searches="1"]', { timeout: 60_000 });
      await t.page.waitForFunction(() => Array.from(document.querySelectorAll('#hits img')).every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0 && (i as HTMLImageElement).src.startsWith('blob:')), undefined, { timeout: 30_000 });
      assert.equal(t.errors, [], t.log.join('\n'));
      // Without the fragment: the page says what is missing.
      await t.page.goto(`${guarded.url}/`);
      await t.page.waitForFunction(() => /needs a token/.test(document.getElementById('status')!.textContent!), undefined, { timeout: 30_000 });
    } finally {
      await t.close();
      await guarded.close();
    }
  });
}

T.run();
