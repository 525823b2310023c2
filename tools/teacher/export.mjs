// Exports a teacher CNN that the npm package nsfwjs@4.4.0 ships (TensorFlow.js layers model, weights as JS modules
// holding base64 uint8 per-tensor-quantised data) into files PyTorch can read:
//   OUT/<model>.topology.json   the Keras model config (layers, inbound nodes)
//   OUT/<model>.safetensors     every weight dequantised to float32 (q * scale + min, as tfjs does on load), each
//                               tensor's [min, scale] in the metadata entry `quantization` (JSON)
// Usage: node tools/teacher/export.mjs [--model inception_v3|mobilenet_v2] [--out .cache/teacher]
// Installs tools/teacher's own dependencies on first use (training tools only; never the engine's).
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
if (args.includes('--help')) {
  console.log('usage: node tools/teacher/export.mjs [--model inception_v3|mobilenet_v2] [--out .cache/teacher]');
  process.exit(0);
}
const model = opt('--model', 'inception_v3');
const out = resolve(opt('--out', '.cache/teacher'));
if (!['inception_v3', 'mobilenet_v2'].includes(model)) {
  console.error(`error: unknown teacher model ${model}\nhint: use inception_v3 or mobilenet_v2`);
  process.exit(2);
}
if (!existsSync(join(here, 'node_modules', 'nsfwjs'))) {
  console.error('installing the teacher tools\' dependencies (tools/teacher: nsfwjs, @tensorflow/tfjs)...');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent'], { cwd: here, stdio: 'inherit' });
}
const require = createRequire(join(here, 'package.json'));
const modelDir = join(here, 'node_modules', 'nsfwjs', 'dist', 'models', model);
const { modelTopology, weightsManifest } = require(join(modelDir, 'model.min.js'));

const tensors = [];
let offset = 0;
for (const group of weightsManifest) {
  const bytes = Buffer.concat(group.paths.map((p) => Buffer.from(require(join(modelDir, `${p}.min.js`)), 'base64')));
  let pos = 0;
  for (const w of group.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const q = w.quantization;
    if (!q || q.dtype !== 'uint8' || w.dtype !== 'float32') throw new Error(`unexpected weight encoding for ${w.name}`);
    const f = new Float32Array(n);
    for (let i = 0; i < n; i++) f[i] = bytes[pos + i] * q.scale + q.min;
    pos += n;
    tensors.push({ name: w.name, shape: w.shape, data: Buffer.from(f.buffer), offset, quant: [q.min, q.scale] });
    offset += f.byteLength;
  }
  if (pos !== bytes.length) throw new Error(`weights group uses ${pos} of ${bytes.length} bytes`);
}
// The per-tensor quantisation ([min, scale] as the package gives them) goes into the metadata, so the uint8 values
// can be recovered exactly (tools/teacher/front.py ships the front that way).
const quantization = JSON.stringify(Object.fromEntries(tensors.map((t) => [t.name, t.quant])));
const header = { __metadata__: { source: `nsfwjs@4.4.0 dist/models/${model}`, dequantised: 'uint8 * scale + min', quantization } };
for (const t of tensors) header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [t.offset, t.offset + t.data.length] };
let h = Buffer.from(JSON.stringify(header));
h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(h.length));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, `${model}.safetensors`), Buffer.concat([len, h, ...tensors.map((t) => t.data)]));
writeFileSync(join(out, `${model}.topology.json`), JSON.stringify(modelTopology));
console.log(`${model}: ${tensors.length} tensors, ${(offset / 4).toLocaleString('en')} parameters -> ${out}`);
