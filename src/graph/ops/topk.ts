import topkSrc from '../../../shaders/topk.wgsl';
import type { Graph } from '../graph.ts';
import type { Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import { wgslConst } from '../wgsl.ts';

export const TOPK: Kernel = { name: 'topk', wgsl: topkSrc };
/** Candidates one workgroup sorts (CH of shaders/topk.wgsl, read from it). */
export const TOPK_CHUNK = wgslConst(topkSrc, 'CH');
/** The largest k: each pass must at least halve the candidates. */
export const TOPK_MAX = TOPK_CHUNK / 2;

/**
 * Row-wise top-k of x [rows, n] (row stride ldx), best first by (value desc, index asc). Returns values [rows, k]
 * (f32) and indices [rows, k] (u32); when n < k the tail holds (-3.4e38, 0xffffffff). Several passes of the chunked
 * bitonic kernel, all in the same forward.
 */
export function topk(g: Graph, x: Tensor, rows: number, n: number, k: number, o: { ldx?: number; label?: string } = {}): { values: Tensor; indices: Tensor } {
  if (!Number.isInteger(k) || k < 1 || k > TOPK_MAX) throw new RangeError(`top-k needs 1 <= k <= ${TOPK_MAX}, not ${k}`);
  if (rows > 65535) throw new RangeError(`top-k takes at most 65535 rows per forward, not ${rows}`);
  const label = o.label ?? 'topk';
  let vals = x;
  let idx: Tensor | null = null;
  let len = n;
  let ld = o.ldx ?? n;
  for (let pass = 0; ; pass++) {
    const chunks = Math.max(1, Math.ceil(len / TOPK_CHUNK));
    if (chunks > 65535) throw new RangeError(`top-k over ${n} candidates is too long for one forward`);
    const ov = g.intermediate(`${label}.v${pass}`, [rows, chunks, k]);
    const oi = g.intermediate(`${label}.i${pass}`, [rows, chunks, k], 'u32');
    g.push({
      label: `${label}.pass${pass}`, kernel: TOPK, reads: [vals, idx], writes: [ov, oi],
      params: [['rows', 'u32', rows], ['n', 'u32', len], ['k', 'u32', k], ['chunks', 'u32', chunks], ['hasIdx', 'u32', idx ? 1 : 0], ['ldv', 'u32', ld]],
      dispatch: [chunks, rows, 1],
    });
    vals = ov;
    idx = oi;
    if (chunks === 1) return { values: ov, indices: oi };
    len = chunks * k;
    ld = len;
  }
}
