/** Loads the CLIP tokenizer's vocabulary from disk in Node (the browser passes bytes to ClipTokenizer.fromBytes). */
import { readBoundedFile } from '../io/read-file.ts';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { SketchError } from '../core/errors.ts';
import { ClipTokenizer } from './clip-tokenizer.ts';

export const CLIP_VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz';

/**
 * Where the vocabulary is looked for: SKETCHGPU_CLIP_VOCAB, else <SKETCHGPU_SHARED or ../shared>/data/clip/ beside
 * the checkout. src/text/ and the bundle's dist/node/ are both two levels below the repository root.
 */
export function defaultClipVocabPath(): string {
  if (process.env.SKETCHGPU_CLIP_VOCAB) return resolve(process.env.SKETCHGPU_CLIP_VOCAB);
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const shared = process.env.SKETCHGPU_SHARED ? resolve(process.env.SKETCHGPU_SHARED) : resolve(root, '..', 'shared');
  return resolve(shared, 'data', 'clip', CLIP_VOCAB_FILE);
}

const cache = new Map<string, Promise<ClipTokenizer>>();

/** The tokenizer built from `path` (default: defaultClipVocabPath()); built once per path and process. */
export function loadClipTokenizer(path: string = defaultClipVocabPath()): Promise<ClipTokenizer> {
  const key = resolve(path);
  let p = cache.get(key);
  if (!p) {
    p = build(key);
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}

async function build(path: string): Promise<ClipTokenizer> {
  if (!existsSync(path)) {
    throw new SketchError('IO', `the CLIP vocabulary ${path} does not exist`,
      `Set SKETCHGPU_CLIP_VOCAB to the path of ${CLIP_VOCAB_FILE} (it ships in OpenAI CLIP's repository, clip/${CLIP_VOCAB_FILE}), or SKETCHGPU_SHARED to the folder holding data/clip/.`);
  }
  let bytes = await readBoundedFile(path, 'text');
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes); // native, faster than fflate for the 1.4 MB file
    } catch (e) {
      throw new SketchError('BAD_ARGUMENT', `the CLIP vocabulary ${path} is not valid gzip (${(e as Error).message})`, `Download ${CLIP_VOCAB_FILE} again.`);
    }
  }
  return ClipTokenizer.fromBytes(bytes);
}
