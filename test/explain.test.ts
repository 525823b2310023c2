// Explanations on fixed inputs: the cross-attention maps against a float64 host computation from the reference's
// SA tokens and the weights (independent of the GPU path), the RN score against the reference, picture sizes, no NaN;
// and the CLI's PNG/HTML outputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { bestMatches, explainPair, strongestLinks } from '../src/explain/correspondence.ts';
import { inkPerPatch, rebuildFromPatches, renderExplanation } from '../src/explain/render.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { toFloat32 } from '../src/core/tensor.ts';
import { loadWeights } from '../src/models/load-file.ts';
import { ZseModel } from '../src/models/zse/model.ts';
import { FIXTURES, REPO_ROOT } from './paths.ts';
import { assertClose, gpu } from './util.ts';

const W = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'zse', 'tiny64.expected.safetensors'))).tensors;
const get = (k: string) => toFloat32(exp.get(k)!);

/** float64: head-averaged softmax((x_own Wqᵀ + bq)(x_other Wkᵀ + bk)ᵀ / sqrt(dk)). */
function refAttention(own: Float32Array, other: Float32Array, wq: Float32Array, bq: Float32Array, wk: Float32Array, bk: Float32Array, T: number, D: number, H: number): Float64Array {
  const proj = (x: Float32Array, w: Float32Array, b: Float32Array) => {
    const y = new Float64Array(T * D);
    for (let t = 0; t < T; t++) for (let o = 0; o < D; o++) {
      let s = b[o]!;
      for (let i = 0; i < D; i++) s += x[t * D + i]! * w[o * D + i]!;
      y[t * D + o] = s;
    }
    return y;
  };
  const q = proj(own, wq, bq), k = proj(other, wk, bk);
  const dk = D / H;
  const out = new Float64Array(T * T);
  for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
    const s = Array.from({ length: T }, (_, j) => {
      let d = 0;
      for (let c = h * dk; c < (h + 1) * dk; c++) d += q[i * D + c]! * k[j * D + c]!;
      return d / Math.sqrt(dk);
    });
    const m = Math.max(...s);
    const e = s.map((v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    e.forEach((v, j) => { out[i * T + j] += v / z / H; });
  }
  return out;
}

test('cross-attention maps, RN score and views of a fixed pair', async () => {
  const w = await loadWeights(W);
  const cfg = w.config;
  const model = ZseModel.create(await gpu(), cfg, w.tensors);
  const S = cfg.imageSize, px = 3 * S * S, T = model.tokens, D = cfg.dim;
  const sk = get('sketch.input').slice(0, px), im = get('photo.input').slice(0, px);
  const e = await explainPair(model, sk, im);
  const t = (k: string) => toFloat32(w.tensors.get(k)!);
  const skSa = get('sketch.sa').slice(0, T * D), imSa = get('photo.sa').slice(0, T * D);
  const p1 = 'ca.encoder.layer1.0.self_attn.linears', p2 = 'ca.encoder.layer2.0.self_attn.linears';
  const ref1 = refAttention(skSa, imSa, t(`${p1}.0.weight`), t(`${p1}.0.bias`), t(`${p1}.1.weight`), t(`${p1}.1.bias`), T, D, cfg.caHeads);
  const ref2 = refAttention(imSa, skSa, t(`${p2}.0.weight`), t(`${p2}.0.bias`), t(`${p2}.1.weight`), t(`${p2}.1.bias`), T, D, cfg.caHeads);
  // Probabilities in [0,1] from fp32 projections of O(1) tokens: 1e-5 absolute is ~10x the expected fp32 error.
  assertClose(e.sketchToPhoto, ref1, 1e-5, 0, 'sketch->photo attention');
  assertClose(e.photoToSketch, ref2, 1e-5, 0, 'photo->sketch attention');
  for (let i = 0; i < T; i++) {
    let s = 0;
    for (let j = 0; j < T; j++) s += e.sketchToPhoto[i * T + j]!;
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${i} sums to ${s}`);
  }
  // The reference's RN score for pair (sketch 0, photo 0) is rn.score[0, 0].
  assert.ok(Math.abs(e.rn - get('rn.score')[0]!) < 1e-4, `rn ${e.rn} vs ${get('rn.score')[0]}`);
  assertClose(e.anchorCosine, get('pair.cos').slice(0, cfg.anchorGrid ** 4), 1e-4, 0, 'anchor cosine');

  const v = renderExplanation(e, sk, im, 5);
  assert.is(v.links.width, 2 * S + 24);
  assert.is(v.sketchFromPhoto.width, S);
  assert.is(v.anchors.width, cfg.anchorGrid ** 2 * Math.max(1, Math.floor(S / cfg.anchorGrid ** 2)));
  assert.ok(v.sheet.data.every((x) => Number.isFinite(x)));
  // Deterministic: the same links twice; best matches index valid patches.
  assert.equal(strongestLinks(e, 5), strongestLinks(await explainPair(model, sk, im), 5));
  assert.ok(bestMatches(e.sketchToPhoto, cfg.grid).every((m) => m < cfg.grid ** 2));
  await model.destroy();
});

test('sketchgpu explain writes a PNG sheet, an HTML page and the separate views', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-explain-'));
  const fx = resolve(FIXTURES, 'preprocess', 'images');
  const files = readdirSync(fx);
  const sketch = join(fx, files.find((f) => /sketch.*\.png$/i.test(f)) ?? files.find((f) => f.endsWith('.png'))!);
  const photo = join(fx, files.find((f) => /\.jpe?g$/i.test(f))!);
  const bin = resolve(REPO_ROOT, 'bin', 'sketchgpu.js');
  const run = (out: string, extra: string[] = []) => spawnSync(process.execPath, [bin, 'explain', '--weights', W, sketch, photo, '-o', out, '--json', ...extra], { encoding: 'utf8' });
  const r = run(join(tmp, 'x.png'), ['--parts', join(tmp, 'views')]);
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.ok(j.rn > 0 && j.rn < 1);
  const png = PNG.sync.read(readFileSync(join(tmp, 'x.png')));
  // Three rows of 64 px views, two 24 px gaps holding the titles of rows 2 and 3, and a 13 px title band on top.
  assert.ok(png.width > 2 * 64 && png.height === 3 * 64 + 48 + 13, `sheet ${png.width}x${png.height}`);
  // The titles are drawn: dark ink in the top band over the links panel (the views start below it).
  let ink = 0;
  for (let y = 0; y < 13; y++) for (let x = 0; x < 2 * 64; x++) if (png.data[4 * (y * png.width + x)]! < 100) ink++;
  assert.ok(ink > 40, `title ink ${ink}`);
  assert.equal(readdirSync(join(tmp, 'views')).sort(), ['anchors.png', 'heatPhoto.png', 'heatSketch.png', 'links.png', 'photoFromSketch.png', 'sketchFromPhoto.png']);
  const h = run(join(tmp, 'x.html'));
  assert.is(h.status, 0, h.stderr);
  assert.is((readFileSync(join(tmp, 'x.html'), 'utf8').match(/<img /g) ?? []).length, 6);
  const bad = run(join(tmp, 'x.gif'));
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /must end in \.png or \.html/);
});

test('patch views on a grid that does not divide the side (a front variant: 17 x 17 on 128 px): patches of 7 or 8 pixels, each pixel in one', () => {
  const S = 128, G = 17;
  const img = { width: S, height: S, data: new Uint8ClampedArray(4 * S * S) };
  for (let i = 0; i < S * S; i++) img.data.set([i % 251, (i * 7) % 253, (i * 13) % 255, 255], 4 * i);
  // The identity match rebuilds the image itself; a match that swaps two patches moves exactly their pixels.
  assert.equal(rebuildFromPatches(img, Uint32Array.from({ length: G * G }, (_, i) => i), G).data, img.data);
  const swap = Uint32Array.from({ length: G * G }, (_, i) => (i === 0 ? G * G - 1 : i === G * G - 1 ? 0 : i));
  const out = rebuildFromPatches(img, swap, G);
  let moved = 0;
  for (let i = 0; i < S * S; i++) if (out.data[4 * i] !== img.data[4 * i] || out.data[4 * i + 1] !== img.data[4 * i + 1]) moved++;
  assert.ok(moved > 0 && moved <= 2 * 8 * 8, `${moved} pixels moved`);
  // Ink: a black image is fully inked in every patch, a white one nowhere.
  const black = { width: S, height: S, data: new Uint8ClampedArray(4 * S * S).map((_, i) => (i % 4 === 3 ? 255 : 0)) };
  assert.ok(inkPerPatch(black, G).every((v) => Math.abs(v - 1) < 1e-6));
  assert.ok(inkPerPatch({ ...black, data: new Uint8ClampedArray(4 * S * S).fill(255) }, G).every((v) => v === 0));
});

test.run();
