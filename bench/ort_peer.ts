// ONNX Runtime WebGPU peer for bench/run.ts, in its own process (onnxruntime-node bundles its own Dawn; keeping it
// apart from sketchgpu's dawn.node avoids two Dawn instances in one process). Runs the ONNX graphs that
// tools/bench/export_onnx.py wrote from the bench's weights: first the parity check on the inputs and outputs the parent
// wrote (SA cls tokens, RN scores), then the same timings as the parent's e2e section (SA per batch size, CA+RN
// pairs; wall time incl. upload and read-back). Prints one JSON line; {"error": ...} when ORT or its WebGPU EP is
// unavailable. Usage: node --import tsx bench/ort_peer.ts --sa A.onnx --pair B.onnx --parity P.safetensors
//   --image-size S --iters N --batches 1,8 --pairs 64
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readSafetensors } from '../src/io/safetensors.ts';
import { rnd } from './common.ts';

const { values: a } = parseArgs({
  options: {
    sa: { type: 'string' }, pair: { type: 'string' }, parity: { type: 'string' }, 'image-size': { type: 'string' },
    iters: { type: 'string' }, batches: { type: 'string' }, pairs: { type: 'string' },
  },
});
const S = Number(a['image-size']), iters = Number(a.iters ?? 3), P = Number(a.pairs ?? 64);
const batches = (a.batches ?? '1,8').split(',').map(Number);
const done = (o: object) => { console.log(JSON.stringify(o)); process.exit(0); };

// The little of onnxruntime-node's API used here, typed locally so the type check passes without the optional package.
interface OrtTensor { data: unknown }
interface OrtSession { run(feeds: Record<string, OrtTensor>, fetches?: string[]): Promise<Record<string, OrtTensor | undefined>>; release(): Promise<void> }
interface Ort {
  env: { versions: { node?: string } };
  listSupportedBackends?(): { name: string; bundled: boolean }[];
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(path: string, options: object): Promise<OrtSession> };
}
const ORT_MODULE = 'onnxruntime-node';
let ort: Ort;
try {
  ort = (await import(ORT_MODULE)) as Ort;
} catch (e) {
  done({ error: `onnxruntime-node is not installed (${(e as Error).message.split('\n')[0]}); it is an optionalDependency: npm install` });
}
const backends = ort!.listSupportedBackends?.() ?? [];
if (!backends.some((b) => b.name === 'webgpu' && b.bundled)) {
  done({ error: `onnxruntime-node ${ort!.env.versions.node} has no bundled webgpu backend on ${process.platform}/${process.arch} (backends: ${backends.map((b) => b.name).join(', ')})` });
}

// ORT keeps shape arithmetic (int64 Gather/Concat/Unsqueeze, and the dynamic pos-embedding Slice) on its CPU EP; the
// float work must be on WebGPU. The node placement is only logged: first one verbose, untimed creation of each
// session, whose stderr the parent reads (bench/run.ts: cpuPlacement), then the timed sessions with quiet logs.
const opts = { executionProviders: [{ name: 'webgpu' as const }], graphOptimizationLevel: 'all' as const };
let sa: OrtSession, pair: OrtSession;
try {
  for (const path of [a.sa!, a.pair!]) {
    console.error(`ORT-PEER-PLACEMENT ${path}`);
    await (await ort!.InferenceSession.create(path, { ...opts, logSeverityLevel: 0, logVerbosityLevel: 0 })).release();
  }
  console.error('ORT-PEER-PLACEMENT end');
  sa = await ort!.InferenceSession.create(a.sa!, opts);
  pair = await ort!.InferenceSession.create(a.pair!, opts);
} catch (e) {
  done({ error: `ORT WebGPU session creation failed: ${(e as Error).message.split('\n')[0]}` });
}

/**
 * Which adapter ORT's own Dawn picked: the Node API does not say. The Vulkan loader maps every installed ICD, so the
 * mapped libraries prove little; lavapipe, once a device exists, runs worker threads named llvmpipe-N in this
 * process, and no other driver does.
 */
function adapterEvidence(): { adapter: string; vulkan_icds_loaded: string[]; gl_loaded: boolean } {
  const maps = readFileSync('/proc/self/maps', 'utf8');
  const icds = [...new Set([...maps.matchAll(/\/(libvulkan_[\w.-]+|libvk_swiftshader[\w.-]*|libnvidia-glcore[\w.-]*)$/gm)].map((m) => m[1]!))];
  const threads = readdirSync('/proc/self/task').map((t) => { try { return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim(); } catch { return ''; } });
  const lp = threads.filter((t) => /^llvmpipe-\d+$/.test(t)).length;
  return {
    adapter: lp ? `lavapipe (Vulkan; ${lp} llvmpipe-N worker threads in the ORT process)` : `not lavapipe (ORT does not name its adapter; ICDs loaded: ${icds.join(', ')})`,
    vulkan_icds_loaded: icds, gl_loaded: /\/lib(EGL|GLESv2|GLX)[\w.-]*$/m.test(maps),
  };
}

const f32 = (data: Float32Array, dims: number[]) => new ort!.Tensor('float32', data, dims);
async function runSa(x: Float32Array, B: number): Promise<Float32Array> {
  const out = await sa!.run({ image: f32(x, [B, 3, S, S]) });
  return out.tokens!.data as Float32Array;
}
async function runPair(sk: Float32Array, im: Float32Array, n: number, T: number, D: number, withCos = false): Promise<{ score: Float32Array; cos?: Float32Array }> {
  const out = await pair!.run({ sketch: f32(sk, [n, T, D]), photo: f32(im, [n, T, D]) }, withCos ? ['score', 'cos'] : ['score']);
  return { score: out.score!.data as Float32Array, cos: out.cos?.data as Float32Array | undefined };
}
async function timeRun(fn: () => Promise<unknown>, n: number): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t0) / n;
}
const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

// Everything after session creation in one guarded block: an ORT failure on some GPU (the first H200 run died here
// with only Node's version line on stderr) becomes a JSON error with its message.
try {
  // Parity: the parent's inputs (images), its SA tokens, and for pairs (i % ns, floor(i / ns)) its RN scores and the
  // RN input (anchor cosines: with the bench's random weights the scores barely vary, the cosines do).
  const par = readSafetensors(new Uint8Array(readFileSync(a.parity!)), a.parity).tensors;
  const images = par.get('images')!, tokens = par.get('tokens')!, score = par.get('score')!, cosOurs = par.get('cos')!.data as Float32Array;
  const [n, T, D] = tokens.shape as [number, number, number];
  const oursTok = tokens.data as Float32Array;
  const ortTok = await runSa(images.data as Float32Array, n);
  const cls = (t: Float32Array) => { const o = new Float32Array(n * D); for (let i = 0; i < n; i++) o.set(t.subarray(i * T * D, i * T * D + D), i * D); return o; };
  const row = T * D;
  const gather = (src: Float32Array, idx: (i: number) => number, m: number) => { const o = new Float32Array(m * row); for (let i = 0; i < m; i++) o.set(src.subarray(idx(i) * row, (idx(i) + 1) * row), i * row); return o; };
  const np = score.shape[0]! / n;
  const skT = gather(oursTok, (i) => i % n, n * np), imT = gather(oursTok, (i) => Math.floor(i / n), n * np);
  const { score: ortScore, cos: ortCos } = await runPair(skT, imT, n * np, T, D, true);
  const oursScore = score.data as Float32Array;
  const parity = {
    sa_cls_max_abs_diff: maxDiff(cls(ortTok), cls(oursTok)), sa_cls_max_abs: maxAbs(cls(oursTok)),
    sa_tokens_max_abs_diff: maxDiff(ortTok, oursTok), sa_tokens_max_abs: maxAbs(oursTok),
    rn_score_max_abs_diff: maxDiff(ortScore, oursScore),
    rn_input_max_abs_diff: maxDiff(ortCos!, cosOurs), rn_input_range: [Math.min(...cosOurs), Math.max(...cosOurs)],
    rn_score_range: [Math.min(...oursScore), Math.max(...oursScore)],
    images: n, pairs: n * np,
  };

  // Timings: the parent's shapes and iteration counts.
  const saT: Record<string, { ms: number; img_per_s: number }> = {};
  for (const B of batches) {
    const x = rnd(B * 3 * S * S, 20 + B);
    const ms = await timeRun(() => runSa(x, B), B >= 32 ? Math.max(1, Math.ceil(iters / 4)) : iters);
    saT[`batch_${B}`] = { ms, img_per_s: (1000 * B) / ms };
  }
  const pk = gather(oursTok, (i) => i % n, P), pp = gather(oursTok, (i) => Math.floor(i / n) % n, P);
  const rnMs = await timeRun(() => runPair(pk, pp, P, T, D), iters);
  done({
    runtime: `onnxruntime-node ${ort!.env.versions.node}`, ep: 'webgpu (bundled Dawn)', ...adapterEvidence(),
    parity, sa: saT, ca_rn: { pairs: P, ms: rnMs, pairs_per_s: (1000 * P) / rnMs, note: 'no projection cache (plain ONNX graph of the reference forward)' },
  });
} catch (e) {
  done({ error: `ORT WebGPU run failed: ${((e as Error).stack ?? String(e)).split('\n').slice(0, 6).join(' | ')}` });
}
