// Image decoding (src/io/image.ts): pixels equal to what Pillow and cv2 (libjpeg-turbo 2.1, libpng 1.6) decode,
// checked on tools/fixtures/make_preprocess_fixtures.py's synthetic files and, when present, the shared Sketchy data;
// broken and unsupported files give BAD_IMAGE errors that name the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PNG } from 'pngjs';
import { isSketchError, SketchError } from '../src/core/errors.ts';
import { decodeImage, type DecodedImage } from '../src/io/image.ts';
import { loadImageFile } from '../src/io/image-file.ts';
import { cvImreadRGB } from '../src/preprocess/opencv.ts';
import { hasSharedData, SHARED_DATA } from './paths.ts';
import { byteDiff, checkStage, expected, PP_DIR, sha256 } from './preprocess.fixtures.ts';

const read = (rel: string): Uint8Array => new Uint8Array(readFileSync(resolve(PP_DIR, rel)));

/** The array np.asarray(Image.open(p)) gives (mode '1' as 0/255, 'I' as little-endian u16), and its shape. */
function pilView(img: DecodedImage): { bytes: Uint8Array; shape: number[] } {
  const shape = img.channels === 1 ? [img.height, img.width] : [img.height, img.width, img.channels];
  if (img.mode === 'I') {
    const u16 = Uint16Array.from(img.data16!);
    return { bytes: new Uint8Array(u16.buffer), shape };
  }
  return { bytes: img.data, shape };
}

function expectBadImage(fn: () => unknown, name: string, match: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isSketchError(e), `${name}: expected a SketchError, got ${String(e)}`);
    const se = e as SketchError;
    assert.is(se.code, 'BAD_IMAGE', `${name}: code`);
    assert.ok(se.message.includes(name), `${name}: message should name the file: ${se.message}`);
    assert.ok(se.message.toLowerCase().includes(match.toLowerCase()), `${name}: "${se.message}" should mention "${match}"`);
    assert.ok(se.hint && se.hint.length > 10, `${name}: a hint says what to do`);
    return;
  }
  assert.unreachable(`${name}: decoded without error`);
}

test('synthetic files decode to the mode and pixels Pillow gives', () => {
  const bad: string[] = [];
  for (const c of expected.synthetic) {
    const img = decodeImage(read(c.file), c.file);
    const { bytes, shape } = pilView(img);
    if (img.mode !== c.pil.mode) bad.push(`${c.file}: mode ${img.mode}, Pillow says ${c.pil.mode}`);
    else if (shape.join('x') !== c.pil.shape.join('x')) bad.push(`${c.file}: shape ${shape} != ${c.pil.shape}`);
    else {
      const d = checkStage(bytes, c.pil, `${c.file} (${c.what})`);
      if (d) bad.push(d);
    }
  }
  assert.equal(bad, [], bad.join('\n'));
});

test('synthetic files read as cv2.imread does (BGR->RGB, alpha dropped, 16-bit cut, EXIF rotation)', () => {
  const bad: string[] = [];
  for (const c of expected.synthetic) {
    const rgb = cvImreadRGB(decodeImage(read(c.file), c.file));
    if (`${rgb.height}x${rgb.width}x3` !== c.cv2.shape.join('x')) bad.push(`${c.file}: shape ${rgb.height}x${rgb.width} != ${c.cv2.shape}`);
    else {
      const d = checkStage(rgb.data, c.cv2, `${c.file} (${c.what})`);
      if (d) bad.push(d);
    }
  }
  assert.equal(bad, [], bad.join('\n'));
});

test('PNG decoder agrees with pngjs on every synthetic PNG pngjs reads', () => {
  let compared = 0;
  for (const c of expected.synthetic.filter((x) => x.file.endsWith('.png'))) {
    const bytes = read(c.file);
    let ref: PNG;
    try {
      ref = PNG.sync.read(Buffer.from(bytes), { skipRescale: false });
    } catch {
      continue; // e.g. palette indices beyond PLTE
    }
    const img = decodeImage(bytes, c.file);
    if (img.exifOrientation || img.bitDepth === 16) continue; // pngjs rescales 16-bit instead of cutting
    const n = img.width * img.height;
    const mine = new Uint8Array(n * 4);
    for (let i = 0; i < n; i++) {
      let r: number, g: number, b: number;
      let a = 255;
      if (img.mode === 'P') {
        const p = img.data[i];
        [r, g, b] = [img.palette![p * 3], img.palette![p * 3 + 1], img.palette![p * 3 + 2]];
        a = ref.data[i * 4 + 3]; // tRNS alpha: not part of DecodedImage
      } else if (img.channels <= 2) {
        r = g = b = img.data[i * img.channels];
        if (img.channels === 2) a = img.data[i * 2 + 1];
      } else {
        [r, g, b] = [img.data[i * img.channels], img.data[i * img.channels + 1], img.data[i * img.channels + 2]];
        if (img.channels === 4) a = img.data[i * 4 + 3];
      }
      mine.set([r, g, b, a], i * 4);
    }
    assert.is(byteDiff(mine, new Uint8Array(ref.data)), null, c.file);
    compared++;
  }
  assert.ok(compared >= 15, `compared ${compared} files`);
});

test('broken and unsupported files give BAD_IMAGE naming the file and what is wrong', () => {
  for (const b of expected.bad) {
    const name = b.file.split('/').pop()!;
    expectBadImage(() => decodeImage(read(b.file), name), name, b.match);
  }
  expectBadImage(() => decodeImage(new Uint8Array(0), 'zero.jpg'), 'zero.jpg', 'empty');
  expectBadImage(() => decodeImage(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'a.svg'), 'a.svg', 'SVG');
  const png = read('images/rgb16.png');
  expectBadImage(() => decodeImage(png.subarray(0, 20), 'head.png'), 'head.png', 'PNG');
  const jpg = read('images/j_prog.jpg');
  expectBadImage(() => decodeImage(jpg.subarray(0, jpg.length - 300), 'cut.jpg'), 'cut.jpg', 'cut short');
  // A complete baseline JPEG that only lacks its EOI marker: the entropy data ends at end of file.
  const base = read('images/j_420.jpg');
  expectBadImage(() => decodeImage(base.subarray(0, base.length - 2), 'noeoi.jpg'), 'noeoi.jpg', 'JPEG');
});

test("damaged JPEGs that libjpeg still decodes carry its warnings (pixels checked above)", () => {
  const w = (f: string) => decodeImage(read(`images/${f}`), f).warnings ?? [];
  assert.ok(w('j_damaged_huffman.jpg').some((x) => x.includes('bad Huffman code')), String(w('j_damaged_huffman.jpg')));
  assert.ok(w('j_damaged_marker.jpg').some((x) => x.includes('premature end')), String(w('j_damaged_marker.jpg')));
  assert.equal(w('j_420.jpg'), []);
});

test('the default name in errors is "image"', () => {
  expectBadImage(() => decodeImage(new Uint8Array([1, 2, 3])), 'image', 'not a PNG or JPEG');
});

test('loadImageFile reads and decodes, and names the path in IO errors', async () => {
  const img = await loadImageFile(resolve(PP_DIR, 'images/j_gray.jpg'));
  assert.is(img.mode, 'L');
  try {
    await loadImageFile(resolve(PP_DIR, 'images/missing.png'));
    assert.unreachable('no error');
  } catch (e) {
    assert.ok(isSketchError(e) && e.code === 'IO' && e.message.includes('missing.png'), String(e));
  }
});

const shared = hasSharedData();
if (!shared) console.log(`NOTE: ${SHARED_DATA}/sketchy not found: skipping the real-data decode checks (counted as skipped)`);

(shared ? test : test.skip)('every Sketchy JPEG photo decodes byte-identical to Pillow (libjpeg-turbo)', () => {
  const entries = Object.entries(expected.decode.pil);
  const bad: string[] = [];
  for (const [rel, want] of entries) {
    const img = decodeImage(new Uint8Array(readFileSync(resolve(SHARED_DATA, rel))), rel);
    if (sha256(img.data) !== want) bad.push(rel);
  }
  console.log(`  JPEG decode: ${entries.length - bad.length}/${entries.length} photos byte-identical to Pillow`);
  assert.equal(bad.slice(0, 5), [], `${bad.length} differ`);
  assert.ok(entries.length >= 700);
});

(shared ? test : test.skip)('every Sketchy sketch PNG reads as cv2.imread does', () => {
  const entries = Object.entries(expected.decode.cv2);
  const bad: string[] = [];
  for (const [rel, want] of entries) {
    const rgb = cvImreadRGB(decodeImage(new Uint8Array(readFileSync(resolve(SHARED_DATA, rel))), rel));
    if (sha256(rgb.data) !== want) bad.push(rel);
  }
  console.log(`  PNG read: ${entries.length - bad.length}/${entries.length} sketches byte-identical to cv2.imread`);
  assert.equal(bad.slice(0, 5), [], `${bad.length} differ`);
  assert.ok(entries.length >= 700);
});

test.run();
