import type { ShaderProgram } from '../gpu/pipelines.ts';
import type { Tensor } from './tensor.ts';

/**
 * A compute program (the device's ShaderProgram). Binding convention (group 0): the node's `reads` at 0..r-1 (read-only storage),
 * its `writes` at r..r+w-1 (storage), then one uniform block at r+w holding the node's `params`
 * in declaration order, each a 4-byte scalar (u32, i32 or f32) — the WGSL struct lists the same fields.
 */
export type Kernel = ShaderProgram;

export type ParamType = 'u32' | 'i32' | 'f32';
export type Params = [name: string, type: ParamType, value: number][];

export interface OpNode {
  label: string;
  kernel: Kernel;
  /** A missing optional input is null; the executor binds a small dummy buffer and the params say it is absent. */
  reads: (Tensor | null)[];
  writes: Tensor[];
  params: Params;
  dispatch: [number, number, number];
  /** Work estimate for the profiler (multiply-adds count as 2). */
  flops?: number;
  /** GEMM nodes: the problem, for the autotuner (src/graph/autotune.ts). */
  gemm?: GemmShape;
  /** Nodes of other ops whose kernel the target chose (convolutions, attention): the problem, for the autotuner. */
  tuned?: TunedProblem;
}

/**
 * A convolution as the kernel choice sees it (square kernel, stride and padding as ops/conv2d.ts takes them). The
 * autotuner times it with NCHW maps in and out; the model's strided layouts change addresses, not the work.
 */
/** kernel / pad: the kernel's height and the rows of zero padding above and below; kernelX / padX: the same along x
 * (default: kernel / pad, a square kernel; Inception's 1x7 and 7x1 convolutions set them). */
export type ConvShape = { N: number; Ci: number; H: number; W: number; Co: number; kernel: number; stride: number; pad: number; kernelX?: number; padX?: number };
/** An attention (no causal mask, vec4-aligned layout) as the kernel choice sees it; timed with contiguous rows. */
export type AttentionShape = { B: number; heads: number; Tq: number; Tk: number; headDim: number };
/** A non-GEMM problem whose kernel a graph target may choose by measurement (GraphTarget.choose). */
export type TunedProblem = { op: 'conv'; shape: ConvShape } | { op: 'attention'; shape: AttentionShape };

/** A GEMM problem as the kernel choice sees it: sizes, and whether K, the row strides and A's offset are vec4-aligned. */
export interface GemmShape {
  M: number;
  N: number;
  K: number;
  aligned: boolean;
  /** B is a weight stored as binary16 (the f16 option). */
  b16?: boolean;
  /** The subgroup-matrix kernel may run it (f16 option, on a device where src/graph/smat.ts passed it). */
  smat?: boolean;
}

/** Workgroup counts for n workgroups in one dimension, folded into y past the 65535 limit. */
export function grid1d(n: number): [number, number, number] {
  if (n <= 65535) return [Math.max(1, n), 1, 1];
  const y = Math.ceil(n / 65535);
  return [Math.ceil(n / y), y, 1];
}

export function packParams(params: Params): ArrayBuffer {
  const bytes = Math.max(16, Math.ceil((params.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const dv = new DataView(buf);
  params.forEach(([name, type, value], i) => {
    if (!Number.isFinite(value)) throw new Error(`param ${name} is not finite: ${value}`);
    if (type === 'f32') dv.setFloat32(i * 4, value, true);
    else if (type === 'i32') dv.setInt32(i * 4, value, true);
    else {
      if (value < 0 || value > 0xffffffff || !Number.isInteger(value)) throw new Error(`param ${name} is not a u32: ${value}`);
      dv.setUint32(i * 4, value, true);
    }
  });
  return buf;
}
