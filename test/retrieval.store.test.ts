// Gallery stores (issue 18, docs/vector-store.md) through the real CLI on the tiny64 test model: a LanceDB table
// reads back as the .sgi index of the same photos; three concurrent shard processes (one killed with SIGKILL between
// commits, then restarted) fill the same table as one process; ANN hits carry exact scores; eval through either
// store gives the metrics of encoding the photos; the refusals.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readNpy } from '../src/io/npy.ts';
import { parseIndex } from '../src/retrieval/index-format.ts';
import { LanceGallery } from '../src/retrieval/store/lance.ts';
import { exportToLance, shardOf } from '../src/retrieval/store/store.ts';
import { FIXTURES } from './paths.ts';
import { assertCleanError, BIN, cli, json, png } from './cli-util.ts';
import { rand } from './util.ts';

const W64 = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
const W224 = resolve(FIXTURES, 'zse', 'tiny224.weights.safetensors');
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-store-'));

// A data root: 3 classes x 8 photos and 2 sketches each (photo/ is also the gallery).
const data = join(tmp, 'data');
const classes = ['apple', 'boat', 'cat'];
classes.forEach((c, ci) => {
  mkdirSync(join(data, 'photo', c), { recursive: true });
  mkdirSync(join(data, 'sketch', c), { recursive: true });
  for (let k = 0; k < 8; k++) png(join(data, 'photo', c, `p${k}.png`), 64 + 3 * k, 60 + 5 * ci, 2000 + 10 * ci + k, 'photo');
  for (let k = 0; k < 2; k++) png(join(data, 'sketch', c, `s${k}.png`), 80, 72, 3000 + 10 * ci + k, 'sketch');
});
const gallery = join(data, 'photo');
const sketch = join(data, 'sketch', 'boat', 's0.png');
const sgi = join(tmp, 'g.sgi');
const one = join(tmp, 'one.lancedb');

/** The bytes of a float array (parseIndex's arrays may be views into the file). */
const bytes = (f: Float32Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength);

const loadTable = async (uri: string) => {
  const g = await LanceGallery.open(uri);
  try {
    return await g.load();
  } finally {
    g.close();
  }
};

/** Runs the CLI asynchronously; resolves with its exit code, signal and output. onErr sees stderr as it comes. */
function cliAsync(args: string[], env: Record<string, string> = {}, onErr?: (chunk: string, kill: () => void) => void) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((done) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => {
      err += d;
      onErr?.(String(d), () => p.kill('SIGKILL'));
    });
    p.on('close', (code, signal) => done({ code, signal, out, err }));
  });
}

test('index --store lancedb: the table reads back as the .sgi index of the same photos (paths, bit-identical embeddings)', async () => {
  json(['index', gallery, '-o', sgi, '--weights', W64, '--batch', '4', '--json']);
  const s = json(['index', gallery, '--store', `lancedb:${one}`, '--weights', W64, '--batch', '4', '--commit-every', '5', '--json']);
  assert.is(s.table_rows, 24);
  assert.is(s.complete, true);
  const a = parseIndex(readFileSync(sgi), sgi), b = await loadTable(one);
  assert.equal(b.paths, a.paths);
  assert.equal(b.model, a.model);
  assert.ok(bytes(b.embeddings).equals(bytes(a.embeddings)), 'embeddings bit-identical');
  // Rerun: everything is in the table already; nothing is embedded or inserted again.
  const again = json(['index', gallery, '--store', `lancedb:${one}`, '--weights', W64, '--json']);
  assert.is(again.embedded_now, 0);
  assert.is(again.resumed, 24);
  assert.is(again.table_rows, 24);
});

test('index --shard: three concurrent shards, one killed with SIGKILL between commits and restarted, give the table of one process', async () => {
  const uri = join(tmp, 'sharded.lancedb');
  const all = parseIndex(readFileSync(sgi), sgi).paths;
  const sizes = [0, 1, 2].map((i) => all.filter((p) => shardOf(p, 3) === i).length);
  assert.ok(sizes.every((n) => n >= 4), `each shard has photos to commit in steps: ${sizes}`);
  const args = (i: number) => ['index', gallery, '--store', `lancedb:${uri}`, '--weights', W64, '--shard', `${i}/3`, '--batch', '1', '--commit-every', '1', '--json'];
  let commits = 0;
  const [r0, killed, r2] = await Promise.all([
    cliAsync(args(0)),
    cliAsync(args(1), { SKETCHGPU_TRACE_COMMITS: '1' }, (chunk, kill) => {
      commits += (chunk.match(/^committed /gm) ?? []).length;
      if (commits >= 2) kill();
    }),
    cliAsync(args(2)),
  ]);
  assert.is(r0.code, 0, r0.err);
  assert.is(r2.code, 0, r2.err);
  assert.is(killed.signal, 'SIGKILL', `shard 1 was killed mid-way (exit ${killed.code}): ${killed.err}`);
  const restarted = json(args(1));
  assert.ok(restarted.resumed >= 2 && restarted.embedded_now >= 1, `the restart resumed (${restarted.resumed} kept, ${restarted.embedded_now} embedded now)`);
  assert.is(restarted.resumed + restarted.embedded_now, sizes[1]);
  assert.is(restarted.table_rows, 24);
  const a = await loadTable(one), b = await loadTable(uri);
  assert.equal(b.paths, a.paths, 'same photos, each once');
  assert.ok(bytes(b.embeddings).equals(bytes(a.embeddings)), 'embeddings bit-identical');
});

test('query: the same hits and scores through the .sgi file and the LanceDB table (flat)', () => {
  const a = json(['query', sketch, '--index', sgi, '-k', '24', '--json']);
  const b = json(['query', sketch, '--index', `lancedb:${one}`, '-k', '24', '--json']);
  const hits = (r: { results: { hits: { path: string; score: number }[] }[] }) => r.results[0]!.hits.map((h) => [h.path, h.score]);
  assert.equal(hits(b), hits(a));
  assert.is(b.ann, undefined);
});

test('eval --index: the metrics and every score of encoding the photos, through the .sgi file and the LanceDB table', () => {
  const dump = (name: string) => join(tmp, `${name}.npy`);
  const plain = json(['eval', '--data', data, '--weights', W64, '--json', '--dump-scores', dump('plain')]);
  const viaSgi = json(['eval', '--data', data, '--weights', W64, '--index', sgi, '--json', '--dump-scores', dump('sgi')]);
  const viaLance = json(['eval', '--data', data, '--weights', W64, '--index', `lancedb:${one}`, '--json', '--dump-scores', dump('lance')]);
  for (const r of [viaSgi, viaLance]) {
    for (const k of ['map_all', 'map_200', 'precision_100', 'precision_200']) assert.is(r[k], plain[k], k);
    assert.is(r.search, 'exact');
  }
  const s0 = readNpy(readFileSync(dump('plain'))).data as Float32Array;
  for (const n of ['sgi', 'lance']) assert.equal(Array.from(readNpy(readFileSync(dump(n))).data as Float32Array), Array.from(s0), n);
});

test('query --ann: IVF-PQ candidates re-scored exactly: every returned score is the exact cosine of the stored embedding', async () => {
  // 1,200 random unit vectors under tiny64's identity (the photos need not exist: no re-rank reads them).
  const ref = parseIndex(readFileSync(sgi), sgi);
  const D = ref.dim, n = 1200;
  const emb = rand(n * D, 77, -1, 1);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let k = 0; k < D; k++) s += emb[r * D + k]! ** 2;
    for (let k = 0; k < D; k++) emb[r * D + k]! /= Math.sqrt(s);
  }
  const uri = join(tmp, 'ann.lancedb');
  const paths = Array.from({ length: n }, (_, i) => `r/${String(i).padStart(5, '0')}.png`);
  await exportToLance({ ...ref, paths, embeddings: emb, tokens: undefined, projections: undefined, skipped: [], dtype: 'f32' }, uri);
  const built = json(['ann-index', `lancedb:${uri}`, '--partitions', '8', '--sub-vectors', '8', '--json']);
  assert.is(built.rows, n);
  const q = json(['embed', '--weights', W64, '--modality', 'sketch', '--json', sketch]).embeddings[0] as number[];
  const exact = (p: string) => {
    const r = paths.indexOf(p);
    let s = 0;
    for (let k = 0; k < D; k++) s += Math.fround(q[k]!) * emb[r * D + k]!;
    return s;
  };
  const annRun = json(['query', sketch, '--index', `lancedb:${uri}`, '--ann', '--candidates', '30', '--nprobes', '2', '-k', '10', '--json']);
  const flat = json(['query', sketch, '--index', `lancedb:${uri}`, '--exact', '-k', '10', '--json']);
  assert.is(annRun.ann.per_query, 30);
  assert.ok(annRun.ann.rows_scored <= 30);
  const hits = annRun.results[0].hits as { path: string; score: number }[];
  assert.is(hits.length, 10);
  for (const h of hits) assert.ok(Math.abs(h.score - exact(h.path)) < 1e-5, `${h.path}: ${h.score} vs exact ${exact(h.path)}`);
  // A photo both searches return has the same score in both: ANN may drop photos, never re-score them.
  const flatScore = new Map((flat.results[0].hits as { path: string; score: number }[]).map((h) => [h.path, h.score]));
  let shared = 0;
  for (const h of hits) if (flatScore.has(h.path)) { shared++; assert.is(h.score, flatScore.get(h.path)); }
  assert.ok(shared >= 1, 'the ANN top 10 shares photos with the exact top 10');
  // Automatic: above --ann-threshold a table with a vector index is searched by ANN, below it exactly.
  assert.ok(json(['query', sketch, '--index', `lancedb:${uri}`, '--ann-threshold', '1000', '--json']).ann);
  assert.is(json(['query', sketch, '--index', `lancedb:${uri}`, '--ann-threshold', '5000', '--json']).ann, undefined);
});

test('refusals: other weights, non-finite embeddings, no LanceDB package, bad store and shard arguments (error + hint, exit 2)', async () => {
  assertCleanError(cli(['query', sketch, '--index', `lancedb:${one}`, '--weights', W224]), /other weights/);
  assertCleanError(cli(['index', gallery, '--store', `lancedb:${one}`, '--weights', W224]), /other weights or options/);
  assertCleanError(cli(['index', gallery, '--store', `lancedb:${one}`, '--weights', W64, '--dtype', 'f16']), /other weights or options/);
  // A NaN embedding written by hand: refused on read.
  const ref = parseIndex(readFileSync(sgi), sgi);
  const bad = join(tmp, 'nan.lancedb');
  const g = await LanceGallery.openForWrite(bad, { model: ref.model, weightsPath: ref.weightsPath, root: ref.root, dim: ref.dim, dtype: 'f32', tokens: 0, planes: 0 });
  const payload = ref.embeddings.slice(0, ref.dim);
  payload[3] = NaN;
  await g.insert([{ path: 'apple/p0.png', payload }]);
  g.close();
  assertCleanError(cli(['query', sketch, '--index', `lancedb:${bad}`]), /norm NaN/);
  assertCleanError(cli(['query', sketch, '--index', `lancedb:${join(tmp, 'nothing-here')}`]), /cannot open the gallery table/);
  assertCleanError(cli(['query', sketch, '--index', `lancedb:${one}`], { SKETCHGPU_NO_LANCEDB: '1' }), /optional package @lancedb\/lancedb/);
  assertCleanError(cli(['index', gallery, '--store', 'lancedb:', '--weights', W64]), /needs a location/);
  assertCleanError(cli(['index', gallery, '--store', 'redis:x', '--weights', W64]), /unknown store/);
  assertCleanError(cli(['index', gallery, '-o', join(tmp, 'x.sgi'), '--shard', '0/2', '--weights', W64]), /needs a LanceDB store/);
  assertCleanError(cli(['index', gallery, '--store', `lancedb:${one}`, '--shard', '3/3', '--weights', W64]), /--shard must be i\/N/);
  assertCleanError(cli(['query', sketch, '--index', sgi, '--ann']), /\.sgi file/);
  assertCleanError(cli(['query', sketch, '--index', `lancedb:${one}`, '--ann']), /no vector index/);
  assertCleanError(cli(['query', sketch, '--index', `lancedb:${one}`, '--ann', '--exact']), /exclude each other/);
  assertCleanError(cli(['eval', '--data', data, '--weights', W64, '--index', sgi, '--mode', 'ret+rn']), /photo tokens/);
  assertCleanError(cli(['export', sgi, '--store', join(tmp, 'y.sgi')]), /not a LanceDB location/);
  assertCleanError(cli(['ann-index', `lancedb:${one}`]), /at least 256/);
});

test.run();
