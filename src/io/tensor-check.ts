import { SketchError } from '../core/errors.ts';
import { bf16ToF32, f16ToF32, type HostTensor } from '../core/tensor.ts';

/** How a set of tensors differs from a model's expected key/shape list. */
export interface TensorReport {
  missing: string[];
  unexpected: string[];
  misshaped: { key: string; expected: number[]; actual: number[] }[];
  /** Tensors of a non-float dtype (the models read f32, f16, bf16 or f64 only). */
  wrongDtype: { key: string; dtype: string }[];
}

const FLOAT_DTYPES = new Set(['f32', 'f16', 'bf16', 'f64']);

/** Compares tensors with the expected shapes; keys for which `ignore` is true are never reported as unexpected. */
export function checkTensors(tensors: ReadonlyMap<string, HostTensor>, expected: ReadonlyMap<string, number[]>, ignore: (key: string) => boolean = () => false): TensorReport {
  const r: TensorReport = { missing: [], unexpected: [], misshaped: [], wrongDtype: [] };
  for (const [key, shape] of expected) {
    const t = tensors.get(key);
    if (!t) r.missing.push(key);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) r.misshaped.push({ key, expected: shape, actual: [...t.shape] });
    else if (!FLOAT_DTYPES.has(t.dtype)) r.wrongDtype.push({ key, dtype: t.dtype });
  }
  for (const key of tensors.keys()) if (!expected.has(key) && !ignore(key)) r.unexpected.push(key);
  return r;
}

export const problemCount = (r: TensorReport): number => r.missing.length + r.unexpected.length + r.misshaped.length + r.wrongDtype.length;

/** One line per problem, at most `limit` lines, then a count of the rest. */
export function formatTensorReport(r: TensorReport, tensors: ReadonlyMap<string, HostTensor>, limit = 20): string {
  const shape = (s: readonly number[]) => `[${s.join(', ')}]`;
  const lines = [
    ...r.missing.map((k) => `  missing     ${k}`),
    ...r.misshaped.map((m) => `  mis-shaped  ${m.key}: expected ${shape(m.expected)}, found ${shape(m.actual)}`),
    ...r.unexpected.map((k) => `  unexpected  ${k} ${shape(tensors.get(k)?.shape ?? [])}`),
    ...r.wrongDtype.map((w) => `  wrong dtype ${w.key}: ${w.dtype}, expected a float type`),
  ];
  return lines.length <= limit ? lines.join('\n') : [...lines.slice(0, limit), `  … and ${lines.length - limit} more`].join('\n');
}

/** The index of the first NaN or infinite element of a float tensor, or -1 (integer tensors: always -1). */
export function firstNonFinite(t: HostTensor): number {
  const d = t.data;
  if (t.dtype === 'f32' || t.dtype === 'f64') {
    const a = d as Float32Array | Float64Array;
    // x - x is 0 for every finite x and NaN for NaN and ±Inf: one branch per element.
    for (let i = 0; i < a.length; i++) if (a[i]! - a[i]! !== 0) return i;
  } else if (t.dtype === 'f16' || t.dtype === 'bf16') {
    const a = d as Uint16Array;
    const exp = t.dtype === 'f16' ? 0x7c00 : 0x7f80; // an all-ones exponent is Inf or NaN
    for (let i = 0; i < a.length; i++) if ((a[i]! & exp) === exp) return i;
  }
  return -1;
}

/** The value at `i` of a float tensor, for messages. */
function valueAt(t: HostTensor, i: number): number {
  if (t.dtype === 'f16') return f16ToF32((t.data as Uint16Array)[i]!);
  if (t.dtype === 'bf16') return bf16ToF32((t.data as Uint16Array)[i]!);
  return Number(t.data[i]);
}

/**
 * Refuses weights holding a NaN or an infinity, naming the first such tensor and element: such weights make every
 * embedding NaN (printed as null) or every score meaningless, and would otherwise run without a word.
 */
export function checkFiniteWeights(tensors: ReadonlyMap<string, HostTensor>, fileName: string): void {
  for (const [key, t] of tensors) {
    const i = firstNonFinite(t);
    if (i < 0) continue;
    const at = t.shape.length > 1 ? ` (element ${i} of [${t.shape.join(', ')}])` : ` (element ${i})`;
    throw new SketchError('NON_FINITE', `${fileName}: tensor ${key} holds ${valueAt(t, i)}${at}; weights must be finite numbers`,
      'the weights are damaged or come from a diverged training run; use a checkpoint saved before the loss became NaN, or download the file again');
  }
}
