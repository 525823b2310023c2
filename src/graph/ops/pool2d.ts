import source from '../../../shaders/pool2d.wgsl';
import type { Graph } from '../graph.ts';
import { grid1d, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import { wgslConst } from '../wgsl.ts';
import { nchw, type MapLayout } from './conv2d.ts';

/** Max pooling over the real pixels of each window (padding never wins), one invocation per output element. */
export const POOL2D_MAX: Kernel = { name: 'pool2d/max', wgsl: source, entry: 'maxPool' };
/** Average pooling over the real pixels of each window (count_include_pad=False), one invocation per output element. */
export const POOL2D_AVG: Kernel = { name: 'pool2d/avg', wgsl: source, entry: 'avgPool' };
/** Output elements per workgroup (WG of shaders/pool2d.wgsl). */
const GROUP = wgslConst(source, 'WG');

export type PoolMode = 'max' | 'avg';

/**
 * A 2-D pooling: N images of C channels, H x W, a kernel x kernelX window moved by stride x strideX over the image
 * padded by pad x padX on each side (the width ones default to the height ones).
 */
export interface PoolOptions {
  N: number;
  C: number;
  H: number;
  W: number;
  kernel: number;
  kernelX?: number;
  stride: number;
  strideX?: number;
  pad: number;
  padX?: number;
  /**
   * 'max': the largest real pixel of the window (F.max_pool2d); 'avg': the mean of the window's real pixels only
   * (F.avg_pool2d(count_include_pad=False), TensorFlow / Keras 'same' average pooling).
   */
  mode: PoolMode;
  /** Where the input lives (default NCHW of [N, C, H, W]); any column stride. */
  inLayout?: MapLayout;
  /**
   * Where the output goes (default NCHW of [N, C, OH, OW]); e.g. a channel slice of a concatenated map:
   * `{ ...nchw(Ctotal, OH, OW, c0 * OH * OW) }` with `out` the [N, Ctotal, OH, OW] tensor.
   */
  outLayout?: MapLayout;
  /** The tensor to write into (default a new intermediate [N, C, OH, OW]). */
  out?: Tensor;
  label?: string;
}

/** The output size of a pooling along one axis: floor((size + 2*pad - kernel) / stride) + 1. */
export const poolOutSize = (size: number, kernel: number, stride: number, pad: number): number => Math.floor((size + 2 * pad - kernel) / stride) + 1;

/**
 * One axis of a pooling's windows, clamped to the input: `taps`, the real positions summed over the `out` windows
 * (what the kernel loads along this axis; a 2-D pooling loads N*C * taps(y) * taps(x) values), and `covered`, how
 * many distinct input positions they reach (the part of the input that is read at all).
 */
export function poolAxis(size: number, kernel: number, stride: number, pad: number, out: number): { taps: number; covered: number } {
  let taps = 0, covered = 0, end = 0;
  for (let o = 0; o < out; o++) {
    const a = Math.max(o * stride - pad, 0), b = Math.min(o * stride - pad + kernel, size);
    taps += Math.max(b - a, 0);
    covered += Math.max(b - Math.max(a, end), 0);
    end = Math.max(end, b);
  }
  return { taps, covered };
}

/** The largest element index a layout reaches for an [N, C, H, W] map (strides are non-negative). */
const lastIndex = (l: MapLayout, N: number, C: number, H: number, W: number) => l.offset + (N - 1) * l.sN + (C - 1) * l.sC + (H - 1) * l.sY + (W - 1) * l.sX;

/**
 * 2-D max or average pooling of f32 maps, PyTorch's and TensorFlow's semantics: only the window positions inside
 * the input count (see PoolOptions.mode). Refuses, with the reason, non-positive sizes, a padding of a kernel or
 * more (a window could hold no real pixel), non-f32 tensors and layouts that reach past their tensors.
 */
export function pool2d(g: Graph, x: Tensor, o: PoolOptions): Tensor {
  const { N, C, H, W, mode } = o;
  const KH = o.kernel, KW = o.kernelX ?? o.kernel, SH = o.stride, SW = o.strideX ?? o.stride, PH = o.pad, PW = o.padX ?? o.pad;
  const name = o.label ?? 'pool2d';
  if (mode !== 'max' && mode !== 'avg') throw new Error(`${name}: mode must be 'max' or 'avg', not ${String(mode)}`);
  const sizes = { N, C, H, W, kernel: KH, kernelX: KW, stride: SH, strideX: SW };
  for (const [k, v] of Object.entries(sizes)) if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: ${k} must be a positive integer, not ${v}`);
  for (const [k, v] of Object.entries({ pad: PH, padX: PW })) if (!Number.isInteger(v) || v < 0) throw new Error(`${name}: ${k} must be a non-negative integer, not ${v}`);
  if (PH >= KH || PW >= KW) throw new Error(`${name}: padding ${PH}x${PW} must be less than the kernel ${KH}x${KW} (a window could hold no real pixel)`);
  if (H + 2 * PH < KH || W + 2 * PW < KW) throw new Error(`${name}: the kernel ${KH}x${KW} is larger than the padded input ${H + 2 * PH}x${W + 2 * PW}`);
  const OH = poolOutSize(H, KH, SH, PH), OW = poolOutSize(W, KW, SW, PW);
  const inL = o.inLayout ?? nchw(C, H, W);
  const outL = o.outLayout ?? nchw(C, OH, OW);
  const out = o.out ?? g.intermediate(name, [N, C, OH, OW]);
  if (x.dtype !== 'f32' || out.dtype !== 'f32') throw new Error(`${name}: f32 tensors only (input ${x}: ${x.dtype}, output ${out}: ${out.dtype})`);
  for (const [side, l, t, h, w] of [['input', inL, x, H, W], ['output', outL, out, OH, OW]] as const) {
    if (![l.offset, l.sN, l.sC, l.sY, l.sX].every((v) => Number.isInteger(v) && v >= 0)) throw new Error(`${name}: the ${side} layout's offset and strides must be non-negative integers`);
    const last = lastIndex(l, N, C, h, w);
    if (last >= t.size) throw new Error(`${name}: the ${side} layout reaches element ${last} of ${t}, which has ${t.size}`);
  }
  const total = N * C * OH * OW;
  if (total > 2 ** 31) throw new Error(`${name}: ${total} output elements are more than one dispatch indexes (2^31)`);
  g.push({
    label: name,
    kernel: mode === 'max' ? POOL2D_MAX : POOL2D_AVG,
    reads: [x],
    writes: [out],
    params: [
      ['N', 'u32', N], ['C', 'u32', C], ['H', 'u32', H], ['W', 'u32', W], ['OH', 'u32', OH], ['OW', 'u32', OW],
      ['KH', 'u32', KH], ['KW', 'u32', KW], ['SH', 'u32', SH], ['SW', 'u32', SW], ['PH', 'u32', PH], ['PW', 'u32', PW],
      ['inOff', 'u32', inL.offset], ['inSN', 'u32', inL.sN], ['inSC', 'u32', inL.sC], ['inSY', 'u32', inL.sY], ['inSX', 'u32', inL.sX],
      ['outOff', 'u32', outL.offset], ['outSN', 'u32', outL.sN], ['outSC', 'u32', outL.sC], ['outSY', 'u32', outL.sY], ['outSX', 'u32', outL.sX],
    ],
    // One invocation per output element, workgroups folded into y past 65535.
    dispatch: grid1d(Math.ceil(total / GROUP)),
    // One compare or add per real pixel of each window, and a divide per output for avg.
    flops: N * C * poolAxis(H, KH, SH, PH, OH).taps * poolAxis(W, KW, SW, PW, OW).taps + (mode === 'avg' ? total : 0),
  });
  return out;
}
