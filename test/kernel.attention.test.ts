import { test } from 'uvu';
import { attention, rows } from '../src/graph/ops/attention.ts';
import { attentionRef } from './ref.ts';
import { assertClose, rand, runGraph } from './util.ts';

// Softmax-weighted averages of values in [-1,1]: results O(1), fp32 online softmax error ~1e-6.
const TOL = 3e-6;

for (const [B, H, Tq, Tk, dh] of [[1, 1, 1, 1, 3], [2, 3, 17, 17, 8], [1, 2, 197, 197, 13], [2, 1, 5, 130, 70], [1, 2, 3, 65, 96]] as const) {
  test(`attention B${B} H${H} Tq${Tq} Tk${Tk} dh${dh}`, async () => {
    const D = H * dh;
    const q = rand(B * Tq * D, 51, -2, 2), k = rand(B * Tk * D, 52, -2, 2), v = rand(B * Tk * D, 53);
    const out = await runGraph((g) => {
      g.output('o', attention(g, g.input('q', [B, Tq, D]), g.input('k', [B, Tk, D]), g.input('v', [B, Tk, D]), { B, heads: H, Tq, Tk, headDim: dh, q: rows(Tq, D), k: rows(Tk, D), v: rows(Tk, D), scale: 1 / Math.sqrt(dh) }));
    }, { q, k, v });
    assertClose(out.o!, attentionRef(q, k, v, B, Tq, Tk, H, dh, 1 / Math.sqrt(dh)), TOL, TOL, 'attention');
  });
}

test('attention over packed [q|k|v] rows with a divisor', async () => {
  const B = 2, H = 3, T = 11, dh = 5, D = H * dh;
  const qkv = rand(B * T * 3 * D, 54, -2, 2);
  const q = new Float32Array(B * T * D), k = new Float32Array(B * T * D), v = new Float32Array(B * T * D);
  for (let r = 0; r < B * T; r++) {
    q.set(qkv.subarray(r * 3 * D, r * 3 * D + D), r * D);
    k.set(qkv.subarray(r * 3 * D + D, r * 3 * D + 2 * D), r * D);
    v.set(qkv.subarray(r * 3 * D + 2 * D, r * 3 * D + 3 * D), r * D);
  }
  const out = await runGraph((g) => {
    const x = g.input('qkv', [B, T, 3 * D]);
    g.output('o', attention(g, x, x, x, { B, heads: H, Tq: T, Tk: T, headDim: dh, q: rows(T, 3 * D, 0), k: rows(T, 3 * D, D), v: rows(T, 3 * D, 2 * D), divisor: Math.sqrt(dh) }));
  }, { qkv });
  assertClose(out.o!, attentionRef(q, k, v, B, T, T, H, dh, 1 / Math.sqrt(dh)), TOL, TOL, 'attention');
});

test.run();
