/**
 * The gallery-store side of the CLI (docs/vector-store.md): `export` (.sgi -> LanceDB), `ann-index` (IVF-PQ on a
 * LanceDB table), and the store and ANN options that `index`, `query` and `eval` share.
 */
import { Command, Option } from 'commander';
import { SketchError } from '../core/errors.ts';
import type { GalleryIndex } from '../retrieval/index-format.ts';
import type { AnnSource } from '../retrieval/query.ts';
import { LanceGallery } from '../retrieval/store/lance.ts';
import { exportToLance, openStore, parseStoreSpec, storeName, type GalleryStore } from '../retrieval/store/store.ts';
import { progressBar } from './progress.ts';

/** Above this many photos, a LanceDB table with a vector index is queried by ANN + exact re-scoring (--ann-threshold). */
export const DEFAULT_ANN_THRESHOLD = 200_000;
/** ANN candidates per query that are re-scored exactly (--candidates). */
export const DEFAULT_CANDIDATES = 200;

const posInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new SketchError('BAD_ARGUMENT', `${name} must be a positive integer, not "${v}"`, `e.g. ${name} 200.`);
  return n;
};

/** The ANN options of query and eval. */
export function addAnnOptions(c: Command): Command {
  return c
    .option('--ann', 'search a LanceDB table through its vector index (IVF-PQ, `sketchgpu ann-index`): each query\'s --candidates nearest photos, re-scored exactly on the GPU from the stored embeddings (an ANN miss can drop a photo, never change a returned score)')
    .option('--exact', 'search every photo exactly (flat), even above --ann-threshold')
    .option('--ann-threshold <n>', `use ANN automatically when the table has a vector index and at least n photos (default ${DEFAULT_ANN_THRESHOLD})`, posInt('--ann-threshold'))
    .option('--candidates <n>', `ANN candidates per query to re-score exactly (default ${DEFAULT_CANDIDATES})`, posInt('--candidates'))
    .option('--nprobes <n>', 'IVF partitions searched per query (default: LanceDB\'s)', posInt('--nprobes'));
}

export interface AnnFlags { ann?: boolean; exact?: boolean; annThreshold?: number; candidates?: number; nprobes?: number }

export interface OpenedGallery {
  store: GalleryStore;
  /** The rows for exact search; with ANN a header only (no rows: they come from the candidates). */
  index: GalleryIndex;
  ann?: AnnSource;
  /** Photos in the store. */
  count: number;
}

/** Opens `--index <file | lancedb:uri>` and decides exact or ANN search. */
export async function openGalleryForSearch(spec: string, o: AnnFlags): Promise<OpenedGallery> {
  if (o.ann && o.exact) throw new SketchError('BAD_ARGUMENT', '--ann and --exact exclude each other', 'Pass one of them (or neither: ANN above --ann-threshold when the table has a vector index).');
  const s = parseStoreSpec(spec, '--index');
  if (o.ann && s.kind === 'sgi') {
    throw new SketchError('BAD_ARGUMENT', `--ann needs a LanceDB table with a vector index, and ${spec} is an .sgi file (always searched exactly)`,
      `Convert it and build the index: sketchgpu export ${spec} --store lancedb:<folder>; sketchgpu ann-index lancedb:<folder>; then query --index lancedb:<folder> --ann`);
  }
  if (!o.ann && (o.candidates !== undefined || o.nprobes !== undefined) && (o.exact || s.kind === 'sgi')) {
    throw new SketchError('BAD_ARGUMENT', '--candidates and --nprobes apply to ANN searches only', 'Drop them, or search a LanceDB table with --ann.');
  }
  const store = await openStore(s);
  const useAnn = !o.exact && (o.ann || (store.annIndex && store.count >= (o.annThreshold ?? DEFAULT_ANN_THRESHOLD)));
  if (o.ann && !store.annIndex) {
    store.close();
    throw new SketchError('BAD_ARGUMENT', `${store.name} has no vector index, so --ann would scan every row`,
      `Build one: sketchgpu ann-index ${store.name} (or search exactly: drop --ann).`);
  }
  if (!useAnn) return { store, index: await store.load(), count: store.count };
  const header: GalleryIndex = {
    model: store.model, weightsPath: store.weightsPath, root: '', paths: [], dim: store.dim, dtype: 'f32', embeddings: new Float32Array(0),
    skipped: [], created: '', file: store.name,
  };
  const nprobes = o.nprobes;
  return {
    store, index: header, count: store.count,
    ann: { perQuery: o.candidates ?? DEFAULT_CANDIDATES, candidates: (q, nq, c) => store.candidates!(q, nq, c, { nprobes }) },
  };
}

export function addStoreCommands(program: Command): void {
  program.command('export')
    .description('convert an .sgi index into a LanceDB table (docs/vector-store.md); rows already in the table are kept, so it can be rerun')
    .argument('<index>', 'an index file made by `sketchgpu index`')
    .requiredOption('--store <spec>', 'lancedb:<folder or URI> (s3://, gs://, az:// with credentials in the environment)')
    .option('--json', 'print a JSON summary')
    .action(async (file: string, o) => {
      const dst = parseStoreSpec(o.store);
      if (dst.kind !== 'lancedb') throw new SketchError('BAD_ARGUMENT', `--store ${o.store} is not a LanceDB location`, 'e.g. --store lancedb:./photos.lancedb');
      const src = await openStore(parseStoreSpec(file, '<index>'));
      if (src.spec.kind !== 'sgi') throw new SketchError('BAD_ARGUMENT', `${file} is already a LanceDB table`, 'Give an .sgi index file.');
      const t0 = performance.now();
      const ix = await src.load();
      const bar = progressBar('export', 'photos');
      bar.start(ix.paths.length);
      try {
        const r = await exportToLance(ix, dst.uri, { onProgress: (d) => bar.update(d) });
        bar.stop();
        const out = { index: file, store: storeName(dst), photos: ix.paths.length, table_rows: r.rows, table_version: r.version, dtype: ix.dtype, rn_cache: !!ix.tokens, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)) };
        if (o.json) console.log(JSON.stringify(out));
        else console.log(`wrote ${out.store}: ${out.table_rows} photos (${ix.dtype}${ix.tokens ? ', with the RN cache' : ''}) in ${out.seconds} s`);
      } finally {
        bar.stop();
      }
    });

  program.command('ann-index')
    .description('compact a LanceDB gallery table and build its IVF-PQ vector index (inner product), for `query --ann`')
    .argument('<store>', 'lancedb:<folder or URI>')
    .option('--partitions <n>', 'IVF partitions (default: LanceDB\'s, about sqrt(rows))', posInt('--partitions'))
    .option('--sub-vectors <n>', 'PQ sub-vectors; must divide the embedding width (default: LanceDB\'s)', posInt('--sub-vectors'))
    .addOption(new Option('--no-compact', 'skip compacting the table first'))
    .option('--json', 'print a JSON summary')
    .action(async (spec: string, o) => {
      const s = parseStoreSpec(spec, '<store>');
      if (s.kind !== 'lancedb') throw new SketchError('BAD_ARGUMENT', `${spec} is not a LanceDB location; an .sgi index is always searched exactly`, `Convert it first: sketchgpu export ${spec} --store lancedb:<folder>`);
      const g = await LanceGallery.open(s.uri);
      try {
        const rows = await g.count();
        if (o.subVectors && g.layout.dim % o.subVectors !== 0) {
          throw new SketchError('BAD_ARGUMENT', `--sub-vectors ${o.subVectors} does not divide the embedding width ${g.layout.dim}`, `Pick a divisor of ${g.layout.dim}, e.g. ${g.layout.dim / 8 >= 1 ? g.layout.dim / 8 : 1}.`);
        }
        if (rows < 256) throw new SketchError('BAD_ARGUMENT', `${spec} holds ${rows} photos; an IVF-PQ index needs at least 256 to train (and pays off far above that)`, 'Query it exactly (no vector index needed).');
        const t0 = performance.now();
        if (o.compact) {
          if (!o.json && process.stderr.isTTY) process.stderr.write('compacting…\n');
          await g.optimize();
        }
        const t1 = performance.now();
        if (!o.json && process.stderr.isTTY) process.stderr.write('training IVF-PQ…\n');
        await g.buildAnnIndex({ partitions: o.partitions, subVectors: o.subVectors });
        const t2 = performance.now();
        const out = { store: spec, rows, compact_s: Number(((t1 - t0) / 1000).toFixed(2)), index_s: Number(((t2 - t1) / 1000).toFixed(2)), table_version: await g.version() };
        if (o.json) console.log(JSON.stringify(out));
        else console.log(`built the IVF-PQ index of ${spec} (${rows} photos) in ${out.index_s} s${o.compact ? ` after compacting in ${out.compact_s} s` : ''}`);
      } finally {
        g.close();
      }
    });
}
