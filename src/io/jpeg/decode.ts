/**
 * A JPEG decoder whose pixels are byte-identical to libjpeg-turbo 2.1 (Debian's libjpeg62-turbo) with its default
 * decompression settings, which is what both Pillow (`Image.open`, photos, zse-sbir.md §5.1) and OpenCV
 * (`cv2.imread`, sketches, §5.2) call. Reproducing the reference preprocessing bit for bit starts here: a decoder
 * that differs by ±1 in a few pixels already changes the bicubic resize and the ink threshold.
 *
 * What "default settings" means, and what is ported:
 * - dct_method JDCT_ISLOW: the accurate integer IDCT, in the 16-bit-lane form of libjpeg-turbo's x86 SIMD code
 *   (identical to jidctint.c on valid data; see idctComponent for where damaged data differs).
 * - do_fancy_upsampling TRUE: triangular ("fancy") chroma upsampling of jdsample.c (h2v1, h1v2, h2v2) with its
 *   alternating rounding biases, replicated context rows at the top and bottom edge, and replication
 *   (int_upsample) for other ratios. Because fancy upsampling is on, libjpeg-turbo never uses the merged
 *   upsampler of jdmerge.c (use_merged_upsample() returns FALSE), so colour conversion is the separate jdcolor.c.
 * - jdcolor.c's YCbCr->RGB with its 16-bit fixed-point tables (the SIMD versions are bit-exact with them), and
 *   YCCK->CMYK for Adobe 4-channel files.
 * - The colour space guess of jdapimin.c default_decompress_parms (JFIF, Adobe transform, component ids).
 * - Huffman decoding of baseline, extended-sequential and progressive files (jdhuff.c / jdphuff.c), restart
 *   markers, multi-scan sequential files, 8- and 16-bit quantisation tables latched at a component's first scan,
 *   and the standard tables libjpeg-turbo supplies when a file defines none (Motion-JPEG style).
 * - libjpeg's handling of damaged data, since Pillow and cv2 accept such files with warnings: bad Huffman codes
 *   read as 0, a marker inside scan data ends the segment (its remaining MCUs stay zero), restart resync, junk
 *   between markers; and the errors they raise (unknown markers, malformed tables, a second scan after a
 *   single-scan image, which Pillow reaches through jpeg_finish_decompress). Warnings are returned.
 *
 * Not supported (the caller turns these into a BAD_IMAGE error): arithmetic coding, lossless and hierarchical
 * JPEG, 12-bit samples, 2-component files (Pillow refuses those too), and progressive files whose scans leave
 * low-frequency coefficients unrefined (libjpeg would then apply its block smoothing; complete files from any
 * common encoder never do).
 *
 * Pure TypeScript with no Node APIs, so it runs in the browser as well.
 *
 * This file reads the markers (SOF, DHT, DQT, SOS, DRI, APPn) and drives the parts: huffman.ts (tables and the bit
 * reader), scan.ts (entropy-coded data), idct.ts, colour.ts (upsampling and colour conversion), exif.ts
 * (orientation); types.ts holds what they share.
 */
import { colorConvert, upsample } from './colour.ts';
import { readExifOrientation } from './exif.ts';
import { type RawHuffTable, STD_TABLES, stdTable } from './huffman.ts';
import { idctComponent } from './idct.ts';
import { blockSmoothingWouldApply, decodeScan } from './scan.ts';
import { type Component, JpegError, type JpegImage, NATURAL_ORDER } from './types.ts';
import { imageTooLarge } from '../image-limits.ts';

/** Pillow's decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS): refuse before allocating for a bogus header. */
const MAX_PIXELS = 2 * 89478485;

const u16 = (b: Uint8Array, p: number): number => (b[p] << 8) | b[p + 1];

interface Frame {
  width: number;
  height: number;
  progressive: boolean;
  comps: Component[];
  maxH: number;
  maxV: number;
  mcusPerLine: number;
  mcusPerColumn: number;
}

export function decodeJpeg(buf: Uint8Array): JpegImage {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) throw new JpegError('corrupt', 'missing JPEG SOI marker');
  let pos = 2;
  const qtables: (Int32Array | null)[] = [null, null, null, null];
  const dcTables: (RawHuffTable | null)[] = [null, null, null, null];
  const acTables: (RawHuffTable | null)[] = [null, null, null, null];
  // Assigned inside readSegment; the cast keeps TS from narrowing it to null here.
  let frame = null as Frame | null;
  let restartInterval = 0;
  let sawJFIF = false;
  let adobeTransform: number | undefined;
  let exifOrientation: number | undefined;
  let sawApp1 = false;
  let scans = 0;
  const warnings: string[] = [];
  let done = false;

  /** Find the next marker the way jdmarker.c next_marker does: skip garbage and FF fill bytes. */
  const nextMarker = (): number => {
    for (;;) {
      const start = pos;
      while (pos < buf.length && buf[pos] !== 0xff) pos++;
      if (pos > start) warnings.push(`${pos - start} extraneous bytes before a marker`);
      if (pos >= buf.length) throw new JpegError('truncated', 'JPEG file ends before its EOI marker');
      while (pos < buf.length && buf[pos] === 0xff) pos++;
      if (pos >= buf.length) throw new JpegError('truncated', 'JPEG file ends before its EOI marker');
      const m = buf[pos++];
      if (m !== 0) return m;
    }
  };

  const segment = (lenient = false): { start: number; end: number } => {
    if (pos + 2 > buf.length) throw new JpegError('truncated', 'JPEG file ends inside a marker segment');
    let len = u16(buf, pos);
    // jdmarker.c skip_variable skips nothing for a length below 2; tables and frame headers are refused.
    if (len < 2 && lenient) len = 2;
    if (len < 2) throw new JpegError('corrupt', 'JPEG marker segment with a bad length');
    const start = pos + 2;
    const end = pos + len;
    if (end > buf.length) throw new JpegError('truncated', 'JPEG file ends inside a marker segment');
    pos = end;
    return { start, end };
  };

  // After a single-scan image is complete, libjpeg has output every pixel, but Pillow still calls
  // jpeg_finish_decompress, which reads markers up to EOI: a second scan or a malformed table there is an error,
  // running out of data is not.
  let imageComplete = false;
  while (!done) {
    try {
      done = readSegment();
    } catch (e) {
      if (imageComplete && e instanceof JpegError && e.kind === 'truncated') break;
      throw e;
    }
  }

  function readSegment(): boolean {
    const marker = nextMarker();
    if (scans === 0 && marker < 0xc0) {
      // Pillow walks the header itself before libjpeg runs, and knows no marker below 0xFFC0 ("no marker found").
      throw new JpegError('corrupt', `unexpected marker 0xff${marker.toString(16).padStart(2, '0')} in the JPEG header`);
    }
    switch (marker) {
      case 0xd8:
        throw new JpegError('corrupt', 'a second SOI marker inside the JPEG stream');
      case 0xd9: // EOI
        return true;
      case 0xc0: // SOF0 baseline
      case 0xc1: // SOF1 extended sequential, Huffman
      case 0xc2: { // SOF2 progressive, Huffman
        if (frame) throw new JpegError('corrupt', 'more than one SOF marker');
        const { start, end } = segment();
        if (end - start < 6) throw new JpegError('corrupt', 'short SOF segment');
        const precision = buf[start];
        const height = u16(buf, start + 1);
        const width = u16(buf, start + 3);
        const nc = buf[start + 5];
        if (precision !== 8) throw new JpegError('unsupported', `${precision}-bit JPEG samples (only 8-bit is supported)`);
        if (height === 0) throw new JpegError('unsupported', 'JPEG with height 0 (DNL marker) is not supported');
        if (width === 0) throw new JpegError('corrupt', 'JPEG with width 0');
        if (nc !== 1 && nc !== 3 && nc !== 4) throw new JpegError('unsupported', `JPEG with ${nc} colour components`);
        if (width > 65500 || height > 65500) {
          // jdinput.c initial_setup: JPEG_MAX_DIMENSION
          throw new JpegError('unsupported', `JPEG of ${width}x${height} pixels exceeds libjpeg's 65500-pixel limit`);
        }
        if (width * height > MAX_PIXELS) {
          throw new JpegError('too-large', `JPEG of ${width}x${height} pixels is too large (limit ${MAX_PIXELS} pixels)`);
        }
        const tooLarge = imageTooLarge(width, height, nc, 8);
        if (tooLarge) throw new JpegError('too-large', `JPEG: ${tooLarge}`);
        if (end - start !== 6 + 3 * nc) throw new JpegError('corrupt', 'bad SOF segment length');
        const comps: Component[] = [];
        for (let i = 0; i < nc; i++) {
          const p = start + 6 + 3 * i;
          const h = buf[p + 1] >> 4;
          const v = buf[p + 1] & 15;
          if (h < 1 || h > 4 || v < 1 || v > 4) throw new JpegError('corrupt', 'bad JPEG sampling factors');
          comps.push({
            id: buf[p], h, v, tq: buf[p + 2] & 3, quant: null,
            widthInBlocks: 0, heightInBlocks: 0, blocksPerLine: 0, blocksPerColumn: 0, coefs: new Int16Array(0),
            downsampledWidth: 0, downsampledHeight: 0, dcPred: 0, coefBits: new Int32Array(64).fill(-1),
          });
          if (buf[p + 2] > 3) throw new JpegError('corrupt', 'bad JPEG quantisation table index');
        }
        const maxH = Math.max(...comps.map((c) => c.h));
        const maxV = Math.max(...comps.map((c) => c.v));
        const mcusPerLine = Math.ceil(width / (8 * maxH));
        const mcusPerColumn = Math.ceil(height / (8 * maxV));
        for (const c of comps) {
          c.widthInBlocks = Math.ceil((width * c.h) / (maxH * 8));
          c.heightInBlocks = Math.ceil((height * c.v) / (maxV * 8));
          c.downsampledWidth = Math.ceil((width * c.h) / maxH);
          c.downsampledHeight = Math.ceil((height * c.v) / maxV);
          c.blocksPerLine = mcusPerLine * c.h;
          c.blocksPerColumn = mcusPerColumn * c.v;
          c.coefs = new Int16Array(c.blocksPerLine * c.blocksPerColumn * 64);
        }
        frame = { width, height, progressive: marker === 0xc2, comps, maxH, maxV, mcusPerLine, mcusPerColumn };
        break;
      }
      case 0xc3: case 0xc5: case 0xc6: case 0xc7:
        throw new JpegError('unsupported', 'lossless or hierarchical JPEG is not supported');
      case 0xc9: case 0xca: case 0xcb: case 0xcd: case 0xce: case 0xcf:
        throw new JpegError('unsupported', 'arithmetic-coded JPEG is not supported');
      case 0xc4: { // DHT, read the way jdmarker.c get_dht does: checks fire before a short file runs out
        if (pos + 2 > buf.length) throw new JpegError('truncated', 'JPEG file ends inside a marker segment');
        let length = u16(buf, pos) - 2;
        let p = pos + 2;
        const need = (n: number): void => {
          if (p + n > buf.length) throw new JpegError('truncated', 'JPEG file ends inside a DHT segment');
        };
        while (length > 16) {
          need(17);
          const index = buf[p];
          const counts = buf.slice(p + 1, p + 17);
          let count = 0;
          for (let i = 0; i < 16; i++) count += counts[i];
          length -= 17;
          if (count > 256 || count > length) throw new JpegError('corrupt', 'bad Huffman table definition');
          need(17 + count);
          const symbols = buf.slice(p + 17, p + 17 + count);
          length -= count;
          p += 17 + count;
          const th = index & 0x0f;
          if ((index & ~0x10) > 3) throw new JpegError('corrupt', `bad Huffman table index 0x${index.toString(16)}`);
          // Validated and built when a scan uses it (jdhuff.c jpeg_make_d_derived_tbl), as libjpeg does.
          (index & 0x10 ? acTables : dcTables)[th] = { counts, symbols };
        }
        if (length !== 0) throw new JpegError('corrupt', 'bad DHT segment length');
        pos = p;
        break;
      }
      case 0xdb: { // DQT
        const { start, end } = segment();
        let p = start;
        while (p < end) {
          const pq = buf[p] >> 4;
          const tq = buf[p] & 15;
          if (tq > 3 || pq > 1) throw new JpegError('corrupt', 'bad DQT segment');
          const n = pq ? 128 : 64;
          if (p + 1 + n > end) throw new JpegError('corrupt', 'short DQT segment');
          const q = new Int32Array(64);
          for (let i = 0; i < 64; i++) q[NATURAL_ORDER[i]] = pq ? u16(buf, p + 1 + 2 * i) : buf[p + 1 + i];
          qtables[tq] = q;
          p += 1 + n;
        }
        break;
      }
      case 0xdd: { // DRI
        const { start, end } = segment();
        if (end - start !== 2) throw new JpegError('corrupt', 'bad DRI segment length');
        restartInterval = u16(buf, start);
        break;
      }
      case 0xdc: // DNL: libjpeg skips it (a height of 0 in SOF is refused there)
      case 0xcc: // DAC: arithmetic-coding conditioning, irrelevant to Huffman files
        segment(true);
        break;
      case 0x01: // TEM
      case 0xd0: case 0xd1: case 0xd2: case 0xd3: case 0xd4: case 0xd5: case 0xd6: case 0xd7:
        break; // stray RSTn: libjpeg ignores it between segments
      case 0xda: { // SOS
        if (!frame) throw new JpegError('corrupt', 'SOS before SOF');
        if (imageComplete) throw new JpegError('corrupt', 'a second scan after a complete single-scan image (EOI expected)');
        const { start, end } = segment();
        const ns = buf[start];
        if (ns < 1 || ns > 4 || end - start !== 4 + 2 * ns) throw new JpegError('corrupt', 'bad SOS segment');
        const scomps: { c: Component; td: number; ta: number }[] = [];
        for (let i = 0; i < ns; i++) {
          const id = buf[start + 1 + 2 * i];
          const c = frame.comps.find((x) => x.id === id && !scomps.some((s) => s.c === x));
          if (!c) throw new JpegError('corrupt', 'SOS names an unknown component');
          scomps.push({ c, td: buf[start + 2 + 2 * i] >> 4, ta: buf[start + 2 + 2 * i] & 15 });
        }
        const q = start + 1 + 2 * ns;
        const ss = buf[q];
        const se = buf[q + 1];
        const ah = buf[q + 2] >> 4;
        const al = buf[q + 2] & 15;
        if (scans === 0) {
          for (let i = 0; i < 2; i++) {
            dcTables[i] ??= stdTable(STD_TABLES.dc[i]);
            acTables[i] ??= stdTable(STD_TABLES.ac[i]);
          }
        }
        for (const { c } of scomps) {
          if (!c.quant) {
            const t = qtables[c.tq];
            if (!t) throw new JpegError('corrupt', 'a component uses an undefined quantisation table');
            c.quant = t.slice();
          }
        }
        pos = decodeScan(buf, pos, frame, scomps, ss, se, ah, al, restartInterval, dcTables, acTables, warnings);
        scans++;
        // A single interleaved sequential scan completes the image (jdinput.c: has_multiple_scans is false).
        if (!frame.progressive && ns === frame.comps.length && scans === 1) imageComplete = true;
        break;
      }
      case 0xc8:
        throw new JpegError('unsupported', 'JPEG extension (JPG marker) is not supported');
      default: {
        if (!((marker >= 0xe0 && marker <= 0xef) || marker === 0xfe)) {
          // RESn, JPGn, DHP, EXP: jdmarker.c read_markers stops with "Unsupported marker type".
          throw new JpegError('corrupt', `unknown JPEG marker 0xff${marker.toString(16)}`);
        }
        const { start, end } = segment(true);
        // Only markers before the first SOS count: jpeg_read_header stops there and fixes the colour space
        // (default_decompress_parms); OpenCV reads the APP1 saved up to that point.
        if (scans > 0) return false;
        if (marker === 0xe0 && end - start >= 14 && buf[start] === 0x4a && buf[start + 1] === 0x46 &&
          buf[start + 2] === 0x49 && buf[start + 3] === 0x46 && buf[start + 4] === 0) {
          sawJFIF = true;
        } else if (marker === 0xee && end - start >= 12 && buf[start] === 0x41 && buf[start + 1] === 0x64 &&
          buf[start + 2] === 0x6f && buf[start + 3] === 0x62 && buf[start + 4] === 0x65) {
          adobeTransform = buf[start + 11];
        } else if (marker === 0xe1 && !sawApp1) {
          // OpenCV's JpegDecoder parses only the first APP1 segment (an XMP one first hides a later Exif).
          sawApp1 = true;
          exifOrientation = readExifOrientation(buf.subarray(start, end));
        }
      }
    }
    return false;
  }
  if (!frame) throw new JpegError('corrupt', 'JPEG stream has no SOF marker');
  if (scans === 0) throw new JpegError('corrupt', 'JPEG stream has no image data (no SOS marker)');
  const f = frame;

  if (f.progressive && blockSmoothingWouldApply(f.comps)) {
    throw new JpegError('unsupported', 'progressive JPEG whose scans never fully refine the low frequencies');
  }

  let jpegColorSpace: JpegImage['jpegColorSpace'];
  const nc = f.comps.length;
  if (nc === 1) {
    jpegColorSpace = 'gray';
  } else if (nc === 3) {
    if (sawJFIF) jpegColorSpace = 'ycbcr';
    else if (adobeTransform !== undefined) jpegColorSpace = adobeTransform === 0 ? 'rgb' : 'ycbcr';
    else {
      const [a, b, c] = f.comps.map((x) => x.id);
      jpegColorSpace = a === 82 && b === 71 && c === 66 ? 'rgb' : 'ycbcr';
    }
  } else {
    jpegColorSpace = adobeTransform !== undefined && adobeTransform !== 0 ? 'ycck' : 'cmyk';
  }

  const planes = f.comps.map((c) => upsample(idctComponent(c), c, f.width, f.height, f.maxH, f.maxV));
  const data = colorConvert(planes, f.width, f.height, jpegColorSpace);
  const out: JpegImage = {
    width: f.width,
    height: f.height,
    components: nc as 1 | 3 | 4,
    data,
    jpegColorSpace,
    progressive: f.progressive,
  };
  if (adobeTransform !== undefined) out.adobeTransform = adobeTransform;
  if (exifOrientation !== undefined) out.exifOrientation = exifOrientation;
  if (warnings.length) {
    const counts = new Map<string, number>();
    for (const w of warnings) counts.set(w, (counts.get(w) ?? 0) + 1);
    out.warnings = [...counts].map(([w, n]) => (n > 1 ? `${w} (${n} times)` : w));
  }
  return out;
}
