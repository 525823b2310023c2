import { API_MISUSE_HINT, SketchError } from '../core/errors.ts';

/** One GPU chunk of (sketch, photo) pairs: the images it uses, and the pairs re-indexed into them. */
export interface PairChunk {
  /** Index of the chunk's first pair in the whole table. */
  p0: number;
  /** Distinct sketch and photo indices the chunk uses, in first-use order. */
  sketches: number[];
  photos: number[];
  /** [pc, 2] pairs as positions in `sketches` / `photos`. */
  local: Uint32Array;
}

/**
 * Splits a flat [P,2] table of (sketch, photo) indices into chunks of at most maxPairs, so that only the images a
 * chunk uses travel to the GPU. Throws BAD_ARGUMENT for an index out of range.
 */
export function* pairChunks(pairs: Uint32Array, ns: number, np: number, maxPairs: number): Generator<PairChunk> {
  const P = pairs.length / 2;
  for (let p0 = 0; p0 < P; p0 += maxPairs) {
    const chunk = pairs.subarray(2 * p0, 2 * Math.min(P, p0 + maxPairs));
    const pc = chunk.length / 2;
    const sketches = [...new Set(Array.from({ length: pc }, (_, k) => chunk[2 * k]!))];
    const photos = [...new Set(Array.from({ length: pc }, (_, k) => chunk[2 * k + 1]!))];
    const skPos = new Map(sketches.map((v, k) => [v, k]));
    const imPos = new Map(photos.map((v, k) => [v, k]));
    const local = new Uint32Array(2 * pc);
    for (let k = 0; k < pc; k++) {
      const s = chunk[2 * k]!, j = chunk[2 * k + 1]!;
      if (s >= ns || j >= np) throw new SketchError('BAD_ARGUMENT', `pair (${s}, ${j}) is out of range (${ns} sketches, ${np} photos)`, API_MISUSE_HINT);
      local[2 * k] = skPos.get(s)!;
      local[2 * k + 1] = imPos.get(j)!;
    }
    yield { p0, sketches, photos, local };
  }
}

/** Rows idx (each `row` floats) of src, packed in that order. */
export function takeRows(src: Float32Array, idx: readonly number[], row: number): Float32Array {
  const out = new Float32Array(idx.length * row);
  idx.forEach((s, k) => out.set(src.subarray(s * row, (s + 1) * row), k * row));
  return out;
}
