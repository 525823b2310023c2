// The f16 precision option's accuracy on a benchmark folder (the speed issue's bar: embeddings within cosine 0.999
// of fp32, no top-10 result changed):
//
//   node --import tsx --import ./test/hooks.mjs tools/checks/check_f16.ts WEIGHTS [DATA_ROOT]   (default ../shared/data/sketchy/unseen21-256)
//
// Embeds every sketch and photo twice with the same weights, precision f32 and f16 (GEMM operands rounded to
// binary16, f32 accumulation), and prints one JSON line: the min and mean cosine between each image's two
// embeddings, how many sketches' cosine top-10 photos changed (as a set, and in order), and mAP@all in both. For
// scale, the same numbers for a third run in f32 whose GEMMs all use the scalar tiled kernel instead of the default
// one (the same arithmetic in another summation order): near-ties in a ranking flip on any rounding change.
// Exit code 1 when the min cosine is below 0.999 or a top-10 set changed.
import { resolve } from 'node:path';
import { nodeGpu } from '../../src/graph/node-gpu.ts';
import { loadModelWeights } from '../../src/models/load-file.ts';
import { CaanModel } from '../../src/models/caan/model.ts';
import { ZseModel } from '../../src/models/zse/model.ts';
import { listDataset } from '../../src/retrieval/eval.ts';
import { encodeFiles } from '../../src/retrieval/files.ts';
import { evaluateScores, rankRow } from '../../src/retrieval/metrics.ts';
import { asRetrievalModel, type RetrievalModel } from '../../src/retrieval/model.ts';
import type { GemmTuner } from '../../src/gpu/device.ts';

const [weightsPath, root = resolve(import.meta.dirname, '..', '..', '..', 'shared', 'data', 'sketchy', 'unseen21-256')] = process.argv.slice(2);
if (!weightsPath) {
  console.error('usage: tools/checks/check_f16.ts WEIGHTS [DATA_ROOT]');
  process.exit(2);
}
const w = await loadModelWeights(weightsPath);
const ctx = await nodeGpu();
const tiledEverywhere: GemmTuner = { pick: () => 'tiled', tune: async () => false };
const open = (run: 'f32' | 'f16' | 'f32_tiled'): RetrievalModel => {
  const c = run === 'f32_tiled' ? { ...ctx, gemmTuner: tiledEverywhere } : ctx;
  const precision = run === 'f16' ? 'f16' : 'f32';
  return asRetrievalModel(w.kind === 'caan'
    ? CaanModel.create(c, w.weights.config, w.weights.tensors, { precision })
    : ZseModel.create(c, w.weights.config, w.weights.tensors, { precision }));
};
const data = listDataset(root);
const out: Record<string, unknown> = { weights: weightsPath, model: w.kind, data: root, adapter: ctx.adapterName };
const emb: Record<string, { sk: Float32Array; im: Float32Array }> = {};
for (const run of ['f32', 'f16', 'f32_tiled'] as const) {
  const m = open(run);
  const t0 = performance.now();
  emb[run] = { sk: (await encodeFiles(m, data.sketches.files, 'sketch')).emb, im: (await encodeFiles(m, data.photos.files, 'photo')).emb };
  out[`${run}_embed_s`] = Math.round(performance.now() - t0) / 1000;
  await m.destroy();
}
const D = emb.f32!.sk.length / data.sketches.files.length;
const ns = data.sketches.files.length, np = data.photos.files.length;
const scores = (e: { sk: Float32Array; im: Float32Array }) => {
  const s = new Float32Array(ns * np);
  for (let i = 0; i < ns; i++) for (let j = 0; j < np; j++) {
    let c = 0;
    for (let d = 0; d < D; d++) c += e.sk[i * D + d]! * e.im[j * D + d]!;
    s[i * np + j] = c;
  }
  return s;
};
const s32 = scores(emb.f32!);
/** How run `r` differs from the default f32 run. */
function compare(r: 'f16' | 'f32_tiled') {
  let minCos = 1, sumCos = 0, n = 0;
  for (const k of ['sk', 'im'] as const) {
    const a = emb.f32![k], b = emb[r]![k];
    for (let i = 0; i < a.length / D; i++) {
      let c = 0;
      for (let d = 0; d < D; d++) c += a[i * D + d]! * b[i * D + d]!; // unit vectors
      minCos = Math.min(minCos, c);
      sumCos += c;
      n++;
    }
  }
  const s = scores(emb[r]!);
  let setChanged = 0, orderChanged = 0;
  const margins: number[] = [];
  for (let i = 0; i < ns; i++) {
    const row = s32.subarray(i * np, (i + 1) * np);
    const ranked = rankRow(row);
    const a = Array.from(ranked.slice(0, 10));
    const b = Array.from(rankRow(s.subarray(i * np, (i + 1) * np)).slice(0, 10));
    if (a.join() !== b.join()) orderChanged++;
    if ([...a].sort().join() !== [...b].sort().join()) {
      setChanged++;
      margins.push(row[ranked[9]!]! - row[ranked[10]!]!); // the f32 gap between the 10th and 11th photo
    }
  }
  return { images: n, min_cosine: minCos, mean_cosine: sumCos / n, top10_set_changed: setChanged, top10_order_changed: orderChanged, top10_set_changed_f32_margins: margins, map_all: evaluateScores(s, data.sketches.labels, data.photos.labels).map_all };
}
Object.assign(out, { sketches: ns, map_all_f32: evaluateScores(s32, data.sketches.labels, data.photos.labels).map_all, f16: compare('f16'), f32_tiled: compare('f32_tiled') });
console.log(JSON.stringify(out));
ctx.destroy();
const f16r = out.f16 as { min_cosine: number; top10_set_changed: number };
process.exitCode = f16r.min_cosine < 0.999 || f16r.top10_set_changed > 0 ? 1 : 0;
