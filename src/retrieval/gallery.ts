/** Node-only: the photos of a gallery, from a directory tree or a list file. */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { SketchError } from '../core/errors.ts';
import { readBoundedFileSync } from '../io/read-file.ts';
import { isConfinedRelativePath } from './index-format.ts';

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
    const text = new TextDecoder().decode(readBoundedFileSync(input, 'text'));
    if (text.includes('\0')) throw new SketchError('BAD_ARGUMENT', `${input} is not a folder or a text list of image paths (it is binary)`, 'Give a folder of photos or a text file listing them, one per line.');
    // Real paths (symlinks resolved), as `query` resolves them inside the root: a listed symlink to a photo elsewhere
    // is indexed under the photo's own path.
    const real = (p: string) => {
      try {
        return realpathSync(p);
      } catch {
        return p; // missing: skipped as unreadable when indexed
      }
    };
    root = real(root);
    files = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => real(isAbsolute(l) ? l : resolve(root, l)));
    // Every indexed path must lie inside the root (an index with '..' paths is refused on open): when the list
    // names files outside its own folder, the root is the deepest folder holding them all.
    for (const f of files) while (f !== root && !f.startsWith(root.endsWith(sep) ? root : root + sep)) root = dirname(root);
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

/**
 * The absolute path of an index's photo, guaranteed inside the index's root: `rel` must be a relative image path
 * (no absolute path, no '..'; parseIndex already refuses those) and its real path, symlinks resolved, must lie
 * under the root's real path. An index is a file anyone can craft; this is what keeps `query --html` and the
 * re-rank from reading /etc/passwd through one. A root of '' (an index built in the browser) means the working
 * directory. A photo that does not exist resolves to its lexical path (reading it then fails as a missing file).
 */
export function confinedGalleryPath(root: string, rel: string, indexName = 'the index'): string {
  const base = root === '' ? process.cwd() : root;
  const refuse = (why: string) => new SketchError('BAD_INDEX', `${indexName}: the photo ${JSON.stringify(rel.slice(0, 200))} ${why}`,
    'An index that sketchgpu wrote never does this; do not use this file, rebuild it from your photos with `sketchgpu index`.');
  if (!isAbsolute(base)) throw refuse(`has a root (${JSON.stringify(root)}) that is not an absolute folder`);
  if (!isConfinedRelativePath(rel)) throw refuse("is not a relative image path inside the index's root");
  const file = resolve(base, ...rel.split('/'));
  let realBase: string, realFile: string;
  try {
    realBase = realpathSync(base);
    realFile = realpathSync(file);
  } catch {
    return file;
  }
  if (!realFile.startsWith(realBase + sep)) throw refuse(`resolves (through a symbolic link) to ${realFile}, outside the index's root ${realBase}`);
  return file;
}
