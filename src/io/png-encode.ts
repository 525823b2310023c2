/** PNG encoding of RGBA pixels (pngjs): the explanation pictures of `explain` and of the search server. */
import { PNG } from 'pngjs';

/** RGBA pixels, 8 bits per channel, row-major. */
export interface RgbaPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export function encodePng(img: RgbaPixels): Buffer {
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  return PNG.sync.write(png);
}
