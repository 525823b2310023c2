/**
 * What the engine needs from an adapter, so a page can say clearly what is missing instead of failing later in a
 * pipeline compile. sketchgpu needs no optional WebGPU feature (shader-f16, subgroups and timestamps are used when
 * present); it does need the compute limits its WGSL kernels are written for, and storage bindings large enough
 * for one image's largest activation.
 */
import { imageSize, imageTokens, type CaanConfig } from './caan/config.ts';
import type { ZseConfig } from './zse/config.ts';
import { kernelLimits } from '../graph/limits.ts';

export interface LimitProblem {
  limit: string;
  needed: number;
  has: number;
}

/**
 * The bytes of one image's largest activation (what ZseModel sizes its batches by); for CAAN the largest of one image
 * in a tower, one text and one sketch-photo pair (what CaanModel sizes its batches by).
 */
export function perImageBytes(config: ZseConfig | CaanConfig): number {
  if ('image' in config) {
    const { width: D, mlp, stem } = config.image;
    const S = imageSize(config), T = imageTokens(config);
    return 4 * Math.max(T * Math.max(3 * D, mlp), (stem[0] ?? 0) * (S / 2) ** 2, 3 * S * S,
      config.text.context * Math.max(3 * config.text.width, config.text.mlp), T * Math.max(config.embed, config.align.ff));
  }
  const { dim: D, grid: G, imageSize: S, mlpDim } = config;
  const tokens = 1 + G * G;
  return 4 * Math.max(tokens * Math.max(3 * D, mlpDim), (config.stemChannels[0] ?? 0) * (S / 2) ** 2, 3 * S * S);
}

/**
 * The limits (of an adapter or a device) below what sketchgpu needs; empty when everything is there. With a config,
 * the storage binding size is checked against one image of that model too (either model's config).
 */
export function checkAdapterLimits(limits: GPUSupportedLimits | Record<string, number>, config?: ZseConfig | CaanConfig): LimitProblem[] {
  const get = (k: string) => Number((limits as unknown as Record<string, number>)[k] ?? 0);
  const need: Record<string, number> = { ...kernelLimits() };
  if (config) {
    const bytes = perImageBytes(config);
    need.maxStorageBufferBindingSize = bytes;
    need.maxBufferSize = bytes;
  }
  const out: LimitProblem[] = [];
  for (const [limit, needed] of Object.entries(need)) {
    const has = get(limit);
    if (has < needed) out.push({ limit, needed, has });
  }
  return out;
}
