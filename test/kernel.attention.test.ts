import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attention, rows, type SeqLayout } from '../src/graph/ops/attention.ts';
import { Graph } from '../src/graph/graph.ts';
import { attentionRef } from './ref.ts';
import { asF16, assertClose, eye, maxAbsDiff, rand, readBackF16, runGraph } from './util.ts';

// Softmax-weighted averages of values in [-1,1]: results O(1), fp32 online softmax error ~1e-6.
const TOL = 3e-6;

// Shapes off every tile size: odd batches, sequence lengths 1..197 (the model's), Tq != Tk, head dims that are
// and are not multiples of 4 (vec4 and f32 buffer paths), up to 128 (the flash kernel) and past it (the wide one).
for (const [B, H, Tq, Tk, dh] of [
  [1, 1, 1, 1, 3], [2, 3, 17, 17, 8], [1, 2, 197, 197, 13], [2, 1, 5, 130, 70], [1, 2, 3, 65, 96],
  [3, 4, 197, 197, 8], [1, 3, 50, 50, 64], [3, 2, 7, 7, 24], [1, 1, 33, 20, 100], [2, 2, 70, 9, 16], [1, 1, 9, 31, 160],
] as const) {
  test(`attention B${B} H${H} Tq${Tq} Tk${Tk} dh${dh}`, async () => {
    const D = H * dh;
    const q = rand(B * Tq * D, 51, -2, 2), k = rand(B * Tk * D, 52, -2, 2), v = rand(B * Tk * D, 53);
    const out = await runGraph((g) => {
      g.output('o', attention(g, g.input('q', [B, Tq, D]), g.input('k', [B, Tk, D]), g.input('v', [B, Tk, D]), { B, heads: H, Tq, Tk, headDim: dh, q: rows(Tq, D), k: rows(Tk, D), v: rows(Tk, D), scale: 1 / Math.sqrt(dh) }));
    }, { q, k, v });
    assertClose(out.o!, attentionRef(q, k, v, B, Tq, Tk, H, dh, 1 / Math.sqrt(dh)), TOL, TOL, 'attention');
  });
}

// Both programs for head dims with one row per invocation: 'flash' (all keys in one invocation; software adapters)
// and 'split' (4 or 2 invocations per row over a part of the keys each, merged through workgroup memory; hardware
// adapters), over key counts below the number of parts (empty parts), rows off the 16-row workgroup, Tq != Tk.
for (const variant of ['flash', 'split'] as const) {
  for (const [B, H, Tq, Tk, dh] of [[1, 1, 1, 1, 64], [2, 3, 17, 3, 64], [1, 2, 197, 197, 64], [1, 1, 33, 2, 128], [2, 2, 40, 77, 96], [1, 2, 5, 130, 36]] as const) {
    test(`attention ${variant} B${B} H${H} Tq${Tq} Tk${Tk} dh${dh}`, async () => {
      const D = H * dh;
      const q = rand(B * Tq * D, 55, -2, 2), k = rand(B * Tk * D, 56, -2, 2), v = rand(B * Tk * D, 57);
      const out = await runGraph((g) => {
        const o = attention(g, g.input('q', [B, Tq, D]), g.input('k', [B, Tk, D]), g.input('v', [B, Tk, D]), { B, heads: H, Tq, Tk, headDim: dh, q: rows(Tq, D), k: rows(Tk, D), v: rows(Tk, D), scale: 1 / Math.sqrt(dh), variant });
        assert.is(g.nodes[g.nodes.length - 1]!.kernel.name, variant === 'split' ? 'attention_split' : 'attention');
        g.output('o', o);
      }, { q, k, v });
      assertClose(out.o!, attentionRef(q, k, v, B, Tq, Tk, H, dh, 1 / Math.sqrt(dh)), TOL, TOL, 'attention');
    });
  }
}

// Operands read through a pair table (the cross-attention of sketch-photo pairs): q and v from the sketches' tensor
// at column 0, k from the photos' at column 1, pairs in any order with repeats; against the reference on the rows
// gathered into pair order here. Both flash programs and the generic one (a head dim off 4).
for (const [variant, H, T, dh] of [['flash', 2, 17, 8], ['split', 2, 33, 64], ['flash', 1, 50, 96], ['generic', 3, 9, 5]] as const) {
  test(`attention ${variant} through a pair table H${H} T${T} dh${dh}`, async () => {
    const D = H * dh, Ns = 3, Np = 4;
    const pairs = Uint32Array.from([2, 1, 0, 3, 2, 0, 1, 1, 2, 1, 0, 0, 1, 3]); // 7 pairs: [sketch, photo]
    const P = pairs.length / 2;
    const sk = rand(Ns * T * D, 91, -2, 2), ph = rand(Np * T * D, 92, -2, 2), skV = rand(Ns * T * D, 93);
    const pick = (x: Float32Array, col: number) => {
      const out = new Float32Array(P * T * D);
      for (let b = 0; b < P; b++) out.set(x.subarray(pairs[2 * b + col]! * T * D, (pairs[2 * b + col]! + 1) * T * D), b * T * D);
      return out;
    };
    const out = await runGraph((g) => {
      const t = { pairs: g.input('pairs', [P, 2], 'u32'), q: 0 as const, k: 1 as const, v: 0 as const };
      const o = attention(g, g.input('q', [Ns, T, D]), g.input('k', [Np, T, D]), g.input('v', [Ns, T, D]), {
        B: P, heads: H, Tq: T, Tk: T, headDim: dh, q: rows(T, D), k: rows(T, D), v: rows(T, D), divisor: Math.sqrt(dh), table: t,
        ...(variant === 'generic' ? {} : { variant }),
      });
      assert.is(g.nodes.length, 1);
      assert.is(g.nodes[0]!.kernel.name, { flash: 'attention', split: 'attention_split', generic: 'attention_generic' }[variant]);
      g.output('o', o);
    }, { q: sk, k: ph, v: skV, pairs });
    // divisor: scores are dot / sqrt(dh), the reference's dot * scale with scale = 1/sqrt(dh) agrees to rounding.
    assertClose(out.o!, attentionRef(pick(sk, 0), pick(ph, 1), pick(skV, 0), P, T, T, H, dh, 1 / Math.sqrt(dh)), TOL, TOL, 'attention through the table');
  });
}

// An index past an operand's batches (which the host refuses before any graph runs: models/pairs.ts) reads its
// last batch, as the gather kernel clamps: never a row outside the operand.
test('attention through a pair table clamps an out-of-range index to the last batch', async () => {
  const H = 1, T = 5, dh = 8, D = H * dh, Ns = 2, Np = 3;
  const sk = rand(Ns * T * D, 94, -2, 2), ph = rand(Np * T * D, 95, -2, 2);
  const go = (pairs: Uint32Array) => runGraph((g) => {
    g.output('o', attention(g, g.input('q', [Ns, T, D]), g.input('k', [Np, T, D]), g.input('v', [Np, T, D]), {
      B: 2, heads: H, Tq: T, Tk: T, headDim: dh, q: rows(T, D), k: rows(T, D), v: rows(T, D), table: { pairs: g.input('pairs', [2, 2], 'u32'), q: 0, k: 1, v: 1 },
    }));
  }, { q: sk, k: ph, v: ph, pairs });
  const [bad, last] = [await go(Uint32Array.from([7, 99, 0, 1])), await go(Uint32Array.from([1, 2, 0, 1]))];
  assert.equal(Array.from(bad.o!), Array.from(last.o!));
});

/** Copy the [B, T, H*dh] operand at `l` out of a strided buffer. */
function gather(buf: Float32Array, l: SeqLayout, B: number, T: number, D: number): Float32Array {
  const out = new Float32Array(B * T * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out.set(buf.subarray(l.offset + b * l.batchStride + t * l.rowStride, l.offset + b * l.batchStride + t * l.rowStride + D), (b * T + t) * D);
  return out;
}

// SA's packed [q|k|v] rows (zse-sbir.md §11.6), at the tiny model's shape and at odd ones.
for (const [B, H, T, dh, divide] of [[2, 3, 11, 5, true], [3, 4, 197, 8, false], [1, 3, 50, 64, true], [3, 2, 7, 12, false]] as const) {
  test(`attention over packed [q|k|v] rows B${B} H${H} T${T} dh${dh}${divide ? ' with a divisor' : ''}`, async () => {
    const D = H * dh;
    const qkv = rand(B * T * 3 * D, 54, -2, 2);
    const L = (off: number) => rows(T, 3 * D, off);
    const out = await runGraph((g) => {
      const x = g.input('qkv', [B, T, 3 * D]);
      const scale = divide ? { divisor: Math.sqrt(dh) } : { scale: Math.fround(dh ** -0.5) };
      g.output('o', attention(g, x, x, x, { B, heads: H, Tq: T, Tk: T, headDim: dh, q: L(0), k: L(D), v: L(2 * D), ...scale }));
    }, { qkv });
    const ref = attentionRef(gather(qkv, L(0), B, T, D), gather(qkv, L(D), B, T, D), gather(qkv, L(2 * D), B, T, D), B, T, T, H, dh, divide ? 1 / Math.sqrt(dh) : Math.fround(dh ** -0.5));
    assertClose(out.o!, ref, TOL, TOL, 'attention');
  });
}

test('attention with offsets and batch strides on every operand (CA: Q, V from one buffer, K from another)', async () => {
  // Q and V interleaved in one buffer with a gap after each batch, K at an odd offset: the f32 path.
  const B = 3, H = 2, T = 37, dh = 8, D = H * dh;
  const qv = rand(B * (T * 2 * D + 5) + 3, 61, -2, 2), kb = rand(7 + B * (T * D + 1), 62, -2, 2);
  const ql: SeqLayout = { offset: 3, batchStride: T * 2 * D + 5, rowStride: 2 * D };
  const vl: SeqLayout = { ...ql, offset: 3 + D };
  const kl: SeqLayout = { offset: 7, batchStride: T * D + 1, rowStride: D };
  const out = await runGraph((g) => {
    g.output('o', attention(g, g.input('qv', [qv.length]), g.input('k', [kb.length]), g.input('qv2', [qv.length]), { B, heads: H, Tq: T, Tk: T, headDim: dh, q: ql, k: kl, v: vl, divisor: Math.sqrt(dh) }));
  }, { qv, k: kb, qv2: qv });
  assertClose(out.o!, attentionRef(gather(qv, ql, B, T, D), gather(kb, kl, B, T, D), gather(qv, vl, B, T, D), B, T, T, H, dh, 1 / Math.sqrt(dh)), TOL, TOL, 'attention');
});

// Causal mask (CLIP's text tower): the flash programs (aligned, dh <= 128, several R/WG shapes) and the generic one
// (odd head dim, or dh > 128), over lengths that end mid-workgroup, on packed [q|k|v] rows as the text tower uses.
for (const [B, H, T, dh] of [[1, 1, 1, 8], [2, 2, 77, 8], [3, 2, 15, 8], [1, 3, 70, 64], [2, 2, 33, 5], [1, 1, 19, 132], [2, 4, 130, 16]] as const) {
  test(`causal attention B${B} H${H} T${T} dh${dh}`, async () => {
    const D = H * dh;
    const qkv = rand(B * T * 3 * D, 71, -2, 2);
    const L = (off: number) => rows(T, 3 * D, off);
    const out = await runGraph((g) => {
      const x = g.input('qkv', [B, T, 3 * D]);
      g.output('o', attention(g, x, x, x, { B, heads: H, Tq: T, Tk: T, headDim: dh, q: L(0), k: L(D), v: L(2 * D), scale: 1 / Math.sqrt(dh), causal: true }));
    }, { qkv });
    const [q, k, v] = [gather(qkv, L(0), B, T, D), gather(qkv, L(D), B, T, D), gather(qkv, L(2 * D), B, T, D)];
    assertClose(out.o!, attentionRef(q, k, v, B, T, T, H, dh, 1 / Math.sqrt(dh), true), TOL, TOL, 'causal attention');
    // Row 0 sees only key 0, so it is exactly that key's value row; the last row sees every key (the unmasked result).
    for (let b = 0; b < B; b++) assert.equal(Array.from(out.o!.subarray(b * T * D, b * T * D + D)), Array.from(v.subarray(b * T * D, b * T * D + D)));
    if (T > 1) {
      const full = attentionRef(q, k, v, B, T, T, H, dh, 1 / Math.sqrt(dh));
      const last = (a: ArrayLike<number>) => Array.from(a).slice((T - 1) * D, T * D);
      assertClose(last(out.o!), last(full), TOL, TOL, 'last row = unmasked');
      assert.ok(maxAbsDiff(Array.from(out.o!).slice(D, 2 * D), Array.from(full).slice(D, 2 * D)) > 1e-3, 'row 1 ignores the mask');
    }
  });
}

test('causal attention rejects Tq != Tk', () => {
  const g = new Graph();
  const x = g.input('x', [1, 4, 8]);
  assert.throws(() => attention(g, x, x, x, { B: 1, heads: 1, Tq: 3, Tk: 4, headDim: 8, q: rows(3, 8), k: rows(4, 8), v: rows(4, 8), causal: true }), /causal mask needs as many queries as keys/);
});

test('attention over a single key returns its value row exactly', async () => {
  // softmax over one key is exactly 1, whatever the score (here through the divisor).
  const B = 1, H = 1, T = 1, dh = 4;
  const q = new Float32Array([1, 2, 3, 4]), k = new Float32Array([0.5, -1, 2, 0.25]), v = new Float32Array([0.1, -0.2, 0.3, -0.4]);
  const out = await runGraph((g) => {
    const [qi, ki, vi] = [g.input('q', [1, 1, 4]), g.input('k', [1, 1, 4]), g.input('v', [1, 1, 4])];
    g.output('a', attention(g, qi, ki, vi, { B, heads: H, Tq: T, Tk: T, headDim: dh, q: rows(1, 4), k: rows(1, 4), v: rows(1, 4), divisor: 2 }));
  }, { q, k, v });
  assert.equal(Array.from(out.a!), Array.from(v));
});

// The f16 option's binary16 output of the flash kernel: exactly its f32 output rounded to binary16 (causal and not,
// query rows off the workgroup); the generic kernel (unaligned layouts) keeps f32.
for (const [B, H, T, dh, causal] of [[2, 3, 37, 8, false], [1, 2, 77, 16, true]] as const) test(`attention ${B}x${H}x${T}x${dh}${causal ? ' causal' : ''}: binary16 output is the f32 output rounded`, async () => {
  const D = H * dh;
  const X = rand(B * T * 3 * D, 91);
  const att = (g: Graph, half: boolean) => {
    const x = g.input('x', [B, T, 3 * D]);
    return attention(g, x, x, x, { B, heads: H, Tq: T, Tk: T, headDim: dh, q: rows(T, 3 * D, 0), k: rows(T, 3 * D, D), v: rows(T, 3 * D, 2 * D), causal, half });
  };
  const f32 = await runGraph((g) => { g.output('o', att(g, false)); }, { x: X }, {}, { precision: 'f16' });
  const h = await runGraph((g) => {
    const o = att(g, true);
    assert.is(o.dtype, 'f16');
    g.output('o', readBackF16(g, o, B * T, D));
  }, { x: X }, { eye: eye(D) }, { precision: 'f16' });
  assert.equal(Array.from(h.o!), Array.from(asF16(f32.o!)));
});

test('attention half: the generic kernel (a head dim off vec4) and graphs without the f16 option keep f32', () => {
  const g = new Graph({ precision: 'f16' });
  const x = g.input('x', [1, 5, 15]);
  assert.is(attention(g, x, x, x, { B: 1, heads: 1, Tq: 5, Tk: 5, headDim: 5, q: rows(5, 15, 0), k: rows(5, 15, 5), v: rows(5, 15, 10), half: true }).dtype, 'f32');
  const g32 = new Graph();
  const y = g32.input('y', [1, 5, 24]);
  assert.is(attention(g32, y, y, y, { B: 1, heads: 1, Tq: 5, Tk: 5, headDim: 8, q: rows(5, 24, 0), k: rows(5, 24, 8), v: rows(5, 24, 16), half: true }).dtype, 'f32');
});

test.run();
