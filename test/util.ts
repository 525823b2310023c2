import { nodeGpu } from '../src/graph/node-gpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { WeightStore, type WeightFormat } from '../src/gpu/weights.ts';
import { Graph, type GraphTarget } from '../src/graph/graph.ts';
import { Executor, type HostArray } from '../src/graph/executor.ts';
import { gemm } from '../src/graph/ops/gemm.ts';
import type { Tensor } from '../src/graph/tensor.ts';
import { f16ToF32, f32ToF16 } from '../src/core/tensor.ts';

let ctxP: Promise<GpuContext> | undefined;
/** One device for the whole test process (dawn.node instances are heavy). */
export function gpu(): Promise<GpuContext> {
  return (ctxP ??= nodeGpu());
}

/** Deterministic pseudo-random numbers (mulberry32), uniform in [lo, hi). */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Assert |a-b| <= atol + rtol*|b| elementwise, with a message naming the worst element. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0, what = 'values'): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} != ${b.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    const excess = Number.isNaN(d) ? Infinity : d - (atol + rtol * Math.abs(b[i]!));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(`${what}: element ${worst} is ${a[worst]} but expected ${b[worst]} (tolerance ${atol} + ${rtol}·|x|; max |diff| ${maxAbsDiff(a, b).toExponential(3)})`);
  }
}

/** Build a graph, upload the given weights, run once and return every output. */
export async function runGraph(
  build: (g: Graph) => void,
  inputs: Record<string, HostArray>,
  weights: Record<string, { shape: number[]; data: Float32Array }> = {},
  target: GraphTarget = {},
): Promise<Record<string, Float32Array>> {
  const ctx = await gpu();
  const g = new Graph(target);
  build(g);
  const store = new WeightStore(ctx.device);
  const read = g.weightDtypes(); // the formats the graph's ops read (f16: GEMM weights of the f16 option)
  for (const [name, w] of Object.entries(weights)) {
    const formats = [...(read.get(name) ?? ['f32'])].filter((d) => d !== 'u32') as WeightFormat[];
    store.upload(name, { dtype: 'f32', shape: w.shape, data: w.data }, formats);
  }
  const ex = await Executor.create(ctx, g, store);
  try {
    return await ex.run(inputs);
  } finally {
    ex.destroy();
    store.destroy();
  }
}

/**
 * Reads a binary16-stored [M, K] tensor of an f16-option graph back as f32: through a GEMM with the identity, which
 * returns its values exactly (one product by 1 and zeros per output). The caller passes `eye(K)` as weight 'eye'.
 */
export function readBackF16(g: Graph, t: Tensor, M: number, K: number): Tensor {
  if (t.dtype !== 'f16') throw new Error(`${t} is not stored as binary16`);
  return gemm(g, t, g.weight('eye', [K, K]), { M, N: K, K, precision: 'f16', label: 'read back' });
}
export function eye(K: number): { shape: number[]; data: Float32Array } {
  const data = new Float32Array(K * K);
  for (let k = 0; k < K; k++) data[k * K + k] = 1;
  return { shape: [K, K], data };
}
/** Round to binary16 (nearest, ties to even) and back: what a binary16-stored value holds. */
export const asF16 = (a: Float32Array): Float32Array => a.map((v) => f16ToF32(f32ToF16(v)));
