/**
 * GEMM kernel choice by measurement, per adapter (the speed issue's "tile configs chosen per adapter"). For each
 * GEMM problem a model's graph contains ({M, N, K, aligned}), every kernel variant the layout allows is timed once
 * on this adapter (GPU timestamps when the device has them, else wall time of submit-to-done) and the fastest is
 * kept. Results are keyed by the adapter's name and a hash of the GEMM kernels' sources, so another GPU, driver
 * string or kernel edit measures afresh; a store (Node: a JSON file, src/graph/autotune-node.ts) keeps them
 * between runs. All variants compute the same product (fp32, other summation orders), so a pick changes speed,
 * not results beyond rounding.
 */
import type { GemmTuner, GpuContext } from '../gpu/device.ts';
import { WeightStore } from '../gpu/weights.ts';
import { Executor } from './executor.ts';
import { Graph, type Precision } from './graph.ts';
import { probeSubgroupMatrixGemm } from './smat.ts';
import type { GemmShape } from './kernel.ts';
import { GEMM, GEMM_F16_IO, GEMM_ROWDOT, GEMM_SLICED, GEMM_VEC4, gemm, gemmVariantsFor, type GemmVariant } from './ops/gemm.ts';

export interface TuneRecord {
  variant: GemmVariant;
  /** Milliseconds per run of each variant measured. */
  ms: Partial<Record<GemmVariant, number>>;
  timing: 'gpu-timestamps' | 'wall';
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

  constructor(private readonly ctx: GpuContext, private readonly store?: TuneStore, private readonly opts: { repeats?: number; onMeasure?: (shape: GemmShape, r: TuneRecord) => void } = {}) {
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
    const timing = this.ctx.features.timestamp ? 'gpu-timestamps' : 'wall';
    const a = new Float32Array(M * K).map((_, i) => Math.sin(i) * 0.5);
    for (const variant of gemmVariantsFor(s.aligned, !!s.smat)) {
      const store = new WeightStore(this.ctx.device);
      store.upload('w', { dtype: 'f32', shape: [N, K], data: new Float32Array(N * K).map((_, i) => Math.cos(i) * 0.5) }, [s.b16 ? 'f16' : 'f32']);
      const g = new Graph({ software: this.ctx.software, precision: s.b16 || s.smat ? 'f16' : 'f32', smat: !!s.smat });
      g.output('c', gemm(g, g.input('a', [M, K]), g.weight('w', [N, K]), { M, N, K, variant }));
      const ex = await Executor.create(this.ctx, g, store);
      try {
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
      } finally {
        ex.destroy();
        store.destroy();
      }
    }
    const variant = (Object.entries(ms) as [GemmVariant, number][]).reduce((b, e) => (e[1] < b[1] ? e : b))[0];
    return { variant, ms, timing };
  }
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
