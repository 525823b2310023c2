/**
 * CRC-32 (ISO-HDLC: zip, PNG, gzip). In Node, node:zlib's native `crc32` (Node >= 20.15; about 8x faster); elsewhere
 * (the browser, where the zip and index readers also run) this slicing-by-8 TypeScript one, which the tests check
 * against node:zlib's. fflate keeps its own CRC internal.
 */
type Crc32 = (bytes: Uint8Array, crc?: number) => number;
const native: Crc32 | undefined = (globalThis as { process?: { getBuiltinModule?: (id: string) => { crc32?: Crc32 } | undefined } })
  .process?.getBuiltinModule?.('node:zlib')?.crc32;
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

/** The CRC-32 of `bytes`, continuing from `crc` (the value of the bytes before them; 0 to start). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  return native ? native(bytes, crc) : crc32Portable(bytes, crc);
}

/** The TypeScript CRC-32, whatever the platform (exported for the tests). */
export function crc32Portable(bytes: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n % 8);
  for (; i < end8; i += 8) {
    const a = (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^ t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
