import type { GpuContext } from '../gpu/device.ts';
import { WeightStore, weightFormats } from '../gpu/weights.ts';
import { buildGraph } from '../graph/autotune.ts';
import { Executor } from '../graph/executor.ts';
import type { Graph, Precision } from '../graph/graph.ts';
import type { HostTensor } from '../io/tensor.ts';

/**
 * A model's GPU side, shared by ZseModel and CaanModel: its weights, uploaded once, and one planned executor per
 * graph key (a graph kind at one batch shape), built on first use and reused.
 */
export class ModelRuntime {
  private readonly executors = new Map<string, Promise<Executor>>();

  private constructor(readonly ctx: GpuContext, private readonly store: WeightStore, readonly precision: Precision) {}

  /**
   * Uploads the tensors. With the f16 option the formats come from one graph of each kind the model builds
   * (`kinds`, dry runs): weights only GEMMs read are kept as binary16 only.
   */
  static create(ctx: GpuContext, tensors: Iterable<[string, HostTensor]>, precision: Precision, kinds: () => ((g: Graph) => void)[]): ModelRuntime {
    const store = new WeightStore(ctx.device);
    const formats = precision === 'f16' ? weightFormats(kinds()) : undefined;
    for (const [name, t] of tensors) store.upload(name, t, formats?.get(name));
    return new ModelRuntime(ctx, store, precision);
  }

  /** Bytes of weights on the GPU (about half with the f16 option, whose GEMM weights are stored as binary16). */
  get weightBytes(): number {
    return this.store.bytes;
  }

  executor(key: string, build: (g: Graph) => void): Promise<Executor> {
    let ex = this.executors.get(key);
    if (!ex) {
      ex = buildGraph(this.ctx, build, { precision: this.precision }).then((g) => Executor.create(this.ctx, g, this.store));
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
