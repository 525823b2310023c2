/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of JSON
 * `{"__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}, ...}`, then the data buffer.
 * Offsets are relative to the start of the buffer; data is little-endian, C order.
 */
import { API_MISUSE_HINT, SketchError } from '../core/errors.ts';
import { DTYPE_BYTES, numel, type DType, type HostTensor, type TypedData } from '../core/tensor.ts';

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/** The reference library refuses headers above 100 MB; so do we, before allocating or parsing anything. */
const MAX_HEADER_BYTES = 100_000_000;

const ST_TO_DTYPE: Record<string, DType> = {
  F64: 'f64', F32: 'f32', F16: 'f16', BF16: 'bf16', I64: 'i64', I32: 'i32', I16: 'i16', I8: 'i8', U8: 'u8', BOOL: 'bool',
};
const DTYPE_TO_ST: Record<DType, string> = {
  f64: 'F64', f32: 'F32', f16: 'F16', bf16: 'BF16', i64: 'I64', i32: 'I32', i16: 'I16', i8: 'I8', u8: 'U8', bool: 'BOOL',
};
/**
 * The reference writer lays tensors out by descending dtype rank, then by name, so every tensor starts aligned to
 * its element size (the header is padded to 8). Ranks follow its Dtype enum order.
 */
const ST_RANK: Record<DType, number> = {
  bool: 0, u8: 1, i8: 2, i16: 5, f16: 7, bf16: 8, i32: 9, f32: 11, f64: 12, i64: 13,
};

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A typed array over `count` elements of `dtype` at `bytes[byteOffset..]`: a view when the address is aligned to the
 * element size, else a copy (typed arrays cannot start at unaligned addresses). Assumes a little-endian host, as
 * every WebGPU platform is.
 */
export function typedArrayFromBytes(dtype: DType, bytes: Uint8Array, byteOffset: number, count: number): TypedData {
  if (!IS_LITTLE_ENDIAN) throw new SketchError('IO', 'sketchgpu needs a little-endian host', 'run on x86-64 or ARM');
  const size = DTYPE_BYTES[dtype];
  let buffer = bytes.buffer as ArrayBuffer;
  let start = bytes.byteOffset + byteOffset;
  if (start % size !== 0) {
    buffer = bytes.slice(byteOffset, byteOffset + count * size).buffer as ArrayBuffer;
    start = 0;
  }
  switch (dtype) {
    case 'f64': return new Float64Array(buffer, start, count);
    case 'f32': return new Float32Array(buffer, start, count);
    case 'f16':
    case 'bf16': return new Uint16Array(buffer, start, count);
    case 'i64': return new BigInt64Array(buffer, start, count);
    case 'i32': return new Int32Array(buffer, start, count);
    case 'i16': return new Int16Array(buffer, start, count);
    case 'i8': return new Int8Array(buffer, start, count);
    case 'u8':
    case 'bool': return new Uint8Array(buffer, start, count);
  }
}

/** The raw bytes of a tensor's data (a view, no copy). */
export function tensorBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The `__metadata__` of a safetensors file, read from its header alone (no tensor is touched); null when the bytes
 * are not a readable safetensors header (readSafetensors then says what is wrong).
 */
export function readSafetensorsMetadata(bytes: Uint8Array): Record<string, unknown> | null {
  if (bytes.length < 8) return null;
  try {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    if (n > MAX_HEADER_BYTES || 8 + n > bytes.length) return null;
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as unknown;
    const meta = isPlainObject(header) ? header['__metadata__'] : undefined;
    return isPlainObject(meta) ? meta : {};
  } catch {
    return null;
  }
}

export function readSafetensors(bytes: Uint8Array, fileName = 'safetensors file'): SafetensorsFile {
  const bad = (what: string, hint = 'the file is damaged or was not written by a safetensors writer; re-export it') =>
    new SketchError('BAD_WEIGHTS', `${fileName}: ${what}`, hint);

  if (bytes.length < 8) throw bad(`too short for a safetensors file (${bytes.length} bytes; the header length alone is 8)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw bad(`the safetensors header length field says ${headerLen} bytes, past the format's 100 MB limit: the file is damaged`);
  }
  const n = Number(headerLen);
  if (8 + n > bytes.length) {
    throw bad(`the safetensors header length field says ${n} bytes, which runs past the end of the file (${bytes.length} bytes): truncated or damaged?`,
      'the file is truncated; download or convert it again');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw bad('header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw bad(`header does not start with '{' (starts with ${JSON.stringify(text.slice(0, 16))})`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) throw bad('header is not a JSON object');

  const metadata: Record<string, string> = {};
  const rawMeta = header['__metadata__'];
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isPlainObject(rawMeta)) throw bad('__metadata__ is not an object of strings');
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw bad(`__metadata__.${k} is ${JSON.stringify(v)}, but metadata values must be strings`);
      Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }

  interface Entry { name: string; dtype: DType; shape: number[]; begin: number; end: number }
  const entries: Entry[] = [];
  const dataLen = bytes.length - 8 - n;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isPlainObject(info)) throw bad(`entry "${name}" is not an object`);
    const stDtype = info['dtype'];
    if (typeof stDtype !== 'string') throw bad(`tensor "${name}" has no dtype`);
    const dtype = ST_TO_DTYPE[stDtype];
    if (!dtype) {
      throw bad(`tensor "${name}" has dtype ${stDtype}, which sketchgpu does not read (it reads ${Object.keys(ST_TO_DTYPE).join(', ')})`,
        'convert that tensor to F32 or F16 before exporting');
    }
    const shape = info['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`tensor "${name}" has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
    }
    const offsets = info['data_offsets'];
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(`tensor "${name}" has data_offsets ${JSON.stringify(offsets)}, not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen) {
      throw bad(`tensor "${name}" has data_offsets [${begin}, ${end}] outside the ${dataLen}-byte data buffer`,
        end > dataLen ? 'the file is truncated; download or convert it again' : undefined);
    }
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw bad(`tensor "${name}" is ${stDtype} ${JSON.stringify(shape)} (${expected} bytes) but data_offsets span ${end - begin} bytes`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // As the reference reader: the tensors must tile the buffer exactly, with no overlap and no hole (a hole could
  // smuggle other content into a file that passes as weights).
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of byOffset) {
    if (e.begin !== cursor) {
      throw bad(e.begin < cursor
        ? `tensor "${e.name}" overlaps the previous tensor's bytes (starts at ${e.begin}, previous ends at ${cursor})`
        : `bytes ${cursor}..${e.begin} of the data buffer belong to no tensor (before "${e.name}")`);
    }
    cursor = e.end;
  }
  if (cursor !== dataLen) throw bad(`the data buffer has ${dataLen - cursor} trailing bytes that belong to no tensor`);

  const tensors = new Map<string, HostTensor>();
  const dataStart = 8 + n;
  for (const e of entries) {
    tensors.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      data: typedArrayFromBytes(e.dtype, bytes, dataStart + e.begin, numel(e.shape)),
    });
  }
  return { tensors, metadata };
}

/**
 * Serializes as the reference writer does: data laid out by descending dtype rank then name, header JSON compact
 * with `__metadata__` first, padded with spaces to a multiple of 8 bytes. Metadata keys are written sorted.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list: [string, HostTensor][] = tensors instanceof Map
    ? [...(tensors as ReadonlyMap<string, HostTensor>)]
    : Object.entries(tensors as Record<string, HostTensor>);
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SketchError('BAD_ARGUMENT', 'a tensor cannot be named __metadata__ in a safetensors file', 'Rename the tensor.');
    const expected = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) {
      throw new SketchError('BAD_ARGUMENT',
        `tensor "${name}" is ${t.dtype} ${JSON.stringify(t.shape)} (${expected} bytes) but holds ${t.data.byteLength} bytes`, API_MISUSE_HINT);
    }
  }
  list.sort(([na, a], [nb, b]) => ST_RANK[b.dtype] - ST_RANK[a.dtype] || (na < nb ? -1 : na > nb ? 1 : 0));

  // Null-prototype objects, so a tensor named "__proto__" is an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) {
    const sorted: Record<string, string> = Object.create(null);
    for (const k of Object.keys(metadata).sort()) {
      const v = metadata[k];
      if (typeof v !== 'string') throw new SketchError('BAD_ARGUMENT', `safetensors metadata "${k}" must be a string`, 'Convert the value to a string (e.g. JSON.stringify).');
      sorted[k] = v;
    }
    header['__metadata__'] = sorted;
  }
  let offset = 0;
  for (const [name, t] of list) {
    header[name] = { dtype: DTYPE_TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  const out = new Uint8Array(8 + json.length + pad + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length + pad), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + json.length + pad);
  let at = 8 + json.length + pad;
  for (const [, t] of list) {
    out.set(tensorBytes(t), at);
    at += t.data.byteLength;
  }
  return out;
}
