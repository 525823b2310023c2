import source from '../../../shaders/gemm/tiled.wgsl';
import rowdotSource from '../../../shaders/gemm/rowdot.wgsl';
import vec4Source from '../../../shaders/gemm/vec4.wgsl';
import epilogue from '../../../shaders/gemm/epilogue.wgsl';
import paramsBlock from '../../../shaders/gemm/params.wgsl';
import stageRows from '../../../shaders/gemm/stage_rows.wgsl';
import stageQuad from '../../../shaders/gemm/stage_quad.wgsl';
import f16 from '../../../shaders/lib/f16.wgsl';
import operandF32 from '../../../shaders/gemm/operand_f32.wgsl';
import operandF16 from '../../../shaders/gemm/operand_f16.wgsl';
import storeF32 from '../../../shaders/gemm/store_f32.wgsl';
import storeF16 from '../../../shaders/gemm/store_f16.wgsl';
import smatSource from '../../../shaders/gemm/smat.wgsl';
import slicedSource from '../../../shaders/gemm/sliced.wgsl';
import normNone from '../../../shaders/gemm/norm_none.wgsl';
import normLn from '../../../shaders/gemm/norm_ln.wgsl';
import resNone from '../../../shaders/gemm/res_none.wgsl';
import resPairs from '../../../shaders/gemm/res_pairs.wgsl';
import type { Graph, Precision } from '../graph.ts';
import type { GemmShape, Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import { fillSlots, wgslConst } from '../wgsl.ts';
import { layerNorm } from './layernorm.ts';

type Float = 'f32' | 'f16';
/** An operand's binding and loaders (loadA / loadA4 for A at binding 0, loadB / loadB4 for B at binding 1). */
const operand = (name: 'A' | 'B', dtype: Float) => fillSlots(dtype === 'f16' ? operandF16 : operandF32, { X: name, BINDING: name === 'A' ? 0 : 1 });
/**
 * The slots of shaders/gemm/sliced.wgsl for a tile side (a multiple of 16), K slices and stage depth (of 8): (tile/4)^2 invocations per slice,
 * staged k rows padded by one vec4, both operands' stages in one workgroup array (which must hold the slices' partial
 * sums at the end: (S/2) * tile^2 floats).
 */
function slicedSlots(tile: number, S: number, KD: number): Record<string, number> {
  const LDT4 = tile / 4 + 1, SMV = 2 * KD * LDT4;
  if (KD % S || KD % 8 || tile % 16 || Math.floor(S / 2) * tile * tile > 4 * SMV) throw new Error(`gemm sliced: tile ${tile}, ${S} slices, stage ${KD} do not fit`);
  return { TILE: tile, S, KD, THREADS: (tile / 4) ** 2 * S, LDT4, SMV };
}
/**
 * Each variant's entry name, WGSL template and its slots: shaders/gemm/tiled.wgsl at a tile side of 64 or 32 (4x4
 * outputs per thread, 16 of K per step); shaders/gemm/sliced.wgsl at 32 with 4 K slices (256 invocations per 32x32
 * tile: for GEMMs of few rows), at 16 with 16 slices (256 per 16x16 tile: the most parallel, for one image's GEMMs whose
 * operands sit in L2 anyway) or at 64 with one.
 */
/** The straight-line parts of shaders/gemm/tiled.wgsl: 4x4 scalar accumulators, one k step, the stores. */
const I4 = [0, 1, 2, 3];
const TILED_CODE = {
  ACC_DECL: I4.map((i) => I4.map((j) => `var c${i}_${j} = 0.0;`).join(' ')).join('\n  '),
  STEP: [...I4.map((i) => `let a${i} = As[k * TM + lid.y + WGS * ${i}u];`), ...I4.map((j) => `let b${j} = Bs[k * TN + lid.x + WGS * ${j}u];`),
    ...I4.map((i) => I4.map((j) => `c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`).join(' '))].join('\n      '),
  STORE: I4.map((i) => I4.map((j) => `epilogue1(row0 + lid.y + WGS * ${i}u, col0 + lid.x + WGS * ${j}u, c${i}_${j});`).join('\n  ')).join('\n  '),
};
/** The straight-line parts of shaders/gemm/vec4.wgsl: 8 rows x 2 column halves of vec4 accumulators. */
const R8 = [0, 1, 2, 3, 4, 5, 6, 7], XYZW = ['x', 'y', 'z', 'w'];
const VEC4_CODE = {
  ACC_DECL: R8.map((r) => `var c${r}_0 = vec4<f32>(0.0); var c${r}_1 = vec4<f32>(0.0);`).join('\n  '),
  // Row r < 4 takes component r of a0 (rows 4ty..), r >= 4 component r-4 of a1 (rows 64+4ty..); in the order of the
  // former loop over i: rows i and 4+i, each half 0 then 1.
  STEP: I4.map((i) => [`c${i}_0 = fma(vec4<f32>(a0.${XYZW[i]}), b0, c${i}_0);`, `c${i}_1 = fma(vec4<f32>(a0.${XYZW[i]}), b1, c${i}_1);`,
    `c${4 + i}_0 = fma(vec4<f32>(a1.${XYZW[i]}), b0, c${4 + i}_0);`, `c${4 + i}_1 = fma(vec4<f32>(a1.${XYZW[i]}), b1, c${4 + i}_1);`].join(' ')).join('\n      '),
  STORE: R8.map((r) => [0, 1].map((h) => `epilogue4(row0 + ${r < 4 ? `4u * lid.y + ${r}u` : `64u + 4u * lid.y + ${r - 4}u`}, col0 + ${64 * h}u + 4u * lid.x, c${r}_${h});`).join(' ')).join('\n  '),
};
const BODY: Record<GemmVariant, [string, string, Record<string, number | string>]> = {
  tiled: ['gemm', source, { TILE: 64, WGS: 16, PANEL: 16 * 64, ...TILED_CODE }], tiled32: ['gemm_t32', source, { TILE: 32, WGS: 8, PANEL: 16 * 32, ...TILED_CODE }],
  rowdot: ['gemm_rowdot', rowdotSource, {}], vec4: ['gemm_vec4', vec4Source, VEC4_CODE], smat: ['gemm_smat', smatSource, {}],
  sk16: ['gemm_sk16', slicedSource, slicedSlots(16, 16, 64)], sk32: ['gemm_sk32', slicedSource, slicedSlots(32, 4, 32)], sk64: ['gemm_sk64', slicedSource, slicedSlots(64, 1, 16)],
};
/** The sliced-K variants (shaders/gemm/sliced.wgsl), which read A and write C through stageA / storeOut (vec4 stages through them too). */
const SLICED: readonly GemmVariant[] = ['sk16', 'sk32', 'sk64'];
/** A variant's body, its uniform block after C (the reads A, B, bias, R, then a fused LayerNorm's gamma and beta, then a residual's pair table). */
const body = (variant: GemmVariant, pBinding = 5) => fillSlots(BODY[variant][1], { ...BODY[variant][2], P_BINDING: pBinding });
/** The subgroup-matrix kernel's module starts with these (enable directives precede every declaration). */
const SMAT_ENABLES = 'enable f16;\nenable chromium_experimental_subgroup_matrix;\n';

/**
 * A variant's kernel for operand and output storage: f32 everywhere by default; with the f16 option A and B are
 * rounded to binary16 on load (the F16_OPERANDS slot of gemm/epilogue.wgsl) when stored as f32, and read as
 * they are when stored as binary16 (weights, GEMM-written hidden activations); C may be stored as binary16.
 * `norm`: a pre-norm LayerNorm fused into A's loads (shaders/gemm/norm_ln.wgsl; tiled, tiled32, rowdot, smat, sk16, sk32, sk64, A
 * stored as f32): the node then reads gamma and beta at bindings 4 and 5, and C and the uniform block move to 6 and 7.
 */
export function gemmKernel(variant: GemmVariant, precision: Precision, io: { a?: Float; b?: Float; c?: Float } = {}, norm = false, resTable = false): Kernel {
  const name = BODY[variant][0];
  if (variant === 'smat' && precision !== 'f16') throw new Error('gemm smat computes on binary16 operands: it needs the f16 precision option');
  const { a = 'f32', b = 'f32', c = 'f32' } = io;
  if (norm && (!NORM_VARIANTS.includes(variant) || a !== 'f32')) throw new Error(`gemm ${variant} with A as ${a} cannot fuse a LayerNorm`);
  const tag = [a === 'f16' ? 'a16' : '', b === 'f16' ? 'b16' : '', c === 'f16' ? 'c16' : '', norm ? 'ln' : '', resTable ? 'pt' : ''].join('');
  const reads = 4 + (norm ? 2 : 0) + (resTable ? 1 : 0);
  return {
    name: tag ? `${name}/${tag}` : name,
    wgsl: (variant === 'smat' ? SMAT_ENABLES : '') + f16 + fillSlots(epilogue, { F16_OPERANDS: precision === 'f16' }) + fillSlots(paramsBlock, { EXTRA: '' }) + (SLICED.includes(variant) || variant === 'vec4' ? stageRows + stageQuad : '') + operand('A', a) + operand('B', b) +
      (norm ? normLn : normNone) + (resTable ? fillSlots(resPairs, { TBL_BINDING: reads - 1 }) : resNone) +
      fillSlots(c === 'f16' ? storeF16 : storeF32, { C_BINDING: reads }) + body(variant, reads + 1),
  };
}

/**
 * A sliced-K kernel (sk32 or sk64) whose A reads and C writes come from `head` instead of gemm/stage_rows.wgsl, and
 * whose uniform block has `extraParams` (WGSL struct fields) after the GEMM's: ops/conv2d.ts's implicit-GEMM
 * convolution (shaders/conv2d/gemm.wgsl).
 * f32 operands and output, no fused LayerNorm or residual table; bindings A, B, bias, R, then C and the uniform.
 */
export function slicedKernelWith(variant: 'sk32' | 'sk64', name: string, head: string, extraParams: string): Kernel {
  return {
    name,
    wgsl: f16 + fillSlots(epilogue, { F16_OPERANDS: false }) + fillSlots(paramsBlock, { EXTRA: extraParams }) + head + stageQuad + operand('A', 'f32') + operand('B', 'f32') + normNone + resNone +
      fillSlots(storeF32, { C_BINDING: 4 }) + body(variant, 5),
  };
}
/** The output tile side of a sliced-K variant. */
export const slicedTile = (variant: 'sk32' | 'sk64'): number => TILE[variant];

export const GEMM: Kernel = gemmKernel('tiled', 'f32');
/** No workgroup memory, vec4 along K, 4x4 per invocation: for CPU drivers (shaders/gemm/rowdot.wgsl). */
export const GEMM_ROWDOT: Kernel = gemmKernel('rowdot', 'f32');
/** 128x128 tiles, 8x8 per invocation in vec4 registers, vec4 loads: for GPUs (shaders/gemm/vec4.wgsl). */
export const GEMM_VEC4: Kernel = gemmKernel('vec4', 'f32');
/** Sliced K, vec4 staging, 4x4 per invocation in vec4 registers: for GPUs, GEMMs of few rows (shaders/gemm/sliced.wgsl). */
export const GEMM_SLICED: Kernel = gemmKernel('sk32', 'f32');
/** The binary16 storage snippets, the subgroup-matrix body, the fused LayerNorm and the residual's pair table (in no kernel above; the autotune hashes them too). */
export const GEMM_F16_IO = f16 + operandF16 + storeF16 + smatSource + normLn + resPairs;

/** 'smat': subgroup matrices (tensor cores), f16 option only, where src/graph/smat.ts passed it on the device. */
export type GemmVariant = 'tiled' | 'tiled32' | 'rowdot' | 'vec4' | 'smat' | 'sk16' | 'sk32' | 'sk64';
/** The variants every adapter can run. */
export const GEMM_VARIANTS: readonly GemmVariant[] = ['tiled', 'tiled32', 'rowdot', 'vec4', 'sk16', 'sk32', 'sk64'];
/**
 * The most rows of A for which a hardware target fuses a LayerNorm by default (GraphTarget.fuseNorm unset): about 10
 * ViT-B/16 images. A fused LayerNorm saves a dispatch (its launch and host cost, fixed) and the normalised copy; it
 * costs the statistics that every tile column recomputes and, under the f16 option, A read as f32 instead of
 * binary16, which grow with the rows. By the cost model's pattern bound (no L2) the SA forward at batch 1 stays far
 * inside its target fused, while at batch 128 fusing would take its f16 bound from 2,544 to 1,440 img/s; GPU timings
 * of both are not in yet (the bench's e2e section times the SA forwards fused and apart at every batch).
 */
export const NORM_FUSE_MAX_ROWS = 2048;
/** The variants a LayerNorm can be fused into (gemm options `norm`). */
export const NORM_VARIANTS: readonly GemmVariant[] = ['tiled', 'tiled32', 'rowdot', 'smat', 'sk16', 'sk32', 'sk64'];
/** The scalar-load variants: any layout. */
const UNALIGNED: readonly GemmVariant[] = ['tiled', 'tiled32'];
/** The variants a problem's layout allows: rowdot, vec4 and smat read A and B as vec4 along K. */
export const gemmVariantsFor = (aligned: boolean, smat = false): GemmVariant[] => (aligned ? [...GEMM_VARIANTS, ...(smat ? ['smat' as const] : [])] : [...UNALIGNED]);
/** The output tile of a workgroup, read from each kernel's WGSL (rows = columns). */
const TILE: Record<GemmVariant, number> = {
  tiled: wgslConst(body('tiled'), 'TM'), tiled32: wgslConst(body('tiled32'), 'TM'), rowdot: wgslConst(rowdotSource, 'TILE'), vec4: wgslConst(vec4Source, 'T'), smat: wgslConst(smatSource, 'TILE'),
  sk16: wgslConst(body('sk16'), 'TILE'), sk32: wgslConst(body('sk32'), 'TILE'), sk64: wgslConst(body('sk64'), 'TILE'),
};

/** 'quickgelu' is CLIP's x·sigmoid(1.702x) (the CAAN text tower). */
export type Activation = 'none' | 'relu' | 'gelu' | 'sigmoid' | 'quickgelu';
const ACT = { none: 0, relu: 1, gelu: 2, sigmoid: 3, quickgelu: 4 } as const;

export interface GemmOptions {
  M: number;
  N: number;
  K: number;
  bias?: Tensor | null;
  residual?: Tensor | null;
  act?: Activation;
  alpha?: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  ldr?: number;
  aOffset?: number;
  cOffset?: number;
  rOffset?: number;
  /** Write into this tensor instead of a new one (e.g. a strided slice of a larger buffer). */
  out?: Tensor;
  /**
   * Force a kernel (tests, bench). Default: the graph target's measured choice (autotune) when it has one; else
   * smat under the f16 option where the target allows it and the layout too; else on software adapters rowdot when
   * the layout allows it; else tiled (on the H200, 2026-12-04, the autotuner found tiled fastest on 73 of the 74
   * ViT-B/16 GEMM shapes and vec4 1.4-8x slower on every one: bench/results/2026-12-04-h200.json).
   */
  variant?: GemmVariant;
  /**
   * Operand precision; default the graph target's (graph.ts Precision). 'f32' pins a GEMM that must stay exact.
   * With 'f16' a weight B (a graph weight read whole from its start) is bound in its binary16 form.
   */
  precision?: Precision;
  /**
   * Under the f16 option, store C as binary16 when the kernel can (not the tiled one; N, ldc and the C offset
   * multiples of 4; no `out`): for a hidden activation that only GEMMs read, which round it to binary16 anyway.
   */
  half?: boolean;
  /** Shape of the new output tensor (default [M, N]). */
  outShape?: readonly number[];
  /**
   * A pre-norm LayerNorm (torch's nn.LayerNorm over A's K columns) applied to A first: C = act(alpha · LN(A)·Bᵀ + ...).
   * Fused into the GEMM's loads (one dispatch, no normalised copy in memory) where the kernel can (tiled, tiled32, sk16, sk32, sk64,
   * rowdot, smat; A stored as f32, lda = K, vec4-aligned) and the graph target asks for it (`fuseNorm`; by default on
   * hardware adapters for up to NORM_FUSE_MAX_ROWS rows); else a separate layerNorm node, stored as binary16 under the
   * f16 option, feeds the GEMM.
   */
  norm?: { gamma: Tensor; beta: Tensor; eps: number };
  /**
   * Read the residual's rows through a pair table ([P, 2] u32): C's M rows are P pairs of `rowsPerPair` rows, and
   * row b*rowsPerPair + t adds row t of item `pairs[b][col]` of the residual, a per-item tensor (row stride ldr).
   */
  residualTable?: { pairs: Tensor; col: 0 | 1; rowsPerPair: number };
  label?: string;
}

/** C = act(alpha · A·Bᵀ + bias) + residual, with B in PyTorch's [out, in] Linear layout. */
export function gemm(g: Graph, a: Tensor, b: Tensor, o: GemmOptions): Tensor {
  const { M, N, K } = o;
  const precision = o.precision ?? g.target.precision ?? 'f32';
  // The f16 option reads weights from their binary16 copy: half the bytes, the same rounded values.
  const bw = precision === 'f16' && b.kind === 'weight' && b.dtype === 'f32' ? g.weight(b.name, b.shape, 'f16') : b;
  const lda = o.lda ?? K, ldb = o.ldb ?? K, ldc = o.ldc ?? N;
  const aligned = K % 4 === 0 && lda % 4 === 0 && ldb % 4 === 0 && (o.aOffset ?? 0) % 4 === 0;
  // The subgroup-matrix kernel: f16 option, vec4 layout, and only where it passed its check on this device.
  const smat = !!g.target.smat && precision === 'f16' && aligned;
  const shape: GemmShape = { M, N, K, aligned, ...(bw.dtype === 'f16' ? { b16: true } : {}), ...(smat ? { smat: true } : {}) };
  const tuned = g.target.gemm?.(shape) as GemmVariant | undefined;
  const variant = o.variant ?? (tuned && gemmVariantsFor(aligned, smat).includes(tuned) ? tuned : smat ? 'smat' : defaultVariant(!!g.target.software, aligned));
  if (!UNALIGNED.includes(variant) && !aligned) throw new Error(`gemm ${variant} needs K, lda, ldb and the A offset to be multiples of 4`);
  if (a.dtype === 'u32' || bw.dtype === 'u32') throw new Error(`gemm: ${a.dtype === 'u32' ? a : bw} is not a float tensor`);
  const norm = o.norm;
  if (norm) {
    const fuse = (g.target.fuseNorm ?? (!g.target.software && M <= NORM_FUSE_MAX_ROWS)) && NORM_VARIANTS.includes(variant) && aligned && a.dtype === 'f32' && lda === K && (o.aOffset ?? 0) === 0;
    if (!fuse) {
      if (lda !== K || (o.aOffset ?? 0) !== 0) throw new Error('gemm: a fused LayerNorm needs A contiguous (lda = K, no offset)');
      const x = layerNorm(g, a, norm.gamma, norm.beta, { kind: 'torch', eps: norm.eps, half: true, label: `${o.label ?? 'gemm'}.ln` });
      return gemm(g, x, b, { ...o, norm: undefined });
    }
  }
  const rt = o.residualTable;
  if (rt && (!o.residual || rt.pairs.dtype !== 'u32' || rt.rowsPerPair < 1 || M % rt.rowsPerPair !== 0 || rt.pairs.size !== 2 * (M / rt.rowsPerPair))) {
    throw new Error(`gemm: a residual table needs a residual and [${M / (rt.rowsPerPair || 1)}, 2] u32 pairs of ${rt.rowsPerPair} rows each`);
  }
  const c16 = !!o.half && precision === 'f16' && !o.out && !UNALIGNED.includes(variant) && N % 4 === 0 && ldc % 4 === 0 && (o.cOffset ?? 0) % 4 === 0;
  const out = o.out ?? g.intermediate(o.label ?? 'gemm', o.outShape ?? [M, N], c16 ? 'f16' : 'f32');
  if (out.dtype !== 'f32' && !c16) throw new Error(`gemm: output ${out} must be f32`);
  const tile = TILE[variant];
  g.push({
    label: o.label ?? 'gemm',
    kernel: gemmKernel(variant, precision, { a: a.dtype, b: bw.dtype, c: out.dtype as Float }, !!norm, !!rt),
    reads: [a, bw, o.bias ?? null, o.residual ?? null, ...(norm ? [norm.gamma, norm.beta] : []), ...(rt ? [rt.pairs] : [])],
    writes: [out],
    params: [
      ['M', 'u32', M], ['N', 'u32', N], ['K', 'u32', K],
      ['lda', 'u32', o.lda ?? K], ['ldb', 'u32', o.ldb ?? K], ['ldc', 'u32', ldc], ['ldr', 'u32', o.ldr ?? N],
      ['aOff', 'u32', o.aOffset ?? 0], ['cOff', 'u32', o.cOffset ?? 0], ['rOff', 'u32', o.rOffset ?? 0],
      ['hasBias', 'u32', o.bias ? 1 : 0], ['hasRes', 'u32', o.residual ? 1 : 0], ['act', 'u32', ACT[o.act ?? 'none']],
      ['alpha', 'f32', o.alpha ?? 1], ['lnEps', 'f32', norm?.eps ?? 0], ['resT', 'u32', rt?.rowsPerPair ?? 1], ['resCol', 'u32', rt?.col ?? 0],
      ['resN', 'u32', rt ? Math.max(1, Math.floor(o.residual!.size / ((o.ldr ?? N) * rt.rowsPerPair))) : 1],
    ],
    dispatch: [Math.ceil(N / tile), Math.ceil(M / tile), 1],
    // The GEMM's own work; a fused LayerNorm's is not counted, as a LayerNorm node counts none either.
    flops: 2 * M * N * K,
    gemm: shape,
  });
  return out;
}

/** The built-in choice without a measured one (smat aside, which only its device check enables). */
export function defaultVariant(software: boolean, aligned: boolean): GemmVariant {
  return software && aligned ? 'rowdot' : 'tiled';
}

/**
 * y = act(x Wᵀ + b) (+ residual) over the last axis of x, as torch.nn.Linear. Weight names are resolved in the
 * graph's weight store; `${prefix}.weight` is [out, in].
 */
export function linear(g: Graph, x: Tensor, prefix: string, outFeatures: number, o: { act?: Activation; residual?: Tensor; residualTable?: GemmOptions['residualTable']; bias?: boolean; half?: boolean; norm?: GemmOptions['norm']; label?: string } = {}): Tensor {
  const K = x.shape[x.shape.length - 1]!;
  const M = x.size / K;
  const w = g.weight(`${prefix}.weight`, [outFeatures, K]);
  const b = o.bias === false ? null : g.weight(`${prefix}.bias`, [outFeatures]);
  return gemm(g, x, w, {
    M, N: outFeatures, K, bias: b, residual: o.residual ?? null, residualTable: o.residualTable, act: o.act ?? 'none', half: o.half, norm: o.norm,
    outShape: [...x.shape.slice(0, -1), outFeatures], label: o.label ?? prefix,
  });
}
