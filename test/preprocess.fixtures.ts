// Shared by the preprocessing and image-decoding tests: tools/fixtures/make_preprocess_fixtures.py's expected.json.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FIXTURES } from './paths.ts';

export const PP_DIR = resolve(FIXTURES, 'preprocess');

export interface Stage {
  sha256?: string;
  b64?: string;
  error?: 'EMPTY_SKETCH' | 'BAD_IMAGE';
}
export interface SyntheticCase {
  file: string;
  what: string;
  pil: { mode: string; shape: number[]; sha256: string; b64?: string };
  cv2: { shape: number[]; sha256: string; b64?: string };
  photo: Record<string, Stage>;
  sketch: Record<string, Stage>;
}
export interface Expected {
  reference: Record<string, string>;
  normalize_lut_f32_bits: number[];
  synthetic: SyntheticCase[];
  bad: { file: string; error: string; match: string }[];
  real: { photo: Record<string, Record<string, string>>; sketch: Record<string, Record<string, string>> };
  decode: { pil: Record<string, string>; cv2: Record<string, string> };
}

export const expected: Expected = JSON.parse(readFileSync(resolve(PP_DIR, 'expected.json'), 'utf8'));

export const sha256 = (b: ArrayBufferView): string =>
  createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');

export const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

/** "n of m bytes differ, max |diff| d at index i" for two byte arrays, or null when equal. */
export function byteDiff(got: Uint8Array, want: Uint8Array): string | null {
  if (got.length !== want.length) return `length ${got.length} != ${want.length}`;
  let n = 0;
  let max = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d) {
      n++;
      if (d > max) {
        max = d;
        at = i;
      }
    }
  }
  return n ? `${n} of ${got.length} bytes differ, max |diff| ${max} at index ${at}` : null;
}

/** Check a stage against its hash, reporting the byte diff when the fixture holds the full array. */
export function checkStage(got: Uint8Array, want: { sha256?: string; b64?: string }, what: string): string | null {
  if (sha256(got) === want.sha256) return null;
  const detail = want.b64 ? byteDiff(got, fromB64(want.b64)) : `sha256 ${sha256(got).slice(0, 12)}… != ${want.sha256?.slice(0, 12)}…`;
  return `${what}: ${detail}`;
}
