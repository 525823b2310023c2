/**
 * The zip container of a torch.save checkpoint, read with every size bounded and every entry's CRC-32 checked
 * (docs/reliability.md). The central directory is walked here, as fflate's unzipSync does, because fflate neither
 * reports an entry's CRC nor bounds what an entry inflates to; deflated entries are inflated with fflate's streaming
 * Inflate into a buffer of the declared size, and an entry that inflates past it is refused mid-stream.
 */
import { Inflate } from 'fflate';
import { crc32 } from './crc32.ts';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  compression: number;
  /** Bytes in the file. */
  size: number;
  /** Bytes once inflated, as the central directory declares. */
  originalSize: number;
  crc: number;
  /** Offset of the local header. */
  offset: number;
}

/** A problem with the container itself; the checkpoint reader words it for the user. */
export class ZipError extends Error {
  constructor(readonly kind: 'damaged' | 'bomb' | 'crc', message: string) {
    super(message);
  }
}

/** No genuine checkpoint inflates past this (3 GiB: a ViT-L checkpoint with its optimizer state). */
export const ZIP_MAX_TOTAL = 3 * 2 ** 30;
/**
 * Nor past twice its own size plus 16 MiB: torch.save stores every entry uncompressed, so its entries add up to less
 * than the file; the margin admits an archive re-zipped with deflate at a modest ratio, never a bomb.
 */
export const zipTotalBound = (fileBytes: number): number => Math.min(ZIP_MAX_TOTAL, 2 * fileBytes + 16 * 2 ** 20);
/** More entries than any checkpoint has (one per storage plus a handful). */
export const ZIP_MAX_ENTRIES = 1_000_000;

const u16 = (d: Uint8Array, b: number) => d[b]! | (d[b + 1]! << 8);
const u32 = (d: Uint8Array, b: number) => (d[b]! | (d[b + 1]! << 8) | (d[b + 2]! << 16) | (d[b + 3]! << 24)) >>> 0;
const u64 = (d: Uint8Array, b: number) => u32(d, b) + u32(d, b + 4) * 2 ** 32;

/** The entries of the central directory, refusing any inconsistency before a byte is inflated. */
export function listZip(d: Uint8Array): ZipEntry[] {
  const damaged = (what: string) => new ZipError('damaged', what);
  let e = d.length - 22;
  for (; e >= 0 && u32(d, e) !== 0x06054b50; e--) if (d.length - e > 65558) break;
  if (e < 0 || u32(d, e) !== 0x06054b50) throw damaged('no end-of-central-directory record (truncated?)');
  let count = u16(d, e + 10);
  let cd = u32(d, e + 16);
  let zip64 = false;
  if (e >= 20 && u32(d, e - 20) === 0x07064b50) {
    const z = u64(d, e - 12);
    if (z + 56 <= d.length && u32(d, z) === 0x06064b50) {
      zip64 = true;
      count = u64(d, z + 32);
      cd = u64(d, z + 48);
    }
  }
  if (count > ZIP_MAX_ENTRIES) throw damaged(`the central directory claims ${count} entries`);
  const out: ZipEntry[] = [];
  for (let i = 0, b = cd; i < count; i++) {
    if (b + 46 > d.length || u32(d, b) !== 0x02014b50) throw damaged(`central directory entry ${i} lies outside the file or is corrupt`);
    const compression = u16(d, b + 10);
    const crc = u32(d, b + 16);
    let size = u32(d, b + 20), originalSize = u32(d, b + 24), offset = u32(d, b + 42);
    const nameLen = u16(d, b + 28), extraLen = u16(d, b + 30), commentLen = u16(d, b + 32);
    const nameStart = b + 46, extra = nameStart + nameLen, next = extra + extraLen + commentLen;
    if (next > d.length) throw damaged(`central directory entry ${i} runs past the end of the file`);
    const name = new TextDecoder('utf-8', { fatal: false }).decode(d.subarray(nameStart, nameStart + nameLen));
    if (zip64 || size === 0xffffffff || originalSize === 0xffffffff || offset === 0xffffffff) {
      for (let x = extra; x + 4 <= extra + extraLen; x += 4 + u16(d, x + 2)) {
        if (u16(d, x) !== 1) continue;
        let p = x + 4;
        if (originalSize === 0xffffffff) { originalSize = u64(d, p); p += 8; }
        if (size === 0xffffffff) { size = u64(d, p); p += 8; }
        if (offset === 0xffffffff) { offset = u64(d, p); p += 8; }
        break;
      }
    }
    if (offset + 30 > d.length || u32(d, offset) !== 0x04034b50) throw damaged(`entry ${name}'s local header lies outside the file or is corrupt`);
    const dataStart = offset + 30 + u16(d, offset + 26) + u16(d, offset + 28);
    if (dataStart + size > d.length) throw damaged(`entry ${name} (${size} bytes) runs past the end of the file`);
    if (compression === 0 && size !== originalSize) throw damaged(`stored entry ${name} declares ${size} and ${originalSize} bytes`);
    out.push({ name, compression, size, originalSize, crc, offset });
    b = next;
  }
  return out;
}

/** Refuses an archive whose entries would inflate past the bound for a file of its size. */
export function checkZipTotal(entries: ZipEntry[], fileBytes: number): void {
  let total = 0;
  for (const e of entries) total += e.originalSize;
  const bound = zipTotalBound(fileBytes);
  if (total > bound) {
    throw new ZipError('bomb', `its ${entries.length} entries would inflate to ${total} bytes in all, more than ${bound} for a file of ${fileBytes} bytes`);
  }
}

/**
 * One entry's bytes, CRC-checked. A stored entry is a view into `d` (no copy); a deflated one is inflated into a
 * buffer of its declared size, and refused as soon as it would pass it.
 */
export function readZipEntry(d: Uint8Array, e: ZipEntry): Uint8Array {
  const start = e.offset + 30 + u16(d, e.offset + 26) + u16(d, e.offset + 28);
  const raw = d.subarray(start, start + e.size);
  let data: Uint8Array;
  if (e.compression === 0) data = raw;
  else if (e.compression === 8) {
    data = new Uint8Array(e.originalSize);
    let at = 0;
    const inf = new Inflate((chunk) => {
      if (at + chunk.length > data.length) throw new ZipError('bomb', `entry ${e.name} inflates past the ${e.originalSize} bytes it declares`);
      data.set(chunk, at);
      at += chunk.length;
    });
    try {
      // Pushed in slices so a lying entry is stopped after at most one slice's output past its bound.
      const step = 1 << 14; // deflate expands at most ~1032:1, so one slice yields at most ~17 MB
      for (let p = 0; p < raw.length; p += step) inf.push(raw.subarray(p, Math.min(raw.length, p + step)), p + step >= raw.length);
      if (raw.length === 0) inf.push(raw, true);
    } catch (err) {
      if (err instanceof ZipError) throw err;
      throw new ZipError('damaged', `entry ${e.name} does not inflate: ${(err as Error).message}`);
    }
    if (at !== data.length) throw new ZipError('damaged', `entry ${e.name} inflates to ${at} bytes, not the ${e.originalSize} it declares`);
  } else {
    throw new ZipError('damaged', `entry ${e.name} uses compression method ${e.compression} (torch.save stores entries; only stored and deflate are read)`);
  }
  const crc = crc32(data);
  if (crc !== e.crc) {
    throw new ZipError('crc', `entry ${e.name} fails its CRC-32 check (computed ${crc.toString(16).padStart(8, '0')}, recorded ${e.crc.toString(16).padStart(8, '0')})`);
  }
  return data;
}
