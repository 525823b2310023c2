/** Entropy-coded scan data: baseline, extended-sequential and progressive (jdhuff.c, jdphuff.c), restarts. */
import { BitReader, type HuffTable, type RawHuffTable, buildHuffTable, extend } from './huffman.ts';
import { type Component, JpegError, NATURAL_ORDER } from './types.ts';

/**
 * jdcoefct.c smoothing_ok(): libjpeg smooths DC/AC estimates across blocks when a progressive file leaves any of
 * the first 9 AC coefficients unrefined. Complete files (every encoder's default script) never trigger it; this
 * port does not implement the smoothing, so such files are refused rather than decoded differently.
 */
export function blockSmoothingWouldApply(comps: Component[]): boolean {
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

export function decodeScan(
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
