/**
 * Node-only: builds a gallery index (index-format.ts) in batches on the GPU, resumably.
 *
 * Finished batches are appended to a journal `<out>.partial` (flushed to disk per batch), so an interrupted run
 * (Ctrl-C, a crash, a lost device) loses at most the batch in flight: running the same command again skips every
 * photo already in the journal. The journal starts with the identity of the weights; a journal from other weights
 * is refused rather than mixed in. The finished index is written to a temporary file and renamed into place.
 *
 * Journal records: u32 magic 'SGIJ', u32 path bytes, u32 status (0 embedded, 1 unreadable), u32 payload bytes,
 * the UTF-8 path, then the payload: D f32 embedding values (+ with --rn-cache, ZSE-SBIR: 4*T*D f32: tokens, then the
 * projections q2, v2, k1; CAAN: T*D f32 projected tokens) or a UTF-8 reason.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { SketchError, isSketchError } from '../core/errors.ts';
import { decodeImage } from '../io/image.ts';
import { readBoundedFileSync, readBoundedFile } from '../io/read-file.ts';
import { preprocessPhoto } from '../preprocess/index.ts';
import { galleryPath, listGallery } from './gallery.ts';
import { checkIndexHead, parseIndex, serializeIndex, type GalleryIndex, type ModelIdentity } from './index-format.ts';
import { asRetrievalModel, type AnyModel } from './model.ts';
import type { ImageEncoder } from './files.ts';

const MAGIC = 0x4a494753; // 'SGIJ'
const JOURNAL_HEAD = 'SKETCHGPU-INDEX-JOURNAL 1\n';

export interface BuildIndexOptions extends BuildProgress {
  /** ZseModel, CaanModel or a RetrievalModel adapter; `identity` must be its identity (RetrievalModel.identity). */
  model: AnyModel;
  identity: ModelIdentity;
  weightsPath: string;
  /** Folder of photos or a list file. */
  input: string;
  out: string;
  dtype?: 'f32' | 'f16';
  /** Also store each photo's tokens (and ZSE's CA projections) for RN re-ranking without photo encoding at query time. */
  rnCache?: boolean;
  /** Images per GPU forward (default: the model's maxBatch). */
  batch?: number;
  /** Overwrite an existing index instead of refusing. */
  force?: boolean;
  /** Reuse an existing index's embeddings (same weights) and add only new photos. */
  update?: boolean;
  /** How photos are read and embedded (default: the engine's decoders and the model's embed; see ImageEncoder). */
  encoder?: ImageEncoder;
}

/** What an index build reports while it runs, and how it is stopped (the .sgi builder and the LanceDB one). */
export interface BuildProgress {
  onStart?: (total: number, done: number) => void;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (path: string, reason: string) => void;
  /** Checked between batches: when it returns true the build stops, keeping what is done. */
  shouldStop?: () => boolean;
}

export interface BuildIndexResult {
  out: string;
  complete: boolean;
  total: number;
  embedded: number;
  /** Reused from a journal or an earlier index. */
  resumed: number;
  skipped: [string, string][];
  seconds: number;
}

/** tokens: T*D tokens then the model's per-image relation planes (ZSE: q2, v2, k1, 4*T*D in all), when cached. */
interface Entry { emb: Float32Array; tokens?: Float32Array }

function readJournal(file: string, identity: string, D: number, rowTokens: number) {
  const done = new Map<string, Entry>();
  const bytes = readFileSync(file);
  const headEnd = bytes.indexOf(10, JOURNAL_HEAD.length);
  const head = bytes.subarray(0, JOURNAL_HEAD.length).toString();
  if (head !== JOURNAL_HEAD || headEnd < 0) {
    throw new SketchError('BAD_INDEX', `${file} is not a sketchgpu index journal`, 'Delete it and run the command again.');
  }
  const id = bytes.subarray(JOURNAL_HEAD.length, headEnd).toString();
  if (id !== identity) {
    throw new SketchError('INDEX_MISMATCH', `${file} holds an unfinished index built with other weights or options (${id}).`,
      `Run with the same weights and options to resume it, or delete ${file} to start over.`);
  }
  let o = headEnd + 1;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (o + 16 <= bytes.length && dv.getUint32(o, true) === MAGIC) {
    const pl = dv.getUint32(o + 4, true), status = dv.getUint32(o + 8, true), bl = dv.getUint32(o + 12, true);
    if (o + 16 + pl + bl > bytes.length) break;
    const path = bytes.subarray(o + 16, o + 16 + pl).toString();
    const body = bytes.subarray(o + 16 + pl, o + 16 + pl + bl);
    if (status === 0) {
      if (bl !== 4 * (D + rowTokens)) break;
      const f = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + bl));
      done.set(path, { emb: f.subarray(0, D), tokens: rowTokens ? f.subarray(D) : undefined });
    }
    // Unreadable images (status 1) are not remembered: a resumed run tries them again.
    o += 16 + pl + bl;
  }
  return { done, validBytes: o };
}

function record(path: string, status: number, payload: Uint8Array): Buffer {
  const p = Buffer.from(path, 'utf8');
  const head = Buffer.alloc(16);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(p.length, 4);
  head.writeUInt32LE(status, 8);
  head.writeUInt32LE(payload.length, 12);
  return Buffer.concat([head, p, payload]);
}

async function loadPhoto(file: string, size: number): Promise<Float32Array> {
  return preprocessPhoto(decodeImage(await readBoundedFile(file, 'image'), basename(file)), size);
}

/** One embedded batch: each readable photo's payload (D embedding values, then with rnCache its tokens and planes). */
export interface EmbeddedBatch { ok: { path: string; payload: Float32Array }[]; bad: [string, string][] }

/**
 * Embeds the photos `todo` (relative to `root`) in batches, decoding batch i+1 on the CPU while the GPU encodes
 * batch i; `onBatch` receives each finished batch (and may persist it) before the next is handed over. Stops between
 * batches when `shouldStop` says so. The payload of a photo is D embedding values, followed with `rnCache` by its
 * T*D tokens and the model's per-image relation planes (ZSE-SBIR: q2, v2, k1).
 */
export async function embedPhotos(anyModel: AnyModel, root: string, todo: string[],
  o: { batch?: number; rnCache: boolean; shouldStop?: () => boolean; encoder?: ImageEncoder }, onBatch: (b: EmbeddedBatch) => void | Promise<void>): Promise<{ stopped: boolean }> {
  const model = asRetrievalModel(anyModel);
  const D = model.dim, S = model.imageSize, px = 3 * S * S, row = model.tokens * D;
  const rowTokens = o.rnCache ? (1 + model.relationPlanes) * row : 0;
  const B = Math.max(1, Math.min(o.batch ?? model.maxBatch, model.maxBatch));
  const prepare = async (paths: string[]) => {
    const data = new Float32Array(paths.length * px);
    const ok: string[] = [];
    const bad: [string, string][] = [];
    for (const p of paths) {
      try {
        const file = galleryPath(root, p);
        data.set(await (o.encoder ? o.encoder.load(file, 'photo') : loadPhoto(file, S)), ok.length * px);
        ok.push(p);
      } catch (e) {
        bad.push([p, isSketchError(e) ? e.message : (e as Error).message]);
      }
    }
    return { data: data.subarray(0, ok.length * px), ok, bad };
  };
  let next = todo.length ? prepare(todo.slice(0, B)) : null;
  for (let i = 0; i < todo.length; i += B) {
    const cur = await next!;
    const run = !cur.ok.length ? Promise.resolve(null)
      : o.encoder ? o.encoder.embed(cur.data, cur.ok.length, 'photo', { tokens: o.rnCache }) : model.embed(cur.data, cur.ok.length, 'photo', { tokens: o.rnCache });
    next = i + B < todo.length ? prepare(todo.slice(i + B, i + 2 * B)) : null;
    const r = await run;
    const side = r && o.rnCache ? await model.relationSide(r.tokens!, cur.ok.length, 'photo', true) : null;
    const ok = cur.ok.map((path, k) => {
      const payload = new Float32Array(D + rowTokens);
      payload.set(r!.emb.subarray(k * D, (k + 1) * D));
      if (side) [side.tokens, ...(side.planes ?? [])].forEach((src, s) => payload.set(src.subarray(k * row, (k + 1) * row), D + s * row));
      return { path, payload };
    });
    await onBatch({ ok, bad: cur.bad });
    if (o.shouldStop?.() && i + B < todo.length) {
      await next?.catch(() => null);
      return { stopped: true };
    }
  }
  return { stopped: false };
}

/** Whether a process of this pid exists (EPERM: it exists but belongs to another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<out>.lock` (created exclusively, holding this process's pid) so that two `index` runs on one output do not
 * interleave their journals and renames; a lock left by a process that no longer exists is taken over. Returns the
 * release function.
 */
export function lockIndexOutput(out: string): () => void {
  const lock = `${out}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => {
        try {
          if (readFileSync(lock, 'utf8').trim() === String(process.pid)) unlinkSync(lock);
        } catch {
          // already gone
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SketchError('IO', `cannot create the lock file ${lock}: ${(e as Error).message}`, 'Check that the output folder exists and is writable.', { cause: e });
      }
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(lock, 'utf8').trim());
    } catch {
      continue; // released meanwhile: try again
    }
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
      throw new SketchError('BUSY', `${out} is being built by another sketchgpu index run (pid ${holder}, lock file ${lock})`,
        `Wait for that run to finish (it can be resumed later with the same command); if no process ${holder} is running sketchgpu, delete ${lock}.`);
    }
    // A stale lock (its process is gone, or it is unreadable): take it over.
    try {
      unlinkSync(lock);
    } catch {
      // another run took it over first; the next attempt sees its lock
    }
  }
  throw new SketchError('BUSY', `could not take the lock file ${lock}: other runs keep taking it`, 'Run one `sketchgpu index` per output file at a time.');
}

export async function buildIndex(o: BuildIndexOptions): Promise<BuildIndexResult> {
  const release = lockIndexOutput(o.out);
  try {
    return await buildIndexLocked(o);
  } finally {
    release();
  }
}

async function buildIndexLocked(o: BuildIndexOptions): Promise<BuildIndexResult> {
  const t0 = performance.now();
  const model = asRetrievalModel(o.model);
  if (o.identity.family !== model.kind) {
    throw new SketchError('BAD_ARGUMENT', `the identity says ${o.identity.family} weights, the model is ${model.kind}`, 'Pass model.identity(weightsHash(tensors)).');
  }
  const D = model.dim;
  const row = model.tokens * D;
  const planes = model.relationPlanes;
  const rowTokens = o.rnCache ? (1 + planes) * row : 0; // tokens + the relation planes (ZSE: 3 projections)
  const dtype = o.dtype ?? 'f32';
  const list = listGallery(o.input);
  const journal = `${o.out}.partial`;
  const identity = JSON.stringify({ weights_sha256: o.identity.weights_sha256, dim: D, tokens: o.rnCache ? model.tokens : 0, root: list.root });

  const done = new Map<string, Entry>();
  if (existsSync(o.out) && !o.force) {
    if (!o.update) {
      throw new SketchError('EXISTS', `${o.out} already exists.`, 'Use --update to add new photos to it, or --force to rebuild it from scratch.');
    }
    const old = parseIndex(readBoundedFileSync(o.out, 'index', undefined, (h, size) => checkIndexHead(h, size, o.out)), o.out);
    if (old.model.weights_sha256 !== o.identity.weights_sha256) {
      throw new SketchError('INDEX_MISMATCH', `${o.out} was built with other weights; --update cannot mix embeddings of two models.`, 'Use --force to rebuild it with these weights.');
    }
    const T = old.tokens ? old.tokens.length / old.paths.length / D : 0;
    if (!o.rnCache || (T === model.tokens && (planes === 0 || old.projections))) {
      old.paths.forEach((p, i) => {
        let tokens: Float32Array | undefined;
        if (o.rnCache) {
          tokens = new Float32Array(rowTokens);
          const pr = old.projections;
          [old.tokens!, ...(planes && pr ? [pr.q, pr.v, pr.k] : [])].forEach((src, s) => tokens!.set(src.subarray(i * row, (i + 1) * row), s * row));
        }
        done.set(p, { emb: old.embeddings.slice(i * D, (i + 1) * D), tokens });
      });
    }
  }
  let fd: number;
  if (existsSync(journal) && statSync(journal).size > 0) {
    const j = readJournal(journal, identity, D, rowTokens);
    for (const [k, v] of j.done) done.set(k, v);
    truncateSync(journal, j.validBytes); // drop a torn last record
    fd = openSync(journal, 'a');
  } else {
    fd = openSync(journal, 'w');
    writeSync(fd, JOURNAL_HEAD + identity + '\n');
  }
  const wanted = new Set(list.paths);
  const resumed = [...done.keys()].filter((p) => wanted.has(p)).length;
  const todo = list.paths.filter((p) => !done.has(p));
  const skipped: [string, string][] = [];
  const total = list.paths.length;
  o.onStart?.(total, resumed);

  let stopped = false;
  let embedded = 0;
  try {
    const r = await embedPhotos(model, list.root, todo, { batch: o.batch, rnCache: !!o.rnCache, shouldStop: o.shouldStop, encoder: o.encoder }, (b) => {
      const chunks: Buffer[] = [];
      for (const { path: p, payload } of b.ok) {
        done.set(p, { emb: payload.subarray(0, D), tokens: rowTokens ? payload.subarray(D) : undefined });
        chunks.push(record(p, 0, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)));
      }
      for (const [p, why] of b.bad) {
        skipped.push([p, why]);
        o.onSkip?.(p, why);
        chunks.push(record(p, 1, Buffer.from(why, 'utf8')));
      }
      writeSync(fd, Buffer.concat(chunks));
      fsyncSync(fd);
      embedded += b.ok.length;
      o.onProgress?.(resumed + embedded + skipped.length, total);
    });
    stopped = r.stopped;
  } finally {
    closeSync(fd);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (stopped) return { out: journal, complete: false, total, embedded, resumed, skipped, seconds };

  const paths = list.paths.filter((p) => done.has(p));
  if (paths.length === 0) {
    throw new SketchError('EMPTY_GALLERY', `none of the ${total} images in ${o.input} could be read`, `The first error: ${skipped[0]?.[0]}: ${skipped[0]?.[1]}`);
  }
  const embeddings = new Float32Array(paths.length * D);
  const n = paths.length;
  const tokens = rowTokens ? new Float32Array(n * row) : undefined;
  const projections = rowTokens && planes ? { q: new Float32Array(n * row), v: new Float32Array(n * row), k: new Float32Array(n * row) } : undefined;
  paths.forEach((p, i) => {
    const e = done.get(p)!;
    embeddings.set(e.emb, i * D);
    if (tokens) {
      [tokens, ...(projections ? [projections.q, projections.v, projections.k] : [])].forEach((dst, s) => dst.set(e.tokens!.subarray(s * row, (s + 1) * row), i * row));
    }
  });
  const ix: GalleryIndex = {
    model: o.identity, weightsPath: o.weightsPath, root: list.root, paths, dim: D, dtype, embeddings, tokens, projections, skipped,
    created: new Date().toISOString(),
  };
  const tmp = `${o.out}.tmp`;
  const bytes = serializeIndex(ix);
  const wfd = openSync(tmp, 'w');
  try {
    // One write call takes at most 2 GiB (Node refuses more): a large gallery's index goes out in 1 GiB pieces.
    for (let o = 0; o < bytes.length; o += 1 << 30) writeSync(wfd, bytes, o, Math.min(1 << 30, bytes.length - o));
    fsyncSync(wfd);
  } finally {
    closeSync(wfd);
  }
  renameSync(tmp, o.out);
  unlinkSync(journal);
  return { out: o.out, complete: true, total, embedded, resumed, skipped, seconds };
}
