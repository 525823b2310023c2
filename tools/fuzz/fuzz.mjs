#!/usr/bin/env node
// `npm run fuzz -- [--seconds N] [--target name]...`: coverage-guided fuzzing of the untrusted-file readers
// (fuzz/targets.ts) with Jazzer.js (libFuzzer), N seconds per target (default 60). Each input is held to 1 GiB of RSS
// and 10 s (-rss_limit_mb, -timeout), the bounds of docs/reliability.md. Seeds are the small test fixtures of each
// format; the growing corpus lives in .cache/fuzz/corpus/<target>. A crash (any exception but a SketchError, an
// out-of-memory, a timeout) is copied to test/fixtures/fuzz/<target>/, where test/fuzz.regression.test.ts replays
// it: fix the reader, keep the file. Prints executions and crashes per target; exits 1 if any crashed.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { unzipSync } from 'fflate';
import { glibcCompat } from './fuzz-glibc-compat.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE = join(ROOT, '.cache', 'fuzz');
const F = (...p) => join(ROOT, 'test', 'fixtures', ...p);
const files = (dir, re = /./) => (existsSync(dir) ? readdirSync(dir).filter((n) => re.test(n)).map((n) => join(dir, n)).filter((p) => statSync(p).isFile() && statSync(p).size < 1 << 20) : []);
const SEEDS = {
  checkpoint: files(F('ckpt'), /\.pth?$/),
  pickle: [],
  weights: [...files(F('ckpt'), /\.pth?$/), F('zse', 'tiny64.weights.safetensors')],
  safetensors: [F('zse', 'tiny64.weights.safetensors')],
  image: files(F('preprocess', 'images')),
  npy: files(F('ckpt'), /\.npy$/),
  index: files(F('fuzz-seeds'), /\.sgi$/),
  tokenizer: files(F('fuzz-seeds', 'text'), /\.txt$/),
  'search-request': files(F('fuzz-seeds', 'search'), /\.(json|txt)$/),
};

const args = process.argv.slice(2);
let seconds = 60;
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--seconds') seconds = Number(args[++i]);
  else if (args[i] === '--target') only.push(args[++i]);
  else throw new Error(`unknown argument ${args[i]} (use --seconds N, --target name)`);
}
if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
// The tokenizer target needs the real CLIP vocabulary (../shared/data/clip, or SKETCHGPU_CLIP_VOCAB); the bundles
// find it through the environment. Without it that target is skipped, and the table says so.
const vocab = process.env.SKETCHGPU_CLIP_VOCAB ?? resolve(process.env.SKETCHGPU_SHARED ?? join(ROOT, '..', 'shared'), 'data', 'clip', 'bpe_simple_vocab_16e6.txt.gz');
const targets = (only.length ? only : Object.keys(SEEDS)).filter((t) => t !== 'tokenizer' || existsSync(vocab) || (console.error(`warning: ${vocab} is missing: the tokenizer target is skipped`), false));
const jazzer = join(ROOT, 'node_modules', '.bin', 'jazzer');
if (!existsSync(jazzer)) {
  console.error('error: @jazzer.js/core is not installed\nhint: run `npm install` (it is a dev dependency)');
  process.exit(2);
}
// Jazzer.js's prebuilt libFuzzer addon needs glibc >= 2.38 and GCC 13's libstdc++ for three symbols; on older
// systems (Debian 12) tools/fuzz/fuzz-glibc-compat.mjs supplies them through a shim, so the coverage-guided engine runs
// there too. Where even that fails, the plain mutation engine of tools/fuzz/fuzz-mutate.cjs runs, and the table says so.
const compat = glibcCompat(ROOT, join(CACHE, 'glibc-compat'));
const engine = compat ? `jazzer.js (libFuzzer, coverage-guided${compat.LD_PRELOAD ? '; glibc/libstdc++ shim, tools/fuzz/fuzz-glibc-compat.mjs' : ''})` : 'mutation (not coverage-guided)';
if (!compat) {
  const probe = spawnSync(process.execPath, ['-e', "require('@jazzer.js/fuzzer')"], { cwd: ROOT, encoding: 'utf8' });
  console.error(`warning: Jazzer.js cannot load here (${(/Error: (.*)/.exec(probe.stderr)?.[1] ?? 'see node -e "require(\'@jazzer.js/fuzzer\')"').slice(0, 160)}); using the plain mutation engine (tools/fuzz/fuzz-mutate.cjs)`);
}

let crashed = 0;
const rows = [];
for (const name of targets) {
  if (!(name in SEEDS)) throw new Error(`unknown target ${name}; targets: ${Object.keys(SEEDS).join(', ')}`);
  const bundle = join(CACHE, `${name}.cjs`);
  // One CommonJS bundle per target, so Jazzer.js's require hook instruments the readers it contains.
  await build({
    stdin: { contents: `import { TARGETS } from './fuzz/targets.ts';\nmodule.exports.fuzz = (data) => TARGETS[${JSON.stringify(name)}](data);\n`, resolveDir: ROOT, loader: 'ts' },
    bundle: true, platform: 'node', format: 'cjs', outfile: bundle, loader: { '.wgsl': 'text' }, logLevel: 'error',
  });
  const corpus = join(CACHE, 'corpus', name);
  const crashes = join(CACHE, 'crashes', name);
  mkdirSync(corpus, { recursive: true });
  mkdirSync(crashes, { recursive: true });
  for (const s of SEEDS[name]) if (existsSync(s)) copyFileSync(s, join(corpus, `seed-${basename(s)}`));
  // The pickle target's seeds: the data.pkl of each test checkpoint.
  if (name === 'pickle') {
    for (const s of SEEDS.checkpoint) {
      try {
        for (const [n, b] of Object.entries(unzipSync(readFileSync(s)))) if (n.endsWith('data.pkl')) writeFileSync(join(corpus, `seed-${basename(s)}.pkl`), b);
      } catch {
        // not a zip (the legacy checkpoint): no pickle to take
      }
    }
  }
  const before = new Set(readdirSync(crashes));
  const r = compat
    ? spawnSync(jazzer, [bundle, corpus, '--sync', '--', `-max_total_time=${seconds}`, '-rss_limit_mb=1024', '-timeout=10',
      '-max_len=1048576', `-artifact_prefix=${crashes}/`], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, ...compat, SKETCHGPU_CLIP_VOCAB: vocab } })
    : spawnSync(process.execPath, ['--max-old-space-size=1024', join(ROOT, 'tools', 'fuzz', 'fuzz-mutate.cjs'), bundle, corpus, String(seconds), crashes],
      { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28, timeout: (seconds + 60) * 1000, env: { ...process.env, SKETCHGPU_CLIP_VOCAB: vocab } });
  const log = `${r.stdout}\n${r.stderr}`;
  const runs = /Done (\d+) runs in (\d+) second/.exec(log) ?? /#(\d+)\s+DONE/.exec(log) ?? /"executions":(\d+)/.exec(log);
  const cov = [...log.matchAll(/cov: (\d+)/g)].pop()?.[1];
  const found = readdirSync(crashes).filter((n) => !before.has(n));
  for (const c of found) {
    const keep = F('fuzz', name);
    mkdirSync(keep, { recursive: true });
    copyFileSync(join(crashes, c), join(keep, c));
  }
  crashed += found.length;
  rows.push({ target: name, seconds, executions: runs ? Number(runs[1]) : null, coverage: cov ? Number(cov) : null, crashes: found.length, exit: r.status });
  if (found.length || (r.status !== 0 && !runs)) process.stderr.write(log.split('\n').slice(-40).join('\n') + '\n');
  if (!runs) crashed++; // the engine itself failed: not a pass
}
console.log(`engine: ${engine}`);
console.log('| target | seconds | executions | coverage (edges) | new crashes |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.target} | ${r.seconds} | ${r.executions ?? '?'} | ${r.coverage ?? '?'} | ${r.crashes} |`);
if (crashed) console.log(`\n${crashed} crash(es) or engine failure(s); crash inputs are copied to test/fixtures/fuzz/, where test/fuzz.regression.test.ts replays them`);
process.exit(crashed ? 1 : 0);
