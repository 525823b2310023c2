/**
 * The ZS-SBIR benchmark metrics exactly as the reference computes them (../shared/docs/zse-sbir.md §6.2,
 * `utils/ap.py`): VOC-interpolated AP over the full ranking (mAP@all) and the top 200 (mAP@200), and precision at
 * 100 and 200 with the reference's min(K, #relevant) denominator. Queries without a relevant item give NaN and are
 * left out of the means (np.nanmean).
 *
 * Ranking: scores are "higher = more similar". The reference sorts distances with numpy's unstable quicksort, so its
 * ties fall in an unspecified order; here ties are broken by the lower gallery index (sorted relative path order),
 * which makes every number reproducible.
 */

export interface Metrics {
  map_all: number;
  map_200: number;
  precision_100: number;
  precision_200: number;
  /** Queries with at least one relevant gallery item (the others are left out, as np.nanmean does). */
  queries_scored: number;
}

/** Gallery indices of one score row, best first: value descending, then index ascending; NaN last. */
export function rankRow(scores: ArrayLike<number>): Uint32Array {
  const n = scores.length;
  const key = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const v = scores[j]!;
    key[j] = Number.isNaN(v) ? -Infinity : v;
  }
  const order = new Uint32Array(n);
  for (let j = 0; j < n; j++) order[j] = j;
  return order.sort((a, b) => key[b]! - key[a]! || a - b);
}

/** VOC-interpolated AP of a binary relevance list (in rank order), over its first `top` items when given. */
export function vocAp(rel: ArrayLike<number>, top?: number): number {
  let P = 0;
  for (let i = 0; i < rel.length; i++) P += rel[i]!;
  let n = rel.length;
  if (top !== undefined) {
    n = Math.min(top, n);
    P = Math.min(top, P);
  }
  // mrec = [0, rec..., 1], mpre = [0, prec..., 0] with rec = tp/P, prec = tp/(tp+fp).
  const mrec = new Float64Array(n + 2);
  const mpre = new Float64Array(n + 2);
  let tp = 0;
  for (let i = 0; i < n; i++) {
    tp += rel[i]!;
    mrec[i + 1] = tp / P;
    mpre[i + 1] = tp / (i + 1);
  }
  mrec[n + 1] = 1;
  for (let i = n; i >= 1; i--) mpre[i - 1] = Math.max(mpre[i - 1]!, mpre[i]!);
  let ap = 0;
  for (let i = 0; i <= n; i++) {
    // np.where(mrec[1:] != mrec[:-1]): NaN (P = 0) differs from everything, so the sum becomes NaN.
    if (mrec[i + 1] !== mrec[i]) ap += (mrec[i + 1]! - mrec[i]!) * mpre[i + 1]!;
  }
  return ap;
}

/** The reference's precision_eval: mean of the first min(K, #relevant) items; NaN without relevant items. */
export function precisionAt(rel: ArrayLike<number>, K: number): number {
  let P = 0;
  for (let i = 0; i < rel.length; i++) P += rel[i]!;
  const m = Math.min(K, P, rel.length);
  if (m === 0) return Number.NaN;
  let hits = 0;
  for (let i = 0; i < m; i++) hits += rel[i]!;
  return hits / m;
}

function nanMean(xs: number[]): number {
  const ok = xs.filter((x) => !Number.isNaN(x));
  return ok.length === 0 ? Number.NaN : ok.reduce((a, b) => a + b, 0) / ok.length;
}

/** Each query's AP@all, AP@200, P@100 and P@200 (NaN for a query without relevant items). */
export interface PerQueryMetrics {
  ap_all: number[];
  ap_200: number[];
  p_100: number[];
  p_200: number[];
}

/**
 * The four metrics for a [queries, gallery] score matrix (row-major, higher = more similar) and class labels.
 */
export function evaluateScores(scores: ArrayLike<number>, queryLabels: ArrayLike<number>, galleryLabels: ArrayLike<number>): Metrics {
  const { ap_all: aps, ap_200: ap200, p_100: p100, p_200: p200 } = perQueryMetrics(scores, queryLabels, galleryLabels);
  return {
    map_all: nanMean(aps), map_200: nanMean(ap200), precision_100: nanMean(p100), precision_200: nanMean(p200),
    queries_scored: aps.filter((x) => !Number.isNaN(x)).length,
  };
}

/** The metrics of each query of a [queries, gallery] score matrix (evaluateScores averages them). */
export function perQueryMetrics(scores: ArrayLike<number>, queryLabels: ArrayLike<number>, galleryLabels: ArrayLike<number>): PerQueryMetrics {
  const nq = queryLabels.length;
  const ng = galleryLabels.length;
  if (scores.length !== nq * ng) throw new RangeError(`scores hold ${scores.length} values, not ${nq} x ${ng}`);
  const aps: number[] = [], ap200: number[] = [], p100: number[] = [], p200: number[] = [];
  const rel = new Uint8Array(ng);
  const row = new Float64Array(ng);
  for (let q = 0; q < nq; q++) {
    for (let j = 0; j < ng; j++) row[j] = scores[q * ng + j]!;
    const order = rankRow(row);
    for (let r = 0; r < ng; r++) rel[r] = galleryLabels[order[r]!] === queryLabels[q] ? 1 : 0;
    aps.push(vocAp(rel));
    ap200.push(vocAp(rel, 200));
    p100.push(precisionAt(rel, 100));
    p200.push(precisionAt(rel, 200));
  }
  return { ap_all: aps, ap_200: ap200, p_100: p100, p_200: p200 };
}
