// The search server under load (docs/server.md): one `sketchgpu serve` in this process (SearchService +
// startSearchServer over real HTTP on 127.0.0.1), queried by N clients at once, each sending its sketches one after
// another. For each (max batch, clients) setting: queries per second, latency median / p95, the mean batch the
// queries ran in; and the ratio of batched to one-at-a-time service at the same load. Every answer is checked
// against the same sketch's answer from a lone query (same ids; scores within 1e-5), so a fast wrong batch is a
// failure, not a number.
// Usage: npm run bench:serve -- [--model shipped|vitb | --weights w] [--gallery dir] [--sketches dir] [--queries 64]
//   [--clients 1,16] [--batches 1,16] [--k 10] [--rerank] [--decode-threads n] [--json] [--out file.json]
// --decode-threads: sketch decoding threads, as `sketchgpu serve` (default: the CPU cores less one, at most 8).
// --model vitb: ViT-B/16 ZSE-SBIR (224 px) with random weights (bench/common.ts, as bench/run.ts uses): timings of the
// full-size model, rankings meaningless (still checked batched against lone).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SketchGPU, BUNDLED_WEIGHTS } from '../src/api/node.ts';
import { galleryEncoder, identityOf } from '../src/api/encoders.ts';
import { buildIndex } from '../src/retrieval/indexer.ts';
import { listGallery } from '../src/retrieval/gallery.ts';
import { parseIndex } from '../src/retrieval/index-format.ts';
import { SearchService } from '../src/server/service.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { ZSE_VIT_B16 } from '../src/models/zse/config.ts';
import { META_CA_HEADS, META_SA_HEADS } from '../src/models/zse/weights.ts';
import { randomWeights } from './common.ts';
import { startSearchServer } from '../src/server/http.ts';

// The repository (this file is bench/serve.ts, or its bundle bench/serve.device.mjs on a GPU machine).
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: a } = parseArgs({
  options: {
    weights: { type: 'string' }, model: { type: 'string' }, gallery: { type: 'string' }, sketches: { type: 'string' }, queries: { type: 'string' },
    clients: { type: 'string' }, batches: { type: 'string' }, k: { type: 'string' }, rerank: { type: 'boolean' },
    'decode-threads': { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  },
});
if (a.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const model = a.model ?? 'shipped';
if (model !== 'shipped' && model !== 'vitb') throw new Error(`--model ${model}: use shipped or vitb`);
if (a.weights && a.model) throw new Error('--weights and --model exclude each other');
const weights = a.weights ?? (model === 'vitb' ? vitbWeights() : join(ROOT, 'weights', BUNDLED_WEIGHTS.zse));

/** ViT-B/16 ZSE-SBIR with the bench's deterministic random weights, written to a temporary safetensors file. */
function vitbWeights(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sketchgpu-bench-serve-w-')), 'vitb.safetensors');
  writeFileSync(file, writeSafetensors(randomWeights(ZSE_VIT_B16), { [META_SA_HEADS]: String(ZSE_VIT_B16.saHeads), [META_CA_HEADS]: String(ZSE_VIT_B16.caHeads) }));
  return file;
}
const galleryDir = resolve(a.gallery ?? join(ROOT, 'web', 'sample', 'photo'));
const sketchDir = resolve(a.sketches ?? join(ROOT, 'web', 'sample', 'sketch'));
const NQ = Number(a.queries ?? 64);
const CLIENTS = (a.clients ?? '1,16').split(',').map(Number);
const BATCHES = (a.batches ?? '1,16').split(',').map(Number);
const K = Number(a.k ?? 10);
const DECODE_THREADS = Number(a['decode-threads'] ?? Math.min(8, Math.max(0, availableParallelism() - 1)));
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

const sketchList = listGallery(sketchDir); // the images under it, as `index` lists a gallery
const sketchFiles = sketchList.paths.map((p) => join(sketchList.root, p));
if (sketchFiles.length === 0) throw new Error(`no sketches under ${sketchDir}`);
const bodies = Array.from({ length: NQ }, (_, i) => readFileSync(sketchFiles[i % sketchFiles.length]!));

const m0 = await SketchGPU.load({ weights });
const adapter = m0.info.adapter;
log(`indexing ${galleryDir} on ${adapter}`);
const sgi = join(mkdtempSync(join(tmpdir(), 'sketchgpu-bench-serve-')), 'g.sgi');
await buildIndex({ model: m0.model, identity: identityOf(m0), encoder: galleryEncoder(m0), weightsPath: weights, input: galleryDir, out: sgi, dtype: 'f32', rnCache: !!a.rerank });
await m0.dispose();
const index = parseIndex(readFileSync(sgi), sgi);
const query = `k=${K}${a.rerank ? '&rerank=rn' : ''}`;

type Hit = { id: string; score: number };
let decodeOnWorkers = false;
const reference = new Map<number, Hit[]>();

interface Row { max_batch: number; clients: number; queries: number; qps: number; p50_ms: number; p95_ms: number; mean_batch: number; wrong: number }
const rows: Row[] = [];
for (const maxBatch of BATCHES) {
  const service = new SearchService({ model: await SketchGPU.load({ weights }), index, maxBatch, maxQueue: 4096, decodeThreads: DECODE_THREADS });
  decodeOnWorkers = service.decodesOnWorkers;
  const s = await startSearchServer(service, { port: 0 });
  const ask = async (i: number) => {
    const t0 = performance.now();
    const r = await fetch(`${s.url}/search?${query}`, { method: 'POST', body: bodies[i]!, headers: { 'Content-Type': 'image/png' } });
    const j = await r.json() as { hits: Hit[]; batch: number; error?: { message: string } };
    if (r.status !== 200) throw new Error(`query ${i}: ${r.status} ${j.error?.message}`);
    return { ms: performance.now() - t0, hits: j.hits, batch: j.batch };
  };
  try {
    for (let i = 0; i < Math.min(NQ, sketchFiles.length); i++) if (!reference.has(i)) reference.set(i, (await ask(i)).hits);
    await ask(0); // warm
    for (const clients of CLIENTS) {
      const lat: number[] = [], batch: number[] = [];
      let wrong = 0, next = 0;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: clients }, async () => {
        for (let i = next++; i < NQ; i = next++) {
          const r = await ask(i);
          lat.push(r.ms);
          batch.push(r.batch);
          const ref = reference.get(i % sketchFiles.length)!;
          if (r.hits.length !== ref.length || r.hits.some((h, j) => h.id !== ref[j]!.id || Math.abs(h.score - ref[j]!.score) > 1e-5)) wrong++;
        }
      }));
      const sec = (performance.now() - t0) / 1000;
      lat.sort((x, y) => x - y);
      const row = { max_batch: maxBatch, clients, queries: NQ, qps: NQ / sec, p50_ms: lat[Math.floor(lat.length / 2)]!, p95_ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.95))]!, mean_batch: batch.reduce((x, y) => x + y, 0) / batch.length, wrong };
      rows.push(row);
      log(`max batch ${maxBatch}, ${clients} clients: ${row.qps.toFixed(1)} q/s, p50 ${row.p50_ms.toFixed(0)} ms, mean batch ${row.mean_batch.toFixed(1)}${wrong ? `, ${wrong} WRONG` : ''}`);
    }
  } finally {
    await s.close();
  }
}
const ratios: Record<string, number> = {};
const lo = Math.min(...BATCHES), hi = Math.max(...BATCHES);
for (const c of CLIENTS) {
  const one = rows.find((r) => r.max_batch === lo && r.clients === c), many = rows.find((r) => r.max_batch === hi && r.clients === c);
  if (one && many && lo !== hi) ratios[`qps_batch${hi}_vs_batch${lo}_clients${c}`] = many.qps / one.qps;
}
const result = { bench: 'serve', adapter, decode_threads: decodeOnWorkers ? DECODE_THREADS : 0, model: a.weights ? weights : model, gallery: galleryDir, photos: index.paths.length, k: K, rerank: !!a.rerank, rows, ratios, wrong: rows.reduce((x, r) => x + r.wrong, 0) };
if (a.out) writeFileSync(a.out, JSON.stringify(result, null, 2));
if (a.json) console.log(JSON.stringify(result));
else {
  console.log(`search server (sketches decoded on ${decodeOnWorkers ? `${DECODE_THREADS} thread${DECODE_THREADS > 1 ? 's' : ''}` : 'the main thread'}), ${a.weights ? weights : model === 'vitb' ? 'ViT-B/16 (random weights)' : 'shipped weights'}, ${index.paths.length} photos, k ${K}${a.rerank ? ', RN re-rank' : ''}, on ${adapter}`);
  console.table(rows.map((r) => ({ 'max batch': r.max_batch, clients: r.clients, 'q/s': Number(r.qps.toFixed(2)), 'p50 ms': Math.round(r.p50_ms), 'p95 ms': Math.round(r.p95_ms), 'mean batch': Number(r.mean_batch.toFixed(1)), wrong: r.wrong })));
  for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}x`);
}
process.exitCode = result.wrong ? 1 : 0;
