import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { u32View } from '../src/graph/executor.ts';
import { topk, TOPK_CHUNK } from '../src/graph/ops/topk.ts';
import { rankRow } from '../src/retrieval/metrics.ts';
import { rand, runGraph } from './util.ts';

/** Plain reference: the whole row sorted by (value desc, index asc), NaN last. */
function refTopk(x: Float32Array, rows: number, n: number, k: number): { v: number[]; i: number[] }[] {
  return Array.from({ length: rows }, (_, r) => {
    const row = x.subarray(r * n, (r + 1) * n);
    const order = rankRow(row).slice(0, k);
    return { v: Array.from(order, (j) => row[j]!), i: Array.from(order) };
  });
}

async function check(rows: number, n: number, k: number, x: Float32Array, what: string) {
  const out = await runGraph((g) => {
    const r = topk(g, g.input('x', [rows, n]), rows, n, k);
    g.output('v', r.values);
    g.output('i', r.indices);
  }, { x });
  const idx = u32View(out.i!);
  const ref = refTopk(x, rows, n, k);
  for (let r = 0; r < rows; r++) {
    const m = Math.min(k, n);
    const gotI = Array.from(idx.subarray(r * k, r * k + m));
    assert.equal(gotI, ref[r]!.i, `${what}: row ${r} indices`);
    // Values are copies of inputs, so they match exactly (NaN reads as the lowest float).
    for (let t = 0; t < m; t++) {
      const want = Number.isNaN(ref[r]!.v[t]!) ? -3.4028234663852886e38 : ref[r]!.v[t]!;
      assert.is(out.v![r * k + t], Math.max(want, -3.4028234663852886e38), `${what}: row ${r} value ${t}`);
    }
    for (let t = m; t < k; t++) assert.is(idx[r * k + t], 0xffffffff, `${what}: padding`);
  }
}

test('top-k of short rows (n < k pads, one pass)', async () => {
  await check(3, 5, 8, rand(15, 101), 'n=5 k=8');
  await check(1, 1, 1, new Float32Array([0.5]), 'n=1 k=1');
});

test('top-k over several chunks and passes, odd sizes', async () => {
  await check(3, 5001, 10, rand(3 * 5001, 102), 'n=5001 k=10');
  await check(2, TOPK_CHUNK + 1, 1, rand(2 * (TOPK_CHUNK + 1), 103), 'n=2049 k=1');
  await check(2, 3 * TOPK_CHUNK + 77, 700, rand(2 * (3 * TOPK_CHUNK + 77), 104), 'n=6221 k=700 (three passes)');
});

test('ties go to the lower index; NaN and -inf rank last', async () => {
  const n = 4099;
  const x = new Float32Array(2 * n);
  for (let j = 0; j < n; j++) x[j] = Math.round(rand(1, 200 + j)[0]! * 3) / 3; // few distinct values
  x.fill(0.25, n); // row 1: all tied
  x[n + 4000] = Number.NaN;
  x[n + 17] = -Infinity;
  x[n + 3001] = 1;
  await check(2, n, 64, x, 'ties');
  const nan = new Float32Array([Number.NaN, -1, Number.NaN, 2]);
  await check(1, 4, 4, nan, 'NaN');
});

test.run();
