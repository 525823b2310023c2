import { createGpuContext, type GpuContext, type GpuOptions } from './device.ts';

/** A device from the browser's navigator.gpu. */
export function browserGpu(opts: GpuOptions = {}): Promise<GpuContext> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  return createGpuContext(gpu, opts, 'This browser has no WebGPU: use Chrome or Edge 113+, or Safari/Firefox with WebGPU enabled.');
}
