// Photo and sketch preprocessing (zse-sbir.md §5) on tools/fixtures/make_preprocess_fixtures.py's synthetic edge cases:
// the uint8 HWC stage must equal the reference (Pillow resize+convert / cv2 crop+resize+pad) byte for byte at
// every size, and the float stage must equal torch's ToTensor+Normalize bit for bit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isSketchError } from '../src/core/errors.ts';
import { decodeImage } from '../src/io/image.ts';
import {
  NORMALIZE_LUT, preprocessPhoto, preprocessPhotoUint8, preprocessSketch, preprocessSketchUint8,
} from '../src/preprocess/index.ts';
import { checkStage, expected, PP_DIR } from './preprocess.fixtures.ts';

const load = (file: string) => decodeImage(new Uint8Array(readFileSync(resolve(PP_DIR, file))), file.split('/').pop());

test('ToTensor + Normalize table equals torch float32 bit for bit', () => {
  const bits = new Uint32Array(NORMALIZE_LUT.buffer);
  assert.equal(Array.from(bits), expected.normalize_lut_f32_bits);
  assert.is(NORMALIZE_LUT[0], -1);
  assert.is(NORMALIZE_LUT[255], 1);
});

test('photos: Image.open(p).resize((S,S)).convert("RGB") at S = 224, 112, 64, 24', () => {
  const bad: string[] = [];
  let n = 0;
  for (const c of expected.synthetic) {
    const img = load(c.file);
    for (const [s, want] of Object.entries(c.photo)) {
      const d = checkStage(preprocessPhotoUint8(img, Number(s)), want, `${c.file} (${c.what}) photo@${s}`);
      if (d) bad.push(d);
      n++;
    }
  }
  assert.equal(bad, [], `${bad.length}/${n} differ:\n${bad.join('\n')}`);
});

test('sketches: cv2.imread, crop to ink, resize by ratio, pad square at S = 224, 112, 64, 24', () => {
  const bad: string[] = [];
  let n = 0;
  for (const c of expected.synthetic) {
    const img = load(c.file);
    for (const [s, want] of Object.entries(c.sketch)) {
      n++;
      const what = `${c.file} (${c.what}) sketch@${s}`;
      if (want.error) {
        try {
          preprocessSketchUint8(img, Number(s));
          bad.push(`${what}: expected ${want.error}, got an image`);
        } catch (e) {
          if (!isSketchError(e) || e.code !== want.error) bad.push(`${what}: expected ${want.error}, got ${String(e)}`);
        }
        continue;
      }
      const d = checkStage(preprocessSketchUint8(img, Number(s)), want, what);
      if (d) bad.push(d);
    }
  }
  assert.equal(bad, [], `${bad.length}/${n} differ:\n${bad.join('\n')}`);
});

test('float stage is CHW [3,S,S] of the uint8 stage through the table', () => {
  for (const [file, fn, fn8] of [
    ['images/j_420.jpg', preprocessPhoto, preprocessPhotoUint8],
    ['images/sk_tall.png', preprocessSketch, preprocessSketchUint8],
  ] as const) {
    const img = load(file);
    for (const s of [224, 64]) {
      const u8 = fn8(img, s);
      const f = fn(img, s);
      assert.is(f.length, 3 * s * s);
      const n = s * s;
      for (const i of [0, 1, s, n - 1, (n >> 1) + 3]) {
        for (let ch = 0; ch < 3; ch++) assert.is(f[ch * n + i], NORMALIZE_LUT[u8[i * 3 + ch]], `${file}@${s} px ${i} ch ${ch}`);
      }
    }
  }
});

test('an empty sketch is EMPTY_SKETCH naming the file, with a hint', () => {
  for (const f of ['images/sk_blank.png', 'images/sk_light.png']) {
    try {
      preprocessSketch(load(f));
      assert.unreachable(f);
    } catch (e) {
      assert.ok(isSketchError(e), String(e));
      assert.is(e.code, 'EMPTY_SKETCH');
      assert.ok(e.message.includes(f.split('/').pop()!) && e.message.includes('no ink'), e.message);
      assert.ok(e.hint?.includes('dark strokes'), e.hint);
    }
  }
});

test.run();
