// `npm run web` (web/serve.mjs) without a browser: what it serves, what it refuses, the page's default weights, the
// command line. And the browser bundle's weights hash (src/io/weights-hash.ts) against Node's.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { request } from 'node:http';
import { loadWeights, nodeWeightsHash as nodeHash } from '../../src/models/load-file.ts';
import { Sha256, weightsHash as webHash } from '../../src/io/weights-hash.ts';
import { createHash } from 'node:crypto';
import { REPO_ROOT } from '../paths.ts';
// @ts-expect-error: plain JS module without types
import { startServer, TRAINED_WEIGHTS, TEST_WEIGHTS, CLIP_VOCAB_URL, clipVocabPath } from '../../web/serve.mjs';

const T = suite('web server');
let srv: { port: number; url: string; close(): Promise<void> };

function get(path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((res, rej) => {
    // Raw paths (no URL normalisation), as a hostile client would send them.
    const req = request({ host: '127.0.0.1', port: srv.port, path, method, headers }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode!, headers: r.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', rej);
    req.end();
  });
}

T.before(async () => {
  srv = await startServer({ port: 0 });
});
T.after(async () => {
  await srv.close();
});

T('serves the page, the bundle, the sample and the weights read-only', async () => {
  assert.match(srv.url, /^http:\/\/localhost:\d+\/web\/$/);
  const root = await get('/');
  assert.is(root.status, 302);
  assert.is(root.headers.location, '/web/');
  const page = await get('/web/');
  assert.is(page.status, 200);
  assert.match(String(page.headers['content-type']), /text\/html/);
  assert.match(page.body.toString(), /<canvas id="pad"/);
  assert.match(page.body.toString(), /\.\.\/dist\/web\/app\.js/);
  const app = await get('/dist/web/app.js');
  assert.is(app.status, 200);
  assert.match(String(app.headers['content-type']), /javascript/);
  const photo = await get('/web/sample/photo/giraffe/' + JSON.parse(readFileSync(resolve(REPO_ROOT, 'dist/web/sample.json'), 'utf8')).photos.find((p: string) => p.startsWith('giraffe/')).split('/')[1]);
  assert.is(photo.status, 200);
  assert.is(photo.headers['content-type'], 'image/jpeg');
  const w = await get(`/${TEST_WEIGHTS}`, 'HEAD');
  assert.is(w.status, 200);
  assert.is(Number(w.headers['content-length']), readFileSync(resolve(REPO_ROOT, TEST_WEIGHTS)).length);
  assert.is(w.body.length, 0);
});

T('the page\'s default weights: the trained ones when present, else the random test model', async () => {
  const r = await get('/web/config.json');
  assert.is(r.status, 200);
  const c = JSON.parse(r.body.toString());
  const trained = existsSync(resolve(REPO_ROOT, TRAINED_WEIGHTS));
  assert.equal(c, { weights: `../${trained ? TRAINED_WEIGHTS : TEST_WEIGHTS}`, random: !trained });
  assert.is((await get('/web/' + c.weights)).status, 200);
});

T('serves the CAAN test model and the CLIP vocabulary (from where the CLI reads it) for CAAN in the page', async () => {
  const w = await get('/test/fixtures/caan/tiny.weights.safetensors', 'HEAD');
  assert.is(w.status, 200);
  assert.is(Number(w.headers['content-length']), readFileSync(resolve(REPO_ROOT, 'test/fixtures/caan/tiny.weights.safetensors')).length);
  assert.is(CLIP_VOCAB_URL, '/clip/bpe_simple_vocab_16e6.txt.gz');
  const vocab = clipVocabPath();
  const v = await get(CLIP_VOCAB_URL);
  if (existsSync(vocab)) {
    assert.is(v.status, 200);
    assert.is(v.headers['content-type'], 'application/gzip');
    assert.ok(v.body.equals(readFileSync(vocab)), 'the vocabulary file as it is');
  } else {
    assert.is(v.status, 404);
  }
  for (const p of ['/clip/', '/clip/other.txt.gz', '/clip/../package.json', '/clip/%2e%2e/package.json', '/test/fixtures/caan/../../run.sh']) {
    assert.is((await get(p)).status, 404, p);
  }
});

T('refuses writes, paths outside its folders, traversal and hidden files', async () => {
  assert.is((await get('/web/index.html', 'PUT')).status, 405);
  assert.is((await get('/web/index.html', 'POST')).status, 405);
  for (const p of ['/package.json', '/src/browser.ts', '/test/run.sh', '/web/../package.json', '/web/%2e%2e/package.json',
    '/dist/../package.json', '/weights/../../etc/passwd', '/web/sample/%2e%2e/%2e%2e/package.json', '/.git/config', '/web/.hidden',
    '/test/fixtures/zse/../../run.sh', '/web/%00']) {
    const r = await get(p);
    assert.is(r.status, 404, `${p} gave ${r.status}`);
  }
});

T('checks the Host header (DNS rebinding): only loopback names and the bound host are answered', async () => {
  for (const host of ['evil.example', `evil.example:${srv.port}`, '127.0.0.1.evil.example', 'localhost.evil', '[::2]']) {
    const r = await get('/web/', 'GET', { host });
    assert.is(r.status, 403, host);
    assert.match(r.body.toString(), /forbidden: this server answers only for/);
  }
  for (const host of [`localhost:${srv.port}`, `127.0.0.1:${srv.port}`, `[::1]:${srv.port}`, 'LOCALHOST', 'localhost.']) {
    assert.is((await get('/web/', 'GET', { host })).status, 200, host);
  }
});

T('npm run web --help; a bad port is refused', () => {
  const h = spawnSync(process.execPath, ['web/serve.mjs', '--help'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.is(h.status, 0);
  assert.match(h.stdout, /--port <n>/);
  assert.match(h.stdout, /default 8080/);
  const b = spawnSync(process.execPath, ['web/serve.mjs', '--port', 'abc', '--no-build'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.is(b.status, 2);
  assert.match(b.stderr, /^error: --port must be a number/);
  assert.is(JSON.parse(readFileSync(resolve(REPO_ROOT, 'package.json'), 'utf8')).scripts.web, 'node web/serve.mjs');
});

T('the browser\'s weights hash equals Node\'s', async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_001]) {
    const b = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    const s = new Sha256().update(b.subarray(0, n >> 1)).update(b.subarray(n >> 1));
    assert.is(s.hex(), createHash('sha256').update(b).digest('hex'), `${n} bytes`);
  }
  for (const f of ['tiny224', 'tiny64']) {
    const w = await loadWeights(resolve(REPO_ROOT, 'test/fixtures/zse', `${f}.weights.safetensors`));
    assert.is(webHash(w.tensors), nodeHash(w.tensors), f);
  }
});

T('the browser bundle has the engine, preprocessing, search, metrics and index format (no file system)', async () => {
  const web = await import(resolve(REPO_ROOT, 'dist/browser/sketchgpu.js'));
  const want = ['SketchError', 'isSketchError', 'createGpuContext', 'browserGpu', 'describeAdapter', 'ZseModel', 'ZSE_VIT_B16',
    'parseWeights', 'weightsHash', 'decodeImage', 'preprocessPhoto', 'preprocessSketch', 'readNpy', 'writeNpy', 'readSafetensors',
    'writeSafetensors', 'GallerySearch', 'evaluateScores', 'rankRow', 'vocAp', 'precisionAt', 'parseIndex', 'serializeIndex',
    'checkIndexModel', 'INDEX_FORMAT', 'indexPhotos', 'modelIdentity', 'imageFromRgba', 'GALLERY_IMAGE_EXT', 'checkAdapterLimits'];
  assert.equal(want.filter((k) => !(k in web)), [], 'missing from dist/browser/sketchgpu.js');
  // The same functions as in Node: an index made in the browser's format round-trips through Node's reader.
  const { parseIndex } = await import('../../src/retrieval/index-format.ts');
  const ix = {
    model: { family: 'zse-sbir', weights_sha256: 'ab'.repeat(32), config: { ...web.ZSE_VIT_B16, dim: 3 } }, weightsPath: 'w', root: 'r',
    paths: ['a/1.jpg', 'b/2.png'], dim: 3, dtype: 'f32', embeddings: Float32Array.of(1, 0, 0, 0, 0.6, 0.8), skipped: [], created: 'now',
  };
  const back = parseIndex(web.serializeIndex(ix), 'x');
  assert.equal(back.paths, ix.paths);
  assert.equal(Array.from(back.embeddings), Array.from(ix.embeddings));
});

T.run();
