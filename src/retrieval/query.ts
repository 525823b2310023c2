/**
 * Node-only: queries against a gallery index — sketches (optionally composed with a text, CAAN) with an optional
 * relation-network re-rank, and text queries (CAAN) — by cosine top-k on the GPU.
 */
import { SketchError } from '../core/errors.ts';
import { checkFiniteScores } from '../models/embedding-check.ts';
import { encodeFiles, type ImageEncoder } from './files.ts';
import { confinedGalleryPath } from './gallery.ts';
import type { GalleryIndex } from './index-format.ts';
import { asRetrievalModel, composeQueries, type AnyModel, type RelationSide, type RetrievalModel } from './model.ts';
import { GallerySearch, type SearchHit } from './search.ts';

export interface QueryHit {
  rank: number;
  path: string;
  /** Absolute path of the photo. */
  file: string;
  /** The ranking score: the RN score after a re-rank, else the cosine. */
  score: number;
  cosine: number;
  rn?: number;
}

export interface QueryResult {
  sketch: string;
  /** The text the sketch was composed with (sketch+text queries). */
  text?: string;
  hits: QueryHit[];
}

export interface TextQueryResult {
  text: string;
  hits: QueryHit[];
}

export interface QueryOptions {
  /** ZseModel, CaanModel or a RetrievalModel adapter. */
  model: AnyModel;
  index: GalleryIndex;
  sketches: string[];
  k: number;
  rerank?: 'rn';
  rerankK?: number;
  /**
   * Texts to compose with the sketches (CAAN): one for every sketch, or one per sketch in order. Each query is then
   * normalise((1 - textWeight)·sketch + textWeight·text) of the unit embeddings (composeQueries).
   */
  texts?: string[];
  /** Weight of the text in a composed query, in [0, 1] (default 0.5). */
  textWeight?: number;
  /** ANN: narrows the search to candidates (AnnSource); without it the search is exhaustive over `index`. */
  ann?: AnnSource;
  onStage?: (stage: string) => void;
  /** How the sketches (and a re-rank's photos) are read and embedded (default: the engine's; see ImageEncoder). */
  encoder?: ImageEncoder;
  /**
   * The index's embeddings already on the GPU (`GallerySearch.create` of `index`), kept by a caller that queries one
   * index many times (the search server); without it each call uploads them. Not used with `ann`.
   */
  search?: GallerySearch;
}

/**
 * Approximate candidates from a vector store (store/lance.ts): for the query embeddings, the union of each query's
 * `perQuery` nearest rows with their stored embeddings (and tokens). The exact GPU search then runs over these rows
 * only, so an ANN miss can drop a photo from the results but never changes a returned photo's score.
 */
export interface AnnSource {
  perQuery: number;
  candidates(queries: Float32Array, nq: number, perQuery: number): Promise<GalleryIndex>;
}

export interface QueryRun {
  results: QueryResult[];
  timings_ms: { embed: number; search: number; rerank: number; total: number };
  /** [sketches, D] the sketches' global embeddings. */
  sketchEmbeddings: Float32Array;
  /** [sketches, D] the composed embeddings searched with (sketch+text queries only). */
  queryEmbeddings?: Float32Array;
  /** Where the re-rank got the photos' tokens. */
  rerank_tokens?: 'index cache' | 'recomputed from the photo files';
  /** With ANN: the candidates per query asked for, and the distinct rows scored exactly. */
  ann?: { per_query: number; rows_scored: number };
}

export interface TextQueryOptions {
  /** A model with a text tower (CAAN). */
  model: AnyModel;
  index: GalleryIndex;
  texts: string[];
  k: number;
  /** Re-rank each text's cosine top rerankK (default 100) by the local text-photo alignment score (CAAN). */
  rerank?: 'rn';
  rerankK?: number;
  /** ANN: narrows the search to candidates (see QueryOptions.ann). */
  ann?: AnnSource;
  onStage?: (stage: string) => void;
  /** How a re-rank's photos are read and embedded (default: the engine's; see ImageEncoder). */
  encoder?: ImageEncoder;
  /** The index's embeddings already on the GPU (see QueryOptions.search). */
  search?: GallerySearch;
}

export interface TextQueryRun {
  results: TextQueryResult[];
  timings_ms: { embed: number; search: number; rerank: number; total: number };
  /** Where the re-rank got the photos' tokens. */
  rerank_tokens?: QueryRun['rerank_tokens'];
  /** [texts, D] the texts' embeddings. */
  textEmbeddings: Float32Array;
  ann?: QueryRun['ann'];
}

/** The gallery the exact search runs over: the index, or with ANN the union of the queries' candidates. */
async function searchGallery(o: { index: GalleryIndex; ann?: AnnSource }, queries: Float32Array, nq: number, K: number): Promise<{ index: GalleryIndex; ann?: QueryRun['ann'] }> {
  if (!o.ann) return { index: o.index };
  const perQuery = Math.max(K, o.ann.perQuery);
  const index = await o.ann.candidates(queries, nq, perQuery);
  if (index.dim !== o.index.dim) throw new SketchError('INDEX_MISMATCH', `the ANN candidates are ${index.dim}-d, the index ${o.index.dim}-d`, 'Rebuild the store.');
  return { index, ann: { per_query: perQuery, rows_scored: index.paths.length } };
}

/** The K best index rows for each query embedding (on `kept`, the index already on the GPU, when given). */
async function searchIndex(model: { ctx: GallerySearch['ctx'] }, index: GalleryIndex, queries: Float32Array, nq: number, K: number, kept?: GallerySearch): Promise<SearchHit[][]> {
  if (kept) {
    if (kept.n !== index.paths.length || kept.dim !== index.dim) {
      throw new SketchError('BAD_ARGUMENT', `the kept search holds ${kept.n} x ${kept.dim} embeddings, the index ${index.paths.length} x ${index.dim}`, 'Pass the GallerySearch made from this index.');
    }
    return kept.search(queries, nq, Math.min(K, GallerySearch.MAX_K));
  }
  const search = GallerySearch.create(model.ctx, index.embeddings, index.paths.length, index.dim);
  try {
    return await search.search(queries, nq, Math.min(K, GallerySearch.MAX_K));
  } finally {
    search.destroy();
  }
}

function checkDim(modelDim: number, index: GalleryIndex): void {
  if (modelDim !== index.dim) {
    throw new SketchError('INDEX_MISMATCH', `the index holds ${index.dim}-d embeddings, the model makes ${modelDim}-d ones`, 'Query with the weights the index was built with.');
  }
}

/**
 * Text -> photo: each text's embedding (CAAN's text tower) against the index by cosine; with rerank 'rn', each
 * text's top rerankK re-ranked by the local text-photo alignment score (cross-attention both ways, best word per
 * anchor, docs/caan.md).
 */
export async function runTextQuery(o: TextQueryOptions): Promise<TextQueryRun> {
  const model = asRetrievalModel(o.model);
  checkDim(model.dim, o.index);
  if (o.texts.length === 0) throw new SketchError('BAD_ARGUMENT', 'no text to search for', 'Pass --text "<what to find>".');
  const rerank = o.rerank === 'rn';
  const K = rerank ? Math.max(o.k, o.rerankK ?? 100) : o.k;
  const t0 = performance.now();
  o.onStage?.('embedding texts');
  // The re-rank needs each text's projected tokens too: one text-tower pass gives both.
  const enc = rerank ? await model.encodeTextTokens(o.texts) : { emb: await model.encodeTexts(o.texts), tokens: [] };
  const emb = enc.emb;
  const t1 = performance.now();
  o.onStage?.('searching');
  const { index, ann } = await searchGallery(o, emb, o.texts.length, K);
  const shortlist = await searchIndex(model, index, emb, o.texts.length, K, ann ? undefined : o.search);
  const t2 = performance.now();
  let local: Float32Array[] | undefined;
  let tokensFrom: QueryRun['rerank_tokens'];
  if (rerank) {
    o.onStage?.('re-ranking');
    const unique = [...new Set(shortlist.flatMap((h) => h.map((x) => x.index)))].sort((a, b) => a - b);
    const pos = new Map(unique.map((g, i) => [g, i]));
    const { side: im, from } = await shortlistPhotos(model, index, unique, false, 'the text re-rank', o.encoder);
    tokensFrom = from;
    local = [];
    for (let t = 0; t < o.texts.length; t++) {
      local.push(await model.textRelation('photo', enc.tokens[t]!, im.tokens, im.n, Uint32Array.from(shortlist[t]!, (h) => pos.get(h.index)!)));
    }
  }
  const t3 = performance.now();
  for (const hits of shortlist) checkFiniteScores(hits.map((h) => h.score), 'text query');
  for (const l of local ?? []) checkFiniteScores(l, 'text query re-rank');
  return {
    results: shortlist.map((hits, i) => {
      let list = hits.map((h, r) => ({ index: h.index, cosine: h.score, rn: local?.[i]![r] }));
      if (rerank) list = list.sort((a, b) => b.rn! - a.rn! || a.index - b.index);
      return {
        text: o.texts[i]!,
        hits: list.slice(0, o.k).map((h, r) => ({
          rank: r + 1, path: index.paths[h.index]!, file: confinedGalleryPath(index.root, index.paths[h.index]!, index.file),
          score: rerank ? h.rn! : h.cosine, cosine: h.cosine, ...(rerank ? { rn: h.rn } : {}),
        })),
      };
    }),
    textEmbeddings: emb,
    timings_ms: { embed: t1 - t0, search: t2 - t1, rerank: t3 - t2, total: t3 - t0 },
    ...(tokensFrom ? { rerank_tokens: tokensFrom } : {}),
    ...(ann ? { ann } : {}),
  };
}

/**
 * The relation side of the shortlisted index rows `unique` (ascending): their tokens (and per-image planes when
 * `precompute`) from the index's cache when it has them, else recomputed from the photo files.
 */
async function shortlistPhotos(model: RetrievalModel, index: GalleryIndex, unique: number[], precompute: boolean, what: string, encoder?: ImageEncoder): Promise<{ side: RelationSide; from: NonNullable<QueryRun['rerank_tokens']> }> {
  const row = model.tokens * model.dim;
  const pick = (src: Float32Array) => {
    const out = new Float32Array(unique.length * row);
    unique.forEach((g, i) => out.set(src.subarray(g * row, (g + 1) * row), i * row));
    return out;
  };
  if (index.tokens && (index.projections || !precompute)) {
    if (index.tokens.length / index.paths.length !== row) {
      throw new SketchError('BAD_INDEX', `the index caches ${index.tokens.length / index.paths.length / model.dim} tokens per photo, the model makes ${model.tokens}`, 'Rebuild the index with these weights.');
    }
    const pr = index.projections;
    return { side: { side: 'photo', n: unique.length, tokens: pick(index.tokens), ...(precompute && pr ? { planes: [pick(pr.q), pick(pr.v), pick(pr.k)] } : {}) }, from: 'index cache' };
  }
  const files = unique.map((g) => confinedGalleryPath(index.root, index.paths[g]!, index.file));
  let imTokens: Float32Array;
  try {
    imTokens = (await encodeFiles(model, files, 'photo', { tokens: true, encoder })).tokens!;
  } catch (e) {
    throw new SketchError('IO', `${what} needs the shortlisted photos, and one cannot be read: ${(e as Error).message}`,
      'The index holds no cached tokens; rebuild it with `sketchgpu index --rn-cache`, or restore the photos.');
  }
  return { side: await model.relationSide(imTokens, unique.length, 'photo', precompute), from: 'recomputed from the photo files' };
}

export async function runQuery(o: QueryOptions): Promise<QueryRun> {
  const model = asRetrievalModel(o.model);
  const t0 = performance.now();
  const D = model.dim;
  const rerank = o.rerank === 'rn';
  const K = rerank ? Math.max(o.k, o.rerankK ?? 100) : o.k;
  const texts = o.texts ?? [];
  const ns = o.sketches.length;
  if (texts.length > 1 && texts.length !== ns) {
    throw new SketchError('BAD_ARGUMENT', `${texts.length} texts for ${ns} sketch${ns > 1 ? 'es' : ''}: a composed query takes one text for all sketches, or one per sketch`,
      'Pass --text once, or once per sketch (in the same order).');
  }
  if (texts.length) checkDim(model.dim, o.index);
  o.onStage?.('embedding sketches');
  const sk = await encodeFiles(model, o.sketches, 'sketch', { tokens: rerank, encoder: o.encoder });
  let queries = sk.emb;
  if (texts.length) {
    o.onStage?.('embedding texts');
    const te = await model.encodeTexts(texts);
    queries = composeQueries(sk.emb, ns, te, (i) => (texts.length === 1 ? 0 : i), o.textWeight ?? 0.5, D);
  }
  const t1 = performance.now();
  o.onStage?.('searching');
  const { index, ann } = await searchGallery(o, queries, ns, K);
  const shortlist = await searchIndex(model, index, queries, ns, K, ann ? undefined : o.search);
  const t2 = performance.now();
  let rnScores: Map<string, number> | undefined;
  let tokensFrom: QueryRun['rerank_tokens'];
  if (rerank) {
    o.onStage?.('re-ranking');
    const unique = [...new Set(shortlist.flatMap((h) => h.map((x) => x.index)))].sort((a, b) => a - b);
    const pos = new Map(unique.map((g, i) => [g, i]));
    const precompute = model.relationPlanes > 0;
    const { side: im, from } = await shortlistPhotos(model, index, unique, precompute, 'the RN re-rank', o.encoder);
    tokensFrom = from;
    // Each image's per-image relation planes once, not once per pair (ZSE's CA projections, zse-sbir.md §13).
    const skSide = await model.relationSide(sk.tokens!, ns, 'sketch', precompute);
    const pairs: number[] = [];
    shortlist.forEach((hits, s) => hits.forEach((h) => pairs.push(s, pos.get(h.index)!)));
    const scores = await model.relation(skSide, im, Uint32Array.from(pairs));
    rnScores = new Map();
    let p = 0;
    shortlist.forEach((hits, s) => hits.forEach((h) => rnScores!.set(`${s}:${h.index}`, scores[p++]!)));
  }
  const t3 = performance.now();
  for (const hits of shortlist) checkFiniteScores(hits.map((h) => h.score), 'query');
  if (rnScores) checkFiniteScores([...rnScores.values()], 'query re-rank');
  const results = shortlist.map((hits, s) => {
    let list = hits.map((h) => ({ index: h.index, cosine: h.score, rn: rnScores?.get(`${s}:${h.index}`) }));
    if (rerank) list = list.sort((a, b) => b.rn! - a.rn! || a.index - b.index);
    return {
      sketch: o.sketches[s]!,
      ...(texts.length ? { text: texts[texts.length === 1 ? 0 : s]! } : {}),
      hits: list.slice(0, o.k).map((h, r) => ({
        rank: r + 1, path: index.paths[h.index]!, file: confinedGalleryPath(index.root, index.paths[h.index]!, index.file),
        score: rerank ? h.rn! : h.cosine, cosine: h.cosine, ...(rerank ? { rn: h.rn } : {}),
      })),
    };
  });
  return {
    results,
    sketchEmbeddings: sk.emb,
    ...(texts.length ? { queryEmbeddings: queries } : {}),
    timings_ms: { embed: t1 - t0, search: t2 - t1, rerank: t3 - t2, total: t3 - t0 },
    ...(tokensFrom ? { rerank_tokens: tokensFrom } : {}),
    ...(ann ? { ann } : {}),
  };
}
