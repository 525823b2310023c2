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
import type { AttentionShape, ConvShape, GemmShape, TunedProblem } from './kernel.ts';
import { attention, attentionChoices, rows } from './ops/attention.ts';
import { CONV2D, CONV2D_B4, CONV2D_GEMM, conv2d, convChoices, type ConvChoice } from './ops/conv2d.ts';
import { defaultVariant, GEMM, GEMM_F16_IO, GEMM_ROWDOT, GEMM_SLICED, GEMM_VEC4, gemm, gemmVariantsFor, type GemmVariant } from './ops/gemm.ts';

export interface TuneRecord<V extends string = GemmVariant> {
  variant: V;
  /** Milliseconds per run of each variant measured. */
  ms: Partial<Record<V, number>>;
  timing: 'gpu-timestamps' | 'wall';
  /**
   * Variants left out, and why: they did not build or run on this adapter, or their results disagreed with the
   * built-in kernel's on a check problem (a miscompiled kernel can run fast and wrong; it must not be picked).
   */
  rejected?: Partial<Record<V, string>>;
}
/** GEMM records under shapeKey, other ops' records (convolutions: ConvChoice; attention: flash / split) under problemKey. */
export type TuneTable = Record<string, TuneRecord | TuneRecord<ConvChoice> | TuneRecord<'split' | 'flash'>>;

/** Where measured tables live between runs; `key` names the adapter and kernel versions. */
export interface TuneStore {
  load(key: string): TuneTable | undefined;
  save(key: string, table: TuneTable): void;
}

export const shapeKey = (s: GemmShape): string => `${s.M}x${s.N}x${s.K}${s.aligned ? '' : '/unaligned'}${s.b16 ? '/b16' : ''}${s.smat ? '/smat' : ''}`;
/** A convolution's key in the same table (never a GEMM's: those start with a digit). */
export const convKey = (s: ConvShape): string => `conv:${s.N}x${s.Ci}x${s.H}x${s.W}>${s.Co}/k${s.kernel}s${s.stride}p${s.pad}${s.kernelX !== undefined || s.padX !== undefined ? `x${s.kernelX ?? s.kernel}p${s.padX ?? s.pad}` : ''}`;
/** An attention's key: batch, heads, query and key rows, head dim. */
export const attentionKey = (s: AttentionShape): string => `attention:${s.B}x${s.heads}x${s.Tq}x${s.Tk}x${s.headDim}`;
/** Another op's problem's key. */
export const problemKey = (p: TunedProblem): string => (p.op === 'conv' ? convKey(p.shape) : attentionKey(p.shape));

/** n values f(i)/2: the tuner's deterministic operands. */
const data = (n: number, f: (i: number) => number) => new Float32Array(n).map((_, i) => f(i) * 0.5);

/** FNV-1a of the GEMM kernels' sources: a kernel edit invalidates what was measured with the old one. */
function kernelHash(): string {
  let h = 0x811c9dc5;
  for (const src of [GEMM.wgsl, GEMM_ROWDOT.wgsl, GEMM_VEC4.wgsl, GEMM_SLICED.wgsl, GEMM_F16_IO, CONV2D.wgsl, CONV2D_B4[0]!.wgsl, CONV2D_GEMM.gemm32.wgsl]) {
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
  constructor(private readonly ctx: GpuContext, private readonly store?: TuneStore, private readonly opts: { repeats?: number; onMeasure?: (shape: GemmShape, r: TuneRecord) => void; inject?: (variant: string, out: Float32Array) => void } = {}) {
    this.key = `${ctx.adapterName}#gemm-${kernelHash()}`;
    this.table = { ...(store?.load(this.key) ?? {}) };
  }

  pick(shape: GemmShape): GemmVariant | undefined {
    return (this.table[shapeKey(shape)] as TuneRecord | undefined)?.variant;
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

  /** Measures the convolution and attention problems not yet known; true when it learned anything. */
  async tuneOps(problems: readonly TunedProblem[]): Promise<boolean> {
    const todo = new Map<string, TunedProblem>();
    for (const p of problems) if (!this.table[problemKey(p)]) todo.set(problemKey(p), p);
    for (const [k, p] of todo) {
      this.table[k] = p.op === 'conv' ? await this.measureConv(p.shape) : await this.measureAttention(p.shape);
      this.measured++;
    }
    if (todo.size) this.store?.save(this.key, this.table);
    return todo.size > 0;
  }

  pickOp(problem: TunedProblem): string | undefined {
    return (this.table[problemKey(problem)] as TuneRecord<string> | undefined)?.variant;
  }

  private async measure(s: GemmShape): Promise<TuneRecord> {
    const { M, N, K } = s;
    const precision = s.b16 || s.smat ? 'f16' : 'f32';
    // The built-in kernel first: every other variant's results are checked against its own (a kernel-tested one;
    // smat passed its device check before any shape asks for it).
    const builtIn = s.smat ? 'smat' : defaultVariant(this.ctx.software, s.aligned);
    const variants = [builtIn, ...gemmVariantsFor(s.aligned, !!s.smat).filter((v) => v !== builtIn)];
    // The check problem: the shape's K and layout, at most 133 x 197 outputs (partial tiles of every kernel).
    const cm = Math.min(M, 133), cn = Math.min(N, 197);
    const run = (variant: GemmVariant, m: number, n: number, w: Float32Array) => (body: (ex: Executor) => Promise<void>) => this.withGraph(
      { w: { shape: [n, K], data: w, formats: [s.b16 ? 'f16' : 'f32'] } }, { precision, smat: !!s.smat },
      (g) => g.output('c', gemm(g, g.input('a', [m, K]), g.weight('w', [n, K]), { M: m, N: n, K, variant })), body);
    const ca = data(cm * K, (i) => Math.sin(i * 0.7)), cw = data(cn * K, (i) => Math.cos(i * 0.3)), a = data(M * K, Math.sin);
    return this.candidates(variants, `${cm}x${cn}x${K}`,
      (v) => this.output(run(v, cm, cn, cw), { a: ca }),
      (v) => this.timed(run(v, M, N, data(N * K, Math.cos)), { a }));
  }

  /** A convolution's choices, each checked against the direct kernel at 8x8 blocks (on a check problem of at most 2 images and 64 channels), then timed. */
  private async measureConv(s: ConvShape): Promise<TuneRecord<ConvChoice>> {
    const KX = s.kernelX ?? s.kernel;
    const run = (variant: ConvChoice, n: number, co: number) => (body: (ex: Executor) => Promise<void>) => this.withGraph(
      { w: { shape: [co, s.Ci, s.kernel, KX], data: data(co * s.Ci * s.kernel * KX, (i) => Math.cos(i * 0.3)) }, b: { shape: [co], data: data(co, Math.sin) } }, {},
      (g) => g.output('y', conv2d(g, g.input('x', [n, s.Ci, s.H, s.W]), g.weight('w', [co, s.Ci, s.kernel, KX]), {
        N: n, Ci: s.Ci, H: s.H, W: s.W, Co: co, kernel: s.kernel, stride: s.stride, pad: s.pad, kernelX: s.kernelX, padX: s.padX, bias: g.weight('b', [co]), relu: true,
        ...(variant === 'b8' || variant === 'b4' ? { block: variant === 'b8' ? 8 : 4, variant: 'direct' as const } : { variant }),
      })), body);
    const cn = Math.min(s.N, 2), cc = Math.min(s.Co, 64);
    const image = (n: number) => data(n * s.Ci * s.H * s.W, (i) => Math.sin(i * 0.7));
    return this.candidates(convChoices(s), `${cn}-image ${s.Ci}->${cc}`,
      (v) => this.output(run(v, cn, cc), { x: image(cn) }),
      (v) => this.timed(run(v, s.N, s.Co), { x: image(s.N) }));
  }

  /**
   * An attention's programs, split first (the built-in choice) and flash checked against it on at most 2 batches,
   * then timed: q and k, v as contiguous rows of their own inputs.
   */
  private async measureAttention(s: AttentionShape): Promise<TuneRecord<'split' | 'flash'>> {
    const D = s.heads * s.headDim;
    const run = (variant: 'split' | 'flash', B: number) => (body: (ex: Executor) => Promise<void>) => this.withGraph({}, {}, (g) => {
      const q = g.input('q', [B, s.Tq, D]), kv = g.input('kv', [B, s.Tk, 2 * D]);
      g.output('o', attention(g, q, kv, kv, { B, heads: s.heads, Tq: s.Tq, Tk: s.Tk, headDim: s.headDim, q: rows(s.Tq, D), k: rows(s.Tk, 2 * D), v: rows(s.Tk, 2 * D, D), variant }));
    }, body);
    const inputs = (B: number) => ({ q: data(B * s.Tq * D, (i) => Math.sin(i * 0.7)), kv: data(B * s.Tk * 2 * D, (i) => Math.cos(i * 0.3)) });
    const cb = Math.min(s.B, 2);
    return this.candidates(attentionChoices(s), `${cb}-batch`, (v) => this.output(run(v, cb), inputs(cb)), (v) => this.timed(run(v, s.B), inputs(s.B)));
  }

  /**
   * Checks each variant (the first is the reference, whose failure is the model's and is not caught), then times
   * those that agree with it; the fastest is the pick.
   */
  private async candidates<V extends string>(variants: V[], check: string, output: (v: V) => Promise<Float32Array>, time: (v: V) => Promise<number>): Promise<TuneRecord<V>> {
    const ms: Partial<Record<V, number>> = {};
    const rejected: Partial<Record<V, string>> = {};
    let reference: Float32Array | undefined;
    for (const variant of variants) {
      try {
        const out = await output(variant);
        this.opts.inject?.(variant, out);
        if (!reference) reference = out;
        else {
          const bad = mismatch(out, reference);
          if (bad) {
            rejected[variant] = `results differ from the ${variants[0]} kernel's on a ${check} check: ${bad}`;
            continue;
          }
        }
        ms[variant] = await time(variant);
      } catch (e) {
        if (variant === variants[0]) throw e;
        rejected[variant] = `did not build or run: ${(e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' | ').slice(0, 500)}`;
      }
    }
    const variant = (Object.entries(ms) as [V, number][]).reduce((b, e) => (e[1] < b[1] ? e : b))[0];
    return { variant, ms, timing: this.timing(), ...(Object.keys(rejected).length ? { rejected } : {}) };
  }

  private timing(): TuneRecord['timing'] {
    return this.ctx.features.timestamp ? 'gpu-timestamps' : 'wall';
  }

  /** Runs `body` on an executor of the graph `build` makes, with these weights uploaded; frees both after. */
  private async withGraph(weights: Record<string, { shape: number[]; data: Float32Array; formats?: ('f32' | 'f16')[] }>, target: { precision?: Precision; smat?: boolean }, build: (g: Graph) => void, body: (ex: Executor) => Promise<void>): Promise<void> {
    const store = new WeightStore(this.ctx.device);
    for (const [name, w] of Object.entries(weights)) store.upload(name, { dtype: 'f32', shape: w.shape, data: w.data }, w.formats);
    const g = new Graph({ software: this.ctx.software, ...target });
    build(g);
    const ex = await Executor.create(this.ctx, g, store);
    try {
      await body(ex);
    } finally {
      ex.destroy();
      store.destroy();
    }
  }

  /** The graph's only output for these inputs. */
  private async output(run: (body: (ex: Executor) => Promise<void>) => Promise<void>, inputs: Record<string, Float32Array>): Promise<Float32Array> {
    let out: Float32Array | undefined;
    await run(async (ex) => void (out = Object.values(await ex.run(inputs))[0]!));
    return out!;
  }

  /** Milliseconds per run: GPU timestamps (1 warm-up, then the sum of `repeats` runs) or the best wall time of `repeats`. */
  private async timed(run: (body: (ex: Executor) => Promise<void>) => Promise<void>, inputs: Record<string, Float32Array>): Promise<number> {
    const repeats = this.opts.repeats ?? 3;
    let ms = Infinity;
    await run(async (ex) => {
      if (this.timing() === 'gpu-timestamps') {
        await ex.profile(inputs, 1); // warm-up: pipeline, first dispatch
        ms = (await ex.profile(inputs, repeats)).reduce((t, n) => t + n.ms, 0);
      } else {
        ex.writeInputs(inputs);
        for (let r = 0; r <= repeats; r++) {
          const t0 = performance.now();
          const enc = this.ctx.device.createCommandEncoder();
          ex.encode(enc);
          this.ctx.device.queue.submit([enc.finish()]);
          await this.ctx.device.queue.onSubmittedWorkDone();
          if (r > 0) ms = Math.min(ms, performance.now() - t0); // r = 0 warms up
        }
      }
    });
    return ms;
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
    const g = new Graph({
      software: ctx.software, precision, smat, ...(o.fuseNorm !== undefined ? { fuseNorm: o.fuseNorm } : {}),
      ...(tuner ? { gemm: (s: GemmShape) => tuner.pick(s) } : {}), ...(tuner?.pickOp ? { choose: (p: TunedProblem) => tuner.pickOp!(p) } : {}),
    });
    build(g);
    return g;
  };
  const g = make();
  if (!tuner) return g;
  const learnt = [await tuner.tune(gemmShapes(g)), (await tuner.tuneOps?.(tunedProblems(g))) ?? false];
  return learnt.some(Boolean) ? make() : g;
}

/** The convolution and attention problems of a graph whose kernel the target may choose, once each. */
export function tunedProblems(g: Graph): TunedProblem[] {
  const seen = new Map<string, TunedProblem>();
  for (const n of g.nodes) if (n.tuned) seen.set(problemKey(n.tuned), n.tuned);
  return [...seen.values()];
}
