/**
 * Node-only: the zero-shot benchmark on a folder laid out as `<root>/sketch/<class>/*` and `<root>/photo/<class>/*`.
 * Sketches and photos are each taken in sorted relative-path order; a photo is relevant to a sketch when their
 * class folders match. Text queries (CAAN) are one per class, "a photo of a <class>" (classPrompt).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkFiniteScores } from '../models/embedding-check.ts';
import { SketchError } from '../core/errors.ts';
import { encodeFiles, type ImageEncoder } from './files.ts';
import { IMAGE_EXT } from './gallery.ts';
import { evaluateScores, perQueryMetrics, rankRow, type Metrics } from './metrics.ts';
import { asRetrievalModel, classPrompt, composeQueries, noTextTower, type AnyModel } from './model.ts';
import { relationScores } from './rerank.ts';

/**
 * ret: sketch -> photo cosine; rn: the relation score of every pair; ret+rn: the relation re-rank of the cosine top K;
 * text: one text query per class -> photo cosine (CAAN); text+rn: the text queries' cosine top K re-ranked by the
 * local text-photo alignment score (CAAN); sketch+text: each sketch composed with its own class's prompt (CAAN; it
 * uses the ground-truth class, so it is an upper-bound-style diagnostic, not a zero-shot protocol).
 */
export type EvalMode = 'ret' | 'rn' | 'ret+rn' | 'text' | 'text+rn' | 'sketch+text';
export const EVAL_MODES: readonly EvalMode[] = ['ret', 'rn', 'ret+rn', 'text', 'text+rn', 'sketch+text'];
/** In ret+rn and text+rn modes, pairs outside a query's top K keep cosine - RERANK_OFFSET: below every relation score (in (0, 1)). */
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

/** One class's metrics as a text query (text mode). */
export interface ClassMetrics {
  class: string;
  prompt: string;
  /** Photos of the class (relevant items). */
  n_photos: number;
  ap_all: number;
  ap_200: number;
  p_100: number;
  p_200: number;
}

export interface EvalResult extends Metrics {
  mode: EvalMode;
  rerank_k?: number;
  /** sketch+text: the text's weight in each composed query. */
  text_weight?: number;
  /** text, text+rn: each class's prompt and metrics, in class order. */
  per_class?: ClassMetrics[];
  /** Queries: sketches, or classes in text mode. */
  n_queries: number;
  /** Sketches encoded (0 in text mode). */
  n_sketches: number;
  n_photos: number;
  n_classes: number;
  /** RN pairs scored. */
  rn_pairs: number;
  timings_s: { embed: number; score: number; metrics: number; total: number };
  /** [n_queries, n_photos], higher = more similar. */
  scores: Float32Array;
}

export interface EvalOptions {
  rerankK?: number;
  textWeight?: number;
  /**
   * The photos' embeddings [n_photos, D] in dataset order, read from a gallery store instead of encoding the photo
   * files (modes that score by cosine only: ret, text, sketch+text).
   */
  photoEmbeddings?: Float32Array;
  /**
   * ANN: each query's candidate photos (dataset rows) from a vector index. Only they keep their (exact) cosine;
   * every other photo scores -RERANK_OFFSET, as if not returned. Modes that score by cosine only.
   */
  candidates?: (queries: Float32Array, nq: number) => Promise<number[][]>;
  onProgress?: (p: EvalProgress) => void;
  /** How the sketch and photo files are read and embedded (default: the engine's; see ImageEncoder). */
  encoder?: ImageEncoder;
}

export async function runEval(anyModel: AnyModel, data: Dataset, mode: EvalMode, o: EvalOptions = {}): Promise<EvalResult> {
  const model = asRetrievalModel(anyModel);
  if (!EVAL_MODES.includes(mode)) throw new SketchError('BAD_ARGUMENT', `unknown eval mode "${mode}"`, `Use one of ${EVAL_MODES.join(', ')}.`);
  const textQueries = mode === 'text' || mode === 'text+rn';
  const textMode = textQueries || mode === 'sketch+text';
  if (textMode && model.textContext === undefined) noTextTower();
  const t0 = performance.now();
  const ns = data.sketches.files.length, np = data.photos.files.length;
  const needTokens = mode === 'rn' || mode === 'ret+rn' || mode === 'text+rn';
  const tower = model.kind === 'zse-sbir' ? 'SA' : 'tower';
  if ((o.photoEmbeddings || o.candidates) && (needTokens)) {
    throw new SketchError('BAD_ARGUMENT', `mode ${mode} scores photo tokens, which an evaluation through a gallery store does not read`, 'Use --mode ret, text or sketch+text with --index, or drop --index to encode the photos.');
  }
  const prog = (stage: string, total: number) => (done: number) => o.onProgress?.({ stage, done, total });
  const prompts = data.classes.map(classPrompt);
  const sk = textQueries ? null : await encodeFiles(model, data.sketches.files, 'sketch', { tokens: needTokens, onProgress: prog(`sketch ${tower}`, ns), encoder: o.encoder });
  if (o.photoEmbeddings && o.photoEmbeddings.length !== np * model.dim) throw new RangeError(`photoEmbeddings: expected ${np}x${model.dim} values, got ${o.photoEmbeddings.length}`);
  const im = o.photoEmbeddings ? { emb: o.photoEmbeddings, tokens: undefined } : await encodeFiles(model, data.photos.files, 'photo', { tokens: needTokens, onProgress: prog(`photo ${tower}`, np), encoder: o.encoder });
  // text+rn also needs each prompt's projected tokens: one text-tower pass gives both.
  const textEnc = mode === 'text+rn' ? await model.encodeTextTokens(prompts) : null;
  const te = textEnc ? textEnc.emb : textMode ? await model.encodeTexts(prompts) : null;
  const t1 = performance.now();
  let scores: Float32Array;
  let rnPairs = 0;
  const rerankK = Math.min(o.rerankK ?? 100, np);
  const textWeight = o.textWeight ?? 0.5;
  let queryLabels = data.sketches.labels;
  let queryEmb = sk?.emb;
  if (textQueries) {
    const nc = data.classes.length;
    scores = await model.cosine(te!, nc, im.emb, np);
    queryEmb = te!;
    queryLabels = Int32Array.from(data.classes, (_, c) => c);
    if (mode === 'text+rn') {
      rnPairs = nc * rerankK;
      const local = prog('text-photo re-rank pairs', rnPairs);
      const top = Array.from({ length: nc }, (_, c) => rankRow(scores.subarray(c * np, (c + 1) * np)).slice(0, rerankK));
      const rel: Float32Array[] = [];
      for (let c = 0; c < nc; c++) {
        rel.push(await model.textRelation('photo', textEnc!.tokens[c]!, im.tokens!, np, Uint32Array.from(top[c]!)));
        local((c + 1) * rerankK);
      }
      for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! - RERANK_OFFSET;
      for (let c = 0; c < nc; c++) top[c]!.forEach((j, t) => { scores[c * np + j] = rel[c]![t]!; });
    }
  } else if (mode === 'sketch+text') {
    const q = composeQueries(sk!.emb, ns, te!, (i) => data.sketches.labels[i]!, textWeight, model.dim);
    scores = await model.cosine(q, ns, im.emb, np);
    queryEmb = q;
  } else if (mode === 'rn') {
    const pairs = new Uint32Array(2 * ns * np);
    for (let s = 0; s < ns; s++) for (let j = 0; j < np; j++) { pairs[2 * (s * np + j)] = s; pairs[2 * (s * np + j) + 1] = j; }
    rnPairs = ns * np;
    scores = await relationScores(model, sk!.tokens!, ns, im.tokens!, np, pairs, prog('RN pairs', rnPairs));
  } else {
    scores = await model.cosine(sk!.emb, ns, im.emb, np);
    if (mode === 'ret+rn') {
      const pairs = new Uint32Array(2 * ns * rerankK);
      for (let s = 0; s < ns; s++) {
        const order = rankRow(scores.subarray(s * np, (s + 1) * np));
        for (let t = 0; t < rerankK; t++) { pairs[2 * (s * rerankK + t)] = s; pairs[2 * (s * rerankK + t) + 1] = order[t]!; }
      }
      rnPairs = ns * rerankK;
      const rn = await relationScores(model, sk!.tokens!, ns, im.tokens!, np, pairs, prog('RN re-rank pairs', rnPairs));
      for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! - RERANK_OFFSET;
      for (let p = 0; p < rnPairs; p++) scores[pairs[2 * p]! * np + pairs[2 * p + 1]!] = rn[p]!;
    }
  }
  if (o.candidates) {
    const nq = queryLabels.length;
    const cand = await o.candidates(queryEmb!, nq);
    const keep = new Uint8Array(nq * np);
    cand.forEach((rows, q) => rows.forEach((j) => { keep[q * np + j] = 1; }));
    for (let i = 0; i < scores.length; i++) if (!keep[i]) scores[i] = -RERANK_OFFSET;
  }
  const t2 = performance.now();
  checkFiniteScores(scores, 'eval');
  const m = evaluateScores(scores, queryLabels, data.photos.labels);
  let perClass: ClassMetrics[] | undefined;
  if (textQueries) {
    const pq = perQueryMetrics(scores, queryLabels, data.photos.labels);
    const count = new Int32Array(data.classes.length);
    for (const l of data.photos.labels) count[l]!++;
    perClass = data.classes.map((c, i) => ({
      class: c, prompt: prompts[i]!, n_photos: count[i]!, ap_all: pq.ap_all[i]!, ap_200: pq.ap_200[i]!, p_100: pq.p_100[i]!, p_200: pq.p_200[i]!,
    }));
  }
  const t3 = performance.now();
  return {
    mode, ...(mode === 'ret+rn' || mode === 'text+rn' ? { rerank_k: rerankK } : {}), ...(mode === 'sketch+text' ? { text_weight: textWeight } : {}), ...m,
    ...(perClass ? { per_class: perClass } : {}),
    n_queries: queryLabels.length, n_sketches: sk ? ns : 0, n_photos: np, n_classes: data.classes.length, rn_pairs: rnPairs,
    timings_s: { embed: (t1 - t0) / 1000, score: (t2 - t1) / 1000, metrics: (t3 - t2) / 1000, total: (t3 - t0) / 1000 },
    scores,
  };
}
