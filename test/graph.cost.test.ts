// The cost model (src/graph/cost.ts) on graphs built here: FLOPs and bytes from the nodes the ops make, against
// hand-computed values on odd shapes; no GPU.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { graphCost, groupByOp, H100_PCIE, H100_SXM, H200, nodeCost, peaksForAdapter, timeNode, type DevicePeaks } from '../src/graph/cost.ts';
import { Graph } from '../src/graph/graph.ts';
import { attention, rows } from '../src/graph/ops/attention.ts';
import { gemm, linear } from '../src/graph/ops/gemm.ts';
import { conv2d } from '../src/graph/ops/conv2d.ts';
import { layerNorm } from '../src/graph/ops/layernorm.ts';
import { nchw } from '../src/graph/ops/conv2d.ts';
import { pool2d, type PoolOptions } from '../src/graph/ops/pool2d.ts';
import { ZSE_VIT_B16 } from '../src/models/zse/config.ts';
import { buildSaGraph } from '../src/models/zse/graph.ts';

test('GEMM: 2MNK FLOPs, minimum bytes in stored dtypes, panel re-reads per tile of the kernel', () => {
  const M = 197, N = 70, K = 36;
  const g = new Graph({ software: false });
  gemm(g, g.input('a', [M, K]), g.weight('w', [N, K]), { M, N, K, bias: g.weight('b', [N]), residual: g.input('r', [M, N]), variant: 'tiled' });
  const c = nodeCost(g.nodes[0]!);
  assert.is(c.flops, 2 * M * N * K);
  assert.is(c.minBytes, 4 * (M * K + N * K + N + M * N + M * N));
  // tiled: 64x64 tiles; A once per tile column (2), B and bias once per tile row (4), residual and C once.
  assert.is(c.patternBytes, 4 * (M * K * 2 + N * K * 4 + N * 4 + M * N + M * N));
  assert.is(c.peak, 'fp32');

  // The f16 option on the subgroup-matrix kernel: binary16 weight (2 bytes), tensor-core peak.
  const h = new Graph({ software: false, precision: 'f16', smat: true });
  gemm(h, h.input('a', [M, K]), h.weight('w', [N, K]), { M, N, K });
  const ch = nodeCost(h.nodes[0]!);
  assert.is(h.nodes[0]!.kernel.name.split('/')[0], 'gemm_smat');
  assert.is(ch.minBytes, 4 * M * K + 2 * N * K + 4 * M * N);
  assert.is(ch.peak, 'fp16Tensor');
  // f16 operands on the vec4 kernel still compute on the FP32 cores.
  const v = new Graph({ software: false, precision: 'f16' });
  gemm(v, v.input('a', [M, K]), v.weight('w', [N, K]), { M, N, K, variant: 'vec4' });
  assert.is(nodeCost(v.nodes[0]!).peak, 'fp32');
});

test('convolutions: the direct kernel at 8x8 and 4x4 blocks, and the implicit GEMM', () => {
  const N = 2, Ci = 8, H = 30, W = 29, Co = 37, k = 3, OH = 15, OW = 15, M = N * OH * OW, K = Ci * k * k;
  const cost = (o: object) => {
    const g = new Graph({ software: false });
    conv2d(g, g.input('x', [N, Ci, H, W]), g.weight('w', [Co, Ci, k, k]), { N, Ci, H, W, Co, kernel: k, stride: 2, pad: 1, ...o });
    return nodeCost(g.nodes[0]!);
  };
  const [b8, b4, g32] = [cost({ block: 8 }), cost({ block: 4 }), cost({ variant: 'gemm32' })];
  const minB = 4 * (N * Ci * H * W + Co * K + M * Co);
  for (const c of [b8, b4, g32]) {
    assert.is(c.flops, 2 * M * Co * K);
    assert.is(c.minBytes, minB);
  }
  // Direct: per tap b inputs per invocation and b weights per workgroup of 64 invocations.
  const inv8 = N * OH * Math.ceil(OW / 8) * Math.ceil(Co / 8), inv4 = N * OH * Math.ceil(OW / 4) * Math.ceil(Co / 4);
  assert.is(b8.patternBytes, inv8 * K * 8 * 4 + Math.ceil(N * OH * Math.ceil(OW / 8) / 64) * Math.ceil(Co / 8) * K * 8 * 4 + M * Co * 4);
  assert.is(b4.patternBytes, inv4 * K * 4 * 4 + Math.ceil(N * OH * Math.ceil(OW / 4) / 64) * Math.ceil(Co / 4) * K * 4 * 4 + M * Co * 4);
  // Implicit GEMM at 32 tiles: the im2col once per tile column (2), the weight once per tile row (15).
  assert.is(g32.patternBytes, 4 * (M * K * 2 + Co * K * Math.ceil(M / 32) + M * Co));
});

test('pooling: one op per real pixel of each window; the window re-reads in the pattern; only the pixels some window reaches at least', () => {
  const cost = (o: PoolOptions, out?: (g: Graph) => { out: ReturnType<Graph['intermediate']>; outLayout: ReturnType<typeof nchw> }) => {
    const g = new Graph({ software: false });
    pool2d(g, g.input('x', [o.N, o.C, o.H, o.W]), { ...o, ...out?.(g) });
    return nodeCost(g.nodes[0]!);
  };
  // 3x3/2 'valid' max pool of 13x9 -> 6x4: rows 6 windows of 3 (18 taps) over all 13 rows, columns 4 of 3 (12) over all 9.
  const mx = cost({ N: 2, C: 3, H: 13, W: 9, kernel: 3, stride: 2, pad: 0, mode: 'max' });
  assert.is(mx.flops, 6 * 18 * 12);
  assert.is(mx.minBytes, 4 * (6 * 13 * 9 + 6 * 6 * 4));
  assert.is(mx.patternBytes, 4 * (6 * 18 * 12 + 6 * 6 * 4));
  assert.ok(mx.modelled);
  // 'same' 3x3/1 average pool of 5x4: windows clipped at the borders, rows 2+3+3+3+2 = 13 taps, columns 2+3+3+2 = 10;
  // one divide per output.
  const av = cost({ N: 1, C: 1, H: 5, W: 4, kernel: 3, stride: 1, pad: 1, mode: 'avg' });
  assert.is(av.flops, 13 * 10 + 20);
  assert.is(av.minBytes, 4 * (20 + 20));
  assert.is(av.patternBytes, 4 * (13 * 10 + 20));
  // A stride past the kernel (2x2/3 of 5x6 -> 2x2): rows 2 and 5 are never read; written into channels 1-2 of a
  // 4-channel map, whose other channels are not counted.
  const sk = cost({ N: 1, C: 2, H: 5, W: 6, kernel: 2, stride: 3, pad: 0, mode: 'max' }, (g) => ({ out: g.intermediate('cat', [1, 4, 2, 2]), outLayout: nchw(4, 2, 2, 4) }));
  assert.is(sk.minBytes, 4 * (2 * 4 * 4 + 2 * 4));
  assert.is(sk.patternBytes, sk.minBytes);
});

test('GEMM with a fused LayerNorm (gamma, beta, two more sweeps of A per tile column) and with a residual pair table', () => {
  const M = 197, N = 70, K = 36;
  const plain = (extra: (g: Graph) => object) => {
    const g = new Graph({ software: false });
    gemm(g, g.input('a', [M, K]), g.weight('w', [N, K]), { M, N, K, residual: g.input('r', [M, N]), variant: 'tiled', ...extra(g) });
    assert.is(g.nodes.length, 1);
    return nodeCost(g.nodes[0]!);
  };
  const base = plain(() => ({}));
  const ln = plain((g) => ({ norm: { gamma: g.weight('g', [K]), beta: g.weight('b', [K]), eps: 1e-5 } }));
  assert.is(ln.minBytes, base.minBytes + 2 * K * 4);
  assert.is(ln.patternBytes, base.patternBytes + 2 * 4 * M * K * 2 + 2 * K * 4 * 4);
  // The pair table is not a LayerNorm: the same bytes as the plain GEMM (the table's few words are not modelled).
  const pt = plain((g) => ({ residualTable: { pairs: g.input('pairs', [M, 2], 'u32'), col: 1, rowsPerPair: 1 } }));
  assert.is(pt.minBytes, base.minBytes);
  assert.is(pt.patternBytes, base.patternBytes);
});

test('flash attention: reads only the q/k/v columns once at minimum; keys and values once per workgroup in its pattern', () => {
  const B = 2, H = 3, T = 37, dh = 8, D = H * dh;
  const g = new Graph({ software: false });
  const qkv = g.input('qkv', [B, T, 3 * D]);
  attention(g, qkv, qkv, qkv, { B, heads: H, Tq: T, Tk: T, headDim: dh, q: rows(T, 3 * D), k: rows(T, 3 * D, D), v: rows(T, 3 * D, 2 * D) });
  const n = g.nodes[0]!;
  const c = nodeCost(n);
  assert.is(c.flops, 4 * B * H * T * T * dh);
  assert.is(c.minBytes, 4 * (3 * B * T * D + B * T * D));
  const groups = n.dispatch[0] * n.dispatch[1] * n.dispatch[2];
  assert.is(c.patternBytes, 4 * (B * T * D + groups * T * dh * 2 + B * T * D));
  assert.ok(c.modelled);
});

test('roofline: the larger of compute and memory time; sums and groups over layers', () => {
  const d: DevicePeaks = { name: 'test', fp32: 1e12, fp16Tensor: 8e12, bandwidth: 1e11, source: 'test' };
  const g = new Graph({ software: false });
  let x = g.input('x', [5, 12]);
  for (let l = 0; l < 3; l++) {
    x = layerNorm(g, x, g.weight(`g${l}`, [12]), g.weight(`b${l}`, [12]), { kind: 'torch', eps: 1e-5, label: `L${l}.ln`, variant: 'row' });
    x = linear(g, x, `fc${l}`, 12, { label: `L${l}.fc` });
  }
  const gc = graphCost(g, d);
  assert.is(gc.dispatches, 6);
  assert.is(gc.flops, 3 * 2 * 5 * 12 * 12);
  const t = timeNode(nodeCost(g.nodes[1]!), d);
  assert.is(t.idealS, Math.max(t.flops / d.fp32, t.minBytes / d.bandwidth));
  assert.ok(Math.abs(gc.idealS - gc.nodes.reduce((a, n) => a + n.idealS, 0)) < 1e-18);
  const ops = groupByOp(gc);
  assert.equal(ops.map((o) => [o.op, o.count]), [['ln', 3], ['fc', 3]]);
  // Layer norm: three sweeps over x (5x12 f32) and gamma/beta once per workgroup (1) in its pattern.
  assert.is(ops[0]!.minBytes, 3 * 4 * (60 + 12 + 12 + 60));
  assert.is(ops[0]!.patternBytes, 3 * 4 * (3 * 60 + 12 + 12 + 60));
  // The workgroup kernel (the hardware default): one workgroup per row, so gamma/beta are read once per row (5).
  const w = new Graph({ software: false });
  layerNorm(w, w.input('x', [5, 12]), w.weight('g', [12]), w.weight('b', [12]), { kind: 'torch', eps: 1e-5 });
  assert.is(w.nodes[0]!.kernel.name, 'layernorm/wg');
  assert.is(nodeCost(w.nodes[0]!).patternBytes, 4 * (3 * 60 + 5 * (12 + 12) + 60));
});

test('ViT-B/16 SA at batch 1: ~37 GFLOP, and at least its f32 weights are moved; f16 moves fewer bytes', () => {
  const cost = (precision: 'f32' | 'f16') => {
    const g = new Graph({ software: false, precision, smat: precision === 'f16' });
    buildSaGraph(g, ZSE_VIT_B16, 1);
    return graphCost(g, H200);
  };
  const f32 = cost('f32'), f16 = cost('f16');
  assert.ok(Math.abs(f32.flops / 1e9 - 37) < 0.5, `${f32.flops / 1e9} GFLOP`);
  assert.is(f16.flops, f32.flops);
  const blockWeights = 12 * 4 * (3 * 768 * 768 + 768 * 768 + 2 * 768 * 3072);
  assert.ok(f32.minBytes > blockWeights, `${f32.minBytes} bytes`);
  assert.ok(f16.minBytes < f32.minBytes - blockWeights / 2 + 1, 'binary16 GEMM weights halve their bytes');
  assert.ok(f16.idealS < f32.idealS);
});

test('peaksForAdapter: the datasheet peaks of the GPU an adapter names, PCIe H100 apart; unknown GPUs none', () => {
  assert.is(peaksForAdapter('nvidia | hopper | NVIDIA H100 80GB HBM3 | NVIDIA: 580.159.04'), H100_SXM);
  assert.is(peaksForAdapter('nvidia | hopper | NVIDIA H100 PCIe | NVIDIA: 580'), H100_PCIE);
  assert.is(peaksForAdapter('nvidia | nvidia-h200 | NVIDIA: 580.159.04'), H200);
  assert.is(peaksForAdapter('mesa | software | llvmpipe'), undefined);
  assert.ok(H100_SXM.bandwidth < H200.bandwidth && H100_PCIE.fp32 < H100_SXM.fp32);
});

test.run();
