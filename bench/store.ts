// Gallery stores at scale (issue 18, docs/vector-store.md): a synthetic gallery of unit vectors (clustered, with
// planted near neighbours of every query) at several sizes, and for each size:
//   build: writing the .sgi file, inserting into a LanceDB table (the store's merge-insert path), IVF-PQ training;
//   query latency (one query at a time, median): flat on the GPU (GallerySearch, what `query` runs on an .sgi index),
//   flat on the CPU (a plain JS scan), LanceDB's own exhaustive scan, LanceDB ANN (IVF-PQ, --candidates per query)
//   followed by the exact GPU re-scoring of the candidates (what `query --ann` runs);
//   recall@10 of the ANN path against the exact top 10, and of the planted neighbours.
// Usage: node --import tsx --import ./test/hooks.mjs bench/store.ts [--sizes 10000,100000,1000000] [--dim 768]
//   [--queries 20] [--candidates 200] [--nprobes 20] [--json] [--out bench/results/store.json] [--keep <dir>]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeGpu } from '../src/graph/node-gpu.ts';
import { serializeIndex, type GalleryIndex, type ModelIdentity } from '../src/retrieval/index-format.ts';
import { GallerySearch } from '../src/retrieval/search.ts';
import { LanceGallery, LANCE_VERSION } from '../src/retrieval/store/lance.ts';
import { ZSE_VIT_B16 } from '../src/models/zse/config.ts';

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string' }, dim: { type: 'string' }, queries: { type: 'string' }, candidates: { type: 'string' },
    nprobes: { type: 'string' }, partitions: { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' }, keep: { type: 'string' },
    'skip-sgi': { type: 'boolean' }, 'lance-scan-max': { type: 'string' },
  },
});
const sizes = (a.sizes ?? '10000,100000,1000000').split(',').map(Number);
const D = Number(a.dim ?? ZSE_VIT_B16.dim);
const NQ = Number(a.queries ?? 20);
const C = Number(a.candidates ?? 200);
const NPROBES = Number(a.nprobes ?? 20);
const LANCE_SCAN_MAX = Number(a['lance-scan-max'] ?? 1e9);
const K = 10;
const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

/** A deterministic PRNG (mulberry32) and standard normals (Box-Muller). */
function rng(seed: number) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
}

function normalize(v: Float32Array, off: number, d: number) {
  let s = 0;
  for (let k = 0; k < d; k++) s += v[off + k]! * v[off + k]!;
  const inv = 1 / Math.sqrt(s);
  for (let k = 0; k < d; k++) v[off + k]! *= inv;
}

/**
 * n unit vectors around 1,024 cluster centres (noise 1.2x the centre's scale per dimension, so clusters overlap
 * as real embeddings of many classes do), and NQ queries; for each query, PLANT rows are placed at decreasing
 * distances from it (cosine about 0.95 down to 0.6): the planted near neighbours.
 */
const PLANT = 10;
function synth(n: number) {
  const g = rng(12345);
  const centres = new Float32Array(1024 * D);
  for (let i = 0; i < centres.length; i++) centres[i] = g();
  for (let c = 0; c < 1024; c++) normalize(centres, c * D, D);
  const emb = new Float32Array(n * D);
  const sd = 1.2 / Math.sqrt(D);
  for (let r = 0; r < n; r++) {
    const c = Math.floor((((r * 2654435761) >>> 0) / 4294967296) * 1024);
    for (let k = 0; k < D; k++) emb[r * D + k] = centres[c * D + k]! + sd * g();
    normalize(emb, r * D, D);
  }
  const queries = new Float32Array(NQ * D);
  const planted: number[][] = [];
  for (let q = 0; q < NQ; q++) {
    const c = (q * 37) % 1024;
    for (let k = 0; k < D; k++) queries[q * D + k] = centres[c * D + k]! + sd * g();
    normalize(queries, q * D, D);
    const rows: number[] = [];
    for (let p = 0; p < PLANT; p++) {
      const r = (q * 7919 * PLANT + p * 104729 + 17) % n;
      const noise = (0.35 + 0.1 * p) / Math.sqrt(D);
      for (let k = 0; k < D; k++) emb[r * D + k] = queries[q * D + k]! + noise * g();
      normalize(emb, r * D, D);
      rows.push(r);
    }
    planted.push(rows);
  }
  return { emb, queries, planted };
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const recall = (got: number[], want: number[]) => want.filter((w) => got.includes(w)).length / want.length;

function cpuTopK(emb: Float32Array, n: number, q: Float32Array): number[] {
  const best: [number, number][] = [];
  for (let r = 0; r < n; r++) {
    let s = 0;
    const o = r * D;
    for (let k = 0; k < D; k++) s += emb[o + k]! * q[k]!;
    if (best.length < K || s > best[K - 1]![0]) {
      best.push([s, r]);
      best.sort((x, y) => y[0] - x[0] || x[1] - y[1]);
      if (best.length > K) best.pop();
    }
  }
  return best.map((b) => b[1]);
}

const identity: ModelIdentity = { family: 'zse-sbir', weights_sha256: '0'.repeat(64), config: { ...ZSE_VIT_B16, dim: D } };
const pathOf = (r: number) => `g/${String(r).padStart(8, '0')}.jpg`;

async function main() {
  const ctx = await nodeGpu({});
  const work = a.keep ?? mkdtempSync(join(tmpdir(), 'sketchgpu-bench-store-'));
  mkdirSync(work, { recursive: true });
  log(`adapter ${ctx.adapterName}; dim ${D}; sizes ${sizes.join(', ')}; ${NQ} queries; work dir ${work}`);
  const rows: Record<string, unknown>[] = [];
  for (const n of sizes) {
    const r: Record<string, unknown> = { n, dim: D };
    log(`n=${n}: generating`);
    const { emb, queries, planted } = synth(n);
    // Exact ground truth (GPU), and flat GPU latency: upload once, then one query at a time.
    let t = performance.now();
    const search = GallerySearch.create(ctx, emb, n, D);
    r['gpu_upload_s'] = (performance.now() - t) / 1000;
    const exact: number[][] = [];
    const gpuMs: number[] = [];
    await search.search(queries.subarray(0, D), 1, K); // pipeline compile
    for (let q = 0; q < NQ; q++) {
      t = performance.now();
      const h = await search.search(queries.subarray(q * D, (q + 1) * D), 1, K);
      gpuMs.push(performance.now() - t);
      exact.push(h[0]!.map((x) => x.index));
    }
    search.destroy();
    r['flat_gpu_ms'] = median(gpuMs);
    r['planted_in_exact_top10'] = planted.reduce((s, p, q) => s + recall(exact[q]!, p), 0) / NQ;
    log(`n=${n}: flat GPU ${r['flat_gpu_ms']} ms`);
    const cpuMs: number[] = [];
    for (let q = 0; q < Math.min(NQ, 5); q++) {
      t = performance.now();
      const top = cpuTopK(emb, n, queries.subarray(q * D, (q + 1) * D));
      cpuMs.push(performance.now() - t);
      if (top.join() !== exact[q]!.join()) r['cpu_gpu_top10_differ'] = ((r['cpu_gpu_top10_differ'] as number) ?? 0) + 1;
    }
    r['flat_cpu_ms'] = median(cpuMs);
    log(`n=${n}: flat CPU ${r['flat_cpu_ms']} ms`);
    const paths = Array.from({ length: n }, (_, i) => pathOf(i));
    if (!a['skip-sgi']) {
      t = performance.now();
      const ix: GalleryIndex = { model: identity, weightsPath: '', root: '/', paths, dim: D, dtype: 'f32', embeddings: emb, skipped: [], created: '' };
      const bytes = serializeIndex(ix);
      writeFileSync(join(work, `g${n}.sgi`), bytes);
      r['sgi_write_s'] = (performance.now() - t) / 1000;
      r['sgi_bytes'] = bytes.length;
      rmSync(join(work, `g${n}.sgi`));
    }
    // LanceDB: the store's insert path, in commits of 100,000 rows.
    const uri = join(work, `g${n}.lancedb`);
    rmSync(uri, { recursive: true, force: true });
    t = performance.now();
    const g = await LanceGallery.openForWrite(uri, { model: identity, weightsPath: '', root: '/', dim: D, dtype: 'f32', tokens: 0, planes: 0 });
    const STEP = 100_000;
    for (let s = 0; s < n; s += STEP) {
      const batch = [];
      for (let i = s; i < Math.min(n, s + STEP); i++) batch.push({ path: paths[i]!, payload: emb.subarray(i * D, (i + 1) * D) });
      await g.insert(batch);
    }
    r['lance_insert_s'] = (performance.now() - t) / 1000;
    log(`n=${n}: LanceDB insert ${r['lance_insert_s']} s`);
    const row = new Map(paths.map((p, i) => [p, i]));
    if (n <= LANCE_SCAN_MAX) {
      const scanMs: number[] = [];
      for (let q = 0; q < Math.min(NQ, 5); q++) {
        t = performance.now();
        const c = await g.candidates(queries.subarray(q * D, (q + 1) * D), 1, K);
        scanMs.push(performance.now() - t);
        void c;
      }
      r['lance_scan_ms'] = median(scanMs);
      log(`n=${n}: LanceDB exhaustive scan ${r['lance_scan_ms']} ms`);
    }
    t = performance.now();
    await g.optimize();
    r['lance_compact_s'] = (performance.now() - t) / 1000;
    t = performance.now();
    // sqrt(n) partitions, at most 256: k-means training time grows with partitions x samples, and 2 CPU cores train slowly.
    const partitions = a.partitions ? Number(a.partitions) : Math.max(1, Math.min(256, Math.round(Math.sqrt(n))));
    await g.buildAnnIndex({ partitions, subVectors: D / 16 });
    r['ivfpq_build_s'] = (performance.now() - t) / 1000;
    r['ivf_partitions'] = partitions;
    r['pq_sub_vectors'] = D / 16;
    log(`n=${n}: IVF-PQ ${r['ivfpq_build_s']} s`);
    // ANN + exact GPU re-scoring, one query at a time.
    const annMs: number[] = [], candMs: number[] = [];
    let rec = 0, recPlanted = 0, scoreErr = 0;
    for (let q = -1; q < NQ; q++) {
      const qq = queries.subarray(Math.max(q, 0) * D, (Math.max(q, 0) + 1) * D);
      const t0 = performance.now();
      const cand = await g.candidates(qq, 1, C, { nprobes: NPROBES });
      const t1 = performance.now();
      const s = GallerySearch.create(ctx, cand.embeddings, cand.paths.length, D);
      const h = (await s.search(qq, 1, K))[0]!;
      s.destroy();
      const t2 = performance.now();
      if (q < 0) continue; // warm-up
      annMs.push(t2 - t0);
      candMs.push(t1 - t0);
      const got = h.map((x) => row.get(cand.paths[x.index]!)!);
      rec += recall(got, exact[q]!);
      recPlanted += recall(got, planted[q]!);
      h.forEach((x, i) => {
        let e = 0;
        for (let k = 0; k < D; k++) e += emb[got[i]! * D + k]! * qq[k]!;
        scoreErr = Math.max(scoreErr, Math.abs(e - x.score));
      });
    }
    g.close();
    Object.assign(r, {
      ann_gpu_ms: median(annMs), ann_candidates_ms: median(candMs), recall_at_10: rec / NQ, planted_recall_at_10: recPlanted / NQ,
      ann_max_score_error: scoreErr, candidates: C, nprobes: NPROBES,
    });
    log(`n=${n}: ANN+GPU ${r['ann_gpu_ms']} ms, recall@10 ${r['recall_at_10']}`);
    if (!a.keep) rmSync(uri, { recursive: true, force: true });
    rows.push(r);
  }
  const crossover = rows.find((r) => (r['ann_gpu_ms'] as number) < (r['flat_gpu_ms'] as number));
  const out = {
    bench: 'store', adapter: ctx.adapterName, lancedb: LANCE_VERSION, dim: D, queries: NQ, k: K, candidates: C, nprobes: NPROBES,
    note: 'latencies are medians of one query at a time; flat_gpu excludes the one-time upload (gpu_upload_s); ann_gpu includes LanceDB candidates + upload of the candidates + GPU top-k',
    crossover_n: crossover ? crossover['n'] : null, rows,
  };
  if (a.out) {
    mkdirSync(dirname(a.out), { recursive: true });
    writeFileSync(a.out, JSON.stringify(out, null, 1));
  }
  if (a.json) console.log(JSON.stringify(out));
  else {
    console.log(`store bench on ${ctx.adapterName}, dim ${D}, ${NQ} queries, k ${K}, ANN: ${C} candidates, nprobes ${NPROBES}`);
    console.log('| n | flat GPU ms | flat CPU ms | LanceDB scan ms | ANN+GPU ms | recall@10 | planted recall@10 | .sgi write s | LanceDB insert s | IVF-PQ build s |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    const f = (x: unknown, d = 1) => (typeof x === 'number' ? x.toFixed(d) : '-');
    for (const r of rows) {
      console.log(`| ${r['n']} | ${f(r['flat_gpu_ms'])} | ${f(r['flat_cpu_ms'])} | ${f(r['lance_scan_ms'])} | ${f(r['ann_gpu_ms'])} | ${f(r['recall_at_10'], 3)} | ${f(r['planted_recall_at_10'], 3)} | ${f(r['sgi_write_s'])} | ${f(r['lance_insert_s'])} | ${f(r['ivfpq_build_s'])} |`);
    }
    console.log(`crossover (ANN+GPU faster than flat GPU): ${crossover ? `n = ${crossover['n']}` : 'not reached at these sizes'}`);
  }
  ctx.destroy();
}

await main();
