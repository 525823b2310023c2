// The search server (src/server, `sketchgpu serve`, docs/server.md) on the tiny64 test model and the small synthetic
// gallery: a query over HTTP gives the ranking and scores of `sketchgpu query --json` (cosine and RN re-rank), as a
// raw image body and as JSON (base64 and data: URL); concurrent queries run in batches and each gets what it gets
// alone; every bad request is a JSON error with a hint and the right status (400, 403, 404, 405, 413, 415, 503);
// photos are served by index id only; a lost GPU device is reloaded and the service answers as before; close()
// finishes the queued queries; the CLI starts, answers and stops on SIGTERM with exit 0.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { SketchGPU } from '../src/index.ts';
import { parseIndex } from '../src/retrieval/index-format.ts';
import { MAX_TEXT_CHARS, SearchService } from '../src/server/service.ts';
import { DecodePool } from '../src/server/decode.ts';
import { isSketchError, type SketchError } from '../src/core/errors.ts';
import { searchHandler, startSearchServer, type RunningServer } from '../src/server/http.ts';
import { FIXTURES, REPO_ROOT } from './paths.ts';
import { BIN, assertCleanError, cli, json, png, smallGallery } from './cli-util.ts';

const W64 = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-serve-'));
const { gallery } = smallGallery(join(tmp, 'gallery'));
const sgi = join(tmp, 'g.sgi');
const sketches = [0, 1, 2, 3, 4, 5].map((i) => {
  const f = join(tmp, `s${i}.png`);
  png(f, 80 + 3 * i, 76 + i, 40 + i, 'sketch');
  return f;
});
const blank = join(tmp, 'blank.png');

let srv: RunningServer;
let service: SearchService;

interface Hit { rank: number; id: string; score: number; cosine: number; rn?: number; photo?: string }

async function post(url: string, body: Uint8Array | string, type: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { method: 'POST', body: body as BodyInit, headers: { 'Content-Type': type, ...headers } });
  return { status: r.status, headers: r.headers, body: await r.json() as Record<string, any> };
}

function assertRefusal(r: { status: number; body: Record<string, any> }, status: number, code: string, msg: RegExp) {
  assert.is(r.status, status, JSON.stringify(r.body));
  assert.is(r.body.error?.code, code);
  assert.match(r.body.error.message, msg);
  assert.ok(typeof r.body.error.hint === 'string' && r.body.error.hint.length > 0, 'a hint');
}

/** The hits of `sketchgpu query --json` for one sketch. */
function cliHits(sketch: string, extra: string[] = []): { path: string; score: number; cosine: number; rn?: number }[] {
  return json(['query', sketch, '--index', sgi, '--weights', W64, '--json', ...extra]).results[0].hits;
}

function assertSameHits(got: Hit[], want: { path: string; score: number; cosine: number; rn?: number }[], what: string) {
  assert.equal(got.map((h) => h.id), want.map((h) => h.path), `${what}: ranking`);
  got.forEach((h, i) => {
    // The same kernels on the same inputs; only the batch size may differ (1e-5: f32 rounding of a different GEMM tiling).
    assert.ok(Math.abs(h.score - want[i]!.score) < 1e-5, `${what}: score ${h.score} vs ${want[i]!.score}`);
    assert.ok(Math.abs(h.cosine - want[i]!.cosine) < 1e-5, `${what}: cosine`);
    if (want[i]!.rn !== undefined) assert.ok(Math.abs(h.rn! - want[i]!.rn!) < 1e-5, `${what}: rn`);
  });
}

test.before(async () => {
  const { PNG } = await import('pngjs');
  const white = new PNG({ width: 64, height: 64 });
  white.data.fill(255);
  writeFileSync(blank, PNG.sync.write(white));
  const r = cli(['index', gallery, '-o', sgi, '--weights', W64, '--rn-cache']);
  assert.is(r.code, 0, r.err);
  const m = await SketchGPU.load({ weights: W64 });
  // The main server decodes on 2 worker threads (the others on the main thread): both paths answer every test below.
  service = new SearchService({ model: m, index: parseIndex(readFileSync(sgi), sgi), maxBatch: 8, decodeThreads: 2, reload: () => SketchGPU.load({ weights: W64 }) });
  srv = await startSearchServer(service, { port: 0 });
});
test.after(async () => {
  await srv?.close();
});

test('serve: the decoding threads give modelInput\'s model inputs bit for bit, its warnings and its refusals', async () => {
  const warnings: string[] = [];
  const m = await SketchGPU.load({ weights: W64, onWarning: (w) => warnings.push(w) });
  const pool = new DecodePool(2);
  try {
    assert.ok(pool.onWorkers, 'the worker module was found');
    // Ink in the alpha channel only (RGB all black): modelInput warns about it.
    const { PNG } = await import('pngjs');
    const alpha = new PNG({ width: 40, height: 30 });
    for (let i = 0; i < 40 * 30; i++) alpha.data[4 * i + 3] = i % 7 === 0 ? 255 : 0;
    const inputs = [...sketches.map((f) => readFileSync(f)), PNG.sync.write(alpha), readFileSync(join(gallery, 'apple', 'p0.png'))];
    const got = await Promise.all(inputs.map((b) => pool.sketch(b, m.info.imageSize, 'the sketch')));
    for (let i = 0; i < inputs.length; i++) {
      const want = (await m.modelInput(inputs[i]!, 'sketch', { name: 'the sketch' })).data;
      assert.equal(new Uint8Array(got[i]!.data.buffer, got[i]!.data.byteOffset, got[i]!.data.byteLength), new Uint8Array(want.buffer, want.byteOffset, want.byteLength), `input ${i}`);
    }
    assert.is(warnings.length, 1, warnings.join('\n'));
    assert.equal(got.map((g) => g.warning).filter(Boolean), warnings);
    for (const bad of [Buffer.from('not an image'), readFileSync(blank)]) {
      let mine: unknown, theirs: unknown;
      await pool.sketch(bad, m.info.imageSize, 'the sketch').catch((e) => { mine = e; });
      await m.modelInput(bad, 'sketch', { name: 'the sketch' }).catch((e) => { theirs = e; });
      assert.ok(isSketchError(mine) && isSketchError(theirs));
      assert.is((mine as SketchError).code, (theirs as SketchError).code);
      assert.is((mine as SketchError).message, (theirs as SketchError).message);
      assert.is((mine as SketchError).hint, (theirs as SketchError).hint);
    }
  } finally {
    await pool.close();
    await m.dispose();
  }
});

test('serve: /info and /health describe the model and the gallery', async () => {
  const info = await (await fetch(`${srv.url}/info`)).json() as Record<string, any>;
  const ix = parseIndex(readFileSync(sgi), sgi);
  assert.is(info.model, 'zse-sbir');
  assert.is(info.photos, ix.paths.length);
  assert.is(info.weights_sha256, service.model.info.weightsSha256);
  assert.is(info.has_relation, true);
  assert.is(info.status, 'ready');
  const h = await fetch(`${srv.url}/health`);
  assert.is(h.status, 200);
  assert.equal(await h.json(), { ok: true, status: 'ready' });
});

test('serve: GET / is the search page, its script allowed by hash and nothing else', async () => {
  const r = await fetch(`${srv.url}/`);
  assert.is(r.status, 200);
  assert.match(r.headers.get('content-type')!, /^text\/html/);
  const csp = r.headers.get('content-security-policy')!;
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+=*'/);
  const html = await r.text();
  assert.match(html, /<canvas id="pad"/);
  const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
  const { createHash } = await import('node:crypto');
  assert.ok(csp.includes(`'sha256-${createHash('sha256').update(script).digest('base64')}'`), 'the CSP names the hash of the script the page holds');
  // The script is JavaScript that parses (a quoting slip in the template would only show in a browser otherwise).
  assert.not.throws(() => new Function(script));
  assert.is((await fetch(`${srv.url}/`, { method: 'POST' })).status, 405);
});

test('serve: a sketch as the body gives the ranking and scores of `sketchgpu query` (cosine, and RN re-rank)', async () => {
  const r = await post(`${srv.url}/search?k=5`, readFileSync(sketches[0]!), 'image/png');
  assert.is(r.status, 200, JSON.stringify(r.body));
  assert.is(r.body.hits.length, 5);
  assertSameHits(r.body.hits, cliHits(sketches[0]!, ['-k', '5']), 'cosine');
  for (const h of r.body.hits as Hit[]) assert.is(h.photo, `/photos/${h.id}`);
  const rr = await post(`${srv.url}/search?k=4&rerank=rn&rerank_k=6`, readFileSync(sketches[1]!), 'image/png');
  assert.is(rr.status, 200, JSON.stringify(rr.body));
  assertSameHits(rr.body.hits, cliHits(sketches[1]!, ['-k', '4', '--rerank', 'rn', '--rerank-k', '6']), 'rn');
  assert.ok((rr.body.hits as Hit[]).every((h) => h.rn === h.score));
  for (const key of ['queue', 'embed', 'search', 'rerank', 'total']) assert.type(rr.body.timings_ms[key], 'number');
});

test('serve: JSON bodies (base64 and a data: URL) give exactly what the raw body gives', async () => {
  const bytes = readFileSync(sketches[2]!);
  const raw = await post(`${srv.url}/search?k=3&rerank=rn`, bytes, 'image/png');
  const b64 = await post(`${srv.url}/search`, JSON.stringify({ sketch: bytes.toString('base64'), k: 3, rerank: 'rn' }), 'application/json');
  const url = await post(`${srv.url}/search`, JSON.stringify({ sketch: `data:image/png;base64,${bytes.toString('base64')}`, k: 3, rerank: true }), 'application/json; charset=utf-8');
  assert.is(raw.status, 200);
  assert.equal(b64.body.hits, raw.body.hits);
  assert.equal(url.body.hits, raw.body.hits);
});

test('serve: concurrent queries run in batches, and each gets what it gets alone', async () => {
  const ks = [3, 5, 1, 4, 2, 5];
  const alone: Hit[][] = [];
  for (let i = 0; i < sketches.length; i++) alone.push((await post(`${srv.url}/search?k=${ks[i]}`, readFileSync(sketches[i]!), 'image/png')).body.hits);
  const before = service.stats.largestBatch;
  assert.is(before, 1, 'the queries so far ran one at a time');
  const together = await Promise.all(sketches.map((s, i) => post(`${srv.url}/search?k=${ks[i]}`, readFileSync(s), 'image/png')));
  together.forEach((r, i) => {
    assert.is(r.status, 200);
    assert.is(r.body.hits.length, ks[i]);
    assertSameHits(r.body.hits, alone[i]!.map((h) => ({ path: h.id, score: h.score, cosine: h.cosine })), `sketch ${i} in a batch`);
  });
  assert.ok(service.stats.largestBatch > 1, `no batch formed (largest ${service.stats.largestBatch})`);
  assert.ok(together.some((r) => r.body.batch > 1));
  // Re-ranked queries batch too (their own batches: other options).
  const rn = await Promise.all(sketches.slice(0, 3).map((s) => post(`${srv.url}/search?k=2&rerank=rn&rerank_k=5`, readFileSync(s), 'image/png')));
  rn.forEach((r, i) => assertSameHits(r.body.hits, cliHits(sketches[i]!, ['-k', '2', '--rerank', 'rn', '--rerank-k', '5']), `rn ${i}`));
});

test('serve: /explain gives the sheet `sketchgpu explain` draws, byte for byte, and the relation score of the re-rank', async () => {
  const ix = parseIndex(readFileSync(sgi), sgi);
  const id = ix.paths[1]!;
  const bytes = readFileSync(sketches[2]!);
  const r = await fetch(`${srv.url}/explain?id=${encodeURIComponent(id)}`, { method: 'POST', body: bytes, headers: { 'Content-Type': 'image/png' } });
  assert.is(r.status, 200);
  assert.is(r.headers.get('content-type'), 'image/png');
  const png = new Uint8Array(await r.arrayBuffer());
  const why = join(tmp, 'why.png');
  const c = cli(['explain', sketches[2]!, join(gallery, id), '-o', why, '--weights', W64]);
  assert.is(c.code, 0, c.err);
  assert.equal(png, new Uint8Array(readFileSync(why)), 'the same sheet as the CLI');
  // Its relation score is the one a re-ranked search gives that photo.
  const rn = await post(`${srv.url}/search?k=${ix.paths.length}&rerank=rn&rerank_k=${ix.paths.length}`, bytes, 'image/png');
  const hit = (rn.body.hits as Hit[]).find((h) => h.id === id)!;
  assert.ok(Math.abs(Number(r.headers.get('x-sketchgpu-rn')) - hit.rn!) < 1e-5, `${r.headers.get('x-sketchgpu-rn')} vs ${hit.rn}`);
  assert.ok(Math.abs(Number(r.headers.get('x-sketchgpu-cosine')) - hit.cosine) < 1e-5);
  const j = await post(`${srv.url}/explain`, JSON.stringify({ sketch: bytes.toString('base64'), id, top: 5, format: 'json' }), 'application/json');
  assert.is(j.status, 200, JSON.stringify(j.body));
  assert.is(j.body.links.length, 5);
  assert.ok(Math.abs(j.body.rn - hit.rn!) < 1e-5);
  assert.match(j.body.sheet, /^data:image\/png;base64,iVBOR/);
  assertRefusal(await post(`${srv.url}/explain?id=nope.png`, bytes, 'image/png'), 400, 'BAD_ARGUMENT', /no photo "nope.png"/);
  assertRefusal(await post(`${srv.url}/explain`, bytes, 'image/png'), 400, 'BAD_ARGUMENT', /names no photo/);
  assertRefusal(await post(`${srv.url}/explain?id=${encodeURIComponent(id)}&top=0`, bytes, 'image/png'), 400, 'BAD_ARGUMENT', /top must be/);
  assertRefusal(await post(`${srv.url}/explain?id=${encodeURIComponent(id)}&format=svg`, bytes, 'image/png'), 400, 'BAD_ARGUMENT', /format must be/);
  assert.is((await fetch(`${srv.url}/explain`)).status, 405);
});

test('serve: bad requests are JSON errors with hints and the right status', async () => {
  assertRefusal(await post(`${srv.url}/search`, 'not an image', 'image/png'), 400, 'BAD_IMAGE', /not a PNG or JPEG/);
  assertRefusal(await post(`${srv.url}/search`, readFileSync(blank), 'image/png'), 400, 'EMPTY_SKETCH', /./);
  assertRefusal(await post(`${srv.url}/search`, new Uint8Array(0), 'image/png'), 400, 'BAD_ARGUMENT', /empty/);
  assertRefusal(await post(`${srv.url}/search?k=0`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /k must be/);
  assertRefusal(await post(`${srv.url}/search?k=1000000`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /k must be an integer from 1 to/);
  assertRefusal(await post(`${srv.url}/search?k=abc`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /k must be a positive integer/);
  assertRefusal(await post(`${srv.url}/search?kk=3`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /unknown query parameter "kk"/);
  assertRefusal(await post(`${srv.url}/search?rerank=maybe`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /rerank must be/);
  assertRefusal(await post(`${srv.url}/search?text=a%20cat`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /text tower/);
  assertRefusal(await post(`${srv.url}/search?text_weight=0.5`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /composed/);
  assertRefusal(await post(`${srv.url}/search`, '{"sketch": 1', 'application/json'), 400, 'BAD_ARGUMENT', /not JSON/);
  assertRefusal(await post(`${srv.url}/search`, '[1]', 'application/json'), 400, 'BAD_ARGUMENT', /must be an object/);
  assertRefusal(await post(`${srv.url}/search`, '{"sketch": "@@@"}', 'application/json'), 400, 'BAD_ARGUMENT', /base64/);
  assertRefusal(await post(`${srv.url}/search`, '{"photo": "x"}', 'application/json'), 400, 'BAD_ARGUMENT', /unknown field "photo"/);
  assertRefusal(await post(`${srv.url}/search`, '{}', 'application/json'), 400, 'BAD_ARGUMENT', /nothing to search for/);
  assertRefusal(await post(`${srv.url}/search`, 'x', 'text/plain'), 415, 'BAD_ARGUMENT', /not one this server reads/);
  const get = await fetch(`${srv.url}/search`);
  assert.is(get.status, 405);
  assert.is(((await get.json()) as any).error.code, 'BAD_ARGUMENT');
  assert.is((await fetch(`${srv.url}/nowhere`)).status, 404);
  // DNS rebinding: a page of another site whose name resolves to 127.0.0.1 sends its own Host.
  const { request } = await import('node:http');
  const status = await new Promise<number>((res, rej) => {
    const q = request({ host: '127.0.0.1', port: srv.port, path: '/info', headers: { Host: 'evil.example' } }, (r) => { r.resume(); res(r.statusCode!); });
    q.on('error', rej);
    q.end();
  });
  assert.is(status, 403);
  // The server is still fine after all that.
  assert.is((await post(`${srv.url}/search?k=1`, readFileSync(sketches[0]!), 'image/png')).status, 200);
});

test('serve: /metrics counts requests, queries and batches in Prometheus\' text format', async () => {
  const m = await SketchGPU.load({ weights: W64 });
  const svc = new SearchService({ model: m, index: parseIndex(readFileSync(sgi), sgi) });
  const s = await startSearchServer(svc, { port: 0 });
  try {
    await Promise.all(sketches.slice(0, 4).map((f) => post(`${s.url}/search?k=2`, readFileSync(f), 'image/png')));
    await post(`${s.url}/search`, 'junk', 'image/png');
    const r = await fetch(`${s.url}/metrics`);
    assert.is(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const value = (name: string) => Number(new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.is(value('sketchgpu_requests_total{route="/search",status="200"}'), 4);
    assert.is(value('sketchgpu_requests_total{route="/search",status="400"}'), 1);
    assert.is(value('sketchgpu_queries_total'), 4);
    assert.is(value('sketchgpu_batches_total'), svc.stats.batches);
    assert.ok(value('sketchgpu_batches_total') >= 1 && value('sketchgpu_batches_total') <= 4);
    assert.is(value('sketchgpu_request_seconds_count{route="/search"}'), 5);
    assert.is(value('sketchgpu_request_seconds_bucket{route="/search",le="+Inf"}'), 5);
    assert.is(value('sketchgpu_ready'), 1);
    assert.is(value('sketchgpu_photos'), svc.index.paths.length);
    // Every sample line is "name{labels} number" or "name number".
    for (const l of text.split('\n').filter((x) => x && !x.startsWith('#'))) assert.match(l, /^[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$/, l);
  } finally {
    await s.close();
  }
});

test('serve: photos by index id only, never a path outside the gallery', async () => {
  const ix = parseIndex(readFileSync(sgi), sgi);
  const id = ix.paths[0]!;
  const r = await fetch(`${srv.url}/photos/${id}`);
  assert.is(r.status, 200);
  assert.is(r.headers.get('content-type'), 'image/png');
  assert.equal(new Uint8Array(await r.arrayBuffer()), new Uint8Array(readFileSync(join(gallery, id))));
  const { request } = await import('node:http');
  const raw = (path: string) => new Promise<number>((res, rej) => {
    const q = request({ host: '127.0.0.1', port: srv.port, path }, (x) => { x.resume(); res(x.statusCode!); });
    q.on('error', rej);
    q.end();
  });
  for (const p of ['/photos/../g.sgi', '/photos/..%2Fg.sgi', '/photos/%2E%2E/g.sgi', '/photos/boat/broken.jpg', '/photos/%ZZ', `/photos/${encodeURIComponent(join(gallery, id))}`]) {
    assert.is(await raw(p), 404, p);
  }
});

test('serve: a full queue refuses with 503 and Retry-After; the others are answered', async () => {
  const m = await SketchGPU.load({ weights: W64 });
  const busy = new SearchService({ model: m, index: parseIndex(readFileSync(sgi), sgi), maxQueue: 0, maxBatch: 1 });
  const s = await startSearchServer(busy, { port: 0 });
  try {
    const rs = await Promise.all(sketches.map((f) => post(`${s.url}/search?k=2`, readFileSync(f), 'image/png')));
    const refused = rs.filter((r) => r.status === 503);
    assert.ok(refused.length > 0, 'none refused');
    assert.ok(rs.some((r) => r.status === 200));
    for (const r of refused) {
      assertRefusal(r, 503, 'BUSY', /already waiting/);
      assert.is(r.headers.get('retry-after'), '1');
    }
    assert.ok(rs.every((r) => r.status === 200 || r.status === 503));
  } finally {
    await s.close();
  }
});

test('serve: a body over the limit is refused with 413 before it is read', async () => {
  const m = await SketchGPU.load({ weights: W64 });
  const s = await startSearchServer(new SearchService({ model: m, index: parseIndex(readFileSync(sgi), sgi) }), { port: 0, maxBodyBytes: 1000, photos: false });
  try {
    // (This server also runs with photos off: no photo, and no explanation, which shows the photo.)
    const id = parseIndex(readFileSync(sgi), sgi).paths[0]!;
    assert.is((await fetch(`${s.url}/photos/${id}`)).status, 404);
    assertRefusal(await post(`${s.url}/explain?id=${encodeURIComponent(id)}`, new Uint8Array(10), 'image/png'), 404, 'BAD_ARGUMENT', /serves no photos/);
    assertRefusal(await post(`${s.url}/search`, new Uint8Array(5000), 'image/png'), 413, 'BAD_ARGUMENT', /5000 bytes, more than the 1000 bytes/);
    // Sent in chunks, with no Content-Length to refuse it by: counted as it arrives, refused past the limit.
    const { request } = await import('node:http');
    const chunked = await new Promise<{ status: number; body: Record<string, any> }>((res, rej) => {
      const q = request({ host: '127.0.0.1', port: s.port, path: '/search', method: 'POST', headers: { 'Content-Type': 'image/png', 'Transfer-Encoding': 'chunked' } }, (r) => {
        let text = '';
        r.on('data', (c) => { text += c; });
        r.on('end', () => res({ status: r.statusCode!, body: JSON.parse(text) }));
      });
      q.on('error', rej);
      for (let i = 0; i < 10; i++) q.write(new Uint8Array(600));
      q.end();
    });
    assertRefusal(chunked, 413, 'BAD_ARGUMENT', /more than the 1000 bytes/);
    // The bodies of all requests together: a second large upload while the first is held is refused (503), and the
    // budget is back once the first is answered.
    const tight = await startSearchServer(new SearchService({ model: await SketchGPU.load({ weights: W64 }), index: parseIndex(readFileSync(sgi), sgi) }), { port: 0, maxBodyBytes: 1000, maxBodyBytesInFlight: 1500 });
    try {
      const open = () => {
        const q = request({ host: '127.0.0.1', port: tight.port, path: '/search', method: 'POST', headers: { 'Content-Type': 'image/png', 'Transfer-Encoding': 'chunked' } });
        const answer = new Promise<{ status: number; body: Record<string, any> }>((res, rej) => {
          q.on('response', (r) => {
            let text = '';
            r.on('data', (c) => { text += c; });
            r.on('end', () => res({ status: r.statusCode!, body: JSON.parse(text) }));
          });
          q.on('error', rej);
        });
        return { q, answer };
      };
      const first = open();
      first.q.write(new Uint8Array(900));
      await new Promise((r) => setTimeout(r, 200));
      const second = open();
      second.q.write(new Uint8Array(900));
      second.q.end();
      const refused = await second.answer;
      assertRefusal(refused, 503, 'BUSY', /bytes of request bodies already/);
      first.q.end();
      assert.is((await first.answer).status, 400); // 900 zero bytes: not an image
      const small = readFileSync(sketches[0]!);
      assert.ok(small.length < 1000, `the test sketch is ${small.length} bytes`);
      assert.is((await post(`${tight.url}/search?k=1`, small, 'image/png')).status, 200, 'the budget is free again');
    } finally {
      await tight.close();
    }
    assert.is((await post(`${s.url}/search?k=1`, readFileSync(sketches[0]!), 'image/png')).status, 200);
  } finally {
    await s.close();
  }
});

test('serve: with a token, every request but the page and /health needs it', async () => {
  const token = 'test-token-0123456789abcdef';
  const m = await SketchGPU.load({ weights: W64 });
  const svc = new SearchService({ model: m, index: parseIndex(readFileSync(sgi), sgi) });
  assert.throws(() => searchHandler(svc, { token: 'short' }), /at least 16 printable/);
  const s = await startSearchServer(svc, { port: 0, token });
  try {
    const body = readFileSync(sketches[0]!);
    const none = await post(`${s.url}/search?k=2`, body, 'image/png');
    assertRefusal(none, 401, 'BAD_ARGUMENT', /needs a token/);
    assert.is(none.headers.get('www-authenticate'), 'Bearer');
    assertRefusal(await post(`${s.url}/search?k=2`, body, 'image/png', { Authorization: `Bearer ${token}x` }), 401, 'BAD_ARGUMENT', /token is wrong/);
    assertRefusal(await post(`${s.url}/search?k=2`, body, 'image/png', { Authorization: token }), 401, 'BAD_ARGUMENT', /token is wrong/);
    const ok = await post(`${s.url}/search?k=2`, body, 'image/png', { Authorization: `Bearer ${token}` });
    assert.is(ok.status, 200);
    assert.is((await fetch(`${s.url}/info`)).status, 401);
    assert.is((await fetch(`${s.url}${ok.body.hits[0].photo}`)).status, 401);
    assert.is((await fetch(`${s.url}${ok.body.hits[0].photo}`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
    assert.is((await fetch(`${s.url}/`)).status, 200);
    assert.is((await fetch(`${s.url}/health`)).status, 200);
  } finally {
    await s.close();
  }
});

test('serve: a lost GPU device is reloaded, and the service answers as before', async () => {
  const before = await post(`${srv.url}/search?k=4&rerank=rn&rerank_k=6`, readFileSync(sketches[3]!), 'image/png');
  const old = service.model;
  // What a driver reset does: the device goes away under the model.
  (old as unknown as { device: { ctx: { device: GPUDevice } } }).device.ctx.device.destroy();
  const t0 = Date.now();
  while (!(service.model !== old && service.status === 'ready')) {
    assert.ok(Date.now() - t0 < 120_000, `not reloaded (status ${service.status})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.is(service.stats.deviceLosses, 1);
  const after = await post(`${srv.url}/search?k=4&rerank=rn&rerank_k=6`, readFileSync(sketches[3]!), 'image/png');
  assert.is(after.status, 200, JSON.stringify(after.body));
  assertSameHits(after.body.hits, (before.body.hits as Hit[]).map((h) => ({ path: h.id, score: h.score, cosine: h.cosine, rn: h.rn })), 'after the reload');
});

test('serve: close() answers the queued queries, then refuses', async () => {
  const m = await SketchGPU.load({ weights: W64 });
  const svc = new SearchService({ model: m, index: parseIndex(readFileSync(sgi), sgi), maxBatch: 2 });
  const pending = sketches.map((f) => svc.query({ sketch: readFileSync(f), k: 2 }));
  await new Promise((r) => setTimeout(r, 0));
  const closing = svc.close();
  const rs = await Promise.all(pending);
  await closing;
  assert.ok(rs.every((r) => r.hits.length === 2));
  try {
    await svc.query({ sketch: readFileSync(sketches[0]!) });
    assert.unreachable('a closed service answered');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'BUSY');
  }
});

test('serve: CAAN text and sketch+text queries give what `sketchgpu query --text` gives, batched or not', async () => {
  const WC = resolve(FIXTURES, 'caan', 'tiny.weights.safetensors');
  const csgi = join(tmp, 'caan.sgi');
  const r = cli(['index', gallery, '-o', csgi, '--weights', WC]);
  assert.is(r.code, 0, r.err);
  const m = await SketchGPU.load({ weights: WC });
  const s = await startSearchServer(new SearchService({ model: m, index: parseIndex(readFileSync(csgi), csgi) }), { port: 0 });
  try {
    const texts = ['a photo of a boat', 'an apple', 'a cat'];
    const got = await Promise.all(texts.map((t) => post(`${s.url}/search`, JSON.stringify({ text: t, k: 4 }), 'application/json')));
    got.forEach((g, i) => {
      assert.is(g.status, 200, JSON.stringify(g.body));
      const want = json(['query', '--text', texts[i]!, '--index', csgi, '--weights', WC, '-k', '4', '--json']).results[0].hits;
      assertSameHits(g.body.hits, want, `text ${i}`);
    });
    const trn = await post(`${s.url}/search`, JSON.stringify({ text: texts[0], k: 3, rerank: 'rn', rerank_k: 6 }), 'application/json');
    assert.is(trn.status, 200, JSON.stringify(trn.body));
    assertSameHits(trn.body.hits, json(['query', '--text', texts[0]!, '--index', csgi, '--weights', WC, '-k', '3', '--rerank', 'rn', '--rerank-k', '6', '--json']).results[0].hits, 'text+rn');
    const composed = await post(`${s.url}/search?k=3&text=a%20boat&text_weight=0.3`, readFileSync(sketches[0]!), 'image/png');
    assert.is(composed.status, 200, JSON.stringify(composed.body));
    const want = json(['query', sketches[0]!, '--text', 'a boat', '--text-weight', '0.3', '--index', csgi, '--weights', WC, '-k', '3', '--json']).results[0].hits;
    assertSameHits(composed.body.hits, want, 'sketch+text');
    assertRefusal(await post(`${s.url}/search`, JSON.stringify({ text: '  ' }), 'application/json'), 400, 'BAD_ARGUMENT', /text is empty/);
    const caanId = parseIndex(readFileSync(csgi), csgi).paths[0]!;
    assertRefusal(await post(`${s.url}/explain?id=${encodeURIComponent(caanId)}`, readFileSync(sketches[0]!), 'image/png'), 400, 'BAD_ARGUMENT', /ZSE-SBIR's cross-attention/);
    assertRefusal(await post(`${s.url}/search`, JSON.stringify({ text: 'x'.repeat(MAX_TEXT_CHARS + 1) }), 'application/json'), 400, 'BAD_ARGUMENT', new RegExp(`${MAX_TEXT_CHARS + 1} characters`));
  } finally {
    await s.close();
  }
});

test('serve: replaceGallery searches the new gallery from the next batch; another model\'s index is refused', async () => {
  const m = await SketchGPU.load({ weights: W64 });
  const ix = parseIndex(readFileSync(sgi), sgi);
  const svc = new SearchService({ model: m, index: ix });
  const s = await startSearchServer(svc, { port: 0 });
  try {
    const g2 = join(tmp, 'gallery2');
    cpSync(gallery, g2, { recursive: true });
    mkdirSync(join(g2, 'dog'));
    for (let i = 0; i < 3; i++) png(join(g2, 'dog', `d${i}.png`), 66 + i, 70, 5000 + i, 'photo');
    const sgi2 = join(tmp, 'g2.sgi');
    assert.is(cli(['index', g2, '-o', sgi2, '--weights', W64]).code, 0);
    const ix2 = parseIndex(readFileSync(sgi2), sgi2);
    // Queries in flight while it swaps are answered (on one gallery or the other).
    const during = sketches.map((f) => post(`${s.url}/search?k=50`, readFileSync(f), 'image/png'));
    await svc.replaceGallery(ix2);
    for (const r of await Promise.all(during)) assert.is(r.status, 200);
    const info = await (await fetch(`${s.url}/info`)).json() as Record<string, any>;
    assert.is(info.photos, ix2.paths.length);
    const all = await post(`${s.url}/search?k=50`, readFileSync(sketches[0]!), 'image/png');
    assert.is(all.body.hits.length, ix2.paths.length);
    assert.ok((all.body.hits as Hit[]).some((h) => h.id.startsWith('dog/')));
    assert.is((await fetch(`${s.url}/photos/dog/d0.png`)).status, 200);
    const other = { ...ix2, model: { ...ix2.model, weights_sha256: '0'.repeat(64) } };
    try {
      await svc.replaceGallery(other);
      assert.unreachable('an index of other weights was taken');
    } catch (e) {
      assert.is((e as { code?: string }).code, 'INDEX_MISMATCH');
    }
    assert.is(((await (await fetch(`${s.url}/info`)).json()) as Record<string, any>).photos, ix2.paths.length, 'the served gallery is unchanged');
  } finally {
    await s.close();
  }
});

test('serve (CLI) on a LanceDB table (exact): the ranking and scores of the .sgi index it was exported from', async () => {
  const uri = join(tmp, 'served.lancedb');
  assert.is(cli(['export', sgi, '--store', `lancedb:${uri}`]).code, 0);
  const child = spawn(process.execPath, [BIN, 'serve', '--index', `lancedb:${uri}`, '--weights', W64, '--port', '0', '--json'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => { err += c; });
  const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  try {
    const first = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
    assert.not.ok(first.done, `no startup line: ${err}`);
    const start = JSON.parse(first.value as string);
    assert.is(start.ann, false);
    assert.is(start.photos, parseIndex(readFileSync(sgi), sgi).paths.length);
    const r = await post(`${start.url}/search?k=5&rerank=rn&rerank_k=8`, readFileSync(sketches[4]!), 'image/png');
    assert.is(r.status, 200, JSON.stringify(r.body));
    assertSameHits(r.body.hits, cliHits(sketches[4]!, ['-k', '5', '--rerank', 'rn', '--rerank-k', '8']), 'LanceDB table');
    assert.is((await fetch(`${start.url}${r.body.hits[0].photo}`)).status, 200);
  } finally {
    child.kill('SIGTERM');
    assert.is(await exited, 0, err);
  }
});

test('serve (CLI): --help; a missing index and a port in use are clean errors; it serves and stops on SIGTERM', async () => {
  const h = cli(['serve', '--help']);
  assert.is(h.code, 0);
  assert.match(h.out, /POST \/search/);
  assertCleanError(cli(['serve', '--index', join(tmp, 'missing.sgi')]), /missing\.sgi/);
  assertCleanError(cli(['serve', '--index', sgi, '--port', String(srv.port)]), /in use/);
  assertCleanError(cli(['serve', '--index', sgi, '--port', '70000']), /--port must be/);
  writeFileSync(join(tmp, 'short-token.txt'), 'abc\n');
  assertCleanError(cli(['serve', '--index', sgi, '--port', '0', '--token-file', join(tmp, 'short-token.txt')]), /at least 16 printable/);
  assertCleanError(cli(['serve', '--index', sgi, '--token-file', join(tmp, 'no-such-token.txt')]), /cannot read the token file/);
  const child = spawn(process.execPath, [BIN, 'serve', '--index', sgi, '--weights', W64, '--port', '0', '--json', '--log'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => { err += c; });
  const lines = createInterface({ input: child.stdout });
  const it = lines[Symbol.asyncIterator]();
  try {
    const first = await it.next();
    assert.not.ok(first.done, `no startup line: ${err}`);
    const start = JSON.parse(first.value as string);
    assert.is(start.photos, parseIndex(readFileSync(sgi), sgi).paths.length);
    const r = await post(`${start.url}/search?k=3`, readFileSync(sketches[0]!), 'image/png');
    assert.is(r.status, 200, JSON.stringify(r.body));
    assertSameHits(r.body.hits, cliHits(sketches[0]!, ['-k', '3']), 'CLI server');
    const log = JSON.parse((await it.next()).value as string);
    assert.is(log.path, '/search');
    assert.is(log.status, 200);
    // SIGHUP after `index --update` grew the index: the new photos are searched, without a restart.
    const before = start.photos as number;
    mkdirSync(join(gallery, 'dog'), { recursive: true });
    for (let i = 0; i < 2; i++) png(join(gallery, 'dog', `h${i}.png`), 72, 64 + i, 7000 + i, 'photo');
    assert.is(cli(['index', gallery, '-o', sgi, '--weights', W64, '--rn-cache', '--update']).code, 0);
    child.kill('SIGHUP');
    const t0 = Date.now();
    let photos = before;
    while (photos === before) {
      assert.ok(Date.now() - t0 < 60_000, `not reloaded: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
      photos = ((await (await fetch(`${start.url}/info`)).json()) as Record<string, any>).photos;
    }
    assert.is(photos, before + 2);
    assert.match(err, /reloaded .*: \d+ photos/);
  } finally {
    const code = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    child.kill('SIGTERM');
    assert.is(await code, 0, err);
  }
});

test.run();
