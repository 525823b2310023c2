import l2Src from '../../../shaders/l2norm.wgsl';
import type { Graph } from '../graph.ts';
import { grid1d, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

export const L2NORM: Kernel = { name: 'l2norm', wgsl: l2Src };

/** L2-normalised rows; `ldx`/`offset` select e.g. the cls token (row 0 of each sample) out of [B, T, D]. */
export function l2normRows(g: Graph, x: Tensor, rows: number, D: number, o: { ldx?: number; offset?: number; label?: string } = {}): Tensor {
  const out = g.intermediate(o.label ?? 'l2norm', [rows, D]);
  g.push({ label: o.label ?? 'l2norm', kernel: L2NORM, reads: [x], writes: [out], params: [['rows', 'u32', rows], ['D', 'u32', D], ['ldx', 'u32', o.ldx ?? D], ['inOff', 'u32', o.offset ?? 0], ['eps', 'f32', 1e-12]], dispatch: grid1d(rows) });
  return out;
}
