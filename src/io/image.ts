/**
 * Image decoding for the preprocessing of zse-sbir.md §5: PNG and JPEG only, decoded so that the pixels are the
 * ones the reference sees. Photos go through Pillow (`Image.open`), sketches through OpenCV (`cv2.imread`), and
 * both link Debian's libjpeg62-turbo and libpng16; `DecodedImage` holds the file as Pillow's `Image.open` holds it
 * (its mode and samples), plus what the OpenCV view needs on top (raw palette, 16-bit samples, EXIF orientation).
 * src/preprocess turns it into either view.
 *
 * Pure TypeScript, no Node APIs: it runs in the browser. Reading files lives in image-file.ts.
 */
import { SketchError } from '../core/errors.ts';
import { decodeJpeg } from './jpeg/decode.ts';
import { readTiffOrientation } from './jpeg/exif.ts';
import { JpegError } from './jpeg/types.ts';
import { decodePng, isPng, PngError } from './image-png.ts';

/**
 * Pillow's mode after `Image.open`:
 * - '1': 1-bit grayscale PNG (samples 0 or 255)
 * - 'L': grayscale (PNG of 2..8 bits scaled to 0..255, or a 1-component JPEG)
 * - 'I': 16-bit grayscale PNG (`data16` holds the samples, `data` their high bytes)
 * - 'P': palette PNG (`data` holds indices, `palette` the PLTE entries)
 * - 'LA': 8-bit gray+alpha PNG (2 samples per pixel)
 * - 'RGB', 'RGBA': truecolour (16-bit PNGs cut to their high byte, as Pillow's ;16B unpackers do); a 16-bit
 *   gray+alpha PNG also opens as RGBA (Pillow's "LA;16B" rawmode)
 * - 'CMYK': 4-component JPEG, with Pillow's Adobe polarity ("CMYK;I": 255 minus what libjpeg outputs)
 */
export type ImageMode = '1' | 'L' | 'I' | 'P' | 'LA' | 'RGB' | 'RGBA' | 'CMYK';

export interface DecodedImage {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
  mode: ImageMode;
  /** Samples per pixel in `data`. */
  channels: 1 | 2 | 3 | 4;
  /** Row-major, interleaved 8-bit samples as described for each mode. */
  data: Uint8Array;
  /** Mode 'I' only: the full 16-bit samples. */
  data16?: Uint16Array;
  /** Mode 'P' only: the PLTE chunk as written (RGB triplets, up to 256 entries). */
  palette?: Uint8Array;
  /** Bits per sample in the file (8 for JPEG). */
  bitDepth: number;
  /** EXIF orientation 1..8 when the file has one: OpenCV's `imread` rotates by it, Pillow's `open` does not. */
  exifOrientation?: number;
  /** The name used in error messages. */
  name: string;
  /**
   * JPEG only: libjpeg's warnings for damaged data it still decodes (bad Huffman codes, a premature marker,
   * mismatched restart markers, junk between segments). Pillow and cv2 accept such files with the same pixels.
   */
  warnings?: string[];
}

const SUPPORTED_HINT =
  'Supported formats are PNG (any bit depth, colour type or interlace) and JPEG (baseline or progressive, ' +
  'Huffman-coded, 8-bit). Re-save the image as PNG or JPEG, e.g. `convert in.webp out.png` (ImageMagick).';

/** A guess at what a non-PNG, non-JPEG file is, from its first bytes. */
function sniff(b: Uint8Array): string | null {
  const ascii = (o: number, n: number): string => String.fromCharCode(...b.subarray(o, o + n));
  if (b.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'a GIF image';
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') return 'a WebP image';
  if (b.length >= 2 && ascii(0, 2) === 'BM') return 'a BMP image';
  if (b.length >= 4 && (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')) return 'a TIFF image';
  if (b.length >= 12 && ascii(4, 4) === 'ftyp') {
    const brand = ascii(8, 4);
    if (brand.startsWith('avi')) return 'an AVIF image';
    if (brand.startsWith('hei') || brand.startsWith('mif') || brand.startsWith('hev')) return 'a HEIF/HEIC image';
    return 'an ISO media (MP4/HEIF family) file';
  }
  if (b.length >= 12 && b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0x0c && ascii(4, 4) === 'jP  ') return 'a JPEG 2000 image';
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51) return 'a JPEG 2000 codestream';
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return 'an ICO icon';
  if (b.length >= 4 && ascii(0, 4) === '8BPS') return 'a Photoshop (PSD) file';
  if (b.length >= 4 && ascii(0, 4) === '%PDF') return 'a PDF document';
  if (b.length >= 2 && b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x37) return 'a PNM/PPM image';
  if (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 3 && b[3] === 4) return 'a ZIP archive';
  const head = ascii(0, Math.min(b.length, 256)).trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'an SVG image';
  if (head.startsWith('<')) return 'an HTML/XML text file';
  return null;
}

function badImage(name: string, what: string, hint = SUPPORTED_HINT, cause?: unknown): SketchError {
  return new SketchError('BAD_IMAGE', `${name}: ${what}`, hint, cause === undefined ? undefined : { cause });
}

/**
 * Decode PNG or JPEG bytes. Throws SketchError BAD_IMAGE for anything else, and for corrupt, truncated or
 * unsupported files, naming the file and what it seems to be.
 */
export function decodeImage(bytes: Uint8Array, name = 'image'): DecodedImage {
  if (bytes.length === 0) throw badImage(name, 'the file is empty (0 bytes)', 'Check that the file was written completely.');
  if (isPng(bytes)) {
    try {
      const p = decodePng(bytes, readTiffOrientation);
      const base = { format: 'png' as const, width: p.width, height: p.height, bitDepth: p.bitDepth, name };
      const extra = p.exifOrientation !== undefined ? { exifOrientation: p.exifOrientation } : {};
      switch (p.colorType) {
        case 0:
          if (p.bitDepth === 16) return { ...base, ...extra, mode: 'I', channels: 1, data: p.data, data16: p.data16! };
          return { ...base, ...extra, mode: p.bitDepth === 1 ? '1' : 'L', channels: 1, data: p.data };
        case 2:
          return { ...base, ...extra, mode: 'RGB', channels: 3, data: p.data };
        case 3:
          return { ...base, ...extra, mode: 'P', channels: 1, data: p.data, palette: p.palette! };
        case 4: {
          if (p.bitDepth === 8) return { ...base, ...extra, mode: 'LA', channels: 2, data: p.data };
          // Pillow opens 16-bit gray+alpha as RGBA through its "LA;16B" unpacker.
          const n = p.width * p.height;
          const rgba = new Uint8Array(n * 4);
          for (let i = 0; i < n; i++) {
            const l = p.data[2 * i];
            rgba[4 * i] = l;
            rgba[4 * i + 1] = l;
            rgba[4 * i + 2] = l;
            rgba[4 * i + 3] = p.data[2 * i + 1];
          }
          return { ...base, ...extra, mode: 'RGBA', channels: 4, data: rgba };
        }
        case 6:
          return { ...base, ...extra, mode: 'RGBA', channels: 4, data: p.data };
      }
    } catch (e) {
      if (e instanceof PngError) throw explain(name, 'PNG', e);
      throw e;
    }
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    try {
      const j = decodeJpeg(bytes);
      const base = { format: 'jpeg' as const, width: j.width, height: j.height, bitDepth: 8, name };
      const extra = {
        ...(j.exifOrientation !== undefined ? { exifOrientation: j.exifOrientation } : {}),
        ...(j.warnings ? { warnings: j.warnings } : {}),
      };
      if (j.components === 1) return { ...base, ...extra, mode: 'L', channels: 1, data: j.data };
      if (j.components === 3) return { ...base, ...extra, mode: 'RGB', channels: 3, data: j.data };
      // Pillow always reads 4-component JPEGs with the Adobe polarity ("CMYK;I"), i.e. inverted.
      const cmyk = new Uint8Array(j.data.length);
      for (let i = 0; i < cmyk.length; i++) cmyk[i] = 255 - j.data[i];
      return { ...base, ...extra, mode: 'CMYK', channels: 4, data: cmyk };
    } catch (e) {
      if (e instanceof JpegError) throw explain(name, 'JPEG', e);
      throw e;
    }
  }
  const what = sniff(bytes);
  if (what) throw badImage(name, `this is ${what}, which is not supported`);
  throw badImage(name, `not a PNG or JPEG file (unrecognised first bytes ${hex(bytes.subarray(0, 8))})`);
}

function explain(name: string, format: string, e: JpegError | PngError): SketchError {
  switch (e.kind) {
    case 'truncated':
      return badImage(name, `the ${format} file is cut short (${e.message})`,
        'The file is incomplete; download or copy it again, or re-export it.', e);
    case 'corrupt':
      return badImage(name, `corrupt ${format} file (${e.message})`, 'The file is damaged; re-export it as PNG or JPEG.', e);
    case 'too-large':
      return badImage(name, e.message, 'Downscale it first (the model sees 224 px), e.g. `convert in.png -resize 4096x4096 out.png` (ImageMagick).', e);
    default:
      return badImage(name, `unsupported kind of ${format} (${e.message})`, SUPPORTED_HINT, e);
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
