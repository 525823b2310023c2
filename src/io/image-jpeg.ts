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
 */
import { imageTooLarge } from './image-limits.ts';

/** Thrown for anything the decoder cannot or will not decode; image.ts turns it into a SketchError. */
export class JpegError extends Error {
  readonly kind: 'corrupt' | 'truncated' | 'unsupported' | 'too-large';
  constructor(kind: 'corrupt' | 'truncated' | 'unsupported' | 'too-large', message: string) {
    super(message);
    this.kind = kind;
  }
}

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

/** Pillow's decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS): refuse before allocating for a bogus header. */
const MAX_PIXELS = 2 * 89478485;

/** jpeg_natural_order with libjpeg's 16 extra entries, so a corrupt run length cannot index past the block. */
const NATURAL_ORDER = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
  54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

/** A DHT table as defined: code counts per length 1..16 and the symbols; `built` caches the derived table. */
interface RawHuffTable {
  counts: Uint8Array;
  symbols: Uint8Array;
  built?: HuffTable;
}

/**
 * The Annex K tables that libjpeg-turbo installs in DC/AC slots 0 and 1 when a file leaves them undefined
 * (jstdhuff.c std_huff_tables, for Motion-JPEG frames), as hex: code counts for lengths 1..16, then symbols.
 */
const STD_TABLES = {
  dc: [
    ['00010501010101010100000000000000', '000102030405060708090a0b'],
    ['00030101010101010101010000000000', '000102030405060708090a0b'],
  ],
  ac: [
    ['0002010303020403050504040000017d',
      '01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435' +
      '363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a929394959697' +
      '98999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2' +
      'f3f4f5f6f7f8f9fa'],
    ['00020102040403040705040400010277',
      '000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f11718191a26272829' +
      '2a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a82838485868788898a929394' +
      '95969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9ea' +
      'f2f3f4f5f6f7f8f9fa'],
  ],
};
const fromHex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g)!, (b) => parseInt(b, 16));
const stdTable = (t: string[]): RawHuffTable => ({ counts: fromHex(t[0]), symbols: fromHex(t[1]) });

interface HuffTable {
  /** maxcode[l] = largest code of length l (or -1), l = 1..16; maxcode[17] sentinel. */
  maxcode: Int32Array;
  /** valoffset[l] = index into vals of the first symbol of length l, minus the smallest code of length l. */
  valoffset: Int32Array;
  vals: Uint8Array;
  /** 9-bit lookahead: (length << 8) | symbol, or 0 when the code is longer than 9 bits. */
  look: Uint16Array;
}

const LOOKAHEAD = 9;

function buildHuffTable(counts: Uint8Array, symbols: Uint8Array, isDC: boolean): HuffTable {
  // jdhuff.c jpeg_make_d_derived_tbl, including its validity checks.
  const huffsize: number[] = [];
  for (let l = 1; l <= 16; l++) for (let i = 0; i < counts[l - 1]; i++) huffsize.push(l);
  const numsymbols = huffsize.length;
  if (numsymbols > 256) throw new JpegError('corrupt', 'Huffman table has more than 256 symbols');
  const huffcode = new Int32Array(numsymbols);
  let code = 0;
  let si = huffsize[0] ?? 1;
  let p = 0;
  while (p < numsymbols) {
    while (huffsize[p] === si) huffcode[p++] = code++;
    // code is now 1 more than the last code used for length si; it must still fit in si bits.
    if (code >= 1 << si) throw new JpegError('corrupt', 'Huffman table codes overflow');
    code <<= 1;
    si++;
  }
  const maxcode = new Int32Array(18).fill(-1);
  const valoffset = new Int32Array(18);
  p = 0;
  for (let l = 1; l <= 16; l++) {
    if (counts[l - 1]) {
      valoffset[l] = p - huffcode[p];
      p += counts[l - 1];
      maxcode[l] = huffcode[p - 1];
    } else {
      maxcode[l] = -1;
    }
  }
  maxcode[17] = 0x7fffffff;
  const look = new Uint16Array(1 << LOOKAHEAD);
  p = 0;
  for (let l = 1; l <= LOOKAHEAD; l++) {
    for (let i = 0; i < counts[l - 1]; i++, p++) {
      const lookbits = huffcode[p] << (LOOKAHEAD - l);
      for (let ctr = 1 << (LOOKAHEAD - l); ctr > 0; ctr--) look[lookbits + ctr - 1] = (l << 8) | symbols[p];
    }
  }
  if (isDC) {
    for (let i = 0; i < numsymbols; i++) {
      if (symbols[i] > 15) throw new JpegError('corrupt', 'DC Huffman table has a symbol above 15');
    }
  }
  return { maxcode, valoffset, vals: symbols, look };
}

interface Component {
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

/**
 * Bit reader with libjpeg's semantics (jdhuff.c jpeg_fill_bit_buffer): FF00 stuffing; a marker stops the data and
 * zero bits are fed instead. Consuming any of those zero bits sets `insufficient` (libjpeg's insufficient_data),
 * after which the scan leaves the rest of the segment's MCUs untouched, as libjpeg does ("Corrupt JPEG data:
 * premature end of data segment").
 */
class BitReader {
  private buf: Uint8Array;
  pos: number;
  private acc = 0;
  private bits = 0;
  /** How many of the low `bits` are zero fill after a marker, not data. */
  private fake = 0;
  /** A marker met inside entropy-coded data and not yet consumed (0 = none). */
  marker = 0;
  /** Index just past that marker's code byte. */
  markerEnd = 0;
  insufficient = false;
  warnings: string[];

  constructor(buf: Uint8Array, pos: number, warnings: string[]) {
    this.buf = buf;
    this.pos = pos;
    this.warnings = warnings;
  }

  private fill(): void {
    // Keep up to 24 bits in acc; JS bit ops are 32-bit.
    while (this.bits <= 16) {
      let c = 0;
      if (this.marker === 0) {
        if (this.pos >= this.buf.length) throw new JpegError('truncated', 'JPEG data ends in the middle of a scan');
        c = this.buf[this.pos++];
        if (c === 0xff) {
          let c2: number;
          do {
            if (this.pos >= this.buf.length) throw new JpegError('truncated', 'JPEG data ends in the middle of a scan');
            c2 = this.buf[this.pos++];
          } while (c2 === 0xff);
          if (c2 === 0) {
            c = 0xff;
          } else {
            this.marker = c2;
            this.markerEnd = this.pos;
            c = 0;
            this.fake += 8;
          }
        }
      } else {
        this.fake += 8;
      }
      this.acc = ((this.acc << 8) | c) & 0xffffffff;
      this.bits += 8;
    }
  }

  private consume(n: number): void {
    this.bits -= n;
    if (this.bits < this.fake) {
      if (!this.insufficient) this.warnings.push('premature end of data segment (a marker inside the scan data)');
      this.insufficient = true;
      this.fake = this.bits;
    }
  }

  getBits(n: number): number {
    if (n === 0) return 0;
    if (this.bits < n) this.fill();
    this.consume(n);
    return (this.acc >>> this.bits) & ((1 << n) - 1);
  }

  getBit(): number {
    if (this.bits < 1) this.fill();
    this.consume(1);
    return (this.acc >>> this.bits) & 1;
  }

  decodeHuff(t: HuffTable): number {
    if (this.bits < 17) this.fill();
    const peek = (this.acc >>> (this.bits - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1);
    const e = t.look[peek];
    if (e !== 0) {
      this.consume(e >> 8);
      return e & 0xff;
    }
    // Slow path (jdhuff.c jpeg_huff_decode): extend the code one bit at a time.
    let l = LOOKAHEAD + 1;
    let code = (this.acc >>> (this.bits - l)) & ((1 << l) - 1);
    while (l <= 16 && code > t.maxcode[l]) {
      l++;
      code = (this.acc >>> (this.bits - l)) & ((1 << l) - 1);
    }
    if (l > 16) {
      // libjpeg warns, having read 17 bits, and fakes a zero symbol.
      this.consume(17);
      this.warnings.push('bad Huffman code');
      return 0;
    }
    this.consume(l);
    return t.vals[code + t.valoffset[l]];
  }

  /** Drop buffered bits, as libjpeg does at a restart and at the end of a scan. */
  reset(): void {
    this.acc = 0;
    this.bits = 0;
    this.fake = 0;
  }

  /**
   * jdmarker.c next_marker from the current position: skip anything up to an FF xx marker (xx not 0 or FF).
   */
  readMarker(): void {
    let p = this.pos;
    for (;;) {
      while (p < this.buf.length && this.buf[p] !== 0xff) p++;
      while (p < this.buf.length && this.buf[p] === 0xff) p++;
      if (p >= this.buf.length) throw new JpegError('truncated', 'JPEG data ends in the middle of a scan');
      const c = this.buf[p++];
      if (c !== 0) {
        this.marker = c;
        this.markerEnd = p;
        this.pos = p;
        return;
      }
    }
  }

  /** Swallow the pending marker. */
  consumeMarker(): void {
    this.pos = this.markerEnd;
    this.marker = 0;
  }
}

/** HUFF_EXTEND: the value of an s-bit magnitude category. */
function extend(r: number, s: number): number {
  return r < 1 << (s - 1) ? r - (1 << s) + 1 : r;
}

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

/**
 * jdcoefct.c smoothing_ok(): libjpeg smooths DC/AC estimates across blocks when a progressive file leaves any of
 * the first 9 AC coefficients unrefined. Complete files (every encoder's default script) never trigger it; this
 * port does not implement the smoothing, so such files are refused rather than decoded differently.
 */
function blockSmoothingWouldApply(comps: Component[]): boolean {
  let useful = false;
  for (const c of comps) {
    const q = c.quant;
    if (!q) return false;
    if ([0, 1, 8, 16, 9, 2, 3, 10, 17, 24].some((k) => q[k] === 0)) return false;
    if (c.coefBits[0] < 0) return false;
    for (let k = 1; k < 10; k++) if (c.coefBits[k] !== 0) useful = true;
  }
  return useful;
}

function decodeScan(
  buf: Uint8Array,
  pos: number,
  frame: { progressive: boolean; comps: Component[]; mcusPerLine: number; mcusPerColumn: number },
  scomps: { c: Component; td: number; ta: number }[],
  ss: number,
  se: number,
  ah: number,
  al: number,
  restartInterval: number,
  dcRaw: (RawHuffTable | null)[],
  acRaw: (RawHuffTable | null)[],
  warnings: string[],
): number {
  const progressive = frame.progressive;
  const isDC = ss === 0;
  if (scomps.length > 1 && scomps.reduce((n, s) => n + s.c.h * s.c.v, 0) > 10) {
    // jdinput.c per_scan_setup: D_MAX_BLOCKS_IN_MCU
    throw new JpegError('corrupt', 'JPEG scan with more than 10 blocks per MCU');
  }
  if (progressive) {
    // jdphuff.c start_pass_phuff_decoder validity checks.
    let bad = false;
    if (isDC) {
      if (se !== 0) bad = true;
    } else {
      if (ss > se || se > 63) bad = true;
      if (scomps.length !== 1) bad = true;
    }
    if (ah !== 0 && al !== ah - 1) bad = true;
    if (al > 13) bad = true;
    if (bad) throw new JpegError('corrupt', 'invalid progressive JPEG scan parameters');
    for (const { c } of scomps) {
      for (let k = ss; k <= se; k++) c.coefBits[k] = al;
    }
  } else if (ss !== 0 || se !== 63 || ah !== 0 || al !== 0) {
    // libjpeg only warns here for sequential files and decodes the full block anyway.
    se = 63;
  }
  // jdhuff.c / jdphuff.c start_pass: derive (and validate) the tables this scan uses.
  const dcTables: (HuffTable | null)[] = [null, null, null, null];
  const acTables: (HuffTable | null)[] = [null, null, null, null];
  const derive = (raw: RawHuffTable | null, isDCTable: boolean, kind: string): HuffTable => {
    if (!raw) throw new JpegError('corrupt', `scan uses an undefined ${kind} Huffman table`);
    return (raw.built ??= buildHuffTable(raw.counts, raw.symbols, isDCTable));
  };
  for (const s of scomps) {
    const needDC = !progressive || (isDC && ah === 0);
    const needAC = !progressive ? true : !isDC;
    if (needDC) dcTables[s.td] = derive(dcRaw[s.td], true, 'DC');
    if (needAC) acTables[s.ta] = derive(acRaw[s.ta], false, 'AC');
    s.c.dcPred = 0;
  }

  const br = new BitReader(buf, pos, warnings);
  let eobrun = 0;

  const decodeBlock = (s: { c: Component; td: number; ta: number }, off: number): void => {
    const coefs = s.c.coefs;
    if (!progressive) {
      // jdhuff.c decode_mcu
      const t = br.decodeHuff(dcTables[s.td]!);
      let diff = 0;
      if (t) diff = extend(br.getBits(t), t);
      s.c.dcPred += diff;
      coefs[off] = s.c.dcPred;
      const act = acTables[s.ta]!;
      for (let k = 1; k < 64; k++) {
        const rs = br.decodeHuff(act);
        const r = rs >> 4;
        const sz = rs & 15;
        if (sz) {
          k += r;
          coefs[off + NATURAL_ORDER[k]] = extend(br.getBits(sz), sz);
        } else {
          if (r !== 15) break;
          k += 15;
        }
      }
      return;
    }
    if (isDC) {
      if (ah === 0) {
        const t = br.decodeHuff(dcTables[s.td]!);
        let diff = 0;
        if (t) diff = extend(br.getBits(t), t);
        s.c.dcPred += diff;
        coefs[off] = s.c.dcPred * (1 << al);
      } else if (br.getBit()) {
        coefs[off] |= 1 << al;
      }
      return;
    }
    const act = acTables[s.ta]!;
    if (ah === 0) {
      // decode_mcu_AC_first
      if (eobrun > 0) {
        eobrun--;
        return;
      }
      for (let k = ss; k <= se; k++) {
        const rs = br.decodeHuff(act);
        const r = rs >> 4;
        const sz = rs & 15;
        if (sz) {
          k += r;
          coefs[off + NATURAL_ORDER[k]] = extend(br.getBits(sz), sz) * (1 << al);
        } else if (r === 15) {
          k += 15;
        } else {
          eobrun = 1 << r;
          if (r) eobrun += br.getBits(r);
          eobrun--;
          break;
        }
      }
      return;
    }
    // decode_mcu_AC_refine
    const p1 = 1 << al;
    const m1 = -1 << al;
    let k = ss;
    if (eobrun === 0) {
      for (; k <= se; k++) {
        const rs = br.decodeHuff(act);
        let r = rs >> 4;
        let sz = rs & 15;
        if (sz) {
          // libjpeg only warns when sz != 1 and treats it as a 1-bit value.
          sz = br.getBit() ? p1 : m1;
        } else if (r !== 15) {
          eobrun = 1 << r;
          if (r) eobrun += br.getBits(r);
          break;
        }
        do {
          const z = off + NATURAL_ORDER[k];
          if (coefs[z] !== 0) {
            if (br.getBit()) {
              if ((coefs[z] & p1) === 0) coefs[z] += coefs[z] >= 0 ? p1 : m1;
            }
          } else {
            if (--r < 0) break;
          }
          k++;
        } while (k <= se);
        if (sz) coefs[off + NATURAL_ORDER[k]] = sz;
      }
    }
    if (eobrun > 0) {
      for (; k <= se; k++) {
        const z = off + NATURAL_ORDER[k];
        if (coefs[z] !== 0) {
          if (br.getBit()) {
            if ((coefs[z] & p1) === 0) coefs[z] += coefs[z] >= 0 ? p1 : m1;
          }
        }
      }
      eobrun--;
    }
  };

  let nextRestartNum = 0;
  const restart = (): void => {
    // jdhuff.c process_restart + jdmarker.c read_restart_marker / jpeg_resync_to_restart.
    br.reset();
    if (br.marker === 0) br.readMarker();
    if (br.marker === 0xd0 + nextRestartNum) {
      br.consumeMarker();
    } else {
      br.warnings.push(`restart marker mismatch (found 0x${br.marker.toString(16)}, expected RST${nextRestartNum})`);
      for (;;) {
        const m = br.marker;
        const rst = (k: number): number => 0xd0 + (k & 7);
        let action: 1 | 2 | 3;
        if (m < 0xc0) action = 2;
        else if (m < 0xd0 || m > 0xd7) action = 3;
        else if (m === rst(nextRestartNum + 1) || m === rst(nextRestartNum + 2)) action = 3;
        else if (m === rst(nextRestartNum - 1) || m === rst(nextRestartNum - 2)) action = 2;
        else action = 1;
        if (action === 1) {
          br.consumeMarker();
          break;
        }
        if (action === 3) break;
        br.pos = br.markerEnd;
        br.readMarker();
      }
    }
    nextRestartNum = (nextRestartNum + 1) & 7;
    for (const s of scomps) s.c.dcPred = 0;
    eobrun = 0;
    if (br.marker === 0) br.insufficient = false;
  };

  let mcu = 0;
  if (scomps.length === 1) {
    // Non-interleaved scan: one block per MCU, over the component's real (unpadded) block grid.
    const s = scomps[0];
    const c = s.c;
    for (let by = 0; by < c.heightInBlocks; by++) {
      for (let bx = 0; bx < c.widthInBlocks; bx++) {
        if (restartInterval && mcu > 0 && mcu % restartInterval === 0) restart();
        if (!br.insufficient) decodeBlock(s, (by * c.blocksPerLine + bx) * 64);
        mcu++;
      }
    }
  } else {
    for (let my = 0; my < frame.mcusPerColumn; my++) {
      for (let mx = 0; mx < frame.mcusPerLine; mx++) {
        if (restartInterval && mcu > 0 && mcu % restartInterval === 0) restart();
        // After a premature marker libjpeg leaves the rest of the segment alone (zero / earlier-scan values).
        if (br.insufficient) {
          mcu++;
          continue;
        }
        for (const s of scomps) {
          const c = s.c;
          for (let v = 0; v < c.v; v++) {
            for (let h = 0; h < c.h; h++) {
              decodeBlock(s, ((my * c.v + v) * c.blocksPerLine + mx * c.h + h) * 64);
            }
          }
        }
        mcu++;
      }
    }
  }
  // The scan's entropy data must be followed by a marker; a file that just stops here is truncated (Pillow's
  // suspending source then reports "image file is truncated").
  if (br.marker !== 0) return br.markerEnd - 2;
  let p = br.pos;
  while (p + 1 < buf.length) {
    if (buf[p] === 0xff && buf[p + 1] !== 0 && buf[p + 1] !== 0xff) return p;
    p++;
  }
  throw new JpegError('truncated', 'JPEG data ends right after the last scan (no EOI marker)');
}

/*
 * The accurate integer IDCT (JDCT_ISLOW) as libjpeg-turbo's x86 SIMD code computes it (jidctint-sse2.asm /
 * jidctint-avx2.asm, chosen at run time on every x86-64 CPU). On valid data it is bit-identical to jidctint.c;
 * on damaged data (huge coefficients) it differs, because it works in 16-bit lanes: the dequantising multiply
 * keeps the low 16 bits, sums of two inputs wrap at 16 bits, pass 1 saturates its output to int16, and the final
 * range limit saturates (where the C code wraps through a masked table). This port follows the SIMD lanes so
 * that damaged files decode as Pillow and cv2 decode them too.
 * Constants are jidctint.c's FIX() values (CONST_BITS = 13) pre-combined as the asm's pmaddwd pairs.
 */
const F054 = 4433; // FIX(0.541196100)
const F130_A = 4433 + 6270; // F_0_541 + F_0_765
const F130_B = 4433 - 15137; // F_0_541 - F_1_847
const F117 = 9633;
const MF078 = 9633 - 16069; // F_1_175 - F_1_961
const F078 = 9633 - 3196; // F_1_175 - F_0_390
const MF060 = 2446 - 7373; // F_0_298 - F_0_899
const MF089 = -7373;
const F060 = 12299 - 7373; // F_1_501 - F_0_899
const MF050 = 16819 - 20995; // F_2_053 - F_2_562
const MF256 = -20995;
const F050 = 25172 - 20995; // F_3_072 - F_2_562

const wrap16 = (v: number): number => (v << 16) >> 16;
const sat16 = (v: number): number => (v < -32768 ? -32768 : v > 32767 ? 32767 : v);

/**
 * One 8-point pass over `src` at offsets base + k*step (k = 0..7), writing 32-bit sums before descaling into
 * out[0..7] in output order. All arithmetic stays inside int32 as pmaddwd/paddd do.
 */
function idct8(src: Int16Array | Int32Array, base: number, step: number, out: Int32Array): void {
  const in0 = src[base];
  const in1 = src[base + step];
  const in2 = src[base + 2 * step];
  const in3 = src[base + 3 * step];
  const in4 = src[base + 4 * step];
  const in5 = src[base + 5 * step];
  const in6 = src[base + 6 * step];
  const in7 = src[base + 7 * step];
  // Even part.
  const tmp3e = in2 * F130_A + in6 * F054;
  const tmp2e = in2 * F054 + in6 * F130_B;
  const tmp0e = wrap16(in0 + in4) * 8192;
  const tmp1e = wrap16(in0 - in4) * 8192;
  const tmp10 = (tmp0e + tmp3e) | 0;
  const tmp13 = (tmp0e - tmp3e) | 0;
  const tmp11 = (tmp1e + tmp2e) | 0;
  const tmp12 = (tmp1e - tmp2e) | 0;
  // Odd part: inputs in7, in5, in3, in1 are the C code's tmp0..tmp3.
  const z3 = wrap16(in7 + in3);
  const z4 = wrap16(in5 + in1);
  const z3r = z3 * MF078 + z4 * F117;
  const z4r = z3 * F117 + z4 * F078;
  const tmp0 = (in7 * MF060 + in1 * MF089 + z3r) | 0;
  const tmp3 = (in7 * MF089 + in1 * F060 + z4r) | 0;
  const tmp1 = (in5 * MF050 + in3 * MF256 + z4r) | 0;
  const tmp2 = (in5 * MF256 + in3 * F050 + z3r) | 0;
  out[0] = (tmp10 + tmp3) | 0;
  out[7] = (tmp10 - tmp3) | 0;
  out[1] = (tmp11 + tmp2) | 0;
  out[6] = (tmp11 - tmp2) | 0;
  out[2] = (tmp12 + tmp1) | 0;
  out[5] = (tmp12 - tmp1) | 0;
  out[3] = (tmp13 + tmp0) | 0;
  out[4] = (tmp13 - tmp0) | 0;
}

/** Dequantise and inverse-DCT every block of a component; returns a plane of widthInBlocks*8 columns. */
function idctComponent(c: Component): { plane: Uint8Array; stride: number } {
  const stride = c.widthInBlocks * 8;
  const plane = new Uint8Array(stride * c.heightInBlocks * 8);
  // The SIMD build keeps the multipliers as 16-bit shorts (MULTIPLIER) and multiplies with pmullw.
  const q = Int16Array.from(c.quant ?? new Int32Array(64));
  const deq = new Int16Array(64);
  const ws = new Int16Array(64);
  const t = new Int32Array(8);
  const coefs = c.coefs;
  for (let by = 0; by < c.heightInBlocks; by++) {
    for (let bx = 0; bx < c.widthInBlocks; bx++) {
      const off = (by * c.blocksPerLine + bx) * 64;
      let acZero = true;
      for (let k = 8; k < 64 && acZero; k++) if (coefs[off + k] !== 0) acZero = false;
      // Pass 1: columns, into a 16-bit workspace scaled by 2^PASS1_BITS.
      if (acZero) {
        // Every coefficient below row 0 is zero: the asm shifts the dequantised row 0 (psllw, wrapping).
        for (let col = 0; col < 8; col++) {
          const v = wrap16(wrap16(Math.imul(coefs[off + col], q[col])) * 4);
          for (let r = 0; r < 8; r++) ws[r * 8 + col] = v;
        }
      } else {
        for (let k = 0; k < 64; k++) deq[k] = Math.imul(coefs[off + k], q[k]); // Int16Array keeps the low 16 bits
        for (let col = 0; col < 8; col++) {
          idct8(deq, col, 8, t);
          for (let r = 0; r < 8; r++) ws[r * 8 + col] = sat16((t[r] + 1024) >> 11);
        }
      }
      // Pass 2: rows, descale by CONST_BITS + PASS1_BITS + 3, saturate to int16 then int8, recentre by 128.
      for (let row = 0; row < 8; row++) {
        idct8(ws, row * 8, 1, t);
        const o = (by * 8 + row) * stride + bx * 8;
        for (let k = 0; k < 8; k++) {
          const v = ((t[k] + 131072) | 0) >> 18;
          plane[o + k] = v < -128 ? 0 : v > 127 ? 255 : v + 128;
        }
      }
    }
  }
  return { plane, stride };
}

/**
 * jdsample.c with do_fancy_upsampling: bring one component to full resolution (width x height, tightly packed).
 * The context row above the first row and below the last real row (downsampledHeight - 1) is a copy of that row
 * (jdmainct.c make_funny_pointers / set_bottom_pointers); columns stop at downsampledWidth likewise.
 */
function upsample(
  src: { plane: Uint8Array; stride: number },
  c: Component,
  width: number,
  height: number,
  maxH: number,
  maxV: number,
): Uint8Array {
  const { plane, stride } = src;
  const dw = c.downsampledWidth;
  const dh = c.downsampledHeight;
  const out = new Uint8Array(width * height);
  const hExp = maxH / c.h;
  const vExp = maxV / c.v;
  if (!Number.isInteger(hExp) || !Number.isInteger(vExp)) {
    throw new JpegError('unsupported', 'JPEG with fractional sampling ratios');
  }
  const row = (y: number): number => Math.min(Math.max(y, 0), dh - 1) * stride;
  if (hExp === 1 && vExp === 1) {
    for (let y = 0; y < height; y++) out.set(plane.subarray(y * stride, y * stride + width), y * width);
    return out;
  }
  const line = new Uint8Array(2 * dw + 2);
  if (hExp === 2 && vExp === 1 && dw > 2) {
    // h2v1_fancy_upsample: 3/4 nearer + 1/4 further, biases +1 (left output) and +2 (right output).
    for (let y = 0; y < height; y++) {
      const r = y * stride;
      line[0] = plane[r];
      line[1] = (plane[r] * 3 + plane[r + 1] + 2) >> 2;
      for (let i = 1; i < dw - 1; i++) {
        const v = plane[r + i] * 3;
        line[2 * i] = (v + plane[r + i - 1] + 1) >> 2;
        line[2 * i + 1] = (v + plane[r + i + 1] + 2) >> 2;
      }
      const last = dw - 1;
      line[2 * last] = (plane[r + last] * 3 + plane[r + last - 1] + 1) >> 2;
      line[2 * last + 1] = plane[r + last];
      out.set(line.subarray(0, width), y * width);
    }
    return out;
  }
  if (hExp === 1 && vExp === 2) {
    // h1v2_fancy_upsample: vertical triangle filter, bias 1 for the upper output row, 2 for the lower.
    for (let y = 0; y < height; y++) {
      const i = y >> 1;
      const near = row(i);
      const far = (y & 1) === 0 ? row(i - 1) : row(i + 1);
      const bias = (y & 1) === 0 ? 1 : 2;
      for (let x = 0; x < width; x++) out[y * width + x] = (plane[near + x] * 3 + plane[far + x] + bias) >> 2;
    }
    return out;
  }
  if (hExp === 2 && vExp === 2 && dw > 2) {
    // h2v2_fancy_upsample: column sums of 3*nearer row + further row, then the horizontal triangle with
    // biases 8 and 7 over 16.
    const sums = new Int32Array(dw);
    for (let y = 0; y < height; y++) {
      const i = y >> 1;
      const near = row(i);
      const far = (y & 1) === 0 ? row(i - 1) : row(i + 1);
      for (let x = 0; x < dw; x++) sums[x] = plane[near + x] * 3 + plane[far + x];
      line[0] = (sums[0] * 4 + 8) >> 4;
      line[1] = (sums[0] * 3 + sums[1] + 7) >> 4;
      for (let x = 1; x < dw - 1; x++) {
        line[2 * x] = (sums[x] * 3 + sums[x - 1] + 8) >> 4;
        line[2 * x + 1] = (sums[x] * 3 + sums[x + 1] + 7) >> 4;
      }
      const last = dw - 1;
      line[2 * last] = (sums[last] * 3 + sums[last - 1] + 8) >> 4;
      line[2 * last + 1] = (sums[last] * 4 + 7) >> 4;
      out.set(line.subarray(0, width), y * width);
    }
    return out;
  }
  // h2v1_upsample / h2v2_upsample (narrow images) and int_upsample: plain replication.
  for (let y = 0; y < height; y++) {
    const r = Math.floor(y / vExp) * stride;
    for (let x = 0; x < width; x++) out[y * width + x] = plane[r + Math.floor(x / hExp)];
  }
  return out;
}

// jdcolor.c build_ycc_rgb_table (SCALEBITS 16).
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  // RIGHT_SHIFT(FIX(1.40200) * x + ONE_HALF, 16) with FIX(1.40200) = 91881, FIX(1.77200) = 116130.
  CR_R[i] = Math.floor((91881 * x + 32768) / 65536);
  CB_B[i] = Math.floor((116130 * x + 32768) / 65536);
  CR_G[i] = -46802 * x; // -FIX(0.71414) * x
  CB_G[i] = -22554 * x + 32768; // -FIX(0.34414) * x + ONE_HALF
}
const clamp8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

function colorConvert(planes: Uint8Array[], width: number, height: number, cs: JpegImage['jpegColorSpace']): Uint8Array {
  const n = width * height;
  if (cs === 'gray') return planes[0];
  const nc = planes.length;
  const out = new Uint8Array(n * nc);
  if (cs === 'rgb' || cs === 'cmyk') {
    for (let i = 0; i < n; i++) for (let k = 0; k < nc; k++) out[i * nc + k] = planes[k][i];
    return out;
  }
  const [Y, Cb, Cr] = planes;
  if (cs === 'ycbcr') {
    for (let i = 0; i < n; i++) {
      const y = Y[i];
      const cb = Cb[i];
      const cr = Cr[i];
      out[i * 3] = clamp8(y + CR_R[cr]);
      out[i * 3 + 1] = clamp8(y + ((CB_G[cb] + CR_G[cr]) >> 16));
      out[i * 3 + 2] = clamp8(y + CB_B[cb]);
    }
    return out;
  }
  // ycck_cmyk_convert: CMY = 255 - RGB of the YCbCr part; K passes through.
  const K = planes[3];
  for (let i = 0; i < n; i++) {
    const y = Y[i];
    const cb = Cb[i];
    const cr = Cr[i];
    out[i * 4] = clamp8(255 - (y + CR_R[cr]));
    out[i * 4 + 1] = clamp8(255 - (y + ((CB_G[cb] + CR_G[cr]) >> 16)));
    out[i * 4 + 2] = clamp8(255 - (y + CB_B[cb]));
    out[i * 4 + 3] = K[i];
  }
  return out;
}

/** The Orientation tag (0x0112) of IFD0 in an APP1 "Exif\0\0" payload, as OpenCV's ExifReader finds it. */
export function readExifOrientation(app1: Uint8Array): number | undefined {
  if (app1.length < 14) return undefined;
  if (app1[0] !== 0x45 || app1[1] !== 0x78 || app1[2] !== 0x69 || app1[3] !== 0x66 || app1[4] !== 0 || app1[5] !== 0) {
    return undefined;
  }
  return readTiffOrientation(app1.subarray(6));
}

/** Orientation from a TIFF-structured EXIF block (also the payload of a PNG eXIf chunk). */
export function readTiffOrientation(t: Uint8Array): number | undefined {
  if (t.length < 8) return undefined;
  const le = t[0] === 0x49 && t[1] === 0x49;
  const be = t[0] === 0x4d && t[1] === 0x4d;
  if (!le && !be) return undefined;
  const rd16 = (p: number): number => (le ? t[p] | (t[p + 1] << 8) : (t[p] << 8) | t[p + 1]);
  const rd32 = (p: number): number =>
    le ? (t[p] | (t[p + 1] << 8) | (t[p + 2] << 16) | (t[p + 3] << 24)) >>> 0
      : ((t[p] << 24) | (t[p + 1] << 16) | (t[p + 2] << 8) | t[p + 3]) >>> 0;
  if (rd16(2) !== 42) return undefined;
  const ifd = rd32(4);
  if (ifd + 2 > t.length) return undefined;
  const n = rd16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > t.length) return undefined;
    if (rd16(e) === 0x0112) {
      const v = rd16(e + 8);
      return v >= 1 && v <= 8 ? v : undefined;
    }
  }
  return undefined;
}
