/**
 * Node-only: the zero-shot benchmark on a folder laid out as `<root>/sketch/<class>/*` and `<root>/photo/<class>/*`.
 * Sketches and photos are each taken in sorted relative-path order; a photo is relevant to a sketch when their
 * class folders match.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SketchError } from '../errors.ts';
import type { ZseModel } from '../models/zse/model.ts';
import { encodeFiles } from './files.ts';
import { IMAGE_EXT } from './gallery.ts';
import { evaluateScores, rankRow, type Metrics } from './metrics.ts';
import { relationScores } from './rerank.ts';

export type EvalMode = 'ret' | 'rn' | 'ret+rn';
/** In ret+rn mode, pairs outside a sketch's top K keep cosine - RERANK_OFFSET: below every RN score (in (0, 1)). */
export const RERANK_OFFSET = 3;

export interface Dataset {
  classes: string[];
  sketches: { files: string[]; paths: string[]; labels: Int32Array };
  photos: { files: string[]; paths: string[]; labels: Int32Array };
}

export function listDataset(root: string): Dataset {
  const side = (kind: 'sketch' | 'photo') => {
    const dir = join(root, kind);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new SketchError('BAD_ARGUMENT', `${root} has no ${kind}/ folder`, 'The data root must hold sketch/<class>/ and photo/<class>/ folders (like ../shared/data/sketchy/unseen21-256).');
    }
    const classes = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
    const paths: string[] = [];
    for (const c of classes) for (const f of readdirSync(join(dir, c))) if (IMAGE_EXT.test(f) && !f.startsWith('.')) paths.push(`${c}/${f}`);
    paths.sort();
    if (paths.length === 0) throw new SketchError('EMPTY_GALLERY', `${dir} holds no images in class folders`, 'Put images under sketch/<class>/ and photo/<class>/.');
    return { paths, cls: paths.map((p) => p.slice(0, p.indexOf('/'))) };
  };
  const sk = side('sketch');
  const im = side('photo');
  const classes = [...new Set([...sk.cls, ...im.cls])].sort();
  const id = new Map(classes.map((c, i) => [c, i]));
  return {
    classes,
    sketches: { paths: sk.paths, files: sk.paths.map((p) => join(root, 'sketch', p)), labels: Int32Array.from(sk.cls, (c) => id.get(c)!) },
    photos: { paths: im.paths, files: im.paths.map((p) => join(root, 'photo', p)), labels: Int32Array.from(im.cls, (c) => id.get(c)!) },
  };
}

export interface EvalProgress { stage: string; done: number; total: number }

export interface EvalResult extends Metrics {
  mode: EvalMode;
  rerank_k?: number;
  n_sketches: number;
  n_photos: number;
  n_classes: number;
  /** RN pairs scored. */
  rn_pairs: number;
  timings_s: { embed: number; score: number; metrics: number; total: number };
  /** [n_sketches, n_photos], higher = more similar. */
  scores: Float32Array;
}

export async function runEval(model: ZseModel, data: Dataset, mode: EvalMode, o: { rerankK?: number; onProgress?: (p: EvalProgress) => void } = {}): Promise<EvalResult> {
  const t0 = performance.now();
  const ns = data.sketches.files.length, np = data.photos.files.length;
  const needTokens = mode !== 'ret';
  const prog = (stage: string, total: number) => (done: number) => o.onProgress?.({ stage, done, total });
  const sk = await encodeFiles(model, data.sketches.files, 'sketch', { tokens: needTokens, onProgress: prog('sketch SA', ns) });
  const im = await encodeFiles(model, data.photos.files, 'photo', { tokens: needTokens, onProgress: prog('photo SA', np) });
  const t1 = performance.now();
  let scores: Float32Array;
  let rnPairs = 0;
  const rerankK = Math.min(o.rerankK ?? 100, np);
  if (mode === 'rn') {
    const pairs = new Uint32Array(2 * ns * np);
    for (let s = 0; s < ns; s++) for (let j = 0; j < np; j++) { pairs[2 * (s * np + j)] = s; pairs[2 * (s * np + j) + 1] = j; }
    rnPairs = ns * np;
    scores = await relationScores(model, sk.tokens!, ns, im.tokens!, np, pairs, prog('RN pairs', rnPairs));
  } else {
    scores = await model.cosine(sk.emb, ns, im.emb, np);
    if (mode === 'ret+rn') {
      const pairs = new Uint32Array(2 * ns * rerankK);
      for (let s = 0; s < ns; s++) {
        const order = rankRow(scores.subarray(s * np, (s + 1) * np));
        for (let t = 0; t < rerankK; t++) { pairs[2 * (s * rerankK + t)] = s; pairs[2 * (s * rerankK + t) + 1] = order[t]!; }
      }
      rnPairs = ns * rerankK;
      const rn = await relationScores(model, sk.tokens!, ns, im.tokens!, np, pairs, prog('RN re-rank pairs', rnPairs));
      for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! - RERANK_OFFSET;
      for (let p = 0; p < rnPairs; p++) scores[pairs[2 * p]! * np + pairs[2 * p + 1]!] = rn[p]!;
    }
  }
  const t2 = performance.now();
  const m = evaluateScores(scores, data.sketches.labels, data.photos.labels);
  const t3 = performance.now();
  return {
    mode, ...(mode === 'ret+rn' ? { rerank_k: rerankK } : {}), ...m,
    n_sketches: ns, n_photos: np, n_classes: data.classes.length, rn_pairs: rnPairs,
    timings_s: { embed: (t1 - t0) / 1000, score: (t2 - t1) / 1000, metrics: (t3 - t2) / 1000, total: (t3 - t0) / 1000 },
    scores,
  };
}
