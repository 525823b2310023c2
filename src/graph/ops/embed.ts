import patchTokensSrc from '../../../shaders/embed/patch_tokens.wgsl';
import tokenEmbedSrc from '../../../shaders/embed/token_embed.wgsl';
import type { Graph } from '../graph.ts';
import { grid1d, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

// The two token-sequence inputs of a transformer: image patches (ViT) and text ids (CLIP).
export const TOKENS: Kernel = { name: 'tokens', wgsl: patchTokensSrc };
export const TOKEN_EMBED: Kernel = { name: 'token_embed', wgsl: tokenEmbedSrc };

/** [B, T, D] tokens from patch-conv and stem tokens [B, T-1, D], the cls token and the position table. */
export function assembleTokens(g: Graph, patch: Tensor, stem: Tensor, cls: Tensor, pos: Tensor, B: number, T: number, D: number): Tensor {
  const out = g.intermediate('tokens', [B, T, D]);
  g.push({ label: 'tokens', kernel: TOKENS, reads: [patch, stem, cls, pos], writes: [out], params: [['B', 'u32', B], ['T', 'u32', T], ['D', 'u32', D]], dispatch: grid1d(Math.ceil((B * T * D) / 64)) });
  return out;
}

/**
 * Token embedding + learned positions for u32 ids [N, L]: out[n, t] = table[ids[n, t]] + pos[t], [N, L, D]
 * (CLIP's text tower input). `pos` holds at least L rows; ids must be < vocab (clamped on the GPU).
 */
export function tokenEmbedding(g: Graph, ids: Tensor, table: Tensor, pos: Tensor, o: { N: number; L: number; D: number; vocab: number; label?: string }): Tensor {
  const out = g.intermediate(o.label ?? 'token_embed', [o.N, o.L, o.D]);
  g.push({ label: o.label ?? 'token_embed', kernel: TOKEN_EMBED, reads: [ids, table, pos], writes: [out], params: [['N', 'u32', o.N], ['L', 'u32', o.L], ['D', 'u32', o.D], ['vocab', 'u32', o.vocab]], dispatch: grid1d(Math.ceil((o.N * o.L * o.D) / 64)) });
  return out;
}
