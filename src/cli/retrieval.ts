/** The retrieval commands: index, query, eval, for ZSE-SBIR and CAAN weights (detected from the file). */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { SketchError } from '../core/errors.ts';
import { writeNpy } from '../io/npy.ts';
import { MODEL_CHOICES, MODEL_LABEL } from '../models/load.ts';
import { EVAL_MODES, listDataset, runEval, type EvalMode } from '../retrieval/eval.ts';
import { renderResultSheet } from '../retrieval/html.ts';
import { checkIndexModel } from '../retrieval/index-format.ts';
import { buildIndex } from '../retrieval/indexer.ts';
import { CLASS_PROMPT_TEMPLATE } from '../retrieval/model.ts';
import { runQuery, runTextQuery } from '../retrieval/query.ts';
import { GallerySearch } from '../retrieval/search.ts';
import { bundledWeights } from '../api/node.ts';
import { galleryEncoder, identityOf, loadModel, queryEncoder } from './engine.ts';
import { addAnnOptions, openGalleryForSearch } from './store.ts';
import { buildLanceIndex, parseShard, parseStoreSpec } from '../retrieval/store/store.ts';
import { progressBar } from './progress.ts';

/** --model zse|caan: which model the weights must hold (default: whatever the file holds). */
export const precisionOption = () => new Option('--precision <p>', 'f16: every GEMM (the Linear layers) takes binary16-rounded operands and accumulates in f32, as f16 tensor-core GEMMs do, with Linear weights and the activations GEMMs read stored as binary16 (about half the GPU memory for weights); attention, norms and convolutions compute in f32 (docs/performance.md: accuracy on unseen-21)').choices(['f32', 'f16']).default('f32');
export const modelOption = () => new Option('--model <m>', 'the model the weights must hold (default: detected from the file: CAAN when its metadata says sketchgpu.model = "caan", else ZSE-SBIR)').choices([...MODEL_CHOICES]);

const textWeight = (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new SketchError('BAD_ARGUMENT', `--text-weight must be a number in [0, 1], not "${v}"`, 'e.g. --text-weight 0.5 (0: the sketch alone, 1: the text alone).');
  return n;
};
const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

export const posInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new SketchError('BAD_ARGUMENT', `${name} must be a positive integer, not "${v}"`, `e.g. ${name} 10.`);
  return n;
};

const round = (x: number, d = 6) => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);

export function addRetrievalCommands(program: Command, common: (c: Command) => Command): void {
  common(program.command('index')
    .description('embed a photo collection once into an index file for sketch queries (resumable: rerun the same command after an interruption)')
    .argument('<photos>', 'a folder of photos (searched recursively for .png/.jpg/.jpeg) or a text file listing image paths')
    .option('-o, --out <file>', 'the index file to write (format: docs/index-format.md)')
    .option('--store <spec>', 'where to write instead of -o: an .sgi file, or lancedb:<folder or URI> for a LanceDB table that many processes can fill (docs/vector-store.md)')
    .option('--shard <i/N>', 'with a LanceDB store: embed only shard i of N (by a hash of the relative path), so N processes or machines fill one table')
    .option('--commit-every <n>', 'with a LanceDB store: photos per commit (default 256), the most a crash can lose', posInt('--commit-every'))
    .option('--weights <file>', 'weights (.safetensors or .pth): ZSE-SBIR or CAAN (default: the bundled weights/zse-sketchy104-small.safetensors)')
    .addOption(modelOption())
    .addOption(new Option('--dtype <t>', 'storage type of the embeddings (and cached tokens)').choices(['f32', 'f16']).default('f32'))
    .option('--rn-cache', 'also store each photo\'s tokens (ZSE-SBIR: SA tokens and CA projections; CAAN: projected tokens), so RN re-ranking needs no photo encoding at query time (larger file)')
    .option('--batch <n>', 'images per GPU forward (default: as many as fit, up to 32)', posInt('--batch'))
    .addOption(precisionOption())
    .option('--update', 'add new photos to an existing index made with the same weights')
    .option('--force', 'overwrite an existing index')
    .option('--json', 'print a JSON summary'))
    .action(async (input: string, o) => {
      if (!!o.out === !!o.store) throw new SketchError('BAD_ARGUMENT', o.out ? '-o and --store both name the output' : 'no output given', 'Pass -o <file.sgi>, or --store lancedb:<folder or URI>.');
      const store = o.store ? parseStoreSpec(o.store) : { kind: 'sgi' as const, path: o.out as string };
      if (store.kind === 'sgi') o.out = store.path;
      const shard = o.shard !== undefined ? parseShard(o.shard) : undefined;
      if ((shard || o.commitEvery) && store.kind !== 'lancedb') throw new SketchError('BAD_ARGUMENT', `--${shard ? 'shard' : 'commit-every'} needs a LanceDB store (an .sgi file has one writer and a journal)`, 'Pass --store lancedb:<folder or URI>.');
      if (store.kind === 'lancedb' && (o.update || o.force)) throw new SketchError('BAD_ARGUMENT', `--${o.update ? 'update' : 'force'} applies to .sgi files: a LanceDB table always takes the photos it lacks`, 'Drop it (to start over, use a new location).');
      o.weights ??= bundledWeights('zse');
      const m = await loadModel(o.weights, o);
      const model = m.model, identity = identityOf(m), encoder = galleryEncoder(m), adapter = m.info.adapter;
      const bar = progressBar('indexing', 'img');
      let stop = false;
      const onSigint = () => {
        if (stop) process.exit(130);
        stop = true;
        process.stderr.write('\ninterrupt: finishing the current batch and saving what is done (press Ctrl-C again to quit now)\n');
      };
      process.on('SIGINT', onSigint);
      try {
        const r = store.kind === 'lancedb' ? await buildLanceIndex({
          model, identity, encoder, weightsPath: resolve(o.weights), input, uri: store.uri, dtype: o.dtype, rnCache: !!o.rnCache, batch: o.batch, shard, commitEvery: o.commitEvery, shouldStop: () => stop,
          onStart: (total, done) => {
            if (done) process.stderr.write(`resuming: ${done} of ${total} photos${shard ? ` of shard ${o.shard}` : ''} already in the table\n`);
            bar.start(total, done);
          },
          onProgress: (done) => bar.update(done),
          onSkip: (p, why) => process.stderr.write(`\nwarning: skipped ${p}: ${why}\n`),
        }) : await buildIndex({
          model, identity, encoder, weightsPath: resolve(o.weights), input, out: o.out, dtype: o.dtype, rnCache: !!o.rnCache, batch: o.batch,
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
          skipped: r.skipped.length, seconds: round(r.seconds, 2), images_per_s: round(r.embedded / r.seconds, 2), adapter, precision: o.precision,
          ...('table_rows' in r ? { shard: o.shard ?? '0/1', table_rows: r.table_rows, table_version: (r as unknown as { table_version: number }).table_version } : {}),
        };
        if (o.json) console.log(JSON.stringify({ ...summary, skipped_files: r.skipped }));
        else if (r.complete) {
          console.log(`wrote ${r.out}${'table_rows' in r ? ` (shard ${o.shard ?? '0/1'}; the table now holds ${r.table_rows})` : ''}: ${r.total - r.skipped.length} photos (${r.embedded} embedded now, ${r.resumed} reused) in ${r.seconds.toFixed(1)} s, ${summary.images_per_s} img/s on ${adapter}`);
          if (r.skipped.length) console.log(`skipped ${r.skipped.length} unreadable image${r.skipped.length > 1 ? 's' : ''} (listed above)`);
        }
        if (!r.complete) {
          throw new SketchError('INTERRUPTED', `stopped after ${r.resumed + r.embedded} of ${r.total} photos; the finished work is saved in ${r.out}`, 'Run the same command again to resume.');
        }
      } finally {
        bar.stop();
        process.off('SIGINT', onSigint);
        await m.dispose();
      }
    });

  common(addAnnOptions(program.command('query')
    .description('find the photos of an index that best match each sketch (cosine top-k on the GPU, optional RN re-rank); with CAAN also text queries and sketch+text queries')
    .argument('[sketch...]', 'sketch images (PNG/JPEG); none for a text-only query')
    .requiredOption('--index <file>', 'an index made by `sketchgpu index`: an .sgi file, or lancedb:<folder or URI>')
    .option('--weights <file>', 'weights (default: the file the index was built with); must be the same weights')
    .addOption(modelOption())
    .option('--text <text>', 'a text query (CAAN; repeatable). Alone: text -> photo, one result list per --text. With sketches: a composed sketch+text query, one --text for all sketches or one per sketch', collect)
    .option('--text-weight <w>', 'the text\'s weight w in a composed query: normalise((1 - w)·sketch + w·text) of the unit embeddings (default 0.5)', textWeight)
    .option('-k, --k <n>', 'results per query', posInt('-k'), 10)
    .addOption(new Option('--rerank <how>', 're-rank the cosine shortlist with a local relation score: the sketch-photo relation for sketch (and sketch+text) queries; the text-photo alignment score for text-only queries (CAAN)').choices(['rn']))
    .option('--rerank-k <n>', 'shortlist size for the re-rank', posInt('--rerank-k'), 100)
    .addOption(precisionOption())
    .option('--json', 'print JSON')
    .option('--html <file>', 'write an HTML sheet with each query and its results as thumbnails')))
    .action(async (sketches: string[], o) => {
      const texts: string[] = o.text ?? [];
      if (sketches.length === 0 && texts.length === 0) {
        throw new SketchError('BAD_ARGUMENT', 'nothing to search for: give sketch images, --text "<text>", or both', 'e.g. sketchgpu query sketch.png --index photos.sgi, or sketchgpu query --text "a giraffe" --index photos.sgi');
      }
      if (o.textWeight !== undefined && (texts.length === 0 || sketches.length === 0)) {
        throw new SketchError('BAD_ARGUMENT', '--text-weight weighs the text in a composed sketch+text query, and this query is not one', 'Pass both sketches and --text, or drop --text-weight.');
      }
      if (o.k > GallerySearch.MAX_K || o.rerankK > GallerySearch.MAX_K) throw new SketchError('BAD_ARGUMENT', `-k and --rerank-k are at most ${GallerySearch.MAX_K}`, `Ask for at most ${GallerySearch.MAX_K} results.`);
      const gallery = await openGalleryForSearch(o.index, o);
      const { index, ann } = gallery;
      const nPhotos = gallery.count;
      if (texts.length && index.model.family !== 'caan') {
        throw new SketchError('BAD_ARGUMENT', `text queries need a model with a text tower, and ${o.index} was built with ${MODEL_LABEL[index.model.family]} weights, which have none`,
          'Build an index with CAAN weights (sketchgpu index <photos> -o <file> --weights <caan weights>) and query that.');
      }
      const weightsPath = o.weights ?? index.weightsPath;
      if (!weightsPath) throw new SketchError('BAD_ARGUMENT', 'the index does not name its weights', 'Pass --weights <file>.');
      if (!o.weights && !existsSync(weightsPath)) {
        throw new SketchError('IO', `the index was built with ${weightsPath}, which no longer exists`, 'Pass the same weights with --weights <file>.');
      }
      const m = await loadModel(weightsPath, o);
      const model = m.model, encoder = queryEncoder(m), adapter = m.info.adapter;
      try {
        checkIndexModel(index, m.info.weightsSha256, o.index, weightsPath, m.info.model);
        if (!sketches.length) {
          const { textEmbeddings: _e, ...run } = await runTextQuery({ model, encoder, index, texts, k: o.k, rerank: o.rerank, rerankK: o.rerankK, ann });
          const how = o.rerank ? `text -> photo cosine top ${Math.min(o.rerankK, nPhotos)}, re-ranked by the local text-photo alignment score` : 'text -> photo cosine similarity';
          if (o.html) {
            await writeFile(o.html, renderResultSheet({
              title: `sketchgpu query: ${texts.length} text${texts.length > 1 ? 's' : ''}, ${nPhotos} photos`,
              subtitle: `${how}; weights ${basename(weightsPath)}; ${adapter}; ${run.timings_ms.total.toFixed(0)} ms`,
              results: run.results, rerank: !!o.rerank,
            }));
          }
          if (o.json) console.log(JSON.stringify({ index: o.index, weights: weightsPath, adapter, mode: o.rerank ? 'text+rn' : 'text', ...run }));
          else {
            for (const r of run.results) {
              console.log(JSON.stringify(r.text));
              for (const h of r.hits) console.log(`  ${String(h.rank).padStart(3)}  ${h.score.toFixed(4)}${o.rerank ? `  (cos ${h.cosine.toFixed(4)})` : ''}  ${h.path}`);
            }
            const t = run.timings_ms;
            console.log(`\n${how}${run.ann ? ` (ANN: ${run.ann.per_query} candidates per query, ${run.ann.rows_scored} photos scored exactly)` : ''}; embed ${t.embed.toFixed(0)} ms, search ${t.search.toFixed(0)} ms${o.rerank ? `, re-rank ${t.rerank.toFixed(0)} ms (photo tokens: ${run.rerank_tokens})` : ''} on ${adapter}`);
            if (o.html) console.log(`wrote ${o.html}`);
          }
          return;
        }
        const textWeightUsed = texts.length ? (o.textWeight ?? 0.5) : undefined;
        const { queryEmbeddings: _q, ...run } = await runQuery({ model, encoder, index, sketches, k: o.k, rerank: o.rerank, rerankK: o.rerankK, texts, textWeight: textWeightUsed, ann });
        const composed = texts.length ? `sketch+text queries (text weight ${textWeightUsed}), ` : '';
        const mode = composed + (o.rerank ? `cosine top ${Math.min(o.rerankK, nPhotos)}, re-ranked by the relation network` : 'cosine similarity');
        if (o.html) {
          await writeFile(o.html, renderResultSheet({
            title: `sketchgpu query: ${sketches.length} sketch${sketches.length > 1 ? 'es' : ''}, ${nPhotos} photos`,
            subtitle: `${mode}; weights ${basename(weightsPath)}; ${adapter}; ${run.timings_ms.total.toFixed(0)} ms`,
            results: run.results, rerank: !!o.rerank,
          }));
        }
        if (o.json) {
          const extra = texts.length ? { query: 'sketch+text', text_weight: textWeightUsed } : {};
          // Embeddings as nested arrays, a row per sketch (a Float32Array would print as {"0": ...}).
          const sketchEmbeddings = Array.from({ length: sketches.length }, (_, i) => Array.from(run.sketchEmbeddings.subarray(i * model.dim, (i + 1) * model.dim)));
          console.log(JSON.stringify({ index: o.index, weights: weightsPath, adapter, mode: o.rerank ? 'ret+rn' : 'ret', ...extra, ...run, sketchEmbeddings }));
        } else {
          for (const r of run.results) {
            console.log(r.text === undefined ? `${r.sketch}` : `${r.sketch} + ${JSON.stringify(r.text)}`);
            for (const h of r.hits) console.log(`  ${String(h.rank).padStart(3)}  ${h.score.toFixed(4)}${o.rerank ? `  (cos ${h.cosine.toFixed(4)})` : ''}  ${h.path}`);
          }
          const t = run.timings_ms;
          console.log(`\n${mode}${run.ann ? ` (ANN: ${run.ann.per_query} candidates per query, ${run.ann.rows_scored} photos scored exactly)` : ''}; embed ${t.embed.toFixed(0)} ms, search ${t.search.toFixed(0)} ms${o.rerank ? `, re-rank ${t.rerank.toFixed(0)} ms (photo tokens: ${run.rerank_tokens})` : ''} on ${adapter}`);
          if (o.html) console.log(`wrote ${o.html}`);
        }
      } finally {
        gallery.store.close();
        await m.dispose();
      }
    });

  common(addAnnOptions(program.command('eval')
    .description('zero-shot retrieval metrics (mAP@all, mAP@200, P@100, P@200) exactly as the reference computes them')
    .requiredOption('--data <root>', 'a folder with sketch/<class>/ and photo/<class>/ (e.g. ../shared/data/sketchy/unseen21-256)')
    .requiredOption('--weights <file>', 'weights (.safetensors or .pth): ZSE-SBIR or CAAN')
    .addOption(modelOption())
    .addOption(precisionOption())
    .addOption(new Option('--mode <mode>', `ret: sketch -> photo cosine; rn: relation network on every pair; ret+rn: RN re-rank of the cosine top K; text (CAAN): one query per class, "${CLASS_PROMPT_TEMPLATE}" (_ and - as spaces) -> photo cosine, with per-class metrics; text+rn (CAAN): the text queries' cosine top K re-ranked by the local text-photo alignment score; sketch+text (CAAN): each sketch composed with its own class's prompt (uses the ground-truth class: an upper-bound-style diagnostic)`).choices([...EVAL_MODES]).default('ret'))
    .option('--rerank-k <n>', 'K for ret+rn and text+rn', posInt('--rerank-k'), 100)
    .option('--text-weight <w>', 'sketch+text: the text\'s weight w, normalise((1 - w)·sketch + w·text) (default 0.5)', textWeight)
    .option('--json', 'print JSON')
    .option('--dump-scores <file>', 'write the query x photo score matrix (float32 .npy, higher = more similar; queries are classes in text mode)')
    .option('--index <store>', 'read the photos\' embeddings from a gallery store (.sgi or lancedb:<folder or URI>, built from <root>/photo with these weights) instead of encoding them; modes ret, text, sketch+text')))
    .action(async (o) => {
      const data = listDataset(o.data);
      const fromStore = o.index ? await evalStoreInputs(o.index, data, o) : undefined;
      const m = await loadModel(o.weights, o);
      const model = m.model, identity = identityOf(m), kind = m.info.model, adapter = m.info.adapter;
      if (fromStore) checkIndexModel(fromStore.index, identity.weights_sha256, o.index, o.weights, kind);
      const bar = progressBar('eval', 'items');
      let stage = '';
      try {
        if ((o.mode === 'rn' || o.mode === 'ret+rn') && !model.hasRelation) {
          throw new SketchError('BAD_WEIGHTS', 'these weights hold only the SA encoder, so only --mode ret is possible', 'Use weights with the CA and RN tensors for rn modes.');
        }
        if (o.textWeight !== undefined && o.mode !== 'sketch+text') throw new SketchError('BAD_ARGUMENT', '--text-weight applies to --mode sketch+text only', 'Drop --text-weight, or use --mode sketch+text.');
        const r = await runEval(model, data, o.mode as EvalMode, {
          rerankK: o.rerankK, textWeight: o.textWeight, ...fromStore?.options, encoder: queryEncoder(m),
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
        if (o.dumpScores) await writeFile(o.dumpScores, writeNpy({ dtype: 'f32', shape: [r.n_queries, r.n_photos], data: r.scores }));
        const textMode = r.mode === 'text' || r.mode === 'text+rn' || r.mode === 'sketch+text';
        const out = {
          map_all: round(r.map_all), map_200: round(r.map_200), precision_100: round(r.precision_100), precision_200: round(r.precision_200),
          mode: r.mode, precision: o.precision, ...(r.rerank_k ? { rerank_k: r.rerank_k } : {}),
          ...(textMode ? { model: kind, prompt_template: CLASS_PROMPT_TEMPLATE, n_queries: r.n_queries } : {}),
          ...(r.text_weight !== undefined ? { text_weight: r.text_weight } : {}),
          n_sketches: r.n_sketches, n_photos: r.n_photos, n_classes: r.n_classes,
          queries_scored: r.queries_scored, rn_pairs: r.rn_pairs,
          timings_s: Object.fromEntries(Object.entries(r.timings_s).map(([k, v]) => [k, round(v, 3)])),
          images_per_s: round((r.n_sketches + r.n_photos) / r.timings_s.embed, 2),
          ...(r.rn_pairs ? { rn_pairs_per_s: round(r.rn_pairs / r.timings_s.score, 1) } : {}),
          weights: o.weights, weights_sha256: identity.weights_sha256, data: o.data, adapter,
          ...(fromStore ? { index: o.index, search: fromStore.options.candidates ? `ann (${fromStore.perQuery} candidates per query, re-scored exactly)` : 'exact' } : {}),
          ties: 'broken by the lower photo index (sorted relative path)',
          ...(o.dumpScores ? { scores_file: o.dumpScores } : {}),
          ...(r.per_class ? {
            per_class: r.per_class.map((c) => ({ ...c, ap_all: round(c.ap_all), ap_200: round(c.ap_200), p_100: round(c.p_100), p_200: round(c.p_200) })),
          } : {}),
        };
        if (o.json) console.log(JSON.stringify(out));
        else {
          const queries = r.mode === 'text' || r.mode === 'text+rn' ? `${r.n_queries} class texts ("${CLASS_PROMPT_TEMPLATE}")` : `${r.n_sketches} sketches${r.mode === 'sketch+text' ? ` + their class texts (weight ${r.text_weight})` : ''}`;
          console.log(`${o.mode} on ${o.data}: ${queries} x ${r.n_photos} photos, ${r.n_classes} classes (${basename(o.weights)}, ${adapter})`);
          console.log(`  mAP@all ${out.map_all?.toFixed(4)}   mAP@200 ${out.map_200?.toFixed(4)}   P@100 ${out.precision_100?.toFixed(4)}   P@200 ${out.precision_200?.toFixed(4)}`);
          console.log(`  time: embed ${r.timings_s.embed.toFixed(1)} s (${out.images_per_s} img/s), score ${r.timings_s.score.toFixed(1)} s${r.rn_pairs ? ` (${r.rn_pairs} ${r.mode === 'text+rn' ? 'text-photo' : 'RN'} pairs, ${out.rn_pairs_per_s} pairs/s)` : ''}, metrics ${r.timings_s.metrics.toFixed(2)} s`);
          if (r.per_class) {
            console.log('  per class:           AP@all  AP@200   P@100   P@200  photos');
            const f = (x: number) => (Number.isNaN(x) ? '     -' : x.toFixed(4)).padStart(7);
            for (const c of r.per_class) console.log(`    ${c.class.slice(0, 18).padEnd(18)} ${f(c.ap_all)} ${f(c.ap_200)} ${f(c.p_100)} ${f(c.p_200)} ${String(c.n_photos).padStart(7)}`);
          }
          if (o.dumpScores) console.log(`  wrote ${o.dumpScores}: float32 [${r.n_queries}, ${r.n_photos}]`);
        }
      } finally {
        fromStore?.close();
        bar.stop();
        await m.dispose();
      }
    });
}

/** eval --index: the stored photo embeddings in dataset order (refused unless the store holds exactly its photos), and ANN candidates. */
async function evalStoreInputs(spec: string, data: ReturnType<typeof listDataset>, o: Parameters<typeof openGalleryForSearch>[1] & { mode?: string }) {
  const g = await openGalleryForSearch(spec, o);
  try {
    const want = data.photos.paths;
    // The stored embeddings of every photo: exactly what ANN re-scores its candidates with.
    const all = g.ann ? await g.store.load() : g.index;
    const stored = all.paths;
    const have = new Set(stored);
    const missing = want.filter((p) => !have.has(p));
    if (stored.length !== want.length || missing.length) {
      throw new SketchError('INDEX_MISMATCH', `${spec} holds ${stored.length} photos, the data root's photo/ folder ${want.length}${missing.length ? ` (first missing: ${missing[0]})` : ''}: eval --index needs a store of exactly those photos`,
        `Build it from that folder: sketchgpu index <root>/photo --store ${spec} --weights <weights>`);
    }
    const D = all.dim;
    const row = new Map(want.map((p, i) => [p, i]));
    const photoEmbeddings = new Float32Array(want.length * D);
    all.paths.forEach((p, i) => photoEmbeddings.set(all.embeddings.subarray(i * D, (i + 1) * D), row.get(p)! * D));
    const ann = g.ann;
    const options = {
      photoEmbeddings,
      candidates: ann ? async (q: Float32Array, nq: number) => {
        const out: number[][] = [];
        for (let i = 0; i < nq; i++) out.push((await ann.candidates(q.subarray(i * D, (i + 1) * D), 1, ann.perQuery)).paths.map((p) => row.get(p)!));
        return out;
      } : undefined,
    };
    return { index: g.index, options, perQuery: ann?.perQuery, close: () => g.store.close() };
  } catch (e) {
    g.store.close();
    throw e;
  }
}
