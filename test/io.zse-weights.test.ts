import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SketchError } from '../src/core/errors.ts';
import { readTorchCheckpoint } from '../src/io/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { f32ToF16, type HostTensor } from '../src/core/tensor.ts';
import { convertCheckpoint, loadWeights, nodeWeightsHash as weightsHash } from '../src/models/load-file.ts';
import { findStateDict } from '../src/io/checkpoint.ts';
import { parseWeights } from '../src/models/zse/weights.ts';
import { weightsHash as webWeightsHash } from '../src/io/weights-hash.ts';
import { ZSE_VIT_B16, type ZseConfig } from '../src/models/zse/config.ts';
import {
  DEAD_CA_PREFIX, inferZseConfig, normalizeZseKeys, validateZseWeights, zseParamCount, zseTensorShapes,
} from '../src/models/zse/weights.ts';
import { FIXTURES } from './paths.ts';

const DIR = resolve(FIXTURES, 'ckpt');
const fixture = (name: string) => resolve(DIR, name);
const TINY_HEADS = { saHeads: 4, caHeads: 2 };
interface Expected {
  config: ZseConfig;
  checkpoint: Record<string, number>;
  keys: string[];
  tensors: Record<string, { shape: number[]; sum: number; wsum: number }>;
}
const expected: Expected = JSON.parse(readFileSync(fixture('zse_tiny.expected.json'), 'utf8'));

async function rejectsSketch(p: Promise<unknown>, code: string, ...words: string[]): Promise<SketchError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof SketchError)) throw new Error(`expected SketchError ${code}, got ${(e as Error)?.stack ?? e}`);
    assert.is(e.code, code, e.message);
    const text = `${e.message}\n${e.hint ?? ''}`;
    for (const w of words) assert.ok(text.includes(w), `"${w}" not in: ${text}`);
    return e;
  }
  throw new Error(`expected SketchError ${code}, but nothing was thrown`);
}
const throwsSketch = (fn: () => unknown, code: string, ...words: string[]) =>
  rejectsSketch((async () => fn())(), code, ...words);

/** A tensor map with the given shapes and no data (enough for inference and validation). */
function shapesOnly(shapes: Map<string, number[]>): Map<string, HostTensor> {
  return new Map([...shapes].map(([k, s]) => [k, { dtype: 'f32', shape: s, data: new Float32Array(0) }]));
}

function checksums(t: HostTensor): { sum: number; wsum: number } {
  const v = t.data as Float32Array;
  let sum = 0;
  let wsum = 0;
  for (let i = 0; i < v.length; i++) {
    sum += v[i]!;
    wsum += v[i]! * ((i % 7) + 1);
  }
  return { sum, wsum };
}
const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

let tmp = '';
test.before(() => { tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-weights-')); });
test.after(() => rmSync(tmp, { recursive: true, force: true }));

// ---- the §4 key list --------------------------------------------------------------------------------------------
test('the full-size key list matches §4: 194 used tensors, 98,240,536 params; SA only 154 / 87,946,176', () => {
  const full = zseTensorShapes(ZSE_VIT_B16);
  assert.is(full.size, 194);
  assert.is(zseParamCount(ZSE_VIT_B16), 98_240_536);
  assert.equal(full.get('sa.model.pos_embedding'), [1, 197, 768]);
  assert.equal(full.get('sa.model.scale.seq.6.weight'), [768, 256, 3, 3]);
  assert.equal(full.get('sa.model.transformer.layers.11.0.attention.to_qkv.weight'), [2304, 768]);
  assert.equal(full.get('ca.encoder.layer2.0.feed_forward.w_1.weight'), [1024, 768]);
  assert.equal(full.get('rn.rn.0.weight'), [343, 2401]);
  assert.equal(full.get('conv2d.weight'), [512, 768, 2, 2]);
  const ret = { ...ZSE_VIT_B16, hasHead: false };
  assert.is(zseTensorShapes(ret).size, 154);
  assert.is(zseParamCount(ret), 87_946_176);
  for (const k of full.keys()) assert.not.ok(k.startsWith(DEAD_CA_PREFIX));
});

test('infers the reference config from ViT-B/16 shapes (heads default to 12 / 8)', () => {
  const shapes = zseTensorShapes(ZSE_VIT_B16);
  // The state dict as saved: the dead clone included (210 tensors, 102,180,632 params).
  for (const [k, s] of [...shapes]) if (k.startsWith('ca.encoder.layer1.0.')) shapes.set(k.replace('layer1', 'layers'), s);
  assert.is(shapes.size, 210);
  let params = 0;
  for (const s of shapes.values()) params += s.reduce((a, b) => a * b, 1);
  assert.is(params, 102_180_632);

  const { tensors, dropped } = normalizeZseKeys(shapesOnly(shapes));
  assert.is(dropped.length, 16);
  const config = inferZseConfig(tensors);
  assert.equal(config, ZSE_VIT_B16);
  assert.equal(validateZseWeights(tensors, config), { missing: [], unexpected: [], misshaped: [], wrongDtype: [] });
  // The dead clone is ignored even when not dropped first.
  assert.equal(validateZseWeights(shapesOnly(shapes), config).unexpected, []);
});

test('head counts come from metadata, a sketchgpu.config JSON, or the defaults', () => {
  const t = shapesOnly(zseTensorShapes(ZSE_VIT_B16));
  assert.is(inferZseConfig(t, { 'sketchgpu.sa_heads': '6', 'sketchgpu.ca_heads': '4' }).saHeads, 6);
  assert.is(inferZseConfig(t, { 'sketchgpu.config': JSON.stringify({ saHeads: 3, caHeads: 2 }) }).caHeads, 2);
  throwsSketch(() => inferZseConfig(t, { 'sketchgpu.sa_heads': '7' }), 'BAD_WEIGHTS', 'not divisible by 7 SA heads');
  throwsSketch(() => inferZseConfig(t, { 'sketchgpu.ca_heads': 'eight' }), 'BAD_WEIGHTS', 'sketchgpu.ca_heads', 'positive integer');
  throwsSketch(() => inferZseConfig(t, { 'sketchgpu.config': '{oops' }), 'BAD_WEIGHTS', 'not valid JSON');
});

test('shapes that are not ZSE-SBIR are refused with the reason', async () => {
  const vit = shapesOnly(new Map([['pos_embedding', [1, 197, 768]], ['transformer.layers.0.0.attention.to_qkv.weight', [2304, 768]]]));
  await throwsSketch(() => inferZseConfig(vit), 'BAD_WEIGHTS', 'no key starts with "sa.model."', 'sam_ViT-B_16.pth');
  const odd = zseTensorShapes(ZSE_VIT_B16);
  odd.set('sa.model.pos_embedding', [1, 190, 768]);
  await throwsSketch(() => inferZseConfig(shapesOnly(odd)), 'BAD_WEIGHTS', '190 tokens', 'square');
  const noPos = zseTensorShapes(ZSE_VIT_B16);
  noPos.delete('sa.model.pos_embedding');
  await throwsSketch(() => inferZseConfig(shapesOnly(noPos)), 'BAD_WEIGHTS', 'token count', 'sa.model.pos_embedding');
  await throwsSketch(() => inferZseConfig(shapesOnly(noPos), {}, { partial: true }), 'BAD_WEIGHTS', 'token count');
  const noRn = zseTensorShapes(ZSE_VIT_B16);
  for (const k of [...noRn.keys()]) if (k.startsWith('rn.')) noRn.delete(k);
  await throwsSketch(() => inferZseConfig(shapesOnly(noRn)), 'BAD_WEIGHTS', 'first RN width', 'rn.rn.0.weight');
  const partial = inferZseConfig(shapesOnly(noRn), {}, { partial: true });
  assert.equal(partial.rnHidden, [0, 0]);
  assert.equal(validateZseWeights(shapesOnly(noRn), partial).missing, [...zseTensorShapes(ZSE_VIT_B16).keys()].filter((k) => k.startsWith('rn.')));
});

test('validation names missing, unexpected, mis-shaped and non-float tensors', () => {
  const shapes = zseTensorShapes(ZSE_VIT_B16);
  shapes.delete('rn.rn.3.bias');
  shapes.set('conv2d.bias', [500]);
  shapes.set('sa.model.head.weight', [1000, 768]);
  const t = shapesOnly(shapes);
  t.set('sa.model.cls', { dtype: 'i64', shape: [1, 1, 768], data: new BigInt64Array(0) });
  const r = validateZseWeights(t, ZSE_VIT_B16);
  assert.equal(r.missing, ['rn.rn.3.bias']);
  assert.equal(r.unexpected, ['sa.model.head.weight']);
  assert.equal(r.misshaped, [{ key: 'conv2d.bias', expected: [512], actual: [500] }]);
  assert.equal(r.wrongDtype, [{ key: 'sa.model.cls', dtype: 'i64' }]);
});

// ---- the tiny fixtures ------------------------------------------------------------------------------------------
/** The used tensors of zse_tiny, by value; `ordered` when they come from a checkpoint (state_dict order). */
function assertTinyValues(tensors: Map<string, HostTensor>, ordered = true) {
  const used = expected.keys.filter((k) => !k.startsWith(DEAD_CA_PREFIX));
  if (ordered) assert.equal([...tensors.keys()], used);
  else assert.equal([...tensors.keys()].sort(), [...used].sort());
  for (const k of used) {
    const t = tensors.get(k)!;
    const want = expected.tensors[k]!;
    assert.equal(t.shape, want.shape, k);
    const got = checksums(t);
    assert.ok(close(got.sum, want.sum) && close(got.wsum, want.wsum), `${k}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
  }
}

test('loads the official-format checkpoint: config, values, dead clone dropped, metadata', async () => {
  const w = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  assert.equal(w.config, expected.config);
  assert.is(w.format, 'torch');
  assert.is(w.tensors.size, 74);
  assert.is(w.dropped.length, 16);
  assert.ok(w.dropped.every((k) => k.startsWith(DEAD_CA_PREFIX)));
  assertTinyValues(w.tensors);
  // layer1 is read as layer1, never from the clone in `layers` (§11 quirk 16).
  assert.is(expected.tensors['ca.encoder.layer1.0.self_attn.linears.0.weight']!.sum,
    checksums(w.tensors.get('ca.encoder.layer1.0.self_attn.linears.0.weight')!).sum);
  assert.not.equal(expected.tensors['ca.encoder.layers.0.self_attn.linears.0.weight']!.sum,
    expected.tensors['ca.encoder.layer1.0.self_attn.linears.0.weight']!.sum);
  assert.is(w.metadata['checkpoint.epoch'], '3');
  assert.is(w.metadata['checkpoint.map_all'], '0.5');
  assert.is(w.metadata['checkpoint.precision_100'], '0.6');
  assert.is(w.metadata['sketchgpu.sa_heads'], '4');
});

test('without head counts, the reference defaults do not fit dim 8 and the error says why', async () => {
  await rejectsSketch(loadWeights(fixture('zse_tiny.pth')), 'BAD_WEIGHTS',
    'zse_tiny.pth', 'token width 8', '12 SA heads', 'names no head count', '--sa-heads');
});

test('DataParallel keys (module.) saved from cuda:0, heads from a config dict', async () => {
  const w = await loadWeights(fixture('zse_tiny_dp_cuda.pth'));
  assert.equal(w.config, expected.config);
  assertTinyValues(w.tensors);
  const plain = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  for (const [k, t] of plain.tensors) assert.equal(w.tensors.get(k)!.data, t.data, k);
  assert.is(w.metadata['checkpoint.epoch'], '9');
});

test('fp16 checkpoint: bit-identical to rounding the fp32 values ourselves (torch .half() = our f32ToF16)', async () => {
  const half = await loadWeights(fixture('zse_tiny_fp16.pth'), TINY_HEADS);
  const full = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  assert.equal(half.config, expected.config);
  let n = 0;
  for (const [k, t] of full.tensors) {
    const h = half.tensors.get(k)!;
    assert.is(h.dtype, 'f16', k);
    const f32 = t.data as Float32Array;
    const bits = h.data as Uint16Array;
    for (let i = 0; i < f32.length; i++, n++) {
      if (f32ToF16(f32[i]!) !== bits[i]) assert.unreachable(`${k}[${i}] = ${f32[i]}: ours 0x${f32ToF16(f32[i]!).toString(16)}, torch 0x${bits[i]!.toString(16)}`);
    }
  }
  assert.ok(n > 10_000);
});

test('missing keys: every one named, with a count', async () => {
  const e = await rejectsSketch(loadWeights(fixture('zse_tiny_missing.pth'), TINY_HEADS), 'BAD_WEIGHTS',
    'zse_tiny_missing.pth', '3 missing', 'missing     ca.encoder.layer2.0.feed_forward.w_2.bias',
    'missing     rn.rn.6.weight', 'missing     sa.model.transformer.layers.1.0.mlp.net.3.weight', 'convert');
  assert.not.ok(e.message.includes('unexpected '));
});

test('mis-shaped and unexpected keys: expected and found shapes', async () => {
  await rejectsSketch(loadWeights(fixture('zse_tiny_misshaped.pth'), TINY_HEADS), 'BAD_WEIGHTS',
    '2 mis-shaped', '1 unexpected',
    'conv2d.bias: expected [4], found [5]',
    'sa.model.transformer.layers.0.0.attention.to_qkv.weight: expected [24, 8], found [24, 10]',
    'unexpected  sa.model.mlp_head.weight [10, 8]');
});

test('a long problem list is capped at 20 lines with a count of the rest', async () => {
  const w = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  const partial = new Map([...w.tensors].filter(([k]) => !k.startsWith('ca.encoder.layer2.') && !k.startsWith('rn.')));
  const bytes = writeSafetensors(partial, { 'sketchgpu.sa_heads': '4', 'sketchgpu.ca_heads': '2' });
  const e = await throwsSketch(() => parseWeights(bytes, 'partial.safetensors'), 'BAD_WEIGHTS', '22 missing', '… and 2 more');
  assert.is(e.message.split('\n').filter((l) => l.startsWith('  missing')).length, 20);
});

test('a file with only sa.model.* is a valid ret-only file', async () => {
  const w = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  const sa = new Map([...w.tensors].filter(([k]) => k.startsWith('sa.model.')));
  const path = join(tmp, 'ret.safetensors');
  writeFileSync(path, writeSafetensors(sa, { 'sketchgpu.sa_heads': '4' }));
  const ret = await loadWeights(path);
  assert.is(ret.config.hasHead, false);
  assert.is(ret.config.dim, 8);
  assert.is(ret.tensors.size, 34);
  assert.equal(ret.config.rnHidden, []);
});

test('state dicts are found at the root, under model or state_dict; others are refused', async () => {
  const t: HostTensor = { dtype: 'f32', shape: [1], data: new Float32Array(1) };
  assert.is(findStateDict(new Map([['w', t]]), 'a.pth').path, '');
  assert.is(findStateDict(new Map<string, unknown>([['model', new Map([['w', t]])], ['epoch', 1]]), 'a.pth').path, 'model');
  assert.is(findStateDict(new Map<string, unknown>([['state_dict', new Map([['w', t]])]]), 'a.pth').path, 'state_dict');
  await throwsSketch(() => findStateDict(t, 'a.pth'), 'BAD_WEIGHTS', 'a.pth', 'single tensor');
  await throwsSketch(() => findStateDict(new Map([['optimizer', new Map()]]), 'a.pth'), 'BAD_WEIGHTS', 'no state dict', 'optimizer');
  const root = readTorchCheckpoint(new Uint8Array(readFileSync(fixture('views.pth')))).root;
  await throwsSketch(() => findStateDict(root, 'views.pth'), 'BAD_WEIGHTS', 'no state dict', 'top-level keys: tensors, py, np, torch');
});

test('loadWeights reads by content, not by extension; bad paths and non-weights say so', async () => {
  const w = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  const disguised = join(tmp, 'weights.pth');
  writeFileSync(disguised, writeSafetensors(w.tensors, { 'sketchgpu.sa_heads': '4', 'sketchgpu.ca_heads': '2' }));
  assert.is((await loadWeights(disguised)).format, 'safetensors');
  await rejectsSketch(loadWeights(join(tmp, 'nope.pth')), 'IO', 'nope.pth', 'does not exist');
  const png = join(tmp, 'sketch.safetensors');
  writeFileSync(png, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]));
  await rejectsSketch(loadWeights(png), 'NOT_A_CHECKPOINT', 'sketch.safetensors', 'PNG image');
  await rejectsSketch(loadWeights(fixture('malicious.pth')), 'UNSAFE_PICKLE', 'os.system');
  await rejectsSketch(loadWeights(fixture('legacy.pth')), 'NOT_A_CHECKPOINT', 'legacy');
});

// ---- conversion -------------------------------------------------------------------------------------------------
test('convertCheckpoint writes validated fp32 safetensors with the config in the metadata', async () => {
  const out = join(tmp, 'zse.safetensors');
  const report = await convertCheckpoint(fixture('zse_tiny_dp_cuda.pth'), out, { fp16: false });
  assert.is(report.tensorsKept, 74);
  assert.is(report.tensorsDropped, 16);
  assert.is(report.params, zseParamCount(expected.config));
  assert.is(report.bytes, statSync(out).size);
  assert.is(report.dtype, 'f32');
  assert.equal(report.config, expected.config);

  const file = readSafetensors(new Uint8Array(readFileSync(out)));
  assert.is(file.metadata.format, 'pt');
  assert.is(file.metadata['sketchgpu.model'], 'zse-sbir');
  assert.is(file.metadata['sketchgpu.sa_heads'], '4');
  assert.is(file.metadata['sketchgpu.ca_heads'], '2');
  assert.equal(JSON.parse(file.metadata['sketchgpu.config']!), expected.config);
  assert.is(file.metadata['sketchgpu.source'], 'zse_tiny_dp_cuda.pth');
  assert.equal(JSON.parse(file.metadata['sketchgpu.checkpoint']!), { epoch: '9' });
  assert.ok([...file.tensors.keys()].every((k) => !k.startsWith('module.') && !k.startsWith(DEAD_CA_PREFIX)));

  const back = await loadWeights(out);
  assert.equal(back.config, expected.config);
  assertTinyValues(back.tensors, false);
  // The same weights hash the same whatever file they came from.
  const original = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  assert.is(weightsHash(back.tensors), weightsHash(original.tensors));
  assert.is(report.hash, weightsHash(original.tensors));
});

test('convertCheckpoint --fp16 rounds as torch .half() does', async () => {
  const out = join(tmp, 'zse-fp16.safetensors');
  const report = await convertCheckpoint(fixture('zse_tiny.pth'), out, { fp16: true, ...TINY_HEADS });
  assert.is(report.dtype, 'f16');
  const converted = await loadWeights(out);
  const torchHalf = await loadWeights(fixture('zse_tiny_fp16.pth'), TINY_HEADS);
  for (const [k, t] of torchHalf.tensors) {
    assert.is(converted.tensors.get(k)!.dtype, 'f16');
    assert.equal(converted.tensors.get(k)!.data, t.data, k);
  }
  assert.is(weightsHash(converted.tensors), weightsHash(torchHalf.tensors));
  const fp32 = await loadWeights(fixture('zse_tiny.pth'), TINY_HEADS);
  assert.is.not(weightsHash(converted.tensors), weightsHash(fp32.tensors));
  // The browser bundle's identity (its own SHA-256 over the same stream) is the same, f16 and f32 alike.
  for (const w of [converted, fp32]) assert.is(webWeightsHash(w.tensors), weightsHash(w.tensors));
  // About half the fp32 size.
  const fp32Out = join(tmp, 'zse-fp32.safetensors');
  const r32 = await convertCheckpoint(fixture('zse_tiny.pth'), fp32Out, { fp16: false, ...TINY_HEADS });
  assert.ok(report.bytes < r32.bytes * 0.6);
});

test('convertCheckpoint refuses bad input before writing anything', async () => {
  const out = join(tmp, 'never.safetensors');
  await rejectsSketch(convertCheckpoint(fixture('zse_tiny_missing.pth'), out, { fp16: false, ...TINY_HEADS }), 'BAD_WEIGHTS', '3 missing');
  assert.throws(() => statSync(out));
});

test('weightsHash is stable: key order does not matter, any byte, shape or dtype does', () => {
  const a: HostTensor = { dtype: 'f32', shape: [2], data: new Float32Array([1, 2]) };
  const b: HostTensor = { dtype: 'f32', shape: [1, 2], data: new Float32Array([3, 4]) };
  const h = weightsHash(new Map([['a', a], ['b', b]]));
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.is(weightsHash(new Map([['b', b], ['a', a]])), h);
  assert.is.not(weightsHash(new Map([['a', a], ['b', { ...b, shape: [2] }]])), h);
  assert.is.not(weightsHash(new Map([['a', a], ['b', { ...b, data: new Float32Array([3, 4.0000005]) }]])), h);
  assert.is.not(weightsHash(new Map([['a', a], ['c', b]])), h);
  assert.is.not(weightsHash(new Map([['a', a], ['b', { dtype: 'i32', shape: [1, 2], data: new Int32Array(new Float32Array([3, 4]).buffer) }]])), h);
});

test.run();
