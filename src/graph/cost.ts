/**
 * A cost model of a planned graph, from the nodes the engine actually builds (kernel, params, tensors): per node its
 * FLOPs, the bytes it must move at least (each input read once, each output written once) and the bytes its access
 * pattern moves (global loads and stores as the kernel issues them; a load that every invocation of a workgroup
 * makes to one address counts once; no reuse through caches between workgroups or loop iterations is assumed), and
 * the time a device would need at its peak compute and memory bandwidth. No GPU is touched.
 *
 * The roofline time of a node is max(FLOPs / peak, bytes / bandwidth); `ideal` uses the minimum bytes, `pattern`
 * the bytes of the access pattern (an upper bound, as caches catch part of the re-reads). GEMMs count against the
 * tensor-core peak where they run on the subgroup-matrix kernel (the f16 option on a device that has it) and the
 * FP32 peak otherwise; every other op
 * computes in f32 and counts against the FP32 peak.
 */
import type { Graph } from './graph.ts';
import type { OpNode } from './kernel.ts';
import type { GpuDType, Tensor } from './tensor.ts';
import { poolAxis } from './ops/pool2d.ts';

export interface DevicePeaks {
  name: string;
  /** Dense FP32 FLOP/s on the regular (non-tensor) cores. */
  fp32: number;
  /** Dense FP16 FLOP/s on tensor cores with f32 accumulation. */
  fp16Tensor: number;
  /** Memory bandwidth, bytes/s. */
  bandwidth: number;
  source: string;
}

/**
 * NVIDIA H200 SXM, from NVIDIA's H200 product datasheet (Tensor Core GPU datasheet): FP32 67 TFLOPS, FP16/BF16
 * Tensor Core 1,979 TFLOPS with sparsity, i.e. 989 dense; GPU memory bandwidth 4.8 TB/s (HBM3e).
 */
export const H200: DevicePeaks = { name: 'NVIDIA H200 SXM', fp32: 67e12, fp16Tensor: 989e12, bandwidth: 4.8e12, source: "NVIDIA H200 Tensor Core GPU product datasheet (SXM: FP32 67 TFLOPS, FP16 tensor 989 TFLOPS dense, 4.8 TB/s HBM3e)" };
/**
 * NVIDIA H100 SXM5 (80 GB HBM3: the device tool's nvidia-h100-x1, whose nvidia-smi names it "NVIDIA H100 80GB HBM3")
 * and H100 PCIe (80 GB HBM2e), from NVIDIA's H100 datasheet: FP32 67 / 51 TFLOPS, FP16 tensor 1,979 / 1,513 TFLOPS
 * with sparsity (989 / 756 dense), 3.35 / 2.0 TB/s.
 */
export const H100_SXM: DevicePeaks = { name: 'NVIDIA H100 SXM', fp32: 67e12, fp16Tensor: 989e12, bandwidth: 3.35e12, source: 'NVIDIA H100 Tensor Core GPU datasheet (SXM5: FP32 67 TFLOPS, FP16 tensor 989 TFLOPS dense, 3.35 TB/s HBM3)' };
export const H100_PCIE: DevicePeaks = { name: 'NVIDIA H100 PCIe', fp32: 51e12, fp16Tensor: 756e12, bandwidth: 2.0e12, source: 'NVIDIA H100 Tensor Core GPU datasheet (PCIe: FP32 51 TFLOPS, FP16 tensor 756 TFLOPS dense, 2.0 TB/s HBM2e)' };
/** The peaks of the GPU an adapter name names, where known (the first match: PCIe before the other H100s). */
export function peaksForAdapter(name: string): DevicePeaks | undefined {
  const known: [RegExp, DevicePeaks][] = [[/H100.*PCIe/i, H100_PCIE], [/H100/i, H100_SXM], [/H200/i, H200]];
  return known.find(([re]) => re.test(name))?.[1];
}

export interface NodeCost {
  label: string;
  kernel: string;
  flops: number;
  /** Each input read once and each output written once (the part of a tensor the op reads, in its stored dtype). */
  minBytes: number;
  /** The access pattern's global traffic (see the module comment); equals minBytes where `modelled` is false. */
  patternBytes: number;
  /** Whether patternBytes comes from the kernel's loop structure (false: no pattern model, the minimum is used). */
  modelled: boolean;
  /** Which peak the FLOPs count against. */
  peak: 'fp32' | 'fp16Tensor';
}

const esize = (d: GpuDType) => (d === 'f16' ? 2 : 4);
const bytesOf = (t: Tensor | null | undefined, elements?: number) => (t ? (elements ?? t.size) * esize(t.dtype) : 0);
const param = (n: OpNode, name: string): number => {
  const p = n.params.find(([k]) => k === name);
  if (!p) throw new Error(`${n.label}: no param ${name}`);
  return p[2];
};
const groups = (n: OpNode) => n.dispatch[0] * n.dispatch[1] * n.dispatch[2];
/** GEMM tile side per kernel variant (src/graph/ops/gemm.ts). */
const GEMM_TILE: Record<string, number> = { gemm: 64, gemm_t32: 32, gemm_vec4: 128, gemm_smat: 64, gemm_rowdot: 4, gemm_sk16: 16, gemm_sk32: 32, gemm_sk64: 64 };

/** The cost of one node. Kernels without a pattern model report their minimum bytes as the pattern. */
export function nodeCost(n: OpNode): NodeCost {
  const base = n.kernel.name.split('/')[0]!;
  const flops = n.flops ?? 0;
  const out = n.writes.reduce((a, t) => a + bytesOf(t), 0);
  let minBytes = n.reads.reduce((a, t) => a + bytesOf(t), 0) + out;
  let patternBytes = minBytes;
  let modelled = true;
  let peak: NodeCost['peak'] = 'fp32';
  if (n.gemm) {
    // reads: A, B, bias, R, then a fused LayerNorm's gamma and beta, then a residual's pair table (ops/gemm.ts).
    const [a, b, bias, res] = n.reads;
    const gamma = n.reads.length >= 6 ? n.reads[4] : null;
    const M = param(n, 'M'), N = param(n, 'N'), K = param(n, 'K');
    const c = n.writes[0]!;
    const aB = M * K * esize(a!.dtype), bB = N * K * esize(b!.dtype), cB = M * N * esize(c.dtype);
    const biasB = bias ? N * 4 : 0, resB = res ? M * N * 4 : 0;
    // A fused LayerNorm (gemm/norm_ln.wgsl): gamma and beta [K], and two more sweeps of A's rows (mean, variance)
    // each time a tile column's rows are normalised.
    const normB = gamma ? 2 * K * 4 : 0, aSweeps = gamma ? 3 : 1;
    minBytes = aB + bB + biasB + resB + normB + cB;
    // Tiled kernels stage an A row-panel and a B column-panel per output tile: A is read once per tile column,
    // B once per tile row (rowdot: each invocation reads its 4 rows of A and of B along all of K).
    const tile = GEMM_TILE[base] ?? 64;
    patternBytes = aSweeps * aB * Math.ceil(N / tile) + bB * Math.ceil(M / tile) + (biasB + normB) * Math.ceil(M / tile) + resB + cB;
    // Only the subgroup-matrix kernel runs on tensor cores; the others compute in f32 even on binary16 operands.
    peak = base === 'gemm_smat' ? 'fp16Tensor' : 'fp32';
  } else if (base === 'attention' || base === 'attention_causal') {
    // Flash kernel: each invocation owns R query rows and walks every key and value row of its head; all
    // invocations of a workgroup read the same key/value row at a step (one load per workgroup).
    const [q, k, v] = n.reads;
    const B = param(n, 'B'), H = param(n, 'H'), Tq = param(n, 'Tq'), Tk = param(n, 'Tk'), dh = param(n, 'dh');
    const o = n.writes[0]!;
    minBytes = bytesOf(q, B * Tq * H * dh) + bytesOf(k, B * Tk * H * dh) + bytesOf(v, B * Tk * H * dh) + bytesOf(o);
    patternBytes = bytesOf(q, B * Tq * H * dh) + groups(n) * Tk * dh * (esize(k!.dtype) + esize(v!.dtype)) + bytesOf(o);
  } else if (base === 'conv2d') {
    const [x, w, bias] = n.reads;
    const N = param(n, 'N'), Ci = param(n, 'Ci'), Co = param(n, 'Co'), OH = param(n, 'OH'), OW = param(n, 'OW');
    const KH = param(n, 'KH'), KW = param(n, 'KW'), H = param(n, 'H'), W = param(n, 'W');
    const inB = bytesOf(x, N * Ci * H * W);
    minBytes = inB + bytesOf(w) + bytesOf(bias) + N * Co * OH * OW * 4;
    // b output pixels x b channels per invocation (8, or 4: conv2d/b4): per tap, b inputs per invocation and b
    // weights per workgroup.
    const b = n.kernel.name.endsWith('/b4') ? 4 : 8;
    const invocations = N * OH * Math.ceil(OW / b) * Math.ceil(Co / b);
    patternBytes = invocations * Ci * KH * KW * b * 4 + groups(n) * Ci * KH * KW * b * 4 + bytesOf(bias) + N * Co * OH * OW * 4;
  } else if (base === 'conv2d_gemm') {
    // The implicit GEMM (ops/conv2d.ts): like a tiled GEMM, each tile column stages its rows of the im2col (gathered
    // from the input: K values per output pixel) and each tile row the weight panel.
    const [x, w, bias] = n.reads;
    const M = param(n, 'M'), Co = param(n, 'N'), K = param(n, 'K');
    const tile = n.kernel.name.endsWith('sk32') ? 32 : 64;
    const images = M / (param(n, 'OH') * param(n, 'OW')), Ci = K / (param(n, 'KH') * param(n, 'KW'));
    minBytes = bytesOf(x, images * Ci * param(n, 'H') * param(n, 'W')) + bytesOf(w) + bytesOf(bias) + M * Co * 4;
    patternBytes = M * K * 4 * Math.ceil(Co / tile) + bytesOf(w) * Math.ceil(M / tile) + bytesOf(bias) * Math.ceil(M / tile) + M * Co * 4;
  } else if (base === 'pool2d') {
    // One invocation per output element loads the real pixels of its window (ops/pool2d.ts poolAxis): neighbouring
    // windows overlap where the stride is less than the kernel, and those re-reads are the pattern's extra bytes.
    // At least, the input pixels some window reaches are read once; the output (a channel slice, maybe, of a larger
    // map) written once.
    const [x] = n.reads;
    const NC = param(n, 'N') * param(n, 'C'), OH = param(n, 'OH'), OW = param(n, 'OW');
    const ys = poolAxis(param(n, 'H'), param(n, 'KH'), param(n, 'SH'), param(n, 'PH'), OH);
    const xs = poolAxis(param(n, 'W'), param(n, 'KW'), param(n, 'SW'), param(n, 'PW'), OW);
    const outB = NC * OH * OW * esize(n.writes[0]!.dtype);
    minBytes = bytesOf(x, NC * ys.covered * xs.covered) + outB;
    patternBytes = bytesOf(x, NC * ys.taps * xs.taps) + outB;
  } else if (base === 'resize_bilinear') {
    // One invocation per output value reads its 4 taps: at an upsampling neighbouring outputs share taps (the
    // input once at least), at a downsampling only the taps are read.
    const [x] = n.reads;
    const NC = param(n, 'N') * param(n, 'C'), outs = NC * param(n, 'OH') * param(n, 'OW');
    minBytes = Math.min(bytesOf(x), bytesOf(x, 4 * outs)) + outs * 4;
    patternBytes = bytesOf(x, 4 * outs) + outs * 4;
  } else if (base === 'layernorm') {
    // Three sweeps over x (mean, variance, normalise); gamma and beta once per workgroup: one per WG rows (row
    // kernel) or one per row (workgroup kernel).
    const [x, gamma, beta] = n.reads;
    patternBytes = 3 * bytesOf(x) + groups(n) * (bytesOf(gamma) + bytesOf(beta)) + out;
  } else if (base === 'l2norm') {
    const rows = param(n, 'rows'), D = param(n, 'D');
    minBytes = rows * D * 4 + out;
    patternBytes = 2 * rows * D * 4 + out; // the norm, then the scaled copy
  } else if (base === 'anchor_cosine') {
    const P = param(n, 'P'), A = param(n, 'A'), B = param(n, 'B'), C = param(n, 'C');
    const [x, y] = n.reads;
    minBytes = bytesOf(x) + bytesOf(y) + out;
    // One output per invocation, reading its sketch row and photo row (A x B of them per pair).
    patternBytes = P * A * B * 2 * C * 4 + out;
  } else if (base === 'gather') {
    // Reads only the rows it copies: P rows of rowSize, plus the index column.
    const P = param(n, 'P'), rowSize = param(n, 'rowSize');
    minBytes = P * rowSize * 4 + P * 4 + out;
    patternBytes = minBytes;
  } else {
    modelled = false;
  }
  return { label: n.label, kernel: n.kernel.name, flops, minBytes, patternBytes, modelled, peak };
}

export interface TimedCost extends NodeCost {
  /** Roofline seconds with the minimum bytes, and with the access pattern's bytes. */
  idealS: number;
  patternS: number;
  /** Which bound decides idealS. */
  bound: 'compute' | 'memory';
}

export function timeNode(c: NodeCost, d: DevicePeaks): TimedCost {
  const computeS = c.flops / (c.peak === 'fp16Tensor' ? d.fp16Tensor : d.fp32);
  const memS = c.minBytes / d.bandwidth;
  return { ...c, idealS: Math.max(computeS, memS), patternS: Math.max(computeS, c.patternBytes / d.bandwidth), bound: computeS >= memS ? 'compute' : 'memory' };
}

export interface GraphCost {
  nodes: TimedCost[];
  flops: number;
  minBytes: number;
  patternBytes: number;
  /** Sum over nodes of each node's roofline time (kernels run one after another). */
  idealS: number;
  patternS: number;
  dispatches: number;
}

export function graphCost(g: Graph, d: DevicePeaks): GraphCost {
  const nodes = g.nodes.map((n) => timeNode(nodeCost(n), d));
  const sum = (f: (c: TimedCost) => number) => nodes.reduce((a, c) => a + f(c), 0);
  return {
    nodes, flops: sum((c) => c.flops), minBytes: sum((c) => c.minBytes), patternBytes: sum((c) => c.patternBytes),
    idealS: sum((c) => c.idealS), patternS: sum((c) => c.patternS), dispatches: nodes.length,
  };
}

/** A node's label without its layer prefix ("L3.fc1" -> "fc1"), to add up the same op over the layers. */
export const opName = (label: string): string => label.replace(/^L\d+\./, '');

export interface OpGroupCost {
  op: string;
  kernel: string;
  count: number;
  flops: number;
  minBytes: number;
  patternBytes: number;
  idealS: number;
  patternS: number;
  modelled: boolean;
  bound: 'compute' | 'memory' | 'mixed';
}

/** The nodes of a graph cost grouped by op name and kernel (one row per op of a ViT block, summed over layers). */
export function groupByOp(c: GraphCost): OpGroupCost[] {
  const m = new Map<string, OpGroupCost>();
  for (const n of c.nodes) {
    const key = `${opName(n.label)}\u0000${n.kernel}`;
    let r = m.get(key);
    if (!r) m.set(key, (r = { op: opName(n.label), kernel: n.kernel, count: 0, flops: 0, minBytes: 0, patternBytes: 0, idealS: 0, patternS: 0, modelled: n.modelled, bound: n.bound }));
    r.count++;
    r.flops += n.flops;
    r.minBytes += n.minBytes;
    r.patternBytes += n.patternBytes;
    r.idealS += n.idealS;
    r.patternS += n.patternS;
    if (r.bound !== n.bound) r.bound = 'mixed';
  }
  return [...m.values()];
}
