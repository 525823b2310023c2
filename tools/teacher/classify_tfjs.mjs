// The package's own classifier on raw RGB images: reads INPUT (u32 N, H, W, then uint8 [N,H,W,3]; check.py writes
// it), runs nsfwjs's `infer` (what `classify` ranks: all 5 class probabilities) and `infer(img, FEATURE)` (an
// intermediate layer, spatially averaged) with TensorFlow.js's CPU backend, and prints one JSON line
// [{probs, feature}, ...]. Usage: node classify_tfjs.mjs MODEL INPUT FEATURE. Used by tools/teacher/check.py.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, 'package.json'));
const [, , model, input, feature] = process.argv;
const tf = require('@tensorflow/tfjs');
await tf.setBackend('cpu');
const nsfwjs = require('nsfwjs');
const buf = readFileSync(input);
const [n, h, w] = [buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8)];
const names = { inception_v3: 'InceptionV3', mobilenet_v2: 'MobileNetV2' };
const size = model === 'inception_v3' ? 299 : 224;
const net = await nsfwjs.load(names[model], { size });
const out = [];
for (let i = 0; i < n; i++) {
  const px = buf.subarray(12 + i * h * w * 3, 12 + (i + 1) * h * w * 3);
  const img = tf.tensor3d(new Int32Array(px), [h, w, 3], 'int32');
  const p = net.infer(img);
  const f = net.infer(img, feature);
  const pooled = tf.mean(f, [0, 1, 2]);
  out.push({ probs: Array.from(await p.data()), feature: Array.from(await pooled.data()) });
  img.dispose(); p.dispose(); f.dispose(); pooled.dispose();
}
console.log(JSON.stringify(out));
