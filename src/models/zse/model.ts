import { API_MISUSE_HINT, SketchError } from '../../core/errors.ts';
import { checkUnitRows } from '../embedding-check.ts';
import { pairChunks, takeRows } from '../pairs.ts';
import type { GpuContext } from '../../gpu/device.ts';
import { batchLimit, ModelRuntime, unitBindingBytes } from '../runtime.ts';
import type { Executor } from '../../graph/executor.ts';
import type { Graph, Precision } from '../../graph/graph.ts';
import type { HostTensor } from '../../core/tensor.ts';
import type { ZseConfig } from './config.ts';
import { buildPairGraph, buildProjectionGraph, buildSaGraph } from './graph.ts';
import { cosineMatrix } from '../../graph/ops/cosine.ts';

export interface ZseModelOptions {
  /** Images per SA forward (default: as many as fit, at most 32). */
  maxBatch?: number;
  /** Sketch-photo pairs per CA+RN forward (default: as many as fit, at most 64). */
  maxPairs?: number;
  /** 'f16': GEMM operands rounded to binary16, f32 accumulation; Linear weights and the activations GEMMs read stored as binary16 (graph.ts Precision). Default 'f32'. */
  precision?: Precision;
  /** Fuse each block's pre-norm LayerNorms into the GEMMs that read them (graph.ts `fuseNorm`; default: on hardware adapters, up to NORM_FUSE_MAX_ROWS rows). The bench compares both. */
  fuseNorm?: boolean;
}

/**
 * One modality's per-image CA input projections (zse-sbir.md §13), each [N, T, D]: for sketches layer1's Q and V
 * and layer2's K; for photos layer2's Q and V and layer1's K. With them a pair needs no projection GEMMs.
 */
export interface ImageProjections {
  side: 'sketch' | 'photo';
  q: Float32Array;
  v: Float32Array;
  k: Float32Array;
}

export interface EncodeResult {
  /** [N, D] L2-normalised SA cls tokens. */
  emb: Float32Array;
  /** [N, T, D] SA output tokens (when asked for): the CA input for relation scores. */
  tokens?: Float32Array;
}

/**
 * ZSE-SBIR on one GPU device: weights uploaded once, one planned executor per batch shape, reused.
 * Dims come from the weights, so test-size and ViT-B/16 models run through the same code.
 */
export class ZseModel {
  readonly tokens: number;
  readonly maxBatch: number;
  readonly maxPairs: number;
  /** GEMM operand precision of every graph this model builds. */
  readonly precision: Precision;

  private constructor(
    readonly ctx: GpuContext,
    readonly config: ZseConfig,
    private readonly runtime: ModelRuntime,
    opts: ZseModelOptions,
  ) {
    this.precision = runtime.precision;
    this.tokens = 1 + config.grid * config.grid;
    // The largest single buffer of one image (one pair), from the plan, decides how many fit one binding.
    const maxBind = ctx.device.limits.maxStorageBufferBindingSize;
    const units = ZseModel.unitGraphs(config);
    this.maxBatch = batchLimit(maxBind, unitBindingBytes(units.image), opts.maxBatch ?? 32);
    this.maxPairs = batchLimit(maxBind, unitBindingBytes(units.pair), opts.maxPairs ?? 64);
  }

  static create(ctx: GpuContext, config: ZseConfig, tensors: ReadonlyMap<string, HostTensor>, opts: ZseModelOptions = {}): ZseModel {
    return new ZseModel(ctx, config, ModelRuntime.create(ctx, tensors, opts.precision ?? 'f32', () => ZseModel.graphKinds(config), { fuseNorm: opts.fuseNorm }), opts);
  }

  /** The graphs of one image and of one sketch-photo pair: what batch sizes and memory checks are read from. */
  static unitGraphs(config: ZseConfig): { image: ((g: Graph) => void)[]; pair: ((g: Graph) => void)[] } {
    return {
      image: [(g) => buildSaGraph(g, config, 1)],
      pair: config.hasHead ? [(g) => buildProjectionGraph(g, config, 1, 'sketch'), (g) => buildPairGraph(g, config, 1, 1, 1)] : [],
    };
  }

  /** A builder of each kind of graph this model makes (batch 1): weightFormats learns from them which weights GEMMs read. */
  private static graphKinds(config: ZseConfig): ((g: Graph) => void)[] {
    const kinds: ((g: Graph) => void)[] = [(g) => buildSaGraph(g, config, 1)];
    if (config.hasHead) {
      kinds.push((g) => buildProjectionGraph(g, config, 1, 'sketch'), (g) => buildProjectionGraph(g, config, 1, 'photo'));
      for (const cachedProjections of [false, true]) kinds.push((g) => buildPairGraph(g, config, 1, 1, 1, { cachedProjections }));
    }
    return kinds;
  }

  /** Bytes of weights on the GPU (about half with the f16 option, whose GEMM weights are stored as binary16). */
  get weightBytes(): number {
    return this.runtime.weightBytes;
  }

  get hasHead(): boolean {
    return this.config.hasHead;
  }

  private executor(key: string, build: (g: Graph) => void): Promise<Executor> {
    return this.runtime.executor(key, build);
  }

  /** Run the SA encoder on n images [n,3,S,S] (normalised to [-1,1]). */
  async encode(images: Float32Array, n: number, o: { tokens?: boolean; onBatch?: (done: number) => void } = {}): Promise<EncodeResult> {
    const { dim: D, imageSize: S } = this.config;
    const px = 3 * S * S;
    if (images.length !== n * px) throw new SketchError('BAD_ARGUMENT', `expected ${n} images of 3x${S}x${S}, got ${images.length} values`, API_MISUSE_HINT);
    const emb = new Float32Array(n * D);
    const tokens = o.tokens ? new Float32Array(n * this.tokens * D) : undefined;
    for (let i = 0; i < n; i += this.maxBatch) {
      const b = Math.min(this.maxBatch, n - i);
      const ex = await this.executor(`sa:${b}`, (g) => buildSaGraph(g, this.config, b));
      const out = await ex.run({ image: images.subarray(i * px, (i + b) * px) }, o.tokens ? ['emb', 'sa'] : ['emb']);
      emb.set(out.emb!, i * D);
      if (tokens) tokens.set(out.sa!, i * this.tokens * D);
      o.onBatch?.(i + b);
    }
    checkUnitRows(emb, n, (r) => `image ${r + 1} of ${n}`);
    return { emb, tokens };
  }

  /** Every intermediate of the SA encoder for one batch (parity tests, explanations). */
  async debugEncode(images: Float32Array, n: number): Promise<Record<string, Float32Array>> {
    const ex = await this.executor(`sa-debug:${n}`, (g) => buildSaGraph(g, this.config, n, { debug: true }));
    return ex.run({ image: images });
  }

  /** The CA input projections of n images from their SA tokens [n, T, D] (§13), to reuse across many pairs. */
  async projections(tokens: Float32Array, n: number, side: 'sketch' | 'photo'): Promise<ImageProjections> {
    this.requireHead();
    const row = this.tokens * this.config.dim;
    const q = new Float32Array(n * row), v = new Float32Array(n * row), k = new Float32Array(n * row);
    const [qn, vn, kn] = side === 'sketch' ? ['q1', 'v1', 'k2'] : ['q2', 'v2', 'k1'];
    for (let i = 0; i < n; i += this.maxBatch) {
      const b = Math.min(this.maxBatch, n - i);
      const ex = await this.executor(`proj:${side}:${b}`, (g) => buildProjectionGraph(g, this.config, b, side));
      const out = await ex.run({ tokens: tokens.subarray(i * row, (i + b) * row) });
      q.set(out[qn]!, i * row);
      v.set(out[vn]!, i * row);
      k.set(out[kn]!, i * row);
    }
    return { side, q, v, k };
  }

  /**
   * Relation-network scores for pairs (sketch i, photo j) given SA tokens of ns sketches and np photos.
   * `pairs` is a flat [P,2] table of indices; the result has one score per pair. With both sides' cached
   * projections (`projections()`), the pairs skip the projection GEMMs.
   */
  async relation(
    sketchTokens: Float32Array, ns: number, photoTokens: Float32Array, np: number, pairs: Uint32Array,
    cached?: { sketch: ImageProjections; photo: ImageProjections },
  ): Promise<Float32Array> {
    this.requireHead();
    const row = this.tokens * this.config.dim;
    const scores = new Float32Array(pairs.length / 2);
    // Only the images a chunk uses travel to the GPU, re-indexed.
    for (const { p0, sketches: skIdx, photos: imIdx, local } of pairChunks(pairs, ns, np, this.maxPairs)) {
      const pc = local.length / 2;
      const take = (src: Float32Array, idx: number[]) => takeRows(src, idx, row);
      const inputs: Record<string, Float32Array | Uint32Array> = { sketchTokens: take(sketchTokens, skIdx), photoTokens: take(photoTokens, imIdx), pairs: local };
      if (cached) {
        Object.assign(inputs, {
          sketchQ1: take(cached.sketch.q, skIdx), sketchV1: take(cached.sketch.v, skIdx), sketchK2: take(cached.sketch.k, skIdx),
          photoQ2: take(cached.photo.q, imIdx), photoV2: take(cached.photo.v, imIdx), photoK1: take(cached.photo.k, imIdx),
        });
      }
      const key = `rn${cached ? '-cached' : ''}:${skIdx.length}:${imIdx.length}:${pc}`;
      const ex = await this.executor(key, (g) => buildPairGraph(g, this.config, skIdx.length, imIdx.length, pc, { cachedProjections: !!cached }));
      const out = await ex.run(inputs, ['score']);
      scores.set(out.score!, p0);
    }
    return scores;
  }

  /** Ret-mode scores: the [na, nb] cosine matrix between two sets of embeddings, on the GPU. */
  async cosine(a: Float32Array, na: number, b: Float32Array, nb: number): Promise<Float32Array> {
    const D = this.config.dim;
    const ex = await this.executor(`cos:${na}:${nb}`, (g) => {
      g.output('cos', cosineMatrix(g, g.input('a', [na, D]), g.input('b', [nb, D]), na, nb, D));
    });
    return (await ex.run({ a, b })).cos!;
  }

  /** Every intermediate of CA + anchors + RN for one set of pairs (parity tests, explanations). */
  async debugRelation(sketchTokens: Float32Array, ns: number, photoTokens: Float32Array, np: number, pairs: Uint32Array): Promise<Record<string, Float32Array>> {
    this.requireHead();
    const P = pairs.length / 2;
    const ex = await this.executor(`rn-debug:${ns}:${np}:${P}`, (g) => buildPairGraph(g, this.config, ns, np, P, { debug: true }));
    return ex.run({ sketchTokens, photoTokens, pairs });
  }

  private requireHead(): void {
    if (!this.config.hasHead) {
      throw new SketchError('BAD_WEIGHTS', 'These weights hold only the SA encoder (ret mode); relation scores need the CA and RN tensors.', 'Use --mode ret, or weights converted from a full ZSE-SBIR checkpoint.');
    }
  }

  destroy(): Promise<void> {
    return this.runtime.destroy();
  }
}
