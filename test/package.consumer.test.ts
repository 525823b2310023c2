// The package as an app gets it (issue 17): `npm pack` (its prepack builds dist/ and the declarations), the tarball
// installed into a fresh app (offline, from npm's cache; typescript and @types/node linked from this checkout), then:
// the tarball holds no tests, tools, bench or fixtures; the TypeScript example compiles under strict `nodenext` and
// under `bundler` (and a wrong call does not); `require` says the package is ESM-only; the Node and TypeScript examples
// rank photos through the package as the CLI does; the server example answers over HTTP with that ranking; the browser example, importing the package's browser bundle in
// Chromium, gives the same ranking.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';
import { json } from './cli-util.ts';
import { browserUnavailable, openSession } from './browser/harness.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-consumer-'));
const app = join(tmp, 'app');
const timings: string[] = [];
type Ranked = { rank: number; id: string; score: number }[];

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ...env }, timeout: 900_000, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}
const timed = <T>(what: string, fn: () => T): T => {
  const t0 = Date.now();
  const r = fn();
  timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
};

// Inputs: one sketch, the first 4 photos of 3 classes of the bundled sample.
const CLASSES = ['bat', 'cow', 'windmill'];
const SAMPLE = join(REPO_ROOT, 'web', 'sample');
const sketchSrc = join(SAMPLE, 'sketch', 'bat', readdirSync(join(SAMPLE, 'sketch', 'bat')).sort()[0]!);
const photos = CLASSES.flatMap((c) => readdirSync(join(SAMPLE, 'photo', c)).sort().slice(0, 4).map((f) => `photos/${c}/${f}`));
let tarball = '';

test.before(() => {
  try {
    setUp();
  } catch (e) {
    console.error('package.consumer setup failed:', e); // uvu reports a failed before hook only as 0 passed
    throw e;
  }
});

function setUp(): void {
  const pack = timed('npm pack (prepack: bundles and declarations)', () => sh('npm', ['pack', '--json', '--pack-destination', tmp], REPO_ROOT));
  assert.is(pack.code, 0, pack.err);
  tarball = join(tmp, JSON.parse(pack.out.slice(pack.out.indexOf('[')))[0].filename);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer-app', private: true, type: 'module' }));
  let inst = timed('npm install <tarball> --offline', () => sh('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], app));
  // On a machine whose npm cache lacks a dependency's registry metadata (a fresh machine: the repository's own
  // lockfile install fetches tarballs, not metadata), --offline cannot resolve it; then the registry is asked.
  if (inst.code !== 0 && /ENOTCACHED/.test(inst.err)) {
    inst = timed('npm install <tarball> --prefer-offline (the cache lacked registry metadata)', () => sh('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], app));
  }
  assert.is(inst.code, 0, `${inst.out}\n${inst.err}`);
  assert.not.match(inst.err, /Unknown (project|user|env) config/, 'npm config warnings');
  // LanceDB (155 MB native) is an optional peer: an app that does not ask for it does not get it.
  assert.not.ok(existsSync(join(app, 'node_modules', '@lancedb')), '@lancedb/lancedb was installed with sketchgpu');
  // The compiler and Node's types from this checkout (no download).
  mkdirSync(join(app, 'node_modules', '@types'), { recursive: true });
  // (Replacing any that the install brought.)
  for (const p of ['typescript', '@types/node', 'undici-types']) {
    rmSync(join(app, 'node_modules', p), { recursive: true, force: true });
    symlinkSync(join(REPO_ROOT, 'node_modules', p), join(app, 'node_modules', p));
  }
  cpSync(join(REPO_ROOT, 'examples'), join(app, 'examples'), { recursive: true });
  copyFileSync(sketchSrc, join(app, 'sketch.png'));
  for (const p of photos) {
    mkdirSync(join(app, p, '..'), { recursive: true });
    copyFileSync(join(SAMPLE, 'photo', p.slice('photos/'.length)), join(app, p));
  }
}

test.after(() => console.log(`\n${timings.map((t) => `  timing: ${t}`).join('\n')}\n`));

test('the tarball: dist, types, bin, the ZSE weights and the demo sample; no tests, tools, bench, fixtures or sources', () => {
  const list = sh('tar', ['tzf', tarball], tmp).out.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  for (const f of ['dist/node/index.js', 'dist/node/cli.js', 'dist/browser/sketchgpu.js', 'dist/types/index.d.ts', 'dist/types/browser.d.ts', 'dist/require.cjs',
    'bin/sketchgpu.js', 'weights/zse-sketchy104-small.safetensors', 'package.json', 'README.md']) assert.ok(list.includes(f), `${f} missing from the tarball`);
  const bad = list.filter((f) => /^(test|tools|bench|fuzz|src|shaders|\.ci|docs)\//.test(f) || /fixtures|\.map$|\.test\./.test(f));
  assert.equal(bad, [], 'files that do not belong in the package');
  const mb = statSync(tarball).size / 1e6;
  timings.push(`tarball ${mb.toFixed(1)} MB, ${list.length} files`);
  // The bound follows the shipped weights: 12 MB while they were run I's 3 MB; run R's 11.8 MB (the InceptionV3 front as
  // uint8, which gzip hardly shrinks) make the package 14.2 MB, so 16 MB leaves room for the rest, not for another model.
  assert.ok(mb < 16, `tarball ${mb.toFixed(1)} MB`);
});

test('TypeScript: the example compiles under strict nodenext and under bundler; a wrong call is a type error', () => {
  const base = { strict: true, target: 'es2022', skipLibCheck: true, noEmit: true, types: ['node'] };
  const configs = {
    nodenext: { ...base, module: 'nodenext', moduleResolution: 'nodenext' },
    bundler: { ...base, module: 'esnext', moduleResolution: 'bundler' },
  };
  writeFileSync(join(app, 'wrong.ts'), "import { SketchGPU } from 'sketchgpu';\nconst m = await SketchGPU.load();\nawait m.search(sketchOf(42), { k: 'ten' });\nfunction sketchOf(n: number) { return n; }\n");
  for (const [name, compilerOptions] of Object.entries(configs)) {
    writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files: ['examples/typescript/rank.ts'] }));
    const r = timed(`tsc --noEmit (${name})`, () => sh(process.execPath, ['node_modules/typescript/bin/tsc', '-p', `tsconfig.${name}.json`], app));
    assert.is(r.code, 0, `${name}:\n${r.out}${r.err}`);
    writeFileSync(join(app, `tsconfig.wrong-${name}.json`), JSON.stringify({ compilerOptions, files: ['wrong.ts'] }));
    const w = sh(process.execPath, ['node_modules/typescript/bin/tsc', '-p', `tsconfig.wrong-${name}.json`], app);
    assert.is(w.code, 2, `${name}: the wrong call compiled`);
    assert.match(w.out, /wrong\.ts\(3,\d+\): error TS2345/, w.out);
  }
});

let nodeRanking: Ranked = [];

test('Node: require() says ESM-only; the JS and TS examples rank the photos as the CLI does', () => {
  const req = sh(process.execPath, ['-e', "require('sketchgpu')"], app);
  assert.match(req.err, /sketchgpu is an ES module and cannot be loaded with require\(\)\. Use import instead/);
  const r = timed('node examples/node/rank.mjs (load, index 12 photos, search)', () => sh(process.execPath, ['examples/node/rank.mjs', 'sketch.png', ...photos], app));
  assert.is(r.code, 0, r.err);
  nodeRanking = JSON.parse(r.out);
  assert.is(nodeRanking.length, 10);
  // The CLI of this checkout on the same files, with the same (bundled) weights.
  const ix = join(tmp, 'cli.sgi');
  json(['index', join(app, 'photos'), '-o', ix, '--weights', join(REPO_ROOT, 'weights', 'zse-sketchy104-small.safetensors'), '--json']);
  const ref = json(['query', join(app, 'sketch.png'), '--index', ix, '-k', '10', '--json']).results[0].hits as { path: string; score: number }[];
  assert.equal(nodeRanking.map((h) => h.id), ref.map((h) => `photos/${h.path}`));
  nodeRanking.forEach((h, i) => assert.ok(Math.abs(h.score - ref[i]!.score) < 1e-5, `rank ${i + 1}: ${h.score} vs CLI ${ref[i]!.score}`));
  // The TypeScript example, compiled (nodenext) and run.
  writeFileSync(join(app, 'tsconfig.emit.json'), JSON.stringify({ compilerOptions: { strict: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: true, types: ['node'], outDir: 'build' }, files: ['examples/typescript/rank.ts'] }));
  const c = sh(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.emit.json'], app);
  assert.is(c.code, 0, c.out);
  const t = sh(process.execPath, ['build/rank.js', 'sketch.png', ...photos], app);
  assert.is(t.code, 0, t.err);
  assert.equal(JSON.parse(t.out), nodeRanking);
  // The installed CLI runs from the app.
  const help = sh(process.execPath, ['node_modules/.bin/sketchgpu', '--help'], app);
  assert.is(help.code, 0, help.err);
  assert.match(help.out, /Usage: sketchgpu/);
  // The demo from the installed package: the shipped weights and sample, its sheet in the app's ./out.
  const demo = timed('npx sketchgpu demo (installed package)', () => sh(process.execPath, ['node_modules/.bin/sketchgpu', 'demo', '--json', '-k', '3'], app, { XDG_CACHE_HOME: join(tmp, 'cache') }));
  assert.is(demo.code, 0, demo.err);
  const dj = JSON.parse(demo.out);
  assert.is(dj.gallery, 84);
  assert.ok(dj.trained_weights, 'the shipped weights were used');
  assert.is(dj.html, join(app, 'out', 'demo.html'));
  assert.ok(statSync(dj.html).size > 10_000);
  // Quiet by default: none of Dawn's adapter-limit warnings (lavapipe triggers them); --verbose shows Dawn's messages.
  const info = sh(process.execPath, ['node_modules/.bin/sketchgpu', 'info', '--json'], app);
  assert.is(info.code, 0, info.err);
  assert.is(info.err, '', 'stderr of a plain run');
  const adapter = JSON.parse(info.out).adapter as string;
  if (/llvmpipe|lavapipe/i.test(adapter)) {
    assert.match(sh(process.execPath, ['node_modules/.bin/sketchgpu', 'info', '--verbose'], app).err, /artificially reduced/, '--verbose passes Dawn\'s messages');
  }
});

test('Node: the server example (SearchService + startSearchServer from the package) answers with the same ranking', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['examples/node/serve.mjs', 'photos', '0'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => { err += c; });
  const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  try {
    const line = await new Promise<string>((res, rej) => {
      let out = '';
      child.stdout.on('data', (c) => { out += c; if (out.includes('\n')) res(out.split('\n')[0]!); });
      child.on('close', () => rej(new Error(`the example ended: ${err}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    const r = await fetch(`${url}/search?k=10`, { method: 'POST', body: readFileSync(join(app, 'sketch.png')), headers: { 'Content-Type': 'image/png' } });
    assert.is(r.status, 200);
    const hits = ((await r.json()) as { hits: { id: string; score: number }[] }).hits;
    // rank.mjs indexed the same files by their paths; the folder index names them relative to photos/.
    assert.equal(hits.map((h) => `photos/${h.id}`), nodeRanking.map((h) => h.id));
    hits.forEach((h, i) => assert.ok(Math.abs(h.score - nodeRanking[i]!.score) < 1e-5, `rank ${i + 1}`));
    assert.is((await fetch(`${url}/`)).status, 200);
    assert.is((await fetch(`${url}/photos/${hits[0]!.id}`)).status, 200);
  } finally {
    child.kill('SIGTERM');
    assert.is(await exited, 0, err);
  }
});

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.png': 'image/png', '.jpg': 'image/jpeg', '.json': 'application/json' };

const skip = browserUnavailable();
if (skip) test.skip(`browser: the example page gives the Node ranking (SKIPPED: ${skip})`, () => undefined);
else test('browser: the example page, importing the package\'s browser bundle in Chromium, gives the Node ranking', async () => {
  const server: Server = createServer((req, res) => {
    const path = resolve(app, `.${decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)}`);
    if (!path.startsWith(app)) return void res.writeHead(403).end();
    try {
      const body = readFileSync(path);
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const s = await openSession();
  try {
    const t0 = Date.now();
    await s.page.goto(`http://127.0.0.1:${port}/examples/browser/index.html?sketch=/sketch.png&photos=${photos.map((p) => `/${p}`).join(',')}`);
    await s.page.waitForFunction(() => (window as { result?: unknown }).result !== undefined, undefined, { timeout: 240_000 });
    timings.push(`browser example (load, index 12 photos, search on SwiftShader): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const result = await s.page.evaluate(() => (window as unknown as { result: unknown }).result) as Ranked | { error: string };
    assert.ok(Array.isArray(result), `the page failed: ${JSON.stringify(result)}\n${s.log.join('\n')}`);
    assert.equal(result.map((h) => h.id.slice(1)), nodeRanking.map((h) => h.id), 'browser ranking vs Node');
    result.forEach((h, i) => assert.ok(Math.abs(h.score - nodeRanking[i]!.score) < 1e-4, `rank ${i + 1}: ${h.score} vs Node ${nodeRanking[i]!.score}`));
    assert.equal(s.errors, [], 'console errors');
  } finally {
    await s.close();
    server.close();
  }
});

test.run();
