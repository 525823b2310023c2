import { SketchError } from '../core/errors.ts';
import { toFloat32, type HostTensor } from '../core/tensor.ts';

/** At most this many quantised values are expanded per file (1 GiB of float32; the demo front has 8.9 million). */
export const MAX_DEQUANTIZED = 2 ** 28;

/**
 * Weights kept as uint8 with a per-output-channel scale and offset: `<name>_q` (U8, [Co, ...]), `<name>_scale` and
 * `<name>_min` (float, [Co]) stand for `<name>` = float32(float32(q · scale[co]) + min[co]) (float32 arithmetic, as
 * tools/teacher/front.py dequantize() computes it). sketchgpu ships the ImageNet-trained front of its demo model this
 * way: the network's own 8-bit values, a quarter of float32 (tools/teacher/front.py quantized()).
 *
 * Returns the tensors with every such triple replaced by its float32 tensor (other tensors as they are, in order),
 * and how many were expanded. A triple that is incomplete, mis-shaped, of another dtype or with non-finite scales
 * is a BAD_WEIGHTS error naming the tensor; so is a `<name>` present beside its triple.
 */
export function dequantizeChannels(tensors: ReadonlyMap<string, HostTensor>, fileName: string, maxElements = MAX_DEQUANTIZED): { tensors: Map<string, HostTensor>; expanded: number } {
  const bad = (what: string) => new SketchError('BAD_WEIGHTS', `${fileName}: ${what}`,
    'a quantised tensor is stored as <name>_q (uint8, [Co, ...]) with <name>_scale and <name>_min (float, [Co]); the file is damaged or was written by another tool: write it again');
  // Expanding uint8 to float32 takes 4x the bytes: bounded before anything is allocated.
  let total = 0;
  for (const [key, t] of tensors) if (key.endsWith('_q')) total += t.data.length;
  if (total > maxElements) {
    throw new SketchError('BAD_WEIGHTS', `${fileName}: ${total.toLocaleString('en')} quantised weights would take ${(total * 4 / 2 ** 20).toFixed(0)} MiB as float32, more than the ${(maxElements * 4 / 2 ** 20).toFixed(0)} MiB allowed`,
      'no sketchgpu model has that many quantised weights (the demo front: 8.9 million); the file is not one of them');
  }
  const out = new Map<string, HostTensor>();
  let expanded = 0;
  for (const [key, t] of tensors) {
    if (key.endsWith('_scale') || key.endsWith('_min')) {
      const base = key.slice(0, key.lastIndexOf('_'));
      if (!tensors.has(`${base}_q`)) throw bad(`${key} has no ${base}_q beside it`);
      continue;
    }
    if (!key.endsWith('_q')) {
      out.set(key, t);
      continue;
    }
    const base = key.slice(0, -2);
    const scale = tensors.get(`${base}_scale`), min = tensors.get(`${base}_min`);
    if (!scale || !min) throw bad(`${key} lacks ${!scale ? `${base}_scale` : `${base}_min`}`);
    if (tensors.has(base)) throw bad(`${base} is stored both as floats and quantised (${key})`);
    if (t.dtype !== 'u8') throw bad(`${key} is ${t.dtype}, not u8`);
    const co = t.shape[0];
    if (t.shape.length < 1 || co === undefined || co < 1) throw bad(`${key} has shape [${t.shape.join(', ')}], which has no output channels`);
    for (const [name, s] of [[`${base}_scale`, scale], [`${base}_min`, min]] as const) {
      if (!['f32', 'f16', 'bf16', 'f64'].includes(s.dtype)) throw bad(`${name} is ${s.dtype}, not a float type`);
      if (s.shape.length !== 1 || s.shape[0] !== co) throw bad(`${name} has shape [${s.shape.join(', ')}], expected [${co}] (one per output channel of ${key})`);
    }
    const s = toFloat32(scale), m = toFloat32(min);
    for (let c = 0; c < co; c++) if (!Number.isFinite(s[c]!) || !Number.isFinite(m[c]!)) throw bad(`${base}_scale / ${base}_min of channel ${c} is not a finite number`);
    const q = t.data as Uint8Array, per = q.length / co, f = new Float32Array(q.length);
    for (let c = 0; c < co; c++) {
      const sc = s[c]!, mn = m[c]!;
      for (let i = c * per; i < (c + 1) * per; i++) f[i] = Math.fround(Math.fround(q[i]! * sc) + mn);
    }
    out.set(base, { dtype: 'f32', shape: [...t.shape], data: f });
    expanded++;
  }
  return { tensors: out, expanded };
}
