// Positive control for docs/dawn-node.md: the bench's wall-timing loop (submit, await onSubmittedWorkDone) on the
// 256-invocation vec4 GEMM, 8 submits per wait, a forced collection per round, with the GPU instance held (HOLD=1)
// or referenced only inside the helper that made the device (HOLD=0, the cause). Run:
//   HOLD=0 [ROUNDS=200] node --expose-gc --import tsx --import ./test/hooks.mjs tools/checks/dawn_abort_control.ts
import { create, globals } from 'webgpu';
import { createGpuContext } from '../../src/gpu/device.ts';
import { WeightStore } from '../../src/gpu/weights.ts';
import { Graph } from '../../src/graph/graph.ts';
import { Executor } from '../../src/graph/executor.ts';
import { gemm } from '../../src/graph/ops/gemm.ts';
Object.assign(globalThis, globals);
let held: unknown;
async function device() {
  const gpu = create(['enable-dawn-features=allow_unsafe_apis']);
  if (process.env.HOLD === '1') held = gpu;
  const ctx = await createGpuContext(gpu as GPU, {});
  if (process.env.HOLD !== '1') (ctx as { gpu?: unknown }).gpu = undefined;
  return ctx;
}
const ctx = await device();
const gc = (globalThis as { gc: () => void }).gc;
const M = 200, N = 384, K = 128;
const store = new WeightStore(ctx.device);
store.upload('w', { dtype: 'f32', shape: [N, K], data: new Float32Array(N * K).fill(0.01) });
const g = new Graph({ software: false });
g.output('c', gemm(g, g.input('a', [M, K]), g.weight('w', [N, K]), { M, N, K, variant: 'vec4' }));
const ex = await Executor.create(ctx, g, store);
ex.writeInputs({ a: new Float32Array(M * K).fill(1) });
const rounds = Number(process.env.ROUNDS ?? 200);
for (let i = 0; i < rounds; i++) {
  gc();
  for (let j = 0; j < 8; j++) ex.submitForward();
  await ctx.device.queue.onSubmittedWorkDone();
}
console.log('survived', held ? 'held' : 'not held');
