import source from '../../../shaders/conv2d.wgsl';
import gemmHead from '../../../shaders/conv2d/gemm.wgsl';
import { slicedKernelWith, slicedTile } from './gemm.ts';
import type { Graph } from '../graph.ts';
import type { ConvShape, Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import { fillSlots, wgslConst } from '../wgsl.ts';

/** An invocation's register block: 8 output pixels x 8 channels, or 4 x 4 (shaders/conv2d.wgsl's P and COB). */
export type ConvBlock = 8 | 4;
/**
 * shaders/conv2d.wgsl for a block, with its accumulators and inner steps written out (P pixels x COB/4 vec4s of
 * channels): the same operations in the same order as loops over pixels and channels, without a private array.
 */
function program(block: ConvBlock): string {
  const P = block, C4 = block / 4;
  const each = (f: (q: number, c: number) => string) => Array.from({ length: P }, (_, q) => Array.from({ length: C4 }, (_, c) => f(q, c)).join(' ')).join('\n        ');
  const w = (f: (j: number) => string) => Array.from({ length: block }, (_, j) => f(j));
  const direct = [
    // The COB weights of this tap (channels past Co read the last one), 4 to a vec4.
    ...w((j) => `let w${j} = Wt[min(blk.co0 + ${j}u, lastCo) * wStride + wr + kx];`),
    ...Array.from({ length: C4 }, (_, c) => `let wv${c} = vec4<f32>(w${4 * c}, w${4 * c + 1}, w${4 * c + 2}, w${4 * c + 3});`),
    // Pixel q's input column (tc: not ix0, the block's first, which it would shadow), zero outside the image.
    ...Array.from({ length: P }, (_, q) => `let tc${q} = ix0 + i32(${q}u * p.stride + kx);\n        let x${q} = vec4<f32>(select(0.0, X[xr + u32(clamp(tc${q}, 0, i32(p.W) - 1))], rowOk && tc${q} >= 0 && tc${q} < i32(p.W)));`),
    each((q, c) => `a${q}_${c} = fma(x${q}, wv${c}, a${q}_${c});`),
  ].join('\n        ');
  const patch = [
    ...w((j) => `let w${j} = Wt4[min(blk.co0 + ${j}u, lastCo) * wStride + wr + k4];`),
    ...Array.from({ length: P }, (_, q) => `let x${q} = X4[xr + min(blk.ox0 + ${q}u, lastX) * K4 + k4];`),
    each((q, c) => `a${q}_${c} += vec4<f32>(dot(x${q}, w${4 * c}), dot(x${q}, w${4 * c + 1}), dot(x${q}, w${4 * c + 2}), dot(x${q}, w${4 * c + 3}));`),
  ].join('\n        ');
  return fillSlots(source, {
    P, COB: block,
    ACC_DECL: each((q, c) => `var a${q}_${c} = vec4<f32>(0.0);`).replaceAll('\n        ', '\n  '),
    DIRECT_STEP: direct, PATCH_STEP: patch,
    STORE: each((q, c) => `store4(blk, ${q}u, ${4 * c}u, a${q}_${c});`).replaceAll('\n        ', '\n  '),
  });
}
const kernels = (block: ConvBlock): [Kernel, Kernel] => {
  const wgsl = program(block), name = block === 8 ? 'conv2d' : 'conv2d/b4';
  return [{ name, wgsl, entry: 'direct' }, { name, wgsl, entry: 'patch4' }];
};
const KERNELS: Record<ConvBlock, [Kernel, Kernel]> = { 8: kernels(8), 4: kernels(4) };
/** Direct convolution, 8 output pixels x 8 output channels per invocation (see shaders/conv2d.wgsl). */
export const CONV2D: Kernel = KERNELS[8][0];
/** The non-overlapping patch conv (kernel == stride, no padding) on vec4 loads. */
export const CONV2D_PATCH: Kernel = KERNELS[8][1];
/** The same two with 4 x 4 blocks. */
export const CONV2D_B4: readonly Kernel[] = KERNELS[4];
// The workgroup of shaders/conv2d.wgsl, read from it (WG there).
const GROUP = wgslConst(program(8), 'WG');
/** The convolution as an implicit GEMM on the sliced-K GEMM kernel (shaders/conv2d/gemm.wgsl), at 32 or 64 tiles. */
/** The convolution's params after the GEMM's, in the order of its uniform fields (EXTRA of shaders/gemm/params.wgsl). */
const CONV_PARAMS = ['H', 'W', 'OH', 'OW', 'KH', 'KW', 'stride', 'padY', 'padX', 'inOff', 'inSN', 'inSC', 'inSY', 'outOff', 'outSN', 'outSC', 'outSY', 'outSX'] as const;
const convFields = CONV_PARAMS.map((f) => `${f}: u32,`).join(' ');
export const CONV2D_GEMM: Record<'gemm32' | 'gemm64', Kernel> = {
  gemm32: slicedKernelWith('sk32', 'conv2d_gemm/sk32', gemmHead, convFields),
  gemm64: slicedKernelWith('sk64', 'conv2d_gemm/sk64', gemmHead, convFields),
};
/** How a convolution runs: the direct kernel (any shape), or an implicit GEMM (Ci*KH*KW a multiple of 4, f32). */
export type ConvVariant = 'direct' | 'gemm32' | 'gemm64';
/**
 * Below this many invocations at 8 x 8 blocks a hardware target takes 4 x 4 blocks (4x the invocations, each with a
 * quarter of the serial work): at one ViT-B/16 image the stem's convolutions have 2,700-25,000 invocations of 8 x 8,
 * a few warps per SM of a large GPU, each running a chain of Ci*K*K*64 FMAs (the 2026-12-04 H200 run: the 7x7 stem
 * conv at 5 % of the fp32 peak, the patch conv at 2 %); at 8 images and more 8 x 8 blocks fill it. CPU drivers keep
 * 8 x 8 (every load costs per lane there). A guess until a GPU run times both (bench rows `conv ... [b4]`).
 */
export const CONV_SMALL_INVOCATIONS = 65536;

/** Where a feature map lives in its buffer: element (n,c,y,x) at offset + n*sN + c*sC + y*sY + x*sX. */
export interface MapLayout {
  offset: number;
  sN: number;
  sC: number;
  sY: number;
  sX: number;
}

export const nchw = (C: number, H: number, W: number, offset = 0): MapLayout => ({ offset, sN: C * H * W, sC: H * W, sY: W, sX: 1 });
/** Channels-last rows, [N, H*W (+extra rows), C]: what the token layout of a ViT is. */
export const tokensLayout = (C: number, rowsPerSample: number, H: number, W: number, offsetRows = 0): MapLayout => ({ offset: offsetRows * C, sN: rowsPerSample * C, sC: 1, sY: W * C, sX: C });

/** The convolution (ConvShape: batch, channels, input size, kernel (square unless kernelX is given), stride, padding) and how to run it. */
export interface ConvOptions extends ConvShape {
  bias?: Tensor | null;
  relu?: boolean;
  inLayout?: MapLayout;
  outLayout?: MapLayout;
  out?: Tensor;
  label?: string;
  /** Force the register block (tests, bench); default: 8, or 4 on a hardware target for a small convolution (CONV_SMALL_INVOCATIONS). */
  block?: ConvBlock;
  /**
   * 'gemm32' / 'gemm64': the implicit GEMM at that tile (tests, bench; not a default until a GPU has timed it against
   * the direct kernel). Needs Ci*K*K a multiple of 4 and f32 tensors.
   */
  variant?: ConvVariant;
}

export function conv2d(g: Graph, x: Tensor, w: Tensor, o: ConvOptions): Tensor {
  const { N, Ci, H, W, Co, kernel: K, stride, pad } = o;
  const KX = o.kernelX ?? K, padX = o.padX ?? pad;
  const OH = Math.floor((H + 2 * pad - K) / stride) + 1;
  const OW = Math.floor((W + 2 * padX - KX) / stride) + 1;
  if (!(OH > 0 && OW > 0)) throw new Error(`conv2d: a ${K}x${KX} kernel at stride ${stride}, padding ${pad}/${padX} leaves no output of a ${H}x${W} input`);
  const inL = o.inLayout ?? nchw(Ci, H, W);
  if (inL.sX !== 1) throw new Error('conv2d: input columns must be contiguous');
  const outL = o.outLayout ?? nchw(Co, OH, OW);
  const out = o.out ?? g.intermediate(o.label ?? 'conv', [N, Co, OH, OW]);
  const total = N * Co * OH * OW;
  // The kernel: forced (tests, bench), else the target's measured choice where this convolution allows it
  // (src/graph/autotune.ts), else the built-in rule (direct; 4x4 blocks on hardware for small convolutions).
  const shape: ConvShape = { N, Ci, H, W, Co, kernel: K, stride, pad, ...(KX !== K || padX !== pad ? { kernelX: KX, padX } : {}) };
  const forced = o.variant !== undefined || o.block !== undefined;
  const f32 = [x, w, out, o.bias].every((t) => !t || t.dtype === 'f32');
  const tuned = forced ? undefined : g.target.choose?.({ op: 'conv', shape });
  const choice = tuned && (convChoices(shape, f32) as string[]).includes(tuned) ? (tuned as ConvChoice) : undefined;
  const variant = o.variant ?? (choice === 'gemm32' || choice === 'gemm64' ? choice : 'direct');
  if (variant !== 'direct') return convGemm(g, x, w, o, variant, OH, OW, inL, outL, out, forced ? undefined : shape);
  const patch = K === stride && KX === K && pad === 0 && padX === 0 && K % 4 === 0 && [inL.offset, inL.sN, inL.sC, inL.sY].every((v) => v % 4 === 0);
  const block: ConvBlock = o.block ?? (choice === 'b4' ? 4 : choice === 'b8' ? 8 : !g.target.software && N * OH * Math.ceil(OW / 8) * Math.ceil(Co / 8) < CONV_SMALL_INVOCATIONS ? 4 : 8);
  const groups = Math.ceil((N * OH * Math.ceil(OW / block)) / GROUP);
  const gx = Math.min(groups, 65535);
  g.push({
    label: o.label ?? 'conv2d',
    kernel: KERNELS[block][patch ? 1 : 0]!,
    reads: [x, w, o.bias ?? null],
    writes: [out],
    params: [
      ['N', 'u32', N], ['Ci', 'u32', Ci], ['H', 'u32', H], ['W', 'u32', W],
      ['Co', 'u32', Co], ['OH', 'u32', OH], ['OW', 'u32', OW],
      ['KH', 'u32', K], ['KW', 'u32', KX], ['stride', 'u32', stride], ['padY', 'u32', pad], ['padX', 'u32', padX],
      ['inOff', 'u32', inL.offset], ['inSN', 'u32', inL.sN], ['inSC', 'u32', inL.sC], ['inSY', 'u32', inL.sY],
      ['outOff', 'u32', outL.offset], ['outSN', 'u32', outL.sN], ['outSC', 'u32', outL.sC], ['outSY', 'u32', outL.sY], ['outSX', 'u32', outL.sX],
      ['hasBias', 'u32', o.bias ? 1 : 0], ['relu', 'u32', o.relu ? 1 : 0],
    ],
    // x: pixel blocks (folded into z past 65535), y: channel blocks.
    dispatch: [gx, Math.ceil(Co / block), Math.ceil(groups / gx)],
    flops: 2 * total * Ci * K * KX,
    ...(forced ? {} : { tuned: { op: 'conv' as const, shape } }),
  });
  return out;
}

/** A convolution kernel choice as the autotuner names it: the direct kernel at 8x8 or 4x4 blocks, or the implicit GEMM. */
export type ConvChoice = 'b8' | 'b4' | 'gemm32' | 'gemm64';
/** The choices a convolution allows: the implicit GEMM needs Ci*K*K a multiple of 4, f32 tensors and a grid that fits. */
export function convChoices(s: ConvShape, f32 = true): ConvChoice[] {
  const KX = s.kernelX ?? s.kernel, padX = s.padX ?? s.pad;
  const M = s.N * (Math.floor((s.H + 2 * s.pad - s.kernel) / s.stride) + 1) * (Math.floor((s.W + 2 * padX - KX) / s.stride) + 1);
  const gemmOk = f32 && (s.Ci * s.kernel * KX) % 4 === 0;
  return ['b8', 'b4', ...(gemmOk && Math.ceil(M / 32) <= 65535 ? ['gemm32' as const] : []), ...(gemmOk && Math.ceil(M / 64) <= 65535 ? ['gemm64' as const] : [])];
}

/** The implicit-GEMM convolution: C [N*OH*OW, Co] = im2col(x) · Wᵀ, stored in the output layout. */
function convGemm(g: Graph, x: Tensor, w: Tensor, o: ConvOptions, variant: 'gemm32' | 'gemm64', OH: number, OW: number, inL: MapLayout, outL: MapLayout, out: Tensor, shape?: ConvShape): Tensor {
  const { N, Ci, H, W, Co, kernel: KS, stride, pad } = o;
  const KX = o.kernelX ?? KS, padX = o.padX ?? pad;
  const K = Ci * KS * KX, M = N * OH * OW;
  const tile = slicedTile(variant === 'gemm32' ? 'sk32' : 'sk64');
  if (K % 4 !== 0) throw new Error(`conv2d ${variant}: Ci*K*K = ${K} must be a multiple of 4 (the weight rows are read as vec4)`);
  if ([x, w, out, o.bias].some((t) => t && t.dtype !== 'f32')) throw new Error(`conv2d ${variant}: f32 tensors only`);
  if (Math.ceil(M / tile) > 65535) throw new Error(`conv2d ${variant}: ${M} output pixels need more than 65,535 workgroup rows`);
  g.push({
    label: o.label ?? 'conv2d',
    kernel: CONV2D_GEMM[variant],
    reads: [x, w, o.bias ?? null, null],
    writes: [out],
    params: [
      ['M', 'u32', M], ['N', 'u32', Co], ['K', 'u32', K],
      ['lda', 'u32', 0], ['ldb', 'u32', K], ['ldc', 'u32', 0], ['ldr', 'u32', 0], ['aOff', 'u32', 0], ['cOff', 'u32', 0], ['rOff', 'u32', 0],
      ['hasBias', 'u32', o.bias ? 1 : 0], ['hasRes', 'u32', 0], ['act', 'u32', o.relu ? 1 : 0],
      ['alpha', 'f32', 1], ['lnEps', 'f32', 0], ['resT', 'u32', 1], ['resCol', 'u32', 0], ['resN', 'u32', 1],
      ...CONV_PARAMS.map((f): [string, 'u32', number] => [f, 'u32', { H, W, OH, OW, KH: KS, KW: KX, stride, padY: pad, padX, inOff: inL.offset, inSN: inL.sN, inSC: inL.sC, inSY: inL.sY, outOff: outL.offset, outSN: outL.sN, outSC: outL.sC, outSY: outL.sY, outSX: outL.sX }[f]]),
    ],
    dispatch: [Math.ceil(Co / tile), Math.ceil(M / tile), 1],
    flops: 2 * M * Co * K,
    ...(shape ? { tuned: { op: 'conv' as const, shape } } : {}),
  });
  return out;
}
