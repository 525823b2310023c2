import source from '../../../shaders/layernorm.wgsl';
import type { Graph } from '../graph.ts';
import { grid1d, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

/** One invocation per row, vec4 loads (D a multiple of 4) or f32. */
export const LAYERNORM: Kernel = { name: 'layernorm', wgsl: source, entry: 'rows4' };
export const LAYERNORM_F32: Kernel = { name: 'layernorm', wgsl: source, entry: 'rows1' };
const ROWS_PER_GROUP = 64;

/** 'torch': nn.LayerNorm (biased variance, eps inside the sqrt). 'ca': ZSE's CA LayerNorm (unbiased std + eps). */
export type NormKind = 'torch' | 'ca';

export function layerNorm(g: Graph, x: Tensor, gamma: Tensor, beta: Tensor, o: { kind: NormKind; eps: number; label?: string }): Tensor {
  const D = x.shape[x.shape.length - 1]!;
  const rows = x.size / D;
  const out = g.intermediate(o.label ?? 'layernorm', x.shape);
  g.push({
    label: o.label ?? 'layernorm',
    kernel: D % 4 === 0 ? LAYERNORM : LAYERNORM_F32,
    reads: [x, gamma, beta],
    writes: [out],
    params: [['rows', 'u32', rows], ['D', 'u32', D], ['ldx', 'u32', D], ['ldy', 'u32', D], ['kind', 'u32', o.kind === 'torch' ? 0 : 1], ['eps', 'f32', o.eps]],
    dispatch: grid1d(Math.ceil(rows / ROWS_PER_GROUP)),
  });
  return out;
}
