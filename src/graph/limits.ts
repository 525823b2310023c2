/**
 * The adapter limits the engine's kernels need, derived from the programs of src/graph/ops (wgslLimits reads each
 * one's workgroup sizes, workgroup memory and bindings): the largest of each over every kernel a model may run on any
 * adapter. The subgroup-matrix GEMM is left out: it runs only where src/graph/smat.ts checked it on the device.
 */
import { attentionKernel, GENERIC_ATTENTION } from './ops/attention.ts';
import { CONV2D, CONV2D_B4, CONV2D_GEMM, CONV2D_PATCH } from './ops/conv2d.ts';
import { ANCHOR_BEST_COSINE, ANCHOR_COSINE } from './ops/cosine.ts';
import { TOKEN_EMBED, TOKENS } from './ops/embed.ts';
import { GATHER } from './ops/gather.ts';
import { gemmKernel, GEMM_VARIANTS, NORM_VARIANTS } from './ops/gemm.ts';
import { L2NORM } from './ops/l2norm.ts';
import { LAYERNORM, LAYERNORM_F16, LAYERNORM_F32, LAYERNORM_WG, LAYERNORM_WG_F16 } from './ops/layernorm.ts';
import { POOL2D_AVG, POOL2D_MAX } from './ops/pool2d.ts';
import { RESIZE_BILINEAR } from './ops/resize.ts';
import { TOPK } from './ops/topk.ts';
import type { Kernel } from './kernel.ts';
import { wgslLimits, type KernelLimits } from './wgsl.ts';

/**
 * Every portable program: each GEMM variant in f32 and with binary16 operands and output, those that take a fused
 * LayerNorm with it (two more storage bindings) and also a residual pair table (one more: 8 in all), the flash
 * attention shapes with and without a pair table.
 */
function portableKernels(): Kernel[] {
  const gemms = GEMM_VARIANTS.flatMap((v) => [gemmKernel(v, 'f32'), gemmKernel(v, 'f16', { a: 'f16', b: 'f16', c: v === 'tiled' || v === 'tiled32' ? 'f32' : 'f16' })]);
  gemms.push(...NORM_VARIANTS.filter((v) => v !== 'smat').flatMap((v) => [gemmKernel(v, 'f16', { b: 'f16' }, true), gemmKernel(v, 'f16', { b: 'f16' }, true, true)]));
  const flash = [8, 64, 128].flatMap((dh) => [1, 50, 197].flatMap((T) => [false, true].flatMap((split) => [false, true].map((table) => attentionKernel(dh, T, true, false, true, split, table).kernel))));
  return [...gemms, ...flash, GENERIC_ATTENTION, CONV2D, CONV2D_PATCH, ...CONV2D_B4, ...Object.values(CONV2D_GEMM), ANCHOR_COSINE, ANCHOR_BEST_COSINE, TOKENS, TOKEN_EMBED, GATHER, L2NORM,
    LAYERNORM, LAYERNORM_F16, LAYERNORM_F32, LAYERNORM_WG, LAYERNORM_WG_F16, POOL2D_MAX, POOL2D_AVG, RESIZE_BILINEAR, TOPK];
}

/** The largest of each limit over the portable kernels. */
let cached: KernelLimits | undefined;
export function kernelLimits(): KernelLimits {
  if (cached) return cached;
  const out = {} as KernelLimits;
  for (const k of portableKernels()) {
    for (const [name, v] of Object.entries(wgslLimits(k.wgsl)) as [keyof KernelLimits, number][]) out[name] = Math.max(out[name] ?? 0, v);
  }
  return (cached = out);
}
