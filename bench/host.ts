// The host (CPU) cost of one forward: the JavaScript-side encode and queue.submit of a planned graph, with the GPU's
// work excluded (each timed submit is awaited before the next starts, outside the timed span). Used by bench/run.ts
// (`--only host`).
import type { GpuContext } from '../src/gpu/device.ts';
import type { Executor, HostArray } from '../src/graph/executor.ts';

export interface HostCost {
  /** Dispatches per forward (one per graph node). */
  dispatches: number;
  /** setPipeline calls per forward (consecutive dispatches of one pipeline share one call). */
  set_pipeline: number;
  /** setBindGroup calls per forward. */
  set_bind_group: number;
  /** Bind groups created per forward (after the first: all are made once per executor). */
  bind_groups_created_per_forward: number;
  /** Bind groups the executor holds (created once, at allocation). */
  bind_groups_held: number;
  /** createCommandEncoder + every pass command + finish, no submit: ms per forward, median and minimum of `encode_iters`. */
  encode_ms: { median: number; min: number };
  encode_iters: number;
  /** The same plus queue.submit: ms per forward (median, minimum) of `submit_iters`, the GPU's work excluded. */
  encode_submit_ms: { median: number; min: number };
  /**
   * queue.submit alone, of those forwards: the host's part of a forward on the critical path when the command buffer
   * was encoded ahead (Executor.run encodes the next forward while the GPU runs the current one).
   */
  submit_ms: { median: number; min: number };
  submit_iters: number;
  /** queue.writeBuffer of the forward's inputs (reported apart: an upload, not encoding). */
  upload_ms: { median: number; min: number };
  input_bytes: number;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]! };
};

/**
 * Time an executor's per-forward host work. `submitIters` forwards run on the GPU (on a CPU driver each one is the
 * whole forward's compute, so keep it small there); the encode-only loop runs nothing on the GPU (its command
 * buffers are dropped unsubmitted). Each timed span starts after a short sleep, as a forward does in use. `gc` (a function, when the process runs with --expose-gc) is called between
 * iterations, outside the timed spans.
 */
export async function measureHost(ctx: GpuContext, ex: Executor, inputs: Record<string, HostArray>, o: { encodeIters: number; submitIters: number; gc?: () => void }): Promise<HostCost> {
  const { device } = ctx;
  const upload: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    ex.writeInputs(inputs);
    upload.push(performance.now() - t0);
  }
  // Warm-up: one whole forward (pipelines, lazily created backend objects).
  ex.submitForward();
  await device.queue.onSubmittedWorkDone();
  const created0 = ex.stats.bindGroupsCreated;
  const encodeSubmit: number[] = [], submit: number[] = [];
  for (let i = 0; i < o.submitIters; i++) {
    o.gc?.();
    // On a CPU driver the "GPU" is this machine's cores: let its worker threads go idle before the timed span.
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    ex.encode(enc);
    const cb = enc.finish();
    const t1 = performance.now();
    device.queue.submit([cb]);
    const t2 = performance.now();
    encodeSubmit.push(t2 - t0);
    submit.push(t2 - t1);
    await device.queue.onSubmittedWorkDone();
  }
  const encode: number[] = [];
  for (let i = 0; i < o.encodeIters + 5; i++) {
    // A forward is encoded after awaiting something else, not in a hot loop: a short sleep between iterations keeps
    // the caches as cold as that (a back-to-back loop measured 3x less on lavapipe's machine).
    await new Promise((r) => setTimeout(r, 2));
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    ex.encode(enc);
    enc.finish();
    if (i >= 5) encode.push(performance.now() - t0);
    if (i % 50 === 0) o.gc?.();
  }
  const forwards = o.encodeIters + 5 + o.submitIters;
  const s = ex.stats;
  return {
    dispatches: s.dispatches,
    set_pipeline: s.setPipeline,
    set_bind_group: s.setBindGroup,
    bind_groups_created_per_forward: (s.bindGroupsCreated - created0) / forwards,
    bind_groups_held: s.bindGroupsHeld,
    encode_ms: stats(encode),
    encode_iters: o.encodeIters,
    encode_submit_ms: stats(encodeSubmit),
    submit_ms: stats(submit),
    submit_iters: o.submitIters,
    upload_ms: stats(upload),
    input_bytes: ex.graph.tensors.filter((t) => t.kind === 'input').reduce((a, t) => a + t.bytes, 0),
  };
}
