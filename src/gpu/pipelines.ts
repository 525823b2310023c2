/**
 * A compute program as the device compiles it: complete WGSL text (specialised by src/graph/wgsl.ts before it gets
 * here) and an entry point.
 */
export interface ShaderProgram {
  name: string;
  wgsl: string;
  entry?: string;
}

/**
 * Compiled pipelines per device, keyed by program text, entry point and binding shape, so that
 * every plan (each batch size of each model) shares them. Layouts are explicit: reads are read-only storage,
 * writes are storage, the last binding is the uniform block.
 */
const caches = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
const moduleCaches = new WeakMap<GPUDevice, Map<string, GPUShaderModule>>();

export function getPipeline(device: GPUDevice, kernel: ShaderProgram, nReads: number, nWrites: number): GPUComputePipeline {
  let cache = caches.get(device);
  if (!cache) caches.set(device, (cache = new Map()));
  const entry = kernel.entry ?? 'main';
  const key = `${kernel.name}\u0000${entry}\u0000${nReads}/${nWrites}\u0000${kernel.wgsl}`;
  let p = cache.get(key);
  if (p) return p;
  let modules = moduleCaches.get(device);
  if (!modules) moduleCaches.set(device, (modules = new Map()));
  let module = modules.get(kernel.wgsl);
  if (!module) {
    module = device.createShaderModule({ label: kernel.name, code: kernel.wgsl });
    modules.set(kernel.wgsl, module);
  }
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (let i = 0; i < nReads; i++) entries.push({ binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } });
  for (let i = 0; i < nWrites; i++) entries.push({ binding: nReads + i, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } });
  entries.push({ binding: nReads + nWrites, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
  const layout = device.createPipelineLayout({ bindGroupLayouts: [device.createBindGroupLayout({ entries })] });
  p = device.createComputePipeline({
    label: kernel.name,
    layout,
    compute: { module, entryPoint: entry },
  });
  cache.set(key, p);
  return p;
}
