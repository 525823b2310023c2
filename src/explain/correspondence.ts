/**
 * Why a sketch and a photo match, from ZSE-SBIR's own computation (../shared/docs/zse-sbir.md §3.3-3.5):
 * - the cross-attention maps: layer1 lets each sketch token i weigh the photo's token positions j,
 *   P_sk→im[i, j] = softmax_j(Q_sk[i] · K_im[j] / sqrt(d_k)), and layer2 the reverse; averaged over heads;
 * - the anchor cosine matrix [A, A] the relation network reads, and its score.
 * Token t >= 1 is the 16x16 patch at row (t-1) / G, column (t-1) % G of the preprocessed image.
 * Browser-safe.
 */
import type { ZseModel } from '../models/zse/model.ts';

export interface PairExplanation {
  /** Patch grid side G (tokens = 1 + G²). */
  grid: number;
  /** Image side of the model input (16·G). */
  imageSize: number;
  /** [T, T] head-averaged attention of sketch tokens (rows) over photo token positions (columns); rows sum to 1. */
  sketchToPhoto: Float32Array;
  /** [T, T] head-averaged attention of photo tokens (rows) over sketch token positions (columns). */
  photoToSketch: Float32Array;
  /** Anchor side and the [A, A] anchor cosine matrix (sketch anchors as rows), the RN's input. */
  anchorGrid: number;
  anchorCosine: Float32Array;
  /** Relation-network score (sigmoid) and the cosine of the SA embeddings. */
  rn: number;
  cosine: number;
}

/** Head-averaged softmax(Q Kᵀ / sqrt(dk)) for one pair, from projected q, k [T, D] (float64 accumulation). */
export function attentionMap(q: Float32Array, k: Float32Array, T: number, D: number, heads: number): Float32Array {
  const dk = D / heads;
  const out = new Float32Array(T * T);
  const row = new Float64Array(T);
  const scale = 1 / Math.sqrt(dk);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < T; i++) {
      let m = -Infinity;
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let d = h * dk; d < (h + 1) * dk; d++) s += q[i * D + d]! * k[j * D + d]!;
        row[j] = s * scale;
        if (row[j]! > m) m = row[j]!;
      }
      let z = 0;
      for (let j = 0; j < T; j++) z += (row[j] = Math.exp(row[j]! - m));
      for (let j = 0; j < T; j++) out[i * T + j] += row[j]! / z / heads;
    }
  }
  return out;
}

/** Explain one pair; the inputs are model inputs [3, S, S] (preprocessed sketch and photo). */
export async function explainPair(model: ZseModel, sketch: Float32Array, photo: Float32Array): Promise<PairExplanation> {
  const cfg = model.config;
  const T = model.tokens, D = cfg.dim;
  const sk = await model.encode(sketch, 1, { tokens: true });
  const im = await model.encode(photo, 1, { tokens: true });
  const r = await model.debugRelation(sk.tokens!, 1, im.tokens!, 1, new Uint32Array([0, 0]));
  let cosine = 0;
  for (let d = 0; d < D; d++) cosine += sk.emb[d]! * im.emb[d]!;
  return {
    grid: cfg.grid, imageSize: cfg.imageSize,
    sketchToPhoto: attentionMap(r['layer1.q']!, r['layer1.k']!, T, D, cfg.caHeads),
    photoToSketch: attentionMap(r['layer2.q']!, r['layer2.k']!, T, D, cfg.caHeads),
    anchorGrid: cfg.anchorGrid, anchorCosine: r.cos!, rn: r.score![0]!, cosine,
  };
}

export interface Correspondence {
  /** Patch indices (0-based, row-major on the G×G grid; token = patch + 1). */
  sketchPatch: number;
  photoPatch: number;
  /** The attention weight of the link. */
  weight: number;
}

/** For each sketch patch, its most attended photo patch (cls excluded); the strongest `top` links, strongest first. */
export function strongestLinks(e: PairExplanation, top: number, o: { minInk?: (patch: number) => boolean } = {}): Correspondence[] {
  const G = e.grid, T = 1 + G * G;
  const links: Correspondence[] = [];
  for (let i = 1; i < T; i++) {
    if (o.minInk && !o.minInk(i - 1)) continue;
    let best = 1, w = -1;
    for (let j = 1; j < T; j++) if (e.sketchToPhoto[i * T + j]! > w) { w = e.sketchToPhoto[i * T + j]!; best = j; }
    links.push({ sketchPatch: i - 1, photoPatch: best - 1, weight: w });
  }
  return links.sort((a, b) => b.weight - a.weight || a.sketchPatch - b.sketchPatch).slice(0, top);
}

/**
 * Patch heat: how much attention each patch receives from the other image's patches (cls rows and columns left
 * out), normalised to [0, 1]. Returns [G²] for the photo (from sketch→photo) and for the sketch (from photo→sketch).
 */
export function patchHeat(e: PairExplanation): { sketch: Float32Array; photo: Float32Array } {
  const G = e.grid, T = 1 + G * G;
  const recv = (P: Float32Array) => {
    const h = new Float32Array(G * G);
    for (let i = 1; i < T; i++) for (let j = 1; j < T; j++) h[j - 1] += P[i * T + j]!;
    const mx = Math.max(...h), mn = Math.min(...h);
    for (let k = 0; k < h.length; k++) h[k] = mx > mn ? (h[k]! - mn) / (mx - mn) : 0;
    return h;
  };
  return { photo: recv(e.sketchToPhoto), sketch: recv(e.photoToSketch) };
}

/** For each patch of one image, the best-matching patch of the other: argmax of the attention row (cls excluded). */
export function bestMatches(P: Float32Array, G: number): Uint32Array {
  const T = 1 + G * G;
  const out = new Uint32Array(G * G);
  for (let i = 1; i < T; i++) {
    let best = 1;
    for (let j = 2; j < T; j++) if (P[i * T + j]! > P[i * T + best]!) best = j;
    out[i - 1] = best - 1;
  }
  return out;
}
