/**
 * A pickle virtual machine that never executes code.
 *
 * It implements the opcodes of protocols 0-5 but resolves GLOBAL / STACK_GLOBAL / INST only against an allow-list
 * of names, each implemented here (or by the caller, see `UnpickleOptions.globals`) as a pure data constructor.
 * Any other name, say `os.system` or `builtins.eval`, is refused by name before anything is built, so a
 * booby-trapped file cannot do anything but fail to load.
 *
 * Python values map to JS as: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
 * str -> string, bytes/bytearray -> Uint8Array, tuple and list -> Array, dict (and OrderedDict) -> Map,
 * set/frozenset -> Set, numpy scalars -> number/boolean (bigint for 64-bit integers beyond 2^53), numpy arrays ->
 * HostTensor.
 */
import { SketchError } from '../core/errors.ts';
import { DTYPE_BYTES, f16ToF32, numel, type DType, type HostTensor } from '../core/tensor.ts';
import { typedArrayFromBytes } from './safetensors.ts';

/** A Python callable or class the allow-list lets a pickle name. `call` serves REDUCE, `newobj` NEWOBJ and INST/OBJ. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: unknown[]) => unknown,
    readonly newobj: (args: unknown[]) => unknown = call,
  ) {}
}

/** Objects whose BUILD (`__setstate__`) the allow-list implements carry this method. */
export const SETSTATE: unique symbol = Symbol('pickle.setstate');
interface Buildable {
  [SETSTATE](state: unknown): void;
}
const isBuildable = (v: unknown): v is Buildable =>
  typeof v === 'object' && v !== null && typeof (v as Partial<Buildable>)[SETSTATE] === 'function';

export interface UnpickleOptions {
  /** Names the file in messages. */
  fileName: string;
  /** Resolves BINPERSID / PERSID ids (torch storages); without it a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Extra allow-listed names ("module.name" -> value pushed by GLOBAL), e.g. torch's. */
  globals?: ReadonlyMap<string, unknown>;
  /** Said after "which ... never writes" when refusing a name, e.g. "torch.save". */
  writerName?: string;
}

/** Thrown by allow-listed constructors on arguments they cannot represent; reported as a malformed file. */
export class PickleDataError extends Error {}

const PROTOCOL_MAX = 5;

// ---- the built-in allow-list: Python and numpy data -------------------------------------------------------------
const asArgs = (args: unknown[], n: number, what: string): unknown[] => {
  if (args.length < n) throw new PickleDataError(`${what} expects ${n} arguments, got ${args.length}`);
  return args;
};

function makeSet(args: unknown[]): Set<unknown> {
  const items = args[0];
  if (items === undefined) return new Set();
  if (!Array.isArray(items) && !(items instanceof Set)) throw new PickleDataError('set() of a non-sequence');
  return new Set(items);
}

/** `numpy.dtype(code, align, copy)` then BUILD with (version, byteorder, ...). */
class NumpyDType implements Buildable {
  byteorder = '=';
  constructor(readonly code: string) {}
  [SETSTATE](state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === 'string') this.byteorder = state[1];
  }
  get dtype(): DType {
    const dt = NUMPY_CODES[this.code];
    if (!dt) throw new PickleDataError(`numpy dtype '${this.code}' is not supported (only float, int, uint8 and bool)`);
    return dt;
  }
  get bigEndian(): boolean {
    return this.byteorder === '>';
  }
}
const NUMPY_CODES: Record<string, DType> = {
  f8: 'f64', f4: 'f32', f2: 'f16', i8: 'i64', i4: 'i32', i2: 'i16', i1: 'i8', u1: 'u8', b1: 'bool',
};

function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) for (let k = 0; k < size; k++) out[i + k] = bytes[i + size - 1 - k]!;
  return out;
}

/** `numpy.core.multiarray.scalar(dtype, bytes)`: the way numpy pickles np.float64(0.5) and friends. */
function numpyScalar(args: unknown[]): unknown {
  const [dt, raw] = asArgs(args, 2, 'numpy scalar');
  if (!(dt instanceof NumpyDType)) throw new PickleDataError('numpy scalar without a numpy dtype');
  if (!(raw instanceof Uint8Array)) throw new PickleDataError('numpy scalar without its bytes');
  const dtype = dt.dtype;
  const size = DTYPE_BYTES[dtype];
  if (raw.length !== size) throw new PickleDataError(`numpy ${dt.code} scalar with ${raw.length} bytes`);
  const bytes = dt.bigEndian ? swapBytes(raw, size) : raw;
  const v = typedArrayFromBytes(dtype, bytes, 0, 1)[0]!;
  if (dtype === 'bool') return v !== 0;
  if (dtype === 'f16') return f16ToF32(v as number);
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  return v;
}

/**
 * `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` makes an empty array that BUILD then fills with
 * (version, shape, dtype, is_fortran, raw bytes). The object becomes a HostTensor in place, as other pickled
 * objects may already hold a reference to it.
 */
class NumpyArray implements Buildable {
  dtype: DType = 'u8';
  shape: number[] = [0];
  data: HostTensor['data'] = new Uint8Array(0);
  [SETSTATE](state: unknown): void {
    if (!Array.isArray(state) || state.length < 5) throw new PickleDataError('numpy array state is not (version, shape, dtype, fortran, data)');
    const [, shape, dt, fortran, raw] = state;
    if (!(dt instanceof NumpyDType)) throw new PickleDataError('numpy array state without a dtype');
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new PickleDataError('numpy array with a bad shape');
    if (!(raw instanceof Uint8Array)) {
      throw new PickleDataError(dt.code.startsWith('O') ? 'numpy object arrays are not supported' : 'numpy array without raw data');
    }
    const dtype = dt.dtype;
    const size = DTYPE_BYTES[dtype];
    const count = numel(shape as number[]);
    if (raw.length !== count * size) throw new PickleDataError(`numpy array data is ${raw.length} bytes, expected ${count * size}`);
    const bytes = dt.bigEndian && size > 1 ? swapBytes(raw, size) : raw.slice();
    const flat = typedArrayFromBytes(dtype, bytes, 0, count);
    this.dtype = dtype;
    this.shape = shape as number[];
    this.data = fortran === true ? fortranToC(flat, shape as number[]) : flat;
  }
}

function fortranToC(src: HostTensor['data'], shape: number[]): HostTensor['data'] {
  const out = new (src.constructor as { new (n: number): HostTensor['data'] })(src.length);
  const rank = shape.length;
  const fStrides = new Array<number>(rank);
  for (let d = 0, s = 1; d < rank; d++) { fStrides[d] = s; s *= shape[d]!; }
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < out.length; i++) {
    let off = 0;
    for (let d = 0; d < rank; d++) off += idx[d]! * fStrides[d]!;
    (out as unknown as unknown[])[i] = src[off];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Attributes of an argparse.Namespace (a common `args` entry in research checkpoints), as a Map. */
class NamespaceObject extends Map<string, unknown> implements Buildable {
  [SETSTATE](state: unknown): void {
    if (state instanceof Map) for (const [k, v] of state) this.set(String(k), v);
  }
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new PickleDataError('_codecs.encode(latin1) of a character above U+00FF');
    out[i] = c;
  }
  return out;
}

const BUILTIN_GLOBALS: ReadonlyMap<string, unknown> = (() => {
  const m = new Map<string, unknown>();
  const add = (names: string[], fn: (args: unknown[]) => unknown, newobj?: (args: unknown[]) => unknown) => {
    for (const n of names) m.set(n, new PyCallable(n, fn, newobj));
  };
  add(['collections.OrderedDict'], (args) => {
    const init = args[0];
    const d = new Map<unknown, unknown>();
    if (Array.isArray(init)) for (const kv of init) if (Array.isArray(kv) && kv.length === 2) d.set(kv[0], kv[1]);
    return d;
  });
  add(['builtins.set', '__builtin__.set', 'builtins.frozenset', '__builtin__.frozenset'], makeSet);
  // Protocol 2 has no bytes opcode, so Python 3 pickles bytes as _codecs.encode(str, 'latin1'); the str holds
  // the bytes as code points 0-255. Only that exact form is bytes; any other codec is refused.
  add(['_codecs.encode'], (args) => {
    const [s, codec] = asArgs(args, 2, '_codecs.encode');
    if (typeof s !== 'string' || (codec !== 'latin1' && codec !== 'latin-1')) {
      throw new PickleDataError(`_codecs.encode with codec ${JSON.stringify(codec)} (only 'latin1' is how pickles store bytes)`);
    }
    return latin1Bytes(s);
  });
  add(['builtins.bytearray', '__builtin__.bytearray', 'builtins.bytes', '__builtin__.bytes'], (args) => {
    const [s, codec] = args;
    if (s === undefined) return new Uint8Array(0);
    if (s instanceof Uint8Array) return s.slice();
    if (typeof s === 'string' && (codec === 'latin1' || codec === 'latin-1')) return latin1Bytes(s);
    if (Array.isArray(s) && s.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) return Uint8Array.from(s as number[]);
    throw new PickleDataError('bytearray() of an unsupported value');
  });
  add(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar'], numpyScalar);
  add(['numpy.dtype'], (args) => {
    const code = args[0];
    if (typeof code !== 'string') throw new PickleDataError('numpy.dtype of a non-string');
    return new NumpyDType(code);
  });
  add(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct'], () => new NumpyArray());
  add(['numpy.ndarray'], () => new NumpyArray());
  add(['argparse.Namespace'], (args) => {
    const ns = new NamespaceObject();
    if (args[0] instanceof Map) ns[SETSTATE](args[0]);
    return ns;
  });
  return m;
})();

// ---- the machine --------------------------------------------------------------------------------------------------
const MARK = Symbol('mark');

/** Names whose refusal deserves a plain-words gloss (pickle records os.system under its implementation module). */
const ALIASES: Record<string, string> = {
  'posix.system': 'os.system', 'nt.system': 'os.system', 'posix.popen': 'os.popen', 'nt.popen': 'os.popen',
  '__builtin__.eval': 'builtins.eval', '__builtin__.exec': 'builtins.exec', '__builtin__.getattr': 'builtins.getattr',
};

export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): unknown {
  const { fileName } = opts;
  const writer = opts.writerName ?? 'torch.save';
  const globals = opts.globals;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let pos = 0;
  let opStart = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const malformed = (what: string): SketchError =>
    new SketchError('NOT_A_CHECKPOINT', `${fileName}: the pickle is malformed at byte ${opStart}: ${what}`,
      'the file is damaged or truncated; download or save it again');
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) throw malformed(`needs ${n} more bytes but the pickle ends (truncated?)`);
  };
  const u8 = () => { need(1); return bytes[pos++]!; };
  const u16 = () => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw malformed(`a length of ${v} bytes, more than the whole pickle`);
    return Number(v);
  };
  const take = (n: number) => { need(n); const s = bytes.subarray(pos, pos + n); pos += n; return s; };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw malformed('a text argument without its newline (truncated?)');
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw malformed('pops an empty stack');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw malformed('reads an empty stack');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) throw malformed('no MARK to pop to');
    stack = prev;
    return items;
  };
  const memoGet = (k: number) => {
    if (!memo.has(k)) throw malformed(`reads memo slot ${k}, which was never written`);
    return memo.get(k);
  };
  const asLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let k = b.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  };
  const parseIntText = (s: string): number | bigint => {
    const t = s.trim().replace(/L$/, '');
    if (!/^[-+]?\d{1,2500}$/.test(t)) throw malformed(`bad integer literal ${describe(s)}`);
    const v = BigInt(t);
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  };

  const resolve = (module: string, name: string): unknown => {
    const qualname = `${module}.${name}`;
    if (globals?.has(qualname)) return globals.get(qualname);
    if (BUILTIN_GLOBALS.has(qualname)) return BUILTIN_GLOBALS.get(qualname);
    const gloss = ALIASES[qualname] ? ` (that is, ${ALIASES[qualname]})` : '';
    throw new SketchError('UNSAFE_PICKLE',
      `refusing to load ${fileName}: its pickle references ${qualname}${gloss}, which ${writer} never writes; ` +
      'loading it with pickle would run whatever that names, so sketchgpu does not load it',
      'only load checkpoints from sources you trust. If this file is genuine, open it in Python where you trust it ' +
      "and re-save the weights alone: torch.save(model.state_dict(), 'clean.pth'), or convert them to safetensors");
  };
  const callable = (f: unknown, what: string): PyCallable => {
    if (!(f instanceof PyCallable)) throw malformed(`${what} of ${describe(f)}, which is not callable`);
    return f;
  };
  const build = (obj: unknown, state: unknown) => {
    if (isBuildable(obj)) return obj[SETSTATE](state);
    // Instance attributes of a dict subclass, e.g. the `_metadata` (module versions) torch attaches to every
    // state_dict OrderedDict: not part of the mapping, and nothing sketchgpu reads.
    if (obj instanceof Map && (state instanceof Map || Array.isArray(state) || state === null)) return;
    throw malformed(`BUILD (setstate) on ${describe(obj)}`);
  };
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof Map)) throw malformed(`SETITEM on ${describe(d)}, not a dict`);
    if (kv.length % 2) throw malformed('SETITEMS with an odd number of items');
    for (let k = 0; k < kv.length; k += 2) d.set(kv[k], kv[k + 1]);
  };
  const appendItems = (l: unknown, items: unknown[]) => {
    if (Array.isArray(l)) l.push(...items);
    else if (l instanceof Set) for (const x of items) l.add(x);
    else throw malformed(`APPEND on ${describe(l)}, not a list`);
  };
  const persistent = (pid: unknown) => {
    if (!opts.persistentLoad) throw malformed('a persistent id, but this file has no external data to resolve it');
    return opts.persistentLoad(pid);
  };

  try {
    for (;;) {
      opStart = pos;
      const op = u8();
      switch (op) {
        case 0x80: { // PROTO
          const p = u8();
          if (p > PROTOCOL_MAX) throw malformed(`pickle protocol ${p} is newer than ${PROTOCOL_MAX}`);
          break;
        }
        case 0x95: u64(); break; // FRAME: a length hint only
        case 0x2e: { // STOP
          if (stack.length !== 1 || metastack.length) throw malformed(`STOP with ${stack.length} values on the stack`);
          return stack[0];
        }
        case 0x28: metastack.push(stack); stack = []; break; // MARK
        case 0x30: pop(); break; // POP
        case 0x31: popMark(); break; // POP_MARK
        case 0x32: stack.push(top()); break; // DUP

        // -- scalars
        case 0x4e: stack.push(null); break; // NONE
        case 0x88: stack.push(true); break; // NEWTRUE
        case 0x89: stack.push(false); break; // NEWFALSE
        case 0x4a: stack.push(i32()); break; // BININT
        case 0x4b: stack.push(u8()); break; // BININT1
        case 0x4d: stack.push(u16()); break; // BININT2
        case 0x8a: stack.push(asLong(take(u8()))); break; // LONG1
        case 0x8b: { // LONG4
          const n = i32();
          // No checkpoint holds an integer of thousands of digits; decoding a huge one would just stall.
          if (n < 0 || n > 1024) throw malformed(`LONG4 of ${n} bytes`);
          stack.push(asLong(take(n)));
          break;
        }
        case 0x49: { // INT (text; '00'/'01' are protocol 0's False/True)
          const s = line();
          stack.push(s === '00' ? false : s === '01' ? true : parseIntText(s));
          break;
        }
        case 0x4c: stack.push(parseIntText(line())); break; // LONG (text)
        case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
        case 0x46: { // FLOAT (text)
          const v = Number(line().trim());
          if (Number.isNaN(v)) throw malformed('bad float literal');
          stack.push(v);
          break;
        }

        // -- strings and bytes
        case 0x58: stack.push(utf8.decode(take(u32()))); break; // BINUNICODE
        case 0x8c: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINUNICODE
        case 0x8d: stack.push(utf8.decode(take(u64()))); break; // BINUNICODE8
        case 0x56: stack.push(rawUnicodeEscape(line())); break; // UNICODE (text)
        case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
        case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
        case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
        case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
        // Python 2 str: torch.load decodes these as UTF-8, and so do we.
        case 0x54: { // BINSTRING
          const n = i32();
          if (n < 0) throw malformed('BINSTRING with a negative length');
          stack.push(utf8.decode(take(n)));
          break;
        }
        case 0x55: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINSTRING
        case 0x53: stack.push(pythonStringLiteral(line(), malformed)); break; // STRING (text, quoted)

        // -- containers
        case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
        case 0x5d: stack.push([]); break; // EMPTY_LIST
        case 0x29: stack.push([]); break; // EMPTY_TUPLE
        case 0x8f: stack.push(new Set()); break; // EMPTY_SET
        case 0x85: stack.push([pop()]); break; // TUPLE1
        case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
        case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
        // popMark() swaps `stack`, so it must run before `stack.push` is looked up.
        case 0x74: { const items = popMark(); stack.push(items); break; } // TUPLE
        case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
        case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
        case 0x64: { const d = new Map(); setItems(d, popMark()); stack.push(d); break; } // DICT
        case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
        case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
        case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS
        case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
        case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS

        // -- memo
        case 0x71: memo.set(u8(), top()); break; // BINPUT
        case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
        case 0x70: memo.set(Number(parseIntText(line())), top()); break; // PUT
        case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
        case 0x68: stack.push(memoGet(u8())); break; // BINGET
        case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
        case 0x67: stack.push(memoGet(Number(parseIntText(line())))); break; // GET

        // -- names, calls, objects: everything goes through the allow-list
        case 0x63: { const module = line(); const name = line(); stack.push(resolve(module, name)); break; } // GLOBAL
        case 0x93: { // STACK_GLOBAL
          const name = pop();
          const module = pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw malformed('STACK_GLOBAL of non-strings');
          stack.push(resolve(module, name));
          break;
        }
        case 0x52: { // REDUCE
          const args = pop();
          const f = callable(pop(), 'REDUCE');
          if (!Array.isArray(args)) throw malformed(`REDUCE of ${f.qualname} with non-tuple arguments`);
          stack.push(f.call(args));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = pop();
          const cls = callable(pop(), 'NEWOBJ');
          if (!Array.isArray(args)) throw malformed(`NEWOBJ of ${cls.qualname} with non-tuple arguments`);
          stack.push(cls.newobj(args));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          const kwargs = pop();
          const args = pop();
          const cls = callable(pop(), 'NEWOBJ_EX');
          if (!Array.isArray(args)) throw malformed(`NEWOBJ_EX of ${cls.qualname} with non-tuple arguments`);
          if (kwargs instanceof Map && kwargs.size) throw malformed(`NEWOBJ_EX of ${cls.qualname} with keyword arguments`);
          stack.push(cls.newobj(args));
          break;
        }
        case 0x69: { // INST
          const module = line();
          const name = line();
          const cls = callable(resolve(module, name), 'INST');
          const args = popMark();
          stack.push(cls.newobj(args));
          break;
        }
        case 0x6f: { // OBJ
          const items = popMark();
          if (items.length === 0) throw malformed('OBJ without a class');
          stack.push(callable(items[0], 'OBJ').newobj(items.slice(1)));
          break;
        }
        case 0x62: { const state = pop(); build(top(), state); break; } // BUILD
        case 0x51: stack.push(persistent(pop())); break; // BINPERSID
        case 0x50: stack.push(persistent(line())); break; // PERSID

        case 0x82: case 0x83: case 0x84: // EXT1/2/4: names from the copyreg extension registry
          throw new SketchError('UNSAFE_PICKLE',
            `refusing to load ${fileName}: its pickle names an object through the copyreg extension registry (EXT opcode), which ${writer} never writes`,
            'only load checkpoints from sources you trust; re-save the weights alone with torch.save(model.state_dict(), path)');
        case 0x97: case 0x98: // NEXT_BUFFER / READONLY_BUFFER
          throw malformed('out-of-band buffers (pickle protocol 5), which a file cannot carry');
        default:
          throw malformed(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  } catch (e) {
    if (e instanceof SketchError) throw e;
    const why = e instanceof PickleDataError ? e.message : `${(e as Error)?.message ?? e}`;
    throw new SketchError('NOT_A_CHECKPOINT', `${fileName}: the pickle could not be read at byte ${opStart}: ${why}`,
      'the file is damaged, or holds data sketchgpu does not read; re-save the weights alone with torch.save(model.state_dict(), path)',
      { cause: e });
  }
}

/** A short description of a value for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyCallable) return v.qualname;
  if (Array.isArray(v)) return `a tuple/list of ${v.length}`;
  if (v instanceof Map) return 'a dict';
  if (v instanceof Set) return 'a set';
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(v);
}

function rawUnicodeEscape(s: string): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a: string | undefined, b: string | undefined) =>
    String.fromCodePoint(parseInt((a ?? b)!, 16)));
}

/** A Python 2 `repr(str)` literal as protocol 0's STRING writes it: quoted, with backslash escapes. */
function pythonStringLiteral(s: string, malformed: (what: string) => Error): string {
  const q = s[0];
  if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) throw malformed('STRING argument is not quoted');
  const body = s.slice(1, -1);
  const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return simple[e] ?? `\\${e}`;
  });
}
