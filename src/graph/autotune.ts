/**
 * GEMM kernel choice by measurement, per adapter (the speed issue's "tile configs chosen per adapter"). For each
 * GEMM problem a model's graph contains ({M, N, K, aligned}), every kernel variant the layout allows is timed once
 * on this adapter (GPU timestamps when the device has them, else wall time of submit-to-done) and the fastest is
 * kept. Results are keyed by the adapter's name and a hash of the GEMM kernels' sources, so another GPU, driver
 * string or kernel edit measures afresh; a store (Node: a JSON file, src/graph/autotune-node.ts) keeps them
 * between runs. All variants compute the same product (fp32, other summation orders), so a pick changes speed,
 * not results beyond rounding: each variant's results on a check problem of the shape's K and layout are compared
 * with the built-in kernel's first, and a variant that disagrees, or does not build on this adapter, is left out
 * (`rejected` in its record) whatever its speed.
 */
import type { GemmTuner, GpuContext } from '../gpu/device.ts';
import { WeightStore } from '../gpu/weights.ts';
import { Executor } from './executor.ts';
import { Graph, type Precision } from './graph.ts';
import { probeSubgroupMatrixGemm } from './smat.ts';
import type { GemmShape } from './kernel.ts';
import { defaultVariant, GEMM, GEMM_F16_IO, GEMM_ROWDOT, GEMM_SLICED, GEMM_VEC4, gemm, gemmVariantsFor, type GemmVariant } from './ops/gemm.ts';

export interface TuneRecord {
  variant: GemmVariant;
  /** Milliseconds per run of each variant measured. */
  ms: Partial<Record<GemmVariant, number>>;
  timing: 'gpu-timestamps' | 'wall';
  /**
   * Variants left out, and why: they did not build or run on this adapter, or their results disagreed with the
   * built-in kernel's on a check problem (a miscompiled kernel can run fast and wrong; it must not be picked).
   */
  rejected?: Partial<Record<GemmVariant, string>>;
}
export type TuneTable = Record<string, TuneRecord>;

/** Where measured tables live between runs; `key` names the adapter and kernel versions. */
export interface TuneStore {
  load(key: string): TuneTable | undefined;
  save(key: string, table: TuneTable): void;
}

export const shapeKey = (s: GemmShape): string => `${s.M}x${s.N}x${s.K}${s.aligned ? '' : '/unaligned'}${s.b16 ? '/b16' : ''}${s.smat ? '/smat' : ''}`;

/** FNV-1a of the GEMM kernels' sources: a kernel edit invalidates what was measured with the old one. */
function kernelHash(): string {
  let h = 0x811c9dc5;
  for (const src of [GEMM.wgsl, GEMM_ROWDOT.wgsl, GEMM_VEC4.wgsl, GEMM_SLICED.wgsl, GEMM_F16_IO]) {
    for (let i = 0; i < src.length; i++) h = Math.imul(h ^ src.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

export class GemmAutotune implements GemmTuner {
  readonly key: string;
  private table: TuneTable;
  /** Shapes this instance measured (the rest came from the store). */
  measured = 0;

  /**
   * `inject` (tests): called with each variant's check output before it is compared, so a test can make a variant
   * throw or give wrong results as a broken driver would.
   */
  constructor(private readonly ctx: GpuContext, private readonly store?: TuneStore, private readonly opts: { repeats?: number; onMeasure?: (shape: GemmShape, r: TuneRecord) => void; inject?: (variant: GemmVariant, out: Float32Array) => void } = {}) {
    this.key = `${ctx.adapterName}#gemm-${kernelHash()}`;
    this.table = { ...(store?.load(this.key) ?? {}) };
  }

  pick(shape: GemmShape): GemmVariant | undefined {
    return this.table[shapeKey(shape)]?.variant;
  }

  /** The measurements so far (store contents plus this run's). */
  entries(): Readonly<TuneTable> {
    return this.table;
  }

  async tune(shapes: readonly GemmShape[]): Promise<boolean> {
    const todo = new Map<string, GemmShape>();
    for (const s of shapes) if (!this.table[shapeKey(s)]) todo.set(shapeKey(s), s);
    for (const [k, s] of todo) {
      const r = await this.measure(s);
      this.table[k] = r;
      this.measured++;
      this.opts.onMeasure?.(s, r);
    }
    if (todo.size) this.store?.save(this.key, this.table);
    return todo.size > 0;
  }

  private async measure(s: GemmShape): Promise<TuneRecord> {
    const { M, N, K } = s;
    const repeats = this.opts.repeats ?? 3;
    const ms: Partial<Record<GemmVariant, number>> = {};
    const rejected: Partial<Record<GemmVariant, string>> = {};
    const timing = this.ctx.features.timestamp ? 'gpu-timestamps' : 'wall';
    const precision = s.b16 || s.smat ? 'f16' : 'f32';
    const data = (n: number, f: (i: number) => number) => new Float32Array(n).map((_, i) => f(i) * 0.5);
    // The built-in kernel first: every other variant's results are checked against its own (a kernel-tested one;
    // smat passed its device check before any shape asks for it). Its failure is the model's and is not caught.
    const builtIn = s.smat ? 'smat' : defaultVariant(this.ctx.software, s.aligned);
    const variants = [builtIn, ...gemmVariantsFor(s.aligned, !!s.smat).filter((v) => v !== builtIn)];
    // The check problem: the shape's K and layout, at most 133 x 197 outputs (partial tiles of every kernel).
    const cm = Math.min(M, 133), cn = Math.min(N, 197);
    const ca = data(cm * K, (i) => Math.sin(i * 0.7)), cw = data(cn * K, (i) => Math.cos(i * 0.3));
    let reference: Float32Array | undefined;
    const a = data(M * K, Math.sin);
    for (const variant of variants) {
      const run = async (m: number, n: number, w: Float32Array, body: (ex: Executor) => Promise<void>) => {
        const store = new WeightStore(this.ctx.device);
        store.upload('w', { dtype: 'f32', shape: [n, K], data: w }, [s.b16 ? 'f16' : 'f32']);
        const g = new Graph({ software: this.ctx.software, precision, smat: !!s.smat });
        g.output('c', gemm(g, g.input('a', [m, K]), g.weight('w', [n, K]), { M: m, N: n, K, variant }));
        const ex = await Executor.create(this.ctx, g, store);
        try {
          await body(ex);
        } finally {
          ex.destroy();
          store.destroy();
        }
      };
      try {
        let out: Float32Array | undefined;
        await run(cm, cn, cw, async (ex) => void (out = (await ex.run({ a: ca })).c!));
        this.opts.inject?.(variant, out!);
        if (!reference) reference = out!;
        else {
          const bad = mismatch(out!, reference);
          if (bad) {
            rejected[variant] = `results differ from the ${builtIn} kernel's on a ${cm}x${cn}x${K} check: ${bad}`;
            continue;
          }
        }
        await run(M, N, data(N * K, Math.cos), async (ex) => {
          if (timing === 'gpu-timestamps') {
            await ex.profile({ a }, 1); // warm-up: pipeline, first dispatch
            ms[variant] = (await ex.profile({ a }, repeats)).reduce((t, n) => t + n.ms, 0);
          } else {
            ex.writeInputs({ a });
            let best = Infinity;
            for (let r = 0; r <= repeats; r++) {
              const t0 = performance.now();
              const enc = this.ctx.device.createCommandEncoder();
              ex.encode(enc);
              this.ctx.device.queue.submit([enc.finish()]);
              await this.ctx.device.queue.onSubmittedWorkDone();
              if (r > 0) best = Math.min(best, performance.now() - t0); // r = 0 warms up
            }
            ms[variant] = best;
          }
        });
      } catch (e) {
        if (variant === builtIn) throw e;
        rejected[variant] = `did not build or run: ${(e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' | ').slice(0, 500)}`;
      }
    }
    const variant = (Object.entries(ms) as [GemmVariant, number][]).reduce((b, e) => (e[1] < b[1] ? e : b))[0];
    return { variant, ms, timing, ...(Object.keys(rejected).length ? { rejected } : {}) };
  }
}

/**
 * Where a variant's check output leaves the built-in kernel's: the kernels sum the same products in other orders, in
 * f32 (the f16 option rounds the same operands the same way in every kernel), so they agree to a few ulps of the
 * partial sums; 1e-3 relative to 1 + |reference| is far above that and far below any indexing or staging error.
 * NaN anywhere fails. Empty when they agree.
 */
export function mismatch(got: Float32Array, want: Float32Array): string {
  if (got.length !== want.length) return `${got.length} values, not ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= 1e-3 * (1 + Math.abs(want[i]!)))) return `element ${i}: ${got[i]} vs ${want[i]}`;
  }
  return '';
}

/** The GEMM problems of a graph, once each. */
export function gemmShapes(g: Graph): GemmShape[] {
  const seen = new Map<string, GemmShape>();
  for (const n of g.nodes) if (n.gemm) seen.set(shapeKey(n.gemm), n.gemm);
  return [...seen.values()];
}

/**
 * Builds a model graph for this context. With a tuner, the GEMM problems it has not measured yet are timed first
 * and the graph is rebuilt with the measured choices (build must be repeatable).
 */
export async function buildGraph(ctx: GpuContext, build: (g: Graph) => void, o: { precision?: Precision; fuseNorm?: boolean } = {}): Promise<Graph> {
  const tuner = ctx.gemmTuner;
  const precision = o.precision ?? 'f32';
  // Tensor cores for the f16 option where the adapter has subgroup matrices and the kernel checks out on it.
  const smat = precision === 'f16' && (await probeSubgroupMatrixGemm(ctx)).ok;
  const make = () => {
    const g = new Graph({ software: ctx.software, precision, smat, ...(o.fuseNorm !== undefined ? { fuseNorm: o.fuseNorm } : {}), ...(tuner ? { gemm: (s: GemmShape) => tuner.pick(s) } : {}) });
    build(g);
    return g;
  };
  const g = make();
  return tuner && (await tuner.tune(gemmShapes(g))) ? make() : g;
}
