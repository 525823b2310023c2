import type { GpuContext } from '../gpu/device.ts';
import { WeightStore, type WeightFormat } from '../gpu/weights.ts';
import { buildGraph } from '../graph/autotune.ts';
import { Executor } from '../graph/executor.ts';
import { Graph, type Precision } from '../graph/graph.ts';
import { planGraph } from '../graph/planner.ts';
import type { HostTensor } from '../core/tensor.ts';

/**
 * A model's GPU side, shared by ZseModel and CaanModel: its weights, uploaded once, and one planned executor per
 * graph key (a graph kind at one batch shape), built on first use and reused.
 */
export class ModelRuntime {
  private readonly executors = new Map<string, Promise<Executor>>();

  private constructor(readonly ctx: GpuContext, private readonly store: WeightStore, readonly precision: Precision, private readonly fuseNorm?: boolean) {}

  /**
   * Uploads the tensors. With the f16 option the formats come from one graph of each kind the model builds
   * (`kinds`, dry runs): weights only GEMMs read are kept as binary16 only.
   */
  static create(ctx: GpuContext, tensors: Iterable<[string, HostTensor]>, precision: Precision, kinds: () => ((g: Graph) => void)[], o: { fuseNorm?: boolean } = {}): ModelRuntime {
    const store = new WeightStore(ctx.device);
    const formats = precision === 'f16' ? weightFormats(kinds()) : undefined;
    for (const [name, t] of tensors) store.upload(name, t, formats?.get(name));
    return new ModelRuntime(ctx, store, precision, o.fuseNorm);
  }

  /** Bytes of weights on the GPU (about half with the f16 option, whose GEMM weights are stored as binary16). */
  get weightBytes(): number {
    return this.store.bytes;
  }

  executor(key: string, build: (g: Graph) => void): Promise<Executor> {
    let ex = this.executors.get(key);
    if (!ex) {
      ex = buildGraph(this.ctx, build, { precision: this.precision, fuseNorm: this.fuseNorm }).then((g) => Executor.create(this.ctx, g, this.store));
      ex.catch(() => this.executors.delete(key));
      this.executors.set(key, ex);
    }
    return ex;
  }

  async destroy(): Promise<void> {
    for (const ex of this.executors.values()) (await ex.catch(() => null))?.destroy();
    this.executors.clear();
    this.store.destroy();
  }
}

/**
 * The formats to upload each weight in with the f16 option, from one graph of each kind a model builds (built
 * here with precision f16, no GPU): a weight that only GEMMs read is kept only as binary16; one that other ops
 * read as well keeps its f32 copy too; a weight none of the graphs reads stays f32.
 */
function weightFormats(kinds: Iterable<(g: Graph) => void>): Map<string, WeightFormat[]> {
  const seen = new Map<string, Set<string>>();
  for (const build of kinds) {
    const g = new Graph({ precision: 'f16' });
    build(g);
    for (const [name, dtypes] of g.weightDtypes()) {
      let s = seen.get(name);
      if (!s) seen.set(name, (s = new Set()));
      for (const d of dtypes) s.add(d);
    }
  }
  const out = new Map<string, WeightFormat[]>();
  for (const [name, s] of seen) out.set(name, [...(s.has('f32') ? ['f32' as const] : []), ...(s.has('f16') ? ['f16' as const] : [])]);
  return out;
}

/**
 * The bytes of the largest buffer one unit (one image, one text, one pair) binds, read from the plan: each graph is
 * built for one unit (f32, no GPU) and planned, and its largest slot or input is taken. The one sizing rule for both
 * models' batches and for the page's adapter check (models/limits.ts).
 */
export function unitBindingBytes(builds: Iterable<(g: Graph) => void>): number {
  let bytes = 0;
  for (const build of builds) {
    const g = new Graph({ precision: 'f32' });
    build(g);
    bytes = Math.max(bytes, planGraph(g).largestSlotBytes);
    for (const t of g.tensors) if (t.kind === 'input') bytes = Math.max(bytes, t.bytes);
  }
  return bytes;
}

/** How many units fit one binding of `maxBind` bytes: at least 1, at most `cap`. */
export const batchLimit = (maxBind: number, unitBytes: number, cap: number): number => Math.max(1, Math.min(cap, Math.floor(maxBind / unitBytes)));
