/**
 * CAAN's inference graphs (docs/caan.md): an image tower (sketch or photo), the text tower, and the sketch-photo
 * local relation. The projections `proj` / `text_projection` are stored [in, out] (CLIP's x @ P); CaanModel uploads
 * them transposed under `<name>.T`, the GEMM's [out, in] layout.
 */
import type { Graph } from '../../graph/graph.ts';
import type { Tensor } from '../../graph/tensor.ts';
import { gemm, linear } from '../../graph/ops/gemm.ts';
import { conv2d, tokensLayout } from '../../graph/ops/conv2d.ts';
import { layerNorm } from '../../graph/ops/layernorm.ts';
import { attention, rows } from '../../graph/ops/attention.ts';
import { anchorBestCosine, anchorCosine } from '../../graph/ops/cosine.ts';
import { tokenEmbedding } from '../../graph/ops/embed.ts';
import { gatherRows } from '../../graph/ops/gather.ts';
import { l2normRows } from '../../graph/ops/l2norm.ts';
import { vitEncoder } from '../zse/graph.ts';
import { anchorGrid, imageSize, imageTokens, type CaanConfig } from './config.ts';

/** Name of the [out, in] copy of a stored [in, out] projection. */
export const transposedName = (name: string): string => `${name}.T`;
export const PROJECTIONS = ['sketch.proj', 'photo.proj', 'text.text_projection'] as const;

export interface CaanGraphOptions {
  /** Also expose per-stage tensors (parity tests). */
  debug?: boolean;
  /** Text graph: also output `proj` [B,L,E], every token through text_projection (the text-image alignment's input). */
  tokens?: boolean;
}

/**
 * One image tower for B images [B,3,S,S] in [-1,1]: ZSE's ViT form under `sketch.` or `photo.`, then every
 * token through `proj`. Outputs `proj` [B,T,E] (the projected tokens: the alignment's input) and `emb` [B,E] (the
 * L2-normalised projected cls: the global embedding). Debug: `patch`, `stem`, `tokens` (assembled), `layer<l>`, `ln`.
 */
export function buildImageTowerGraph(g: Graph, c: CaanConfig, side: 'sketch' | 'photo', B: number, o: CaanGraphOptions = {}): void {
  const { width: D, grid: G } = c.image;
  const T = imageTokens(c), E = c.embed;
  const ln = vitEncoder(g, { dim: D, depth: c.image.depth, heads: c.image.heads, mlpDim: c.image.mlp, grid: G, imageSize: imageSize(c), stemChannels: c.image.stem }, side, B, o);
  const tok = gemm(g, ln, g.weight(transposedName(`${side}.proj`), [E, D]), { M: B * T, N: E, K: D, out: g.intermediate('proj', [B, T, E]), label: 'proj' });
  if (o.debug) g.output('ln', ln);
  g.output('proj', tok);
  g.output('emb', l2normRows(g, tok, B, E, { ldx: T * E, label: 'emb' }));
}

/**
 * The text tower (CLIP's) for B token rows of length L <= context: inputs `ids` [B,L] u32 and `eotRows` [B] u32,
 * the absolute row b*L + (EOT position) of each sequence (the host takes the argmax of the ids, CLIP's pooling).
 * Pre-LN blocks with a causal mask (so the rows up to EOT do not depend on what follows, and L can stop at the
 * batch's longest sequence), QuickGELU MLP, ln_final. Outputs `features` [B,width] (ln_final at EOT) and `emb`
 * [B,E] (its projection, L2-normalised); with `tokens`, `proj` [B,L,E]. Debug: `tokens`, `layer<l>`, `ln`.
 */
export function buildTextGraph(g: Graph, c: CaanConfig, B: number, L: number, o: CaanGraphOptions = {}): void {
  const { width: W, heads, vocab, context } = c.text;
  if (L > context) throw new Error(`text graph: ${L} tokens is more than the context of ${context}`);
  const ids = g.input('ids', [B, L], 'u32');
  const eot = g.input('eotRows', [B], 'u32');
  let x = tokenEmbedding(g, ids, g.weight('text.token_embedding.weight', [vocab, W]), g.weight('text.positional_embedding', [context, W]), { N: B, L, D: W, vocab, label: 'token_embed' });
  if (o.debug) g.output('tokens', x);
  const dh = W / heads;
  for (let l = 0; l < c.text.depth; l++) {
    const p = `text.transformer.resblocks.${l}`;
    // Each pre-norm LayerNorm is fused into the GEMM that reads it where the kernel allows (gemm option `norm`).
    const ln1 = { gamma: g.weight(`${p}.ln_1.weight`, [W]), beta: g.weight(`${p}.ln_1.bias`, [W]), eps: 1e-5 };
    const qkv = gemm(g, x, g.weight(`${p}.attn.in_proj_weight`, [3 * W, W]), { M: B * L, N: 3 * W, K: W, bias: g.weight(`${p}.attn.in_proj_bias`, [3 * W]), out: g.intermediate(`T${l}.qkv`, [B, L, 3 * W]), norm: ln1, label: `T${l}.qkv` });
    // nn.MultiheadAttention scales q by dh^-0.5 before the dot product; scaling the score instead differs by rounding.
    const a = attention(g, qkv, qkv, qkv, { B, heads, Tq: L, Tk: L, headDim: dh, q: rows(L, 3 * W, 0), k: rows(L, 3 * W, W), v: rows(L, 3 * W, 2 * W), scale: Math.fround(dh ** -0.5), causal: true, half: true, label: `T${l}.attn` });
    x = linear(g, a, `${p}.attn.out_proj`, W, { residual: x, label: `T${l}.out` });
    const ln2 = { gamma: g.weight(`${p}.ln_2.weight`, [W]), beta: g.weight(`${p}.ln_2.bias`, [W]), eps: 1e-5 };
    const m = linear(g, x, `${p}.mlp.c_fc`, c.text.mlp, { act: 'quickgelu', half: true, norm: ln2, label: `T${l}.c_fc` });
    x = linear(g, m, `${p}.mlp.c_proj`, W, { residual: x, label: `T${l}.c_proj` });
    if (o.debug) g.output(`layer${l}`, x);
  }
  const ln = layerNorm(g, x, g.weight('text.ln_final.weight', [W]), g.weight('text.ln_final.bias', [W]), { kind: 'torch', eps: 1e-5, label: 'ln_final' });
  if (o.debug) g.output('ln', ln);
  const feat = g.output('features', gatherRows(g, ln, eot, { P: B, rowSize: W, rowsIn: B * L, stride: 1, col: 0, label: 'eot' }));
  const P = g.weight(transposedName('text.text_projection'), [c.embed, W]);
  const proj = gemm(g, feat, P, { M: B, N: c.embed, K: W, label: 'text_projection' });
  g.output('emb', l2normRows(g, proj, B, c.embed, { label: 'emb' }));
  if (o.tokens) g.output('proj', gemm(g, ln, P, { M: B * L, N: c.embed, K: W, out: g.intermediate('proj', [B, L, c.embed]), label: 'token_projection' }));
}

/** One side of a cross-attention layer's pairs: x holds sequences of T rows, read per pair through column `col` of `pairs`. */
interface PairSide { x: Tensor; T: number; col: 0 | 1 }

/**
 * One alignment layer `align.<name>` for P pairs: the `own` sequence (queries) updated from the `other` (keys,
 * values); x' = LN(x + CA(x, y)), out = LN(x' + FFN(x')) with ZSE's CA norm (unbiased std + 1e-6) and a ReLU FFN.
 * The q/k/v projections run once per sequence; the attention reads them, and the output projection its residual,
 * per pair through the pair table. No key mask: callers pass only real keys
 * (a text's tokens up to its EOT), which is what the reference's mask leaves.
 */
function crossLayer(g: Graph, c: CaanConfig, name: string, pairs: Tensor, P: number, own: PairSide, other: PairSide): Tensor {
  const E = c.embed, p = `align.${name}`;
  // q, k and v stay per sequence: the attention reads each pair's rows through the pair table.
  const q = linear(g, own.x, `${p}.self_attn.linears.0`, E, { label: `${name}.q` });
  const k = linear(g, other.x, `${p}.self_attn.linears.1`, E, { label: `${name}.k` });
  const v = linear(g, other.x, `${p}.self_attn.linears.2`, E, { label: `${name}.v` });
  const dk = E / c.align.heads;
  const a = attention(g, q, k, v, {
    B: P, heads: c.align.heads, Tq: own.T, Tk: other.T, headDim: dk, q: rows(own.T, E), k: rows(other.T, E), v: rows(other.T, E), divisor: Math.sqrt(dk), half: true,
    table: { pairs, q: own.col, k: other.col, v: other.col }, label: `${name}.attn`,
  });
  const r1 = linear(g, a, `${p}.self_attn.linears.3`, E, { residual: own.x, residualTable: { pairs, col: own.col, rowsPerPair: own.T }, label: `${name}.out` });
  const x1 = layerNorm(g, r1, g.weight(`${p}.sublayer.0.norm.a`, [E]), g.weight(`${p}.sublayer.0.norm.b`, [E]), { kind: 'ca', eps: 1e-6, label: `${name}.norm0` });
  const f = linear(g, x1, `${p}.feed_forward.w_1`, c.align.ff, { act: 'relu', half: true, label: `${name}.w1` });
  const r2 = linear(g, f, `${p}.feed_forward.w_2`, E, { residual: x1, label: `${name}.w2` });
  return layerNorm(g, r2, g.weight(`${p}.sublayer.1.norm.a`, [E]), g.weight(`${p}.sublayer.1.norm.b`, [E]), { kind: 'ca', eps: 1e-6, label: `${name}.norm1` });
}

/** ZSE's anchor conv (2x2 stride 2 on the raw [G*G, E] -> [E, G, G] view of the non-cls rows, quirk 9): [P, A, C]. */
function anchors(g: Graph, c: CaanConfig, x: Tensor, P: number, label: string): Tensor {
  const E = c.embed, G = c.image.grid, T = imageTokens(c);
  const AG = anchorGrid(c), A = AG * AG, C = c.align.anchorDim;
  return conv2d(g, x, g.weight('align.anchor.weight', [C, E, 2, 2]), {
    N: P, Ci: E, H: G, W: G, Co: C, kernel: 2, stride: 2, pad: 0, bias: g.weight('align.anchor.bias', [C]),
    inLayout: { offset: E, sN: T * E, sC: G * G, sY: G, sX: 1 },
    out: g.intermediate(label, [P, A, C]), outLayout: tokensLayout(C, A, AG, AG), label,
  });
}

/**
 * Sketch-photo local relation (docs/caan.md "Alignment") for P pairs: inputs the projected tower tokens of Ns
 * sketches and Np photos ([N,T,E]) and a u32 table `pairs` [P,2] of (sketch, photo) indices. align.sk_im updates
 * the sketch (queries) from the photo (keys, values), align.im_sk the photo from the sketch, both from the tower
 * outputs; post-LN with ZSE's CA norm and a ReLU FFN. Then ZSE's anchor conv (raw view, zse-sbir.md §3.4 quirk 9),
 * the anchor cosine matrix and the RN. The projections of each image are computed once and read per pair through the table.
 * Output `score` [P,1]; debug: `ca.sketch`, `ca.photo`, `anchors.sketch`, `anchors.photo`, `cos`.
 */
export function buildRelationGraph(g: Graph, c: CaanConfig, Ns: number, Np: number, P: number, o: CaanGraphOptions = {}): void {
  const E = c.embed, T = imageTokens(c);
  const sk: PairSide = { x: g.input('sketchTokens', [Ns, T, E]), T, col: 0 };
  const im: PairSide = { x: g.input('photoTokens', [Np, T, E]), T, col: 1 };
  const pairs = g.input('pairs', [P, 2], 'u32');
  const caSk = crossLayer(g, c, 'sk_im', pairs, P, sk, im);
  const caIm = crossLayer(g, c, 'im_sk', pairs, P, im, sk);
  const anSk = anchors(g, c, caSk, P, 'anchors.sketch');
  const anIm = anchors(g, c, caIm, P, 'anchors.photo');
  const A = anchorGrid(c) ** 2;
  const cos = anchorCosine(g, anSk, anIm, P, A, c.align.anchorDim);
  let h = cos;
  c.align.rnHidden.forEach((w, i) => {
    h = linear(g, h, `align.rn.rn.${3 * i}`, w, { act: 'relu', label: `rn${i}` });
  });
  g.output('score', linear(g, h, `align.rn.rn.${3 * c.align.rnHidden.length}`, 1, { act: 'sigmoid', label: 'rn_out' }));
  if (o.debug) {
    g.output('ca.sketch', caSk);
    g.output('ca.photo', caIm);
    g.output('anchors.sketch', anSk);
    g.output('anchors.photo', anIm);
    g.output('cos', cos);
  }
}

/**
 * Text-image local alignment (docs/caan.md "Alignment") for P pairs of Nt texts and Ni images of one side
 * (`which`: 'sk' sketches, 'im' photos): inputs `textTokens` [Nt,L,E] (projected text tokens, every text exactly L
 * tokens long, SOT..EOT: the caller groups texts by length, so no key is padding and no mask is needed),
 * `imageTokens` [Ni,T,E] (projected tower tokens) and `pairs` [P,2] of (text, image) indices.
 * align.<which>_txt updates the image tokens from the words, align.txt_<which> the words from the image, both from
 * the tower outputs. The image's anchors (the anchor conv as in the sketch-photo relation) meet the words through
 * align.text_anchor; each anchor keeps its best word's cosine, and align.rn_text maps the A best cosines to a
 * sigmoid score. Output `score` [P,1]; debug: `ca.image`, `ca.text`, `best` [P,A].
 */
export function buildTextRelationGraph(g: Graph, c: CaanConfig, which: 'sk' | 'im', Nt: number, L: number, Ni: number, P: number, o: CaanGraphOptions = {}): void {
  const E = c.embed, T = imageTokens(c);
  const txt: PairSide = { x: g.input('textTokens', [Nt, L, E]), T: L, col: 0 };
  const img: PairSide = { x: g.input('imageTokens', [Ni, T, E]), T, col: 1 };
  const pairs = g.input('pairs', [P, 2], 'u32');
  const caImg = crossLayer(g, c, `${which}_txt`, pairs, P, img, txt);
  const caTxt = crossLayer(g, c, `txt_${which}`, pairs, P, txt, img);
  const A = anchorGrid(c) ** 2, C = c.align.anchorDim;
  const an = anchors(g, c, caImg, P, 'anchors');
  const words = linear(g, caTxt, 'align.text_anchor', C, { label: 'text_anchor' });
  const best = anchorBestCosine(g, an, words, P, A, L, C, 'best');
  const h = linear(g, best, 'align.rn_text.0', c.align.rnTextHidden, { act: 'relu', label: 'rn_text0' });
  g.output('score', linear(g, h, 'align.rn_text.3', 1, { act: 'sigmoid', label: 'rn_text_out' }));
  if (o.debug) {
    g.output('ca.image', caImg);
    g.output('ca.text', caTxt);
    g.output('best', best);
  }
}
