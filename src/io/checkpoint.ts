/**
 * PyTorch checkpoints (torch.save, zip format of torch >= 1.6) read without Python and without running code.
 *
 * The archive holds `<folder>/data.pkl` (the pickled object), `<folder>/data/<key>` (one raw little-endian buffer
 * per storage), `<folder>/version` and, from torch 1.10 or so, `<folder>/byteorder`. The folder is the file's stem
 * when torch.save was given a path and `archive` when it was given a file object, so it is found, not assumed.
 * Tensors are pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` with the storage a
 * persistent id `('storage', torch.FloatStorage, key, location, numel)`.
 */
import { SketchError } from '../core/errors.ts';
import { DTYPE_BYTES, numel, type DType, type HostTensor, type TypedData } from '../core/tensor.ts';
import { typedArrayFromBytes } from './safetensors.ts';
import { describe, PyCallable, unpickle } from './pickle.ts';
import { checkZipTotal, listZip, readZipEntry, ZipError, type ZipEntry } from './zip.ts';

export interface TorchCheckpoint {
  /** The unpickled object: dicts are Maps, tensors HostTensors (see pickle.ts for the full mapping). */
  root: unknown;
  /** The folder inside the zip ("archive", "best_checkpoint", ...). */
  archiveName: string;
  /** Device strings the storages were saved from ("cpu", "cuda:0"); all load to host memory. */
  locations: string[];
  /** Number of distinct storages (tensors that share one count once). */
  storages: number;
}

export function isHostTensor(v: unknown): v is HostTensor {
  if (v instanceof StridedView) return true; // without touching `data`, which would copy it
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Partial<HostTensor>;
  return typeof t.dtype === 'string' && t.dtype in DTYPE_BYTES && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}

// ---- what a file is ---------------------------------------------------------------------------------------------
/** What identifyFile can tell from the first bytes; 'torchscript' is only known after listing a zip's entries. */
export type FileKind = 'zip' | 'torchscript' | 'torch-legacy' | 'pickle' | 'safetensors' | 'npy' | 'other';

export interface FileIdentity {
  kind: FileKind;
  /** For messages: "looks like a PNG image", "is empty", ... */
  what: string;
}

const startsWith = (b: Uint8Array, sig: number[] | string, at = 0): boolean => {
  const s = typeof sig === 'string' ? [...sig].map((c) => c.charCodeAt(0)) : sig;
  if (b.length < at + s.length) return false;
  return s.every((x, k) => b[at + k] === x);
};

/** The pickled magic number the legacy (non-zip) torch.save writes first: LONG1 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/**
 * A safetensors file starts with its header length, then the header's `{"`. The length is not checked here: a file
 * whose length field is damaged is still a safetensors file, and readSafetensors says what is wrong with it.
 */
function looksLikeSafetensors(b: Uint8Array): boolean {
  return b.length >= 10 && b[8] === 0x7b && (b[9] === 0x22 || b[9] === 0x7d); // '{"' or '{}'
}

function textPreview(b: Uint8Array): string | null {
  const head = b.subarray(0, 512);
  let printable = 0;
  for (const c of head) if (c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127) || c >= 0x80) printable++;
  if (head.length === 0 || printable < head.length * 0.95 || head.includes(0)) return null;
  const text = new TextDecoder('utf-8').decode(head).trim();
  const first = text.split('\n')[0]!.trim();
  return first.length > 60 ? `${first.slice(0, 60)}…` : first;
}

/** Names a byte sequence by its content (magic numbers), never by its file extension. */
export function identifyFile(bytes: Uint8Array): FileIdentity {
  const b = bytes;
  if (b.length === 0) return { kind: 'other', what: 'is empty (0 bytes)' };
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04]) || startsWith(b, [0x50, 0x4b, 0x05, 0x06])) {
    return { kind: 'zip', what: 'is a zip archive' };
  }
  if (b[0] === 0x80 && LEGACY_MAGIC.every((x, k) => b[2 + k] === x)) {
    return { kind: 'torch-legacy', what: 'is a PyTorch checkpoint in the legacy (pre-1.6, non-zip) format' };
  }
  if (startsWith(b, 'ustar', 257)) {
    return { kind: 'torch-legacy', what: 'is a tar archive (the format of torch.save before torch 0.4, or a plain tar)' };
  }
  if (b[0] === 0x80 && b.length > 1 && b[1]! >= 2 && b[1]! <= 5) return { kind: 'pickle', what: 'is a bare Python pickle' };
  if (startsWith(b, [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])) return { kind: 'npy', what: 'is a NumPy .npy array' };
  if (looksLikeSafetensors(b)) return { kind: 'safetensors', what: 'is a safetensors file' };
  const magic: [number[] | string, string][] = [
    [[0x89, 0x50, 0x4e, 0x47], 'looks like a PNG image'],
    [[0xff, 0xd8, 0xff], 'looks like a JPEG image'],
    ['GIF8', 'looks like a GIF image'],
    ['%PDF', 'looks like a PDF document'],
    [[0x1f, 0x8b], 'is gzip-compressed data (decompress it first?)'],
    [[0x89, 0x48, 0x44, 0x46], 'looks like an HDF5 file (Keras/TensorFlow weights?)'],
    ['7z', 'looks like a 7-Zip archive'],
    [[0x42, 0x5a, 0x68], 'is bzip2-compressed data'],
    [[0xfd, 0x37, 0x7a, 0x58, 0x5a], 'is xz-compressed data'],
  ];
  for (const [sig, what] of magic) if (startsWith(b, sig)) return { kind: 'other', what };
  if (startsWith(b, 'RIFF') && startsWith(b, 'WEBP', 8)) return { kind: 'other', what: 'looks like a WebP image' };
  const text = textPreview(b);
  if (text !== null) {
    const lower = new TextDecoder().decode(b.subarray(0, 4096)).toLowerCase();
    if (lower.includes('<html') || lower.includes('<!doctype html')) {
      const drive = lower.includes('google') && lower.includes('drive');
      return { kind: 'other', what: drive ? 'is a Google Drive web page (HTML), not the file itself' : 'is an HTML page' };
    }
    if (lower.startsWith('version https://git-lfs')) return { kind: 'other', what: 'is a Git LFS pointer, not the file it points to' };
    return { kind: 'other', what: `looks like text: "${text}"` };
  }
  const hex = [...b.subarray(0, 8)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  return { kind: 'other', what: `is unrecognized binary data (starts with ${hex})` };
}

/** The error for a file that is not a readable torch.save archive, with what it is and what to do instead. */
export function notACheckpoint(fileName: string, id: FileIdentity): SketchError {
  const stem = fileName.replace(/^.*[\\/]/, '').replace(/\.[^.]*$/, '');
  switch (id.kind) {
    case 'torch-legacy':
      return new SketchError('NOT_A_CHECKPOINT',
        `${fileName} ${id.what}; sketchgpu reads only the zip format that torch.save writes by default since torch 1.6`,
        `re-save it with torch >= 1.6: python -c "import torch; torch.save(torch.load('${fileName}', map_location='cpu'), '${stem}-zip.pth')"`);
    case 'torchscript':
      return new SketchError('NOT_A_CHECKPOINT',
        `${fileName} ${id.what}, whose weights are bound to compiled code: it is not a torch.save checkpoint`,
        `export its weights in Python: m = torch.jit.load('${fileName}', map_location='cpu'); torch.save(m.state_dict(), '${stem}-weights.pth')`);
    case 'pickle':
      return new SketchError('NOT_A_CHECKPOINT',
        `${fileName} ${id.what} (pickle.dump), not a torch.save zip archive`,
        `load it in Python where you trust it and re-save the weights: torch.save(state_dict, '${stem}.pth')`);
    case 'safetensors':
      return new SketchError('NOT_A_CHECKPOINT', `${fileName} ${id.what}, not a PyTorch checkpoint`,
        'read it with readSafetensors (loadWeights picks the reader by content)');
    default: {
      const drive = id.what.includes('Google Drive');
      return new SketchError('NOT_A_CHECKPOINT', `${fileName} is not a PyTorch checkpoint: it ${id.what}`,
        drive
          ? 'Google Drive served its download page instead of the file (large files ask for a confirmation); download it in a browser or with gdown'
          : 'pass the .pth/.pt file that torch.save wrote, or a .safetensors file');
    }
  }
}

// ---- torch's pickled names, as pure data constructors -------------------------------------------------------------
/** `torch.FloatStorage` and friends: only a dtype tag inside the persistent id. */
class TorchStorageType {
  constructor(readonly qualname: string, readonly dtype: DType) {}
}
/** `torch.float16` and friends, as pickled dtype objects. */
export class TorchDType {
  constructor(readonly name: string, readonly dtype: DType) {}
}
/** A marker for the tensor classes `_rebuild_from_type_v2` may name. */
class TorchTensorClass {
  constructor(readonly qualname: string) {}
}

/** One `data/<key>` buffer, as the elements of its dtype. */
class TorchStorage {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly location: string,
    readonly elements: TypedData,
  ) {}
}

const STORAGE_DTYPES: [string, DType][] = [
  ['Double', 'f64'], ['Float', 'f32'], ['Half', 'f16'], ['BFloat16', 'bf16'], ['Long', 'i64'], ['Int', 'i32'],
  ['Short', 'i16'], ['Char', 'i8'], ['Byte', 'u8'], ['Bool', 'bool'],
];
const TORCH_DTYPES: [string, DType][] = [
  ['float64', 'f64'], ['double', 'f64'], ['float32', 'f32'], ['float', 'f32'], ['float16', 'f16'], ['half', 'f16'],
  ['bfloat16', 'bf16'], ['int64', 'i64'], ['long', 'i64'], ['int32', 'i32'], ['int', 'i32'], ['int16', 'i16'],
  ['short', 'i16'], ['int8', 'i8'], ['uint8', 'u8'], ['bool', 'bool'],
];

const isIndexList = (v: unknown): v is number[] =>
  Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);

/**
 * Bytes that views other than a storage's plain prefix may copy, per checkpoint: as much as the storages hold, plus
 * 64 MiB, at most 1 GiB. A genuine state dict's views (slices, transposes, tensors sharing a storage) copy at most
 * what its storages hold; a crafted file of stride-0 views over a 1-element storage (an expand) would otherwise make
 * gigabytes out of bytes.
 */
export const VIEW_COPY_SLACK = 64 * 2 ** 20;
export const VIEW_COPY_MAX = 2 ** 30;

/** The copy budget of one checkpoint, shared by its views. */
class CopyBudget {
  used = 0;
  constructor(readonly limit: number, readonly fileName: string) {}
  take(bytes: number, what: string): void {
    if (this.used + bytes > this.limit) {
      throw new SketchError('BAD_WEIGHTS',
        `${this.fileName}: ${what} would copy ${bytes} bytes out of its storage, past the ${this.limit} bytes this checkpoint's views may copy in all (its storages hold ${Math.max(0, this.limit - VIEW_COPY_SLACK)} bytes)`,
        'a genuine torch.save state dict never expands a storage so; if this file is genuine, save the tensors contiguous in Python: torch.save({k: v.contiguous().clone() for k, v in sd.items()}, path)');
    }
    this.used += bytes;
  }
}

/**
 * A tensor that is a strided view of a storage other than its plain prefix: a slice, a transpose, an expand with
 * stride 0, a permute. Its shape is known at once; its elements are copied out in C order only when `data` is first
 * read, against the checkpoint's CopyBudget. The weights reader reads `data` only for the tensors the model uses,
 * after checking their shapes, so views under keys the model does not use (the dead CA clone, extra entries) are
 * never copied at all.
 */
export class StridedView implements HostTensor {
  private copied: TypedData | undefined;
  constructor(
    readonly dtype: DType,
    readonly shape: number[],
    private readonly storage: TorchStorage,
    private readonly offset: number,
    private readonly stride: number[],
    private readonly budget: CopyBudget,
  ) {}

  get data(): TypedData {
    if (!this.copied) {
      const n = numel(this.shape);
      this.budget.take(n * DTYPE_BYTES[this.dtype], `a tensor of shape [${this.shape}] (offset ${this.offset}, strides [${this.stride}]) over storage data/${this.storage.key} of ${this.storage.numel} elements`);
      this.copied = copyStrided(this.storage.elements, this.dtype, this.offset, this.shape, this.stride);
    }
    return this.copied;
  }
}

/** A typed array of `n` elements of `dtype`, zero-filled. */
function allocate(dtype: DType, n: number): TypedData {
  return typedArrayFromBytes(dtype, new Uint8Array(n * DTYPE_BYTES[dtype]), 0, n);
}

function copyStrided(src: TypedData, dtype: DType, offset: number, size: number[], stride: number[]): TypedData {
  const n = numel(size);
  const rank = size.length;
  const out = allocate(dtype, n) as unknown as { [i: number]: unknown };
  const from = src as unknown as { [i: number]: unknown };
  const inner = size[rank - 1]!;
  const innerStride = stride[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0, base = offset; i < n; ) {
    for (let k = 0, s = base; k < inner; k++, s += innerStride) out[i++] = from[s];
    let d = rank - 2;
    for (; d >= 0; d--) {
      base += stride[d]!;
      if (++idx[d]! < size[d]!) break;
      base -= size[d]! * stride[d]!;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  return out as unknown as TypedData;
}

/**
 * The tensor a (storage, offset, size, stride) view describes, in contiguous C order. A contiguous view (the whole
 * storage, or a slice of it) is a view of the storage's elements, no copy; any other view is a StridedView, copied
 * only when read.
 */
function materialize(storage: TorchStorage, offset: number, size: number[], stride: number[], fileName: string, budget: CopyBudget): HostTensor {
  const n = numel(size);
  const rank = size.length;
  if (n === 0) return { dtype: storage.dtype, shape: size, data: allocate(storage.dtype, 0) };
  let last = offset;
  for (let d = 0; d < rank; d++) last += (size[d]! - 1) * stride[d]!;
  if (last >= storage.numel) {
    throw new SketchError('NOT_A_CHECKPOINT',
      `${fileName}: a tensor of shape [${size}] (offset ${offset}, strides [${stride}]) reaches element ${last} of storage data/${storage.key}, which holds ${storage.numel}`,
      'the checkpoint is damaged; save it again');
  }
  let contiguous = true;
  for (let d = rank - 1, expect = 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expect) contiguous = false;
    expect *= size[d]!;
  }
  // A contiguous view lies inside its storage (checked above), so it is at most as large as the storage.
  if (contiguous) return { dtype: storage.dtype, shape: size, data: storage.elements.subarray(offset, offset + n) as TypedData };
  return new StridedView(storage.dtype, size, storage, offset, stride, budget);
}

function torchGlobals(fileName: string, budget: CopyBudget): Map<string, unknown> {
  const g = new Map<string, unknown>();
  const bad = (what: string) => new SketchError('NOT_A_CHECKPOINT', `${fileName}: ${what}`,
    'the checkpoint is damaged or was not written by torch.save; save it again');

  for (const [name, dtype] of STORAGE_DTYPES) {
    for (const q of [`torch.${name}Storage`, `torch.cuda.${name}Storage`]) g.set(q, new TorchStorageType(q, dtype));
  }
  // Storages saved as untyped bytes (torch >= 1.13's UntypedStorage); a tensor's v3 rebuild gives the real dtype.
  for (const q of ['torch.UntypedStorage', 'torch.storage.UntypedStorage', 'torch.storage._UntypedStorage', 'torch.ByteStorage']) {
    if (!g.has(q)) g.set(q, new TorchStorageType(q, 'u8'));
  }
  for (const [name, dtype] of TORCH_DTYPES) g.set(`torch.${name}`, new TorchDType(`torch.${name}`, dtype));
  for (const q of ['torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.nn.Parameter']) g.set(q, new TorchTensorClass(q));

  const asStorage = (v: unknown): TorchStorage => {
    if (!(v instanceof TorchStorage)) throw bad(`a tensor is built on ${describe(v)}, not a storage`);
    return v;
  };
  const rebuild = (args: unknown[], dtype?: DType): HostTensor => {
    const [storageArg, offset, size, stride] = args;
    let storage = asStorage(storageArg);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || !isIndexList(size) ||
        !isIndexList(stride) || size.length !== stride.length) {
      throw bad(`a tensor has a bad view (offset ${describe(offset)}, size ${describe(size)}, stride ${describe(stride)})`);
    }
    if (dtype && dtype !== storage.dtype) storage = reinterpret(storage, dtype, bad);
    return materialize(storage, offset, size, stride, fileName, budget);
  };
  const fn = (name: string, f: (args: unknown[]) => unknown) => g.set(name, new PyCallable(name, f));

  fn('torch._utils._rebuild_tensor', (a) => rebuild(a));
  fn('torch._utils._rebuild_tensor_v2', (a) => rebuild(a));
  fn('torch._utils._rebuild_tensor_v3', (a) => {
    const dt = a[6];
    if (!(dt instanceof TorchDType)) throw bad(`_rebuild_tensor_v3 without a dtype (${describe(dt)})`);
    return rebuild(a, dt.dtype);
  });
  const parameter = (a: unknown[]) => {
    if (!isHostTensor(a[0])) throw bad(`a Parameter wraps ${describe(a[0])}, not a tensor`);
    return a[0];
  };
  fn('torch._utils._rebuild_parameter', parameter);
  fn('torch._utils._rebuild_parameter_with_state', parameter);
  // Tensor subclasses pickle as _rebuild_from_type_v2(func, cls, args, state); only plain tensor classes pass.
  fn('torch._tensor._rebuild_from_type_v2', (a) => {
    const [f, cls, args] = a;
    if (!(f instanceof PyCallable) || !(cls instanceof TorchTensorClass) || !Array.isArray(args)) {
      throw bad(`a tensor subclass rebuilt through ${describe(f)} as ${describe(cls)}`);
    }
    return f.call(args);
  });
  fn('torch.device', (a) => {
    const [type, index] = a;
    if (typeof type !== 'string') throw bad('torch.device of a non-string');
    return typeof index === 'number' ? `${type}:${index}` : type;
  });
  fn('torch.Size', (a) => {
    if (!isIndexList(a[0])) throw bad('torch.Size of a non-tuple');
    return [...a[0]];
  });
  return g;
}

function reinterpret(s: TorchStorage, dtype: DType, bad: (what: string) => SketchError): TorchStorage {
  const raw = new Uint8Array(s.elements.buffer, s.elements.byteOffset, s.elements.byteLength);
  const size = DTYPE_BYTES[dtype];
  if (raw.length % size) throw bad(`storage data/${s.key} (${raw.length} bytes) cannot hold whole ${dtype} elements`);
  const count = raw.length / size;
  return new TorchStorage(s.key, dtype, count, s.location, typedArrayFromBytes(dtype, raw, 0, count));
}

// ---- the archive -------------------------------------------------------------------------------------------------
function swapEndian(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i + size <= bytes.length; i += size) for (let k = 0; k < size; k++) out[i + k] = bytes[i + size - 1 - k]!;
  return out;
}

/** Reads a torch.save checkpoint (zip format) from its bytes. `fileName` names it in messages. */
export function readTorchCheckpoint(bytes: Uint8Array, fileName = 'checkpoint'): TorchCheckpoint {
  const id = identifyFile(bytes);
  if (id.kind !== 'zip') throw notACheckpoint(fileName, id);

  // List the entries first without extracting anything, to find the archive folder and to refuse a
  // decompression bomb before inflating it (torch writes every entry stored, uncompressed).
  const damaged = (e: unknown) => {
    if (e instanceof ZipError && e.kind === 'bomb') {
      return new SketchError('NOT_A_CHECKPOINT', `${fileName}: ${e.message}, which torch.save never writes`,
        'the file is not a genuine torch.save checkpoint (a decompression bomb?); only load checkpoints from sources you trust', { cause: e });
    }
    if (e instanceof ZipError && e.kind === 'crc') {
      return new SketchError('NOT_A_CHECKPOINT', `${fileName}: zip ${e.message}: the checkpoint's bytes were changed after it was written`,
        'the download or copy is corrupt; fetch the file again and compare its checksum with the original', { cause: e });
    }
    return new SketchError('NOT_A_CHECKPOINT',
      `${fileName} starts like a zip archive (as torch.save writes) but is truncated or damaged: ${(e as Error).message}`,
      'the download or copy was cut short; fetch the file again and compare its size with the original', { cause: e });
  };
  let list: ZipEntry[];
  try {
    list = listZip(bytes);
  } catch (e) {
    throw damaged(e);
  }
  const entries = new Map(list.map((e) => [e.name, e]));
  const names = [...entries.keys()];
  const pkl = names.filter((n) => /^([^/]+\/)?data\.pkl$/.test(n)).sort((a, b) => b.length - a.length)[0];
  const prefix = pkl === undefined ? '' : pkl.slice(0, -'data.pkl'.length);
  const isTorchScript = names.some((n) => n === `${prefix}constants.pkl` || n.startsWith(`${prefix}code/`) || /(^|\/)model\.json$/.test(n));
  if (isTorchScript) throw notACheckpoint(fileName, { kind: 'torchscript', what: 'is a TorchScript archive (torch.jit.save)' });
  if (pkl === undefined) {
    const sample = names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} entries)` : '');
    const npz = names.length > 0 && names.every((n) => n.endsWith('.npy'));
    throw new SketchError('NOT_A_CHECKPOINT',
      npz ? `${fileName} is a NumPy .npz archive (${sample}), not a PyTorch checkpoint`
        : `${fileName} is a zip archive but not a PyTorch checkpoint: it has no data.pkl (entries: ${sample || 'none'})`,
      npz ? 'read its arrays with readNpy, or save the weights with torch.save' : 'pass the file that torch.save wrote');
  }
  // The sum over all entries, bounded relative to the file's size and absolutely (zip.ts): no single entry need be
  // large for many of them to add up to a bomb.
  try {
    checkZipTotal(list, bytes.length);
  } catch (e) {
    throw damaged(e);
  }
  const files = new Map<string, Uint8Array>();
  const entry = (name: string): Uint8Array | undefined => {
    const full = prefix + name;
    const cached = files.get(full);
    if (cached) return cached;
    const e = entries.get(full);
    if (!e || full.endsWith('/')) return undefined;
    let data: Uint8Array;
    try {
      data = readZipEntry(bytes, e);
    } catch (err) {
      throw damaged(err);
    }
    files.set(full, data);
    return data;
  };

  const byteorderFile = entry('byteorder');
  const byteorder = byteorderFile ? new TextDecoder().decode(byteorderFile).trim() : 'little';
  if (byteorder !== 'little' && byteorder !== 'big') {
    throw new SketchError('NOT_A_CHECKPOINT', `${fileName}: unknown byte order "${byteorder}" in ${prefix}byteorder`,
      'the archive is damaged or was not written by torch.save; save it again');
  }

  const storages = new Map<string, TorchStorage>();
  const locations = new Set<string>();
  const persistentLoad = (pid: unknown): TorchStorage => {
    if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
      throw new SketchError('NOT_A_CHECKPOINT', `${fileName}: unknown persistent id ${describe(pid)} (expected a torch storage)`,
        'the file was not written by torch.save');
    }
    const [, type, key, location, count] = pid;
    if (!(type instanceof TorchStorageType) || typeof key !== 'string' || typeof location !== 'string' ||
        typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
      throw new SketchError('NOT_A_CHECKPOINT', `${fileName}: malformed storage reference (${pid.map(describe).join(', ')})`,
        'the file was not written by torch.save');
    }
    const cached = storages.get(key);
    if (cached) return cached;
    const raw = entry(`data/${key}`);
    if (!raw) {
      throw new SketchError('NOT_A_CHECKPOINT', `${fileName}: storage ${prefix}data/${key} is missing from the archive`,
        'the archive is incomplete; save or download it again');
    }
    const size = DTYPE_BYTES[type.dtype];
    if (raw.length < count * size) {
      throw new SketchError('NOT_A_CHECKPOINT',
        `${fileName}: storage ${prefix}data/${key} holds ${raw.length} bytes but ${type.qualname} of ${count} elements needs ${count * size}`,
        'the archive is damaged; save or download it again');
    }
    const le = byteorder === 'big' && size > 1 ? swapEndian(raw.subarray(0, count * size), size) : raw;
    const storage = new TorchStorage(key, type.dtype, count, location, typedArrayFromBytes(type.dtype, le, 0, count));
    storages.set(key, storage);
    locations.add(location);
    return storage;
  };

  // Views may copy as much as the storages hold, plus some slack (VIEW_COPY_SLACK), never more than VIEW_COPY_MAX.
  let storageBytes = 0;
  for (const e of list) if (e.name.startsWith(`${prefix}data/`)) storageBytes += e.originalSize;
  const budget = new CopyBudget(Math.min(VIEW_COPY_MAX, storageBytes + VIEW_COPY_SLACK), fileName);
  const root = unpickle(entry('data.pkl')!, { fileName, persistentLoad, globals: torchGlobals(fileName, budget) });
  return { root, archiveName: prefix.replace(/\/$/, ''), locations: [...locations], storages: storages.size };
}

const STATE_DICT_KEYS = ['model', 'state_dict', 'model_state_dict', 'net'];

function tensorEntries(m: Map<unknown, unknown>): [string, HostTensor][] | null {
  const out: [string, HostTensor][] = [];
  for (const [k, v] of m) if (typeof k === 'string' && isHostTensor(v)) out.push([k, v]);
  return out.length > 0 ? out : null;
}

/**
 * The state dict inside a checkpoint's root object: the root itself when it maps names to tensors, else the dict
 * under 'model' (the official save_checkpoint) or 'state_dict' (Lightning and many others).
 */
export function findStateDict(root: unknown, fileName: string): {
  tensors: Map<string, HostTensor>;
  container: Map<unknown, unknown> | null;
  path: string;
} {
  if (!(root instanceof Map)) {
    throw new SketchError('BAD_WEIGHTS', `${fileName} holds ${isHostTensor(root) ? 'a single tensor' : 'no dict'}, not a state dict`,
      "save the weights as a dict: torch.save({'model': model.state_dict()}, path)");
  }
  for (const key of STATE_DICT_KEYS) {
    const inner = root.get(key);
    if (inner instanceof Map) {
      const entries = tensorEntries(inner);
      if (entries) return { tensors: new Map(entries), container: root, path: key };
    }
  }
  const entries = tensorEntries(root);
  if (entries) return { tensors: new Map(entries), container: null, path: '' };
  const keys = [...root.keys()].map(String);
  throw new SketchError('BAD_WEIGHTS',
    `${fileName} has no state dict: no tensors at its top level or under ${STATE_DICT_KEYS.map((k) => `'${k}'`).join(', ')} (top-level keys: ${keys.slice(0, 8).join(', ') || 'none'})`,
    "save the weights as torch.save({'model': model.state_dict()}, path)");
}
