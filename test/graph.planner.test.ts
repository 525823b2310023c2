import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Graph } from '../src/graph/graph.ts';
import { planGraph } from '../src/graph/planner.ts';
import type { Kernel } from '../src/graph/kernel.ts';

const K: Kernel = { name: 'k', wgsl: '' };
const op = (g: Graph, reads: ReturnType<Graph['input']>[], out: ReturnType<Graph['input']>) =>
  g.push({ label: out.name, kernel: K, reads, writes: [out], params: [], dispatch: [1, 1, 1] });

test('a chain reuses two slots; outputs are kept to the end; peak < naive', () => {
  const g = new Graph();
  const x = g.input('x', [256]);
  let prev = x;
  const ts: ReturnType<Graph["intermediate"]>[] = [];
  for (let i = 0; i < 6; i++) {
    const t = g.intermediate(`t${i}`, [256]);
    op(g, [prev], t);
    ts.push(t);
    prev = t;
  }
  g.output('mid', ts[1]!);
  const p = planGraph(g);
  // t1 lives to the end, so the chain needs t1's slot plus two alternating ones
  assert.is(p.slots.length, 3);
  assert.is(p.peakBytes, 3 * 1024);
  assert.is(p.naiveBytes, 6 * 1024);
  // no two tensors alive at the same time share a slot
  const s = (i: number) => p.slotOf.get(ts[i]!.id);
  for (let i = 2; i < 6; i++) assert.is.not(s(i), s(1));
  for (let i = 1; i < 6; i++) assert.is.not(s(i), s(i - 1));
});

test('an input of a node never shares a slot with its output; a long-lived tensor blocks reuse', () => {
  const g = new Graph();
  const x = g.input('x', [64]);
  const a = g.intermediate('a', [64]);
  const b = g.intermediate('b', [64]);
  const c = g.intermediate('c', [64]);
  op(g, [x], a);
  op(g, [a], b);
  op(g, [a, b], c); // a is read again after b is written
  g.output('c', c);
  const p = planGraph(g);
  const slot = (t: typeof a) => p.slotOf.get(t.id);
  assert.is.not(slot(a), slot(b));
  assert.is.not(slot(a), slot(c));
  assert.is.not(slot(b), slot(c));
});

test('a slot grows to the largest tensor it holds', () => {
  const g = new Graph();
  const x = g.input('x', [10]);
  const a = g.intermediate('a', [10]);
  const b = g.intermediate('b', [10]);
  const c = g.intermediate('c', [1000]);
  op(g, [x], a);
  op(g, [a], b);
  op(g, [b], c);
  g.output('c', c);
  const p = planGraph(g);
  assert.is(p.slotOf.get(c.id), p.slotOf.get(a.id));
  assert.is(p.largestSlotBytes, 4000);
});

test('reading a tensor before it is written is an error', () => {
  const g = new Graph();
  const a = g.intermediate('a', [4]);
  const b = g.intermediate('b', [4]);
  op(g, [a], b);
  assert.throws(() => planGraph(g), /before any node writes it/);
});

test.run();
