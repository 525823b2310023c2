// An executor is planned once and run many times: its bind groups and per-dispatch arrays are made once. These check
// that reuse gives bit-identical results across forwards with different inputs, and that replacing a weight's
// buffer (WeightStore.upload under the same name destroys the old one) remakes exactly the bind groups that bound it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WeightStore } from '../src/gpu/weights.ts';
import { Executor } from '../src/graph/executor.ts';
import { Graph } from '../src/graph/graph.ts';
import { gemm, linear } from '../src/graph/ops/gemm.ts';
import { layerNorm } from '../src/graph/ops/layernorm.ts';
import { gemmRef, layerNormRef } from './ref.ts';
import { assertClose, gpu, rand } from './util.ts';

// Odd shapes: 37 rows, K 21 and 13 (the tiled GEMM: unaligned), widths 13 and 7 (the scalar layer norm).
const M = 37, K = 21, H = 13, N = 7;
const W = { w1: rand(H * K, 1), b1: rand(H, 2), w2: rand(N * H, 3), b2: rand(N, 4), gamma: rand(N, 5, 0.5, 1.5), beta: rand(N, 6) };

function build(g: Graph): void {
  const x = g.input('x', [M, K]);
  const h = linear(g, x, 'fc1', H, { act: 'relu' });
  // Two GEMMs of one pipeline in a row (the second's setPipeline is skipped), then a layer norm.
  const y = gemm(g, h, g.weight('fc2.weight', [N, H]), { M, N, K: H, bias: g.weight('fc2.bias', [N]) });
  g.output('h', h);
  g.output('y', layerNorm(g, y, g.weight('ln.weight', [N]), g.weight('ln.bias', [N]), { kind: 'torch', eps: 1e-5 }));
}

function upload(store: WeightStore, w: typeof W): void {
  store.upload('fc1.weight', { dtype: 'f32', shape: [H, K], data: w.w1 });
  store.upload('fc1.bias', { dtype: 'f32', shape: [H], data: w.b1 });
  store.upload('fc2.weight', { dtype: 'f32', shape: [N, H], data: w.w2 });
  store.upload('fc2.bias', { dtype: 'f32', shape: [N], data: w.b2 });
  store.upload('ln.weight', { dtype: 'f32', shape: [N], data: w.gamma });
  store.upload('ln.bias', { dtype: 'f32', shape: [N], data: w.beta });
}

function reference(x: Float32Array, w: typeof W): Float64Array {
  const h = Float32Array.from(gemmRef(x, w.w1, M, H, K, { bias: w.b1, act: 'relu' }));
  const y = Float32Array.from(gemmRef(h, w.w2, M, N, H, { bias: w.b2 }));
  return layerNormRef(y, M, N, w.gamma, w.beta, 'torch', 1e-5);
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** One forward on a fresh executor and store: what a reused executor must reproduce bit for bit. */
type Ctx = Awaited<ReturnType<typeof gpu>>;

/** The test graph planned over weights `w`, handed to `fn`; executor and weights destroyed afterwards. */
async function withExecutor<T>(w: typeof W, fn: (ex: Executor, g: Graph, store: WeightStore, ctx: Ctx) => Promise<T>): Promise<T> {
  const ctx = await gpu();
  const g = new Graph({ software: ctx.software });
  build(g);
  const store = new WeightStore(ctx.device);
  upload(store, w);
  const ex = await Executor.create(ctx, g, store);
  try {
    return await fn(ex, g, store, ctx);
  } finally {
    ex.destroy();
    store.destroy();
  }
}

const fresh = (x: Float32Array, w: typeof W): Promise<Record<string, Float32Array>> => withExecutor(w, (ex) => ex.run({ x }));

test('a reused executor gives bit-identical results across forwards with different inputs, creating nothing per forward', () => withExecutor(W, async (ex, g) => {
  const xs = [rand(M * K, 10), rand(M * K, 11), rand(M * K, 12, -3, 3)];
  const created = ex.stats.bindGroupsCreated;
  assert.is(created, g.nodes.length);
  assert.is(ex.stats.setPipeline, g.nodes.length - 1, 'the second of two GEMMs on one pipeline skips its setPipeline');
  const first: Record<string, Float32Array>[] = [];
  for (const x of xs) first.push(await ex.run({ x }));
  // Interleaved repeats: every result equals the first run on that input and a fresh executor's, bit for bit.
  for (const i of [2, 0, 1, 1, 0, 2]) {
    const again = await ex.run({ x: xs[i]! });
    for (const k of ['h', 'y']) assert.equal(bits(again[k]!), bits(first[i]![k]!), `input ${i}, output ${k}: repeat`);
  }
  for (let i = 0; i < xs.length; i++) {
    const f = await fresh(xs[i]!, W);
    for (const k of ['h', 'y']) assert.equal(bits(first[i]![k]!), bits(f[k]!), `input ${i}, output ${k}: fresh executor`);
    assertClose(first[i]!.y!, reference(xs[i]!, W), 2e-4, 1e-4, `input ${i} against the TypeScript reference`);
  }
  assert.ok(bits(first[0]!.y!).join() !== bits(first[1]!.y!).join(), 'different inputs give different outputs');
  // Another set of outputs than the forward encoded ahead (run() encodes the next forward after each submit).
  const onlyY = await ex.run({ x: xs[1]! }, ['y']);
  assert.equal(Object.keys(onlyY), ['y']);
  assert.equal(bits(onlyY.y!), bits(first[1]!.y!));
  assert.equal(bits((await ex.run({ x: xs[2]! })).h!), bits(first[2]!.h!));
  assert.is(ex.stats.bindGroupsCreated, created, 'no bind group made per forward');
}));

test('replacing a weight buffer remakes exactly the bind groups that bound it: no stale or destroyed buffer is used', () => withExecutor(W, async (ex, _g, store, ctx) => {
  const x = rand(M * K, 20);
  const before = await ex.run({ x });
  const created = ex.stats.bindGroupsCreated;
  // New values for the second GEMM's weight, uploaded under the same name: a new buffer, the old one destroyed.
  const W2 = { ...W, w2: rand(N * H, 30) };
  store.upload('fc2.weight', { dtype: 'f32', shape: [N, H], data: W2.w2 });
  ctx.device.pushErrorScope('validation');
  const after = await ex.run({ x });
  const err = await ctx.device.popErrorScope();
  assert.is(err, null, `no validation error (a destroyed buffer in a bind group would give one): ${err?.message}`);
  assert.is(ex.stats.bindGroupsCreated, created + 1, 'only the node that reads fc2.weight got a new bind group');
  assert.equal(bits(after.h!), bits(before.h!), 'the first GEMM is unchanged');
  assert.equal(bits(after.y!), bits((await fresh(x, W2)).y!), 'the new weight is used, bit for bit as a fresh executor');
  assertClose(after.y!, reference(x, W2), 2e-4, 1e-4, 'against the TypeScript reference with the new weight');
  // Back to the first values: the first results again, and repeated runs make nothing more.
  store.upload('fc2.weight', { dtype: 'f32', shape: [N, H], data: W.w2 });
  const back = await ex.run({ x });
  assert.equal(bits(back.y!), bits(before.y!));
  await ex.run({ x });
  assert.is(ex.stats.bindGroupsCreated, created + 2);
  // A weight removed from under a planned graph is a clear error, not a GPU validation failure.
  store.destroy();
  try {
    await ex.run({ x });
    assert.unreachable('ran without its weights');
  } catch (e) {
    assert.match(String((e as Error).message), 'was removed from the weight store');
  }
}));

test.run();
