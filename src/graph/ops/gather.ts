import gatherSrc from '../../../shaders/gather.wgsl';
import type { Graph } from '../graph.ts';
import { grid1d, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

export const GATHER: Kernel = { name: 'gather', wgsl: gatherSrc };

/** Rows of x picked by a u32 index table: out[p] = x[index[p*stride + col]]. */
export function gatherRows(g: Graph, x: Tensor, index: Tensor, o: { P: number; rowSize: number; rowsIn: number; stride: number; col: number; label?: string }): Tensor {
  const out = g.intermediate(o.label ?? 'gather', [o.P, o.rowSize]);
  g.push({ label: o.label ?? 'gather', kernel: GATHER, reads: [x, index], writes: [out], params: [['P', 'u32', o.P], ['rowSize', 'u32', o.rowSize], ['stride', 'u32', o.stride], ['col', 'u32', o.col], ['rowsIn', 'u32', o.rowsIn]], dispatch: grid1d(Math.ceil((o.P * o.rowSize) / 64)) });
  return out;
}
