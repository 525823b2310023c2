/**
 * The model behind retrieval (browser-safe): one interface over ZSE-SBIR and CAAN, so indexing, queries, re-ranking
 * and the benchmark run either. Both models give L2-normalised global embeddings ranked by cosine, per-image tokens
 * [n, T, dim] for a local sketch-photo relation score, and CAAN also text embeddings in the same space.
 *
 * The adapters add no arithmetic: a ZSE-SBIR run through them calls exactly the ZseModel methods the retrieval code
 * called before (same batches, same cached projections), so its results are unchanged.
 */
import { SketchError } from '../core/errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import { CaanModel } from '../models/caan/model.ts';
import { MODEL_LABEL, type ModelKind } from '../models/load.ts';
import { ZseModel } from '../models/zse/model.ts';
import type { ClipTokenizer } from '../text/clip-tokenizer.ts';
import type { ModelIdentity } from './index-format.ts';

export type ImageModality = 'sketch' | 'photo';

/** One side of relation scoring: n images' tokens, and what can be derived from them once per image. */
export interface RelationSide {
  side: ImageModality;
  n: number;
  /** [n, T, dim] tokens (ZSE: SA output; CAAN: projected tokens). */
  tokens: Float32Array;
  /**
   * [n, T, dim] planes computed once per image and reused by all its pairs (ZSE-SBIR: the CA input projections
   * q, v, k, zse-sbir.md §13). Absent: computed inside each pair (CAAN always; ZSE when not precomputed).
   */
  planes?: Float32Array[];
}

export interface RetrievalModel {
  readonly kind: ModelKind;
  readonly ctx: GpuContext;
  /** Embedding width (ZSE: the SA width; CAAN: the joint embed width); also the width of the tokens. */
  readonly dim: number;
  readonly imageSize: number;
  /** Tokens per image (1 + G²). */
  readonly tokens: number;
  readonly maxBatch: number;
  readonly maxPairs: number;
  /** Whether the weights hold the relation head (ZSE: CA + RN; CAAN: always). */
  readonly hasRelation: boolean;
  /** How many per-image planes relationSide derives (and an index with --rn-cache stores beside the tokens). */
  readonly relationPlanes: number;
  /** The text tower's context in tokens (SOT and EOT included); undefined when the model has no text tower. */
  readonly textContext: number | undefined;
  /** Global embeddings [n, dim] of n preprocessed images [n, 3, S, S], and their tokens when asked. */
  embed(images: Float32Array, n: number, modality: ImageModality, o?: { tokens?: boolean; onBatch?: (done: number) => void }): Promise<{ emb: Float32Array; tokens?: Float32Array }>;
  /** [na, nb] cosines of two sets of embeddings, on the GPU. */
  cosine(a: Float32Array, na: number, b: Float32Array, nb: number): Promise<Float32Array>;
  /** Prepares n images' tokens for relation scoring; `precompute` derives the per-image planes now. */
  relationSide(tokens: Float32Array, n: number, side: ImageModality, precompute: boolean): Promise<RelationSide>;
  /** Relation scores of (sketch, photo) index pairs, a flat [P, 2] table; one score per pair. */
  relation(sketch: RelationSide, photo: RelationSide, pairs: Uint32Array): Promise<Float32Array>;
  /** Text embeddings [n, dim] (CAAN); throws a clear error for a model without a text tower, an empty or a too-long text. */
  encodeTexts(texts: readonly string[]): Promise<Float32Array>;
  /** Text embeddings [n, dim] and each text's projected tokens (the input of textRelation); the encodeTexts errors. */
  encodeTextTokens(texts: readonly string[]): Promise<{ emb: Float32Array; tokens: Float32Array[] }>;
  /**
   * Local text-image alignment scores (CAAN): one text's projected tokens (encodeTextTokens) against the listed
   * images (indices into n images' tokens of one side); one score per listed image.
   */
  textRelation(side: ImageModality, text: Float32Array, tokens: Float32Array, n: number, images: Uint32Array): Promise<Float32Array>;
  /** The identity recorded in an index (index-format.ts). */
  identity(weightsSha256: string): ModelIdentity;
  destroy(): Promise<void>;
}

/** What the retrieval functions accept: either engine model as it is, or an adapter. */
export type AnyModel = ZseModel | CaanModel | RetrievalModel;

function noRelation(kind: ModelKind): never {
  throw new SketchError('BAD_WEIGHTS', 'These weights hold only the SA encoder (ret mode); relation scores need the CA and RN tensors.',
    `Use --mode ret, or weights converted from a full ${MODEL_LABEL[kind]} checkpoint.`);
}

export function noTextTower(): never {
  throw new SketchError('BAD_ARGUMENT', 'text queries (and the text and sketch+text eval modes) need a model with a text tower; these are ZSE-SBIR weights, and ZSE-SBIR has none',
    'Use CAAN weights (a safetensors file with sketchgpu.model = "caan").');
}

export class ZseRetrieval implements RetrievalModel {
  readonly kind = 'zse-sbir' as const;
  readonly relationPlanes = 3;
  readonly textContext = undefined;
  constructor(readonly model: ZseModel) {}
  get ctx() { return this.model.ctx; }
  get dim() { return this.model.config.dim; }
  get imageSize() { return this.model.config.imageSize; }
  get tokens() { return this.model.tokens; }
  get maxBatch() { return this.model.maxBatch; }
  get maxPairs() { return this.model.maxPairs; }
  get hasRelation() { return this.model.hasHead; }

  embed(images: Float32Array, n: number, _modality: ImageModality, o: { tokens?: boolean; onBatch?: (done: number) => void } = {}) {
    return this.model.encode(images, n, o); // one SA encoder for both modalities
  }
  cosine(a: Float32Array, na: number, b: Float32Array, nb: number) {
    return this.model.cosine(a, na, b, nb);
  }
  async relationSide(tokens: Float32Array, n: number, side: ImageModality, precompute: boolean): Promise<RelationSide> {
    if (!this.hasRelation) noRelation(this.kind);
    if (!precompute) return { side, n, tokens };
    const p = await this.model.projections(tokens, n, side);
    return { side, n, tokens, planes: [p.q, p.v, p.k] };
  }
  relation(sk: RelationSide, im: RelationSide, pairs: Uint32Array) {
    const proj = (s: RelationSide) => ({ side: s.side, q: s.planes![0]!, v: s.planes![1]!, k: s.planes![2]! });
    const cached = sk.planes && im.planes ? { sketch: proj(sk), photo: proj(im) } : undefined;
    return this.model.relation(sk.tokens, sk.n, im.tokens, im.n, pairs, cached);
  }
  async encodeTexts(_texts: readonly string[]): Promise<Float32Array> {
    return noTextTower();
  }
  async encodeTextTokens(): Promise<{ emb: Float32Array; tokens: Float32Array[] }> {
    return noTextTower();
  }
  async textRelation(): Promise<Float32Array> {
    return noTextTower();
  }
  identity(weightsSha256: string): ModelIdentity {
    return { family: 'zse-sbir', weights_sha256: weightsSha256, config: this.model.config };
  }
  destroy() {
    return this.model.destroy();
  }
}

export class CaanRetrieval implements RetrievalModel {
  readonly kind = 'caan' as const;
  readonly relationPlanes = 0;
  readonly hasRelation = true;
  private tokenizerP: Promise<ClipTokenizer> | undefined;
  private readonly trained?: ReadonlySet<number>;
  /**
   * `tokenizer`: how to get the CLIP tokenizer when a text comes (default: the model's own). `o.trainedTokens`: the
   * token ids whose embedding rows the weights store (LoadedCaanWeights.tokenIds, a compact token table); a text with
   * other words is still embedded, and `o.warn` is told which words no training text had.
   */
  constructor(readonly model: CaanModel, private readonly tokenizer?: () => Promise<ClipTokenizer>,
    private readonly o: { trainedTokens?: Int32Array; warn?: (message: string) => void } = {}) {
    if (o.trainedTokens) this.trained = new Set(o.trainedTokens);
  }
  get ctx() { return this.model.ctx; }
  get dim() { return this.model.config.embed; }
  get imageSize() { return this.model.imageSize; }
  get tokens() { return this.model.tokens; }
  get maxBatch() { return this.model.maxBatch; }
  get maxPairs() { return this.model.maxPairs; }
  get textContext() { return this.model.config.text.context; }

  embed(images: Float32Array, n: number, modality: ImageModality, o: { tokens?: boolean; onBatch?: (done: number) => void } = {}) {
    return this.model.encode(modality, images, n, o);
  }
  cosine(a: Float32Array, na: number, b: Float32Array, nb: number) {
    return this.model.cosine(a, na, b, nb);
  }
  async relationSide(tokens: Float32Array, n: number, side: ImageModality): Promise<RelationSide> {
    return { side, n, tokens };
  }
  relation(sk: RelationSide, im: RelationSide, pairs: Uint32Array) {
    return this.model.relation(sk.tokens, sk.n, im.tokens, im.n, pairs);
  }
  /** The tokenizer, after checking that every text is non-empty and fits the context (clear errors). */
  private async checkedTokenizer(texts: readonly string[]): Promise<ClipTokenizer | undefined> {
    // A failed read (the vocabulary not found) is not kept: the next text tries again.
    const tok = await (this.tokenizerP ??= (this.tokenizer ? this.tokenizer() : Promise.resolve(this.model.tokenizer!)).catch((e) => {
      this.tokenizerP = undefined;
      throw e;
    }));
    if (!tok) return undefined;
    const context = this.model.config.text.context;
    const encoded = texts.map((t, i) => {
      const which = texts.length > 1 ? `text ${i + 1} of ${texts.length}` : 'the text';
      if (t.trim() === '') throw new SketchError('BAD_ARGUMENT', `${which} is empty`, 'Describe what to find, e.g. --text "a giraffe".');
      const ids = tok.encode(t);
      const n = ids.length + 2;
      if (n > context) {
        const preview = t.length > 60 ? `${t.slice(0, 57)}...` : t;
        throw new SketchError('BAD_ARGUMENT', `${which} ("${preview}") is ${n} tokens long with the start and end tokens; the model's text context holds ${context}`,
          `Shorten it by ${n - context} token${n - context > 1 ? 's' : ''} (a word is usually one or two).`);
      }
      return ids;
    });
    if (this.trained && this.o.warn) this.warnUntrained(texts, encoded, this.trained, tok, this.o.warn);
    return tok;
  }
  /** One warning per call naming the words of `texts` (their ids `encoded`) whose token rows the weights do not store. */
  private warnUntrained(texts: readonly string[], encoded: number[][], trained: ReadonlySet<number>, tok: ClipTokenizer, warn: (message: string) => void): void {
    const words = new Set<string>();
    let hit = 0;
    for (const all of encoded) {
      const ids = all.filter((id) => !trained.has(id));
      if (ids.length) hit++;
      for (const id of ids) words.add(tok.decode([id]).trim());
    }
    if (!hit) return;
    const list = [...words].slice(0, 12).map((w) => JSON.stringify(w)).join(', ') + (words.size > 12 ? `, and ${words.size - 12} more` : '');
    const t0 = texts[0]!;
    const which = texts.length === 1 ? `"${t0.length > 60 ? `${t0.slice(0, 57)}...` : t0}"` : `${hit} of ${texts.length} texts`;
    warn(`${which}: ${list} ${words.size > 1 ? 'occur' : 'occurs'} in no training text of these weights (the token embedding is zero), so the text embedding says little about ${words.size > 1 ? 'them' : 'it'}`);
  }
  async encodeTexts(texts: readonly string[]): Promise<Float32Array> {
    // without a tokenizer, the model's own "no tokenizer" error
    return (await this.model.encodeTexts(texts, await this.checkedTokenizer(texts))).emb;
  }
  async encodeTextTokens(texts: readonly string[]): Promise<{ emb: Float32Array; tokens: Float32Array[] }> {
    const r = await this.model.encodeTexts(texts, await this.checkedTokenizer(texts), { tokens: true });
    return { emb: r.emb, tokens: r.tokens! };
  }
  textRelation(side: ImageModality, text: Float32Array, tokens: Float32Array, n: number, images: Uint32Array): Promise<Float32Array> {
    return this.model.textRelation(side, text, tokens, n, images);
  }
  identity(weightsSha256: string): ModelIdentity {
    return { family: 'caan', weights_sha256: weightsSha256, config: this.model.config };
  }
  destroy() {
    return this.model.destroy();
  }
}

/** The retrieval view of a model (the adapter itself when given one). */
export function asRetrievalModel(m: AnyModel): RetrievalModel {
  if (m instanceof ZseModel) return new ZseRetrieval(m);
  if (m instanceof CaanModel) return new CaanRetrieval(m);
  return m;
}

/**
 * A composed sketch+text query: normalise((1 - w)·s + w·t) of the unit sketch embedding s and unit text embedding t
 * (w = 0: the sketch alone, w = 1: the text alone, 0.5: the normalised sum). textOf(i) picks row i's text.
 */
export function composeQueries(sketch: Float32Array, n: number, text: Float32Array, textOf: (i: number) => number, weight: number, dim: number): Float32Array {
  if (!(weight >= 0 && weight <= 1)) throw new SketchError('BAD_ARGUMENT', `the text weight must be in [0, 1], not ${weight}`, 'Use e.g. --text-weight 0.5.');
  const out = new Float32Array(n * dim);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const t = textOf(i);
    let ss = 0;
    for (let d = 0; d < dim; d++) {
      row[d] = (1 - weight) * sketch[i * dim + d]! + weight * text[t * dim + d]!;
      ss += row[d]! * row[d]!;
    }
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let d = 0; d < dim; d++) out[i * dim + d] = row[d]! * inv;
  }
  return out;
}

/** The text prompt for a class folder name in the benchmark: "a photo of a {name with _ and - as spaces}". */
export const CLASS_PROMPT_TEMPLATE = 'a photo of a {class}';
export const classPrompt = (cls: string): string => CLASS_PROMPT_TEMPLATE.replace('{class}', cls.replace(/[_-]/g, ' ').replace(/\s+/g, ' ').trim());
