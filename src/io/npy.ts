/**
 * NumPy .npy (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html): magic "\x93NUMPY", a
 * version byte pair, a header length (u16 in 1.0, u32 in 2.0/3.0), a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and '\n', then the raw data.
 */
import { API_MISUSE_HINT, SketchError } from '../core/errors.ts';
import { DTYPE_BYTES, numel, type DType, type HostTensor } from '../core/tensor.ts';
import { tensorBytes, typedArrayFromBytes } from './safetensors.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy pads the preamble plus header to a multiple of 64 bytes so the data can be memory-mapped aligned. */
const ARRAY_ALIGN = 64;
/** numpy leaves room to grow the first dimension in place: 21 digits minus the current ones, in spaces. */
const GROWTH_AXIS_MAX_DIGITS = 21;

/** The type code after the byte-order character, for the dtypes sketchgpu reads. */
const CODE_TO_DTYPE: Record<string, DType> = {
  f8: 'f64', f4: 'f32', f2: 'f16', i8: 'i64', i4: 'i32', i2: 'i16', i1: 'i8', u1: 'u8', b1: 'bool',
};
const DTYPE_TO_DESCR: Partial<Record<DType, string>> = {
  f64: '<f8', f32: '<f4', f16: '<f2', i64: '<i8', i32: '<i4', i16: '<i2', i8: '|i1', u8: '|u1', bool: '|b1',
};
const NUMPY_NAMES: Record<string, string> = {
  u2: 'uint16', u4: 'uint32', u8: 'uint64', c8: 'complex64', c16: 'complex128', f16: 'float128', O: 'object',
};

// ---- a parser for the Python literals numpy writes in the header -------------------------------------------------
type PyLiteral = string | number | boolean | null | PyLiteral[] | { [k: string]: PyLiteral };

function parsePyLiteral(src: string): PyLiteral {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`${what} at character ${i} of ${JSON.stringify(src.trim())}`);
  };
  const ws = () => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const value = (): PyLiteral => {
    ws();
    const c = src[i];
    if (c === '{') {
      i++;
      const obj: { [k: string]: PyLiteral } = Object.create(null);
      for (;;) {
        ws();
        if (src[i] === '}') { i++; return obj; }
        const key = value();
        if (typeof key !== 'string') fail('expected a string key');
        ws();
        if (src[i] !== ':') fail("expected ':'");
        i++;
        obj[key as string] = value();
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== '}') fail("expected ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const items: PyLiteral[] = [];
      for (;;) {
        ws();
        if (src[i] === close) { i++; return items; }
        items.push(value());
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== close) fail(`expected ',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = src.slice(i + 1, end);
      if (s.includes('\\')) fail('escapes in header strings are not supported');
      i = end + 1;
      return s;
    }
    const m = /^(-?\d+)L?|^(True|False|None)/.exec(src.slice(i));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    if (m[1] !== undefined) return Number(m[1]);
    return m[2] === 'True' ? true : m[2] === 'False' ? false : null;
  };
  const v = value();
  ws();
  if (i !== src.length) fail('trailing characters');
  return v;
}

// ---- reading ----------------------------------------------------------------------------------------------------
export function readNpy(bytes: Uint8Array, fileName = 'npy file'): HostTensor {
  const bad = (what: string, hint = 'Write it with `sketchgpu preprocess`, or numpy.save a float32 array of the model input shape.') => new SketchError('BAD_NPY', `${fileName}: ${what}`, hint);
  if (bytes.length < 10 || MAGIC.some((b, k) => bytes[k] !== b)) {
    throw bad('not a .npy file (it does not start with "\\x93NUMPY")', 'write it with numpy.save');
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (major < 1 || major > 3 || minor !== 0) {
    throw bad(`unknown .npy format version ${major}.${minor} (sketchgpu reads 1.0, 2.0 and 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw bad('truncated inside the header');
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) throw bad(`truncated: the header says ${headerLen} bytes but the file ends first`);
  // Versions 1.0 and 2.0 store the header as latin-1, 3.0 as UTF-8 (for unicode field names).
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lenBytes, dataStart));

  let header: PyLiteral;
  try {
    header = parsePyLiteral(headerText);
  } catch (e) {
    throw bad(`unreadable header (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a dict');
  const { descr, fortran_order: fortranOrder, shape } = header as Record<string, PyLiteral>;

  if (typeof descr !== 'string') {
    throw bad('holds a structured (record) array; sketchgpu reads plain numeric arrays only',
      'save each field as its own array');
  }
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`header shape ${JSON.stringify(shape)} is not a tuple of non-negative integers`);
  }
  const order = descr[0]!;
  const code = descr.slice(1);
  if (code === 'O') {
    throw bad('holds Python objects (an object array, stored as a pickle), which sketchgpu never unpickles',
      'save a numeric array instead, e.g. np.save(path, np.asarray(x, dtype=np.float32))');
  }
  const dtype = CODE_TO_DTYPE[code];
  if (!dtype || !'<>|='.includes(order)) {
    const name = NUMPY_NAMES[code] ?? descr;
    throw bad(`has dtype ${name} (${descr}), which sketchgpu does not read (it reads float64/32/16, int64/32/16/8, uint8, bool)`,
      "convert it first, e.g. np.save(path, arr.astype('<f4'))");
  }
  if (order === '>' && DTYPE_BYTES[dtype] > 1) {
    throw bad(`is big-endian (${descr}); sketchgpu reads little-endian data only`,
      `convert it first: np.save(path, arr.astype('<${code}'))`);
  }
  if (fortranOrder !== false) {
    throw bad('is stored in Fortran (column-major) order; sketchgpu reads C order only',
      'convert it first: np.save(path, np.ascontiguousarray(arr))');
  }

  const dims = shape as number[];
  const count = numel(dims);
  const need = count * DTYPE_BYTES[dtype];
  const have = bytes.length - dataStart;
  if (have < need) {
    throw bad(`truncated: ${descr} ${JSON.stringify(dims)} needs ${need} bytes of data but the file has ${have}`,
      'the file was cut short; write it again');
  }
  return { dtype, shape: dims, data: typedArrayFromBytes(dtype, bytes, dataStart, count) };
}

// ---- writing ----------------------------------------------------------------------------------------------------
/** Writes version 1.0 (2.0 if the header would not fit), byte-identical to numpy.save of the same array. */
export function writeNpy(t: HostTensor): Uint8Array {
  const descr = DTYPE_TO_DESCR[t.dtype];
  if (!descr) {
    throw new SketchError('BAD_NPY', `cannot write a ${t.dtype} tensor as .npy: numpy has no ${t.dtype} dtype`,
      'convert it to f32 first (toFloat32)');
  }
  const expected = numel(t.shape) * DTYPE_BYTES[t.dtype];
  if (t.data.byteLength !== expected) {
    throw new SketchError('BAD_ARGUMENT',
      `tensor is ${t.dtype} ${JSON.stringify(t.shape)} (${expected} bytes) but holds ${t.data.byteLength} bytes`, API_MISUSE_HINT);
  }
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  if (t.shape.length > 0) header += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(t.shape[0]).length));

  const hlen = header.length + 1; // + the final '\n'
  let major = 1;
  let pad = ARRAY_ALIGN - ((MAGIC.length + 2 + 2 + hlen) % ARRAY_ALIGN);
  if (hlen + pad > 0xffff) {
    major = 2;
    pad = ARRAY_ALIGN - ((MAGIC.length + 2 + 4 + hlen) % ARRAY_ALIGN);
  }
  const lenBytes = major === 1 ? 2 : 4;
  const preamble = MAGIC.length + 2 + lenBytes;
  const out = new Uint8Array(preamble + hlen + pad + t.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, hlen + pad, true);
  else view.setUint32(8, hlen + pad, true);
  for (let k = 0; k < header.length; k++) out[preamble + k] = header.charCodeAt(k);
  out.fill(0x20, preamble + header.length, preamble + header.length + pad);
  out[preamble + header.length + pad] = 0x0a;
  out.set(tensorBytes(t), preamble + hlen + pad);
  return out;
}
