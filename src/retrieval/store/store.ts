/**
 * Node-only: where a gallery lives, behind one interface. An `.sgi` file (index-format.ts, the default, embedded
 * use) or a LanceDB table (`lancedb:<folder or URI>`, lance.ts: many indexing processes, object storage, ANN).
 * Both read back as the same GalleryIndex for flat (exact) search, so query and eval results are identical through
 * either; a LanceDB table can also narrow a query to ANN candidates that are then scored exactly (query.ts).
 */
import { createHash } from 'node:crypto';
import { isAbsolute, join, resolve } from 'node:path';
import { SketchError } from '../../core/errors.ts';
import { readBoundedFileSync } from '../../io/read-file.ts';
import { listGallery } from '../gallery.ts';
import { checkIndexHead, parseIndex, type GalleryIndex, type ModelIdentity } from '../index-format.ts';
import { embedPhotos, lockIndexOutput, type BuildIndexResult, type BuildProgress } from '../indexer.ts';
import { asRetrievalModel, type AnyModel } from '../model.ts';
import type { ImageEncoder } from '../files.ts';
import { LanceGallery, type LanceLayout, type LanceRow } from './lance.ts';

export type StoreSpec = { kind: 'sgi'; path: string } | { kind: 'lancedb'; uri: string };

/** `lancedb:<folder or URI>` or an .sgi file path. A local LanceDB folder is made absolute. */
export function parseStoreSpec(s: string, option = '--store'): StoreSpec {
  if (s.startsWith('lancedb:')) {
    const rest = s.slice('lancedb:'.length);
    if (rest.trim() === '') {
      throw new SketchError('BAD_ARGUMENT', `${option} lancedb: needs a location after the colon`, `e.g. ${option} lancedb:./gallery.lance-db (a folder) or ${option} lancedb:s3://bucket/galleries/photos`);
    }
    return { kind: 'lancedb', uri: /^[a-z][a-z0-9+.-]*:\/\//i.test(rest) ? rest : resolve(rest) };
  }
  if (/^[a-z][a-z0-9+.-]+:/i.test(s) && !/^[A-Za-z]:[\\/]/.test(s)) {
    throw new SketchError('BAD_ARGUMENT', `${option} ${JSON.stringify(s)}: unknown store "${s.slice(0, s.indexOf(':'))}:"`, `Give an .sgi file path, or lancedb:<folder or URI> for a LanceDB table.`);
  }
  return { kind: 'sgi', path: s };
}

export const storeName = (s: StoreSpec) => (s.kind === 'sgi' ? s.path : `lancedb:${s.uri}`);

/** `i/N`: this process indexes shard i (0-based) of N. */
export function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const i = m ? Number(m[1]) : NaN, n = m ? Number(m[2]) : NaN;
  if (!m || !(n >= 1 && n <= 65536) || !(i >= 0 && i < n)) {
    throw new SketchError('BAD_ARGUMENT', `--shard must be i/N with 0 <= i < N <= 65536, not "${s}"`, 'e.g. --shard 0/3, --shard 1/3 and --shard 2/3 on three machines (or processes) fill one table.');
  }
  return { index: i, count: n };
}

/** The shard a photo belongs to: the first 4 bytes of SHA-256 of its relative path, mod N (the same on every machine). */
export function shardOf(path: string, count: number): number {
  if (count === 1) return 0;
  return createHash('sha256').update(path, 'utf8').digest().readUInt32BE(0) % count;
}

/** A gallery store opened for reading. */
export interface GalleryStore {
  spec: StoreSpec;
  /** For messages: the file, or lancedb:<uri>. */
  name: string;
  /** The model identity and the weights file it was built with. */
  model: ModelIdentity;
  weightsPath: string;
  dim: number;
  count: number;
  /** Whether it can narrow queries to ANN candidates through a vector index (LanceDB with an IVF-PQ index). */
  annIndex: boolean;
  /** Every row, for exact search (sorted by path). */
  load(): Promise<GalleryIndex>;
  /** The union of each query's `perQuery` ANN candidates with their stored embeddings (LanceDB only). */
  candidates?(queries: Float32Array, nq: number, perQuery: number, o?: { nprobes?: number }): Promise<GalleryIndex>;
  close(): void;
}

export async function openStore(spec: StoreSpec): Promise<GalleryStore> {
  if (spec.kind === 'sgi') {
    const ix = parseIndex(readBoundedFileSync(spec.path, 'index', undefined, (h, size) => checkIndexHead(h, size, spec.path)), spec.path);
    return { spec, name: spec.path, model: ix.model, weightsPath: ix.weightsPath, dim: ix.dim, count: ix.paths.length, annIndex: false, load: async () => ix, close: () => undefined };
  }
  const g = await LanceGallery.open(spec.uri);
  const [count, annIndex] = await Promise.all([g.count(), g.hasAnnIndex()]);
  return {
    spec, name: storeName(spec), model: g.layout.model, weightsPath: g.layout.weightsPath, dim: g.layout.dim, count, annIndex,
    load: () => g.load(),
    candidates: (q, nq, c, o) => g.candidates(q, nq, c, o),
    close: () => g.close(),
  };
}

export interface BuildLanceOptions extends BuildProgress {
  model: AnyModel;
  identity: ModelIdentity;
  weightsPath: string;
  input: string;
  uri: string;
  dtype?: 'f32' | 'f16';
  rnCache?: boolean;
  batch?: number;
  shard?: { index: number; count: number };
  /** Photos per commit (default 256): what a crash can lose, and how many commits N writers contend over. */
  commitEvery?: number;
  /** How photos are read and embedded (default: the engine's decoders and the model's embed; see ImageEncoder). */
  encoder?: ImageEncoder;
}

export interface BuildLanceResult extends BuildIndexResult {
  /** Photos of this shard. */
  total: number;
  /** Rows in the table after this run (all shards). */
  table_rows: number;
  table_version: number;
}

/**
 * Embeds this shard's photos (shardOf(path) === shard.index) into the LanceDB table at `uri`, committing every
 * `commitEvery` photos. Resumable: photos already in the table are not embedded again; a crash loses at most the
 * commit in flight; a photo already committed is not stored again (merge-insert on path). One run per shard at a
 * time (a lock file on a local table): two runs of one shard at once could store a photo twice.
 */
export async function buildLanceIndex(o: BuildLanceOptions): Promise<BuildLanceResult> {
  const t0 = performance.now();
  const model = asRetrievalModel(o.model);
  const shard = o.shard ?? { index: 0, count: 1 };
  const list = listGallery(o.input);
  const layout: LanceLayout = {
    model: o.identity, weightsPath: o.weightsPath, root: list.root, dim: model.dim, dtype: o.dtype ?? 'f32',
    tokens: o.rnCache ? model.tokens : 0, planes: o.rnCache ? model.relationPlanes : 0,
  };
  const g = await LanceGallery.openForWrite(o.uri, layout);
  // One run per shard at a time: two runs of one shard would insert the same photos concurrently, which Lance's
  // merge-insert does not catch (identical copies are read as one, but they waste space). A lock file beside the
  // table does it on a local disk; on object storage each shard must be started once (docs/vector-store.md).
  let release = () => undefined as void;
  try {
    if (isAbsolute(o.uri)) release = lockIndexOutput(join(o.uri, `.sketchgpu-shard-${shard.index}-of-${shard.count}`));
  } catch (e) {
    g.close();
    throw e;
  }
  try {
    const mine = list.paths.filter((p) => shardOf(p, shard.count) === shard.index);
    const have = new Set(await g.paths());
    const todo = mine.filter((p) => !have.has(p));
    const resumed = mine.length - todo.length;
    o.onStart?.(mine.length, resumed);
    const skipped: [string, string][] = [];
    let embedded = 0;
    let pending: LanceRow[] = [];
    const every = o.commitEvery ?? 256;
    const trace = process.env['SKETCHGPU_TRACE_COMMITS'] === '1';
    const flush = async () => {
      if (!pending.length) return;
      await g.insert(pending);
      // Tests watch this line to kill a shard between commits (test/retrieval.store.test.ts).
      if (trace) process.stderr.write(`committed ${pending.length} photos\n`);
      embedded += pending.length;
      pending = [];
      o.onProgress?.(resumed + embedded + skipped.length, mine.length);
    };
    const r = await embedPhotos(model, list.root, todo, { batch: o.batch, rnCache: !!o.rnCache, shouldStop: o.shouldStop, encoder: o.encoder }, async (b) => {
      pending.push(...b.ok);
      for (const [p, why] of b.bad) {
        skipped.push([p, why]);
        o.onSkip?.(p, why);
      }
      if (pending.length >= every) await flush();
    });
    await flush();
    const [rows, version] = await Promise.all([g.count(), g.version()]);
    if (rows === 0) {
      throw new SketchError('EMPTY_GALLERY', `none of the ${mine.length} images of this shard in ${o.input} could be read, and the table is empty`, `The first error: ${skipped[0]?.[0]}: ${skipped[0]?.[1]}`);
    }
    return {
      out: `lancedb:${o.uri}`, complete: !r.stopped, total: mine.length, embedded, resumed, skipped, seconds: (performance.now() - t0) / 1000,
      table_rows: rows, table_version: version,
    };
  } finally {
    release();
    g.close();
  }
}

/** Writes an .sgi index's rows (with its RN cache when it has one) into a LanceDB table at `uri`. */
export async function exportToLance(ix: GalleryIndex, uri: string, o: { commitEvery?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<{ rows: number; version: number }> {
  const D = ix.dim, n = ix.paths.length;
  const T = ix.tokens ? ix.tokens.length / n / D : 0;
  const planes = ix.projections ? 3 : 0;
  const g = await LanceGallery.openForWrite(uri, { model: ix.model, weightsPath: ix.weightsPath, root: ix.root, dim: D, dtype: ix.dtype, tokens: T, planes });
  try {
    const row = T * D;
    const every = o.commitEvery ?? 16384;
    for (let s = 0; s < n; s += every) {
      const rows: LanceRow[] = [];
      for (let i = s; i < Math.min(n, s + every); i++) {
        const payload = new Float32Array(D + (1 + planes) * row);
        payload.set(ix.embeddings.subarray(i * D, (i + 1) * D));
        if (T) {
          const pr = ix.projections;
          [ix.tokens!, ...(pr ? [pr.q, pr.v, pr.k] : [])].forEach((src, k) => payload.set(src.subarray(i * row, (i + 1) * row), D + k * row));
        }
        rows.push({ path: ix.paths[i]!, payload });
      }
      await g.insert(rows);
      o.onProgress?.(Math.min(n, s + every), n);
    }
    return { rows: await g.count(), version: await g.version() };
  } finally {
    g.close();
  }
}
