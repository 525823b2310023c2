/**
 * Fuzz targets for the readers of untrusted files (docs/reliability.md). Each takes arbitrary bytes and must either
 * return or throw a SketchError: any other exception (a RangeError, a TypeError, a stack overflow) is a bug that
 * would reach the user as "this is unexpected". The fuzzer (tools/fuzz/fuzz.mjs, Jazzer.js) also holds every input to
 * 1 GiB of RSS and 10 s; test/fuzz.regression.test.ts replays the inputs kept in test/fixtures/fuzz/.
 */
import { isSketchError } from '../src/core/errors.ts';
import { isHostTensor, readTorchCheckpoint } from '../src/io/checkpoint.ts';
import { decodeImage } from '../src/io/image.ts';
import { readNpy } from '../src/io/npy.ts';
import { unpickle } from '../src/io/pickle.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { parseWeights } from '../src/models/zse/weights.ts';
import { preprocessPhoto, preprocessSketch } from '../src/preprocess/index.ts';
import { parseIndex } from '../src/retrieval/index-format.ts';

function refusalsOnly(run: () => void): void {
  try {
    run();
  } catch (e) {
    if (isSketchError(e)) return;
    throw e;
  }
}

/** Reads every tensor a checkpoint holds (so strided views are copied, against their budget). */
function touchTensors(v: unknown, depth = 0): void {
  if (depth > 50) return;
  if (isHostTensor(v)) void v.data.length;
  else if (v instanceof Map) for (const x of v.values()) touchTensors(x, depth + 1);
  else if (Array.isArray(v)) for (const x of v) touchTensors(x, depth + 1);
}

export const TARGETS: Record<string, (data: Uint8Array) => void> = {
  /** A torch.save zip: the container, the pickle VM and the views. */
  checkpoint: (d) => refusalsOnly(() => touchTensors(readTorchCheckpoint(d, 'fuzz.pth').root)),
  /** A bare pickle through the allow-list VM. */
  pickle: (d) => refusalsOnly(() => void unpickle(d, { fileName: 'fuzz.pkl' })),
  /** The whole weights reader, either format: identification, layout checks, finiteness. */
  weights: (d) => refusalsOnly(() => void parseWeights(d, 'fuzz.weights')),
  safetensors: (d) => refusalsOnly(() => void readSafetensors(d, 'fuzz.safetensors')),
  /** PNG/JPEG decoding, then both preprocessing paths at a small size. */
  image: (d) => refusalsOnly(() => {
    const img = decodeImage(d, 'fuzz.img');
    preprocessPhoto(img, 32);
    refusalsOnly(() => void preprocessSketch(img, 32));
  }),
  npy: (d) => refusalsOnly(() => void readNpy(d, 'fuzz.npy')),
  index: (d) => refusalsOnly(() => void parseIndex(d, 'fuzz.sgi')),
};
