import cosSrc from '../../../shaders/cosine.wgsl';
import type { Graph } from '../graph.ts';
import { gemm } from './gemm.ts';
import { grid1d, type Kernel, type Params } from '../kernel.ts';
import { l2normRows } from './l2norm.ts';
import type { Tensor } from '../tensor.ts';

export const ANCHOR_COSINE: Kernel = { name: 'anchor_cosine', wgsl: cosSrc };
export const ANCHOR_BEST_COSINE: Kernel = { name: 'anchor_cosine', wgsl: cosSrc, entry: 'best' };

/** Per-pair anchor cosine matrices [P, A*A] (sketch-anchor-major). */
export function anchorCosine(g: Graph, sk: Tensor, im: Tensor, P: number, A: number, C: number): Tensor {
  const out = g.intermediate('anchor_cosine', [P, A * A]);
  g.push({ label: 'anchor_cosine', kernel: ANCHOR_COSINE, reads: [sk, im], writes: [out], params: cosParams(P, A, A, C), dispatch: grid1d(Math.ceil((P * A * A) / 64)), flops: 6 * P * A * A * C });
  return out;
}

/**
 * For each pair p and row i of x [P, A, C], the largest cosine with any row of y [P, B, C] (the same no-eps,
 * NaN -> 0 cosine as anchorCosine): out [P, A]. CAAN's local text-image score: each anchor's best word.
 */
export function anchorBestCosine(g: Graph, x: Tensor, y: Tensor, P: number, A: number, B: number, C: number, label = 'best_cosine'): Tensor {
  const out = g.intermediate(label, [P, A]);
  g.push({ label, kernel: ANCHOR_BEST_COSINE, reads: [x, y], writes: [out], params: cosParams(P, A, B, C), dispatch: grid1d(Math.ceil((P * A) / 64)), flops: 6 * P * A * B * C });
  return out;
}

const cosParams = (P: number, A: number, B: number, C: number): Params => [['P', 'u32', P], ['A', 'u32', A], ['B', 'u32', B], ['C', 'u32', C]];

/**
 * Row-wise cosine matrix [Na, Nb] between the rows of a [Na, D] and b [Nb, D]: both sides L2-normalised
 * (F.normalize, eps 1e-12), then one GEMM. Ret-mode scores (zse-sbir.md §3.6) and gallery search use it.
 */
export function cosineMatrix(g: Graph, a: Tensor, b: Tensor, Na: number, Nb: number, D: number): Tensor {
  const an = l2normRows(g, a, Na, D, { label: 'cos.a' });
  const bn = l2normRows(g, b, Nb, D, { label: 'cos.b' });
  return gemm(g, an, bn, { M: Na, N: Nb, K: D, label: 'cosine', precision: 'f32' }); // ranking scores stay exact
}
