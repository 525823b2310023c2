import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SketchError } from '../src/core/errors.ts';
import { readNpy, writeNpy } from '../src/io/npy.ts';
import { f16ToF32, f32ToF16, type HostTensor } from '../src/core/tensor.ts';
import { FIXTURES } from './paths.ts';

const DIR = resolve(FIXTURES, 'ckpt');
const load = (name: string) => new Uint8Array(readFileSync(resolve(DIR, name)));
const expected: Record<string, { shape: number[]; values: (number | boolean)[] }> =
  JSON.parse(readFileSync(resolve(DIR, 'npy.expected.json'), 'utf8'));

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

const DTYPES: Record<string, string> = {
  f4: 'f32', f8: 'f64', f2: 'f16', i8: 'i64', i4: 'i32', i2: 'i16', i1: 'i8', u1: 'u8', b1: 'bool',
  scalar_f4: 'f32', empty_f4: 'f32', long_shape: 'f32',
};

function values(t: HostTensor): (number | boolean)[] {
  if (t.dtype === 'f16') return [...(t.data as Uint16Array)].map(f16ToF32);
  if (t.dtype === 'bool') return [...(t.data as Uint8Array)].map((b) => b !== 0);
  if (t.dtype === 'i64') return [...(t.data as BigInt64Array)].map(Number);
  return Array.from(t.data as ArrayLike<number>);
}

test('reads what numpy.save writes, every supported dtype', () => {
  for (const [name, dtype] of Object.entries(DTYPES)) {
    const t = readNpy(load(`npy_${name}.npy`), name);
    assert.is(t.dtype, dtype, name);
    assert.equal(t.shape, expected[name]!.shape, name);
    assert.equal(values(t), expected[name]!.values, name);
  }
  // Exact 64-bit integers, not just their float approximations.
  assert.equal([...(readNpy(load('npy_i8.npy')).data as BigInt64Array)], [-(2n ** 62n), -1n, 5n]);
});

test('reads format versions 2.0 and 3.0', () => {
  const v1 = readNpy(load('npy_f4.npy'));
  for (const v of ['v2', 'v3']) {
    const bytes = load(`npy_f4_${v}.npy`);
    assert.is(bytes[6], Number(v[1]));
    const t = readNpy(bytes);
    assert.equal(t.shape, v1.shape);
    assert.equal([...t.data as Float32Array], [...v1.data as Float32Array]);
  }
});

test('writes byte-for-byte what numpy.save writes', () => {
  for (const name of Object.keys(DTYPES)) {
    const file = load(`npy_${name}.npy`);
    assert.equal([...writeNpy(readNpy(file))], [...file], name);
  }
});

test('round-trips from an unaligned buffer', () => {
  const t: HostTensor = { dtype: 'f64', shape: [2, 2], data: new Float64Array([1, -2.5, 1e300, 5e-324]) };
  const bytes = writeNpy(t);
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const back = readNpy(shifted.subarray(1));
  assert.equal(back.shape, [2, 2]);
  assert.equal([...back.data as Float64Array], [1, -2.5, 1e300, 5e-324]);
});

test('f32 -> f16 rounds exactly as torch .half() (ties to even, subnormals, overflow)', () => {
  const f32 = readNpy(load('half_cases.f32.npy'), 'half_cases.f32.npy');
  const f16 = readNpy(load('half_cases.f16.npy'), 'half_cases.f16.npy');
  assert.is(f16.dtype, 'f16');
  const src = f32.data as Float32Array;
  const want = f16.data as Uint16Array;
  for (let i = 0; i < src.length; i++) {
    const got = f32ToF16(src[i]!);
    // torch keeps NaN's payload bits differently; any NaN is a NaN.
    if (Number.isNaN(src[i])) assert.ok(Number.isNaN(f16ToF32(got)));
    else assert.is(got, want[i], `value ${src[i]} (#${i}): got 0x${got.toString(16)}, torch 0x${want[i]!.toString(16)}`);
  }
});

test('refuses unsupported or damaged files with BAD_NPY saying what to do', () => {
  throwsSketch(() => readNpy(load('npy_bad_fortran.npy'), 'a.npy'), 'BAD_NPY', 'a.npy', 'Fortran', 'np.ascontiguousarray');
  throwsSketch(() => readNpy(load('npy_bad_bigendian.npy'), 'a.npy'), 'BAD_NPY', 'big-endian', '>f4', "astype('<f4')");
  throwsSketch(() => readNpy(load('npy_bad_object.npy'), 'a.npy'), 'BAD_NPY', 'Python objects', 'never unpickles');
  throwsSketch(() => readNpy(load('npy_bad_structured.npy'), 'a.npy'), 'BAD_NPY', 'structured');
  throwsSketch(() => readNpy(load('npy_bad_u2.npy'), 'a.npy'), 'BAD_NPY', 'uint16', '<u2');
  throwsSketch(() => readNpy(load('npy_bad_truncated.npy'), 'a.npy'), 'BAD_NPY', 'truncated', 'needs 24 bytes', 'has 19');
  throwsSketch(() => readNpy(new TextEncoder().encode('hello, world'), 'a.npy'), 'BAD_NPY', 'not a .npy file');
  const v9 = load('npy_f4.npy').slice();
  v9[6] = 9;
  throwsSketch(() => readNpy(v9, 'a.npy'), 'BAD_NPY', 'version 9.0');
  throwsSketch(() => readNpy(load('npy_f4.npy').slice(0, 40), 'a.npy'), 'BAD_NPY', 'truncated', 'header');
  const garbled = load('npy_f4.npy').slice();
  garbled.set(new TextEncoder().encode("{'descr' '<f4'"), 10);
  throwsSketch(() => readNpy(garbled, 'a.npy'), 'BAD_NPY', 'unreadable header');
  const badShape = load('npy_f4.npy').slice();
  badShape.set(new TextEncoder().encode("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }"), 10);
  throwsSketch(() => readNpy(badShape, 'a.npy'), 'BAD_NPY', 'shape');
});

test('the writer refuses dtypes numpy has no name for', () => {
  throwsSketch(() => writeNpy({ dtype: 'bf16', shape: [1], data: new Uint16Array(1) }), 'BAD_NPY', 'bf16', 'toFloat32');
  throwsSketch(() => writeNpy({ dtype: 'f32', shape: [2], data: new Float32Array(3) }), 'BAD_ARGUMENT', '8 bytes');
});

test.run();
