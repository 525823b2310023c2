import { SketchError } from '../core/errors.ts';

/** What the engine needs to know about the adapter it runs on. */
export interface GpuFeatures {
  f16: boolean;
  subgroups: boolean;
  subgroupMatrix: boolean;
  timestamp: boolean;
}

/** What a GpuContext holds of the autotuner (the class lives in src/graph/autotune.ts). */
export interface GemmTuner {
  pick(shape: { M: number; N: number; K: number; aligned: boolean }): string | undefined;
  /** Measures the shapes not yet known; true when it learned anything. */
  tune(shapes: readonly { M: number; N: number; K: number; aligned: boolean }[]): Promise<boolean>;
  /** The same for other ops' problems (src/graph/kernel.ts TunedProblem: convolutions, attention), where the tuner measures them. */
  pickOp?(problem: OpProblem): string | undefined;
  tuneOps?(problems: readonly OpProblem[]): Promise<boolean>;
}
/** An op's problem as the tuner sees it (structurally src/graph/kernel.ts's TunedProblem). */
export interface OpProblem { op: string; shape: Readonly<Record<string, number>> }

export interface GpuContext {
  /** The entry point the device came from. Held for the device's lifetime: see docs/dawn-node.md. */
  gpu: GPU;
  device: GPUDevice;
  adapter: GPUAdapter;
  /** "vendor | architecture | device | description", as bench and the CLI print it. */
  adapterName: string;
  /** A CPU implementation (lavapipe, SwiftShader): kernels without workgroup memory are picked where they exist. */
  software: boolean;
  features: GpuFeatures;
  /**
   * Measured kernel choices for this adapter (src/graph/autotune.ts), when autotuning is on: models build their
   * graphs through buildGraph(), which measures the GEMM shapes it has not seen yet and then uses the picks.
   */
  gemmTuner?: GemmTuner;
  /** Resolves when the device is lost (destroyed or a driver failure). */
  lost: Promise<GPUDeviceLostInfo>;
  isLost: () => boolean;
  destroy(): void;
}

export interface GpuOptions {
  /** Substring of the adapter name to pick (also SKETCHGPU_ADAPTER in Node). */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Ask for timestamp queries (profiling / bench). */
  profile?: boolean;
  /** Ask for shader-f16 when the adapter has it (default true). */
  wantF16?: boolean;
}

const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query', 'chromium-experimental-subgroup-matrix'];

export function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info;
  return [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length).join(' | ') || 'unknown adapter';
}

/**
 * Turn a WebGPU entry point (navigator.gpu, or dawn.node's) into a device with every optional feature the
 * engine can use. Limits are raised to the adapter's maxima: ViT-B activations at batch 128 need far more
 * than the 128 MiB default binding size.
 */
export async function createGpuContext(gpu: GPU | undefined, opts: GpuOptions = {}, noAdapterHint = ''): Promise<GpuContext> {
  if (!gpu) {
    throw new SketchError('NO_ADAPTER', 'WebGPU is not available in this environment.', noAdapterHint || 'Use a browser with WebGPU enabled (Chrome/Edge 113+), or Node with the `webgpu` package.');
  }
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) {
    throw new SketchError('NO_ADAPTER', 'No WebGPU adapter was found: no GPU driver answered.', noAdapterHint || 'Enable WebGPU in your browser, or install a GPU driver.');
  }
  const name = describeAdapter(adapter);
  if (opts.adapter && !name.toLowerCase().includes(opts.adapter.toLowerCase())) {
    throw new SketchError('NO_ADAPTER', `The adapter "${name}" does not match the requested "${opts.adapter}".`, 'Unset SKETCHGPU_ADAPTER / --adapter, or name an adapter that is installed.');
  }
  const wanted = OPTIONAL_FEATURES.filter((f) => {
    if (f === 'timestamp-query' && !opts.profile) return false;
    if (f === 'shader-f16' && opts.wantF16 === false) return false;
    return adapter.features.has(f);
  }) as GPUFeatureName[];
  const l = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: wanted, requiredLimits });
  } catch (e) {
    throw new SketchError('NO_ADAPTER', `The adapter "${name}" refused to create a device: ${(e as Error).message}`, 'Update the GPU driver, or pick another adapter.', { cause: e });
  }
  let lost = false;
  const lostPromise = device.lost.then((info) => {
    lost = true;
    return info;
  });
  const has = (f: string) => device.features.has(f);
  return {
    gpu,
    device,
    adapter,
    adapterName: name,
    software: /llvmpipe|lavapipe|swiftshader|software/i.test(name),
    features: {
      f16: has('shader-f16'),
      subgroups: has('subgroups'),
      subgroupMatrix: has('chromium-experimental-subgroup-matrix'),
      timestamp: has('timestamp-query'),
    },
    lost: lostPromise,
    isLost: () => lost,
    destroy: () => device.destroy(),
  };
}

/** Throw a clear error when the device was lost; callers check before and after GPU work. */
export function assertNotLost(ctx: GpuContext): void {
  if (ctx.isLost()) {
    throw new SketchError('DEVICE_LOST', `The GPU device (${ctx.adapterName}) was lost.`, 'Nothing was written. Run the command again; if it keeps happening, lower --batch or update the driver.');
  }
}
