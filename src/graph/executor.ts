import { SketchError } from '../core/errors.ts';
import { assertNotLost, type GpuContext } from '../gpu/device.ts';
import { getPipeline } from '../gpu/pipelines.ts';
import type { WeightStore } from '../gpu/weights.ts';
import type { Graph } from './graph.ts';
import { packParams, type OpNode } from './kernel.ts';
import { planGraph, type Plan } from './planner.ts';
import type { Tensor } from './tensor.ts';

export type HostArray = Float32Array | Uint32Array;

/** The u32 values of an output read back by `Executor.run` (same bytes, no copy). */
export function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

export interface NodeTiming {
  label: string;
  kernel: string;
  ms: number;
  flops?: number;
}

interface Prepared {
  node: OpNode;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  /** The bind group's entries (rebuilt from when a weight's buffer is replaced), and the weights among its reads. */
  entries: GPUBindGroupEntry[];
  weights: { binding: number; tensor: Tensor }[];
}

/**
 * Runs one planned graph. Everything is allocated here, once: slot buffers, uniforms, bind groups, staging
 * buffers. A forward is then one command encoder: input uploads, every dispatch, output copies.
 */
export class Executor {
  readonly plan: Plan;
  private readonly buffers = new Map<number, GPUBuffer>();
  private readonly owned: GPUBuffer[] = [];
  private readonly staging = new Map<string, GPUBuffer>();
  private prepared: Prepared[] = [];
  /**
   * The forward as flat arrays, filled once (and where a weight buffer changed): per dispatch its pipeline, or null
   * where the previous dispatch's pipeline is still set, its bind group and its workgroup counts.
   */
  private pipelines: (GPUComputePipeline | null)[] = [];
  private bindGroups: GPUBindGroup[] = [];
  private groupsXYZ = new Uint32Array(0);
  private bindGroupsCreated = 0;
  /** The next forward's command buffer, encoded while the GPU runs the current one (`runNow`). */
  private ahead: { cb: GPUCommandBuffer; key: string; generation: number } | null = null;
  /** The weight store's generation the bind groups were made for (see `refreshWeights`). */
  private weightGeneration = -1;
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly ctx: GpuContext,
    readonly graph: Graph,
    readonly weights: WeightStore,
  ) {
    this.plan = planGraph(graph);
  }

  static async create(ctx: GpuContext, graph: Graph, weights: WeightStore): Promise<Executor> {
    const ex = new Executor(ctx, graph, weights);
    await ex.allocate();
    return ex;
  }

  private buffer(bytes: number, usage: number, label: string): GPUBuffer {
    const b = this.ctx.device.createBuffer({ size: bytes, usage, label });
    this.owned.push(b);
    return b;
  }

  private async allocate(): Promise<void> {
    const { device } = this.ctx;
    const maxBind = device.limits.maxStorageBufferBindingSize;
    if (this.plan.largestSlotBytes > maxBind || this.plan.largestSlotBytes > device.limits.maxBufferSize) {
      throw new SketchError('BAD_ARGUMENT', `This batch needs a ${(this.plan.largestSlotBytes / 2 ** 20).toFixed(1)} MiB buffer, more than the adapter allows in one binding (${(maxBind / 2 ** 20).toFixed(0)} MiB).`, 'Use a smaller --batch.');
    }
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    // Weights are bound in the format their readers ask for; a weight tensor no op reads binds nothing.
    const read = new Set(this.graph.nodes.flatMap((n) => n.reads.filter((t) => t !== null).map((t) => t.id)));
    const slotBuffers = this.plan.slots.map((s) => this.buffer(s.bytes, storage, `slot${s.index}`));
    for (const t of this.graph.tensors) {
      if (t.kind === 'intermediate') {
        const s = this.plan.slotOf.get(t.id);
        if (s !== undefined) this.buffers.set(t.id, slotBuffers[s]!);
      } else if (t.kind === 'input') {
        this.buffers.set(t.id, this.buffer(t.bytes, storage, `input:${t.name}`));
      } else if (t.kind === 'const') {
        const b = this.buffer(t.bytes, storage, `const:${t.name}`);
        device.queue.writeBuffer(b, 0, t.data!.buffer, t.data!.byteOffset, t.data!.byteLength);
        this.buffers.set(t.id, b);
      } else if (read.has(t.id)) {
        const format = t.dtype === 'f16' ? 'f16' : 'f32';
        if (!this.weights.has(t.name, format)) {
          if (this.weights.shapes.has(t.name)) throw new Error(`internal: weight ${t.name} is needed as ${format} but was uploaded only in another format (see weightFormats in src/models/runtime.ts)`);
          throw new SketchError('BAD_WEIGHTS', `The model needs the tensor "${t.name}", which the weights do not have.`, 'Convert the checkpoint again with `sketchgpu convert`.');
        }
        this.buffers.set(t.id, this.weights.get(t.name, format));
      }
    }
    const dummy = this.buffer(16, storage, 'absent');
    for (const [name, t] of this.graph.outputs) {
      this.staging.set(name, this.buffer(t.bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `read:${name}`));
    }
    this.weightGeneration = this.weights.generation;
    this.prepared = this.graph.nodes.map((node) => {
      const pipeline = getPipeline(device, node.kernel, node.reads.length, node.writes.length);
      const uniform = this.buffer(Math.max(16, packParams(node.params).byteLength), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, `params:${node.label}`);
      device.queue.writeBuffer(uniform, 0, packParams(node.params));
      const entries: GPUBindGroupEntry[] = [];
      const weights: Prepared['weights'] = [];
      node.reads.forEach((t, i) => {
        entries.push({ binding: i, resource: { buffer: t ? this.buffers.get(t.id)! : dummy } });
        if (t?.kind === 'weight') weights.push({ binding: i, tensor: t });
      });
      node.writes.forEach((t, i) => entries.push({ binding: node.reads.length + i, resource: { buffer: this.buffers.get(t.id)! } }));
      entries.push({ binding: node.reads.length + node.writes.length, resource: { buffer: uniform } });
      const bindGroup = this.makeBindGroup(node.label, pipeline, entries);
      return { node, pipeline, bindGroup, entries, weights };
    });
    this.flatten();
    const oom = await device.popErrorScope();
    const invalid = await device.popErrorScope();
    if (oom) throw new SketchError('BAD_ARGUMENT', `The GPU ran out of memory while preparing the model (${(this.plan.peakBytes / 2 ** 20).toFixed(0)} MiB of activations): ${oom.message}`, 'Use a smaller --batch.');
    if (invalid) throw new Error(`WebGPU rejected the graph: ${invalid.message}`);
  }

  /** The GPU buffer holding a tensor during a forward (inputs, outputs, intermediates that are outputs). */
  bufferOf(t: Tensor): GPUBuffer {
    const b = this.buffers.get(t.id);
    if (!b) throw new Error(`${t} has no buffer`);
    return b;
  }

  outputBuffer(name: string): GPUBuffer {
    const t = this.graph.outputs.get(name);
    if (!t) throw new Error(`no output ${name}`);
    return this.bufferOf(t);
  }

  /** Upload the inputs (queue writes happen before the next submit). */
  writeInputs(inputs: Record<string, HostArray>): void {
    for (const t of this.graph.tensors) {
      if (t.kind !== 'input') continue;
      const data = inputs[t.name];
      if (!data) throw new Error(`missing input ${t.name}`);
      if (data.length !== t.size) throw new Error(`input ${t.name}: expected ${t.size} values for [${t.shape}], got ${data.length}`);
      this.ctx.device.queue.writeBuffer(this.bufferOf(t), 0, data.buffer, data.byteOffset, data.byteLength);
    }
  }

  private makeBindGroup(label: string, pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[]): GPUBindGroup {
    this.bindGroupsCreated++;
    return this.ctx.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
  }

  /** The per-dispatch arrays `encode` walks, from `prepared`. */
  private flatten(): void {
    const n = this.prepared.length;
    this.pipelines = this.prepared.map((p, i) => (i > 0 && this.prepared[i - 1]!.pipeline === p.pipeline ? null : p.pipeline));
    this.bindGroups = this.prepared.map((p) => p.bindGroup);
    this.groupsXYZ = new Uint32Array(3 * n);
    this.prepared.forEach((p, i) => this.groupsXYZ.set(p.node.dispatch, 3 * i));
  }

  /**
   * Bind groups hold buffers, so a weight uploaded again under its name (WeightStore.upload replaces and destroys the
   * old buffer) would leave them pointing at a destroyed buffer. When the store changed since they were made, the
   * bind groups of the nodes whose weight buffers changed are made again; the others are kept.
   */
  private refreshWeights(): void {
    if (this.weights.generation === this.weightGeneration) return;
    let changed = false;
    for (const p of this.prepared) {
      let stale = false;
      for (const { binding, tensor } of p.weights) {
        const format = tensor.dtype === 'f16' ? 'f16' : 'f32';
        if (!this.weights.has(tensor.name, format)) throw new SketchError('BAD_WEIGHTS', `The weight "${tensor.name}" was removed from the weight store while a planned graph still reads it.`,
          'Keep the weights of a model loaded while its executors run, or build the executors again after reloading.');
        const now = this.weights.get(tensor.name, format);
        if (this.buffers.get(tensor.id) !== now) {
          this.buffers.set(tensor.id, now);
          p.entries[binding] = { binding, resource: { buffer: now } };
          stale = true;
        }
      }
      if (stale) {
        p.bindGroup = this.makeBindGroup(p.node.label, p.pipeline, p.entries);
        changed = true;
      }
    }
    if (changed) this.flatten();
    this.weightGeneration = this.weights.generation;
  }

  /**
   * Record every dispatch of the forward into one compute pass of `encoder`: per dispatch a setBindGroup and a
   * dispatchWorkgroups, and a setPipeline where the pipeline changes. Nothing is created here.
   */
  encode(encoder: GPUCommandEncoder): void {
    this.refreshWeights();
    const pass = encoder.beginComputePass();
    const pipelines = this.pipelines, bindGroups = this.bindGroups, xyz = this.groupsXYZ;
    for (let i = 0, n = bindGroups.length; i < n; i++) {
      const pipeline = pipelines[i];
      if (pipeline) pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroups[i]!);
      pass.dispatchWorkgroups(xyz[3 * i]!, xyz[3 * i + 1]!, xyz[3 * i + 2]!);
    }
    pass.end();
  }

  /** Encode the forward and submit it: no uploads, no read-back (the host cost of a forward, bench/host.ts). */
  submitForward(): void {
    const encoder = this.ctx.device.createCommandEncoder();
    this.encode(encoder);
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /** What one forward's encoding does: dispatches, state changes, and the bind groups made so far and held. */
  get stats(): { dispatches: number; setPipeline: number; setBindGroup: number; bindGroupsCreated: number; bindGroupsHeld: number } {
    const n = this.prepared.length;
    return { dispatches: n, setPipeline: this.pipelines.filter((p) => p !== null).length, setBindGroup: n, bindGroupsCreated: this.bindGroupsCreated, bindGroupsHeld: n };
  }

  /**
   * Run a forward and read back the named outputs (all outputs by default). A u32 output comes back as its raw
   * bits in a Float32Array: read it with `u32View`.
   */
  async run(inputs: Record<string, HostArray>, outputs?: string[]): Promise<Record<string, Float32Array>> {
    const job = this.busy.then(() => this.runNow(inputs, outputs));
    this.busy = job.catch(() => undefined);
    return job;
  }

  /** One forward with copies of the named outputs into their staging buffers, as a command buffer. */
  private record(names: string[]): GPUCommandBuffer {
    const encoder = this.ctx.device.createCommandEncoder();
    this.encode(encoder);
    for (const name of names) {
      const t = this.graph.outputs.get(name)!;
      encoder.copyBufferToBuffer(this.bufferOf(t), 0, this.staging.get(name)!, 0, t.bytes);
    }
    return encoder.finish();
  }

  private async runNow(inputs: Record<string, HostArray>, outputs?: string[]): Promise<Record<string, Float32Array>> {
    assertNotLost(this.ctx);
    const { device } = this.ctx;
    const names = outputs ?? [...this.graph.outputs.keys()];
    for (const name of names) if (!this.graph.outputs.has(name)) throw new Error(`no output ${name}`);
    this.writeInputs(inputs);
    // The command buffer encoded ahead, after the previous forward's submit, when it reads back the same outputs
    // and the weights' buffers have not changed since (else it is dropped unsubmitted and one is encoded now).
    const key = names.join('\u0000');
    const ahead = this.ahead;
    this.ahead = null;
    const cb = ahead && ahead.key === key && ahead.generation === this.weights.generation ? ahead.cb : this.record(names);
    device.queue.submit([cb]);
    // Encode the next forward now, while the GPU runs this one: a forward of a warm executor then costs the host
    // only its uploads and one submit before the GPU starts (the inputs are written to the queue before it).
    this.ahead = { cb: this.record(names), key, generation: this.weights.generation };
    const result: Record<string, Float32Array> = {};
    try {
      await Promise.all(names.map((n) => this.staging.get(n)!.mapAsync(GPUMapMode.READ)));
    } catch (e) {
      assertNotLost(this.ctx);
      throw e;
    }
    for (const name of names) {
      const t = this.graph.outputs.get(name)!;
      const st = this.staging.get(name)!;
      result[name] = new Float32Array(st.getMappedRange(0, t.size * 4).slice(0));
      st.unmap();
    }
    return result;
  }

  /** Per-node GPU times from timestamp queries (each node in its own pass). Needs the profile option. */
  async profile(inputs: Record<string, HostArray>, repeats = 1): Promise<NodeTiming[]> {
    const { device } = this.ctx;
    if (!this.ctx.features.timestamp) throw new SketchError('MISSING_FEATURE', 'This adapter has no timestamp queries.', 'Profile on an adapter with timestamp-query.');
    const n = this.prepared.length;
    const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * n });
    const resolve = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const totals = new Float64Array(n);
    this.refreshWeights();
    this.writeInputs(inputs);
    for (let r = 0; r < repeats; r++) {
      const encoder = device.createCommandEncoder();
      this.prepared.forEach((p, i) => {
        const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        pass.setPipeline(p.pipeline);
        pass.setBindGroup(0, p.bindGroup);
        pass.dispatchWorkgroups(...p.node.dispatch);
        pass.end();
      });
      encoder.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, read, 0, 16 * n);
      device.queue.submit([encoder.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const ts = new BigUint64Array(read.getMappedRange().slice(0));
      read.unmap();
      for (let i = 0; i < n; i++) totals[i] += Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6;
    }
    querySet.destroy();
    resolve.destroy();
    read.destroy();
    return this.prepared.map((p, i) => ({ label: p.node.label, kernel: p.node.kernel.name, ms: totals[i]! / repeats, flops: p.node.flops }));
  }

  destroy(): void {
    this.ahead = null;
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
  }
}
