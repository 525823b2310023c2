import source from '../../../shaders/gemm.wgsl';
import rowdotSource from '../../../shaders/gemm_rowdot.wgsl';
import vec4Source from '../../../shaders/gemm_vec4.wgsl';
import epilogue from '../../../shaders/gemm_epilogue.wgsl';
import bF32 from '../../../shaders/gemm_b_f32.wgsl';
import bF16 from '../../../shaders/gemm_b_f16.wgsl';
import type { Graph, Precision } from '../graph.ts';
import type { GemmShape, Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

export const GEMM: Kernel = { name: 'gemm', wgsl: epilogue + bF32 + source };
/** No workgroup memory, vec4 along K, 4x4 per invocation: for CPU drivers (shaders/gemm_rowdot.wgsl). */
export const GEMM_ROWDOT: Kernel = { name: 'gemm_rowdot', wgsl: epilogue + bF32 + rowdotSource };
/** 128x128 tiles, 8x8 per invocation in vec4 registers, vec4 loads: for GPUs (shaders/gemm_vec4.wgsl). */
export const GEMM_VEC4: Kernel = { name: 'gemm_vec4', wgsl: epilogue + bF32 + vec4Source };

/** The B loader of the f16-stored weights (in no kernel above; the autotune hashes it with them). */
export const GEMM_B16_LOADER = bF16;

export type GemmVariant = 'tiled' | 'rowdot' | 'vec4';
export const GEMM_VARIANTS: readonly GemmVariant[] = ['tiled', 'rowdot', 'vec4'];
/** The variants a problem's layout allows: rowdot and vec4 read A and B as vec4 along K. */
export const gemmVariantsFor = (aligned: boolean): GemmVariant[] => (aligned ? [...GEMM_VARIANTS] : ['tiled']);
const TILE: Record<GemmVariant, number> = { tiled: 64, rowdot: 32, vec4: 128 };
const BODY: Record<GemmVariant, [string, string]> = { tiled: ['gemm', source], rowdot: ['gemm_rowdot', rowdotSource], vec4: ['gemm_vec4', vec4Source] };
/**
 * A variant's kernel: f32 operands; or with the f16 precision option A rounded to binary16 on load (the
 * F16_OPERANDS override of gemm_epilogue.wgsl) and B either rounded on load (f32-stored) or stored as binary16.
 */
function kernelFor(variant: GemmVariant, precision: Precision, bDtype: 'f32' | 'f16'): Kernel {
  const [name, body] = BODY[variant];
  if (bDtype === 'f16') return { name: `${name}/b16`, wgsl: epilogue + bF16 + body, constants: { F16_OPERANDS: 1 } };
  return { name, wgsl: epilogue + bF32 + body, ...(precision === 'f16' ? { constants: { F16_OPERANDS: 1 } } : {}) };
}
/**
 * Hardware adapters take the vec4 kernel when the layout allows it and it still yields this many 128x128 tiles
 * (fewer would leave most of a large GPU idle; the 64x64 kernel then runs 4x the workgroups). Not yet tuned on a
 * GPU: `npm run bench` times both variants on each GEMM shape so that the threshold can be set from measurements.
 */
export const VEC4_MIN_TILES = 96;

/** 'quickgelu' is CLIP's x·sigmoid(1.702x) (the CAAN text tower). */
export type Activation = 'none' | 'relu' | 'gelu' | 'sigmoid' | 'quickgelu';
const ACT = { none: 0, relu: 1, gelu: 2, sigmoid: 3, quickgelu: 4 } as const;

export interface GemmOptions {
  M: number;
  N: number;
  K: number;
  bias?: Tensor | null;
  residual?: Tensor | null;
  act?: Activation;
  alpha?: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  ldr?: number;
  aOffset?: number;
  cOffset?: number;
  rOffset?: number;
  /** Write into this tensor instead of a new one (e.g. a strided slice of a larger buffer). */
  out?: Tensor;
  /**
   * Force a kernel (tests, bench). Default: the graph target's measured choice (autotune) when it has one; else on
   * software adapters rowdot when the layout allows it; on hardware vec4 when the layout allows it and the output
   * has at least VEC4_MIN_TILES 128x128 tiles; else tiled.
   */
  variant?: GemmVariant;
  /**
   * Operand precision; default the graph target's (graph.ts Precision). 'f32' pins a GEMM that must stay exact.
   * With 'f16' a weight B (a graph weight read whole from its start) is bound in its binary16 form.
   */
  precision?: Precision;
  label?: string;
}

/** C = act(alpha · A·Bᵀ + bias) + residual, with B in PyTorch's [out, in] Linear layout. */
export function gemm(g: Graph, a: Tensor, b: Tensor, o: GemmOptions): Tensor {
  const { M, N, K } = o;
  const out = o.out ?? g.intermediate(o.label ?? 'gemm', [M, N]);
  const precision = o.precision ?? g.target.precision ?? 'f32';
  // The f16 option reads weights from their binary16 copy: half the bytes, the same rounded values.
  const bw = precision === 'f16' && b.kind === 'weight' && b.dtype === 'f32' ? g.weight(b.name, b.shape, 'f16') : b;
  const lda = o.lda ?? K, ldb = o.ldb ?? K;
  const aligned = K % 4 === 0 && lda % 4 === 0 && ldb % 4 === 0 && (o.aOffset ?? 0) % 4 === 0;
  const shape: GemmShape = { M, N, K, aligned, ...(bw.dtype === 'f16' ? { b16: true } : {}) };
  const tuned = g.target.gemm?.(shape) as GemmVariant | undefined;
  const variant = o.variant ?? (tuned && gemmVariantsFor(aligned).includes(tuned) ? tuned : defaultVariant(!!g.target.software, aligned, M, N));
  if (variant !== 'tiled' && !aligned) throw new Error(`gemm ${variant} needs K, lda, ldb and the A offset to be multiples of 4`);
  if (bw.dtype === 'u32') throw new Error(`gemm: B ${bw} is not a float tensor`);
  const tile = TILE[variant];
  g.push({
    label: o.label ?? 'gemm',
    kernel: kernelFor(variant, precision, bw.dtype),
    reads: [a, bw, o.bias ?? null, o.residual ?? null],
    writes: [out],
    params: [
      ['M', 'u32', M], ['N', 'u32', N], ['K', 'u32', K],
      ['lda', 'u32', o.lda ?? K], ['ldb', 'u32', o.ldb ?? K], ['ldc', 'u32', o.ldc ?? N], ['ldr', 'u32', o.ldr ?? N],
      ['aOff', 'u32', o.aOffset ?? 0], ['cOff', 'u32', o.cOffset ?? 0], ['rOff', 'u32', o.rOffset ?? 0],
      ['hasBias', 'u32', o.bias ? 1 : 0], ['hasRes', 'u32', o.residual ? 1 : 0], ['act', 'u32', ACT[o.act ?? 'none']],
      ['alpha', 'f32', o.alpha ?? 1],
    ],
    dispatch: [Math.ceil(N / tile), Math.ceil(M / tile), 1],
    flops: 2 * M * N * K,
    gemm: shape,
  });
  return out;
}

function defaultVariant(software: boolean, aligned: boolean, M: number, N: number): GemmVariant {
  if (!aligned) return 'tiled';
  if (software) return 'rowdot';
  return Math.ceil(M / 128) * Math.ceil(N / 128) >= VEC4_MIN_TILES ? 'vec4' : 'tiled';
}

/**
 * y = act(x Wᵀ + b) (+ residual) over the last axis of x, as torch.nn.Linear. Weight names are resolved in the
 * graph's weight store; `${prefix}.weight` is [out, in].
 */
export function linear(g: Graph, x: Tensor, prefix: string, outFeatures: number, o: { act?: Activation; residual?: Tensor; bias?: boolean; label?: string } = {}): Tensor {
  const K = x.shape[x.shape.length - 1]!;
  const M = x.size / K;
  const w = g.weight(`${prefix}.weight`, [outFeatures, K]);
  const b = o.bias === false ? null : g.weight(`${prefix}.bias`, [outFeatures]);
  const out = g.intermediate(o.label ?? prefix, [...x.shape.slice(0, -1), outFeatures]);
  return gemm(g, x, w, { M, N: outFeatures, K, bias: b, residual: o.residual ?? null, act: o.act ?? 'none', out, label: o.label ?? prefix });
}
