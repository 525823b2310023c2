/**
 * A PNG decoder that keeps what both reference readers need (zse-sbir.md §5): the samples as Pillow's
 * `Image.open` holds them (mode and rawmode from PngImagePlugin._MODES), and enough of the file (palette as
 * written, 16-bit samples, EXIF orientation) for the sketch path to rebuild what `cv2.imread` returns.
 *
 * Every colour type, bit depth 1..16, palette and Adam7 interlace. Inflate is fflate (pure JS), so this runs in
 * the browser too; pngjs needs Node's zlib and would not.
 *
 * Damaged files: Pillow and libpng refuse different things (Pillow checks CRCs of the chunks before the image
 * data and tolerates a missing IEND; libpng checks the IDAT CRCs and needs IEND). This decoder refuses what either
 * refuses, so every file it accepts reads the same through both reference paths.
 */
import { inflateSync } from 'fflate';
import { DecodeError } from './decode-error.ts';
import { imageTooLarge } from './image-limits.ts';

/** Thrown for anything the decoder cannot or will not decode; image.ts turns it into a SketchError. */
export class PngError extends DecodeError {}

export interface PngImage {
  width: number;
  height: number;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  /** PNG colour type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA. */
  colorType: 0 | 2 | 3 | 4 | 6;
  /**
   * Samples per pixel, each reduced to 8 bits the way both readers agree on: 1/2/4-bit gray scaled to 0..255
   * (Pillow's L;1/L;2/L;4 unpackers and libpng's png_set_expand_gray_1_2_4_to_8 both replicate bits), 16-bit
   * samples cut to their high byte (Pillow's ;16B rawmodes and libpng's png_set_strip_16 both chop), palette
   * images as indices.
   */
  data: Uint8Array;
  channels: 1 | 2 | 3 | 4;
  /** Full 16-bit samples when bitDepth is 16. */
  data16?: Uint16Array;
  /** PLTE as written: RGB triplets. */
  palette?: Uint8Array;
  /** Orientation from an eXIf chunk (OpenCV's imread applies it). */
  exifOrientation?: number;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(buf: Uint8Array, start: number, end: number): number {
  let c = -1;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const u32 = (b: Uint8Array, p: number): number => ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;

const CHANNELS: Record<number, 1 | 2 | 3 | 4> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const VALID_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/**
 * Largest image accepted: Pillow's decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS, above which
 * Image.open raises), so a bogus header cannot make us allocate gigabytes.
 */
export const MAX_PIXELS = 2 * 89478485;

export function isPng(buf: Uint8Array): boolean {
  return buf.length >= 8 && SIGNATURE.every((v, i) => buf[i] === v);
}

export function decodePng(buf: Uint8Array, readExif: (tiff: Uint8Array) => number | undefined): PngImage {
  if (!isPng(buf)) throw new PngError('corrupt', 'missing PNG signature');
  let pos = 8;
  let ihdr: { width: number; height: number; depth: number; ct: number; interlace: number } | null = null;
  let palette: Uint8Array | undefined;
  let exifOrientation: number | undefined;
  const idat: Uint8Array[] = [];
  let idatDone = false;
  let sawIEND = false;
  while (pos < buf.length) {
    if (pos + 8 > buf.length) throw new PngError('truncated', 'PNG file ends inside a chunk header');
    const len = u32(buf, pos);
    const type = String.fromCharCode(buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]);
    if (len > 0x7fffffff) throw new PngError('corrupt', `PNG chunk ${JSON.stringify(type)} has a bad length`);
    const start = pos + 8;
    const end = start + len;
    if (end + 4 > buf.length) throw new PngError('truncated', `PNG file ends inside its ${type} chunk`);
    if (crc32(buf, pos + 4, end) !== u32(buf, end)) {
      throw new PngError('corrupt', `PNG ${JSON.stringify(type)} chunk fails its CRC check`);
    }
    pos = end + 4;
    if (!ihdr && type !== 'IHDR') throw new PngError('corrupt', 'PNG does not start with an IHDR chunk');
    switch (type) {
      case 'IHDR': {
        if (ihdr) throw new PngError('corrupt', 'PNG has two IHDR chunks');
        if (len < 13) throw new PngError('corrupt', 'short PNG IHDR chunk');
        const width = u32(buf, start);
        const height = u32(buf, start + 4);
        const depth = buf[start + 8];
        const ct = buf[start + 9];
        if (width === 0 || height === 0) throw new PngError('corrupt', `PNG of size ${width}x${height}`);
        if (!(ct in CHANNELS) || !VALID_DEPTHS[ct].includes(depth)) {
          throw new PngError('corrupt', `PNG with colour type ${ct} and bit depth ${depth}`);
        }
        if (buf[start + 10] !== 0 || buf[start + 11] !== 0) throw new PngError('unsupported', 'unknown PNG compression or filter method');
        if (buf[start + 12] > 1) throw new PngError('unsupported', 'unknown PNG interlace method');
        if (width * height > MAX_PIXELS) throw new PngError('too-large', `PNG of ${width}x${height} pixels is too large (limit ${MAX_PIXELS} pixels)`);
        const tooLarge = ct in CHANNELS ? imageTooLarge(width, height, CHANNELS[ct]!, depth) : null;
        if (tooLarge) throw new PngError('too-large', `PNG: ${tooLarge}`);
        ihdr = { width, height, depth, ct, interlace: buf[start + 12] };
        break;
      }
      case 'PLTE':
        if (len % 3 !== 0 || len === 0 || len > 768) throw new PngError('corrupt', 'bad PNG palette');
        palette = buf.slice(start, end);
        break;
      case 'IDAT':
        if (idatDone) throw new PngError('corrupt', 'PNG image data chunks are not consecutive');
        idat.push(buf.subarray(start, end));
        break;
      case 'eXIf':
        // OpenCV honours eXIf before or after the image data; libpng keeps the first one.
        if (exifOrientation === undefined) exifOrientation = readExif(buf.subarray(start, end));
        break;
      case 'IEND':
        sawIEND = true;
        break;
      default:
        if (!(buf[start - 4] & 0x20)) throw new PngError('unsupported', `PNG has an unknown critical chunk ${type}`);
    }
    if (idat.length > 0 && type !== 'IDAT') idatDone = true;
    if (sawIEND) break;
  }
  if (!ihdr) throw new PngError('truncated', 'PNG has no IHDR chunk');
  if (idat.length === 0) throw new PngError('truncated', 'PNG has no image data (IDAT)');
  // Pillow would still open a file cut after its image data, but cv2.imread (libpng's png_read_end) refuses it;
  // so do we, rather than accept a file that only one of the two reference readers takes.
  if (!sawIEND) throw new PngError('truncated', 'PNG file ends before its IEND chunk');
  const { width, height, depth, ct, interlace } = ihdr;
  if (ct === 3 && !palette) throw new PngError('corrupt', 'palette PNG without a PLTE chunk');
  const channels = CHANNELS[ct];
  const bitsPerPixel = channels * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);

  const passes = interlace
    ? [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]
    : [[0, 0, 1, 1]];
  let expected = 0;
  const passDims = passes.map(([x0, y0, dx, dy]) => {
    const pw = width > x0 ? Math.ceil((width - x0) / dx) : 0;
    const ph = height > y0 ? Math.ceil((height - y0) / dy) : 0;
    const rowBytes = Math.ceil((pw * bitsPerPixel) / 8);
    if (pw && ph) expected += ph * (rowBytes + 1);
    return { pw, ph, rowBytes };
  });

  let total = 0;
  for (const c of idat) total += c.length;
  const z = new Uint8Array(total);
  total = 0;
  for (const c of idat) {
    z.set(c, total);
    total += c.length;
  }
  if (z.length < 2 || (z[0] & 0x0f) !== 8 || ((z[0] << 8) | z[1]) % 31 !== 0 || z[1] & 0x20) {
    throw new PngError('corrupt', 'PNG image data is not a valid zlib stream');
  }
  let raw: Uint8Array;
  try {
    raw = inflateSync(z.subarray(2), { out: new Uint8Array(expected) });
  } catch {
    throw new PngError('truncated', 'PNG image data is cut short or corrupt (inflate failed)');
  }
  if (raw.length < expected) throw new PngError('truncated', 'PNG image data is cut short');

  // Unfilter every pass and scatter it into one full-size buffer of samples.
  const grayScale = ct === 3 ? 1 : 255 / ((1 << depth) - 1);
  const samples8 = new Uint8Array(width * height * channels);
  const samples16 = depth === 16 ? new Uint16Array(width * height * channels) : undefined;
  let off = 0;
  for (let p = 0; p < passes.length; p++) {
    const { pw, ph, rowBytes } = passDims[p];
    if (!pw || !ph) continue;
    const [x0, y0, dx, dy] = passes[p];
    let prev: Uint8Array | null = null;
    for (let r = 0; r < ph; r++) {
      const filter = raw[off];
      const line = raw.subarray(off + 1, off + 1 + rowBytes);
      off += rowBytes + 1;
      unfilter(filter, line, prev, bpp);
      prev = line;
      const y = y0 + r * dy;
      // Scatter the row's pixels to their place in the full image.
      for (let i = 0; i < pw; i++) {
        const x = x0 + i * dx;
        const o = (y * width + x) * channels;
        for (let c = 0; c < channels; c++) {
          const s = i * channels + c;
          if (depth === 8) samples8[o + c] = line[s];
          else if (depth === 16) {
            const v = (line[2 * s] << 8) | line[2 * s + 1];
            samples16![o + c] = v;
            samples8[o + c] = v >> 8;
          } else {
            const bit = s * depth;
            const v = (line[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
            // Palette indices stay indices; gray is scaled by bit replication (0..3 -> 0,85,170,255).
            samples8[o + c] = v * grayScale;
          }
        }
      }
    }
  }

  const out: PngImage = { width, height, bitDepth: depth as PngImage['bitDepth'], colorType: ct as PngImage['colorType'], data: samples8, channels };
  if (samples16) out.data16 = samples16;
  if (palette) out.palette = palette;
  if (exifOrientation !== undefined) out.exifOrientation = exifOrientation;
  return out;
}

function unfilter(filter: number, line: Uint8Array, prev: Uint8Array | null, bpp: number): void {
  const n = line.length;
  switch (filter) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) line[i] = (line[i] + line[i - bpp]) & 0xff;
      return;
    case 2:
      if (prev) for (let i = 0; i < n; i++) line[i] = (line[i] + prev[i]) & 0xff;
      return;
    case 3:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? line[i - bpp] : 0;
        const b = prev ? prev[i] : 0;
        line[i] = (line[i] + ((a + b) >> 1)) & 0xff;
      }
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? line[i - bpp] : 0;
        const b = prev ? prev[i] : 0;
        const c = i >= bpp && prev ? prev[i - bpp] : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        line[i] = (line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
      return;
    default:
      throw new PngError('corrupt', `PNG row uses unknown filter type ${filter}`);
  }
}
