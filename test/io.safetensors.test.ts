import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SketchError } from '../src/core/errors.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { DTYPE_BYTES, type DType, type HostTensor } from '../src/core/tensor.ts';

function throwsSketch(fn: () => unknown, code: string, ...words: string[]): SketchError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SketchError)) throw new Error(`expected SketchError ${code}, got ${e}`);
    assert.is(e.code, code, e.message);
    const text = `${e.message}\n${e.hint ?? ''}`;
    for (const w of words) assert.ok(text.includes(w), `"${w}" not in: ${text}`);
    return e;
  }
  throw new Error(`expected SketchError ${code}, but nothing was thrown`);
}

const enc = new TextEncoder();
/** A safetensors file from a header object (or raw header text) and a data buffer, as a hand-made writer would. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), rawHeader?: Uint8Array): Uint8Array {
  const h = rawHeader ?? enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

// Expected bytes from the reference implementation's own unit tests (huggingface/safetensors, tensor.rs).
test('writes byte-for-byte what the reference writer writes', () => {
  const t: HostTensor = { dtype: 'f32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) };
  const out = writeSafetensors(new Map([['attn0', t]]));
  const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  const expected = [72, 0, 0, 0, 0, 0, 0, 0, ...enc.encode(header), 32, 32, 32, 32, 32, 32, 32,
    0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64];
  assert.equal([...out], expected);

  assert.equal([...writeSafetensors(new Map())], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  const withMeta = writeSafetensors({}, { framework: 'pt' });
  assert.equal([...withMeta], [40, 0, 0, 0, 0, 0, 0, 0, ...enc.encode('{"__metadata__":{"framework":"pt"}}'), 32, 32, 32, 32, 32]);
});

const CTOR = {
  f64: Float64Array, f32: Float32Array, f16: Uint16Array, bf16: Uint16Array, i64: BigInt64Array, i32: Int32Array,
  i16: Int16Array, i8: Int8Array, u8: Uint8Array, bool: Uint8Array,
} as const;

function sample(dtype: DType, shape: number[], seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(n * DTYPE_BYTES[dtype]);
  for (let i = 0; i < bytes.length; i++) bytes[i] = dtype === 'bool' ? (i + seed) & 1 : (i * 31 + seed * 7) & 0xff;
  return { dtype, shape, data: new CTOR[dtype](bytes.buffer) };
}

const bytesOf = (t: HostTensor) => [...new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)];

test('round-trips every dtype, aligned, with sorted metadata', () => {
  const dtypes: DType[] = ['bool', 'u8', 'i8', 'i16', 'f16', 'bf16', 'i32', 'f32', 'f64', 'i64'];
  const tensors = new Map<string, HostTensor>();
  dtypes.forEach((d, k) => tensors.set(`t.${d}`, sample(d, [3, k + 1], k)));
  tensors.set('scalar', { dtype: 'f32', shape: [], data: new Float32Array([2.5]) });
  tensors.set('empty', { dtype: 'f32', shape: [0, 4], data: new Float32Array(0) });
  tensors.set('__proto__', { dtype: 'u8', shape: [1], data: new Uint8Array([9]) });
  const meta: Record<string, string> = { zeta: 'z', alpha: 'a' };
  Object.defineProperty(meta, '__proto__', { value: 'p', enumerable: true });
  const bytes = writeSafetensors(tensors, meta);

  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(headerLen % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  assert.equal(Object.keys(header)[0], '__metadata__');
  assert.equal(Object.keys(header.__metadata__), ['__proto__', 'alpha', 'zeta']);
  // Layout by descending dtype rank then name keeps every tensor aligned to its element size.
  for (const [name, info] of Object.entries<{ dtype: string; data_offsets: [number, number] }>(header)) {
    if (name === '__metadata__') continue;
    const size = { BOOL: 1, U8: 1, I8: 1, I16: 2, F16: 2, BF16: 2, I32: 4, F32: 4, F64: 8, I64: 8 }[info.dtype]!;
    assert.is((8 + headerLen + info.data_offsets[0]) % size, 0, name);
  }
  assert.equal(Object.keys(header).slice(1, 3), ['t.i64', 't.f64']);

  const back = readSafetensors(bytes);
  assert.equal(back.metadata.alpha, 'a');
  assert.equal(back.metadata.zeta, 'z');
  assert.is(Object.getOwnPropertyDescriptor(back.metadata, '__proto__')?.value, 'p');
  assert.is(back.tensors.size, tensors.size);
  for (const [name, t] of tensors) {
    const r = back.tensors.get(name)!;
    assert.ok(r, name);
    assert.is(r.dtype, t.dtype, name);
    assert.equal(r.shape, t.shape, name);
    assert.equal(bytesOf(r), bytesOf(t), name);
  }
});

test('reads tensors at unaligned addresses by copying', () => {
  const f32 = new Float32Array([1.5, -2, 3.25]);
  const file = writeSafetensors({ a: { dtype: 'u8', shape: [1], data: new Uint8Array([7]) }, b: { dtype: 'f32', shape: [3], data: f32 } });
  // A hand-made file may put an f32 at an odd offset: u8 first, then f32 right after it.
  const header = { a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, b: { dtype: 'F32', shape: [3], data_offsets: [1, 13] } };
  const data = new Uint8Array(13);
  data[0] = 7;
  data.set(new Uint8Array(f32.buffer), 1);
  const odd = craft(header, data);
  assert.equal([...readSafetensors(odd).tensors.get('b')!.data as Float32Array], [1.5, -2, 3.25]);

  // ... and the whole file may sit at an odd offset of a larger buffer.
  const shifted = new Uint8Array(file.length + 3);
  shifted.set(file, 3);
  const t = readSafetensors(shifted.subarray(3)).tensors.get('b')!;
  assert.equal([...t.data as Float32Array], [1.5, -2, 3.25]);
});

test('aligned tensors are read without copying', () => {
  const file = writeSafetensors({ w: { dtype: 'f32', shape: [2], data: new Float32Array([1, 2]) } });
  const t = readSafetensors(file).tensors.get('w')!;
  assert.is(t.data.buffer, file.buffer);
});

test('refuses every malformed header with BAD_WEIGHTS naming the file', () => {
  const f = 'w.safetensors';
  const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const d8 = new Uint8Array(8);
  throwsSketch(() => readSafetensors(new Uint8Array(5), f), 'BAD_WEIGHTS', f, 'too short');
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
  throwsSketch(() => readSafetensors(huge, f), 'BAD_WEIGHTS', '100 MB');
  const past = craft(ok, d8).slice(0, 20);
  new DataView(past.buffer).setBigUint64(0, 400n, true);
  throwsSketch(() => readSafetensors(past, f), 'BAD_WEIGHTS', 'runs past the end', 'truncated');
  throwsSketch(() => readSafetensors(craft(null, d8, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), f), 'BAD_WEIGHTS', 'UTF-8');
  throwsSketch(() => readSafetensors(craft('{"x": ', d8), f), 'BAD_WEIGHTS', 'not valid JSON');
  throwsSketch(() => readSafetensors(craft('[1, 2]', d8), f), 'BAD_WEIGHTS', "start with '{'");
  throwsSketch(() => readSafetensors(craft({ __metadata__: { a: 1 }, ...ok }, d8), f), 'BAD_WEIGHTS', '__metadata__.a', 'strings');
  throwsSketch(() => readSafetensors(craft({ x: 5 }, d8), f), 'BAD_WEIGHTS', '"x" is not an object');
  throwsSketch(() => readSafetensors(craft({ x: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, d8), f),
    'BAD_WEIGHTS', 'F8_E4M3', '"x"', 'F32 or F16');
  throwsSketch(() => readSafetensors(craft({ x: { shape: [2], data_offsets: [0, 8] } }, d8), f), 'BAD_WEIGHTS', 'no dtype');
  throwsSketch(() => readSafetensors(craft({ x: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, d8), f),
    'BAD_WEIGHTS', 'shape', 'non-negative');
  throwsSketch(() => readSafetensors(craft({ x: { dtype: 'F32', shape: [2], data_offsets: [0] } }, d8), f),
    'BAD_WEIGHTS', 'data_offsets');
  throwsSketch(() => readSafetensors(craft({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, d8), f),
    'BAD_WEIGHTS', 'outside the 8-byte data buffer', 'truncated');
  throwsSketch(() => readSafetensors(craft({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d8), f),
    'BAD_WEIGHTS', 'F32 [3] (12 bytes)', 'span 8 bytes');
  throwsSketch(() => readSafetensors(craft({
    x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, y: { dtype: 'F32', shape: [1], data_offsets: [2, 6] },
  }, d8), f), 'BAD_WEIGHTS', 'overlaps');
  throwsSketch(() => readSafetensors(craft({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), f),
    'BAD_WEIGHTS', 'bytes 0..4', 'belong to no tensor');
  throwsSketch(() => readSafetensors(craft({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8), f),
    'BAD_WEIGHTS', '4 trailing bytes');
});

test('the writer refuses inconsistent tensors', () => {
  throwsSketch(() => writeSafetensors({ x: { dtype: 'f32', shape: [3], data: new Float32Array(2) } }), 'BAD_ARGUMENT', '"x"', '12 bytes');
  throwsSketch(() => writeSafetensors({ __metadata__: { dtype: 'f32', shape: [1], data: new Float32Array(1) } }), 'BAD_ARGUMENT', '__metadata__');
});

test.run();
