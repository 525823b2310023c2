/** The retrieval commands: index, query, eval. */
import { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { SketchError } from '../errors.ts';
import { nodeGpu } from '../gpu/node.ts';
import { writeNpy } from '../io/npy.ts';
import { loadWeights, weightsHash } from '../io/weights.ts';
import { ZseModel } from '../models/zse/model.ts';
import { listDataset, runEval, type EvalMode } from '../retrieval/eval.ts';
import { renderResultSheet } from '../retrieval/html.ts';
import { checkIndexModel, parseIndex, type ModelIdentity } from '../retrieval/index-format.ts';
import { buildIndex } from '../retrieval/indexer.ts';
import { runQuery } from '../retrieval/query.ts';
import { GallerySearch } from '../retrieval/search.ts';
import { progressBar } from './progress.ts';

type Common = { adapter?: string; saHeads?: number; caHeads?: number };

async function openWeights(path: string, o: Common) {
  const w = await loadWeights(path, { saHeads: o.saHeads, caHeads: o.caHeads });
  const identity: ModelIdentity = { family: 'zse-sbir', weights_sha256: weightsHash(w.tensors), config: w.config };
  const ctx = await nodeGpu({ adapter: o.adapter });
  const model = ZseModel.create(ctx, w.config, w.tensors);
  return { model, ctx, identity };
}

function readIndexFile(path: string) {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SketchError('IO', `cannot read the index ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'Build one with `sketchgpu index <photo dir> -o <file> --weights <w>`.');
  }
  return parseIndex(bytes, path);
}

const posInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new SketchError('BAD_ARGUMENT', `${name} must be a positive integer, not "${v}"`);
  return n;
};

const round = (x: number, d = 6) => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);

export function addRetrievalCommands(program: Command, common: (c: Command) => Command): void {
  common(program.command('index')
    .description('embed a photo collection once into an index file for sketch queries (resumable: rerun the same command after an interruption)')
    .argument('<photos>', 'a folder of photos (searched recursively for .png/.jpg/.jpeg) or a text file listing image paths')
    .requiredOption('-o, --out <file>', 'the index file to write (format: docs/index-format.md)')
    .requiredOption('--weights <file>', 'weights (.safetensors or .pth)')
    .addOption(new Option('--dtype <t>', 'storage type of the embeddings (and cached tokens)').choices(['f32', 'f16']).default('f32'))
    .option('--rn-cache', 'also store each photo\'s SA tokens, so RN re-ranking needs no photo SA at query time (larger file)')
    .option('--batch <n>', 'images per GPU forward (default: as many as fit, up to 32)', posInt('--batch'))
    .option('--update', 'add new photos to an existing index made with the same weights')
    .option('--force', 'overwrite an existing index')
    .option('--json', 'print a JSON summary'))
    .action(async (input: string, o) => {
      const { model, ctx, identity } = await openWeights(o.weights, o);
      const bar = progressBar('indexing', 'img');
      let stop = false;
      const onSigint = () => {
        if (stop) process.exit(130);
        stop = true;
        process.stderr.write('\ninterrupt: finishing the current batch and saving what is done (press Ctrl-C again to quit now)\n');
      };
      process.on('SIGINT', onSigint);
      try {
        const r = await buildIndex({
          model, identity, weightsPath: resolve(o.weights), input, out: o.out, dtype: o.dtype, rnCache: !!o.rnCache, batch: o.batch,
          force: !!o.force, update: !!o.update, shouldStop: () => stop,
          onStart: (total, done) => {
            if (done) process.stderr.write(`resuming: ${done} of ${total} photos already embedded\n`);
            bar.start(total, done);
          },
          onProgress: (done) => bar.update(done),
          onSkip: (p, why) => process.stderr.write(`\nwarning: skipped ${p}: ${why}\n`),
        });
        bar.stop();
        const summary = {
          index: r.out, complete: r.complete, photos: r.total, embedded_now: r.embedded, resumed: r.resumed,
          skipped: r.skipped.length, seconds: round(r.seconds, 2), images_per_s: round(r.embedded / r.seconds, 2), adapter: ctx.adapterName,
        };
        if (o.json) console.log(JSON.stringify({ ...summary, skipped_files: r.skipped }));
        else if (r.complete) {
          console.log(`wrote ${r.out}: ${r.total - r.skipped.length} photos (${r.embedded} embedded now, ${r.resumed} reused) in ${r.seconds.toFixed(1)} s, ${summary.images_per_s} img/s on ${ctx.adapterName}`);
          if (r.skipped.length) console.log(`skipped ${r.skipped.length} unreadable image${r.skipped.length > 1 ? 's' : ''} (listed above)`);
        }
        if (!r.complete) {
          throw new SketchError('INTERRUPTED', `stopped after ${r.resumed + r.embedded} of ${r.total} photos; the finished work is saved in ${r.out}`, 'Run the same command again to resume.');
        }
      } finally {
        bar.stop();
        process.off('SIGINT', onSigint);
        await model.destroy();
        ctx.destroy();
      }
    });

  common(program.command('query')
    .description('find the photos of an index that best match each sketch (cosine top-k on the GPU, optional RN re-rank)')
    .argument('<sketch...>', 'sketch images (PNG/JPEG)')
    .requiredOption('--index <file>', 'an index made by `sketchgpu index`')
    .option('--weights <file>', 'weights (default: the file the index was built with); must be the same weights')
    .option('-k, --k <n>', 'results per sketch', posInt('-k'), 10)
    .addOption(new Option('--rerank <how>', 're-rank the cosine shortlist').choices(['rn']))
    .option('--rerank-k <n>', 'shortlist size for the re-rank', posInt('--rerank-k'), 100)
    .option('--json', 'print JSON')
    .option('--html <file>', 'write an HTML sheet with each sketch and its results as thumbnails'))
    .action(async (sketches: string[], o) => {
      const index = readIndexFile(o.index);
      const weightsPath = o.weights ?? index.weightsPath;
      if (!weightsPath) throw new SketchError('BAD_ARGUMENT', 'the index does not name its weights', 'Pass --weights <file>.');
      if (!o.weights && !existsSync(weightsPath)) {
        throw new SketchError('IO', `the index was built with ${weightsPath}, which no longer exists`, 'Pass the same weights with --weights <file>.');
      }
      if (o.k > GallerySearch.MAX_K || o.rerankK > GallerySearch.MAX_K) throw new SketchError('BAD_ARGUMENT', `-k and --rerank-k are at most ${GallerySearch.MAX_K}`);
      const { model, ctx, identity } = await openWeights(weightsPath, o);
      try {
        checkIndexModel(index, identity.weights_sha256, o.index, weightsPath);
        const run = await runQuery({ model, index, sketches, k: o.k, rerank: o.rerank, rerankK: o.rerankK });
        const mode = o.rerank ? `cosine top ${Math.min(o.rerankK, index.paths.length)}, re-ranked by the relation network` : 'cosine similarity';
        if (o.html) {
          await writeFile(o.html, renderResultSheet({
            title: `sketchgpu query: ${sketches.length} sketch${sketches.length > 1 ? 'es' : ''}, ${index.paths.length} photos`,
            subtitle: `${mode}; weights ${basename(weightsPath)}; ${ctx.adapterName}; ${run.timings_ms.total.toFixed(0)} ms`,
            results: run.results, rerank: !!o.rerank,
          }));
        }
        if (o.json) {
          console.log(JSON.stringify({ index: o.index, weights: weightsPath, adapter: ctx.adapterName, mode: o.rerank ? 'ret+rn' : 'ret', ...run }));
        } else {
          for (const r of run.results) {
            console.log(`${r.sketch}`);
            for (const h of r.hits) console.log(`  ${String(h.rank).padStart(3)}  ${h.score.toFixed(4)}${o.rerank ? `  (cos ${h.cosine.toFixed(4)})` : ''}  ${h.path}`);
          }
          const t = run.timings_ms;
          console.log(`\n${mode}; embed ${t.embed.toFixed(0)} ms, search ${t.search.toFixed(0)} ms${o.rerank ? `, re-rank ${t.rerank.toFixed(0)} ms (photo tokens: ${run.rerank_tokens})` : ''} on ${ctx.adapterName}`);
          if (o.html) console.log(`wrote ${o.html}`);
        }
      } finally {
        await model.destroy();
        ctx.destroy();
      }
    });

  common(program.command('eval')
    .description('zero-shot retrieval metrics (mAP@all, mAP@200, P@100, P@200) exactly as the reference computes them')
    .requiredOption('--data <root>', 'a folder with sketch/<class>/ and photo/<class>/ (e.g. ../shared/data/sketchy/unseen21-256)')
    .requiredOption('--weights <file>', 'weights (.safetensors or .pth)')
    .addOption(new Option('--mode <mode>', 'ret: SA cosine; rn: relation network on every pair; ret+rn: RN re-rank of the cosine top K').choices(['ret', 'rn', 'ret+rn']).default('ret'))
    .option('--rerank-k <n>', 'K for ret+rn', posInt('--rerank-k'), 100)
    .option('--json', 'print JSON')
    .option('--dump-scores <file>', 'write the sketch x photo score matrix (float32 .npy, higher = more similar)'))
    .action(async (o) => {
      const data = listDataset(o.data);
      const { model, ctx, identity } = await openWeights(o.weights, o);
      const bar = progressBar('eval', 'items');
      let stage = '';
      try {
        if (o.mode !== 'ret' && !model.hasHead) {
          throw new SketchError('BAD_WEIGHTS', 'these weights hold only the SA encoder, so only --mode ret is possible', 'Use weights with the CA and RN tensors for rn modes.');
        }
        const r = await runEval(model, data, o.mode as EvalMode, {
          rerankK: o.rerankK,
          onProgress: (p) => {
            if (p.stage !== stage) {
              bar.stop();
              stage = p.stage;
              if (process.stderr.isTTY) process.stderr.write(`${p.stage}\n`);
              bar.start(p.total, 0);
            }
            bar.update(p.done);
          },
        });
        bar.stop();
        if (o.dumpScores) await writeFile(o.dumpScores, writeNpy({ dtype: 'f32', shape: [r.n_sketches, r.n_photos], data: r.scores }));
        const out = {
          map_all: round(r.map_all), map_200: round(r.map_200), precision_100: round(r.precision_100), precision_200: round(r.precision_200),
          mode: r.mode, ...(r.rerank_k ? { rerank_k: r.rerank_k } : {}), n_sketches: r.n_sketches, n_photos: r.n_photos, n_classes: r.n_classes,
          queries_scored: r.queries_scored, rn_pairs: r.rn_pairs,
          timings_s: Object.fromEntries(Object.entries(r.timings_s).map(([k, v]) => [k, round(v, 3)])),
          images_per_s: round((r.n_sketches + r.n_photos) / r.timings_s.embed, 2),
          ...(r.rn_pairs ? { rn_pairs_per_s: round(r.rn_pairs / r.timings_s.score, 1) } : {}),
          weights: o.weights, weights_sha256: identity.weights_sha256, data: o.data, adapter: ctx.adapterName,
          ties: 'broken by the lower photo index (sorted relative path)',
          ...(o.dumpScores ? { scores_file: o.dumpScores } : {}),
        };
        if (o.json) console.log(JSON.stringify(out));
        else {
          console.log(`${o.mode} on ${o.data}: ${r.n_sketches} sketches x ${r.n_photos} photos, ${r.n_classes} classes (${basename(o.weights)}, ${ctx.adapterName})`);
          console.log(`  mAP@all ${out.map_all?.toFixed(4)}   mAP@200 ${out.map_200?.toFixed(4)}   P@100 ${out.precision_100?.toFixed(4)}   P@200 ${out.precision_200?.toFixed(4)}`);
          console.log(`  time: embed ${r.timings_s.embed.toFixed(1)} s (${out.images_per_s} img/s), score ${r.timings_s.score.toFixed(1)} s${r.rn_pairs ? ` (${r.rn_pairs} RN pairs, ${out.rn_pairs_per_s} pairs/s)` : ''}, metrics ${r.timings_s.metrics.toFixed(2)} s`);
          if (o.dumpScores) console.log(`  wrote ${o.dumpScores}: float32 [${r.n_sketches}, ${r.n_photos}]`);
        }
      } finally {
        bar.stop();
        await model.destroy();
        ctx.destroy();
      }
    });
}
