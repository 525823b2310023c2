/** What the JPEG decoder's parts share: the error, the decoded image, a frame component, the zigzag order. */
import { DecodeError } from '../decode-error.ts';

/** Thrown for anything the decoder cannot or will not decode; image.ts turns it into a SketchError. */
export class JpegError extends DecodeError {}

export interface JpegImage {
  width: number;
  height: number;
  /** 1 = grayscale, 3 = RGB (after YCbCr->RGB where the file is YCbCr), 4 = CMYK as libjpeg outputs it. */
  components: 1 | 3 | 4;
  /** Interleaved 8-bit samples in libjpeg's output colour space (JCS_GRAYSCALE, JCS_RGB or JCS_CMYK). */
  data: Uint8Array;
  /** The colour space libjpeg guessed for the stored data. */
  jpegColorSpace: 'gray' | 'ycbcr' | 'rgb' | 'cmyk' | 'ycck';
  progressive: boolean;
  /** The Adobe APP14 transform flag, when the file has one. */
  adobeTransform?: number;
  /** EXIF orientation tag (1..8) from APP1, when present; OpenCV's imread applies it, Pillow's open does not. */
  exifOrientation?: number;
  /** libjpeg's warnings for damaged but decodable data; the pixels are still what libjpeg (Pillow, cv2) gives. */
  warnings?: string[];
}

/** jpeg_natural_order with libjpeg's 16 extra entries, so a corrupt run length cannot index past the block. */
export const NATURAL_ORDER = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
  54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

export interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Quantisation table in natural order, latched at the component's first scan (jdinput.c latch_quant_tables). */
  quant: Int32Array | null;
  widthInBlocks: number;
  heightInBlocks: number;
  /** Allocated blocks per row / column (padded to whole MCUs of interleaved scans). */
  blocksPerLine: number;
  blocksPerColumn: number;
  coefs: Int16Array;
  downsampledWidth: number;
  downsampledHeight: number;
  dcPred: number;
  /** Progressive bookkeeping (jdphuff.c coef_bits): Al of the last scan that touched each coefficient, -1 = none. */
  coefBits: Int32Array;
}
