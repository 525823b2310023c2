/** Node-only: read an image file and decode it (image.ts itself stays free of Node APIs for the browser). */
import { readFile } from 'node:fs/promises';
import { SketchError } from '../errors.ts';
import { decodeImage, type DecodedImage } from './image.ts';

export async function loadImageFile(path: string): Promise<DecodedImage> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not an image file'
      : code === 'EACCES' ? 'permission denied' : `cannot be read (${code ?? String(e)})`;
    throw new SketchError('IO', `${path}: ${what}`, 'Check the path; images must be PNG or JPEG files.', { cause: e });
  }
  return decodeImage(bytes, path);
}
