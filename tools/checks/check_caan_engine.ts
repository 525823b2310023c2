// Engine vs PyTorch on trained CAAN weights (tools/training/train_caan.py writes both files):
//
//   node --import tsx --import ./test/hooks.mjs tools/checks/check_caan_engine.ts OUT/NAME.safetensors OUT/NAME.check.safetensors
//
// Loads the weights with loadCaanWeights (the engine's validation of every tensor), embeds the check file's sketches,
// photos (preprocessed inputs) and texts (the texts through the engine's own CLIP tokenizer, and its token ids
// compared with PyTorch's), and prints the cosine and max |diff| of each embedding against PyTorch's float32 ones
// from the same fp16 weights. Exit code 1 when a cosine is below 0.9999 or the token ids differ.
import { readFileSync } from 'node:fs';
import { loadCaanWeights } from '../../src/models/load-file.ts';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { toFloat32 } from '../../src/core/tensor.ts';
import { CaanModel } from '../../src/models/caan/model.ts';
import { loadClipTokenizer } from '../../src/text/clip-vocab-node.ts';
import { nodeGpu } from '../../src/graph/node-gpu.ts';

const [weightsPath, checkPath] = process.argv.slice(2);
if (!weightsPath || !checkPath) {
  console.error('usage: tools/checks/check_caan_engine.ts WEIGHTS.safetensors CHECK.safetensors');
  process.exit(2);
}
const w = await loadCaanWeights(weightsPath);
const check = readSafetensors(readFileSync(checkPath), checkPath);
const texts = JSON.parse(check.metadata['texts'] ?? '[]') as string[];
const get = (k: string) => toFloat32(check.tensors.get(k)!);
const tokenizer = await loadClipTokenizer();
const model = CaanModel.create(await nodeGpu(), w.config, w.tensors, { tokenizer });
const E = w.config.embed;

function compare(what: string, got: Float32Array, ref: Float32Array): number {
  const n = ref.length / E;
  let worstCos = 1, maxDiff = 0;
  for (let i = 0; i < n; i++) {
    let dot = 0, na = 0, nb = 0;
    for (let j = 0; j < E; j++) {
      const a = got[i * E + j]!, b = ref[i * E + j]!;
      dot += a * b; na += a * a; nb += b * b;
      maxDiff = Math.max(maxDiff, Math.abs(a - b));
    }
    worstCos = Math.min(worstCos, dot / Math.sqrt(na * nb));
  }
  console.log(`${what.padEnd(8)} n=${n}  min cosine ${worstCos.toFixed(7)}  max |diff| ${maxDiff.toExponential(2)}`);
  return worstCos;
}

const ns = check.tensors.get('sketch.input')!.shape[0]!;
const np = check.tensors.get('photo.input')!.shape[0]!;
const cosines = [
  compare('sketch', (await model.encodeSketches(get('sketch.input'), ns)).emb, get('sketch.emb')),
  compare('photo', (await model.encodePhotos(get('photo.input'), np)).emb, get('photo.emb')),
  compare('text', (await model.encodeTexts(texts)).emb, get('text.emb')),
];
const ids = tokenizer.tokenize(texts, w.config.text.context);
const refIds = check.tensors.get('text.ids')!.data as Int32Array;
const idsSame = ids.data.length === refIds.length && ids.data.every((v, i) => v === refIds[i]);
console.log(`config ${JSON.stringify(w.config)}\ntexts ${JSON.stringify(texts)}\ntoken ids identical to PyTorch's: ${idsSame}`);
await model.destroy();
process.exit(cosines.every((c) => c >= 0.9999) && idsSame ? 0 : 1);
