// Shared by bench/run.ts and bench/ort_peer.ts: the small config, the deterministic random tensors and weights.
import type { HostTensor } from '../src/core/tensor.ts';
import type { ZseConfig } from '../src/models/zse/config.ts';
import { zseTensorShapes } from '../src/models/zse/weights.ts';

/** A small config for CPU drivers: same code paths, minutes instead of hours. */
export const SMALL: ZseConfig = { dim: 192, depth: 4, saHeads: 3, mlpDim: 768, grid: 7, imageSize: 112, stemChannels: [16, 32, 64], caHeads: 4, caFF: 256, anchorDim: 64, anchorGrid: 3, rnHidden: [27, 9], hasHead: true };

export function randomTensor(shape: number[], seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const fanIn = shape.length > 1 ? n / shape[0]! : 1;
  const s = 1 / Math.sqrt(fanIn);
  const data = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = ((x / 2 ** 32) * 2 - 1) * s;
  }
  if (shape.length === 1) data.fill(shape[0]! > 0 ? 1 : 0).forEach((_, i) => { data[i] = 1 + 0.01 * ((i % 7) - 3); });
  return { dtype: 'f32', shape, data };
}

export function randomWeights(cfg: ZseConfig): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  let seed = 1;
  for (const [k, shape] of zseTensorShapes(cfg)) m.set(k, randomTensor(shape, seed++));
  return m;
}

/** n values of randomTensor([n], seed)'s generator, i.e. the bench's input images and tokens. */
export const rnd = (n: number, seed: number) => randomTensor([n], seed).data as Float32Array;

/** n values uniform in [-1, 1) from the same LCG (image-like inputs with real variation, for parity checks). */
export function uniform(n: number, seed: number): Float32Array {
  const data = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = (x / 2 ** 32) * 2 - 1;
  }
  return data;
}
