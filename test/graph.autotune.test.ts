// The GEMM autotuner (src/graph/autotune.ts): it measures each variant a shape allows, keeps the fastest, stores
// the table per adapter and kernel version, and model graphs built through buildGraph use its picks (with results
// unchanged beyond rounding). Timing values are not asserted (the machine is shared); what was measured and used is.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { attentionKey, buildGraph, convKey, GemmAutotune, gemmShapes, mismatch, problemKey, shapeKey, tunedProblems, type TuneRecord } from '../src/graph/autotune.ts';
import { autotuneWanted, fileTuneStore } from '../src/graph/autotune-node.ts';
import { defaultVariant, GEMM_ROWDOT, GEMM_VEC4, gemm, type GemmVariant } from '../src/graph/ops/gemm.ts';
import { conv2d, convChoices } from '../src/graph/ops/conv2d.ts';
import { attention, rows } from '../src/graph/ops/attention.ts';
import type { GemmShape, TunedProblem } from '../src/graph/kernel.ts';
import type { GemmTuner } from '../src/gpu/device.ts';
import { loadWeights } from '../src/models/load-file.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { toFloat32 } from '../src/core/tensor.ts';
import { ZseModel } from '../src/models/zse/model.ts';
import { FIXTURES } from './paths.ts';
import { assertClose, gpu, maxAbsDiff } from './util.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-autotune-'));
const aligned: GemmShape = { M: 37, N: 45, K: 32, aligned: true };
const odd: GemmShape = { M: 9, N: 11, K: 7, aligned: false };

test('measures every allowed variant once, keeps the fastest, and a second tuner reads the stored table', async () => {
  const ctx = await gpu();
  const file = join(tmp, 'a.json');
  const seen: string[] = [];
  const t1 = new GemmAutotune(ctx, fileTuneStore(file), { repeats: 1, onMeasure: (s) => seen.push(shapeKey(s)) });
  assert.is(t1.pick(aligned), undefined);
  assert.is(await t1.tune([aligned, odd, aligned]), true);
  assert.equal(seen, ['37x45x32', '9x11x7/unaligned'], 'each shape measured once');
  const ra = t1.entries()['37x45x32'] as TuneRecord, ro = t1.entries()['9x11x7/unaligned'] as TuneRecord;
  assert.equal(Object.keys(ra.ms).sort(), ['rowdot', 'sk16', 'sk32', 'sk64', 'tiled', 'tiled32', 'vec4']);
  assert.equal(Object.keys(ro.ms), ['tiled', 'tiled32'], 'an unaligned layout allows only the scalar tiled kernels');
  const fastest = (Object.entries(ra.ms) as [GemmVariant, number][]).sort((x, y) => x[1] - y[1])[0]![0];
  assert.is(ra.variant, fastest);
  assert.is(t1.pick(aligned), fastest);
  assert.is(ra.timing, ctx.features.timestamp ? 'gpu-timestamps' : 'wall');
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.ok(saved.adapters[t1.key], 'stored under the adapter + kernel-hash key');
  assert.match(t1.key, ctx.adapterName);

  const t2 = new GemmAutotune(ctx, fileTuneStore(file));
  assert.is(t2.pick(aligned), fastest);
  assert.is(await t2.tune([aligned, odd]), false);
  assert.is(t2.measured, 0);
});

// A kernel a driver miscompiles can run fast and wrong, and a new one may not build on some adapter: either is left
// out of the measurement with its reason, never picked; the built-in kernel's own failure is the model's and is
// reported, not hidden.
test('a variant with wrong results or one that fails to build is rejected, whatever its speed', async () => {
  const ctx = await gpu();
  const builtIn = defaultVariant(ctx.software, true);
  const wrong: GemmVariant = builtIn === 'rowdot' ? 'tiled32' : 'rowdot', broken: GemmVariant = 'sk32', nan: GemmVariant = 'vec4';
  const bad: GemmVariant[] = [broken, nan, wrong];
  const t = new GemmAutotune(ctx, undefined, {
    repeats: 1,
    inject: (v, out) => {
      if (v === wrong) out[out.length - 1]! += 0.01 * (1 + Math.abs(out[out.length - 1]!)); // one value, 1 % off
      if (v === nan) out[3] = NaN;
      if (v === broken) throw new Error('Error while parsing WGSL: (simulated)');
    },
  });
  await t.tune([aligned]);
  const r = t.entries()[shapeKey(aligned)] as TuneRecord;
  assert.equal(Object.keys(r.rejected ?? {}).sort(), [...bad].sort());
  assert.match(r.rejected![wrong]!, `results differ from the ${builtIn} kernel's`);
  assert.match(r.rejected![nan]!, 'NaN');
  assert.match(r.rejected![broken]!, 'did not build or run: Error while parsing WGSL');
  assert.equal(Object.keys(r.ms).sort(), (['rowdot', 'sk16', 'sk32', 'sk64', 'tiled', 'tiled32', 'vec4'] as GemmVariant[]).filter((v) => !bad.includes(v)));
  assert.ok(!bad.includes(r.variant), r.variant);
  // The built-in kernel failing is an error, not a silent fallback.
  const t2 = new GemmAutotune(ctx, undefined, { repeats: 1, inject: (v) => { if (v === builtIn) throw new Error('built-in broke'); } });
  try {
    await t2.tune([aligned]);
    assert.unreachable('the built-in failure was swallowed');
  } catch (e) {
    assert.match((e as Error).message, 'built-in broke');
  }
});

// Convolutions: the direct kernel at 8x8 and 4x4 blocks and, where Ci*K*K allows it, the implicit GEMM at 32 and
// 64 tiles, each checked against the 8x8 direct kernel, then timed; graphs built through buildGraph use the picks.
test('convolutions: each allowed kernel checked and measured once, wrong ones rejected, graphs rebuilt with the pick', async () => {
  const ctx = await gpu();
  const conv = { N: 2, Ci: 4, H: 13, W: 11, Co: 9, kernel: 3, stride: 2, pad: 1 }; // Ci*K*K = 36: all four
  const odd = { N: 1, Ci: 3, H: 9, W: 9, Co: 5, kernel: 3, stride: 1, pad: 1 }; // 27: direct only
  const t = new GemmAutotune(ctx, undefined, { repeats: 1, inject: (v, out) => { if (v === 'gemm64') out[0] = NaN; } });
  assert.is(await t.tuneOps([{ op: 'conv', shape: conv }, { op: 'conv', shape: odd }, { op: 'conv', shape: conv }]), true);
  const r = t.entries()[convKey(conv)] as TuneRecord<string>, ro = t.entries()[convKey(odd)] as TuneRecord<string>;
  assert.equal(Object.keys(r.ms).sort(), ['b4', 'b8', 'gemm32']);
  assert.match(r.rejected!['gemm64']!, 'results differ from the b8 kernel');
  assert.equal(Object.keys(ro.ms).sort(), ['b4', 'b8']);
  assert.is(t.pickOp({ op: 'conv', shape: conv }), r.variant);
  assert.is(await t.tuneOps([{ op: 'conv', shape: conv }]), false, 'measured once');
  // A graph built through the tuner: the convolution takes the pick; forced kernels are not the tuner's.
  const picks: Record<string, string> = { [convKey(conv)]: 'gemm32' };
  const tuner: GemmTuner = { pick: () => undefined, tune: async () => false, pickOp: (p) => picks[problemKey(p as TunedProblem)], tuneOps: async () => false };
  const build = (g: Parameters<Parameters<typeof buildGraph>[1]>[0]) => {
    const x = g.input('x', [conv.N, conv.Ci, conv.H, conv.W]);
    g.output('y', conv2d(g, x, g.weight('w', [conv.Co, conv.Ci, 3, 3]), conv));
    g.output('z', conv2d(g, x, g.weight('w', [conv.Co, conv.Ci, 3, 3]), { ...conv, block: 8 }));
  };
  const g = await buildGraph({ ...ctx, gemmTuner: tuner }, build);
  assert.equal(g.nodes.map((n) => n.kernel.name), ['conv2d_gemm/sk32', 'conv2d']);
  assert.equal(tunedProblems(g).map(problemKey), [convKey(conv)]);
  // A pick the convolution does not allow (the implicit GEMM where Ci*K*K = 27) falls back to the built-in rule.
  picks[convKey(odd)] = 'gemm32';
  const h = await buildGraph({ ...ctx, gemmTuner: tuner }, (g) => g.output('y', conv2d(g, g.input('x', [1, 3, 9, 9]), g.weight('v', [5, 3, 3, 3]), odd)));
  assert.match(h.nodes[0]!.kernel.name, /^conv2d(\/b4)?$/);
});

// Attention: the split and flash programs where both apply, flash checked against split; graphs take the pick.
test('attention: split and flash checked and measured once, a wrong one rejected, graphs rebuilt with the pick', async () => {
  const ctx = await gpu();
  const shape = { B: 3, heads: 2, Tq: 21, Tk: 17, headDim: 40 };
  const t = new GemmAutotune(ctx, undefined, { repeats: 1 });
  assert.is(await t.tuneOps([{ op: 'attention', shape }]), true);
  const r = t.entries()[attentionKey(shape)] as TuneRecord<string>;
  assert.equal(Object.keys(r.ms).sort(), ['flash', 'split']);
  assert.is(t.pickOp({ op: 'attention', shape }), r.variant);
  const bad = new GemmAutotune(ctx, undefined, { repeats: 1, inject: (v, out) => { if (v === 'flash') out[out.length - 1] = NaN; } });
  await bad.tuneOps([{ op: 'attention', shape }]);
  const rb = bad.entries()[attentionKey(shape)] as TuneRecord<string>;
  assert.equal(Object.keys(rb.ms), ['split']);
  assert.match(rb.rejected!['flash']!, 'results differ from the split kernel');
  // Graphs: a 'flash' pick runs the flash program; a causal attention (only one program applies) is not a problem.
  const D = shape.heads * shape.headDim;
  const tuner: GemmTuner = { pick: () => undefined, tune: async () => false, pickOp: (p) => (p.op === 'attention' ? 'flash' : undefined), tuneOps: async () => false };
  const g = await buildGraph({ ...ctx, gemmTuner: tuner }, (g) => {
    const q = g.input('q', [shape.B, shape.Tq, D]), kv = g.input('kv', [shape.B, shape.Tk, 2 * D]);
    g.output('o', attention(g, q, kv, kv, { ...shape, q: rows(shape.Tq, D), k: rows(shape.Tk, 2 * D), v: rows(shape.Tk, 2 * D, D) }));
    const x = g.input('x', [1, 9, 3 * D]);
    g.output('c', attention(g, x, x, x, { B: 1, heads: shape.heads, Tq: 9, Tk: 9, headDim: shape.headDim, q: rows(9, 3 * D), k: rows(9, 3 * D, D), v: rows(9, 3 * D, 2 * D), causal: true }));
  });
  assert.equal(g.nodes.map((n) => n.kernel.name), ['attention', 'attention_causal']);
  assert.equal(tunedProblems(g).map(problemKey), [attentionKey(shape)]);
  const plain = await buildGraph(ctx, (g) => {
    const q = g.input('q', [shape.B, shape.Tq, D]), kv = g.input('kv', [shape.B, shape.Tk, 2 * D]);
    g.output('o', attention(g, q, kv, kv, { ...shape, q: rows(shape.Tq, D), k: rows(shape.Tk, 2 * D), v: rows(shape.Tk, 2 * D, D) }));
  });
  assert.equal(plain.nodes.map((n) => n.kernel.name), ['attention_split'], 'no tuner: the built-in rule');
});

test('mismatch: rounding-level differences pass, a wrong value or NaN does not', () => {
  const want = Float32Array.from([0, 1, -250, 3e-8]);
  assert.is(mismatch(Float32Array.from([1e-7, 1 + 1e-6, -250.01, 0]), want), '');
  assert.match(mismatch(Float32Array.from([0, 1, -251, 3e-8]), want), 'element 2');
  assert.match(mismatch(Float32Array.from([0, NaN, -250, 3e-8]), want), 'element 1: NaN');
  assert.match(mismatch(Float32Array.from([0, 1, -250]), want), '3 values, not 4');
});

test('a corrupt or foreign store file is ignored and rewritten', async () => {
  const ctx = await gpu();
  const file = join(tmp, 'bad.json');
  writeFileSync(file, '{"version": 1, "adapters": ');
  const t = new GemmAutotune(ctx, fileTuneStore(file), { repeats: 1 });
  assert.is(t.pick(odd), undefined);
  await t.tune([odd]);
  assert.ok(['tiled', 'tiled32'].includes(JSON.parse(readFileSync(file, 'utf8')).adapters[t.key]['9x11x7/unaligned'].variant));
  writeFileSync(file, JSON.stringify({ version: 99, adapters: { [t.key]: { '9x11x7/unaligned': { variant: 'vec4', ms: {}, timing: 'wall' } } } }));
  assert.is(new GemmAutotune(ctx, fileTuneStore(file)).pick(odd), undefined, 'another file version is not read');
});

test('buildGraph: measures what a graph needs, then rebuilds it with the picks', async () => {
  const ctx = await gpu();
  const asked: GemmShape[] = [];
  const tuner: GemmTuner = { pick: (s) => (s.aligned ? 'vec4' : undefined), tune: async (shapes) => { asked.push(...shapes); return true; } };
  const build = (g: Parameters<Parameters<typeof buildGraph>[1]>[0]) => {
    const a = g.input('a', [aligned.M, aligned.K]);
    g.output('c', gemm(g, a, g.weight('w', [aligned.N, aligned.K]), aligned));
    g.output('d', gemm(g, g.input('b', [odd.M, odd.K]), g.weight('v', [odd.N, odd.K]), odd));
  };
  const plain = await buildGraph(ctx, build);
  // The built-in rule: rowdot where aligned on software adapters, tiled on hardware (the first GPU run found this
  // assertion hard-wired to lavapipe's answer).
  assert.equal(plain.nodes.map((n) => n.kernel.name), [ctx.software ? GEMM_ROWDOT.name : 'gemm', 'gemm'], 'no tuner: the built-in rule');
  const tuned = await buildGraph({ ...ctx, gemmTuner: tuner }, build);
  assert.equal(asked.map(shapeKey), ['37x45x32', '9x11x7/unaligned']);
  assert.equal(gemmShapes(tuned).map(shapeKey), asked.map(shapeKey));
  assert.equal(tuned.nodes.map((n) => n.kernel.name), [GEMM_VEC4.name, 'gemm'], 'the pick where the layout allows it');
});

test('a tiny ZSE-SBIR model through a tuner that picks other kernels gives the same embeddings', async () => {
  const ctx = await gpu();
  const w = await loadWeights(resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors'));
  const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'zse', 'tiny64.expected.safetensors'))).tensors;
  const x = toFloat32(exp.get('sketch.input')!);
  const n = exp.get('sketch.input')!.shape[0]!;
  const picks = new Map<string, GemmVariant>();
  const order: GemmVariant[] = ['vec4', 'tiled', 'rowdot', 'tiled32', 'sk16', 'sk32', 'sk64'];
  // Convolutions cycle through their allowed kernels too (the implicit GEMM where Ci*K*K allows it).
  const convPicks = new Map<string, string>();
  const convOrder = ['gemm32', 'b4', 'gemm64', 'b8'];
  let gemmConvs = 0;
  const tuner: GemmTuner = {
    pick: (s) => picks.get(shapeKey(s)),
    tune: async (shapes) => {
      let fresh = false;
      for (const s of shapes) if (!picks.has(shapeKey(s))) { picks.set(shapeKey(s), s.aligned ? order[picks.size % order.length]! : 'tiled'); fresh = true; }
      return fresh;
    },
    pickOp: (p) => convPicks.get(problemKey(p as TunedProblem)),
    tuneOps: async (problems) => {
      let fresh = false;
      for (const p of problems as TunedProblem[]) {
        if (p.op !== 'conv' || convPicks.has(problemKey(p))) continue;
        const s = p.shape;
        const v = convOrder[convPicks.size % convOrder.length]!;
        convPicks.set(problemKey(p), v);
        if (v.startsWith('gemm') && (convChoices(s) as string[]).includes(v)) gemmConvs++;
        fresh = true;
      }
      return fresh;
    },
  };
  const base = ZseModel.create(ctx, w.config, w.tensors);
  const tuned = ZseModel.create({ ...ctx, gemmTuner: tuner }, w.config, w.tensors);
  try {
    const a = await base.encode(x, n);
    const b = await tuned.encode(x, n);
    assert.ok(picks.size >= 4, `the SA graph's GEMM shapes went through the tuner (${picks.size})`);
    assert.ok([...picks.values()].includes('vec4') && [...picks.values()].includes('tiled'));
    assert.ok(convPicks.size >= 3, `the SA graph's convolutions went through the tuner (${convPicks.size})`);
    assert.ok(gemmConvs >= 1, 'at least one convolution ran as an implicit GEMM');
    assertClose(b.emb, a.emb, 1e-5, 0, 'embeddings');
  } finally {
    await base.destroy();
    await tuned.destroy();
  }
});

test('autotuneWanted: on for hardware adapters unless SKETCHGPU_AUTOTUNE=0; forced with =1', () => {
  assert.is(autotuneWanted({ software: false }, undefined), true);
  assert.is(autotuneWanted({ software: true }, undefined), false);
  assert.is(autotuneWanted({ software: true }, '1'), true);
  assert.is(autotuneWanted({ software: false }, '0'), false);
});

test.run();
