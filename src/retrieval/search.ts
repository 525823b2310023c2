/**
 * Brute-force cosine search on the GPU: the gallery's unit embeddings stay on the device; a query batch is one GEMM
 * (queries x gallery) and the chunked bitonic top-k, in one command encoder per shard. Galleries larger than one
 * storage binding are split into shards whose candidates merge on the host. Works in Node and the browser.
 */
import type { GpuContext } from '../gpu/device.ts';
import { WeightStore } from '../gpu/weights.ts';
import { Executor, u32View } from '../graph/executor.ts';
import { Graph } from '../graph/graph.ts';
import { gemm } from '../graph/ops/gemm.ts';
import { l2normRows } from '../graph/ops/l2norm.ts';
import { topk, TOPK_MAX } from '../graph/ops/topk.ts';
import { SketchError } from '../core/errors.ts';

export interface SearchHit {
  /** Gallery row. */
  index: number;
  /** Cosine similarity. */
  score: number;
}

interface Shard { start: number; rows: number; store: WeightStore; executors: Map<string, Promise<Executor>> }

export class GallerySearch {
  static readonly MAX_K = TOPK_MAX;
  private readonly shards: Shard[] = [];
  /** Queries per forward. */
  readonly maxQueries: number;

  private constructor(readonly ctx: GpuContext, readonly n: number, readonly dim: number) {
    const maxBind = ctx.device.limits.maxStorageBufferBindingSize;
    const shardRows = Math.max(1, Math.min(n, Math.floor(maxBind / (4 * dim)), 1 << 24));
    this.maxQueries = Math.max(1, Math.min(64, Math.floor(maxBind / (4 * shardRows))));
    for (let start = 0; start < n; start += shardRows) {
      this.shards.push({ start, rows: Math.min(shardRows, n - start), store: new WeightStore(ctx.device), executors: new Map() });
    }
  }

  /** Upload [n, dim] embeddings (unit rows, as an index holds). */
  static create(ctx: GpuContext, embeddings: Float32Array, n: number, dim: number): GallerySearch {
    if (n < 1) throw new SketchError('EMPTY_GALLERY', 'the gallery is empty', 'Index some photos first.');
    if (embeddings.length !== n * dim) throw new RangeError(`expected ${n}x${dim} embeddings, got ${embeddings.length} values`);
    const s = new GallerySearch(ctx, n, dim);
    for (const sh of s.shards) {
      sh.store.upload('gallery', { dtype: 'f32', shape: [sh.rows, dim], data: embeddings.subarray(sh.start * dim, (sh.start + sh.rows) * dim) });
    }
    return s;
  }

  private executor(sh: Shard, q: number, k: number): Promise<Executor> {
    const key = `${q}:${k}`;
    let ex = sh.executors.get(key);
    if (!ex) {
      const g = new Graph({ software: this.ctx.software });
      const qn = l2normRows(g, g.input('q', [q, this.dim]), q, this.dim, { label: 'query.norm' });
      const scores = gemm(g, qn, g.weight('gallery', [sh.rows, this.dim]), { M: q, N: sh.rows, K: this.dim, label: 'cosine' });
      const r = topk(g, scores, q, sh.rows, Math.min(k, TOPK_MAX));
      g.output('values', r.values);
      g.output('indices', r.indices);
      ex = Executor.create(this.ctx, g, sh.store);
      sh.executors.set(key, ex);
    }
    return ex;
  }

  /** The k best gallery rows for each of nq query embeddings (normalised here), best first; ties to the lower row. */
  async search(queries: Float32Array, nq: number, k: number): Promise<SearchHit[][]> {
    if (!Number.isInteger(k) || k < 1) throw new SketchError('BAD_ARGUMENT', `k must be a positive integer, not ${k}`, 'Ask for at least one result.');
    if (k > TOPK_MAX) throw new SketchError('BAD_ARGUMENT', `k is at most ${TOPK_MAX} per query, not ${k}`, 'Ask for fewer results.');
    const kk = Math.min(k, this.n);
    const D = this.dim;
    const out: SearchHit[][] = Array.from({ length: nq }, () => []);
    for (let q0 = 0; q0 < nq; q0 += this.maxQueries) {
      const q = Math.min(this.maxQueries, nq - q0);
      const qs = queries.subarray(q0 * D, (q0 + q) * D);
      for (const sh of this.shards) {
        const kShard = Math.min(kk, sh.rows);
        const ex = await this.executor(sh, q, kShard);
        const r = await ex.run({ q: qs });
        const idx = u32View(r.indices!);
        for (let i = 0; i < q; i++) {
          for (let t = 0; t < kShard; t++) out[q0 + i]!.push({ index: sh.start + idx[i * kShard + t]!, score: r.values![i * kShard + t]! });
        }
      }
    }
    if (this.shards.length > 1) for (const hits of out) hits.sort((a, b) => b.score - a.score || a.index - b.index).splice(kk);
    return out;
  }

  destroy(): void {
    for (const sh of this.shards) {
      for (const ex of sh.executors.values()) void ex.then((e) => e.destroy(), () => undefined);
      sh.store.destroy();
    }
  }
}
