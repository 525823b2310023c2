import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { SketchError } from '../src/core/errors.ts';
import { identifyFile, isHostTensor, readTorchCheckpoint } from '../src/io/checkpoint.ts';
import { writeNpy } from '../src/io/npy.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { bf16ToF32, f16ToF32, type HostTensor } from '../src/core/tensor.ts';
import { FIXTURES } from './paths.ts';

const DIR = resolve(FIXTURES, 'ckpt');
const load = (name: string) => new Uint8Array(readFileSync(resolve(DIR, name)));
const enc = new TextEncoder();

function throwsSketch(fn: () => unknown, code: string, ...words: string[]): SketchError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SketchError)) throw new Error(`expected SketchError ${code}, got ${(e as Error)?.stack ?? e}`);
    assert.is(e.code, code, e.message);
    const text = `${e.message}\n${e.hint ?? ''}`;
    for (const w of words) assert.ok(text.includes(w), `"${w}" not in: ${text}`);
    return e;
  }
  throw new Error(`expected SketchError ${code}, but nothing was thrown`);
}

const asMap = (v: unknown): Map<unknown, unknown> => {
  assert.instance(v, Map);
  return v as Map<unknown, unknown>;
};

function values(t: HostTensor): (number | boolean)[] {
  if (t.dtype === 'f16') return [...(t.data as Uint16Array)].map(f16ToF32);
  if (t.dtype === 'bf16') return [...(t.data as Uint16Array)].map(bf16ToF32);
  if (t.dtype === 'bool') return [...(t.data as Uint8Array)].map((b) => b !== 0);
  if (t.dtype === 'i64') return [...(t.data as BigInt64Array)].map(Number);
  return Array.from(t.data as ArrayLike<number>);
}

const TORCH_DTYPES: Record<string, string> = {
  float32: 'f32', float64: 'f64', float16: 'f16', bfloat16: 'bf16', int64: 'i64', int32: 'i32', int16: 'i16',
  int8: 'i8', uint8: 'u8', bool: 'bool',
};

// ---- what torch.save writes -------------------------------------------------------------------------------------
for (const file of ['views.pth', 'views_p4.pth']) {
  test(`${file}: views, strides, shared storages and every dtype read as torch sees them`, () => {
    const expected: Record<string, { dtype: string; shape: number[]; values: (number | boolean)[]; bits?: number[] }> =
      JSON.parse(readFileSync(resolve(DIR, 'views.expected.json'), 'utf8'));
    const ckpt = readTorchCheckpoint(load(file), file);
    assert.is(ckpt.archiveName, file.replace('.pth', ''));
    assert.equal(ckpt.locations, ['cpu']);
    const tensors = asMap(asMap(ckpt.root).get('tensors'));
    assert.equal([...tensors.keys()].sort(), Object.keys(expected).sort());
    for (const [name, want] of Object.entries(expected)) {
      const t = tensors.get(name);
      assert.ok(isHostTensor(t), name);
      assert.is(t.dtype, TORCH_DTYPES[want.dtype], name);
      assert.equal(t.shape, want.shape, name);
      assert.equal(values(t), want.values, name);
      assert.is(t.data.length, want.values.length, `${name} is contiguous, exactly its own elements`);
    }
    const f16 = tensors.get('f16') as HostTensor;
    assert.equal([...(f16.data as Uint16Array)], expected.f16!.bits!.map((b) => b & 0xffff));
    assert.equal((tensors.get('i64') as HostTensor).data, new BigInt64Array([-(2n ** 40n), 7n]));
    // 21 tensors over 16 storages: the views of `base` and the two halves of `shared` share theirs.
    assert.is(ckpt.storages, 16);
  });

  test(`${file}: Python, numpy and torch values`, () => {
    const root = asMap(readTorchCheckpoint(load(file), file).root);
    const py = asMap(root.get('py'));
    assert.is(py.get('int'), -7);
    assert.is(py.get('big'), 2n ** 70n);
    assert.is(py.get('neg_big'), -(2n ** 65n));
    assert.is(py.get('float'), 0.1);
    assert.is(py.get('str'), 'ümlaut ✓');
    assert.equal(py.get('bytes'), new Uint8Array([0, 255, 97, 98]));
    assert.is(py.get('none'), null);
    assert.is(py.get('true'), true);
    assert.is(py.get('false'), false);
    assert.equal(py.get('list'), [1, [2, 3]]);
    assert.equal(py.get('tuple'), [1, 'a']);
    assert.equal(py.get('set'), new Set([3]));
    assert.equal(py.get('int_keys'), new Map<unknown, unknown>([[1, 'one'], [2, 'two']]));

    const np = asMap(root.get('np'));
    assert.is(np.get('f64'), 0.5);
    assert.is(np.get('f32'), 1.25);
    assert.is(np.get('i64'), -3);
    assert.is(np.get('i32'), 9);
    assert.is(np.get('bool'), true);
    assert.is(np.get('f16'), 0.5);
    const arr = np.get('array');
    assert.ok(isHostTensor(arr));
    assert.equal([arr.dtype, arr.shape, [...arr.data as Float32Array]], ['f32', [2, 3], [0, 0.25, 0.5, 0.75, 1, 1.25]]);
    const fortran = np.get('fortran');
    assert.ok(isHostTensor(fortran));
    assert.equal([fortran.dtype, fortran.shape, [...fortran.data as Int32Array]], ['i32', [2, 3], [0, 1, 2, 3, 4, 5]]);

    const torch = asMap(root.get('torch'));
    assert.is(torch.get('device'), 'cuda:0');
    assert.is(torch.get('cpu'), 'cpu');
    assert.equal(torch.get('size'), [2, 3]);
    assert.is((torch.get('dtype') as { dtype: string }).dtype, 'f16');
  });
}

test('finds the archive folder whatever its name', () => {
  assert.is(readTorchCheckpoint(load('zse_tiny.pth')).archiveName, 'zse_tiny');
  assert.is(readTorchCheckpoint(load('zse_tiny_fp16.pth')).archiveName, 'archive');
});

test('storages saved from CUDA (location cuda:0) load on the host', () => {
  const ckpt = readTorchCheckpoint(load('zse_tiny_dp_cuda.pth'), 'zse_tiny_dp_cuda.pth');
  assert.equal(ckpt.locations, ['cuda:0']);
  const cpu = asMap(asMap(readTorchCheckpoint(load('zse_tiny.pth')).root).get('model'));
  const cuda = asMap(asMap(ckpt.root).get('state_dict'));
  const a = cpu.get('conv2d.weight') as HostTensor;
  const b = cuda.get('module.conv2d.weight') as HostTensor;
  assert.equal(b.shape, a.shape);
  assert.equal(b.data, a.data);
});

test('the official checkpoint format: numpy float64 scalars beside the state dict', () => {
  const root = asMap(readTorchCheckpoint(load('zse_tiny.pth'), 'zse_tiny.pth').root);
  assert.equal([...root.keys()], ['model', 'epoch', 'map_all', 'precision_100']);
  assert.is(root.get('epoch'), 3);
  assert.is(root.get('map_all'), 0.5);
  assert.is(root.get('precision_100'), 0.6);
});

// ---- refusing code -----------------------------------------------------------------------------------------------
test('refuses a checkpoint whose pickle calls os.system, by name', () => {
  const e = throwsSketch(() => readTorchCheckpoint(load('malicious.pth'), 'malicious.pth'), 'UNSAFE_PICKLE',
    'refusing to load malicious.pth', 'posix.system', 'os.system', 'torch.save never writes', 'state_dict');
  assert.ok(e.hint);
});

/** A minimal pickle writer for hand-made (hostile or damaged) archives. */
class Pickle {
  private readonly b: number[] = [];
  raw(...xs: number[]): this { this.b.push(...xs); return this; }
  proto(p = 2) { return this.raw(0x80, p); }
  str(s: string) {
    const u = enc.encode(s);
    return this.raw(0x58, u.length & 0xff, (u.length >> 8) & 0xff, 0, 0, ...u);
  }
  int(n: number) { return this.raw(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff); }
  global(module: string, name: string) { return this.raw(0x63, ...enc.encode(`${module}\n${name}\n`)); }
  mark() { return this.raw(0x28); }
  tuple() { return this.raw(0x74); }
  reduce() { return this.raw(0x52); }
  stop() { return this.raw(0x2e); }
  /** `_rebuild_tensor_v2(('storage', type, key, 'cpu', numel), offset, size, stride, False, OrderedDict())` */
  tensor(storageType: string, key: string, numel: number, offset: number, size: number[], stride: number[], v3dtype?: string) {
    this.global('torch._utils', v3dtype ? '_rebuild_tensor_v3' : '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', storageType).str(key).str('cpu').int(numel).tuple().raw(0x51);
    this.int(offset).mark();
    for (const s of size) this.int(s);
    this.tuple().mark();
    for (const s of stride) this.int(s);
    this.tuple().raw(0x89).global('collections', 'OrderedDict').mark().tuple().reduce();
    if (v3dtype) this.global('torch', v3dtype);
    return this.tuple().reduce();
  }
  bytes() { return new Uint8Array(this.b); }
}

function archive(pkl: Uint8Array, extra: Record<string, Uint8Array> = {}, folder = 'archive'): Uint8Array {
  const files: Zippable = { [`${folder}/data.pkl`]: [pkl, { level: 0 }] };
  for (const [k, v] of Object.entries(extra)) files[`${folder}/${k}`] = [v, { level: 0 }];
  files[`${folder}/version`] = [enc.encode('3\n'), { level: 0 }];
  return zipSync(files);
}
const f32bytes = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

test('refuses every name outside the allow-list, however the pickle spells it', () => {
  const evalP4 = new Pickle().proto(4).raw(0x8c, 8, ...enc.encode('builtins'), 0x8c, 4, ...enc.encode('eval'), 0x93)
    .mark().str('1+1').tuple().reduce().stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(evalP4), 'x.pth'), 'UNSAFE_PICKLE', 'x.pth', 'builtins.eval');

  const inst = new Pickle().proto(0).mark().str('id').raw(0x69, ...enc.encode('os\nsystem\n')).stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(inst), 'x.pth'), 'UNSAFE_PICKLE', 'os.system');

  const getattr = new Pickle().proto(2).global('__builtin__', 'getattr').stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(getattr), 'x.pth'), 'UNSAFE_PICKLE', '__builtin__.getattr', 'builtins.getattr');

  const torchLoad = new Pickle().proto(2).global('torch', 'load').stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(torchLoad), 'x.pth'), 'UNSAFE_PICKLE', 'torch.load');

  const ext = new Pickle().proto(2).raw(0x82, 1).stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(ext), 'x.pth'), 'UNSAFE_PICKLE', 'extension registry');

  const codec = new Pickle().proto(2).global('_codecs', 'encode').mark().str('eA==').str('base64').tuple().reduce().stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(codec), 'x.pth'), 'NOT_A_CHECKPOINT', 'base64', 'latin1');
});

// ---- hand-made archives: the paths torch 1.13 does not exercise, and damage -------------------------------------
test('big-endian archives (byteorder file) are swapped to little-endian', () => {
  const pkl = new Pickle().proto(2).tensor('FloatStorage', '0', 2, 0, [2], [1]).stop().bytes();
  const be = new Uint8Array(8);
  new DataView(be.buffer).setFloat32(0, 1.5, false);
  new DataView(be.buffer).setFloat32(4, -2, false);
  const t = readTorchCheckpoint(archive(pkl, { 'data/0': be, byteorder: enc.encode('big') })).root as HostTensor;
  assert.equal([...t.data as Float32Array], [1.5, -2]);
});

test('untyped storages with a _rebuild_tensor_v3 dtype (newer torch)', () => {
  const halfBits = new Uint16Array([0x3c00, 0xc000, 0x3555]);
  const pkl = new Pickle().proto(2).tensor('UntypedStorage', '0', 6, 0, [3], [1], 'float16').stop().bytes();
  const t = readTorchCheckpoint(archive(pkl, { 'data/0': new Uint8Array(halfBits.buffer) })).root as HostTensor;
  assert.is(t.dtype, 'f16');
  assert.equal([...t.data as Uint16Array], [...halfBits]);
});

test('a torch.save zip at the archive root (no folder) still reads', () => {
  const pkl = new Pickle().proto(2).tensor('FloatStorage', '0', 2, 0, [2], [1]).stop().bytes();
  const zip = zipSync({ 'data.pkl': [pkl, { level: 0 }], 'data/0': [f32bytes([3, 4]), { level: 0 }] });
  const ckpt = readTorchCheckpoint(zip);
  assert.is(ckpt.archiveName, '');
  assert.equal([...(ckpt.root as HostTensor).data as Float32Array], [3, 4]);
});

test('damaged archives fail with NOT_A_CHECKPOINT naming what is wrong', () => {
  const f = 'broken.pth';
  const pkl = new Pickle().proto(2).tensor('FloatStorage', '0', 4, 0, [2, 2], [2, 1]).stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(pkl), f), 'NOT_A_CHECKPOINT', f, 'archive/data/0', 'missing');
  throwsSketch(() => readTorchCheckpoint(archive(pkl, { 'data/0': f32bytes([1]) }), f), 'NOT_A_CHECKPOINT',
    'holds 4 bytes', 'needs 16');
  const past = new Pickle().proto(2).tensor('FloatStorage', '0', 4, 2, [2, 2], [2, 1]).stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(past, { 'data/0': f32bytes([1, 2, 3, 4]) }), f), 'NOT_A_CHECKPOINT',
    'reaches element 5', 'holds 4');
  const pid = new Pickle().proto(2).mark().str('module').str('x').tuple().raw(0x51).stop().bytes();
  throwsSketch(() => readTorchCheckpoint(archive(pid), f), 'NOT_A_CHECKPOINT', 'unknown persistent id');
  throwsSketch(() => readTorchCheckpoint(archive(pkl.slice(0, 30)), f), 'NOT_A_CHECKPOINT', 'truncated');
  throwsSketch(() => readTorchCheckpoint(archive(new Uint8Array([0x80, 2, 0xff])), f), 'NOT_A_CHECKPOINT', 'unknown opcode 0xff');
  throwsSketch(() => readTorchCheckpoint(archive(new Uint8Array([0x80, 2, 0x4e, 0x4e, 0x2e])), f), 'NOT_A_CHECKPOINT',
    'STOP with 2 values');
  throwsSketch(() => readTorchCheckpoint(archive(new Uint8Array([0x80, 2, 0x68, 7, 0x2e])), f), 'NOT_A_CHECKPOINT',
    'memo slot 7');
  throwsSketch(() => readTorchCheckpoint(archive(new Uint8Array([0x80, 2, 0x30, 0x2e])), f), 'NOT_A_CHECKPOINT', 'empty stack');
  throwsSketch(() => readTorchCheckpoint(archive(new Uint8Array([0x80, 2, 0x4e, 0x73, 0x2e])), f), 'NOT_A_CHECKPOINT');
  throwsSketch(() => readTorchCheckpoint(archive(pkl, { 'data/0': f32bytes([1, 2, 3, 4]), byteorder: enc.encode('middle') }), f),
    'NOT_A_CHECKPOINT', 'byte order');
  throwsSketch(() => readTorchCheckpoint(zipSync({ 'a/weights.bin': new Uint8Array(4), 'a/info.txt': enc.encode('x') }), f),
    'NOT_A_CHECKPOINT', 'no data.pkl', 'a/weights.bin');
  const npz = zipSync({ 'w.npy': writeNpy({ dtype: 'f32', shape: [1], data: new Float32Array(1) }) });
  throwsSketch(() => readTorchCheckpoint(npz, 'w.npz'), 'NOT_A_CHECKPOINT', '.npz', 'readNpy');
});

test('corrupted pickles fail as SketchErrors, never as raw exceptions', () => {
  const files = unzipSync(load('views.pth'));
  const pkl = files['views/data.pkl']!;
  let seed = 99;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  for (let round = 0; round < 300; round++) {
    const bad = pkl.slice(0, round % 3 === 0 ? rand(pkl.length) : pkl.length);
    for (let k = 0; k < 1 + rand(4); k++) bad[rand(bad.length)] = rand(256);
    const zip = zipSync(Object.fromEntries(Object.entries(files).map(([n, b]) => [n, [n.endsWith('data.pkl') ? bad : b, { level: 0 }]])) as Zippable);
    try {
      readTorchCheckpoint(zip, 'fuzz.pth');
    } catch (e) {
      if (!(e instanceof SketchError)) throw new Error(`round ${round}: raw ${(e as Error)?.stack ?? e}`);
    }
  }
});

test('a truncated checkpoint (cut-short download) says so', () => {
  const whole = load('zse_tiny.pth');
  throwsSketch(() => readTorchCheckpoint(whole.slice(0, 30000), 'best_checkpoint.pth'), 'NOT_A_CHECKPOINT',
    'best_checkpoint.pth', 'truncated or damaged', 'fetch the file again');
});

// ---- files that are not checkpoints -------------------------------------------------------------------------------
test('legacy (pre-1.6) checkpoints: what they are and how to re-save', () => {
  throwsSketch(() => readTorchCheckpoint(load('legacy.pth'), 'legacy.pth'), 'NOT_A_CHECKPOINT',
    'legacy.pth', 'legacy', 'pre-1.6', "torch.save(torch.load('legacy.pth'", 'zip');
});

test('TorchScript archives: what they are and how to export their weights', () => {
  throwsSketch(() => readTorchCheckpoint(load('torchscript.pt'), 'torchscript.pt'), 'NOT_A_CHECKPOINT',
    'torchscript.pt', 'TorchScript', 'torch.jit.load', 'state_dict()');
});

test('anything else is named by its content', () => {
  const cases: [Uint8Array, string][] = [
    [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), 'looks like a PNG image'],
    [new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16]), 'looks like a JPEG image'],
    [enc.encode('hello, these are my weights\nsecond line'), 'looks like text: "hello, these are my weights"'],
    [enc.encode('<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>'), 'Google Drive'],
    [new Uint8Array(0), 'is empty'],
    [new Uint8Array([0x1f, 0x8b, 8, 0]), 'gzip'],
    [new Uint8Array([0x80, 0x04, 0x95, 0, 0]), 'bare Python pickle'],
    [writeSafetensors({ w: { dtype: 'f32', shape: [1], data: new Float32Array(1) } }), 'safetensors'],
    [enc.encode('version https://git-lfs.github.com/spec/v1\noid sha256:abc'), 'Git LFS pointer'],
  ];
  let seed = 12345;
  const random = new Uint8Array(256).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24) | 0);
  random[0] = 0x07;
  random[10] = 0;
  cases.push([random, 'unrecognized binary data (starts with 07 ']);
  for (const [bytes, what] of cases) {
    throwsSketch(() => readTorchCheckpoint(bytes, 'model.pth'), 'NOT_A_CHECKPOINT', 'model.pth', what);
  }
  const drive = throwsSketch(() => readTorchCheckpoint(cases[3]![0], 'model.pth'), 'NOT_A_CHECKPOINT');
  assert.ok(drive.hint?.includes('download'));
  assert.is(identifyFile(load('zse_tiny.pth')).kind, 'zip');
  assert.is(identifyFile(load('legacy.pth')).kind, 'torch-legacy');
});


// ---- issue 15: bounded resources and integrity ----------------------------------------------------------------------
/** A pickled dict {name: tensor} of `n` stride-0 views of `size` over a 1-element storage (an expand). */
function expandDict(n: number, size: number[]): Uint8Array {
  const p = new Pickle().proto(2).raw(0x7d).mark(); // EMPTY_DICT, MARK
  for (let i = 0; i < n; i++) p.str(`t${i}`).tensor('FloatStorage', '0', 1, 0, size, size.map(() => 0));
  return p.raw(0x75).stop().bytes(); // SETITEMS
}

test('a stride-0 view over a 1-element storage is not expanded on load, and refused past the copy budget', () => {
  const t0 = performance.now();
  // 40 GB as an expand of one float: reading the checkpoint copies nothing; reading the tensor is refused before
  // allocating (this test would need 40 GB otherwise).
  const root = asMap(readTorchCheckpoint(archive(expandDict(1, [100_000, 100_000]), { 'data/0': f32bytes([7]) }), 'bomb.pth').root);
  const t = root.get('t0') as HostTensor;
  assert.ok(isHostTensor(t));
  assert.equal(t.shape, [100_000, 100_000]);
  throwsSketch(() => t.data, 'BAD_WEIGHTS', 'bomb.pth', 'stride', 'contiguous()');
  // 2,000 such views of 1 GB each in one small file: still nothing copied.
  const many = asMap(readTorchCheckpoint(archive(expandDict(2000, [16384, 16384]), { 'data/0': f32bytes([7]) }), 'many.pth').root);
  assert.is(many.size, 2000);
  assert.ok(performance.now() - t0 < 5000, 'cheap');
  // A small expand (within the budget) still reads, with the right values.
  const small = asMap(readTorchCheckpoint(archive(expandDict(1, [3, 2]), { 'data/0': f32bytes([7]) })).root).get('t0') as HostTensor;
  assert.equal([...small.data as Float32Array], [7, 7, 7, 7, 7, 7]);
});

/** Sets every deflated central-directory entry's uncompressed size to `size` (a lying or bomb-like archive). */
function patchOriginalSizes(zip: Uint8Array, size: number): Uint8Array {
  const out = zip.slice();
  const dv = new DataView(out.buffer);
  for (let b = 0; b + 46 <= out.length; b++) {
    if (dv.getUint32(b, true) === 0x02014b50 && dv.getUint16(b + 10, true) === 8) dv.setUint32(b + 24, size, true);
  }
  return out;
}

test('zip bombs: the sum over entries is bounded relative to the file size and absolutely, before inflating', () => {
  const pkl = new Pickle().proto(2).tensor('FloatStorage', '0', 1, 0, [1], [1]).stop().bytes();
  // 150 deflated entries each declaring 60 MiB (9 GB in all), as the tester's 9.2 MB file.
  const files: Zippable = { 'archive/data.pkl': [pkl, { level: 0 }], 'archive/data/0': [f32bytes([1]), { level: 0 }] };
  for (let i = 0; i < 150; i++) files[`archive/data/x${i}`] = [new Uint8Array(1000), { level: 9 }];
  const bomb = patchOriginalSizes(zipSync(files), 60 * 2 ** 20);
  throwsSketch(() => readTorchCheckpoint(bomb, 'bomb.pth'), 'NOT_A_CHECKPOINT', 'bomb.pth', 'would inflate to', 'never writes');
  // A genuine deflate bomb: 64 MiB of zeros deflate to ~64 KB, far past twice the file's size plus 16 MiB.
  const real = zipSync({ 'archive/data.pkl': [pkl, { level: 0 }], 'archive/data/0': [new Uint8Array(64 * 2 ** 20), { level: 9 }] });
  assert.ok(real.length < 1 << 20);
  throwsSketch(() => readTorchCheckpoint(real, 'bomb.pth'), 'NOT_A_CHECKPOINT', 'would inflate to');
});

test('a deflated entry that inflates past its declared size is stopped mid-stream', () => {
  const pkl = new Pickle().proto(2).tensor('FloatStorage', '0', 1, 0, [1], [1]).stop().bytes();
  const zip = zipSync({ 'archive/data.pkl': [pkl, { level: 0 }], 'archive/data/0': [new Uint8Array(8 << 20), { level: 9 }] });
  throwsSketch(() => readTorchCheckpoint(patchOriginalSizes(zip, 4), 'liar.pth'), 'NOT_A_CHECKPOINT', 'liar.pth', 'inflates past');
});

test('zip CRC-32: a checkpoint with changed tensor bytes is refused, naming the entry', () => {
  const whole = load('zse_tiny.pth');
  const files = unzipSync(whole);
  const key = Object.keys(files).find((k) => /\/data\/\d+$/.test(k))!;
  const zip = zipSync(Object.fromEntries(Object.entries(files).map(([n, b]) => [n, [b, { level: 0 }]])) as Zippable);
  readTorchCheckpoint(zip, 'ok.pth');
  // Change 64 bytes of one storage in place (the archive's structure is untouched).
  const at = indexOf(zip, files[key]!.subarray(0, 64));
  assert.ok(at > 0);
  const bad = zip.slice();
  for (let i = 0; i < 64; i++) bad[at + i] ^= 0x5a;
  throwsSketch(() => readTorchCheckpoint(bad, 'flipped.pth'), 'NOT_A_CHECKPOINT', 'flipped.pth', key, 'CRC-32', 'fetch the file again');
});

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

test('CRC-32 matches node:zlib', async () => {
  const { crc32Portable: crc32 } = await import('../src/io/crc32.ts');
  const zlib = await import('node:zlib');
  const b = new Uint8Array(100_003);
  for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
  for (const n of [0, 1, 7, 8, 9, 63, 1000, 100_003]) assert.is(crc32(b.subarray(0, n)), zlib.crc32(b.subarray(0, n)), `n=${n}`);
  assert.is(crc32(b.subarray(500), crc32(b.subarray(0, 500))), zlib.crc32(b), 'continued');
});

test.run();
