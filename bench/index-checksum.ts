// The cost of the index checksums (issue 15): write and open a 100,000-photo index at ViT-B width (D = 768), f32 and
// f16, timing serializeIndex, parseIndex and the CRC-32 alone. Run: node --import tsx bench/index-checksum.ts [N] [D]
import { crc32 } from '../src/io/crc32.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { parseIndex, serializeIndex, type GalleryIndex } from '../src/retrieval/index-format.ts';

const N = Number(process.argv[2] ?? 100_000), D = Number(process.argv[3] ?? 768);
const emb = new Float32Array(N * D);
let s = 1;
for (let i = 0; i < emb.length; i++) emb[i] = ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
for (let r = 0; r < N; r++) {
  let n = 0;
  for (let k = r * D; k < (r + 1) * D; k++) n += emb[k]! * emb[k]!;
  for (let k = r * D; k < (r + 1) * D; k++) emb[k]! /= Math.sqrt(n);
}
const paths = Array.from({ length: N }, (_, i) => `class${String(i % 125).padStart(3, '0')}/photo_${String(i).padStart(6, '0')}.jpg`);
const best = (f: () => unknown, reps = 3) => {
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
};
for (const dtype of ['f32', 'f16'] as const) {
  const ix: GalleryIndex = {
    model: { family: 'zse-sbir', weights_sha256: 'ab'.repeat(32), config: { dim: D } as never }, weightsPath: '/w', root: '/photos',
    paths, dim: D, dtype, embeddings: emb, skipped: [], created: new Date().toISOString(),
  };
  let bytes: Uint8Array = new Uint8Array(0);
  const tWrite = best(() => { bytes = serializeIndex(ix); });
  const tParse = best(() => parseIndex(bytes, 'bench.sgi'));
  const tRead = best(() => readSafetensors(bytes, 'bench.sgi'));
  const tCrc = best(() => crc32(bytes));
  // The unit-norm check parseIndex runs on the embeddings, alone.
  const tNorm = best(() => {
    for (let r = 0; r < N; r++) {
      let n = 0;
      for (let k = r * D; k < (r + 1) * D; k++) n += emb[k]! * emb[k]!;
      if (!(Math.abs(Math.sqrt(n) - 1) < 1e-2)) throw new Error('not unit');
    }
  });
  console.log(`${dtype}: N=${N} D=${D} file ${(bytes.length / 2 ** 20).toFixed(1)} MiB | serializeIndex ${tWrite.toFixed(0)} ms | parseIndex ${tParse.toFixed(0)} ms (of which safetensors parse ${tRead.toFixed(0)} ms) | CRC-32 of the whole file ${tCrc.toFixed(0)} ms (${(bytes.length / 2 ** 20 / (tCrc / 1000)).toFixed(0)} MiB/s) | unit-norm check ${tNorm.toFixed(0)} ms`);
}
