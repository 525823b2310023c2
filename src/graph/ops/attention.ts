import source from '../../../shaders/attention.wgsl';
import type { Graph } from '../graph.ts';
import type { Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

export const ATTENTION: Kernel = { name: 'attention', wgsl: source };

/** A [B, T, *] operand: element (b, t, f) at offset + b*batchStride + t*rowStride + f. */
export interface SeqLayout {
  offset: number;
  batchStride: number;
  rowStride: number;
}

export const rows = (T: number, width: number, offset = 0): SeqLayout => ({ offset, batchStride: T * width, rowStride: width });

export interface AttentionOptions {
  B: number;
  heads: number;
  Tq: number;
  Tk: number;
  headDim: number;
  q: SeqLayout;
  k: SeqLayout;
  v: SeqLayout;
  /** Scores are dot * scale, or dot / divisor when `divisor` is given (to round as the reference does). */
  scale?: number;
  divisor?: number;
  label?: string;
}

/** softmax(Q Kᵀ · scale) V per head; output [B, Tq, heads*headDim]. */
export function attention(g: Graph, q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
  const { B, heads, Tq, Tk, headDim } = o;
  if (headDim > 256) throw new Error('attention: head dim above 256 is not supported');
  if (B > 65535 || heads > 65535 || Tq > 65535) throw new Error('attention: grid too large');
  const D = heads * headDim;
  const out = g.intermediate(o.label ?? 'attention', [B, Tq, D]);
  const div = o.divisor !== undefined;
  g.push({
    label: o.label ?? 'attention',
    kernel: ATTENTION,
    reads: [q, k, v],
    writes: [out],
    params: [
      ['B', 'u32', B], ['H', 'u32', heads], ['Tq', 'u32', Tq], ['Tk', 'u32', Tk], ['dh', 'u32', headDim],
      ['qOff', 'u32', o.q.offset], ['qSB', 'u32', o.q.batchStride], ['qSR', 'u32', o.q.rowStride],
      ['kOff', 'u32', o.k.offset], ['kSB', 'u32', o.k.batchStride], ['kSR', 'u32', o.k.rowStride],
      ['vOff', 'u32', o.v.offset], ['vSB', 'u32', o.v.batchStride], ['vSR', 'u32', o.v.rowStride],
      ['oOff', 'u32', 0], ['oSB', 'u32', Tq * D], ['oSR', 'u32', D],
      ['divide', 'u32', div ? 1 : 0], ['scale', 'f32', div ? o.divisor! : (o.scale ?? 1 / Math.sqrt(headDim))],
    ],
    dispatch: [Tq, heads, B],
    flops: 4 * B * heads * Tq * Tk * headDim,
  });
  return out;
}
