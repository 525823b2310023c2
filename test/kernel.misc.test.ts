import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { anchorBestCosine, anchorCosine, cosineMatrix } from '../src/graph/ops/cosine.ts';
import { assembleTokens, tokenEmbedding } from '../src/graph/ops/embed.ts';
import { gatherRows } from '../src/graph/ops/gather.ts';
import { l2normRows } from '../src/graph/ops/l2norm.ts';
import { assertClose, rand, runGraph } from './util.ts';

test('token assembly: (patch + stem)/2 + pos, cls + pos[0]', async () => {
  const B = 2, T = 6, D = 5;
  const patch = rand(B * (T - 1) * D, 61), stem = rand(B * (T - 1) * D, 62), cls = rand(D, 63), pos = rand(T * D, 64);
  const out = await runGraph((g) => {
    g.output('t', assembleTokens(g, g.input('p', [B, T - 1, D]), g.input('s', [B, T - 1, D]), g.input('c', [D]), g.input('pos', [T, D]), B, T, D));
  }, { p: patch, s: stem, c: cls, pos });
  const ref = new Float64Array(B * T * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
    ref[(b * T + t) * D + d] = t === 0 ? cls[d]! + pos[d]! : (patch[(b * (T - 1) + t - 1) * D + d]! + stem[(b * (T - 1) + t - 1) * D + d]!) / 2 + pos[t * D + d]!;
  }
  assertClose(out.t!, ref, 1e-7, 1e-7, 'tokens');
});

test('token embedding: table[id] + pos[t] for odd N, L, D, ids at both ends of the table', async () => {
  const N = 3, L = 7, D = 13, vocab = 101, ctx = 9; // pos has more rows than L (a shortened context)
  const table = rand(vocab * D, 68), pos = rand(ctx * D, 69);
  const ids = new Uint32Array(N * L);
  for (let i = 0; i < ids.length; i++) ids[i] = (i * 37 + 5) % vocab;
  ids[0] = 0;
  ids[N * L - 1] = vocab - 1;
  const out = await runGraph((g) => {
    g.output('e', tokenEmbedding(g, g.input('ids', [N, L], 'u32'), g.input('table', [vocab, D]), g.input('pos', [ctx, D]), { N, L, D, vocab }));
  }, { ids, table, pos });
  const ref = new Float64Array(N * L * D);
  for (let r = 0; r < N * L; r++) for (let d = 0; d < D; d++) ref[r * D + d] = Math.fround(table[ids[r]! * D + d]! + pos[(r % L) * D + d]!);
  assertClose(out.e!, ref, 0, 0, 'embedding'); // one f32 add, rounded the same way: exact
});

test('l2norm of the cls rows, and a zero row stays zero', async () => {
  const B = 3, T = 4, D = 67;
  const x = rand(B * T * D, 65);
  x.fill(0, 2 * T * D, 2 * T * D + D); // sample 2's cls token is all zeros
  const out = await runGraph((g) => { g.output('e', l2normRows(g, g.input('x', [B, T, D]), B, D, { ldx: T * D })); }, { x });
  const ref = new Float64Array(B * D);
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let d = 0; d < D; d++) n += x[b * T * D + d]! ** 2;
    n = Math.max(Math.sqrt(n), 1e-12);
    for (let d = 0; d < D; d++) ref[b * D + d] = x[b * T * D + d]! / n;
  }
  assertClose(out.e!, ref, 1e-6, 1e-6, 'emb');
  assert.ok(out.e!.slice(2 * D, 3 * D).every((v) => v === 0));
});

test('anchor cosine: sketch-anchor-major, zero norm gives 0 not NaN', async () => {
  const P = 2, A = 5, C = 9;
  const sk = rand(P * A * C, 66), im = rand(P * A * C, 67);
  sk.fill(0, C, 2 * C); // pair 0, sketch anchor 1 is all zeros
  const out = await runGraph((g) => { g.output('s', anchorCosine(g, g.input('a', [P, A, C]), g.input('b', [P, A, C]), P, A, C)); }, { a: sk, b: im });
  const ref = new Float64Array(P * A * A);
  for (let p = 0; p < P; p++) for (let i = 0; i < A; i++) for (let j = 0; j < A; j++) {
    let dot = 0, na = 0, nb = 0;
    for (let c = 0; c < C; c++) {
      const x = sk[(p * A + i) * C + c]!, y = im[(p * A + j) * C + c]!;
      dot += x * y; na += x * x; nb += y * y;
    }
    const s = dot / Math.sqrt(na) / Math.sqrt(nb);
    ref[(p * A + i) * A + j] = Number.isNaN(s) ? 0 : s;
  }
  assertClose(out.s!, ref, 1e-6, 1e-6, 'cosine');
  assert.is(out.s![1 * A + 3], 0);
});

test('best cosine per row: max over the other side\'s rows, odd sizes, zero norm gives 0', async () => {
  const P = 3, A = 5, B = 7, C = 9;
  const x = rand(P * A * C, 70), y = rand(P * B * C, 71);
  x.fill(0, (1 * A + 2) * C, (1 * A + 3) * C); // pair 1, row 2 all zeros: every cosine 0, so the max is 0
  for (let j = 0; j < B; j++) for (let c = 0; c < C; c++) y[(2 * B + j) * C + c] = -Math.abs(y[(2 * B + j) * C + c]!); // pair 2: mostly negative cosines
  for (let c = 0; c < C; c++) x[(2 * A + 0) * C + c] = Math.abs(x[(2 * A + 0) * C + c]!);
  const out = await runGraph((g) => { g.output('m', anchorBestCosine(g, g.input('x', [P, A, C]), g.input('y', [P, B, C]), P, A, B, C)); }, { x, y });
  const ref = new Float64Array(P * A);
  for (let p = 0; p < P; p++) for (let i = 0; i < A; i++) {
    let best = -Infinity;
    for (let j = 0; j < B; j++) {
      let dot = 0, na = 0, nb = 0;
      for (let c = 0; c < C; c++) {
        const u = x[(p * A + i) * C + c]!, v = y[(p * B + j) * C + c]!;
        dot += u * v; na += u * u; nb += v * v;
      }
      const s = dot / Math.sqrt(na) / Math.sqrt(nb);
      best = Math.max(best, Number.isNaN(s) ? 0 : s);
    }
    ref[p * A + i] = best;
  }
  assertClose(out.m!, ref, 1e-6, 1e-6, 'best cosine');
  assert.is(out.m![1 * A + 2], 0);
  assert.ok(out.m![2 * A] < 0, 'a row whose every cosine is negative keeps its (negative) max');
});

test('gather rows by an index table column', async () => {
  const rowsIn = 4, rowSize = 7, P = 6;
  const x = rand(rowsIn * rowSize, 68);
  const idx = new Uint32Array([0, 3, 1, 2, 3, 3, 2, 0, 1, 1, 0, 2]); // pairs (s, j)
  const out = await runGraph((g) => {
    const xi = g.input('x', [rowsIn, rowSize]);
    const ii = g.input('i', [P, 2], 'u32');
    g.output('a', gatherRows(g, xi, ii, { P, rowSize, rowsIn, stride: 2, col: 0 }));
    g.output('b', gatherRows(g, xi, ii, { P, rowSize, rowsIn, stride: 2, col: 1 }));
  }, { x, i: idx });
  for (let p = 0; p < P; p++) {
    assert.equal([...out.a!.slice(p * rowSize, (p + 1) * rowSize)], [...x.slice(idx[2 * p]! * rowSize, (idx[2 * p]! + 1) * rowSize)]);
    assert.equal([...out.b!.slice(p * rowSize, (p + 1) * rowSize)], [...x.slice(idx[2 * p + 1]! * rowSize, (idx[2 * p + 1]! + 1) * rowSize)]);
  }
});

test('row-wise cosine matrix of unnormalised rows, odd sizes', async () => {
  const Na = 5, Nb = 70, D = 33;
  const a = rand(Na * D, 69), b = rand(Nb * D, 70, -3, 3);
  const out = await runGraph((g) => { g.output('c', cosineMatrix(g, g.input('a', [Na, D]), g.input('b', [Nb, D]), Na, Nb, D)); }, { a, b });
  const ref = new Float64Array(Na * Nb);
  for (let i = 0; i < Na; i++) for (let j = 0; j < Nb; j++) {
    let dot = 0, na = 0, nb = 0;
    for (let d = 0; d < D; d++) { dot += a[i * D + d]! * b[j * D + d]!; na += a[i * D + d]! ** 2; nb += b[j * D + d]! ** 2; }
    ref[i * Nb + j] = dot / Math.sqrt(na) / Math.sqrt(nb);
  }
  assertClose(out.c!, ref, 1e-6, 0, 'cosine');
});

test.run();
