import layernorm from '../../../shaders/layernorm.wgsl';
import f16 from '../../../shaders/lib/f16.wgsl';
import type { Graph } from '../graph.ts';
import { grid1d, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import { wgslConst } from '../wgsl.ts';

const source = f16 + layernorm;
/** One invocation per row, vec4 loads (D a multiple of 4) or f32; LAYERNORM_F16 stores binary16. */
export const LAYERNORM: Kernel = { name: 'layernorm', wgsl: source, entry: 'rows4' };
export const LAYERNORM_F16: Kernel = { name: 'layernorm/h', wgsl: source, entry: 'rows4h' };
export const LAYERNORM_F32: Kernel = { name: 'layernorm', wgsl: source, entry: 'rows1' };
/** One workgroup per row (GPUs), vec4 loads; LAYERNORM_WG_F16 stores binary16. */
export const LAYERNORM_WG: Kernel = { name: 'layernorm/wg', wgsl: source, entry: 'wg4' };
export const LAYERNORM_WG_F16: Kernel = { name: 'layernorm/wg/h', wgsl: source, entry: 'wg4h' };
/** Rows per workgroup: one per invocation (WG of shaders/layernorm.wgsl). */
const ROWS_PER_GROUP = wgslConst(layernorm, 'WG');

/** 'torch': nn.LayerNorm (biased variance, eps inside the sqrt). 'ca': ZSE's CA LayerNorm (unbiased std + eps). */
export type NormKind = 'torch' | 'ca';

/**
 * `half`: under the f16 option (graph precision 'f16') store the output as binary16 when D is a multiple of 4, for
 * an output that only GEMMs read (they round it to binary16 on load anyway, so results do not change).
 */
/**
 * `variant`: 'row' (one invocation per row: software adapters) or 'workgroup' (one workgroup per row, D a multiple of
 * 4: GPUs); default by the graph target.
 */
export function layerNorm(g: Graph, x: Tensor, gamma: Tensor, beta: Tensor, o: { kind: NormKind; eps: number; half?: boolean; label?: string; variant?: 'row' | 'workgroup' }): Tensor {
  const D = x.shape[x.shape.length - 1]!;
  const rows = x.size / D;
  const half = !!o.half && g.target.precision === 'f16' && D % 4 === 0;
  const perGroup = D % 4 === 0 && (o.variant ?? (g.target.software ? 'row' : 'workgroup')) === 'workgroup';
  const out = g.intermediate(o.label ?? 'layernorm', x.shape, half ? 'f16' : 'f32');
  g.push({
    label: o.label ?? 'layernorm',
    kernel: perGroup ? (half ? LAYERNORM_WG_F16 : LAYERNORM_WG) : half ? LAYERNORM_F16 : D % 4 === 0 ? LAYERNORM : LAYERNORM_F32,
    reads: [x, gamma, beta],
    writes: [out],
    params: [['rows', 'u32', rows], ['D', 'u32', D], ['ldx', 'u32', D], ['ldy', 'u32', D], ['kind', 'u32', o.kind === 'torch' ? 0 : 1], ['eps', 'f32', o.eps]],
    dispatch: grid1d(perGroup ? rows : Math.ceil(rows / ROWS_PER_GROUP)),
  });
  return out;
}
