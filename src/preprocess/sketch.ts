/**
 * Sketch preprocessing, zse-sbir.md §5.2 and §11 quirk 15, step by step as `data_utils/utils.py::preprocess`
 * does it: cv2.imread + BGR2RGB, remove_white_space_image(img, 10), resize_image_by_ratio(img, S),
 * make_img_square(img), then ToTensor + Normalize. Strokes stay dark on white (no inversion).
 */
import { SketchError } from '../core/errors.ts';
import type { DecodedImage } from '../io/image.ts';
import { checkSize } from './size.ts';
import { toNormalizedCHW } from './normalize.ts';
import { cvImreadRGB, cvResizeLinear } from './opencv.ts';

/** A packed HWC RGB uint8 image. */
export interface RGBImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Ink is any pixel with R+G+B <= 300, so light-grey antialiasing does not count (§5.2 step 2). */
export const INK_MAX_SUM = 300;
export const CROP_PADDING = 10;

/**
 * remove_white_space_image: crop to the ink's bounding box plus 10 px. The slice end `ymax + 10` is exclusive,
 * so the margin is 10 px top/left but 9 px bottom/right. Returns null when there is no ink at all (where the
 * reference crashes in np.min of an empty array).
 */
export function cropToInk(img: RGBImage): RGBImage | null {
  const { width: w, height: h, data } = img;
  let ymin = h;
  let ymax = -1;
  let xmin = w;
  let xmax = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      if (data[i] + data[i + 1] + data[i + 2] <= INK_MAX_SUM) {
        if (y < ymin) ymin = y;
        if (y > ymax) ymax = y;
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
      }
    }
  }
  if (ymax < 0) return null;
  const y0 = Math.max(0, ymin - CROP_PADDING);
  const y1 = Math.min(h, ymax + CROP_PADDING);
  const x0 = Math.max(0, xmin - CROP_PADDING);
  const x1 = Math.min(w, xmax + CROP_PADDING);
  const cw = x1 - x0;
  const ch = y1 - y0;
  const out = new Uint8Array(cw * ch * 3);
  for (let y = 0; y < ch; y++) out.set(data.subarray(((y0 + y) * w + x0) * 3, ((y0 + y) * w + x1) * 3), y * cw * 3);
  return { width: cw, height: ch, data: out };
}

/**
 * The target size of resize_image_by_ratio, with its exact float expressions: ratio = h / w, then
 * (int(S / ratio), S) if h > w else (S, int(S * ratio)); `int()` truncates.
 */
export function ratioResizeTarget(width: number, height: number, size: number): { width: number; height: number } {
  const ratio = height / width;
  return height > width
    ? { width: Math.trunc(size / ratio), height: size }
    : { width: size, height: Math.trunc(size * ratio) };
}

/** resize_image_by_ratio: cv2.resize INTER_LINEAR so the longer side becomes `size`. */
export function resizeByRatio(img: RGBImage, size: number): RGBImage {
  const t = ratioResizeTarget(img.width, img.height, size);
  if (t.width < 1 || t.height < 1) {
    throw new SketchError('BAD_IMAGE',
      `the sketch's inked area (${img.width}x${img.height} px after cropping) is too thin to scale to ${size} px: ` +
      `its short side would round down to 0 px`,
      'Use a sketch whose strokes span more than a thin line, or a larger preprocessing size.');
  }
  return { ...t, data: cvResizeLinear(img.data, img.width, img.height, 3, t.width, t.height) };
}

/**
 * make_img_square: pad the short side to a square with np.max(img) (the brightest sample of any channel,
 * normally 255); the floor half of the padding goes on top/left.
 */
export function padToSquare(img: RGBImage): RGBImage {
  const { width: w, height: h, data } = img;
  let fill = 0;
  for (let i = 0; i < data.length; i++) if (data[i] > fill) fill = data[i];
  const s = Math.max(w, h);
  const out = new Uint8Array(s * s * 3).fill(fill);
  if (h > w) {
    const d1 = (h - w) >> 1;
    for (let y = 0; y < h; y++) out.set(data.subarray(y * w * 3, (y + 1) * w * 3), (y * s + d1) * 3);
  } else {
    const d1 = (w - h) >> 1;
    out.set(data, d1 * s * 3);
  }
  return { width: s, height: s, data: out };
}

/** The uint8 stage: S x S x 3 RGB (HWC), equal to the array `make_img_square` returns in the reference. */
export function preprocessSketchUint8(img: DecodedImage, size = 224): Uint8Array {
  checkSize(size);
  const rgb = cvImreadRGB(img);
  const cropped = cropToInk(rgb);
  if (!cropped) {
    throw new SketchError('EMPTY_SKETCH',
      `${img.name}: the sketch has no ink: none of its ${rgb.width}x${rgb.height} pixels is darker than ` +
      `R+G+B <= ${INK_MAX_SUM}`,
      'Sketches must be dark strokes on a white background (not inverted, not blank, not very light grey).');
  }
  return padToSquare(resizeByRatio(cropped, size)).data;
}

/**
 * A warning for a sketch with transparent pixels, or null. The reference reads sketches with `cv2.imread`, which
 * drops the alpha channel without compositing (opencv.ts), and sketchgpu reproduces it: a transparent background
 * shows whatever colour its pixels hold, typically black, so the whole sketch reads as ink. Compositing over white
 * would differ from the reference for every such file; the user is told instead (docs/reliability.md).
 */
export function sketchAlphaWarning(img: DecodedImage): string | null {
  const cn = img.mode === 'RGBA' ? 4 : img.mode === 'LA' ? 2 : 0;
  if (!cn) return null;
  let transparent = 0;
  for (let i = cn - 1; i < img.data.length; i += cn) if (img.data[i]! < 255) transparent++;
  if (!transparent) return null;
  const pct = (100 * transparent) / (img.width * img.height);
  return `${img.name}: ${pct < 0.1 ? '<0.1' : pct.toFixed(1)}% of the sketch's pixels are (partly) transparent; as in the reference (cv2.imread), ` +
    'the alpha channel is dropped, so transparent areas count with their hidden colour (often black, i.e. ink). ' +
    'Flatten the sketch onto white first, e.g. `convert in.png -background white -flatten out.png` (ImageMagick).';
}

/** The model input: Float32Array [3, S, S] (CHW), values (x/255 - 0.5)/0.5: background +1, black ink -1. */
export function preprocessSketch(img: DecodedImage, size = 224): Float32Array {
  return toNormalizedCHW(preprocessSketchUint8(img, size), size);
}
