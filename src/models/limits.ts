/**
 * What the engine needs from an adapter, so a page can say clearly what is missing instead of failing later in a
 * pipeline compile. sketchgpu needs no optional WebGPU feature (shader-f16, subgroups and timestamps are used when
 * present); it does need the compute limits its WGSL kernels are written for, and storage bindings large enough
 * for one image's largest activation.
 */
import type { CaanConfig } from './caan/config.ts';
import { CaanModel } from './caan/model.ts';
import { unitBindingBytes } from './runtime.ts';
import { ZseModel } from './zse/model.ts';
import type { ZseConfig } from './zse/config.ts';
import { kernelLimits } from '../graph/limits.ts';

export interface LimitProblem {
  limit: string;
  needed: number;
  has: number;
}

/**
 * The bytes of one image's largest buffer (what ZseModel sizes its batches by); for CAAN the largest of one image in
 * a tower, one text and one sketch-photo pair (what CaanModel sizes its batches by). Read from the plans of those
 * graphs (models/runtime.ts unitBindingBytes), the same rule the models use.
 */
export function perImageBytes(config: ZseConfig | CaanConfig): number {
  if ('image' in config) {
    const u = CaanModel.unitGraphs(config);
    return unitBindingBytes([...u.image, ...u.text, ...u.pair]);
  }
  return unitBindingBytes(ZseModel.unitGraphs(config).image);
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
