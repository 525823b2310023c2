/**
 * Node-only: the public API's model as the retrieval machinery's `ImageEncoder` (src/retrieval/files.ts), so the
 * commands, the search server and a library user share one path into the model: images are read and preprocessed by
 * `SketchGPU.modelInput` and embedded by `embedSketch` / `embedPhoto`.
 */
import { basename } from 'node:path';
import { ModelInput } from './core.ts';
import type { SketchGPU } from './node.ts';
import { readBoundedFile } from '../io/read-file.ts';
import type { ImageEncoder } from '../retrieval/files.ts';
import type { ModelIdentity } from '../retrieval/index-format.ts';

/** @internal The identity an index records for this model (index-format.ts). */
export const identityOf = (m: SketchGPU): ModelIdentity => m.model.identity(m.info.weightsSha256);

/** Batches of model inputs through the API's embed calls. */
const embedThrough = (m: SketchGPU): ImageEncoder['embed'] => async (images, _n, modality, o) => {
  const x = ModelInput.fromTensor(images, modality, m.info.imageSize);
  const e = await (modality === 'sketch' ? m.embedSketch(x, o) : m.embedPhoto(x, o));
  return { emb: e.data, tokens: e.tokens };
};

/** @internal Query images (sketches, a re-rank's photos, eval's files) by path: errors name the path. */
export function queryEncoder(m: SketchGPU): ImageEncoder {
  return { load: async (file, modality) => (await m.modelInput(file, modality)).data, embed: embedThrough(m) };
}

/** @internal Gallery photos: an unreadable one is skipped with the reason, which names the file by its base name. */
export function galleryEncoder(m: SketchGPU): ImageEncoder {
  return {
    load: async (file, modality) => (await m.modelInput(await readBoundedFile(file, 'image'), modality, { name: basename(file) })).data,
    embed: embedThrough(m),
  };
}
