import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RERANK_OFFSET } from '../retrieval/eval.ts';
import { evaluateScores } from '../retrieval/metrics.ts';
import { renderResultSheet } from '../retrieval/html.ts';
import { checkIndexHead, INDEX_FORMAT, parseIndex } from '../retrieval/index-format.ts';
import { readBoundedFileSync } from '../io/read-file.ts';
import { buildIndex } from '../retrieval/indexer.ts';
import { runQuery } from '../retrieval/query.ts';
import { galleryEncoder, identityOf, loadModel, queryEncoder } from './engine.ts';
import { progressBar } from './progress.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The bundled demo weights (issue 4), and the random test model used when they are absent. */
export const DEMO_WEIGHTS = join(ROOT, 'weights', 'zse-sketchy104-small.safetensors');
export const FALLBACK_WEIGHTS = join(ROOT, 'test', 'fixtures', 'zse', 'tiny224.weights.safetensors');
export const SAMPLE = join(ROOT, 'web', 'sample');

/**
 * The quick-start demo: index the bundled sample gallery (84 photos of 21 classes the model never saw in training),
 * query it with the 21 bundled sketches, re-rank with the relation network, print the top results and the
 * zero-shot metrics over the sample, and write an HTML sheet.
 */
export async function runDemo(o: { json: boolean; weights?: string; out?: string; k?: number }): Promise<void> {
  const trained = !o.weights && existsSync(DEMO_WEIGHTS);
  const weightsPath = o.weights ?? (trained ? DEMO_WEIGHTS : FALLBACK_WEIGHTS);
  const m = await loadModel(weightsPath, { only: 'zse-sbir' });
  const model = m.model, identity = identityOf(m), adapter = m.info.adapter;
  const hash = m.info.weightsSha256;
  const hasHead = m.info.hasRelation;
  const say = (s: string) => { if (!o.json) console.log(s); };
  try {
    say(`sketchgpu demo on ${adapter}`);
    say(trained || o.weights ? `weights: ${relative(process.cwd(), weightsPath)}` : 'weights: the random-weight tiny test model (weights/zse-sketchy104-small.safetensors is missing), so results are chance-level');
    // The sample's index is cached per user (not in the package folder, which may be read-only or node_modules).
    const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sketchgpu', 'demo');
    mkdirSync(cacheDir, { recursive: true });
    const indexPath = join(cacheDir, `sample-${hash.slice(0, 16)}-v${INDEX_FORMAT}.sgi`);
    const t0 = performance.now();
    if (!existsSync(indexPath)) {
      const bar = progressBar('indexing the sample gallery', 'img');
      await buildIndex({
        model, identity, encoder: galleryEncoder(m), weightsPath, input: join(SAMPLE, 'photo'), out: indexPath,
        rnCache: hasHead, onStart: (n, d) => bar.start(n, d), onProgress: (d) => bar.update(d),
      });
      bar.stop();
    }
    const index = parseIndex(readBoundedFileSync(indexPath, 'index', undefined, (h, size) => checkIndexHead(h, size, indexPath)), indexPath);
    const tIndex = performance.now() - t0;
    const sketches = readdirSync(join(SAMPLE, 'sketch')).sort().flatMap((c) => readdirSync(join(SAMPLE, 'sketch', c)).sort().map((f) => join(SAMPLE, 'sketch', c, f)));
    const k = o.k ?? 5;
    const K = Math.max(k, 20);
    const rerank = hasHead ? 'rn' as const : undefined;
    const run = await runQuery({ model, encoder: queryEncoder(m), index, sketches, k: K, rerank, rerankK: K });
    const cls = (p: string) => p.split('/')[0]!;
    const sketchCls = (f: string) => relative(join(SAMPLE, 'sketch'), f).split(/[\\/]/)[0]!;
    const top1 = run.results.filter((r) => cls(r.hits[0]!.path) === sketchCls(r.sketch)).length;
    // Zero-shot metrics over the sample: cosine for every pair; for ret+rn the RN scores of each sketch's top K.
    const ns = sketches.length, np = index.paths.length;
    const cos = await model.cosine(run.sketchEmbeddings, ns, index.embeddings, np);
    const classes = [...new Set(index.paths.map(cls))].sort();
    const gl = index.paths.map((p) => classes.indexOf(cls(p)));
    const ql = sketches.map((f) => classes.indexOf(sketchCls(f)));
    const ev = evaluateScores(cos, ql, gl);
    let evRn;
    if (rerank) {
      const s = cos.map((v) => v - RERANK_OFFSET);
      run.results.forEach((r, i) => r.hits.forEach((h) => { s[i * np + index.paths.indexOf(h.path)] = h.score; }));
      evRn = evaluateScores(s, ql, gl);
    }
    for (const r of run.results) r.hits = r.hits.slice(0, k);
    const out = o.out ?? join(process.cwd(), 'out', 'demo.html');
    mkdirSync(dirname(out), { recursive: true });
    await writeFile(out, renderResultSheet({
      title: `sketchgpu demo: ${sketches.length} sketches of unseen classes against ${index.paths.length} photos`,
      subtitle: `${rerank ? `cosine top ${K} re-ranked by the relation network` : 'cosine'}; weights ${relative(ROOT, weightsPath)}; ${adapter}`,
      results: run.results, rerank: !!rerank,
      classes: { query: (r) => (r.sketch === undefined ? undefined : sketchCls(r.sketch)), hit: cls },
    }));
    const metrics = (m: ReturnType<typeof evaluateScores>) => ({ map_all: m.map_all, map_200: m.map_200, precision_100: m.precision_100, precision_200: m.precision_200 });
    if (o.json) {
      console.log(JSON.stringify({
        adapter, weights: relative(ROOT, weightsPath), trained_weights: trained || !!o.weights, gallery: index.paths.length,
        top1_class_accuracy: top1 / sketches.length, ret: metrics(ev), ...(evRn ? { 'ret+rn': metrics(evRn) } : {}),
        timings_ms: { index: tIndex, ...run.timings_ms }, html: out,
        results: run.results.map((r) => ({ sketch: relative(ROOT, r.sketch), hits: r.hits.map((h) => ({ path: h.path, score: h.score, cosine: h.cosine, rn: h.rn })) })),
      }));
      return;
    }
    say(`gallery: ${index.paths.length} photos of 21 classes unseen in training (web/sample), ${sketches.length} sketch queries\n`);
    for (const r of run.results) {
      const want = sketchCls(r.sketch);
      say(`${want.padEnd(14)} ${r.hits.map((h) => `${cls(h.path) === want ? '*' : ' '}${cls(h.path)} ${h.score.toFixed(3)}`).join('  ')}`);
    }
    say(`\n(* = same class) top-1 class accuracy ${top1}/${sketches.length}; chance is 1/21`);
    say(`zero-shot metrics over the sample: ret mAP@all ${ev.map_all.toFixed(3)}${evRn ? `, ret+rn (K=${K}) mAP@all ${evRn.map_all.toFixed(3)}` : ''} (chance: about 0.10)`);
    say(`times: index ${(tIndex / 1000).toFixed(1)} s${tIndex < 200 ? ' (cached)' : ''}, queries ${run.timings_ms.total.toFixed(0)} ms for ${sketches.length} sketches (embed ${run.timings_ms.embed.toFixed(0)}, search ${run.timings_ms.search.toFixed(0)}, re-rank ${run.timings_ms.rerank.toFixed(0)})`);
    say(`wrote ${relative(process.cwd(), out)} (open it in a browser)`);
  } finally {
    await m.dispose();
  }
}
