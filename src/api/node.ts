/**
 * The embedding API in Node: `SketchGPU.load()` on a dawn.node device. Images are file paths (or `file:` URLs),
 * PNG/JPEG bytes (`Buffer`, `Uint8Array`, `ArrayBuffer`) or raw RGBA pixels `{ data, width, height }`; `index` also
 * takes a folder or a list file, as `sketchgpu index` does.
 */
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SketchError, isSketchError } from '../core/errors.ts';
import { nodeGpu } from '../graph/node-gpu.ts';
import { decodeImage } from '../io/image.ts';
import { readBoundedFile } from '../io/read-file.ts';
import { loadModelWeights, nodeWeightsHash } from '../models/load-file.ts';
import { parseModelWeights } from '../models/load.ts';
import { confinedGalleryPath, galleryPath, listGallery } from '../retrieval/gallery.ts';
import { ClipTokenizer } from '../text/clip-tokenizer.ts';
import { loadClipTokenizer } from '../text/clip-vocab-node.ts';
import { commonImage, SketchGPUModel, type LoadOptions, type Platform, type RawImage, type WeightsSource } from './core.ts';

/**
 * An image in Node: a file path or `file:` URL (PNG or JPEG), the file's bytes, or raw RGBA pixels.
 *
 * @example
 * ```ts
 * await m.embedSketch('cat.png');
 * await m.embedSketch(readFileSync('cat.png'));
 * await m.embedSketch({ data: rgba, width: 256, height: 256 });
 * ```
 */
export type NodeImage = string | URL | Uint8Array | ArrayBuffer | RawImage;

/**
 * The weights shipped in the package: `zse`, ZSE-SBIR small (the default). (CAAN's demo weights, 20 MB, stay in the
 * repository, weights/caan-sketchy104-demo.safetensors: pass their path.)
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * const bytes = readFileSync(new URL(`../node_modules/sketchgpu/weights/${BUNDLED_WEIGHTS.zse}`, import.meta.url));
 * ```
 */
export const BUNDLED_WEIGHTS = {
  zse: 'zse-sketchy104-small.safetensors',
} as const;

/**
 * The path of a bundled weights file (src/api/ and the bundle's dist/node/ are both two levels below the package root).
 *
 * @example
 * ```ts
 * const m = await SketchGPU.load({ weights: bundledWeights('zse') });
 * ```
 */
export function bundledWeights(which: keyof typeof BUNDLED_WEIGHTS = 'zse'): string {
  return fileURLToPath(new URL(`../../weights/${BUNDLED_WEIGHTS[which]}`, import.meta.url));
}

function pathOf(src: string | URL, what: string): string {
  if (typeof src === 'string') return src;
  if (src.protocol !== 'file:') throw new SketchError('BAD_ARGUMENT', `${what} ${src.href} is not a file: URL`, 'In Node pass a file path or a file: URL (fetch other URLs yourself and pass the bytes).');
  return fileURLToPath(src);
}

const bytesOf = (b: Uint8Array | ArrayBuffer) => (b instanceof ArrayBuffer ? new Uint8Array(b) : b);

const nodePlatform: Platform<NodeImage> = {
  async gpu(o) {
    // One device per process and options, shared with other models and the lower-level API: never destroyed here
    // (a live device does not keep Node from exiting).
    return { ctx: await nodeGpu({ adapter: o.adapter }), release: () => undefined };
  },
  async weights(source: WeightsSource | undefined, o) {
    if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
      const loaded = parseModelWeights(bytesOf(source), 'the weights', { model: o.model, saHeads: o.saHeads, caHeads: o.caHeads });
      return { loaded, sha256: nodeWeightsHash(loaded.weights.tensors), name: 'bytes' };
    }
    const path = source === undefined ? bundledWeights('zse') : pathOf(source, 'weights');
    const loaded = await loadModelWeights(path, { model: o.model, saHeads: o.saHeads, caHeads: o.caHeads });
    return { loaded, sha256: nodeWeightsHash(loaded.weights.tensors), name: path };
  },
  async image(input, what) {
    const common = commonImage(input, what);
    if (common) return common;
    if (typeof input === 'string' || input instanceof URL) {
      const path = pathOf(input, 'image');
      try {
        return decodeImage(await readBoundedFile(path, 'image'), basename(path));
      } catch (e) {
        if (isSketchError(e) && !e.message.includes(path)) throw new SketchError(e.code, `${path}: ${e.message}`, e.hint, { cause: e });
        throw e;
      }
    }
    throw new SketchError('BAD_ARGUMENT', `${what} is not an image: ${Object.prototype.toString.call(input)}`,
      'In Node pass a file path, PNG/JPEG bytes (Buffer, Uint8Array) or raw RGBA pixels { data, width, height }.');
  },
  async tokenizer(vocab) {
    if (vocab === undefined) return loadClipTokenizer();
    if (vocab instanceof Uint8Array || vocab instanceof ArrayBuffer) return ClipTokenizer.fromBytes(bytesOf(vocab));
    return loadClipTokenizer(pathOf(vocab, 'vocab'));
  },
  async photoList(input) {
    if (typeof input !== 'string') return null;
    const g = listGallery(input);
    return { root: g.root, photos: g.paths.map((p) => ({ id: p, image: galleryPath(g.root, p) })) };
  },
  galleryFiles(root, paths) {
    return paths.map((p) => ({ id: p, image: confinedGalleryPath(root, p) }));
  },
  nameOf(input) {
    return typeof input === 'string' ? input : input instanceof URL ? input.href : null;
  },
};

/**
 * sketchgpu in Node: one model (ZSE-SBIR or CAAN) on the GPU, with an in-memory photo index.
 *
 * @example
 * ```ts
 * import { SketchGPU } from 'sketchgpu';
 *
 * const m = await SketchGPU.load();                 // the bundled ZSE-SBIR weights
 * await m.index('photos/');                         // a folder, a list file, or an array of images
 * for (const h of await m.search('sketch.png', { k: 5 })) console.log(h.rank, h.id, h.score);
 * await m.dispose();
 * ```
 */
export class SketchGPU extends SketchGPUModel<NodeImage> {
  /**
   * Loads weights (default: the bundled ZSE-SBIR weights) and uploads them to the GPU (dawn.node; one device per
   * process, shared by the models loaded in it).
   *
   * @example
   * ```ts
   * const zse = await SketchGPU.load();
   * const caan = await SketchGPU.load({ weights: 'weights/caan-sketchy104-demo.safetensors' });
   * ```
   */
  static async load(options: LoadOptions = {}): Promise<SketchGPU> {
    const o = await SketchGPUModel.open(nodePlatform, options);
    return new SketchGPU(o.platform, o.model, o.device, o.info, o.identity);
  }
}
