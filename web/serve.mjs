#!/usr/bin/env node
// `npm run web`: serves the sketch-and-search page (web/), its bundle (dist/), the weights (weights/), the test
// models (test/fixtures/zse/, test/fixtures/caan/) and the CLIP BPE vocabulary for CAAN's text tower (/clip/, read
// from where the CLI reads it: SKETCHGPU_CLIP_VOCAB, else <SKETCHGPU_SHARED or ../shared>/data/clip/) read-only over
// HTTP with node:http, building the bundles first when they are missing or older than their sources. Also a
// library: `startServer({ port })` (the browser tests use it).
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const TRAINED_WEIGHTS = 'weights/zse-sketchy104-small.safetensors';
export const TEST_WEIGHTS = 'test/fixtures/zse/tiny224.weights.safetensors';

/** URL prefix -> folder (relative to the repository root). Nothing else is served. */
const MOUNTS = [
  ['/web/', 'web'],
  ['/dist/', 'dist'],
  ['/weights/', 'weights'],
  ['/test/fixtures/zse/', 'test/fixtures/zse'],
  ['/test/fixtures/caan/', 'test/fixtures/caan'],
];

/**
 * OpenAI CLIP's BPE vocabulary (clip/bpe_simple_vocab_16e6.txt.gz, 1.36 MB), which CAAN's text tower tokenizes with.
 * It is not in the repository: served from the file the CLI reads (src/text/clip-vocab-node.ts), as this one URL.
 */
export const CLIP_VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz';
export const CLIP_VOCAB_URL = `/clip/${CLIP_VOCAB_FILE}`;
export function clipVocabPath(root = ROOT) {
  if (process.env.SKETCHGPU_CLIP_VOCAB) return resolve(process.env.SKETCHGPU_CLIP_VOCAB);
  const shared = process.env.SKETCHGPU_SHARED ? resolve(process.env.SKETCHGPU_SHARED) : resolve(root, '..', 'shared');
  return resolve(shared, 'data', 'clip', CLIP_VOCAB_FILE);
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.gz': 'application/gzip',
  '.safetensors': 'application/octet-stream',
};

const HELP = `Usage: npm run web -- [options]    (or: node web/serve.mjs [options])

Serves the sketchgpu page: draw a sketch, and the sample gallery (or a folder of photos you pick) is searched on
your GPU with WebGPU, in the browser. Open the printed URL in Chrome or Edge 113+ (or a browser with WebGPU on).

Serves read-only: web/ (the page and the sample gallery), dist/ (the bundles, built first when missing or stale),
weights/, test/fixtures/zse/ and test/fixtures/caan/ (weights), and at /clip/${CLIP_VOCAB_FILE} the CLIP
vocabulary for CAAN's text queries (from SKETCHGPU_CLIP_VOCAB, else <SKETCHGPU_SHARED or ../shared>/data/clip/, as
the CLI reads it). The model (ZSE-SBIR or CAAN) is detected from the weights. The page uses ${TRAINED_WEIGHTS}
when it exists, else the random test model ${TEST_WEIGHTS}
(it then says that results are chance-level). Page options: ?weights=<url>, ?perclass=<n>, ?k=<n>,
?vocab=<url> (the CLIP vocabulary, for CAAN).

Options:
  --port <n>    port to listen on (default 8080; 0 picks a free one)
  --host <h>    address to bind (default 127.0.0.1). WebGPU needs a secure context: http://localhost is one,
                http://<another host> is not, so from other machines use an HTTPS proxy or a tunnel.
  --no-build    do not build the bundles, even when missing or stale
  -h, --help    show this help
`;

/** Newest modification time of the files below a folder. */
function newest(dir) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || e.name === 'sample') continue;
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Build dist/ (node tools/build.mjs) when a bundle is missing or older than src/, shaders/ or web/. */
export function ensureBuilt(root = ROOT, log = console.log) {
  const outs = ['dist/web/app.js', 'dist/web/sample.json', 'dist/browser/sketchgpu.js'].map((p) => join(root, p));
  const missing = outs.some((p) => !existsSync(p));
  const built = missing ? 0 : Math.min(...outs.map((p) => statSync(p).mtimeMs));
  const sources = Math.max(...['src', 'shaders', 'web'].map((d) => newest(join(root, d))));
  if (!missing && built >= sources) return;
  log(missing ? 'building the bundles (dist/ is missing)…' : 'rebuilding the bundles (sources changed)…');
  const r = spawnSync(process.execPath, ['tools/build.mjs'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`the build failed (node tools/build.mjs exited with ${r.status})`);
}

/** The page's settings: which weights to load by default (relative to /web/). */
function config(root) {
  const trained = existsSync(join(root, TRAINED_WEIGHTS));
  return { weights: `../${trained ? TRAINED_WEIGHTS : TEST_WEIGHTS}`, random: !trained };
}

function send(res, code, body, type = 'text/plain; charset=utf-8', extra = {}) {
  res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * The Host header values this server answers (DNS rebinding: a page of evil.example whose name an attacker points at
 * 127.0.0.1 reaches this server with `Host: evil.example`, and is refused). Loopback names always; the bound host;
 * when bound to all interfaces, the machine's own addresses and hostname.
 */
function allowedHosts(boundHost) {
  const ok = new Set(['localhost', '127.0.0.1', '::1', boundHost.toLowerCase().replace(/^\[|\]$/g, '')]);
  if (boundHost === '0.0.0.0' || boundHost === '::') {
    ok.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) ok.add(a.address.toLowerCase());
  }
  return ok;
}

/** The host name of a Host header value ("[::1]:8080" -> "::1", "localhost:80" -> "localhost"), or null. */
export function hostOf(header) {
  if (typeof header !== 'string' || header === '') return null;
  const m = /^\[([0-9a-fA-F:.]+)\](?::\d+)?$/.exec(header) ?? /^([^:\[\]]+)(?::\d+)?$/.exec(header);
  return m ? m[1].toLowerCase().replace(/\.$/, '') : null;
}

function handler(root, boundHost = '127.0.0.1') {
  const hosts = allowedHosts(boundHost);
  return (req, res) => {
    const host = hostOf(req.headers.host);
    if (host === null || !hosts.has(host)) return send(res, 403, `forbidden: this server answers only for ${[...hosts].join(', ')} (Host header ${JSON.stringify(req.headers.host ?? '')})\n`);
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(res, 400, 'bad request\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'read-only: GET and HEAD only\n', undefined, { allow: 'GET, HEAD' });
    if (pathname === '/' || pathname === '/web') return send(res, 302, '', undefined, { location: '/web/' });
    if (pathname === '/web/config.json') return send(res, 200, JSON.stringify(config(root)) + '\n', TYPES['.json']);
    if (pathname.includes('\0') || pathname.split('/').some((s) => s === '..' || (s.startsWith('.') && s.length > 0))) {
      return send(res, 404, 'not found\n');
    }
    let file;
    if (pathname === CLIP_VOCAB_URL) {
      file = clipVocabPath(root);
    } else {
      const mount = MOUNTS.find(([prefix]) => pathname.startsWith(prefix));
      if (!mount) return send(res, 404, 'not found\n');
      const base = resolve(root, mount[1]);
      file = resolve(base, '.' + sep + pathname.slice(mount[0].length));
      if (file !== base && !file.startsWith(base + sep)) return send(res, 404, 'not found\n');
    }
    let st;
    try {
      st = statSync(file);
      if (st.isDirectory()) {
        file = join(file, 'index.html');
        st = statSync(file);
      }
    } catch {
      return send(res, 404, 'not found\n');
    }
    if (!st.isFile()) return send(res, 404, 'not found\n');
    res.writeHead(200, {
      'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': st.size,
      'cache-control': 'no-cache',
      'last-modified': st.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  };
}

/** Start the server; resolves once it listens. `port: 0` picks a free port. */
export function startServer({ port = 8080, host = '127.0.0.1', root = ROOT } = {}) {
  const server = createServer(handler(root, host));
  const sockets = new Set();
  let closed;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const p = server.address().port;
      const shown = host === '127.0.0.1' || host === '::1' || host === '0.0.0.0' ? 'localhost' : host;
      resolvePromise({
        server,
        port: p,
        url: `http://${shown}:${p}/web/`,
        /** Stop listening and drop open connections (keep-alive ones too). */
        close: () => (closed ??= new Promise((r) => {
          server.close(() => r(undefined));
          for (const s of sockets) s.destroy();
        })),
      });
    });
  });
}

async function cli(argv) {
  let port = 8080;
  let host = '127.0.0.1';
  let build = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a.split('=')[0]} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') {
      process.stdout.write(HELP);
      return;
    } else if (a === '--port' || a.startsWith('--port=')) {
      const v = value();
      port = Number(v);
      if (!/^\d+$/.test(v) || port > 65535) throw new Error(`--port must be a number from 0 to 65535, not "${v}"`);
    } else if (a === '--host' || a.startsWith('--host=')) {
      host = value();
    } else if (a === '--no-build') {
      build = false;
    } else {
      throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (build) ensureBuilt();
  let s;
  try {
    s = await startServer({ port, host });
  } catch (e) {
    if (e.code === 'EADDRINUSE') throw new Error(`port ${port} is in use; pick another with --port <n>`);
    throw e;
  }
  const c = config(ROOT);
  console.log(`sketchgpu web: ${s.url}`);
  console.log(`weights: ${c.weights.slice(3)}${c.random ? ` (random test weights: ${TRAINED_WEIGHTS} is missing)` : ''}`);
  const vocab = clipVocabPath();
  console.log(`CLIP vocabulary (CAAN text queries): ${existsSync(vocab) ? vocab : `${vocab} is missing; set SKETCHGPU_CLIP_VOCAB`}`);
  console.log('serving web/, dist/, weights/, test/fixtures/{zse,caan}/ and /clip/ read-only; Ctrl-C stops');
  const stop = () => s.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e) => {
    console.error(`error: ${e.message}`);
    process.exit(2);
  });
}
