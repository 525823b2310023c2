import { existsSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SketchError } from '../core/errors.ts';
import { createGpuContext, describeAdapter, type GpuContext, type GpuOptions } from './device.ts';

const NO_ADAPTER_HINT =
  'sketchgpu needs a Vulkan driver. With a GPU: install its vendor driver (NVIDIA, AMD, Intel). ' +
  'Without one (a server or CI): install Mesa lavapipe 25+ (Debian bookworm: `bash tools/setup/ensure-vulkan.sh`, which ' +
  'installs mesa-vulkan-drivers from bookworm-backports). Then check with `npx sketchgpu info`.';

/**
 * Dawn toggles for Node (../shared/docs/platform.md): `allow_unsafe_apis` unlocks subgroup matrices,
 * `vulkan_enable_f16_on_nvidia` un-hides shader-f16 on NVIDIA; timestamp quantization is off when profiling.
 */
export function dawnFlags(opts: GpuOptions & { fast?: boolean }): string[] {
  const enable = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'];
  const disable: string[] = [];
  if (opts.profile) disable.push('timestamp_quantization');
  if (opts.fast) enable.push('skip_validation', 'disable_robustness');
  const flags = [`enable-dawn-features=${enable.join(',')}`];
  if (disable.length) flags.push(`disable-dawn-features=${disable.join(',')}`);
  if (opts.adapter) flags.push(`adapter=${opts.adapter}`);
  return flags;
}

let cached: { key: string; ctx: Promise<GpuContext> } | undefined;
const instances = new Set<GPU>();

/**
 * A device through dawn.node. One per process and option set (Dawn instances are heavy). The engine's entry is
 * nodeGpu (src/graph/node-gpu.ts), which adds the GEMM autotuner; this layer knows nothing of graphs.
 */
export async function dawnGpu(opts: GpuOptions & { fast?: boolean } = {}): Promise<GpuContext> {
  // Autotuning (src/graph/autotune-node.ts, attached by nodeGpu) times kernels with GPU timestamps where the adapter has them.
  const tuning = !['0', 'off'].includes(process.env.SKETCHGPU_AUTOTUNE ?? '');
  const o = { ...opts, adapter: opts.adapter ?? process.env.SKETCHGPU_ADAPTER ?? undefined, profile: opts.profile || tuning };
  const key = JSON.stringify(o);
  if (cached && cached.key === key) return cached.ctx;
  // lavapipe warns on every start without a valid runtime dir.
  if (!process.env.XDG_RUNTIME_DIR || !existsSync(process.env.XDG_RUNTIME_DIR)) {
    const dir = join(tmpdir(), `sketchgpu-xdg-${process.getuid?.() ?? 0}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  const ctx = (async () => {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    // The GPU object owns Dawn's instance. If it is garbage-collected while the device lives, Dawn frees the
    // instance and the next ProcessEvents() (any await on mapAsync / onSubmittedWorkDone) aborts the process
    // with "std::system_error: Invalid argument" or a futex error. The context keeps it; so does `instances`.
    const gpu = create(dawnFlags(o));
    instances.add(gpu);
    const c = await createGpuContext(gpu, o, NO_ADAPTER_HINT);
    c.lost.then(() => {
      if (cached?.ctx === ctx) cached = undefined;
    });
    return c;
  })();
  cached = { key, ctx };
  try {
    return await ctx;
  } catch (e) {
    cached = undefined;
    if (o.adapter && !(e instanceof SketchError)) throw await unknownAdapter(o.adapter, e);
    throw e;
  }
}

/**
 * Dawn refuses an `adapter=` toggle that matches nothing with "no suitable backends found" and a list of the
 * adapters it saw; the user gets that list as a refusal. Without a list, the adapters a plain instance offers.
 */
async function unknownAdapter(wanted: string, e: unknown): Promise<SketchError> {
  const msg = (e as Error)?.message ?? String(e);
  let names = [...msg.matchAll(/backend: '([^']*)', name: '([^']*)'/g)].map((m) => `${m[2]} (${m[1]})`);
  if (names.length === 0) {
    try {
      const { create } = await import('webgpu');
      const gpu = create(dawnFlags({}));
      instances.add(gpu);
      for (const powerPreference of ['high-performance', 'low-power'] as const) {
        const a = await gpu.requestAdapter({ powerPreference });
        if (a && !names.includes(describeAdapter(a))) names.push(describeAdapter(a));
      }
    } catch {
      names = [];
    }
  }
  return new SketchError('NO_ADAPTER',
    `no GPU adapter matches "${wanted}" (--adapter / SKETCHGPU_ADAPTER); ${names.length ? `the adapters found: ${names.join('; ')}` : 'no adapter was found at all'}`,
    names.length ? 'Pass a part of one of those names, or leave --adapter out to use the default adapter.' : NO_ADAPTER_HINT,
    { cause: e });
}
