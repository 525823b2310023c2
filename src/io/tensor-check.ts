import type { HostTensor } from './tensor.ts';

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
