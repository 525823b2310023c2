/** Node-only: sketch queries against a gallery index, with an optional relation-network re-rank. */
import { SketchError } from '../errors.ts';
import type { ImageProjections, ZseModel } from '../models/zse/model.ts';
import { encodeFiles } from './files.ts';
import { galleryPath } from './gallery.ts';
import type { GalleryIndex } from './index-format.ts';
import { GallerySearch } from './search.ts';

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
  hits: QueryHit[];
}

export interface QueryOptions {
  model: ZseModel;
  index: GalleryIndex;
  sketches: string[];
  k: number;
  rerank?: 'rn';
  rerankK?: number;
  onStage?: (stage: string) => void;
}

export interface QueryRun {
  results: QueryResult[];
  timings_ms: { embed: number; search: number; rerank: number; total: number };
  /** [sketches, D] the sketches' SA embeddings. */
  sketchEmbeddings: Float32Array;
  /** Where the re-rank got the photos' SA tokens. */
  rerank_tokens?: 'index cache' | 'recomputed from the photo files';
}

export async function runQuery(o: QueryOptions): Promise<QueryRun> {
  const { model, index } = o;
  const t0 = performance.now();
  const D = model.config.dim;
  const rerank = o.rerank === 'rn';
  const K = rerank ? Math.max(o.k, o.rerankK ?? 100) : o.k;
  o.onStage?.('embedding sketches');
  const sk = await encodeFiles(model, o.sketches, 'sketch', { tokens: rerank });
  const t1 = performance.now();
  o.onStage?.('searching');
  const search = GallerySearch.create(model.ctx, index.embeddings, index.paths.length, D);
  let shortlist;
  try {
    shortlist = await search.search(sk.emb, o.sketches.length, Math.min(K, GallerySearch.MAX_K));
  } finally {
    search.destroy();
  }
  const t2 = performance.now();
  let rnScores: Map<string, number> | undefined;
  let tokensFrom: QueryRun['rerank_tokens'];
  if (rerank) {
    o.onStage?.('re-ranking');
    const unique = [...new Set(shortlist.flatMap((h) => h.map((x) => x.index)))].sort((a, b) => a - b);
    const pos = new Map(unique.map((g, i) => [g, i]));
    const row = model.tokens * D;
    let imTokens: Float32Array;
    let imProj: ImageProjections;
    const pick = (src: Float32Array) => {
      const out = new Float32Array(unique.length * row);
      unique.forEach((g, i) => out.set(src.subarray(g * row, (g + 1) * row), i * row));
      return out;
    };
    if (index.tokens && index.projections) {
      if (index.tokens.length / index.paths.length !== row) {
        throw new SketchError('BAD_INDEX', `the index caches ${index.tokens.length / index.paths.length / D} tokens per photo, the model makes ${model.tokens}`, 'Rebuild the index with these weights.');
      }
      imTokens = pick(index.tokens);
      imProj = { side: 'photo', q: pick(index.projections.q), v: pick(index.projections.v), k: pick(index.projections.k) };
      tokensFrom = 'index cache';
    } else {
      const files = unique.map((g) => galleryPath(index.root, index.paths[g]!));
      try {
        imTokens = (await encodeFiles(model, files, 'photo', { tokens: true })).tokens!;
      } catch (e) {
        throw new SketchError('IO', `the RN re-rank needs the shortlisted photos, and one cannot be read: ${(e as Error).message}`,
          'The index holds no cached tokens; rebuild it with `sketchgpu index --rn-cache`, or restore the photos.');
      }
      imProj = await model.projections(imTokens, unique.length, 'photo');
      tokensFrom = 'recomputed from the photo files';
    }
    // Each image's CA projections once, not once per pair (zse-sbir.md §13).
    const skProj = await model.projections(sk.tokens!, o.sketches.length, 'sketch');
    const pairs: number[] = [];
    shortlist.forEach((hits, s) => hits.forEach((h) => pairs.push(s, pos.get(h.index)!)));
    const scores = await model.relation(sk.tokens!, o.sketches.length, imTokens, unique.length, Uint32Array.from(pairs), { sketch: skProj, photo: imProj });
    rnScores = new Map();
    let p = 0;
    shortlist.forEach((hits, s) => hits.forEach((h) => rnScores!.set(`${s}:${h.index}`, scores[p++]!)));
  }
  const t3 = performance.now();
  const results = shortlist.map((hits, s) => {
    let list = hits.map((h) => ({ index: h.index, cosine: h.score, rn: rnScores?.get(`${s}:${h.index}`) }));
    if (rerank) list = list.sort((a, b) => b.rn! - a.rn! || a.index - b.index);
    return {
      sketch: o.sketches[s]!,
      hits: list.slice(0, o.k).map((h, r) => ({
        rank: r + 1, path: index.paths[h.index]!, file: galleryPath(index.root, index.paths[h.index]!),
        score: rerank ? h.rn! : h.cosine, cosine: h.cosine, ...(rerank ? { rn: h.rn } : {}),
      })),
    };
  });
  return {
    results,
    sketchEmbeddings: sk.emb,
    timings_ms: { embed: t1 - t0, search: t2 - t1, rerank: t3 - t2, total: t3 - t0 },
    ...(tokensFrom ? { rerank_tokens: tokensFrom } : {}),
  };
}
