/** Node-only: read an image file and decode it (image.ts itself stays free of Node APIs for the browser). */
import { decodeImage, type DecodedImage } from './image.ts';
import { readBoundedFile } from './read-file.ts';

export async function loadImageFile(path: string): Promise<DecodedImage> {
  return decodeImage(await readBoundedFile(path, 'image'), path);
}
