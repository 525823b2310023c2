import source from '../../../shaders/resize.wgsl';
import type { Graph } from '../graph.ts';
import type { Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

export const RESIZE_BILINEAR: Kernel = { name: 'resize_bilinear', wgsl: source };

export interface ResizeOptions {
  N: number;
  C: number;
  H: number;
  W: number;
  /** Output size. */
  OH: number;
  OW: number;
  /** Each output value becomes a·v + b (default 1, 0): e.g. [-1, 1] -> [0, 1] with 0.5, 0.5. */
  a?: number;
  b?: number;
  label?: string;
}

/** torch's scale for align_corners=True: (in - 1) / (out - 1) in float32, 0 for a single output row. */
export const alignCornersScale = (inSize: number, outSize: number): number => (outSize > 1 ? Math.fround((inSize - 1) / (outSize - 1)) : 0);

/**
 * Bilinear resize of NCHW maps with align_corners=True (shaders/resize.wgsl), as F.interpolate(mode='bilinear',
 * align_corners=True) and TensorFlow's resizeBilinear(alignCorners=true) compute it, with an affine map folded in.
 */
export function resizeBilinear(g: Graph, x: Tensor, o: ResizeOptions): Tensor {
  const { N, C, H, W, OH, OW } = o;
  if (![N, C, H, W, OH, OW].every((v) => Number.isInteger(v) && v > 0)) throw new Error(`resize: sizes must be positive integers (${N}x${C}x${H}x${W} -> ${OH}x${OW})`);
  if (x.dtype !== 'f32') throw new Error('resize: f32 tensors only');
  const out = g.intermediate(o.label ?? 'resize', [N, C, OH, OW]);
  const groups = Math.ceil((N * C * OH * OW) / 64);
  const gx = Math.min(groups, 65535);
  g.push({
    label: o.label ?? 'resize',
    kernel: RESIZE_BILINEAR,
    reads: [x],
    writes: [out],
    params: [
      ['N', 'u32', N], ['C', 'u32', C], ['H', 'u32', H], ['W', 'u32', W], ['OH', 'u32', OH], ['OW', 'u32', OW],
      ['scaleY', 'f32', alignCornersScale(H, OH)], ['scaleX', 'f32', alignCornersScale(W, OW)], ['a', 'f32', o.a ?? 1], ['b', 'f32', o.b ?? 0],
    ],
    dispatch: [gx, Math.ceil(groups / gx), 1],
    flops: 8 * N * C * OH * OW,
  });
  return out;
}
