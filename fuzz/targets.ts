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
import { parseExplainRequest, parseSearchRequest } from '../src/server/requests.ts';
import { CLIP_VOCAB_SIZE, ClipTokenizer } from '../src/text/clip-tokenizer.ts';
import { defaultClipVocabPath } from '../src/text/clip-vocab-node.ts';
import { readFileSync } from 'node:fs';

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

/** The real CLIP vocabulary (../shared/data/clip, or SKETCHGPU_CLIP_VOCAB), read once on first use. */
let clip: ClipTokenizer | undefined;
const utf8 = new TextDecoder('utf-8', { fatal: false });
/** Whether the tokenizer target can run here (tools/fuzz/fuzz.mjs skips it, saying so, when not). */
export function tokenizerAvailable(): boolean {
  try {
    clip ??= ClipTokenizer.fromBytes(readFileSync(defaultClipVocabPath()));
    return true;
  } catch {
    return false;
  }
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
  /**
   * A search server request (src/server/http.ts), /search and /explain: the bytes as a JSON body, and as the query
   * string of an image body.
   * A sketch it yields must be bytes, k and rerank_k integers, text_weight finite, rerank a boolean.
   */
  'search-request': (d) => {
    const check = (q: ReturnType<typeof parseSearchRequest>) => {
      if (q.sketch !== undefined && !(q.sketch instanceof Uint8Array)) throw new Error('a sketch that is not bytes');
      for (const v of [q.k, q.rerankK]) if (v !== undefined && !Number.isInteger(v)) throw new Error(`a non-integer count ${v}`);
      if (q.textWeight !== undefined && !Number.isFinite(q.textWeight)) throw new Error(`a non-finite text weight ${q.textWeight}`);
      if (q.rerank !== undefined && typeof q.rerank !== 'boolean') throw new Error('a non-boolean rerank');
      if (q.text !== undefined && typeof q.text !== 'string') throw new Error('a non-string text');
    };
    const buf = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    refusalsOnly(() => check(parseSearchRequest('application/json', buf, new URLSearchParams())));
    refusalsOnly(() => check(parseSearchRequest('image/png', Buffer.from([1]), new URLSearchParams(utf8.decode(d)))));
    // The /explain request: the same two forms.
    const checkExplain = (q: ReturnType<typeof parseExplainRequest>) => {
      if (!(q.sketch instanceof Uint8Array) || typeof q.id !== 'string' || q.id === '') throw new Error('an explain request without its sketch or id');
      if (q.top !== undefined && !Number.isInteger(q.top)) throw new Error(`a non-integer top ${q.top}`);
      if (q.format !== 'png' && q.format !== 'json') throw new Error(`format ${q.format}`);
    };
    refusalsOnly(() => checkExplain(parseExplainRequest('application/json', buf, new URLSearchParams())));
    refusalsOnly(() => checkExplain(parseExplainRequest('image/png', Buffer.from([1]), new URLSearchParams(utf8.decode(d)))));
  },
  /**
   * The CLIP tokenizer on arbitrary text (the bytes as UTF-8, invalid sequences replaced): clean, split, BPE,
   * tokenize with truncation, decode. Every id must be a vocabulary id.
   */
  tokenizer: (d) => {
    if (!tokenizerAvailable()) return;
    const text = utf8.decode(d);
    refusalsOnly(() => {
      const ids = clip!.encode(text);
      for (const id of ids) if (!(id >= 0 && id < CLIP_VOCAB_SIZE)) throw new Error(`token id ${id} outside the vocabulary`);
      const t = clip!.tokenize(text, 77, true);
      if (t.data.length !== 77) throw new Error('tokenize did not give 77 ids');
      void clip!.decode(ids);
    });
  },
};
