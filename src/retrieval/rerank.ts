import { asRetrievalModel, type AnyModel } from './model.ts';

/** Host memory allowed for caching every image's per-image relation planes (ZSE: CA projections, 3 x T x D floats per image). */
const PROJECTION_CACHE_BYTES = 1 << 30;

/**
 * Relation-network scores for a list of (sketch, photo) pairs. Each image's CA projections are computed once and
 * reused by all its pairs (zse-sbir.md §13) when they fit in host memory; the pairs are also ordered so that each
 * GPU chunk covers a small block of sketches x photos (without the cache, the block's images then share their
 * projections). Returns the scores in the input order.
 */
export async function relationScores(
  anyModel: AnyModel, skTokens: Float32Array, ns: number, imTokens: Float32Array, np: number,
  pairs: Uint32Array, onProgress?: (done: number) => void,
): Promise<Float32Array> {
  const model = asRetrievalModel(anyModel);
  const P = pairs.length / 2;
  const chunk = model.maxPairs;
  // Block side for sketches: about sqrt(chunk) sketches per chunk.
  const a = Math.max(1, Math.floor(Math.sqrt(chunk)));
  const order = Array.from({ length: P }, (_, i) => i).sort((x, y) => {
    const bx = Math.floor(pairs[2 * x]! / a), by = Math.floor(pairs[2 * y]! / a);
    return bx - by || pairs[2 * x + 1]! - pairs[2 * y + 1]! || pairs[2 * x]! - pairs[2 * y]!;
  });
  const sorted = new Uint32Array(2 * P);
  order.forEach((src, i) => { sorted[2 * i] = pairs[2 * src]!; sorted[2 * i + 1] = pairs[2 * src + 1]!; });
  const out = new Float32Array(P);
  const step = chunk * 16;
  const precompute = model.relationPlanes > 0 && model.relationPlanes * (ns + np) * model.tokens * model.dim * 4 <= PROJECTION_CACHE_BYTES;
  const sk = await model.relationSide(skTokens, ns, 'sketch', precompute);
  const im = await model.relationSide(imTokens, np, 'photo', precompute);
  for (let p0 = 0; p0 < P; p0 += step) {
    const part = sorted.subarray(2 * p0, 2 * Math.min(P, p0 + step));
    const s = await model.relation(sk, im, part);
    for (let i = 0; i < s.length; i++) out[order[p0 + i]!] = s[i]!;
    onProgress?.(Math.min(P, p0 + step));
  }
  return out;
}
