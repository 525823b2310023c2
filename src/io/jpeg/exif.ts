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
