/**
 * The subgroup-matrix (tensor-core) f16 GEMM, shaders/gemm/smat.wgsl, is used only on devices where it was
 * checked: the adapter offers chromium-experimental-subgroup-matrix with an f16 16x16x16 config that accumulates
 * in f32, the kernel compiles, and on a problem that crosses its tiles and K step (with bias, GELU and residual)
 * it gives what the vec4 kernel gives under the f16 option, up to summation order, and with a fused LayerNorm what
 * the tiled32 kernel with one gives. Anything else (another
 * subgroup size, a Dawn that wants the newer builtin spelling, a driver bug) leaves it off, so the f16 option
 * falls back to the portable kernels and no result can change. Checked once per device; SKETCHGPU_SMAT=0 turns
 * it off in Node.
 */
import type { GpuContext } from '../gpu/device.ts';
import { WeightStore } from '../gpu/weights.ts';
import { Executor } from './executor.ts';
import { Graph } from './graph.ts';
import { gemm, type GemmVariant } from './ops/gemm.ts';

export interface SmatCheck {
  ok: boolean;
  /** Why it is off, or what the check measured. */
  reason: string;
  maxDiff?: number;
}

interface MatrixConfig { componentType: string; resultComponentType: string; M: number; N: number; K: number }

const checks = new WeakMap<GpuContext, Promise<SmatCheck>>();

export function probeSubgroupMatrixGemm(ctx: GpuContext): Promise<SmatCheck> {
  let c = checks.get(ctx);
  if (!c) checks.set(ctx, (c = check(ctx)));
  return c;
}

/** The check's problem: odd M and N across the 64x64 tile, K across the 32 step; the tolerance is summation order. */
const M = 100, N = 70, K = 52, TOL = 1e-4;

async function check(ctx: GpuContext): Promise<SmatCheck> {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.SKETCHGPU_SMAT === '0') return { ok: false, reason: 'turned off (SKETCHGPU_SMAT=0)' };
  if (!ctx.features.subgroupMatrix) return { ok: false, reason: 'the adapter has no chromium-experimental-subgroup-matrix' };
  if (!ctx.features.f16) return { ok: false, reason: 'the device has no shader-f16' };
  const configs = (ctx.adapter.info as unknown as { subgroupMatrixConfigs?: MatrixConfig[] }).subgroupMatrixConfigs ?? [];
  if (!configs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16)) {
    return { ok: false, reason: 'no f16 16x16x16 subgroup-matrix config with f32 results' };
  }
  const a = new Float32Array(M * K).map((_, i) => Math.sin(i * 0.37));
  const r = new Float32Array(M * N).map((_, i) => Math.cos(i * 0.11));
  const store = new WeightStore(ctx.device);
  store.upload('w', { dtype: 'f32', shape: [N, K], data: new Float32Array(N * K).map((_, i) => Math.cos(i * 0.53)) }, ['f16']);
  store.upload('b', { dtype: 'f32', shape: [N], data: new Float32Array(N).map((_, i) => Math.sin(i)) });
  store.upload('g', { dtype: 'f32', shape: [K], data: new Float32Array(K).map((_, i) => 1 + 0.5 * Math.sin(i * 0.7)) });
  store.upload('bt', { dtype: 'f32', shape: [K], data: new Float32Array(K).map((_, i) => Math.cos(i * 0.9)) });
  const run = async (variant: GemmVariant, withNorm = false): Promise<Float32Array> => {
    const g = new Graph({ precision: 'f16', smat: true });
    const norm = withNorm ? { gamma: g.weight('g', [K]), beta: g.weight('bt', [K]), eps: 1e-5 } : undefined;
    g.output('c', gemm(g, g.input('a', [M, K]), g.weight('w', [N, K]), { M, N, K, bias: g.weight('b', [N]), residual: g.input('r', [M, N]), act: 'gelu', variant, norm }));
    const ex = await Executor.create(ctx, g, store);
    try {
      return (await ex.run({ a, r })).c!;
    } finally {
      ex.destroy();
    }
  };
  try {
    let maxDiff = 0;
    // Plain, against the vec4 kernel; with a fused LayerNorm, against the tiled32 kernel with one fused, whose row
    // statistics are summed in the same order (two invocations per row), so the binary16 operands are the same.
    for (const [other, withNorm] of [['vec4', false], ['tiled32', true]] as const) {
      const want = await run(other, withNorm);
      const got = await run('smat', withNorm);
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got[i]! - want[i]!);
        if (!(d <= TOL * (1 + Math.abs(want[i]!)))) return { ok: false, reason: `the kernel's results${withNorm ? ' with a fused LayerNorm' : ''} differ from the ${other} kernel's (element ${i}: ${got[i]} vs ${want[i]})`, maxDiff: d };
        maxDiff = Math.max(maxDiff, d);
      }
    }
    return { ok: true, reason: `checked on ${M}x${N}x${K}, plain and with a fused LayerNorm: max |diff| to the vec4 and tiled32 kernels ${maxDiff.toExponential(2)}`, maxDiff };
  } catch (e) {
    return { ok: false, reason: `the kernel did not build or run: ${(e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' | ').slice(0, 2000)}` };
  } finally {
    store.destroy();
  }
}
