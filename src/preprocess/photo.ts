/**
 * Photo preprocessing, zse-sbir.md §5.1: `Image.open(p).resize((S, S)).convert('RGB')` with Pillow's default
 * (antialiased BICUBIC) resampling, squashing to S x S with no aspect ratio kept, resize before convert
 * (so 'P' and '1' files are resized NEAREST, CMYK files in CMYK, RGBA premultiplied), then ToTensor + Normalize.
 */
import type { DecodedImage } from '../io/image.ts';
import { checkSize } from './size.ts';
import { toNormalizedCHW } from './normalize.ts';
import { pilConvertRGB, pilFromDecoded, pilResize } from './pillow.ts';

/** The uint8 stage: S x S x 3 RGB, row-major HWC, equal to `np.asarray(Image.open(p).resize((S,S)).convert('RGB'))`. */
export function preprocessPhotoUint8(img: DecodedImage, size = 224): Uint8Array {
  checkSize(size);
  return pilConvertRGB(pilResize(pilFromDecoded(img), size, size));
}

/** The model input: Float32Array [3, S, S] (CHW), values (x/255 - 0.5)/0.5. */
export function preprocessPhoto(img: DecodedImage, size = 224): Float32Array {
  return toNormalizedCHW(preprocessPhotoUint8(img, size), size);
}
