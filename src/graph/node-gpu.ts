/**
 * The engine's device in Node: a dawn.node device (src/gpu/node.ts) with the file-backed GEMM autotuner attached
 * where autotuneWanted says so. Kept here, not in gpu/, so the device layer knows nothing of graphs.
 */
import type { GpuContext, GpuOptions } from '../gpu/device.ts';
import { dawnGpu } from '../gpu/node.ts';
import { attachNodeAutotune } from './autotune-node.ts';

export async function nodeGpu(opts: GpuOptions & { fast?: boolean } = {}): Promise<GpuContext> {
  const ctx = await dawnGpu(opts);
  attachNodeAutotune(ctx);
  return ctx;
}
