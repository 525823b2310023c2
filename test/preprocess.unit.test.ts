// The sketch steps of zse-sbir.md §5.2 on hand-made arrays: the 10/9 px crop margins, the float truncation of
// the resize target, the floor-on-top/left padding with np.max, and argument checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSketchError } from '../src/core/errors.ts';
import { cropToInk, padToSquare, preprocessPhoto, ratioResizeTarget, resizeByRatio, type RGBImage } from '../src/preprocess/index.ts';
import type { DecodedImage } from '../src/io/image.ts';

function canvas(w: number, h: number, ink: [number, number][], v = 0): RGBImage {
  const data = new Uint8Array(w * h * 3).fill(255);
  for (const [x, y] of ink) data.fill(v, (y * w + x) * 3, (y * w + x) * 3 + 3);
  return { width: w, height: h, data };
}

test('crop keeps 10 px above/left of the ink but only 9 px below/right (exclusive slice end)', () => {
  const c = cropToInk(canvas(100, 80, [[30, 20], [50, 40]]))!;
  // x: 20 .. 59 inclusive (60 exclusive), y: 10 .. 49 inclusive
  assert.is(c.width, 60 - 20);
  assert.is(c.height, 50 - 10);
  const at = (x: number, y: number) => c.data[(y * c.width + x) * 3];
  assert.is(at(10, 10), 0); // ink (30,20) -> (10,10): 10 px margin
  assert.is(at(30, 30), 0); // ink (50,40) -> (30,30): 9 px to the right/bottom edge (index 39)
});

test('crop clamps at the image border and the ink threshold is R+G+B <= 300', () => {
  const c = cropToInk(canvas(20, 10, [[0, 0], [19, 9]]))!;
  assert.equal([c.width, c.height], [20, 10]);
  const img = canvas(60, 60, [[30, 30]], 100); // 100+100+100 = 300: ink
  img.data.fill(101, (5 * 60 + 5) * 3, (5 * 60 + 5) * 3 + 3); // 303: not ink
  const d = cropToInk(img)!;
  assert.equal([d.width, d.height], [20, 20]); // 20..39: 10 px before the ink pixel at 30, 9 after
  assert.is(cropToInk(canvas(8, 8, [[3, 3]], 101)), null);
});

test('ratio target uses the float expressions: h=28, w=25 at S=224 gives 199 (not 200)', () => {
  assert.equal(ratioResizeTarget(25, 28, 224), { width: 199, height: 224 });
  assert.equal(ratioResizeTarget(112, 61, 224), { width: 224, height: 121 });
  assert.equal(ratioResizeTarget(50, 50, 224), { width: 224, height: 224 });
});

test('a crop too thin to resize is BAD_IMAGE (the reference crashes in cv2.resize)', () => {
  try {
    resizeByRatio(canvas(2400, 16, [[5, 5]]), 64);
    assert.unreachable();
  } catch (e) {
    assert.ok(isSketchError(e) && e.code === 'BAD_IMAGE' && e.message.includes('too thin'), String(e));
  }
});

test('padding puts the floor half on top/left and fills with the max sample', () => {
  const img: RGBImage = { width: 4, height: 1, data: new Uint8Array(12).fill(200) };
  img.data[5] = 250; // max of any channel
  const p = padToSquare(img);
  assert.is(p.width, 4);
  assert.is(p.height, 4);
  // 3 rows of padding: 1 on top, 2 below; the image row is row 1
  assert.is(p.data[0], 250);
  assert.is(p.data[(1 * 4 + 0) * 3], 200);
  assert.is(p.data[(2 * 4 + 0) * 3], 250);
  const tall = padToSquare({ width: 1, height: 4, data: new Uint8Array(12).fill(7) });
  assert.is(tall.data[(0 * 4 + 1) * 3], 7); // 3 columns: 1 left, 2 right
  assert.is(tall.data[(0 * 4 + 0) * 3], 7); // fill is the max, 7
});

test('preprocessing size must be a positive integer', () => {
  const img: DecodedImage = { format: 'png', width: 2, height: 2, mode: 'L', channels: 1, data: new Uint8Array(4), bitDepth: 8, name: 'x.png' };
  for (const s of [0, -1, 1.5, NaN]) {
    try {
      preprocessPhoto(img, s);
      assert.unreachable(String(s));
    } catch (e) {
      assert.ok(isSketchError(e) && e.code === 'BAD_ARGUMENT', String(e));
    }
  }
});

test.run();
