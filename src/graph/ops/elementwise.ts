import tokensSrc from '../../../shaders/tokens.wgsl';
import l2Src from '../../../shaders/l2norm.wgsl';
import cosSrc from '../../../shaders/anchor_cosine.wgsl';
import gatherSrc from '../../../shaders/gather.wgsl';
import tokenEmbedSrc from '../../../shaders/token_embed.wgsl';
import type { Graph } from '../graph.ts';
import { gemm } from './gemm.ts';
import { grid1d, type Kernel, type Params } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

export const TOKENS: Kernel = { name: 'tokens', wgsl: tokensSrc };
export const L2NORM: Kernel = { name: 'l2norm', wgsl: l2Src };
export const ANCHOR_COSINE: Kernel = { name: 'anchor_cosine', wgsl: cosSrc };
export const ANCHOR_BEST_COSINE: Kernel = { name: 'anchor_cosine', wgsl: cosSrc, entry: 'best' };
export const GATHER: Kernel = { name: 'gather', wgsl: gatherSrc };
export const TOKEN_EMBED: Kernel = { name: 'token_embed', wgsl: tokenEmbedSrc };

/** [B, T, D] tokens from patch-conv and stem tokens [B, T-1, D], the cls token and the position table. */
export function assembleTokens(g: Graph, patch: Tensor, stem: Tensor, cls: Tensor, pos: Tensor, B: number, T: number, D: number): Tensor {
  const out = g.intermediate('tokens', [B, T, D]);
  g.push({ label: 'tokens', kernel: TOKENS, reads: [patch, stem, cls, pos], writes: [out], params: [['B', 'u32', B], ['T', 'u32', T], ['D', 'u32', D]], dispatch: grid1d(Math.ceil((B * T * D) / 64)) });
  return out;
}

/** L2-normalised rows; `ldx`/`offset` select e.g. the cls token (row 0 of each sample) out of [B, T, D]. */
export function l2normRows(g: Graph, x: Tensor, rows: number, D: number, o: { ldx?: number; offset?: number; label?: string } = {}): Tensor {
  const out = g.intermediate(o.label ?? 'l2norm', [rows, D]);
  g.push({ label: o.label ?? 'l2norm', kernel: L2NORM, reads: [x], writes: [out], params: [['rows', 'u32', rows], ['D', 'u32', D], ['ldx', 'u32', o.ldx ?? D], ['inOff', 'u32', o.offset ?? 0], ['eps', 'f32', 1e-12]], dispatch: grid1d(rows) });
  return out;
}

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
 * Token embedding + learned positions for u32 ids [N, L]: out[n, t] = table[ids[n, t]] + pos[t], [N, L, D]
 * (CLIP's text tower input). `pos` holds at least L rows; ids must be < vocab (clamped on the GPU).
 */
export function tokenEmbedding(g: Graph, ids: Tensor, table: Tensor, pos: Tensor, o: { N: number; L: number; D: number; vocab: number; label?: string }): Tensor {
  const out = g.intermediate(o.label ?? 'token_embed', [o.N, o.L, o.D]);
  g.push({ label: o.label ?? 'token_embed', kernel: TOKEN_EMBED, reads: [ids, table, pos], writes: [out], params: [['N', 'u32', o.N], ['L', 'u32', o.L], ['D', 'u32', o.D], ['vocab', 'u32', o.vocab]], dispatch: grid1d(Math.ceil((o.N * o.L * o.D) / 64)) });
  return out;
}

/** Rows of x picked by a u32 index table: out[p] = x[index[p*stride + col]]. */
export function gatherRows(g: Graph, x: Tensor, index: Tensor, o: { P: number; rowSize: number; rowsIn: number; stride: number; col: number; label?: string }): Tensor {
  const out = g.intermediate(o.label ?? 'gather', [o.P, o.rowSize]);
  g.push({ label: o.label ?? 'gather', kernel: GATHER, reads: [x, index], writes: [out], params: [['P', 'u32', o.P], ['rowSize', 'u32', o.rowSize], ['stride', 'u32', o.stride], ['col', 'u32', o.col], ['rowsIn', 'u32', o.rowsIn]], dispatch: grid1d(Math.ceil((o.P * o.rowSize) / 64)) });
  return out;
}

/**
 * Row-wise cosine matrix [Na, Nb] between the rows of a [Na, D] and b [Nb, D]: both sides L2-normalised
 * (F.normalize, eps 1e-12), then one GEMM. Ret-mode scores (zse-sbir.md §3.6) and gallery search use it.
 */
export function cosineMatrix(g: Graph, a: Tensor, b: Tensor, Na: number, Nb: number, D: number): Tensor {
  const an = l2normRows(g, a, Na, D, { label: 'cos.a' });
  const bn = l2normRows(g, b, Nb, D, { label: 'cos.b' });
  return gemm(g, an, bn, { M: Na, N: Nb, K: D, label: 'cosine', precision: 'f32' }); // ranking scores stay exact
}
