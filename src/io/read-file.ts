/**
 * Node-only: the one way sketchgpu reads a file it was given (weights, images, .npy inputs, index files, list
 * files). Only regular files are read: a device (/dev/zero), a FIFO, a socket or a directory is refused before a
 * single byte is read, and so is a file larger than the reader's bound, so no input can make a reader allocate
 * without limit (docs/reliability.md).
 *
 * The file is opened once with O_NONBLOCK (opening a FIFO then returns at once instead of waiting for a writer) and
 * everything is decided on that descriptor's fstat, so the path cannot be swapped between the check and the read.
 */
import { constants, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { openSync, fstatSync, readSync, closeSync } from 'node:fs';
import { SketchError } from '../core/errors.ts';

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

/** Bounds per kind of file; each is far above any genuine file of that kind. */
export const FILE_LIMITS = {
  /**
   * The official ViT-B/16 ZSE-SBIR best_checkpoint.pth is 409 MB (../shared/docs/zse-sbir.md) and full-size CAAN in
   * float32 1.02 GB (255 M parameters; the opt-in full-size test reads one): room for both. A bad file that passes
   * the first-4-KiB look is read whole, so near this bound it costs about 1.3 GiB of RSS before it is refused.
   */
  weights: 1280 * MiB,
  /** A 100-megapixel JPEG is some 50 MB; a PNG of the decoded-size bound (image.ts) compresses to less. */
  image: 256 * MiB,
  /** A .npy batch of model inputs: 445 ViT-B inputs (3x224x224 float32); larger batches go in several files. */
  npy: 256 * MiB,
  /** An index of 260,000 photos at ViT-B width (f32; twice as many in f16); with --rn-cache far fewer. */
  index: 768 * MiB,
  /** A list file of photo paths, a vocabulary, a description file. */
  text: 256 * MiB,
} as const;

export type FileKind = keyof typeof FILE_LIMITS;

const KIND_WORDS: Record<FileKind, string> = {
  weights: 'weights file', image: 'image', npy: '.npy file', index: 'index file', text: 'text file',
};

function whatIs(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function openError(path: string, kind: FileKind, e: unknown): SketchError {
  const code = (e as NodeJS.ErrnoException).code;
  const what = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
  return new SketchError('IO', `cannot read the ${KIND_WORDS[kind]} ${path}: ${what}${code ? ` (${code})` : ''}`,
    code === 'ENOENT' ? 'Check the path.' : `Give the path of a readable ${KIND_WORDS[kind]}.`, { cause: e });
}

function checkStat(path: string, kind: FileKind, st: Stats, limit: number): void {
  if (!st.isFile()) {
    throw new SketchError('IO', `${path} is ${whatIs(st)}, not a regular file; sketchgpu reads ${KIND_WORDS[kind]}s only from regular files`,
      `Give the path of a ${KIND_WORDS[kind]} on disk (copy a stream to a file first).`);
  }
  if (st.size > limit) {
    throw new SketchError('IO', `${path} is ${(st.size / MiB).toFixed(1)} MiB, more than any ${KIND_WORDS[kind]} sketchgpu reads (${(limit / MiB).toFixed(0)} MiB)`,
      `Check that this is the right file; a genuine ${KIND_WORDS[kind]} is far smaller.`);
  }
}

const FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * Reads a whole regular file of at most `limit` bytes (default: the bound of its kind). `checkHead`, when given,
 * sees the first 4 KiB (and the file's size) before the rest is read, and throws to refuse the file there: a file
 * that is plainly not of its kind costs nothing however large it is.
 */
export async function readBoundedFile(path: string, kind: FileKind, limit: number = FILE_LIMITS[kind],
  checkHead?: (head: Uint8Array, size: number) => void): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, FLAGS);
  } catch (e) {
    throw openError(path, kind, e);
  }
  try {
    const st = await fh.stat();
    checkStat(path, kind, st, limit);
    if (checkHead) {
      const head = new Uint8Array(Math.min(4096, st.size));
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      checkHead(head.subarray(0, bytesRead), st.size);
    }
    // Read exactly the size fstat gave: a file that grows meanwhile cannot push the read past the bound.
    const out = new Uint8Array(st.size);
    let at = 0;
    while (at < out.length) {
      const { bytesRead } = await fh.read(out, at, out.length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return at === out.length ? out : out.subarray(0, at);
  } catch (e) {
    if (e instanceof SketchError) throw e;
    throw openError(path, kind, e);
  } finally {
    await fh.close();
  }
}

/** The synchronous twin of readBoundedFile. */
export function readBoundedFileSync(path: string, kind: FileKind, limit: number = FILE_LIMITS[kind],
  checkHead?: (head: Uint8Array, size: number) => void): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (e) {
    throw openError(path, kind, e);
  }
  try {
    const st = fstatSync(fd);
    checkStat(path, kind, st, limit);
    if (checkHead) {
      const head = new Uint8Array(Math.min(4096, st.size));
      checkHead(head.subarray(0, readSync(fd, head, 0, head.length, 0)), st.size);
    }
    const out = new Uint8Array(st.size);
    let at = 0;
    while (at < out.length) {
      const n = readSync(fd, out, at, out.length - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === out.length ? out : out.subarray(0, at);
  } catch (e) {
    if (e instanceof SketchError) throw e;
    throw openError(path, kind, e);
  } finally {
    closeSync(fd);
  }
}
