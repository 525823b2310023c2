import { Tensor, type GpuDType } from './tensor.ts';
import type { GemmShape, OpNode, TunedProblem } from './kernel.ts';

/**
 * A model's forward as data: tensors and the ops between them, in execution order.
 * Models only build graphs; `planGraph` gives buffers, `Executor` runs them (ggml's split).
 */
/** What the graph will run on, for ops that have kernel variants. */
export interface GraphTarget {
  /** A CPU driver: prefer kernels without workgroup memory and barriers. */
  software?: boolean;
  /** A measured GEMM kernel choice for this adapter (src/graph/autotune.ts); undefined: the built-in rule. */
  gemm?: (shape: GemmShape) => string | undefined;
  /**
   * A measured kernel choice for another op's problem: convolutions ('b8', 'b4', 'gemm32', 'gemm64'; ops/conv2d.ts),
   * attention ('flash', 'split'; ops/attention.ts); undefined: the built-in rule.
   */
  choose?: (problem: TunedProblem) => string | undefined;
  /**
   * 'f16': the model's GEMMs (every Linear, conv-free projection) take their operands rounded to binary16 and
   * accumulate in f32, as f16 tensor-core GEMMs do; their weights are bound in binary16 form, and activations
   * that only GEMMs read may be stored so (`half` of gemm, layerNorm, attention). The rest stays f32. Default 'f32'.
   */
  precision?: Precision;
  /** The subgroup-matrix f16 GEMM compiled and passed its check on this device (src/graph/smat.ts). */
  smat?: boolean;
  /**
   * Fuse a GEMM's pre-norm LayerNorm (gemm option `norm`) into the GEMM where its kernel can take it: one dispatch
   * less per LayerNorm (24 of 92 in a ViT-B/16 SA forward) and no normalised copy written and read back. true or
   * false: always or never. Default: on hardware adapters for GEMMs of up to NORM_FUSE_MAX_ROWS rows (ops/gemm.ts:
   * small forwards, where dispatches and host time weigh most); never on software ones, where the CPU driver's
   * GEMM (rowdot, no workgroup memory) would recompute each row's statistics for every 4 output columns: the small SA
   * encoder took 1.1-1.6x as long on lavapipe fused (docs/performance.md, "Host cost per forward").
   */
  fuseNorm?: boolean;
}

export type Precision = 'f32' | 'f16';

export class Graph {
  readonly tensors: Tensor[] = [];
  readonly nodes: OpNode[] = [];
  readonly outputs = new Map<string, Tensor>();
  private nextId = 0;

  constructor(readonly target: GraphTarget = {}) {}

  input(name: string, shape: readonly number[], dtype: GpuDType = 'f32'): Tensor {
    if (this.tensors.some((t) => t.kind === 'input' && t.name === name)) throw new Error(`duplicate input ${name}`);
    return this.add(new Tensor(this.nextId++, shape, 'input', name, dtype));
  }

  /**
   * A parameter, bound by name to a buffer of the weight store at execution; 'f16' binds the store's binary16
   * copy of it (the f16 option's GEMM weights).
   */
  weight(name: string, shape: readonly number[], dtype: 'f32' | 'f16' = 'f32'): Tensor {
    const existing = this.tensors.find((t) => t.kind === 'weight' && t.name === name && t.dtype === dtype);
    if (existing) {
      if (existing.shape.join() !== shape.join()) throw new Error(`weight ${name} used with shapes ${existing.shape} and ${shape}`);
      return existing;
    }
    return this.add(new Tensor(this.nextId++, shape, 'weight', name, dtype));
  }

  constant(name: string, shape: readonly number[], data: Float32Array | Uint32Array): Tensor {
    return this.add(new Tensor(this.nextId++, shape, 'const', name, data instanceof Uint32Array ? 'u32' : 'f32', data));
  }

  intermediate(name: string, shape: readonly number[], dtype: GpuDType = 'f32'): Tensor {
    return this.add(new Tensor(this.nextId++, shape, 'intermediate', name, dtype));
  }

  /** The formats in which the graph's ops read each weight (a weight read in neither form is not listed). */
  weightDtypes(): Map<string, Set<GpuDType>> {
    const m = new Map<string, Set<GpuDType>>();
    for (const n of this.nodes) {
      for (const t of n.reads) {
        if (t?.kind !== 'weight') continue;
        let s = m.get(t.name);
        if (!s) m.set(t.name, (s = new Set()));
        s.add(t.dtype);
      }
    }
    return m;
  }

  push(node: OpNode): void {
    for (const t of node.reads) if (t && !this.tensors.includes(t)) throw new Error(`${node.label}: reads a tensor of another graph`);
    // Binary16 tensors (packed pairs) are read only by the GEMM kernels, through their f16 operand loaders.
    for (const t of node.reads) if (t?.dtype === 'f16' && !node.gemm) throw new Error(`${node.label}: reads ${t}, stored as binary16, which only GEMMs read`);
    this.nodes.push(node);
  }

  /** Mark a tensor as a result: it is kept to the end of the forward and can be read back. */
  output(name: string, t: Tensor): Tensor {
    if (t.kind !== 'intermediate') throw new Error(`output ${name} must be computed by the graph`);
    if (t.dtype === 'f16') throw new Error(`output ${name}: ${t} is stored as binary16 pairs, which are not read back`);
    this.outputs.set(name, t);
    return t;
  }

  private add(t: Tensor): Tensor {
    this.tensors.push(t);
    return t;
  }
}
