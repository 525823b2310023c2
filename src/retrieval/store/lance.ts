/**
 * Node-only: a gallery in a LanceDB table (docs/vector-store.md), the store for galleries beyond one machine. The
 * optional package `@lancedb/lancedb` (pinned 0.31.0) is loaded on first use; without it every LanceDB operation is
 * refused with an install hint. `.sgi` files (index-format.ts) stay the default store.
 *
 * One table, `gallery`, at a LanceDB URI (a local folder, or s3://, gs://, az:// for object storage):
 * - `path` utf8, not null: the photo's path relative to the root, as in an .sgi index (the merge key: a photo is
 *   stored once, however many processes insert it).
 * - `embedding` fixed_size_list<float32 | float16>[D]: the L2-normalised global embedding.
 * - `tokens` fixed_size_list<float>[(1 + P)·T·D], only with the RN cache: the photo's tokens, then the model's P
 *   per-image relation planes (ZSE-SBIR: q2, v2, k1; CAAN: none), as the .sgi journal stores them.
 * Schema metadata: `sketchgpu.store` ("1"), `sketchgpu.index.model` (the model identity JSON, as in .sgi),
 * `sketchgpu.index.weights`, `sketchgpu.index.root`, `sketchgpu.index.dtype`, `sketchgpu.index.tokens` (T, 0 without
 * the cache), `sketchgpu.index.planes` (P), `sketchgpu.index.created`.
 */
import { createRequire } from 'node:module';
import { SketchError } from '../../core/errors.ts';
import { f16ToF32, f32ToF16 } from '../../core/tensor.ts';
import { identityDim, isConfinedRelativePath, type GalleryIndex, type ModelIdentity } from '../index-format.ts';

type LanceModule = typeof import('@lancedb/lancedb');
type ArrowModule = typeof import('apache-arrow');
type LanceTable = Awaited<ReturnType<Awaited<ReturnType<LanceModule['connect']>>['openTable']>>;

export const LANCE_STORE_FORMAT = '1';
export const LANCE_TABLE = 'gallery';
export const LANCE_VERSION = '0.31.0';
const K = {
  format: 'sketchgpu.store', model: 'sketchgpu.index.model', weights: 'sketchgpu.index.weights', root: 'sketchgpu.index.root',
  dtype: 'sketchgpu.index.dtype', tokens: 'sketchgpu.index.tokens', planes: 'sketchgpu.index.planes', created: 'sketchgpu.index.created',
} as const;

/** What a table holds besides its rows: fixed when the table is created, checked by every later writer and reader. */
export interface LanceLayout {
  model: ModelIdentity;
  weightsPath: string;
  root: string;
  dim: number;
  dtype: 'f32' | 'f16';
  /** Tokens per photo in the RN cache; 0 without it. */
  tokens: number;
  /** Per-image relation planes stored after the tokens (ZSE-SBIR: 3; CAAN: 0). */
  planes: number;
}

/** One photo to store: D embedding values, then with the RN cache (1 + planes)·T·D token values. */
export interface LanceRow { path: string; payload: Float32Array }

let loaded: Promise<{ lancedb: LanceModule; arrow: ArrowModule }> | undefined;

/** The optional LanceDB package and its Arrow, or a clear refusal. SKETCHGPU_NO_LANCEDB=1 acts as if absent (tests). */
export function loadLance(): Promise<{ lancedb: LanceModule; arrow: ArrowModule }> {
  loaded ??= (async () => {
    process.env['LANCEDB_LOG'] ??= 'error'; // LanceDB logs warnings ("no existing dataset", k-means on few rows) on stderr otherwise
    try {
      if (process.env['SKETCHGPU_NO_LANCEDB'] === '1') throw new Error('SKETCHGPU_NO_LANCEDB=1');
      const lancedb = await import('@lancedb/lancedb');
      // The CommonJS instance of Arrow, the one LanceDB itself requires: tables built with another instance (the ES
      // module) fail its instanceof checks and are re-built, which loses the schema's equality.
      const arrow = createRequire(import.meta.url)('apache-arrow') as ArrowModule;
      return { lancedb, arrow };
    } catch (e) {
      loaded = undefined;
      throw new SketchError('MISSING_FEATURE', `the LanceDB store needs the optional package @lancedb/lancedb, which cannot be loaded here (${(e as Error).message.split('\n')[0]})`,
        `Install it beside sketchgpu: npm install @lancedb/lancedb@${LANCE_VERSION} (native builds for Linux, macOS and Windows on x64 and arm64), or use an .sgi index file (the default store).`);
    }
  })();
  return loaded;
}

const badTable = (uri: string, why: string) => new SketchError('BAD_INDEX', `lancedb:${uri} is not a usable sketchgpu gallery table: ${why}`,
  `Rebuild it: sketchgpu index <photo dir> --store lancedb:${uri} --weights <weights> (into a new location), or convert an .sgi index: sketchgpu export <index.sgi> --store lancedb:<new location>`);

const rowWidth = (l: LanceLayout) => (l.tokens ? (1 + l.planes) * l.tokens * l.dim : 0);

function describe(l: LanceLayout): string {
  return `${l.model.family} weights sha256 ${l.model.weights_sha256.slice(0, 12)}…, ${l.dim}-d ${l.dtype}${l.tokens ? `, RN cache of ${l.tokens} tokens` : ', no RN cache'}`;
}

function layoutMetadata(l: LanceLayout): Map<string, string> {
  return new Map([
    [K.format, LANCE_STORE_FORMAT], [K.model, JSON.stringify(l.model)], [K.weights, l.weightsPath], [K.root, l.root],
    [K.dtype, l.dtype], [K.tokens, String(l.tokens)], [K.planes, String(l.planes)], [K.created, new Date().toISOString()],
  ]);
}

function schemaOf(arrow: ArrowModule, l: LanceLayout, metadata?: Map<string, string>) {
  const float = () => (l.dtype === 'f16' ? new arrow.Float16() : new arrow.Float32());
  const fields = [
    new arrow.Field('path', new arrow.Utf8(), false),
    new arrow.Field('embedding', new arrow.FixedSizeList(l.dim, new arrow.Field('item', float(), true)), false),
  ];
  if (l.tokens) fields.push(new arrow.Field('tokens', new arrow.FixedSizeList(rowWidth(l), new arrow.Field('item', float(), true)), false));
  return new arrow.Schema(fields, metadata);
}

/** The layout a table's schema declares, checked for consistency (refused with a rebuild hint otherwise). */
function readLayout(uri: string, schema: { metadata: Map<string, string>; fields: { name: string; type: { listSize?: number; children?: { type: unknown }[] } }[] }, arrow: ArrowModule): LanceLayout {
  const m = schema.metadata;
  const format = m.get(K.format);
  if (format === undefined) throw badTable(uri, 'its schema has no sketchgpu.store metadata (a table that sketchgpu did not write)');
  if (format !== LANCE_STORE_FORMAT) throw badTable(uri, `it is of store format ${JSON.stringify(format)}; this sketchgpu reads format ${LANCE_STORE_FORMAT}`);
  let model: ModelIdentity;
  try {
    model = JSON.parse(m.get(K.model) ?? '');
  } catch {
    throw badTable(uri, 'its model metadata is not valid JSON');
  }
  const family = (model as { family?: unknown } | null)?.family;
  if (family !== 'zse-sbir' && family !== 'caan') throw badTable(uri, `its model family ${JSON.stringify(family)} is neither "zse-sbir" nor "caan"`);
  if (typeof model.weights_sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(model.weights_sha256)) throw badTable(uri, 'its model metadata has no weights_sha256');
  const dtype = m.get(K.dtype);
  if (dtype !== 'f32' && dtype !== 'f16') throw badTable(uri, `its dtype ${JSON.stringify(dtype)} is neither f32 nor f16`);
  const tokens = Number(m.get(K.tokens) ?? '0'), planes = Number(m.get(K.planes) ?? '0');
  if (!Number.isInteger(tokens) || tokens < 0 || !Number.isInteger(planes) || planes < 0) throw badTable(uri, 'its token-cache metadata is not a pair of counts');
  const dim = model.config ? identityDim(model) : NaN;
  const l: LanceLayout = { model, weightsPath: m.get(K.weights) ?? '', root: m.get(K.root) ?? '', dim, dtype, tokens, planes };
  const col = (name: string) => schema.fields.find((f) => f.name === name);
  const emb = col('embedding');
  const want = schemaOf(arrow, l);
  if (!col('path')) throw badTable(uri, 'it has no path column');
  if (!emb || emb.type.listSize !== dim) throw badTable(uri, `its embedding column is not a list of ${dim} values (the width its model says)`);
  const floatName = (t: { children?: { type: unknown }[] } | undefined) => String(t?.children?.[0]?.type);
  if (floatName(emb.type) !== floatName(want.fields[1]!.type as never)) throw badTable(uri, `its embedding values are ${floatName(emb.type)}, its metadata says ${dtype}`);
  const tok = col('tokens');
  if (tokens ? !tok || tok.type.listSize !== rowWidth(l) : tok) throw badTable(uri, `its tokens column does not match its metadata (${tokens} tokens, ${planes} planes)`);
  return l;
}

/** A typed view of a fixed-size-list column of one record batch, as f32 (converted from f16), [rows, width]. */
function listValues(vec: { data: { offset: number; length: number; children: { offset: number; values: Float32Array | Uint16Array }[] }[]; get(i: number): { toArray(): ArrayLike<number> } | null; length: number }, width: number, f16: boolean): Float32Array {
  const out = new Float32Array(vec.length * width);
  let row = 0;
  for (const d of vec.data) {
    const c = d.children[0]!;
    const start = (d.offset + 0) * width + c.offset;
    const src = c.values.subarray(start, start + d.length * width);
    if (src.length !== d.length * width) {
      for (let i = 0; i < d.length; i++) out.set(Float32Array.from(vec.get(row + i)!.toArray()), (row + i) * width);
    } else if (f16) {
      const h = src as Uint16Array;
      const t = f16Table();
      for (let i = 0; i < h.length; i++) out[row * width + i] = t[h[i]!]!;
    } else out.set(src as Float32Array, row * width);
    row += d.length;
  }
  return out;
}

let F16: Float32Array | undefined;
const f16Table = () => (F16 ??= Float32Array.from({ length: 65536 }, (_, i) => f16ToF32(i)));

/** Rows read from a table, each checked as an .sgi index's rows are: confined unique paths, finite unit embeddings. */
function checkRows(uri: string, paths: string[], emb: Float32Array, D: number, tokens?: Float32Array): void {
  const seen = new Set<string>();
  for (let r = 0; r < paths.length; r++) {
    const p = paths[r]!;
    if (!isConfinedRelativePath(p)) {
      throw new SketchError('BAD_INDEX', `lancedb:${uri} names the photo ${JSON.stringify(p.slice(0, 200))}, which is not a relative image path inside its root (absolute paths, '..' and non-image files are refused)`,
        'A table that sketchgpu wrote never does this; do not use it. Rebuild it with `sketchgpu index --store lancedb:<new location>`.');
    }
    if (seen.has(p)) throw badTable(uri, `it holds the photo ${JSON.stringify(p)} twice`);
    seen.add(p);
    let s = 0;
    for (let k = r * D; k < (r + 1) * D; k++) s += emb[k]! * emb[k]!;
    if (!(Math.abs(Math.sqrt(s) - 1) < 1e-2)) throw badTable(uri, `the embedding of ${JSON.stringify(p)} has norm ${Math.sqrt(s)}, not 1 (NaN, infinite or zero values?)`);
  }
  if (tokens) for (let i = 0; i < tokens.length; i++) if (!Number.isFinite(tokens[i]!)) throw badTable(uri, 'its cached tokens hold NaN or infinite values');
}

const isConflict = (e: unknown) => /conflict|retryable|concurrent|commit|version .* (already )?exists|timed out/i.test(String((e as Error)?.message ?? e));

export class LanceGallery {
  private constructor(readonly uri: string, readonly layout: LanceLayout, private readonly table: LanceTable, private readonly arrow: ArrowModule) {}

  /** Opens the table for reading; a missing table or location is refused. */
  static async open(uri: string): Promise<LanceGallery> {
    const { lancedb, arrow } = await loadLance();
    let table: LanceTable;
    try {
      const db = await lancedb.connect(uri);
      table = await db.openTable(LANCE_TABLE);
    } catch (e) {
      throw new SketchError('IO', `cannot open the gallery table at lancedb:${uri}: ${(e as Error).message.split('\n')[0]}`,
        `Build one first: sketchgpu index <photo dir> --store lancedb:${uri} --weights <weights>, or convert an index: sketchgpu export <index.sgi> --store lancedb:${uri}`);
    }
    return new LanceGallery(uri, readLayout(uri, await table.schema() as never, arrow), table, arrow);
  }

  /**
   * Opens the table for writing, creating it when absent. Concurrent writers may race to create it: each either
   * creates it or finds it made by another, and then refuses it unless its layout (weights, width, dtype, cache) is
   * the same as this writer's.
   */
  static async openForWrite(uri: string, layout: LanceLayout): Promise<LanceGallery> {
    const { lancedb, arrow } = await loadLance();
    let table: LanceTable;
    try {
      const db = await lancedb.connect(uri);
      const open = async () => ((await db.tableNames()).includes(LANCE_TABLE) ? db.openTable(LANCE_TABLE) : undefined);
      table = (await open()) ?? await db.createEmptyTable(LANCE_TABLE, schemaOf(arrow, layout, layoutMetadata(layout)), { mode: 'create' })
        .catch(async (e) => (await open()) ?? Promise.reject(e)); // another writer created it first
    } catch (e) {
      throw new SketchError('IO', `cannot open or create the gallery table at lancedb:${uri}: ${(e as Error).message.split('\n')[0]}`,
        'Check the location (a folder, or an s3://, gs://, az:// URI with credentials in the environment) and that it is writable.');
    }
    const g = new LanceGallery(uri, readLayout(uri, await table.schema() as never, arrow), table, arrow);
    const a = g.layout, b = layout;
    if (a.model.family !== b.model.family || a.model.weights_sha256 !== b.model.weights_sha256 || a.dim !== b.dim || a.dtype !== b.dtype || a.tokens !== b.tokens || a.planes !== b.planes) {
      throw new SketchError('INDEX_MISMATCH', `lancedb:${uri} holds a gallery of other weights or options (${describe(a)}) than this run (${describe(b)}); one table never mixes them`,
        `Run with the weights and options the table was made with (from ${a.weightsPath || 'an unknown file'}), or use another location.`);
    }
    return g;
  }

  async count(): Promise<number> {
    return this.table.countRows();
  }

  /** The table's version (Lance: one per commit). */
  async version(): Promise<number> {
    return this.table.version();
  }

  /** Whether an ANN index covers the embedding column. */
  async hasAnnIndex(): Promise<boolean> {
    return (await this.table.listIndices()).some((ix) => ix.columns.includes('embedding'));
  }

  /** The stored paths (any order). */
  async paths(): Promise<string[]> {
    const t = await this.table.query().select(['path']).toArrow();
    const out: string[] = [];
    for (const b of t.batches) for (const p of b.getChild('path')!) out.push(String(p));
    return out;
  }

  /**
   * Stores rows that are not in the table yet (merge-insert on `path`: a path already present is left as it is, so a
   * retried or concurrent insert never duplicates a photo). Commit conflicts with concurrent writers are retried.
   */
  async insert(rows: LanceRow[]): Promise<void> {
    if (!rows.length) return;
    const data = this.toArrow(rows);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.table.mergeInsert('path').whenNotMatchedInsertAll().execute(data as never, { timeoutMs: 120_000 });
        return;
      } catch (e) {
        if (attempt >= 8 || !isConflict(e)) {
          throw new SketchError('IO', `could not commit ${rows.length} photos to lancedb:${this.uri} (attempt ${attempt}): ${(e as Error).message.split('\n')[0]}`,
            'Run the same command again: it resumes, and photos already committed are not embedded again.');
        }
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt * (0.5 + Math.random())));
      }
    }
  }

  private toArrow(rows: LanceRow[]) {
    const arrow = this.arrow, l = this.layout, n = rows.length, D = l.dim, R = rowWidth(l);
    const f16 = l.dtype === 'f16';
    const float = () => (f16 ? new arrow.Float16() : new arrow.Float32());
    const column = (width: number, at: number) => {
      const values = f16 ? new Uint16Array(n * width) : new Float32Array(n * width);
      rows.forEach((r, i) => {
        const src = r.payload.subarray(at, at + width);
        if (src.length !== width) throw new RangeError(`row ${r.path}: expected ${width} values at ${at}, got ${src.length}`);
        if (f16) for (let k = 0; k < width; k++) values[i * width + k] = f32ToF16(src[k]!);
        else values.set(src, i * width);
      });
      return arrow.makeData({
        type: new arrow.FixedSizeList(width, new arrow.Field('item', float(), true)), length: n, nullCount: 0,
        child: arrow.makeData({ type: float(), length: n * width, nullCount: 0, data: values as never }),
      });
    };
    const schema = schemaOf(arrow, l);
    const children = [arrow.vectorFromArray(rows.map((r) => r.path), new arrow.Utf8()).data[0]!, column(D, 0), ...(R ? [column(R, D)] : [])];
    const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children: children as never });
    return new arrow.Table(schema, [new arrow.RecordBatch(schema, struct)]);
  }

  /** The rows of an Arrow result, decoded to f32: paths, [n, D] embeddings and [n, R] token rows. */
  private decode(t: { batches: { getChild(name: string): unknown }[] }, withTokens: boolean): Decoded {
    const l = this.layout, D = l.dim, R = rowWidth(l), f16 = l.dtype === 'f16';
    const paths: string[] = [];
    const embs: Float32Array[] = [];
    const toks: Float32Array[] = [];
    for (const b of t.batches) {
      for (const p of b.getChild('path') as Iterable<unknown>) paths.push(String(p));
      embs.push(listValues(b.getChild('embedding') as never, D, f16));
      if (withTokens && R) toks.push(listValues(b.getChild('tokens') as never, R, f16));
    }
    return { paths, emb: concat(embs), tok: withTokens && R ? concat(toks) : undefined };
  }

  /** Decoded rows as a GalleryIndex sorted by path (as an .sgi index), checked like one. */
  private assemble(d: Decoded): GalleryIndex {
    const l = this.layout, D = l.dim, R = rowWidth(l), { paths } = d;
    const n = paths.length;
    const order = paths.map((_, i) => i).sort((a, b) => (paths[a]! < paths[b]! ? -1 : paths[a]! > paths[b]! ? 1 : 0));
    const embeddings = new Float32Array(n * D);
    order.forEach((r, i) => embeddings.set(d.emb.subarray(r * D, (r + 1) * D), i * D));
    let tokens: Float32Array | undefined;
    let projections: GalleryIndex['projections'];
    if (d.tok) {
      const row = l.tokens * D;
      const planes = [tokens = new Float32Array(n * row), ...Array.from({ length: l.planes }, () => new Float32Array(n * row))];
      order.forEach((r, i) => planes.forEach((dst, s) => dst.set(d.tok!.subarray(r * R + s * row, r * R + (s + 1) * row), i * row)));
      if (l.planes === 3) projections = { q: planes[1]!, v: planes[2]!, k: planes[3]! };
    }
    const sorted = order.map((r) => paths[r]!);
    checkRows(this.uri, sorted, embeddings, D, tokens);
    return {
      model: l.model, weightsPath: l.weightsPath, root: l.root, paths: sorted, dim: D, dtype: l.dtype, embeddings, tokens, projections,
      skipped: [], created: '', file: `lancedb:${this.uri}`,
    };
  }

  /** The whole table as an in-memory gallery (flat search), rows sorted by path as in an .sgi index. */
  async load(o: { tokens?: boolean } = {}): Promise<GalleryIndex> {
    const withTokens = o.tokens !== false && this.layout.tokens > 0;
    const t = await this.table.query().select(['path', 'embedding', ...(withTokens ? ['tokens'] : [])]).toArrow();
    return this.assemble(this.decode(t as never, withTokens));
  }

  /**
   * ANN candidates: for each of nq query embeddings the `perQuery` nearest rows by the table's vector index (inner
   * product; an exhaustive scan when it has none), their union returned as a small gallery with the stored
   * embeddings (and tokens), to be scored exactly. `nprobes`: IVF partitions searched per query.
   */
  async candidates(queries: Float32Array, nq: number, perQuery: number, o: { nprobes?: number; tokens?: boolean } = {}): Promise<GalleryIndex> {
    const l = this.layout, D = l.dim, R = rowWidth(l);
    const withTokens = o.tokens !== false && l.tokens > 0;
    const cols = ['path', 'embedding', ...(withTokens ? ['tokens'] : [])];
    const results = await Promise.all(Array.from({ length: nq }, (_, i) => {
      let q = this.table.vectorSearch(Array.from(queries.subarray(i * D, (i + 1) * D))).column('embedding').distanceType('dot').limit(perQuery).select(cols);
      if (o.nprobes) q = q.nprobes(o.nprobes);
      return q.toArrow();
    }));
    const seen = new Set<string>();
    const paths: string[] = [], embs: Float32Array[] = [], toks: Float32Array[] = [];
    for (const t of results) {
      const d = this.decode(t as never, withTokens);
      d.paths.forEach((p, i) => {
        if (seen.has(p)) return;
        seen.add(p);
        paths.push(p);
        embs.push(d.emb.subarray(i * D, (i + 1) * D));
        if (d.tok) toks.push(d.tok.subarray(i * R, (i + 1) * R));
      });
    }
    return this.assemble({ paths, emb: concat(embs), tok: withTokens && R ? concat(toks) : undefined });
  }

  /** Compacts the table's fragments (many small commits from sharded indexing) and drops old versions' files. */
  async optimize(): Promise<void> {
    await this.table.optimize({ cleanupOlderThan: new Date(Date.now() - 60_000) });
  }

  /** Builds (replaces) an IVF-PQ index on the embeddings for inner-product search. */
  async buildAnnIndex(o: { partitions?: number; subVectors?: number } = {}): Promise<void> {
    const { lancedb } = await loadLance();
    await this.table.createIndex('embedding', {
      config: lancedb.Index.ivfPq({ distanceType: 'dot', ...(o.partitions ? { numPartitions: o.partitions } : {}), ...(o.subVectors ? { numSubVectors: o.subVectors } : {}) }),
      replace: true,
    });
  }

  close(): void {
    this.table.close();
  }
}

interface Decoded { paths: string[]; emb: Float32Array; tok?: Float32Array }

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
