/** Huffman tables (jdhuff.c: the standard tables, the derived lookup table) and libjpeg's bit reader. */
import { JpegError } from './types.ts';

/** A DHT table as defined: code counts per length 1..16 and the symbols; `built` caches the derived table. */
export interface RawHuffTable {
  counts: Uint8Array;
  symbols: Uint8Array;
  built?: HuffTable;
}

/**
 * The Annex K tables that libjpeg-turbo installs in DC/AC slots 0 and 1 when a file leaves them undefined
 * (jstdhuff.c std_huff_tables, for Motion-JPEG frames), as hex: code counts for lengths 1..16, then symbols.
 */
export const STD_TABLES = {
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
export const stdTable = (t: string[]): RawHuffTable => ({ counts: fromHex(t[0]), symbols: fromHex(t[1]) });

export interface HuffTable {
  /** maxcode[l] = largest code of length l (or -1), l = 1..16; maxcode[17] sentinel. */
  maxcode: Int32Array;
  /** valoffset[l] = index into vals of the first symbol of length l, minus the smallest code of length l. */
  valoffset: Int32Array;
  vals: Uint8Array;
  /** 9-bit lookahead: (length << 8) | symbol, or 0 when the code is longer than 9 bits. */
  look: Uint16Array;
}

const LOOKAHEAD = 9;

export function buildHuffTable(counts: Uint8Array, symbols: Uint8Array, isDC: boolean): HuffTable {
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

/**
 * Bit reader with libjpeg's semantics (jdhuff.c jpeg_fill_bit_buffer): FF00 stuffing; a marker stops the data and
 * zero bits are fed instead. Consuming any of those zero bits sets `insufficient` (libjpeg's insufficient_data),
 * after which the scan leaves the rest of the segment's MCUs untouched, as libjpeg does ("Corrupt JPEG data:
 * premature end of data segment").
 */
export class BitReader {
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
export function extend(r: number, s: number): number {
  return r < 1 << (s - 1) ? r - (1 << s) + 1 : r;
}
