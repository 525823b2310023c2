import { SketchError } from '../core/errors.ts';

/**
 * Refuses embeddings that are not unit vectors: a row the model's L2 normalisation left at norm 0 (the vector before
 * it was zero, as all-zero weights make it) or NaN. Such a row would rank as a "cosine" of 0 or NaN against
 * everything; every consumer (embed, score, index, query, eval, the page) gets an error instead.
 */
export function checkUnitRows(emb: Float32Array, n: number, what: (row: number) => string): void {
  if (n === 0) return;
  const D = emb.length / n;
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let k = r * D; k < (r + 1) * D; k++) s += emb[k]! * emb[k]!;
    const norm = Math.sqrt(s);
    if (!(Math.abs(norm - 1) < 1e-2)) {
      throw new SketchError('NON_FINITE',
        `the embedding of ${what(r)} has norm ${Number.isNaN(norm) ? 'NaN' : norm.toPrecision(3)}, not 1: ${norm === 0 ? 'the model output a zero vector, which has no direction to compare' : 'the model output is not a number'}`,
        'the weights are degenerate (all zero, or damaged); use the weights of a trained model');
    }
  }
}

/** Refuses to report a score that is not a finite number (a last guard: finite weights and inputs give none). */
export function checkFiniteScores(scores: ArrayLike<number>, what: string): void {
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) {
      throw new SketchError('NON_FINITE', `${what}: score ${i} is ${scores[i]}, not a number that can be ranked or printed`,
        'the weights or inputs are damaged; check them (NaN weights are refused on load, so report this if they load)');
    }
  }
}
