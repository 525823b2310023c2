import type { Graph } from './graph.ts';
import type { Tensor } from './tensor.ts';

export interface Slot {
  index: number;
  bytes: number;
  tensors: Tensor[];
}

export interface Plan {
  /** Intermediate tensor id -> slot index. */
  slotOf: Map<number, number>;
  slots: Slot[];
  /** Bytes of all intermediate slots together: the forward's activation memory. */
  peakBytes: number;
  /** What giving every intermediate its own buffer would take. */
  naiveBytes: number;
  /** Largest single slot, which must fit the adapter's maxStorageBufferBindingSize. */
  largestSlotBytes: number;
}

/**
 * Liveness-based buffer assignment, done once per graph: an intermediate lives from the node that writes it
 * to the last node that reads it (graph outputs live to the end). Each new tensor takes the free slot whose
 * size fits best (growing the largest free one if none fits), so peak memory stays near the live maximum.
 */
export function planGraph(graph: Graph): Plan {
  const lastUse = new Map<number, number>();
  const firstDef = new Map<number, number>();
  const end = graph.nodes.length;
  graph.nodes.forEach((n, i) => {
    for (const t of n.reads) if (t && t.kind === 'intermediate') lastUse.set(t.id, i);
    for (const t of n.writes) {
      if (t.kind !== 'intermediate') throw new Error(`${n.label}: writes ${t}, which is not an intermediate`);
      if (!firstDef.has(t.id)) firstDef.set(t.id, i);
      lastUse.set(t.id, Math.max(lastUse.get(t.id) ?? i, i));
    }
  });
  for (const t of graph.outputs.values()) lastUse.set(t.id, end);
  graph.nodes.forEach((n, i) => {
    for (const t of n.reads) {
      if (t && t.kind === 'intermediate' && (firstDef.get(t.id) ?? Infinity) > i) {
        throw new Error(`${n.label}: reads ${t} before any node writes it`);
      }
    }
  });

  const slots: Slot[] = [];
  const slotOf = new Map<number, number>();
  const free = new Set<number>();
  const releaseAt = new Map<number, Tensor[]>();
  const byId = new Map(graph.tensors.map((t) => [t.id, t]));
  let naive = 0;

  graph.nodes.forEach((n, i) => {
    for (const t of n.writes) {
      if (slotOf.has(t.id)) continue;
      naive += t.bytes;
      let best = -1;
      for (const s of free) {
        const fits = slots[s]!.bytes >= t.bytes;
        if (best < 0) best = s;
        else {
          const b = slots[best]!;
          const bFits = b.bytes >= t.bytes;
          if (fits && (!bFits || slots[s]!.bytes < b.bytes)) best = s;
          else if (!fits && !bFits && slots[s]!.bytes > b.bytes) best = s;
        }
      }
      if (best < 0) {
        best = slots.length;
        slots.push({ index: best, bytes: t.bytes, tensors: [] });
      } else {
        free.delete(best);
        slots[best]!.bytes = Math.max(slots[best]!.bytes, t.bytes);
      }
      slots[best]!.tensors.push(t);
      slotOf.set(t.id, best);
      const last = lastUse.get(t.id)!;
      if (!releaseAt.has(last)) releaseAt.set(last, []);
      releaseAt.get(last)!.push(t);
    }
    // Tensors whose last reader is this node free their slot for the nodes after it (never for this node's
    // own outputs, which were placed above while the inputs still held theirs).
    for (const t of releaseAt.get(i) ?? []) free.add(slotOf.get(t.id)!);
  });
  for (const [id] of lastUse) if (!slotOf.has(id) && byId.get(id)?.kind === 'intermediate') throw new Error(`tensor ${byId.get(id)} is never written`);

  const peakBytes = slots.reduce((a, s) => a + s.bytes, 0);
  const largestSlotBytes = slots.reduce((a, s) => Math.max(a, s.bytes), 0);
  return { slotOf, slots, peakBytes, naiveBytes: naive, largestSlotBytes };
}
