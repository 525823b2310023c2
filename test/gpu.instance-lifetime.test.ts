// Regression test for the dawn.node abort (docs/dawn-node.md): the GPU instance must outlive every await on
// the device even when nothing else references it. The child process forces garbage collections between
// dispatches; before the fix it died with SIGABRT/SIGSEGV in almost every run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './paths.ts';

const child = `
import { nodeGpu } from './src/graph/node-gpu.ts';
import { Graph } from './src/graph/graph.ts';
import { WeightStore } from './src/gpu/weights.ts';
import { Executor } from './src/graph/executor.ts';
import { gemm } from './src/graph/ops/gemm.ts';
const ctx = await nodeGpu();
for (let round = 0; round < 4; round++) {
  globalThis.gc();
  const g = new Graph();
  const a = g.input('a', [70, 33]);
  const b = g.input('b', [65, 33]);
  g.output('c', gemm(g, a, b, { M: 70, N: 65, K: 33 }));
  const ex = await Executor.create(ctx, g, new WeightStore(ctx.device));
  globalThis.gc();
  const out = await ex.run({ a: new Float32Array(70 * 33).fill(1), b: new Float32Array(65 * 33).fill(1) });
  if (out.c[0] !== 33) throw new Error('wrong result ' + out.c[0]);
  ex.destroy();
}
ctx.destroy();
console.log('survived');
`;

test('a device survives garbage collection of everything but itself', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', './test/hooks.mjs', '--input-type=module', '-e', child], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.is(r.signal, null, `child died with ${r.signal}: ${r.stderr.slice(-400)}`);
  assert.is(r.status, 0, r.stderr.slice(-400));
  assert.match(r.stdout, 'survived');
});

test.run();
