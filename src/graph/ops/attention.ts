import source from '../../../shaders/attention/flash.wgsl';
import genericSource from '../../../shaders/attention/generic.wgsl';
import f16 from '../../../shaders/lib/f16.wgsl';
import tableNone from '../../../shaders/attention/table_none.wgsl';
import tablePairs from '../../../shaders/attention/table_pairs.wgsl';
import type { Graph } from '../graph.ts';
import type { AttentionShape, Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import { fillSlots } from '../wgsl.ts';

/** A [B, T, *] operand: element (b, t, f) at offset + b*batchStride + t*rowStride + f. */
export interface SeqLayout {
  offset: number;
  batchStride: number;
  rowStride: number;
}

export const rows = (T: number, width: number, offset = 0): SeqLayout => ({ offset, batchStride: T * width, rowStride: width });

export interface AttentionOptions {
  B: number;
  heads: number;
  Tq: number;
  Tk: number;
  headDim: number;
  q: SeqLayout;
  k: SeqLayout;
  v: SeqLayout;
  /** Scores are dot * scale, or dot / divisor when `divisor` is given (to round as the reference does). */
  scale?: number;
  divisor?: number;
  /**
   * Causal mask (CLIP's text tower): query row i sees keys 0..i only. Needs Tq == Tk. The flash kernel gets its
   * own program (the non-causal source is unchanged); each invocation also stops at its last row's bound.
   */
  causal?: boolean;
  /**
   * Under the f16 option (graph precision 'f16') store the output as binary16 where the flash kernel runs, for an
   * output that only GEMMs read (the output projection, which rounds it to binary16 on load anyway).
   */
  half?: boolean;
  /**
   * 'split' (the default where it applies: head dims where one invocation holds one row, i.e. dh >= 36, and no
   * causal mask; P invocations per row over a P-th of the keys each, merged through workgroup memory) or 'flash'
   * (one invocation per row over all keys). On lavapipe, [1 image, 12 heads, 197 tokens, dh 64] (ViT-B's SA): flash
   * 208-211 ms, split 152 ms (3 runs each, interleaved, 2026-12-05, a loaded 2-core machine); on a GPU the split
   * program has 4x the invocations (ViT-B at batch 1: 9,984 instead of 2,688) and a 4x shorter serial chain.
   */
  variant?: 'flash' | 'split';
  /**
   * Read operands through a pair table ([B, 2] u32, one row per sketch-photo pair): batch b of q (k, v) is then
   * batch `pairs[b][col]` of that tensor, so per-image tensors serve every pair without a gathered copy. An
   * operand whose column is not given is read at batch b.
   */
  table?: { pairs: Tensor; q?: 0 | 1; k?: 0 | 1; v?: 0 | 1 };
  label?: string;
}

/** The bindings of an attention program: the output and the uniform block follow the reads (3 operands, + a pair table). */
const bindings = (table: boolean) => ({ O_BINDING: table ? 4 : 3, P_BINDING: table ? 5 : 4 });

/** Head dims up to this run the flash kernel (rows in registers), given a vec4-aligned layout. */
export const FLASH_MAX_HEAD_DIM = 128;

/**
 * Query rows per invocation (R) and invocations per workgroup (WG) of the flash kernel for a head dim and query
 * length. Each key and value row is read once per invocation and used for R rows: on llvmpipe, where the per-lane
 * loads dominate, that is what pays. R*ceil(dh/4) <= 16 vec4 keeps an invocation's queries and accumulators at 128
 * floats, within a GPU thread's registers. Within that, R is the one that needs the fewest loads plus FMAs over
 * the padded rows (rows past Tq are computed and dropped), counting a load as 16 FMAs; WG is 64 unless 64-wide
 * workgroups pad more rows than 32-wide ones. Measured on lavapipe, one dispatch, interleaved: dh 8, [8 images, 4 heads, 197 tokens]: R 1 30.1 ms,
 * 2 16.7, 4 11.9, 8 6.9, 16 13.9; dh 8, [16, 4, 50]: R 4 2.0 ms, 8 3.2; dh 64, [1, 12, 197]: R 1 225 ms, 2 116,
 * 4 78, but R 2 already needs 256 floats of registers, past what a GPU thread holds without spilling.
 */
export function flashShape(headDim: number, Tq: number): { R: number; WG: number } {
  const maxR = Math.max(1, Math.min(8, Math.floor(16 / Math.ceil(headDim / 4))));
  let R = 1;
  let best = Infinity;
  for (let r = 1; r <= maxR; r *= 2) {
    const cost = Math.ceil(Tq / (32 * r)) * 32 * (2 * 16 + 2 * r);
    if (cost < best) [best, R] = [cost, r];
  }
  const WG = Math.ceil(Tq / (64 * R)) * 64 <= Math.ceil(Tq / (32 * R)) * 32 ? 64 : 32;
  return { R, WG };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The flash kernel's WGSL for one head dim, R rows per invocation and WG invocations per workgroup; `half` stores
 * the output as binary16 (pack4h of lib/f16.wgsl).
 */
export function flashSource(headDim: number, R: number, WG: number, causal = false, half = false, parts = 1, table = false): string {
  if (headDim % 4 !== 0) throw new Error('flash attention: head dim must be a multiple of 4');
  if (parts > 1 && (R !== 1 || causal || WG % parts !== 0)) throw new Error('split attention: one row per invocation, no causal mask, WG a multiple of the parts');
  const rows = range(R), cols = range(headDim / 4);
  const pro: string[] = [];
  const ROWS = WG / parts; // query rows per workgroup of the split program
  if (parts > 1) {
    pro.push(`  let part = li / ${ROWS}u;`, `  let chunk = (p.Tk + ${parts - 1}u) / ${parts}u;`, '  let kBegin = min(p.Tk, part * chunk);',
      '  let kEnd = min(p.Tk, kBegin + chunk);');
  }
  for (const r of rows) {
    pro.push(`  let i${r} = iBase + ${r * WG}u;`, `  let qr${r} = qRow + min(i${r}, p.Tq - 1u) * qSR;`);
    for (const c of cols) pro.push(`  let q${r}_${c} = Q[qr${r} + ${c}u];`);
    for (const c of cols) pro.push(`  var a${r}_${c} = vec4<f32>(0.0);`);
    pro.push(`  var m${r} = -3.4e38;`, `  var l${r} = 0.0;`);
  }
  const I = '    ';
  const step: string[] = [];
  for (const c of cols) step.push(`${I}let k${c} = K[kr + ${c}u];`);
  for (const r of rows) {
    let dot = `q${r}_0 * k0`;
    for (const c of cols.slice(1)) dot = `fma(q${r}_${c}, k${c}, ${dot})`;
    // Causal: a masked key scores -3.4e38; key 0 is never masked, so m is finite from the first step on and a
    // masked key's weight exp(-3.4e38 - m) is exactly 0 (and corr exactly 1).
    const sc = causal ? `select(-3.4e38, score(${dot}), j <= i${r})` : `score(${dot})`;
    step.push(`${I}let s${r} = ${sc};`, `${I}let mt${r} = max(m${r}, s${r});`, `${I}let corr${r} = exp(m${r} - mt${r});`,
      `${I}let p${r} = exp(s${r} - mt${r});`, `${I}m${r} = mt${r};`, `${I}l${r} = l${r} * corr${r} + p${r};`);
  }
  for (const c of cols) {
    step.push(`${I}let v${c} = V[vr + ${c}u];`);
    for (const r of rows) step.push(`${I}a${r}_${c} = fma(vec4<f32>(p${r}), v${c}, a${r}_${c} * corr${r});`);
  }
  const epi: string[] = [];
  const decls: string[] = [];
  if (parts > 1) {
    // Parts 1..P-1 leave (m, l, acc) in workgroup memory; part 0 rescales all P to the common max and adds them.
    const S = (parts - 1) * ROWS, C = cols.length;
    decls.push(`var<workgroup> mS: array<f32, ${S}>;`, `var<workgroup> lS: array<f32, ${S}>;`, `var<workgroup> aS: array<vec4<f32>, ${S * C}>;`);
    epi.push(`  let lr = li % ${ROWS}u;`, '  if (part > 0u) {', `    let s = (part - 1u) * ${ROWS}u + lr;`, '    mS[s] = m0;', '    lS[s] = l0;');
    for (const c of cols) epi.push(`    aS[s * ${C}u + ${c}u] = a0_${c};`);
    epi.push('  }', '  workgroupBarrier();', '  if (part != 0u) { return; }', '  var mm = m0;',
      `  for (var q = 0u; q < ${parts - 1}u; q++) { mm = max(mm, mS[q * ${ROWS}u + lr]); }`,
      '  let f0 = exp(m0 - mm);', '  l0 = l0 * f0;');
    for (const c of cols) epi.push(`  a0_${c} = a0_${c} * f0;`);
    epi.push(`  for (var q = 0u; q < ${parts - 1}u; q++) {`, `    let s = q * ${ROWS}u + lr;`, '    let f = exp(mS[s] - mm);', '    l0 = fma(lS[s], f, l0);');
    for (const c of cols) epi.push(`    a0_${c} = fma(vec4<f32>(f), aS[s * ${C}u + ${c}u], a0_${c});`);
    epi.push('  }');
  }
  for (const r of rows) {
    epi.push(`  if (i${r} < p.Tq) {`, `    let ob = oRow + i${r} * oSR;`);
    for (const c of cols) epi.push(half ? `    O[ob + ${c}u] = pack4h(a${r}_${c} / l${r});` : `    O[ob + ${c}u] = a${r}_${c} / l${r};`);
    epi.push('  }');
  }
  // Causal: keys past this invocation's last row (clamped to Tq) mask every row of it, so the loop ends there.
  const end = causal ? `min(p.Tk, min(iBase + ${(R - 1) * WG}u, p.Tq - 1u) + 1u)` : 'p.Tk';
  return (half ? f16 : '') + (table ? tablePairs : tableNone) + fillSlots(source, {
    ...bindings(table), OUTPUT: half ? 'array<vec2<u32>>' : 'array<vec4<f32>>', R, WG, DECLS: decls.join('\n'),
    ROW_BASE: parts > 1 ? `wg.x * ${ROWS}u + li % ${ROWS}u` : 'wg.x * (WG * R) + li',
    KEYS_BEGIN: parts > 1 ? 'kBegin' : '0u', KEYS_END: parts > 1 ? 'kEnd' : end,
    PROLOGUE: pro.join('\n'), STEP: step.join('\n'), EPILOGUE: epi.join('\n'),
  });
}

/** The generic program (any layout, dh <= 256), with or without a pair table. */
const genericKernel = (table: boolean): Kernel => ({ name: 'attention_generic', wgsl: (table ? tablePairs : tableNone) + fillSlots(genericSource, bindings(table)) });
export const GENERIC_ATTENTION: Kernel = genericKernel(false);
const GENERIC_ATTENTION_TABLE: Kernel = genericKernel(true);
const flashKernels = new Map<string, Kernel>();

/**
 * The program for a head dim and layout, and the query rows one workgroup covers: the flash kernel when the
 * layout is vec4-aligned and dh <= 128 (one program per (dh, R, WG, causal, half), cached), else the generic one.
 * `half` (binary16 output) is honoured by the flash kernel only: `half` in the result says whether it is.
 */
export function attentionKernel(headDim: number, Tq: number, aligned: boolean, causal = false, half = false, split = false, table = false): { kernel: Kernel; rowsPerGroup: number; half: boolean } {
  if (!aligned || headDim > FLASH_MAX_HEAD_DIM) return { kernel: table ? GENERIC_ATTENTION_TABLE : GENERIC_ATTENTION, rowsPerGroup: 64, half: false };
  const shape = flashShape(headDim, Tq);
  const parts = split && shape.R === 1 && !causal ? splitParts(headDim) : 1;
  const { R, WG } = parts > 1 ? { R: 1, WG: SPLIT_ROWS * parts } : shape;
  const key = `${headDim}/${R}/${WG}/${parts}${causal ? '/causal' : ''}${half ? '/h' : ''}${table ? '/pairs' : ''}`;
  let kernel = flashKernels.get(key);
  const name = `${causal ? 'attention_causal' : parts > 1 ? 'attention_split' : 'attention'}${half ? '/h' : ''}`;
  if (!kernel) flashKernels.set(key, (kernel = { name, wgsl: flashSource(headDim, R, WG, causal, half, parts, table) }));
  return { kernel, rowsPerGroup: parts > 1 ? SPLIT_ROWS : R * WG, half };
}

/** Query rows per workgroup of the split program. */
const SPLIT_ROWS = 16;
/**
 * Key parts per row of the split program: 4 up to head dim 64, else 2, so that the partials of parts 1..P-1 (16
 * rows x dh floats each) fit the 16 KiB of workgroup memory every adapter offers (dh 64: 12.4 KiB; 128: 8.1 KiB).
 */
const splitParts = (headDim: number) => (headDim <= 64 ? 4 : 2);

/** How many whole batches of layout `l` a tensor holds (at least 1): the bound of a pair-table index. */
const batches = (x: Tensor, l: SeqLayout) => (l.batchStride > 0 ? Math.max(1, Math.floor(x.size / l.batchStride)) : 1);

/** softmax(Q Kᵀ · scale) V per head; output [B, Tq, heads*headDim]. */
export function attention(g: Graph, q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions): Tensor {
  const { B, heads, Tq, Tk, headDim } = o;
  if (headDim > 256) throw new Error('attention: head dim above 256 is not supported');
  if (B > 65535 || heads > 65535 || Tq > 65535) throw new Error('attention: grid too large');
  const D = heads * headDim;
  const aligned = [headDim, o.q.offset, o.q.batchStride, o.q.rowStride, o.k.offset, o.k.batchStride, o.k.rowStride,
    o.v.offset, o.v.batchStride, o.v.rowStride, D].every((x) => x % 4 === 0);
  if (o.causal && Tq !== Tk) throw new Error(`attention: a causal mask needs as many queries as keys, not ${Tq} and ${Tk}`);
  // The program: forced (tests, bench), else the target's measured choice where both apply (src/graph/autotune.ts),
  // else split.
  const shape: AttentionShape = { B, heads, Tq, Tk, headDim };
  const tunable = !o.variant && attentionChoices(shape, aligned, !!o.causal).length > 1;
  const tuned = tunable ? g.target.choose?.({ op: 'attention', shape }) : undefined;
  const split = (o.variant ?? (tuned === 'flash' ? 'flash' : 'split')) === 'split';
  const t = o.table;
  if (t && (t.pairs.dtype !== 'u32' || t.pairs.size !== 2 * B)) throw new Error(`attention: the pair table must be [${B}, 2] u32, not ${t.pairs}`);
  const { kernel, rowsPerGroup, half } = attentionKernel(headDim, Tq, aligned, !!o.causal, !!o.half && g.target.precision === 'f16', split, !!t);
  const out = g.intermediate(o.label ?? 'attention', [B, Tq, D], half ? 'f16' : 'f32');
  const div = o.divisor !== undefined;
  g.push({
    label: o.label ?? 'attention',
    kernel,
    reads: t ? [q, k, v, t.pairs] : [q, k, v],
    writes: [out],
    params: [
      ['B', 'u32', B], ['H', 'u32', heads], ['Tq', 'u32', Tq], ['Tk', 'u32', Tk], ['dh', 'u32', headDim],
      ['qOff', 'u32', o.q.offset], ['qSB', 'u32', o.q.batchStride], ['qSR', 'u32', o.q.rowStride],
      ['kOff', 'u32', o.k.offset], ['kSB', 'u32', o.k.batchStride], ['kSR', 'u32', o.k.rowStride],
      ['vOff', 'u32', o.v.offset], ['vSB', 'u32', o.v.batchStride], ['vSR', 'u32', o.v.rowStride],
      ['oOff', 'u32', 0], ['oSB', 'u32', Tq * D], ['oSR', 'u32', D],
      ['divide', 'u32', div ? 1 : 0], ['scale', 'f32', div ? o.divisor! : (o.scale ?? 1 / Math.sqrt(headDim))],
      // Read by the generic kernel only; the flash kernel is specialised instead.
      ['causal', 'u32', o.causal ? 1 : 0],
      ['qCol', 'u32', t?.q ?? 2], ['kCol', 'u32', t?.k ?? 2], ['vCol', 'u32', t?.v ?? 2],
      ['qN', 'u32', batches(q, o.q)], ['kN', 'u32', batches(k, o.k)], ['vN', 'u32', batches(v, o.v)],
    ],
    dispatch: [Math.ceil(Tq / rowsPerGroup), heads, B],
    flops: 4 * B * heads * Tq * Tk * headDim,
    ...(tunable ? { tuned: { op: 'attention' as const, shape } } : {}),
  });
  return out;
}

/**
 * The programs an attention can run as: 'split' and 'flash' where the split program applies (vec4-aligned layout,
 * head dim up to 128 with one query row per invocation, no causal mask), else only what the layout gives.
 */
export function attentionChoices(s: AttentionShape, aligned = true, causal = false): ('split' | 'flash')[] {
  return aligned && !causal && s.headDim <= FLASH_MAX_HEAD_DIM && flashShape(s.headDim, s.Tq).R === 1 ? ['split', 'flash'] : [];
}
