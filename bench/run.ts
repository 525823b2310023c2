// sketchgpu benchmarks: kernels (GPU timestamps when the adapter has them, else wall time per dispatch) and end to
// end (SA img/s at several batch sizes, CA+RN pairs/s, index build img/s, query latency), with PyTorch as a peer
// in the same run. Prints a table, or JSON with --json. Usage: npm run bench [-- --json] [--model vitb|small]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeGpu } from '../src/graph/node-gpu.ts';
import { GemmAutotune } from '../src/graph/autotune.ts';
import { WeightStore } from '../src/gpu/weights.ts';
import { Executor } from '../src/graph/executor.ts';
import { Graph } from '../src/graph/graph.ts';
import { attention, rows } from '../src/graph/ops/attention.ts';
import { conv2d } from '../src/graph/ops/conv2d.ts';
import { gemm, type GemmVariant } from '../src/graph/ops/gemm.ts';
import { probeSubgroupMatrixGemm } from '../src/graph/smat.ts';
import { layerNorm } from '../src/graph/ops/layernorm.ts';
import { pool2d } from '../src/graph/ops/pool2d.ts';
import { topk } from '../src/graph/ops/topk.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import type { HostTensor } from '../src/core/tensor.ts';
import { ZSE_VIT_B16, type ZseConfig } from '../src/models/zse/config.ts';
import { ZseModel } from '../src/models/zse/model.ts';
import { buildPairGraph, buildSaGraph } from '../src/models/zse/graph.ts';
import { ModelRuntime } from '../src/models/runtime.ts';
import { META_CA_HEADS, META_SA_HEADS } from '../src/models/zse/weights.ts';
import { listDataset } from '../src/retrieval/eval.ts';
import { encodeFiles } from '../src/retrieval/files.ts';
import { GallerySearch } from '../src/retrieval/search.ts';
import { randomTensor, randomWeights, rnd, SMALL, uniform } from './common.ts';
import { measureHost, type HostCost } from './host.ts';
import { costModel } from './cost.ts';
import { H200, peaksForAdapter } from '../src/graph/cost.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean' }, model: { type: 'string' }, iters: { type: 'string' }, 'no-peers': { type: 'boolean' },
    only: { type: 'string' }, precision: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    timing: { type: 'string' }, gc: { type: 'boolean' },
  },
});
if (args.help) {
  console.log(`Usage: npm run bench [-- options]
  --json            print one JSON object (adapter, kernels, end_to_end, peers, ratios)
  --model <m>       vitb (ViT-B/16, the default on hardware adapters) or small (the default on software adapters)
  --iters <n>       timed iterations per measurement (default 20 on hardware, 3 on software)
  --only <what>     a comma-separated list of sections (default all): kernels, e2e, host (the CPU cost of
                    encoding and submitting one SA forward and one CA+RN batch, GPU work excluded), cost (the
                    ViT-B/16 cost model: FLOPs and bytes per kernel, time at this GPU's datasheet peaks where known (H100 SXM / PCIe, H200), else an H200's; needs no GPU work)
  --timing <t>      kernels section: gpu (timestamps where the adapter has them, the default) or wall (submit,
                    then await queue.onSubmittedWorkDone, per run)
  --gc              force a garbage collection between timed runs (run node with --expose-gc): a stress test
                    for dawn.node's event loop (docs/dawn-node.md)
  --precision <p>   both (default): end-to-end SA and CA+RN also with the f16 option (GEMM weights stored as
                    binary16, operands rounded, f32 accumulation), beside f32; f32: f32 only
  --no-peers        skip the peers (PyTorch, ONNX Runtime WebGPU)`);
  process.exit(0);
}

/** Ops that would make a "WebGPU" number a CPU one if ORT ran them on its CPU EP. */
const HEAVY_OPS = /^(MatMul|Gemm|Conv|Softmax|LayerNormalization|ReduceMean|Sqrt|Pow|Erf|Relu|Sigmoid|Gelu|Transpose|ReduceL2|Attention|MultiHeadAttention)$/;

const SECTIONS = ['kernels', 'e2e', 'host', 'cost'];
const only = new Set(args.only ? args.only.split(',') : SECTIONS);
for (const s of only) if (!SECTIONS.includes(s)) { console.error(`--only ${s}: use ${SECTIONS.join(', ')}`); process.exit(2); }
if (args.timing !== undefined && args.timing !== 'gpu' && args.timing !== 'wall') { console.error(`--timing ${args.timing}: use gpu or wall`); process.exit(2); }
const gcHook = (globalThis as { gc?: () => void }).gc;
if (args.gc && !gcHook) { console.error('--gc needs node --expose-gc'); process.exit(2); }
/** Called between timed runs with --gc (outside the timed spans). */
const maybeGc = args.gc ? gcHook : undefined;

const ctx = await nodeGpu({ profile: true });
const software = /llvmpipe|swiftshader|lavapipe|software/i.test(ctx.adapterName);
const cfg = (args.model ?? (software ? 'small' : 'vitb')) === 'vitb' ? ZSE_VIT_B16 : SMALL;
const iters = Number(args.iters ?? (software ? 3 : 20));
/** This adapter's datasheet peaks where the name is known (src/graph/cost.ts): fp32 FLOP/s, and dense fp16 tensor-core FLOP/s for the f16 rows. */
const adapterPeaks = peaksForAdapter(ctx.adapterName);
const peak = adapterPeaks?.fp32;
const peakF16 = adapterPeaks?.fp16Tensor;
/** Whether the subgroup-matrix f16 GEMM runs here, and why not. */
const smatCheck = await probeSubgroupMatrixGemm(ctx);
const log = (s: string) => { if (!args.json) console.error(s); };

async function timeRun(fn: () => Promise<unknown>, n = iters, warm = 1): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  if (maybeGc) {
    // Each run timed alone, with a collection before it (outside the timed span).
    let total = 0;
    for (let i = 0; i < n; i++) {
      maybeGc();
      const t0 = performance.now();
      await fn();
      total += performance.now() - t0;
    }
    return total / n;
  }
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t0) / n;
}

/** A kernel row: its time, or (ms and gflops null) the error that kept it from running, so one kernel a driver rejects does not cost the section's other rows. */
interface KernelRow { name: string; shape: string; ms: number | null; gflops: number | null; peak_fraction?: number; timing?: 'gpu-timestamps' | 'wall'; error?: string }
const kernels: KernelRow[] = [];

async function benchKernel(name: string, shape: string, build: (g: Graph, w: WeightStore) => void, inputs: Record<string, Float32Array | Uint32Array>, o: { f16?: boolean } = {}) {
  try {
    await benchKernelOnce(name, shape, build, inputs, o);
  } catch (e) {
    const error = (e as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' | ').slice(0, 2000);
    kernels.push({ name, shape, ms: null, gflops: null, error });
    log(`  ${name.padEnd(28)} ${shape.padEnd(28)} failed: ${error.slice(0, 200)}`);
  }
}

async function benchKernelOnce(name: string, shape: string, build: (g: Graph, w: WeightStore) => void, inputs: Record<string, Float32Array | Uint32Array>, o: { f16?: boolean }) {
  const store = new WeightStore(ctx.device);
  const g = new Graph({ software: ctx.software, ...(o.f16 ? { precision: 'f16' as const, smat: smatCheck?.ok } : {}) });
  build(g, store);
  let ex: Executor;
  try {
    ex = await Executor.create(ctx, g, store);
  } catch (e) {
    store.destroy();
    throw e;
  }
  const flops = g.nodes.reduce((a, n) => a + (n.flops ?? 0), 0);
  let ms: number;
  let timing: KernelRow['timing'];
  if (ctx.features.timestamp && args.timing !== 'wall') {
    await ex.profile(inputs, 2);
    ms = (await ex.profile(inputs, iters)).reduce((a, t) => a + t.ms, 0);
    timing = 'gpu-timestamps';
  } else {
    ex.writeInputs(inputs);
    ms = await timeRun(async () => {
      ex.submitForward();
      await ctx.device.queue.onSubmittedWorkDone();
    });
    timing = 'wall';
  }
  const gflops = flops / ms / 1e6;
  const rowPeak = o.f16 ? peakF16 : peak;
  kernels.push({ name, shape, ms, gflops, ...(rowPeak ? { peak_fraction: (gflops * 1e9) / rowPeak } : {}), timing });
  log(`  ${name.padEnd(28)} ${shape.padEnd(28)} ${ms.toFixed(3).padStart(9)} ms ${gflops.toFixed(1).padStart(8)} GFLOP/s`);
  ex.destroy();
  store.destroy();
}

const D = cfg.dim, T = 1 + cfg.grid ** 2, S = cfg.imageSize;
const up = (w: WeightStore, name: string, shape: number[], seed: number) => w.upload(name, randomTensor(shape, seed));

if (only.has('kernels')) {
  log(`kernels (${cfg === SMALL ? 'small config' : 'ViT-B/16'}, ${ctx.features.timestamp && args.timing !== 'wall' ? 'GPU timestamps' : 'wall time per dispatch: this adapter has no timestamp queries'})`);
  // Each GEMM shape with each kernel variant (side by side: the default picks among them by adapter and shape),
  // for one image's tokens and, on hardware adapters, a batch of 128 images.
  for (const M of ctx.software ? [T] : [T, 128 * T]) {
    for (const [label, N, K] of [['gemm qkv', 3 * D, D], ['gemm out', D, D], ['gemm fc1 (gelu)', cfg.mlpDim, D], ['gemm fc2 (+res)', D, cfg.mlpDim]] as const) {
      // f32 with each kernel, then the f16 option (binary16 weights) with the GPU kernels: vec4, sk32, and smat
      // where the subgroup-matrix kernel passed its check on this device (src/graph/smat.ts).
      const runs: [GemmVariant, boolean][] = [['tiled', false], ['tiled32', false], ['sk16', false], ['sk32', false], ['sk64', false], ['vec4', false], ['rowdot', false], ['vec4', true], ['sk32', true], ...(smatCheck?.ok ? [['smat', true] as [GemmVariant, boolean]] : [])];
      for (const [variant, f16] of runs) {
        await benchKernel(`${label} [${variant}${f16 ? ' f16' : ''}]`, `${M}x${N}x${K}`, (g, w) => {
          w.upload('w', randomTensor([N, K], 3), [f16 ? 'f16' : 'f32']);
          up(w, 'b', [N], 4);
          const a = g.input('a', [M, K]);
          const res = label.includes('res') ? g.input('r', [M, N]) : null;
          g.output('y', gemm(g, a, g.weight('w', [N, K]), { M, N, K, bias: g.weight('b', [N]), act: label.includes('gelu') ? 'gelu' : 'none', residual: res ?? undefined, variant }));
        }, label.includes('res') ? { a: rnd(M * K, 5), r: rnd(M * N, 6) } : { a: rnd(M * K, 5) }, { f16 });
      }
    }
  }
  const dh = D / cfg.saHeads;
  // Both attention programs side by side (the split one is the default where it applies: dh >= 36).
  for (const variant of ['flash', 'split'] as const) {
    await benchKernel(`attention SA [${variant}]`, `${cfg.saHeads}x${T}x${T}x${dh}`, (g) => {
      const qkv = g.input('qkv', [T, 3 * D]);
      g.output('o', attention(g, qkv, qkv, qkv, { B: 1, heads: cfg.saHeads, Tq: T, Tk: T, headDim: dh, q: rows(T, 3 * D), k: rows(T, 3 * D, D), v: rows(T, 3 * D, 2 * D), scale: 1 / Math.sqrt(dh), variant }));
    }, { qkv: rnd(T * 3 * D, 7) });
  }
  const dk = D / cfg.caHeads;
  for (const variant of ['flash', 'split'] as const) {
    await benchKernel(`attention CA x16 pairs [${variant}]`, `16x${cfg.caHeads}x${T}x${T}x${dk}`, (g) => {
      const q = g.input('q', [16, T, D]);
      g.output('o', attention(g, q, q, q, { B: 16, heads: cfg.caHeads, Tq: T, Tk: T, headDim: dk, q: rows(T, D), k: rows(T, D), v: rows(T, D), divisor: Math.sqrt(dk), variant }));
    }, { q: rnd(16 * T * D, 8) });
  }
  const [c0, c1] = cfg.stemChannels as [number, number];
  // Both register blocks side by side at one image (8x8: CPU drivers' and large convolutions'; 4x4: a hardware
  // target's default for small ones, ops/conv2d.ts CONV_SMALL_INVOCATIONS).
  // And the implicit GEMM (ops/conv2d.ts 'gemm32' / 'gemm64', not a default yet) where Ci*K*K allows it (not the 7x7
  // stem conv: 147).
  for (const [block, variant] of [[8, 'direct'], [4, 'direct'], [8, 'gemm32'], [8, 'gemm64']] as const) {
    const tag = variant !== 'direct' ? ` [${variant}]` : block === 4 ? ' [b4]' : ' [b8]';
    if (variant === 'direct') await benchKernel(`conv stem 7x7/s2${tag}`, `3->${c0} @${S}`, (g, w) => {
      up(w, 'w', [c0, 3, 7, 7], 9);
      g.output('y', conv2d(g, g.input('x', [1, 3, S, S]), g.weight('w', [c0, 3, 7, 7]), { N: 1, Ci: 3, H: S, W: S, Co: c0, kernel: 7, stride: 2, pad: 3, relu: true, block }));
    }, { x: rnd(3 * S * S, 10) });
    const S1 = S / 2;
    await benchKernel(`conv stem 3x3/s2${tag}`, `${c0}->${c1} @${S1}`, (g, w) => {
      up(w, 'w', [c1, c0, 3, 3], 17);
      g.output('y', conv2d(g, g.input('x', [1, c0, S1, S1]), g.weight('w', [c1, c0, 3, 3]), { N: 1, Ci: c0, H: S1, W: S1, Co: c1, kernel: 3, stride: 2, pad: 1, relu: true, block, variant }));
    }, { x: rnd(c0 * S1 * S1, 18) });
    await benchKernel(`conv patch 16x16/s16${tag}`, `3->${D} @${S}`, (g, w) => {
      up(w, 'w', [D, 3, 16, 16], 11);
      g.output('y', conv2d(g, g.input('x', [1, 3, S, S]), g.weight('w', [D, 3, 16, 16]), { N: 1, Ci: 3, H: S, W: S, Co: D, kernel: 16, stride: 16, pad: 0, block, variant }));
    }, { x: rnd(3 * S * S, 12) });
  }
  // Both variants side by side (one invocation per row: software adapters' default; one workgroup per row: GPUs').
  for (const kind of ['torch', 'ca'] as const) for (const variant of ['row', 'workgroup'] as const) {
    await benchKernel(`layernorm ${kind} [${variant}]`, `${T}x${D}`, (g, w) => {
      up(w, 'g', [D], 13);
      up(w, 'b', [D], 14);
      g.output('y', layerNorm(g, g.input('x', [T, D]), g.weight('g', [D]), g.weight('b', [D]), { kind, eps: kind === 'ca' ? 1e-6 : 1e-5, variant }));
    }, { x: rnd(T * D, 15) });
  }
  // InceptionV3's (Keras, 299x299) pools at one image: the stem's 'valid' 3x3/2 max pool and a mixed block's
  // 'same' 3x3/1 average pool (ops/pool2d.ts; one compare or add per real pixel of a window counts as a FLOP).
  for (const [label, mode, C, S, s, p] of [['pool max 3x3/s2', 'max', 64, 147, 2, 0], ['pool avg 3x3/s1 same', 'avg', 192, 35, 1, 1]] as const) {
    await benchKernel(label, `${C} @${S}`, (g) => {
      g.output('y', pool2d(g, g.input('x', [1, C, S, S]), { N: 1, C, H: S, W: S, kernel: 3, stride: s, pad: p, mode }));
    }, { x: rnd(C * S * S, 19) });
  }
  const N = software ? 100_000 : 1_000_000;
  await benchKernel('top-k (k=100)', `1x${N}`, (g) => {
    const r = topk(g, g.input('s', [1, N]), 1, N, 100);
    g.output('v', r.values);
  }, { s: rnd(N, 16) });
}

const e2e: Record<string, unknown> = {};
if (args.precision !== undefined && args.precision !== 'f32' && args.precision !== 'both') {
  console.error(`--precision ${args.precision}: use f32 or both`);
  process.exit(2);
}
const withF16 = args.precision !== 'f32';
let weights: Map<string, HostTensor> | undefined;
const batches = software ? [1, 8] : [1, 32, 128];
/** The ORT peer's parity data: the e2e run's own inputs and outputs. */
let parityData: Map<string, HostTensor> | undefined;
if (only.has('e2e')) {
  log(`\nend to end (${cfg === SMALL ? 'small config' : 'ViT-B/16'}, random weights, wall time incl. upload and read-back)`);
  weights = randomWeights(cfg);
  const model = ZseModel.create(ctx, cfg, weights, { maxBatch: 128, maxPairs: 64 });
  const timeSa = async (m: ZseModel, tag: string) => {
    const sa: Record<string, { ms: number; img_per_s: number }> = {};
    for (const B of batches) {
      if (B > m.maxBatch) continue;
      const x = rnd(B * 3 * S * S, 20 + B);
      const ms = await timeRun(() => m.encode(x, B), B >= 32 ? Math.max(1, Math.ceil(iters / 4)) : iters);
      sa[`batch_${B}`] = { ms, img_per_s: (1000 * B) / ms };
      log(`  SA${tag} batch ${String(B).padEnd(4)} ${ms.toFixed(2).padStart(10)} ms  ${((1000 * B) / ms).toFixed(1).padStart(8)} img/s`);
    }
    return sa;
  };
  e2e.sa = await timeSa(model, '');
  if (!software) {
    // The same forwards with each block's pre-norm LayerNorms fused into qkv and fc1 at every batch, and apart at
    // every batch (by default they are fused up to NORM_FUSE_MAX_ROWS rows): what fusing gains or costs on this GPU.
    for (const fuseNorm of [true, false]) {
      const m = ZseModel.create(ctx, cfg, weights, { maxBatch: 128, maxPairs: 64, fuseNorm });
      e2e[fuseNorm ? 'sa_ln_fused' : 'sa_ln_apart'] = await timeSa(m, fuseNorm ? ' LN fused' : ' LN apart');
      await m.destroy();
    }
    // And with the built-in kernel rules instead of the autotuner's picks (where it is on): what measuring per shape
    // gains on this GPU (GEMM, convolution and attention kernels).
    if (ctx.gemmTuner) {
      const m = ZseModel.create({ ...ctx, gemmTuner: undefined }, cfg, weights, { maxBatch: 128, maxPairs: 64 });
      e2e.sa_builtin = await timeSa(m, ' built-in kernels');
      await m.destroy();
    }
  }
  const ns = 8, np = 8, P = ns * np;
  // Image-like inputs with real variation (rnd's 1-D values repeat every 7), so the peers' parity check means something.
  const skImages = uniform(ns * 3 * S * S, 30);
  const sk = await model.encode(skImages, ns, { tokens: true });
  const pairs = new Uint32Array(2 * P);
  for (let i = 0; i < P; i++) { pairs[2 * i] = i % ns; pairs[2 * i + 1] = Math.floor(i / ns); }
  const cached = { sketch: await model.projections(sk.tokens!, ns, 'sketch'), photo: await model.projections(sk.tokens!, np, 'photo') };
  const rnMs = await timeRun(() => model.relation(sk.tokens!, ns, sk.tokens!, np, pairs, cached));
  const scores = await model.relation(sk.tokens!, ns, sk.tokens!, np, pairs, cached);
  parityData = new Map<string, HostTensor>([
    ['images', { dtype: 'f32', shape: [ns, 3, S, S], data: skImages }],
    ['tokens', { dtype: 'f32', shape: [ns, T, D], data: sk.tokens! }],
    ['score', { dtype: 'f32', shape: [P], data: scores }],
    ['cos', { dtype: 'f32', shape: [P, cfg.anchorGrid ** 4], data: (await model.debugRelation(sk.tokens!, ns, sk.tokens!, np, pairs)).cos! }],
  ]);
  const rnMsUncached = await timeRun(() => model.relation(sk.tokens!, ns, sk.tokens!, np, pairs));
  e2e.ca_rn = { pairs: P, ms: rnMs, pairs_per_s: (1000 * P) / rnMs, note: 'per-image CA projections cached (zse-sbir.md §13)', uncached_pairs_per_s: (1000 * P) / rnMsUncached };
  log(`  CA+RN ${P} pairs  ${rnMs.toFixed(2).padStart(10)} ms  ${((1000 * P) / rnMs).toFixed(1).padStart(8)} pairs/s (projections cached; ${((1000 * P) / rnMsUncached).toFixed(1)} pairs/s without)`);
  e2e.weight_mib = { f32: model.weightBytes / 2 ** 20 };
  if (withF16) {
    // The f16 option on the same weights and inputs: GEMM weights stored as binary16, operands rounded, f32 sums.
    const m16 = ZseModel.create(ctx, cfg, weights, { maxBatch: 128, maxPairs: 64, precision: 'f16' });
    (e2e.weight_mib as Record<string, number>).f16 = m16.weightBytes / 2 ** 20;
    e2e.sa_f16 = await timeSa(m16, ' f16');
    const sk16 = await m16.encode(skImages, ns, { tokens: true });
    const cached16 = { sketch: await m16.projections(sk16.tokens!, ns, 'sketch'), photo: await m16.projections(sk16.tokens!, np, 'photo') };
    const ms16 = await timeRun(() => m16.relation(sk16.tokens!, ns, sk16.tokens!, np, pairs, cached16));
    const scores16 = await m16.relation(sk16.tokens!, ns, sk16.tokens!, np, pairs, cached16);
    let cos = 1;
    for (let i = 0; i < ns; i++) {
      let c = 0;
      for (let d = 0; d < D; d++) c += sk.emb[i * D + d]! * sk16.emb[i * D + d]!;
      cos = Math.min(cos, c);
    }
    const scoreDiff = scores.reduce((m, v, i) => Math.max(m, Math.abs(v - scores16[i]!)), 0);
    e2e.ca_rn_f16 = { pairs: P, ms: ms16, pairs_per_s: (1000 * P) / ms16 };
    e2e.f16_accuracy = { min_cls_cosine_to_f32: cos, rn_score_max_abs_diff: scoreDiff };
    log(`  CA+RN f16 ${P} pairs ${ms16.toFixed(2).padStart(10)} ms  ${((1000 * P) / ms16).toFixed(1).padStart(8)} pairs/s (projections cached)`);
    log(`  f16 vs f32 on these inputs: min cls cosine ${cos.toFixed(7)}, RN score max |diff| ${scoreDiff.toExponential(2)}; weights on the GPU ${(model.weightBytes / 2 ** 20).toFixed(1)} -> ${(m16.weightBytes / 2 ** 20).toFixed(1)} MiB`);
    await m16.destroy();
  }
  const sample = join(ROOT, 'web', 'sample', 'photo');
  if (existsSync(sample)) {
    const files = listDataset(join(ROOT, 'web', 'sample')).photos.files.slice(0, software ? 16 : 84);
    const t0 = performance.now();
    await encodeFiles(model, files, 'photo');
    const s = (performance.now() - t0) / 1000;
    e2e.index = { images: files.length, seconds: s, img_per_s: files.length / s, note: 'JPEG decode + exact preprocessing + SA, web/sample photos' };
    log(`  index build      ${files.length} photos ${s.toFixed(2)} s  ${(files.length / s).toFixed(1)} img/s (decode + preprocess + SA)`);
  }
  const query: Record<string, { ms: number }> = {};
  for (const n of software ? [10_000, 100_000] : [10_000, 1_000_000]) {
    const emb = rnd(n * D, 40);
    const search = GallerySearch.create(ctx, emb, n, D);
    const q = rnd(D, 41);
    const ms = await timeRun(() => search.search(q, 1, 10));
    query[`n_${n}`] = { ms };
    log(`  query top-10 over ${n.toLocaleString('en-US').padEnd(9)} ${ms.toFixed(2).padStart(8)} ms`);
    search.destroy();
  }
  e2e.query = query;
  await model.destroy();
}

// Host cost per forward (bench/host.ts): the CPU time to encode and submit one SA forward (batch 1) and one CA+RN
// batch (the e2e section's 8 sketches x 8 photos, 64 pairs, cached projections; on CPU drivers 2 x 4, 8 pairs: the
// same dispatches, as every op of the pair graph is one dispatch whatever the pair count), the GPU's work excluded.
const host: Record<string, unknown> = {};
if (only.has('host')) {
  const name = cfg === SMALL ? 'small config' : 'ViT-B/16';
  log(`\nhost cost per forward (${name}, random weights: createCommandEncoder + pass + finish + queue.submit, GPU work excluded)`);
  const w = randomWeights(cfg);
  const [ns, np] = software ? [2, 4] : [8, 8], P = ns * np;
  const pairs = new Uint32Array(2 * P).map((_, i) => (i % 2 === 0 ? (i / 2) % ns : Math.floor(i / 2 / ns)));
  const tok = (n: number, seed: number) => rnd(n * T * D, seed);
  const cases: [string, (g: Graph) => void, Record<string, Float32Array | Uint32Array>][] = [
    ['sa_batch_1', (g) => buildSaGraph(g, cfg, 1), { image: rnd(3 * S * S, 50) }],
    [`ca_rn_${P}_pairs`, (g) => buildPairGraph(g, cfg, ns, np, P, { cachedProjections: true }), {
      sketchTokens: tok(ns, 51), photoTokens: tok(np, 52), pairs,
      sketchQ1: tok(ns, 53), sketchV1: tok(ns, 54), sketchK2: tok(ns, 55), photoQ2: tok(np, 56), photoV2: tok(np, 57), photoK1: tok(np, 58),
    }],
  ];
  for (const precision of withF16 ? ['f32', 'f16'] as const : ['f32'] as const) {
    const rt = ModelRuntime.create(ctx, w, precision, () => cases.map(([, build]) => build));
    for (const [key, build, inputs] of cases) {
      const ex = await rt.executor(`${key}`, build);
      const r = await measureHost(ctx, ex, inputs, { encodeIters: 200, submitIters: iters, gc: maybeGc });
      host[`${key}${precision === 'f16' ? '_f16' : ''}`] = r;
      logHost(key + (precision === 'f16' ? ' f16' : ''), r);
    }
    await rt.destroy();
  }
  // On a CPU driver the engine builds the software graph (rowdot GEMMs, LayerNorms apart). The host cost that
  // matters is a GPU's, so the SA forward is also measured as a hardware adapter's graph (tiled GEMMs; each block's
  // pre-norm LayerNorms fused into qkv and fc1, and, beside it in the same run, apart), encoded and submitted here;
  // its GPU work, slow on this driver, is excluded as always.
  if (software) {
    const hw = { ...ctx, software: false, gemmTuner: undefined };
    const store = new WeightStore(ctx.device);
    for (const [name, t] of w) store.upload(name, t);
    const [key, , inputs] = cases[0]!;
    for (const fuseNorm of [true, false]) {
      const g = new Graph({ software: false, fuseNorm });
      buildSaGraph(g, cfg, 1);
      const ex = await Executor.create(hw, g, store);
      const r = await measureHost(hw, ex, inputs, { encodeIters: 200, submitIters: iters, gc: maybeGc });
      const label = `${key}_gpu_graph${fuseNorm ? '' : '_ln_apart'}`;
      host[label] = r;
      logHost(label, r);
      ex.destroy();
    }
    store.destroy();
  }
}
function logHost(label: string, r: HostCost): void {
  log(`  ${label.padEnd(20)} encode ${r.encode_ms.median.toFixed(3)} ms (min ${r.encode_ms.min.toFixed(3)}), encode+submit ${r.encode_submit_ms.median.toFixed(3)} ms (min ${r.encode_submit_ms.min.toFixed(3)}); ` +
    `submit alone ${r.submit_ms.median.toFixed(3)} ms; ${r.dispatches} dispatches, ${r.set_pipeline} setPipeline, ${r.set_bind_group} setBindGroup, ${r.bind_groups_created_per_forward} bind groups created per forward; upload ${r.upload_ms.median.toFixed(3)} ms for ${(r.input_bytes / 1024).toFixed(0)} KiB`);
}

// The ViT-B/16 cost model (bench/cost.ts): per kernel FLOPs and bytes from the graphs the engine builds, the time a
// GPU needs at its peaks (this adapter's where known, else an H200's), beside the targets and (when the e2e section ran ViT-B/16 here) what this run measured.
let cost: ReturnType<typeof costModel> | undefined;
if (only.has('cost')) {
  // At this adapter's peaks where they are known (an H100 or H200), else an H200's (the targets' GPU class).
  cost = costModel(adapterPeaks ?? H200);
  if (cfg === ZSE_VIT_B16 && e2e.sa) {
    type R = { ms: number; img_per_s?: number; pairs_per_s?: number };
    const m = (o: unknown, k?: string) => (k ? (o as Record<string, R> | undefined)?.[k] : (o as R | undefined));
    const measured: Record<string, R | undefined> = {
      sa_b1_f32: m(e2e.sa, 'batch_1'), sa_b128_f32: m(e2e.sa, 'batch_128'), sa_b1_f16: m(e2e.sa_f16, 'batch_1'), sa_b128_f16: m(e2e.sa_f16, 'batch_128'),
      ca_rn_64_f32: m(e2e.ca_rn), ca_rn_64_f16: m(e2e.ca_rn_f16),
    };
    for (const [k, r] of Object.entries(measured)) {
      const c = cost.cases[k] as (typeof cost.cases)[string] & { measured?: unknown };
      if (c && r) c.measured = { adapter: ctx.adapterName, ms: r.ms, per_s: r.img_per_s ?? r.pairs_per_s, ideal_over_measured: c.ideal_ms / r.ms };
    }
  }
  log(`\ncost model (ViT-B/16 graphs as built for a hardware adapter, ${cost.device.name} peaks: ${cost.device.source})`);
  for (const [k, c] of Object.entries(cost.cases)) {
    log(`  ${k.padEnd(14)} ${c.dispatches} dispatches, ${c.gflop.toFixed(1)} GFLOP, ${c.min_mb.toFixed(1)} MB min / ${c.pattern_mb.toFixed(1)} MB pattern: ${c.ideal_ms.toFixed(3)} ms ideal (${c.ideal_per_s.toFixed(0)} ${c.unit}/s), ${c.pattern_ms.toFixed(3)} ms with pattern bytes; flagged: ${c.flagged.map((f) => `${f.op} ${f.pattern_over_min.toFixed(1)}x`).join(', ') || 'none'}`);
  }
}

let peers: Record<string, unknown> | undefined;
const ratios: Record<string, number> = {};
// The autotuner's picks against the built-in kernel rules (> 1: measuring per shape pays on this adapter).
for (const [k, v] of Object.entries((e2e.sa_builtin ?? {}) as Record<string, { img_per_s: number }>)) {
  const tuned = (e2e.sa as Record<string, { img_per_s: number }> | undefined)?.[k];
  if (tuned) ratios[`sa_${k}_tuned_vs_builtin`] = tuned.img_per_s / v.img_per_s;
}
// Fused pre-norm LayerNorms against the same forwards with them apart (> 1: fusing is faster on this adapter).
for (const [k, v] of Object.entries((e2e.sa_ln_apart ?? {}) as Record<string, { img_per_s: number }>)) {
  const fused = (e2e.sa_ln_fused as Record<string, { img_per_s: number }> | undefined)?.[k];
  if (fused) ratios[`sa_${k}_ln_fused_vs_apart`] = fused.img_per_s / v.img_per_s;
}
/** The PyTorch peer's interpreter: SKETCHGPU_PYTHON (e.g. a CUDA torch's python3 on a GPU machine), else Debian's. */
const py = process.env.SKETCHGPU_PYTHON ?? '/usr/bin/python3';
const modelName = cfg === SMALL ? 'small' : 'vitb';
const onnxDir = join(ROOT, '.cache', 'onnx');
const lastLine = (s: string) => s.trim().split('\n').pop() ?? '';
/** The bench's weights as a safetensors file, so both peers load exactly the numbers sketchgpu ran. */
function writeBenchWeights(): { path: string; sha256: string } {
  mkdirSync(onnxDir, { recursive: true });
  const bytes = writeSafetensors(weights!, { [META_SA_HEADS]: String(cfg.saHeads), [META_CA_HEADS]: String(cfg.caHeads) });
  const path = join(onnxDir, `bench-${modelName}.weights.safetensors`);
  writeFileSync(path, bytes);
  return { path, sha256: createHash('sha256').update(bytes).digest('hex') };
}
const benchWeights = !args['no-peers'] && only.has('e2e') && weights ? writeBenchWeights() : undefined;
weights = undefined;

if (benchWeights) {
  const r = spawnSync(py, [join(ROOT, 'tools', 'bench', 'bench_torch.py'), '--model', modelName, '--weights', benchWeights.path, '--iters', String(iters), '--batches', batches.join(',')], { encoding: 'utf8' });
  if (r.status === 0) {
    peers = { pytorch: JSON.parse(lastLine(r.stdout)) };
    const pt = (peers.pytorch as { sa: Record<string, { img_per_s: number }>; ca_rn: { pairs_per_s: number } });
    const sa = e2e.sa as Record<string, { img_per_s: number }>;
    for (const k of Object.keys(sa)) if (pt.sa[k]) ratios[`sa_${k}_vs_pytorch`] = sa[k]!.img_per_s / pt.sa[k]!.img_per_s;
    ratios.ca_rn_vs_pytorch = (e2e.ca_rn as { pairs_per_s: number }).pairs_per_s / pt.ca_rn.pairs_per_s;
    // f16 beside PyTorch fp16 (CUDA only): sketchgpu's f16 option against the model cast to half.
    const pt16 = peers.pytorch as { sa_f16?: Record<string, { img_per_s: number }>; ca_rn_f16?: { pairs_per_s: number } };
    const sa16 = e2e.sa_f16 as Record<string, { img_per_s: number }> | undefined;
    if (sa16 && pt16.sa_f16) for (const k of Object.keys(sa16)) if (pt16.sa_f16[k]) ratios[`sa_${k}_f16_vs_pytorch_fp16`] = sa16[k]!.img_per_s / pt16.sa_f16[k]!.img_per_s;
    if (e2e.ca_rn_f16 && pt16.ca_rn_f16) ratios.ca_rn_f16_vs_pytorch_fp16 = (e2e.ca_rn_f16 as { pairs_per_s: number }).pairs_per_s / pt16.ca_rn_f16.pairs_per_s;
    log(`\nPyTorch (${(pt as unknown as { device: string }).device}) in the same run:`);
    for (const [k, v] of Object.entries(pt.sa)) log(`  SA ${k.padEnd(10)} ${v.img_per_s.toFixed(1).padStart(8)} img/s   sketchgpu/PyTorch ${ratios[`sa_${k}_vs_pytorch`]?.toFixed(2) ?? '-'}x`);
    log(`  CA+RN          ${pt.ca_rn.pairs_per_s.toFixed(1).padStart(8)} pairs/s sketchgpu/PyTorch ${ratios.ca_rn_vs_pytorch.toFixed(2)}x`);
    for (const [k, v] of Object.entries(pt16.sa_f16 ?? {})) log(`  SA ${k} fp16 ${v.img_per_s.toFixed(1).padStart(8)} img/s   sketchgpu f16/PyTorch fp16 ${ratios[`sa_${k}_f16_vs_pytorch_fp16`]?.toFixed(2) ?? '-'}x`);
    if (pt16.ca_rn_f16) log(`  CA+RN fp16     ${pt16.ca_rn_f16.pairs_per_s.toFixed(1).padStart(8)} pairs/s sketchgpu f16/PyTorch fp16 ${ratios.ca_rn_f16_vs_pytorch_fp16?.toFixed(2) ?? '-'}x`);
  } else {
    peers = { pytorch: { error: (r.stderr || r.error?.message || '').trim().split('\n').pop() } };
    log(`\nPyTorch peer skipped: ${(peers.pytorch as { error: string }).error}`);
  }
  const ort = ortPeer(benchWeights);
  peers = { ...peers, onnxruntime_webgpu: ort };
  if ('error' in ort) log(`\nONNX Runtime WebGPU peer skipped: ${ort.error}`);
  else {
    const sa = e2e.sa as Record<string, { img_per_s: number }>;
    const ca = e2e.ca_rn as { pairs_per_s: number; uncached_pairs_per_s: number };
    const p = ort.parity;
    log(`\nONNX Runtime WebGPU (${ort.runtime}, EP ${ort.ep}, adapter: ${ort.adapter}) in the same run:`);
    log(`  on ORT's CPU EP (shape arithmetic): ${Object.entries(ort.cpu_ep_nodes).map(([g, ops]) => `${g} ${Object.values(ops).reduce((x, y) => x + y, 0)} nodes (${Object.keys(ops).join(' ')})`).join('; ') || 'none'}`);
    log(`  parity on ${p.images} images / ${p.pairs} pairs: SA cls max|diff| ${p.sa_cls_max_abs_diff.toExponential(2)} (max |cls| ${p.sa_cls_max_abs.toFixed(2)}), ` +
      `RN input (anchor cosines) max|diff| ${p.rn_input_max_abs_diff.toExponential(2)} (${p.rn_input_range.map((v) => v.toFixed(3)).join('..')}), ` +
      `RN score max|diff| ${p.rn_score_max_abs_diff.toExponential(2)} (scores ${p.rn_score_range.map((v) => v.toFixed(5)).join('..')}): ${ort.parity_ok ? 'ok' : `OVER TOLERANCE (${ort.tolerance}); ratios withheld`}`);
    if (ort.parity_ok) {
      for (const k of Object.keys(sa)) if (ort.sa[k]) ratios[`sa_${k}_vs_ort_webgpu`] = sa[k]!.img_per_s / ort.sa[k]!.img_per_s;
      ratios.ca_rn_vs_ort_webgpu = ca.pairs_per_s / ort.ca_rn.pairs_per_s;
      ratios.ca_rn_uncached_vs_ort_webgpu = ca.uncached_pairs_per_s / ort.ca_rn.pairs_per_s;
    }
    for (const [k, v] of Object.entries(ort.sa)) log(`  SA ${k.padEnd(10)} ${v.ms.toFixed(2).padStart(10)} ms ${v.img_per_s.toFixed(1).padStart(8)} img/s   sketchgpu/ORT ${ratios[`sa_${k}_vs_ort_webgpu`]?.toFixed(2) ?? '-'}x`);
    log(`  CA+RN ${ort.ca_rn.pairs} pairs ${ort.ca_rn.ms.toFixed(2).padStart(10)} ms ${ort.ca_rn.pairs_per_s.toFixed(1).padStart(8)} pairs/s sketchgpu/ORT ${ratios.ca_rn_vs_ort_webgpu?.toFixed(2) ?? '-'}x (${ratios.ca_rn_uncached_vs_ort_webgpu?.toFixed(2) ?? '-'}x without our projection cache)`);
  }
}

interface OrtResult {
  runtime: string; ep: string; adapter: string; vulkan_icds_loaded: string[]; gl_loaded: boolean; onnx: { sa: string; pair: string; opset: number; exported_by: string };
  parity: { sa_cls_max_abs_diff: number; sa_cls_max_abs: number; sa_tokens_max_abs_diff: number; sa_tokens_max_abs: number; rn_score_max_abs_diff: number; rn_score_range: number[]; rn_input_max_abs_diff: number; rn_input_range: number[]; images: number; pairs: number };
  cpu_ep_nodes: Record<string, Record<string, number>>; parity_ok: boolean; tolerance: string;
  sa: Record<string, { ms: number; img_per_s: number }>; ca_rn: { pairs: number; ms: number; pairs_per_s: number; note: string };
}
/**
 * ONNX Runtime's WebGPU EP on the same model and weights: tools/bench/export_onnx.py writes the two graphs (cached in
 * .cache/onnx by the weights' and the exporter's hash), bench/ort_peer.ts runs them in a child process.
 */
function ortPeer(w: { path: string; sha256: string }): OrtResult | { error: string } {
  const exporter = join(ROOT, 'tools', 'bench', 'export_onnx.py');
  const stampPath = join(onnxDir, `${modelName}.stamp.json`);
  const key = createHash('sha256').update(w.sha256).update(readFileSync(exporter)).digest('hex');
  let onnx: OrtResult['onnx'] | undefined;
  try {
    const st = JSON.parse(readFileSync(stampPath, 'utf8')) as { key: string; onnx: OrtResult['onnx'] };
    if (st.key === key && existsSync(st.onnx.sa) && existsSync(st.onnx.pair)) onnx = st.onnx;
  } catch { /* no stamp yet */ }
  if (!onnx) {
    log('\nexporting the bench model to ONNX (tools/bench/export_onnx.py) ...');
    const r = spawnSync(py, [exporter, w.path, '--out', onnxDir, '--name', modelName], { encoding: 'utf8' });
    if (r.status !== 0) return { error: `ONNX export failed: ${lastLine(r.stderr || r.error?.message || '')}` };
    const o = JSON.parse(lastLine(r.stdout)) as { sa: string; pair: string; opset: number; torch: string };
    onnx = { sa: o.sa, pair: o.pair, opset: o.opset, exported_by: `torch ${o.torch}` };
    writeFileSync(stampPath, JSON.stringify({ key, onnx }));
  }
  if (!parityData) return { error: 'no e2e outputs to check parity against' };
  const parityPath = join(onnxDir, `parity-${modelName}.safetensors`);
  writeFileSync(parityPath, writeSafetensors(parityData));
  // tools/device/pack.sh bundles the peer for machines without tsx.
  const bundled = join(ROOT, 'bench', 'ort_peer.device.mjs');
  const peer = existsSync(bundled) ? [bundled] : ['--import', 'tsx', join(ROOT, 'bench', 'ort_peer.ts')];
  const r = spawnSync(process.execPath, [...peer, '--sa', onnx.sa, '--pair', onnx.pair, '--parity', parityPath,
    '--image-size', String(S), '--iters', String(iters), '--batches', batches.join(','), '--pairs', String((e2e.ca_rn as { pairs: number }).pairs)], { encoding: 'utf8', cwd: ROOT });
  let out: Omit<OrtResult, 'onnx' | 'parity_ok' | 'tolerance' | 'cpu_ep_nodes'> | { error: string };
  try {
    out = JSON.parse(lastLine(r.stdout));
  } catch {
    // The whole tail of its stderr: the first GPU run got only Node's version line from lastLine.
    const tail = (r.stderr || r.error?.message || '').trim().split('\n').slice(-25).join('\n');
    return { error: `bench/ort_peer.ts exited with ${r.status ?? r.signal}: ${tail}` };
  }
  if ('error' in out) return out;
  const cpu = cpuPlacement(r.stderr);
  const heavy = Object.entries(cpu).flatMap(([g, ops]) => Object.keys(ops).filter((op) => HEAVY_OPS.test(op)).map((op) => `${g}: ${op}`));
  if (heavy.length) return { error: `ORT placed compute ops on its CPU EP (${heavy.join(', ')}); not a WebGPU measurement` };
  // fp32 on both sides, different reduction orders: relative to the output's scale.
  const p = out.parity;
  const tol = { cls: 1e-3, cos: 1e-4, score: 1e-4 };
  const parity_ok = p.sa_cls_max_abs_diff <= tol.cls * Math.max(1, p.sa_cls_max_abs) && p.rn_input_max_abs_diff <= tol.cos && p.rn_score_max_abs_diff <= tol.score;
  return { ...out, onnx, cpu_ep_nodes: cpu, parity_ok, tolerance: `SA cls ${tol.cls} x max(1, max|cls|), RN input ${tol.cos}, RN score ${tol.score}` };
}

/** Per ONNX graph, the op types (with counts) ORT's verbose node-placement log puts on the CPU EP. */
function cpuPlacement(stderr: string): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  let graph = '', onCpu = false;
  for (const line of stderr.split('\n')) {
    const g = /^ORT-PEER-PLACEMENT (.*)$/.exec(line);
    if (g) { graph = g[1] === 'end' ? '' : g[1]!.replace(/^.*\//, ''); onCpu = false; continue; }
    if (!graph) continue;
    if (/Node\(s\) placed on \[/.test(line)) { onCpu = /\[CPUExecutionProvider\]/.test(line); continue; }
    const n = onCpu ? /VerifyEachNodeIsAssignedToAnEp\] {3}(\w+) \(/.exec(line) : null;
    if (n) (out[graph] ??= {})[n[1]!] = (out[graph]?.[n[1]!] ?? 0) + 1;
  }
  return out;
}

// The GEMM kernel the autotuner picked for each shape the e2e graphs used (hardware adapters; off on CPU drivers).
const autotune = ctx.gemmTuner instanceof GemmAutotune ? ctx.gemmTuner.entries() : null;
const result = { adapter: ctx.adapterName, features: ctx.features, subgroup_matrix_gemm: smatCheck, autotune, model: cfg === SMALL ? 'small' : 'vitb', config: cfg, iters, peak_flops: peak ?? null, peak_flops_f16: peakF16 ?? null, kernels, end_to_end: e2e, host, cost, peers, ratios };
if (args.json) console.log(JSON.stringify(result));
else {
  console.log(`\nadapter: ${ctx.adapterName}`);
  if (Object.keys(host).length) {
    console.log('host cost per forward (CPU ms, median of runs, GPU work excluded; submit = queue.submit of an encoded forward, what run() leaves on the critical path as it encodes ahead; upload = queue.writeBuffer of the inputs)');
    console.table(Object.entries(host as Record<string, HostCost>).map(([k, r]) => ({ case: k, 'encode ms': Number(r.encode_ms.median.toFixed(4)), 'encode+submit ms': Number(r.encode_submit_ms.median.toFixed(4)), 'submit ms': Number(r.submit_ms.median.toFixed(4)),
      dispatches: r.dispatches, setPipeline: r.set_pipeline, setBindGroup: r.set_bind_group, 'bind groups created/forward': r.bind_groups_created_per_forward, 'upload ms': Number(r.upload_ms.median.toFixed(4)) })));
  }
  if (cost) {
    console.log(`cost model: ViT-B/16 as built for a hardware adapter, at ${cost.device.name} peaks (${cost.device.source}); ms per forward of the batch`);
    console.table(Object.entries(cost.cases).map(([k, c]) => {
      const t = c.target as { max_ms?: number; min_per_s?: number };
      const meas = (c as { measured?: { ms: number; per_s?: number } }).measured;
      return { case: k, dispatches: c.dispatches, GFLOP: Number(c.gflop.toFixed(2)), 'min MB': Number(c.min_mb.toFixed(1)), 'pattern MB': Number(c.pattern_mb.toFixed(1)),
        'ideal ms': Number(c.ideal_ms.toFixed(4)), [`ideal /s`]: Math.round(c.ideal_per_s), 'pattern ms': Number(c.pattern_ms.toFixed(4)),
        target: t.max_ms !== undefined ? `<= ${t.max_ms} ms` : `>= ${t.min_per_s} /s`, 'ideal meets': c.ideal_meets_target ? 'yes' : 'NO',
        'measured ms': meas ? Number(meas.ms.toFixed(3)) : '-' };
    }));
    for (const [k, c] of Object.entries(cost.cases)) {
      console.log(`cost model per op: ${k} (${c.what}; us per forward, summed over layers; pattern/min > 2 is flagged)`);
      console.table(c.ops.map((o) => ({ op: o.op, kernel: o.kernel, n: o.count, GFLOP: Number(o.gflop.toFixed(3)), 'min MB': Number(o.min_mb.toFixed(2)), 'pattern MB': Number(o.pattern_mb.toFixed(2)),
        'pattern/min': `${o.pattern_over_min.toFixed(1)}${o.pattern_over_min > 2 ? ' !' : ''}${o.modelled ? '' : ' (min only)'}`, 'ideal us': Number(o.ideal_us.toFixed(2)), 'pattern us': Number(o.pattern_us.toFixed(2)), bound: o.bound })));
    }
  }
  if (kernels.length) console.table(kernels.map((k) => (k.ms === null ? { kernel: k.name, shape: k.shape, ms: 'failed', 'GFLOP/s': k.error!.slice(0, 60) } : { kernel: k.name, shape: k.shape, ms: Number(k.ms.toFixed(3)), 'GFLOP/s': Number(k.gflops!.toFixed(1)), ...(peak ? { 'of peak': `${(100 * k.peak_fraction!).toFixed(1)}%` } : {}) })));
  if (e2e.sa) {
    // End to end against the peers: per row sketchgpu's ms and rate, then each peer's and the ratio sketchgpu/peer.
    type Rate = { ms: number; img_per_s?: number; pairs_per_s?: number };
    type Peer = { sa: Record<string, Rate>; ca_rn: Rate } | { error: string } | undefined;
    const pt = peers?.pytorch as Peer, ort = peers?.onnxruntime_webgpu as (Peer & { parity_ok?: boolean });
    const rate = (r?: Rate) => r ? Number((r.img_per_s ?? r.pairs_per_s!).toFixed(1)) : '-';
    const fx = (v?: number, d = 2) => v === undefined ? '-' : Number(v.toFixed(d));
    const rowsOut = Object.entries(e2e.sa as Record<string, Rate>).map(([k, v]) => {
      const p = pt && 'sa' in pt ? pt.sa[k] : undefined, o = ort && 'sa' in ort ? ort.sa[k] : undefined;
      return { case: `SA ${k}`, 'sketchgpu ms': fx(v.ms), 'sketchgpu /s': rate(v), 'PyTorch ms': fx(p?.ms), 'x PyTorch': fx(ratios[`sa_${k}_vs_pytorch`]), 'ORT WebGPU ms': fx(o?.ms), 'ORT /s': rate(o), 'x ORT': fx(ratios[`sa_${k}_vs_ort_webgpu`]) };
    });
    const ca = e2e.ca_rn as Rate & { pairs: number };
    rowsOut.push({ case: `CA+RN ${ca.pairs} pairs`, 'sketchgpu ms': fx(ca.ms), 'sketchgpu /s': rate(ca), 'PyTorch ms': fx(pt && 'ca_rn' in pt ? pt.ca_rn.ms : undefined), 'x PyTorch': fx(ratios.ca_rn_vs_pytorch),
      'ORT WebGPU ms': fx(ort && 'ca_rn' in ort ? ort.ca_rn.ms : undefined), 'ORT /s': rate(ort && 'ca_rn' in ort ? ort.ca_rn : undefined), 'x ORT': fx(ratios.ca_rn_vs_ort_webgpu) });
    type Pt16 = { sa_f16?: Record<string, Rate>; ca_rn_f16?: Rate };
    const p16 = (pt && 'sa' in pt ? pt : {}) as Pt16;
    for (const [k, v] of Object.entries((e2e.sa_f16 ?? {}) as Record<string, Rate>)) {
      rowsOut.push({ case: `SA ${k} f16`, 'sketchgpu ms': fx(v.ms), 'sketchgpu /s': rate(v), 'PyTorch ms': fx(p16.sa_f16?.[k]?.ms), 'x PyTorch': fx(ratios[`sa_${k}_f16_vs_pytorch_fp16`]), 'ORT WebGPU ms': '-', 'ORT /s': '-', 'x ORT': '-' });
    }
    const c16 = e2e.ca_rn_f16 as (Rate & { pairs: number }) | undefined;
    if (c16) rowsOut.push({ case: `CA+RN ${c16.pairs} pairs f16`, 'sketchgpu ms': fx(c16.ms), 'sketchgpu /s': rate(c16), 'PyTorch ms': fx(p16.ca_rn_f16?.ms), 'x PyTorch': fx(ratios.ca_rn_f16_vs_pytorch_fp16), 'ORT WebGPU ms': '-', 'ORT /s': '-', 'x ORT': '-' });
    console.log('end to end (/s: img/s for SA, pairs/s for CA+RN; x: sketchgpu/peer, >1 = sketchgpu faster; f16 rows against PyTorch fp16, CUDA only)');
    console.table(rowsOut);
  }
}
ctx.destroy();
