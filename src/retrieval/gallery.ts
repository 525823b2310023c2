/** Node-only: the photos of a gallery, from a directory tree or a list file. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { SketchError } from '../errors.ts';

export const IMAGE_EXT = /\.(png|jpe?g)$/i;

export interface GalleryList {
  /** Absolute directory the paths are relative to. */
  root: string;
  /** '/'-separated relative paths, sorted (code-unit order). */
  paths: string[];
}

const toPosix = (p: string) => p.split(sep).join('/');

function walk(dir: string, out: string[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new SketchError('IO', `cannot list ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'Check the path and its permissions.');
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && IMAGE_EXT.test(e.name)) out.push(p);
  }
}

/**
 * A directory (every .png/.jpg/.jpeg below it, hidden entries skipped) or a text file with one image path per line
 * (relative to the list file; blank lines and lines starting with # are ignored).
 */
export function listGallery(input: string): GalleryList {
  let st;
  try {
    st = statSync(input);
  } catch {
    throw new SketchError('IO', `${input} does not exist`, 'Give a folder of photos or a text file listing them, one per line.');
  }
  let root: string;
  let files: string[] = [];
  if (st.isDirectory()) {
    root = resolve(input);
    walk(root, files);
  } else {
    root = resolve(dirname(input));
    const text = readFileSync(input, 'utf8');
    if (text.includes('\0')) throw new SketchError('BAD_ARGUMENT', `${input} is not a folder or a text list of image paths (it is binary)`, 'Give a folder of photos or a text file listing them, one per line.');
    files = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => (isAbsolute(l) ? l : resolve(root, l)));
  }
  const paths = [...new Set(files.map((f) => toPosix(relative(root, f))))].sort();
  if (paths.length === 0) {
    throw new SketchError('EMPTY_GALLERY', `no images in ${input}`, st.isDirectory() ? 'The folder (and its subfolders) holds no .png, .jpg or .jpeg files.' : 'The list file names no images.');
  }
  return { root, paths };
}

/** Absolute path of a gallery entry. */
export function galleryPath(root: string, rel: string): string {
  return resolve(root, ...rel.split('/'));
}
