import { API_MISUSE_HINT, SketchError } from '../../core/errors.ts';
import { checkUnitRows } from '../embedding-check.ts';
import { pairChunks, takeRows } from '../pairs.ts';
import type { GpuContext } from '../../gpu/device.ts';
import { batchLimit, ModelRuntime, unitBindingBytes } from '../runtime.ts';
import type { Executor } from '../../graph/executor.ts';
import type { Graph, Precision } from '../../graph/graph.ts';
import { cosineMatrix } from '../../graph/ops/cosine.ts';
import { toFloat32, type HostTensor } from '../../core/tensor.ts';
import type { ClipTokenizer } from '../../text/clip-tokenizer.ts';
import { imageSize, imageTokens, type CaanConfig } from './config.ts';
import { buildImageTowerGraph, buildRelationGraph, buildTextGraph, buildTextRelationGraph, PROJECTIONS, transposedName } from './graph.ts';

export interface CaanModelOptions {
  /** Images per tower forward (default: as many as fit, at most 32). */
  maxBatch?: number;
  /** Texts per text forward (default: as many as fit, at most 64). */
  maxTexts?: number;
  /** Sketch-photo and text-image pairs per relation forward (default: as many as fit, at most 64). */
  maxPairs?: number;
  /** 'f16': GEMM operands rounded to binary16, f32 accumulation; Linear weights and the activations GEMMs read stored as binary16 (graph.ts Precision). Default 'f32'. */
  precision?: Precision;
  /** The CLIP tokenizer for encodeTexts (in Node: loadClipTokenizer() from src/text/clip-vocab-node.ts). */
  tokenizer?: ClipTokenizer;
}

export type ImageSide = 'sketch' | 'photo';

export interface CaanEncodeResult {
  /** [N, E] L2-normalised global embeddings (the projected cls token). */
  emb: Float32Array;
  /** [N, T, E] projected tokens (when asked for): the input of relation scores. */
  tokens?: Float32Array;
}

export interface CaanTextResult {
  /** [N, E] L2-normalised text embeddings, in the same space as the image embeddings. */
  emb: Float32Array;
  /** [N, width] ln_final at each sequence's EOT token (before text_projection). */
  features: Float32Array;
  /**
   * When asked for: per text, its projected tokens SOT..EOT ([L_i, E], L_i = EOT position + 1): the input of
   * text-image relation scores. The tokens after EOT (padding) are not part of it, as the reference's key mask.
   */
  tokens?: Float32Array[];
}

/** One text's projected tokens for text-image relation scores (CaanTextResult.tokens[i]). */
export type TextTokens = Float32Array;

/** Token sequences are run up to the batch's longest, rounded up to this (fewer graph shapes, same result). */
const TEXT_LENGTH_STEP = 8;

/**
 * CAAN on one GPU device (docs/caan.md): sketch and photo towers (global embeddings, cosine ranking), the text tower
 * (text embeddings in the same space) and the sketch-photo local relation score for re-ranking. Weights uploaded
 * once; one planned executor per batch shape, reused. The same shape of API as ZseModel where the concept matches.
 */
export class CaanModel {
  readonly tokens: number;
  readonly imageSize: number;
  readonly maxBatch: number;
  readonly maxTexts: number;
  readonly maxPairs: number;
  readonly tokenizer: ClipTokenizer | undefined;
  /** GEMM operand precision of every graph this model builds. */
  readonly precision: Precision;

  private constructor(readonly ctx: GpuContext, readonly config: CaanConfig, private readonly runtime: ModelRuntime, opts: CaanModelOptions) {
    this.tokens = imageTokens(config);
    this.imageSize = imageSize(config);
    // The largest single buffer of one image, text or pair, from the plan, decides how many fit one binding.
    const maxBind = ctx.device.limits.maxStorageBufferBindingSize;
    const units = CaanModel.unitGraphs(config);
    this.maxBatch = batchLimit(maxBind, unitBindingBytes(units.image), opts.maxBatch ?? 32);
    this.maxTexts = batchLimit(maxBind, unitBindingBytes(units.text), opts.maxTexts ?? 64);
    this.maxPairs = batchLimit(maxBind, unitBindingBytes(units.pair), opts.maxPairs ?? 64);
    this.tokenizer = opts.tokenizer;
    this.precision = runtime.precision;
  }

  /** Uploads the weights (validated ones: parseCaanWeights / loadCaanWeights). */
  static create(ctx: GpuContext, config: CaanConfig, tensors: ReadonlyMap<string, HostTensor>, opts: CaanModelOptions = {}): CaanModel {
    const projections = new Set<string>(PROJECTIONS);
    // CLIP's projections are stored [in, out]: uploaded transposed, as Linear weights (graph.ts).
    const uploads = function* (): Generator<[string, HostTensor]> {
      for (const [name, t] of tensors) yield projections.has(name) ? [transposedName(name), transpose2d(t)] : [name, t];
    };
    return new CaanModel(ctx, config, ModelRuntime.create(ctx, uploads(), opts.precision ?? 'f32', () => CaanModel.graphKinds(config)), opts);
  }

  /** The graphs of one image (either tower), one full-context text and one pair: what batch sizes and memory checks are read from. */
  static unitGraphs(config: CaanConfig): { image: ((g: Graph) => void)[]; text: ((g: Graph) => void)[]; pair: ((g: Graph) => void)[] } {
    const L = config.text.context;
    return {
      image: [(g) => buildImageTowerGraph(g, config, 'sketch', 1), (g) => buildImageTowerGraph(g, config, 'photo', 1)],
      text: [(g) => buildTextGraph(g, config, 1, L, { tokens: true })],
      pair: [(g) => buildRelationGraph(g, config, 1, 1, 1), (g) => buildTextRelationGraph(g, config, 'sk', 1, L, 1, 1), (g) => buildTextRelationGraph(g, config, 'im', 1, L, 1, 1)],
    };
  }

  /** A builder of each kind of graph this model makes (batch 1): weightFormats learns from them which weights GEMMs read. */
  private static graphKinds(config: CaanConfig): ((g: Graph) => void)[] {
    const L = Math.min(2, config.text.context);
    const kinds: ((g: Graph) => void)[] = [
      (g) => buildImageTowerGraph(g, config, 'sketch', 1), (g) => buildImageTowerGraph(g, config, 'photo', 1),
      (g) => buildTextGraph(g, config, 1, L, { tokens: true }), (g) => buildRelationGraph(g, config, 1, 1, 1),
      (g) => buildTextRelationGraph(g, config, 'sk', 1, L, 1, 1), (g) => buildTextRelationGraph(g, config, 'im', 1, L, 1, 1),
    ];
    return kinds;
  }

  /** Bytes of weights on the GPU (about half with the f16 option, whose GEMM weights are stored as binary16). */
  get weightBytes(): number {
    return this.runtime.weightBytes;
  }

  private executor(key: string, build: (g: Graph) => void): Promise<Executor> {
    return this.runtime.executor(key, build);
  }

  /** Runs one image tower on n images [n,3,S,S] (normalised to [-1,1], as ZSE's preprocessing). */
  async encode(side: ImageSide, images: Float32Array, n: number, o: { tokens?: boolean; onBatch?: (done: number) => void } = {}): Promise<CaanEncodeResult> {
    const S = this.imageSize, E = this.config.embed;
    const px = 3 * S * S;
    if (images.length !== n * px) throw new SketchError('BAD_ARGUMENT', `expected ${n} images of 3x${S}x${S}, got ${images.length} values`, API_MISUSE_HINT);
    const emb = new Float32Array(n * E);
    const tokens = o.tokens ? new Float32Array(n * this.tokens * E) : undefined;
    for (let i = 0; i < n; i += this.maxBatch) {
      const b = Math.min(this.maxBatch, n - i);
      const ex = await this.executor(`${side}:${b}`, (g) => buildImageTowerGraph(g, this.config, side, b));
      const out = await ex.run({ image: images.subarray(i * px, (i + b) * px) }, o.tokens ? ['emb', 'proj'] : ['emb']);
      emb.set(out.emb!, i * E);
      if (tokens) tokens.set(out.proj!, i * this.tokens * E);
      o.onBatch?.(i + b);
    }
    checkUnitRows(emb, n, (r) => `image ${r + 1} of ${n}`);
    return { emb, tokens };
  }

  encodeSketches(images: Float32Array, n: number, o: { tokens?: boolean; onBatch?: (done: number) => void } = {}): Promise<CaanEncodeResult> {
    return this.encode('sketch', images, n, o);
  }

  encodePhotos(images: Float32Array, n: number, o: { tokens?: boolean; onBatch?: (done: number) => void } = {}): Promise<CaanEncodeResult> {
    return this.encode('photo', images, n, o);
  }

  /** Every intermediate of one image tower for one batch (parity tests, explanations). */
  async debugEncode(side: ImageSide, images: Float32Array, n: number): Promise<Record<string, Float32Array>> {
    const ex = await this.executor(`${side}-debug:${n}`, (g) => buildImageTowerGraph(g, this.config, side, n, { debug: true }));
    return ex.run({ image: images });
  }

  /** Tokenizes with CLIP's BPE (SOT ... EOT, the model's context) and embeds the texts. */
  async encodeTexts(texts: readonly string[], tokenizer: ClipTokenizer | undefined = this.tokenizer, o: { tokens?: boolean } = {}): Promise<CaanTextResult> {
    if (!tokenizer) {
      throw new SketchError('BAD_ARGUMENT', 'encodeTexts needs the CLIP tokenizer, and none was given',
        'pass { tokenizer } to CaanModel.create (Node: await loadClipTokenizer(); browser: ClipTokenizer.fromBytes of bpe_simple_vocab_16e6.txt.gz)');
    }
    const ids = tokenizer.tokenize(texts, this.config.text.context);
    return this.encodeTokenIds(ids.data, texts.length, this.config.text.context, o);
  }

  /**
   * Embeds n token rows [n, rowLength] (CLIP ids: SOT, ..., EOT, zero padding). Pooling takes each row's first
   * largest id (CLIP's argmax: EOT is the largest). Because of the causal mask, only the tokens up to the batch's
   * longest EOT are run. `tokens`: also return each text's projected tokens up to its EOT.
   */
  async encodeTokenIds(ids: ArrayLike<number>, n: number, rowLength: number, o: { tokens?: boolean } = {}): Promise<CaanTextResult> {
    const { vocab, context, width: W } = this.config.text;
    const E = this.config.embed;
    if (ids.length !== n * rowLength) throw new SketchError('BAD_ARGUMENT', `expected ${n} token rows of ${rowLength}, got ${ids.length} ids`, API_MISUSE_HINT);
    const eot = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let t = 0; t < rowLength; t++) {
        const id = ids[r * rowLength + t]!;
        if (!Number.isInteger(id) || id < 0 || id >= vocab) {
          throw new SketchError('BAD_ARGUMENT', `token id ${id} at row ${r}, position ${t} is outside the vocabulary (0..${vocab - 1})`, 'tokenize with the CLIP tokenizer (ClipTokenizer.tokenize)');
        }
        if (id > ids[r * rowLength + best]!) best = t;
      }
      if (best >= context) {
        throw new SketchError('BAD_ARGUMENT', `text ${r} is ${best + 1} tokens long, more than the model's context of ${context}`, 'shorten the text, or tokenize with truncate');
      }
      eot[r] = best;
    }
    const emb = new Float32Array(n * E);
    const features = new Float32Array(n * W);
    const tokens: Float32Array[] | undefined = o.tokens ? [] : undefined;
    for (let i = 0; i < n; i += this.maxTexts) {
      const b = Math.min(this.maxTexts, n - i);
      let longest = 0;
      for (let r = i; r < i + b; r++) longest = Math.max(longest, eot[r]! + 1);
      const L = Math.min(context, Math.ceil(longest / TEXT_LENGTH_STEP) * TEXT_LENGTH_STEP);
      const u = new Uint32Array(b * L);
      const rowsAt = new Uint32Array(b);
      for (let r = 0; r < b; r++) {
        for (let t = 0; t < Math.min(L, rowLength); t++) u[r * L + t] = ids[(i + r) * rowLength + t]!;
        rowsAt[r] = r * L + eot[i + r]!;
      }
      const key = `text${o.tokens ? '+tokens' : ''}:${b}:${L}`;
      const ex = await this.executor(key, (g) => buildTextGraph(g, this.config, b, L, { tokens: o.tokens }));
      const out = await ex.run({ ids: u, eotRows: rowsAt }, o.tokens ? ['emb', 'features', 'proj'] : ['emb', 'features']);
      emb.set(out.emb!, i * E);
      features.set(out.features!, i * W);
      for (let r = 0; r < b && tokens; r++) tokens.push(out.proj!.slice(r * L * E, (r * L + eot[i + r]! + 1) * E));
    }
    checkUnitRows(emb, n, (r) => `text ${r + 1} of ${n}`);
    return { emb, features, ...(tokens ? { tokens } : {}) };
  }

  /** Every intermediate of the text tower on n rows of exactly L ids (parity tests); eot: each row's EOT position. */
  async debugText(ids: Uint32Array, n: number, L: number, eot: ArrayLike<number>): Promise<Record<string, Float32Array>> {
    const rowsAt = Uint32Array.from({ length: n }, (_, r) => r * L + eot[r]!);
    const ex = await this.executor(`text-debug:${n}:${L}`, (g) => buildTextGraph(g, this.config, n, L, { debug: true }));
    return ex.run({ ids, eotRows: rowsAt });
  }

  /**
   * Local relation scores for sketch-photo pairs, given the projected tokens (encode with { tokens: true }) of ns
   * sketches and np photos. `pairs` is a flat [P,2] table of (sketch, photo) indices; one score per pair.
   */
  async relation(sketchTokens: Float32Array, ns: number, photoTokens: Float32Array, np: number, pairs: Uint32Array): Promise<Float32Array> {
    const row = this.tokens * this.config.embed;
    if (sketchTokens.length !== ns * row || photoTokens.length !== np * row) {
      throw new SketchError('BAD_ARGUMENT', `relation needs [n, ${this.tokens}, ${this.config.embed}] projected tokens per side (encode with { tokens: true })`, API_MISUSE_HINT);
    }
    const scores = new Float32Array(pairs.length / 2);
    for (const { p0, sketches, photos, local } of pairChunks(pairs, ns, np, this.maxPairs)) {
      const pc = local.length / 2;
      const ex = await this.executor(`rn:${sketches.length}:${photos.length}:${pc}`, (g) => buildRelationGraph(g, this.config, sketches.length, photos.length, pc));
      const out = await ex.run({ sketchTokens: takeRows(sketchTokens, sketches, row), photoTokens: takeRows(photoTokens, photos, row), pairs: local }, ['score']);
      scores.set(out.score!, p0);
    }
    return scores;
  }

  /** Every intermediate of the relation graph for one set of pairs (parity tests, explanations). */
  async debugRelation(sketchTokens: Float32Array, ns: number, photoTokens: Float32Array, np: number, pairs: Uint32Array): Promise<Record<string, Float32Array>> {
    const P = pairs.length / 2;
    const ex = await this.executor(`rn-debug:${ns}:${np}:${P}`, (g) => buildRelationGraph(g, this.config, ns, np, P, { debug: true }));
    return ex.run({ sketchTokens, photoTokens, pairs });
  }

  /**
   * Local text-image alignment scores (docs/caan.md): one text (its projected tokens from encodeTexts with
   * { tokens: true }) against the images `images` (indices into n images' projected tokens of one side, encode
   * with { tokens: true }); one sigmoid score per listed image.
   */
  async textRelation(side: ImageSide, text: TextTokens, imageTokens: Float32Array, n: number, images: Uint32Array): Promise<Float32Array> {
    const E = this.config.embed, row = this.tokens * E;
    const L = text.length / E;
    if (!Number.isInteger(L) || L < 2 || L > this.config.text.context) {
      throw new SketchError('BAD_ARGUMENT', `textRelation needs one text's projected tokens [L, ${E}] with 2 <= L <= ${this.config.text.context} (encodeTexts with { tokens: true }), got ${text.length} values`, API_MISUSE_HINT);
    }
    if (imageTokens.length !== n * row) throw new SketchError('BAD_ARGUMENT', `textRelation needs [n, ${this.tokens}, ${E}] projected tokens per image (encode with { tokens: true })`, API_MISUSE_HINT);
    const bad = images.findIndex((j) => j >= n);
    if (bad >= 0) throw new SketchError('BAD_ARGUMENT', `image index ${images[bad]} is out of range (${n} images)`, API_MISUSE_HINT);
    const pairs = new Uint32Array(2 * images.length);
    images.forEach((j, k) => { pairs[2 * k + 1] = j; });
    const which = side === 'sketch' ? 'sk' : 'im';
    const scores = new Float32Array(images.length);
    for (const { p0, photos, local } of pairChunks(pairs, 1, n, this.maxPairs)) {
      const pc = local.length / 2;
      const ex = await this.executor(`trn:${which}:${L}:${photos.length}:${pc}`, (g) => buildTextRelationGraph(g, this.config, which, 1, L, photos.length, pc));
      const out = await ex.run({ textTokens: text, imageTokens: takeRows(imageTokens, photos, row), pairs: local }, ['score']);
      scores.set(out.score!, p0);
    }
    return scores;
  }

  /** Every intermediate of the text-image relation graph for nt texts of exactly L tokens (parity tests). */
  async debugTextRelation(side: ImageSide, textTokens: Float32Array, nt: number, L: number, imageTokens: Float32Array, ni: number, pairs: Uint32Array): Promise<Record<string, Float32Array>> {
    const which = side === 'sketch' ? 'sk' : 'im';
    const P = pairs.length / 2;
    const ex = await this.executor(`trn-debug:${which}:${nt}:${L}:${ni}:${P}`, (g) => buildTextRelationGraph(g, this.config, which, nt, L, ni, P, { debug: true }));
    return ex.run({ textTokens, imageTokens, pairs });
  }

  /** Global scores: the [na, nb] cosine matrix between two sets of embeddings (any of the three towers), on the GPU. */
  async cosine(a: Float32Array, na: number, b: Float32Array, nb: number): Promise<Float32Array> {
    const E = this.config.embed;
    const ex = await this.executor(`cos:${na}:${nb}`, (g) => {
      g.output('cos', cosineMatrix(g, g.input('a', [na, E]), g.input('b', [nb, E]), na, nb, E));
    });
    return (await ex.run({ a, b })).cos!;
  }

  destroy(): Promise<void> {
    return this.runtime.destroy();
  }
}

/** [r, c] -> [c, r] as f32. */
function transpose2d(t: HostTensor): HostTensor {
  const [r, c] = t.shape as [number, number];
  const x = toFloat32(t);
  const y = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) y[j * r + i] = x[i * c + j]!;
  return { dtype: 'f32', shape: [c, r], data: y };
}
