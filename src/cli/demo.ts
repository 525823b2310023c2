import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGpu } from '../gpu/node.ts';
import { loadWeights } from '../io/weights.ts';
import { ZseModel } from '../models/zse/model.ts';
import { loadInputs } from './inputs.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The quick-start demo. No trained weights exist yet (issue 4 will ship them), so this runs the whole
 * pipeline — decode, reference preprocessing, SA embeddings on the GPU, cosine ranking, RN scores — with the
 * small random-weight test model, and says so. Images come from ../shared/data (real Sketchy) when present.
 */
export async function runDemo(o: { json: boolean }): Promise<void> {
  const weightsPath = join(ROOT, 'test', 'fixtures', 'zse', 'tiny224.weights.safetensors');
  const data = resolve(ROOT, '..', 'shared', 'data', 'sketchy', 'unseen21-256');
  const pick = (dir: string, n: number) => readdirSync(dir).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort().slice(0, n).map((f) => join(dir, f));
  let sketches: string[] = [];
  let photos: string[] = [];
  if (existsSync(data)) {
    for (const cls of ['giraffe', 'windmill', 'cabin']) {
      sketches.push(...pick(join(data, 'sketch', cls), 1));
      photos.push(...pick(join(data, 'photo', cls), 2));
    }
  } else {
    const fx = join(ROOT, 'test', 'fixtures', 'preprocess');
    sketches = pick(fx, 40).filter((f) => /sketch|ink/i.test(f)).slice(0, 2);
    photos = pick(fx, 40).filter((f) => /\.jpe?g$/i.test(f)).slice(0, 4);
  }
  const w = await loadWeights(weightsPath);
  const ctx = await nodeGpu();
  const model = ZseModel.create(ctx, w.config, w.tensors);
  const t0 = performance.now();
  const sk = await loadInputs(sketches, 'sketch', w.config.imageSize);
  const im = await loadInputs(photos, 'photo', w.config.imageSize);
  const es = await model.encode(sk.data, sk.n, { tokens: true });
  const ei = await model.encode(im.data, im.n, { tokens: true });
  const pairs = new Uint32Array(2 * sk.n * im.n);
  for (let s = 0; s < sk.n; s++) for (let j = 0; j < im.n; j++) pairs.set([s, j], 2 * (s * im.n + j));
  const rn = await model.relation(es.tokens!, sk.n, ei.tokens!, im.n, pairs);
  const ms = performance.now() - t0;
  const D = w.config.dim;
  const results = sk.names.map((s, i) => ({
    sketch: relative(process.cwd(), s),
    ranking: im.names.map((p, j) => {
      let c = 0;
      for (let d = 0; d < D; d++) c += es.emb[i * D + d]! * ei.emb[j * D + d]!;
      return { photo: relative(process.cwd(), p), cosine: c, rn: rn[i * im.n + j]! };
    }).sort((a, b) => b.cosine - a.cosine),
  }));
  if (o.json) {
    console.log(JSON.stringify({ adapter: ctx.adapterName, weights: 'random tiny test model (no trained weights yet)', ms, results }));
  } else {
    console.log(`sketchgpu demo on ${ctx.adapterName}`);
    console.log('weights: the random-weight tiny test model (no trained weights ship yet), so rankings are chance-level;');
    console.log('this shows the pipeline end to end: decode, reference preprocessing, SA on the GPU, cosine ranking, RN.\n');
    for (const r of results) {
      console.log(`sketch ${r.sketch}`);
      for (const x of r.ranking) console.log(`  cos ${x.cosine.toFixed(4)}  rn ${x.rn.toFixed(4)}  ${x.photo}`);
    }
    console.log(`\n${sk.n} sketches x ${im.n} photos in ${ms.toFixed(0)} ms`);
  }
  await model.destroy();
  ctx.destroy();
}
