import type { Graph } from '../graph/graph.ts';
import type { Tensor } from '../graph/tensor.ts';
import { conv2d, nchw } from '../graph/ops/conv2d.ts';
import { pool2d } from '../graph/ops/pool2d.ts';

/**
 * InceptionV3 up to one of its `mixed` blocks, as Keras applications lays it out (the network the npm package
 * nsfwjs ships, ImageNet-trained; tools/teacher/keras_torch.py is its PyTorch reading and the parity reference).
 *
 * Every convolution is Keras's `conv2d_bn`: a bias-free convolution, a BatchNormalization without scale
 * (eps 1e-3), ReLU. The batch norm is folded into the convolution when the weights are written
 * (tools/teacher/export_front.py): weight · rsqrt(var + eps) and beta - mean · rsqrt(var + eps) as its bias, so here each
 * is one conv2d with bias and ReLU. Weight names keep Keras's numbering, `<prefix>.conv2d_<k>.weight` [Co, Ci, KH,
 * KW] and `.bias` [Co], k = 1 .. 70 in the order Keras creates them (the order below).
 *
 * A block's branches are concatenated without a copy: the last convolution (or pool) of each branch stores into
 * its channel slice of the block's output map. 'same' padding occurs only at stride 1 with odd kernels, where it
 * is symmetric; 'same' average pooling divides by the real pixels of the window (TensorFlow's rule).
 */
export const INCEPTION_BLOCKS = ['mixed0', 'mixed1', 'mixed2', 'mixed3', 'mixed4', 'mixed5', 'mixed6', 'mixed7'] as const;
export type InceptionBlock = (typeof INCEPTION_BLOCKS)[number];

export interface InceptionShape {
  /** The last block computed: its output map is the front's output. */
  end: InceptionBlock;
  /** All channel counts divided by this (tests: 16 divides every one of them); default 1. */
  widthDivisor?: number;
}

/** The smallest input side the valid convolutions and pools of the stem and of mixed3 leave a map of. */
export const INCEPTION_MIN_INPUT = 75;

/** A feature map: the tensor, its channels and its side. */
interface FMap { t: Tensor; C: number; H: number; W: number }

const outSide = (s: number, k: number, stride: number, pad: number): number => Math.floor((s + 2 * pad - k) / stride) + 1;

/** The side and channels of the front's output for an input of side S (no graph built). */
export function inceptionOutputShape(S: number, o: InceptionShape): { C: number; side: number } {
  const d = o.widthDivisor ?? 1;
  let s = outSide(S, 3, 2, 0); // conv 1 (valid, s2)
  s = outSide(s, 3, 1, 0); // conv 2 (valid)
  s = outSide(s, 3, 2, 0); // max pool (after conv 3, same)
  s = outSide(s, 3, 1, 0); // conv 5 (valid, after the 1x1 conv 4)
  s = outSide(s, 3, 2, 0); // max pool
  const blk = INCEPTION_BLOCKS.indexOf(o.end);
  if (blk >= 3) s = outSide(s, 3, 2, 0);
  const C = blk <= 2 ? [256, 288, 288][blk]! : 768;
  return { C: C / d, side: s };
}

/**
 * The front for B images x [B, 3, S, S] (RGB in [0, 1], as the Keras model was fed: nsfwjs's own scaling),
 * weights under `prefix`. Returns the `end` block's map [B, C, side, side] (NCHW).
 */
export function inceptionV3(g: Graph, x: Tensor, B: number, S: number, prefix: string, o: InceptionShape): { out: Tensor; C: number; side: number } {
  const d = o.widthDivisor ?? 1;
  if (!Number.isInteger(d) || d < 1 || [32, 48, 80, 96, 160, 384].some((c) => c % d !== 0)) throw new Error(`inception: width divisor ${d} must divide every channel count`);
  if (S < INCEPTION_MIN_INPUT) throw new Error(`inception: input side ${S} is below ${INCEPTION_MIN_INPUT}`);
  const endAt = INCEPTION_BLOCKS.indexOf(o.end);
  if (endAt < 0) throw new Error(`inception: unknown end block ${String(o.end)}`);
  let k = 0; // Keras's conv2d numbering, in creation order
  /** conv2d_bn: a convolution (BN folded: bias) + ReLU, into a new map or into channels [c0, c0+co) of `into`. */
  const cbr = (x: FMap, co: number, kh: number, kw: number, opt: { stride?: number; valid?: boolean; into?: { t: Tensor; C: number; c0: number } } = {}): FMap => {
    const name = `${prefix}.conv2d_${++k}`, stride = opt.stride ?? 1, c = co / d;
    const pad = opt.valid ? 0 : (kh - 1) / 2, padX = opt.valid ? 0 : (kw - 1) / 2;
    const H = outSide(x.H, kh, stride, pad), W = outSide(x.W, kw, stride, padX);
    const into = opt.into;
    const t = conv2d(g, x.t, g.weight(`${name}.weight`, [c, x.C, kh, kw]), {
      N: B, Ci: x.C, H: x.H, W: x.W, Co: c, kernel: kh, kernelX: kw, stride, pad, padX, bias: g.weight(`${name}.bias`, [c]), relu: true,
      inLayout: nchw(x.C, x.H, x.W), label: `inception.conv2d_${k}`,
      ...(into ? { out: into.t, outLayout: nchw(into.C, H, W, into.c0 * H * W) } : {}),
    });
    return { t, C: c, H, W };
  };
  const pool = (x: FMap, mode: 'max' | 'avg', stride: number, into?: { t: Tensor; C: number; c0: number }): FMap => {
    const pad = mode === 'avg' ? 1 : 0; // avg: 3x3 'same' at stride 1; max: 3x3 'valid'
    const H = outSide(x.H, 3, stride, pad), W = outSide(x.W, 3, stride, pad);
    const t = pool2d(g, x.t, {
      N: B, C: x.C, H: x.H, W: x.W, kernel: 3, stride, pad, mode, inLayout: nchw(x.C, x.H, x.W), label: `inception.${mode}pool`,
      ...(into ? { out: into.t, outLayout: nchw(into.C, H, W, into.c0 * H * W) } : {}),
    });
    return { t, C: x.C, H, W };
  };
  /** A block's output map [B, C, H, W] and a function giving each branch its slice, in concatenation order. */
  const block = (name: string, C: number, H: number, W: number) => {
    const t = g.intermediate(name, [B, C, H, W]);
    let c0 = 0;
    const slice = (c: number) => { const s = { t, C, c0 }; c0 += c; return s; };
    return { map: { t, C, H, W } as FMap, slice, done: () => { if (c0 !== C) throw new Error(`inception ${name}: branches fill ${c0} of ${C} channels`); } };
  };

  // The stem: 3x3 s2 valid, 3x3 valid, 3x3 same, max pool, 1x1 valid, 3x3 valid, max pool.
  let h: FMap = { t: x, C: 3, H: S, W: S };
  h = cbr(h, 32, 3, 3, { stride: 2, valid: true });
  h = cbr(h, 32, 3, 3, { valid: true });
  h = cbr(h, 64, 3, 3);
  h = pool(h, 'max', 2);
  h = cbr(h, 80, 1, 1, { valid: true });
  h = cbr(h, 192, 3, 3, { valid: true });
  h = pool(h, 'max', 2);

  // mixed0-2 (35 x 35 at 299 px): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1.
  for (let i = 0; i <= Math.min(endAt, 2); i++) {
    const poolC = i === 0 ? 32 : 64;
    const b = block(`mixed${i}`, (64 + 64 + 96 + poolC) / d, h.H, h.W);
    cbr(h, 64, 1, 1, { into: b.slice(64 / d) });
    cbr(cbr(h, 48, 1, 1), 64, 5, 5, { into: b.slice(64 / d) });
    cbr(cbr(cbr(h, 64, 1, 1), 96, 3, 3), 96, 3, 3, { into: b.slice(96 / d) });
    cbr(pool(h, 'avg', 1), poolC, 1, 1, { into: b.slice(poolC / d) });
    b.done();
    h = b.map;
  }
  if (endAt >= 3) {
    // mixed3 (to 17 x 17): 3x3 s2 valid | 1x1 -> 3x3 -> 3x3 s2 valid | max pool s2.
    const H = outSide(h.H, 3, 2, 0), W = outSide(h.W, 3, 2, 0);
    const b = block('mixed3', 384 / d + 96 / d + h.C, H, W);
    cbr(h, 384, 3, 3, { stride: 2, valid: true, into: b.slice(384 / d) });
    cbr(cbr(cbr(h, 64, 1, 1), 96, 3, 3), 96, 3, 3, { stride: 2, valid: true, into: b.slice(96 / d) });
    pool(h, 'max', 2, b.slice(h.C));
    b.done();
    h = b.map;
  }
  // mixed4-7 (17 x 17): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1.
  for (let i = 4; i <= endAt; i++) {
    const c7 = [128, 160, 160, 192][i - 4]!;
    const b = block(`mixed${i}`, 768 / d, h.H, h.W);
    cbr(h, 192, 1, 1, { into: b.slice(192 / d) });
    cbr(cbr(cbr(h, c7, 1, 1), c7, 1, 7), 192, 7, 1, { into: b.slice(192 / d) });
    cbr(cbr(cbr(cbr(cbr(h, c7, 1, 1), c7, 7, 1), c7, 1, 7), c7, 7, 1), 192, 1, 7, { into: b.slice(192 / d) });
    cbr(pool(h, 'avg', 1), 192, 1, 1, { into: b.slice(192 / d) });
    b.done();
    h = b.map;
  }
  const expect = inceptionOutputShape(S, o);
  if (expect.C !== h.C || expect.side !== h.H) throw new Error(`inception: built ${h.C}x${h.H}, expected ${expect.C}x${expect.side}`);
  return { out: h.t, C: h.C, side: h.H };
}
