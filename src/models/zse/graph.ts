import type { Graph } from '../../graph/graph.ts';
import type { Tensor } from '../../graph/tensor.ts';
import { linear } from '../../graph/ops/gemm.ts';
import { conv2d, nchw, tokensLayout } from '../../graph/ops/conv2d.ts';
import { layerNorm } from '../../graph/ops/layernorm.ts';
import { attention, rows } from '../../graph/ops/attention.ts';
import { anchorCosine } from '../../graph/ops/cosine.ts';
import { assembleTokens } from '../../graph/ops/embed.ts';
import { gatherRows } from '../../graph/ops/gather.ts';
import { l2normRows } from '../../graph/ops/l2norm.ts';
import type { ZseConfig, ZseFront } from './config.ts';
import { inceptionV3 } from '../inception.ts';
import { resizeBilinear } from '../../graph/ops/resize.ts';

const SA = 'sa.model';

export interface SaGraphOptions {
  /** Also expose the tokenizer and per-layer tensors (parity tests). */
  debug?: boolean;
}

/** The sizes of a ZSE-form ViT (zse-sbir.md §3.1-3.2); CAAN's sketch and photo towers have the same form. */
export interface VitShape {
  dim: number;
  depth: number;
  heads: number;
  mlpDim: number;
  grid: number;
  imageSize: number;
  /** Conv-stem widths before the last conv; empty: the patch conv alone makes the tokens. */
  stemChannels: number[];
  /** A CNN front instead of the patch conv and stem (ZseConfig.front). */
  front?: ZseFront;
}

/**
 * A ZSE-form ViT under the weight prefix `prefix` (ZSE: `sa.model`) for B images [B,3,S,S] in [-1,1]: learnable
 * tokenizer, pre-LN blocks, final norm. Returns the normalised tokens [B,T,D]. With `debug`, also outputs
 * `patch`, `stem`, `tokens` and `layer<l>`.
 */
export function vitEncoder(g: Graph, v: VitShape, prefix: string, B: number, o: SaGraphOptions = {}): Tensor {
  const { dim: D, grid: G, imageSize: S } = v;
  const T = 1 + G * G;
  const SA = prefix;
  const x = g.input('image', [B, 3, S, S]);
  if (v.front) {
    // The front variant (ZseConfig.front): [-1, 1] -> [0, 1] at the front's input size, InceptionV3 to its block,
    // a 1x1 convolution to D written as token rows. Its tokens stand for both the patch and the stem tokens, whose
    // average (p + p) / 2 is p exactly.
    const F = v.front;
    const r = resizeBilinear(g, x, { N: B, C: 3, H: S, W: S, OH: F.input, OW: F.input, a: 0.5, b: 0.5, label: 'front_input' });
    const fm = inceptionV3(g, r, B, F.input, `${SA}.front.convs`, { end: F.end, widthDivisor: F.widthDivisor });
    if (fm.side !== G) throw new Error(`the front ends at ${fm.side}x${fm.side}, but the token grid is ${G}x${G}`);
    const tok = conv2d(g, fm.out, g.weight(`${SA}.proj.weight`, [D, fm.C, 1, 1]), {
      N: B, Ci: fm.C, H: G, W: G, Co: D, kernel: 1, stride: 1, pad: 0, bias: g.weight(`${SA}.proj.bias`, [D]),
      out: g.intermediate('patch', [B, G * G, D]), outLayout: tokensLayout(D, G * G, G, G), label: 'front_proj',
    });
    return vitBlocks(g, v, SA, B, assembleTokens(g, tok, tok, g.weight(`${SA}.cls`, [1, 1, D]), g.weight(`${SA}.pos_embedding`, [1, T, D]), B, T, D), o, { patch: tok, stem: tok });
  }

  // Learnable tokenizer, §3.1: the 16x16 patch conv (with bias) and the bias-free conv stem, both written
  // straight into [B, G*G, D] token rows, row-major patches.
  const patch = conv2d(g, x, g.weight(`${SA}.embedding.weight`, [D, 3, 16, 16]), {
    N: B, Ci: 3, H: S, W: S, Co: D, kernel: 16, stride: 16, pad: 0,
    bias: g.weight(`${SA}.embedding.bias`, [D]),
    out: g.intermediate('patch', [B, G * G, D]), outLayout: tokensLayout(D, G * G, G, G), label: 'patch_embed',
  });
  let stem = patch;
  if (v.stemChannels.length > 0) {
    let h = x;
    let c = 3;
    let side = S;
    v.stemChannels.forEach((co, i) => {
      const ks = i === 0 ? 7 : 3;
      h = conv2d(g, h, g.weight(`${SA}.scale.seq.${2 * i}.weight`, [co, c, ks, ks]), {
        N: B, Ci: c, H: side, W: side, Co: co, kernel: ks, stride: 2, pad: i === 0 ? 3 : 1, relu: true, label: `stem${i}`,
      });
      side = Math.floor((side + 2 * (i === 0 ? 3 : 1) - ks) / 2) + 1;
      c = co;
    });
    const stemOut = Math.floor((side + 2 - 3) / 2) + 1;
    if (stemOut !== G) throw new Error(`conv stem ends at ${stemOut}x${stemOut}, but the patch grid is ${G}x${G}`);
    const last = v.stemChannels.length;
    stem = conv2d(g, h, g.weight(`${SA}.scale.seq.${2 * last}.weight`, [D, c, 3, 3]), {
      N: B, Ci: c, H: side, W: side, Co: D, kernel: 3, stride: 2, pad: 1,
      inLayout: nchw(c, side, side), out: g.intermediate('stem', [B, G * G, D]), outLayout: tokensLayout(D, G * G, G, G), label: `stem${last}`,
    });
  }
  // Without a stem the patch tokens are averaged with themselves: (p + p) / 2 == p exactly in floating point.
  const t = assembleTokens(g, patch, stem, g.weight(`${SA}.cls`, [1, 1, D]), g.weight(`${SA}.pos_embedding`, [1, T, D]), B, T, D);
  return vitBlocks(g, v, SA, B, t, o, { patch, stem: stem !== patch ? stem : null });
}

/** The pre-LN ViT blocks and the final norm over tokens t [B, T, D]; with `debug`, the tokenizer's tensors too. */
function vitBlocks(g: Graph, v: VitShape, SA: string, B: number, tokens: Tensor, o: SaGraphOptions, tk: { patch: Tensor; stem: Tensor | null }): Tensor {
  const { dim: D, grid: G } = v;
  const T = 1 + G * G;
  let t = tokens;
  if (o.debug) {
    g.output('patch', tk.patch);
    if (tk.stem) g.output('stem', tk.stem);
    g.output('tokens', t);
  }

  // Pre-LN ViT blocks, §3.2: nn.LayerNorm eps 1e-5, packed [q|k|v], scores ×dh^-0.5, exact GELU.
  const dh = D / v.heads;
  const scale = Math.fround(dh ** -0.5);
  for (let l = 0; l < v.depth; l++) {
    const p = `${SA}.transformer.layers.${l}.0`;
    // Each pre-norm LayerNorm is fused into the GEMM that reads it where the kernel allows (gemm option `norm`).
    const ln1 = { gamma: g.weight(`${p}.layer_norm_input.weight`, [D]), beta: g.weight(`${p}.layer_norm_input.bias`, [D]), eps: 1e-5 };
    const qkv = linear(g, t, `${p}.attention.to_qkv`, 3 * D, { norm: ln1, label: `L${l}.qkv` });
    const att = attention(g, qkv, qkv, qkv, {
      B, heads: v.heads, Tq: T, Tk: T, headDim: dh, q: rows(T, 3 * D, 0), k: rows(T, 3 * D, D), v: rows(T, 3 * D, 2 * D), scale, half: true, label: `L${l}.attn`,
    });
    t = linear(g, att, `${p}.attention.to_out.0`, D, { residual: t, label: `L${l}.out` });
    const ln2 = { gamma: g.weight(`${p}.layer_norm_out.weight`, [D]), beta: g.weight(`${p}.layer_norm_out.bias`, [D]), eps: 1e-5 };
    const m = linear(g, t, `${p}.mlp.net.0`, v.mlpDim, { act: 'gelu', half: true, norm: ln2, label: `L${l}.fc1` });
    t = linear(g, m, `${p}.mlp.net.3`, D, { residual: t, label: `L${l}.fc2` });
    if (o.debug) g.output(`layer${l}`, t);
  }
  return layerNorm(g, t, g.weight(`${SA}.transformer.encoder_norm.weight`, [D]), g.weight(`${SA}.transformer.encoder_norm.bias`, [D]), { kind: 'torch', eps: 1e-5, label: 'encoder_norm' });
}

/**
 * The shared SA encoder (zse-sbir.md §3.1-3.2) for a batch of B images [B,3,S,S] in [-1,1].
 * Outputs: `sa` [B,T,D] (every token after the final norm) and `emb` [B,D] (L2-normalised cls, "Ours-Ret").
 */
export function buildSaGraph(g: Graph, cfg: ZseConfig, B: number, o: SaGraphOptions = {}): void {
  const { dim: D, grid: G } = cfg;
  const sa = vitEncoder(g, { ...cfg, heads: cfg.saHeads }, SA, B, o);
  g.output('sa', sa);
  g.output('emb', l2normRows(g, sa, B, D, { ldx: (1 + G * G) * D, label: 'emb' }));
}

export interface PairGraphOptions {
  debug?: boolean;
  /**
   * Take each image's CA input projections as inputs instead of computing them (zse-sbir.md §13): per sketch
   * `sketchQ1`, `sketchV1` (layer1 linears.0/2) and `sketchK2` (layer2 linears.1); per photo `photoQ2`, `photoV2`
   * and `photoK1`, each [N, T, D] (see buildProjectionGraph). The SA tokens are still needed for the residuals.
   */
  cachedProjections?: boolean;
}

/** The per-image CA projections of one modality (§13): [N, T, D] each, for buildPairGraph's cached mode. */
export function buildProjectionGraph(g: Graph, cfg: ZseConfig, N: number, side: 'sketch' | 'photo'): void {
  const { dim: D, grid: G } = cfg;
  const x = g.input('tokens', [N, 1 + G * G, D]);
  const lin = (layer: string, k: number, label: string) => g.output(label, linear(g, x, `ca.encoder.${layer}.0.self_attn.linears.${k}`, D, { label }));
  if (side === 'sketch') {
    lin('layer1', 0, 'q1'); lin('layer1', 2, 'v1'); lin('layer2', 1, 'k2');
  } else {
    lin('layer2', 0, 'q2'); lin('layer2', 2, 'v2'); lin('layer1', 1, 'k1');
  }
}

/**
 * Cross-attention, anchor conv and relation network (zse-sbir.md §3.3-3.5) for P sketch-photo pairs.
 * Inputs: SA tokens of Ns sketches and Np photos, and a u32 table `pairs` [P,2] of (sketch, photo) indices.
 * The CA input projections depend on one image each, so they are computed once per image (§13), or taken
 * precomputed (`cachedProjections`), and the attention reads each pair's rows through the pair table: the per-pair
 * work is attention, output projection, FFN, norms, anchors and the RN.
 * Output: `score` [P,1], the RN's sigmoid.
 */
export function buildPairGraph(g: Graph, cfg: ZseConfig, Ns: number, Np: number, P: number, o: PairGraphOptions = {}): void {
  const { dim: D, grid: G } = cfg;
  const T = 1 + G * G;
  const row = T * D;
  const sk = g.input('sketchTokens', [Ns, T, D]);
  const im = g.input('photoTokens', [Np, T, D]);
  const pairs = g.input('pairs', [P, 2], 'u32');
  const pick = (x: Tensor, rowsIn: number, col: 0 | 1, label: string) => gatherRows(g, x, pairs, { P, rowSize: row, rowsIn, stride: 2, col, label });
  const cached = o.cachedProjections
    ? {
      layer1: { q: g.input('sketchQ1', [Ns, T, D]), v: g.input('sketchV1', [Ns, T, D]), k: g.input('photoK1', [Np, T, D]) },
      layer2: { q: g.input('photoQ2', [Np, T, D]), v: g.input('photoV2', [Np, T, D]), k: g.input('sketchK2', [Ns, T, D]) },
    }
    : null;

  // One post-LN layer per direction (§3.3, quirk 1): layer1 updates the sketch with Q,V from the sketch and K
  // from the photo; layer2 the photo with Q,V from the photo and K from the sketch; both read the SA outputs.
  const side = (layer: 'layer1' | 'layer2', own: Tensor, ownN: number, ownCol: 0 | 1, other: Tensor, otherN: number, otherCol: 0 | 1): Tensor => {
    const p = `ca.encoder.${layer}.0`;
    const c = cached?.[layer];
    // q, k and v stay per image: the attention reads each pair's rows through the pair table. The debug graph
    // gathers them into pair order instead, as explanations read them as outputs.
    const viaTable = !o.debug;
    const perPair = (x: Tensor, n: number, col: 0 | 1, label: string) => (viaTable ? x : pick(x, n, col, label));
    const q = perPair(c ? c.q : linear(g, own, `${p}.self_attn.linears.0`, D, { label: `${layer}.q` }), ownN, ownCol, `${layer}.q.pairs`);
    const k = perPair(c ? c.k : linear(g, other, `${p}.self_attn.linears.1`, D, { label: `${layer}.k` }), otherN, otherCol, `${layer}.k.pairs`);
    const v = perPair(c ? c.v : linear(g, own, `${p}.self_attn.linears.2`, D, { label: `${layer}.v` }), ownN, ownCol, `${layer}.v.pairs`);
    if (o.debug) {
      // The attention's inputs, for explanations: P = softmax(Q Kᵀ / sqrt(d_k)) per head (explain/correspondence.ts).
      g.output(`${layer}.q`, q);
      g.output(`${layer}.k`, k);
    }

    const dk = D / cfg.caHeads;
    const a = attention(g, q, k, v, {
      B: P, heads: cfg.caHeads, Tq: T, Tk: T, headDim: dk, q: rows(T, D), k: rows(T, D), v: rows(T, D), divisor: Math.sqrt(dk), half: true,
      ...(viaTable ? { table: { pairs, q: ownCol, k: otherCol, v: ownCol } } : {}), label: `${layer}.attn`,
    });
    // The residual is each pair's own image's SA tokens, read through the pair table.
    const r1 = linear(g, a, `${p}.self_attn.linears.3`, D, { residual: own, residualTable: { pairs, col: ownCol, rowsPerPair: T }, label: `${layer}.out` });
    const x1 = layerNorm(g, r1, g.weight(`${p}.sublayer.0.norm.a`, [D]), g.weight(`${p}.sublayer.0.norm.b`, [D]), { kind: 'ca', eps: 1e-6, label: `${layer}.norm0` });
    const f = linear(g, x1, `${p}.feed_forward.w_1`, cfg.caFF, { act: 'relu', half: true, label: `${layer}.w1` });
    const r2 = linear(g, f, `${p}.feed_forward.w_2`, D, { residual: x1, label: `${layer}.w2` });
    return layerNorm(g, r2, g.weight(`${p}.sublayer.1.norm.a`, [D]), g.weight(`${p}.sublayer.1.norm.b`, [D]), { kind: 'ca', eps: 1e-6, label: `${layer}.norm1` });
  };
  const caSk = side('layer1', sk, Ns, 0, im, Np, 1);
  const caIm = side('layer2', im, Np, 1, sk, Ns, 0);

  // Anchor "kernel" conv (§3.4, quirk 9): drop cls, read the [G*G, D] rows as a raw [D, G, G] map, conv 2x2/s2,
  // write anchors as [A, C] rows with a = Y*AG + X.
  const AG = cfg.anchorGrid;
  const A = AG * AG;
  const C = cfg.anchorDim;
  const cw = g.weight('conv2d.weight', [C, D, 2, 2]);
  const cb = g.weight('conv2d.bias', [C]);
  const anchors = (x: Tensor, label: string) => conv2d(g, x, cw, {
    N: P, Ci: D, H: G, W: G, Co: C, kernel: 2, stride: 2, pad: 0, bias: cb,
    inLayout: { offset: D, sN: row, sC: G * G, sY: G, sX: 1 },
    out: g.intermediate(label, [P, A, C]), outLayout: tokensLayout(C, A, AG, AG), label,
  });
  const anSk = anchors(caSk, 'anchors.sketch');
  const anIm = anchors(caIm, 'anchors.photo');
  const cos = anchorCosine(g, anSk, anIm, P, A, C);

  // Relation network (§3.5): Linear-ReLU-Linear-ReLU-Linear, then the sigmoid.
  let hdn = cos;
  cfg.rnHidden.forEach((w, i) => {
    hdn = linear(g, hdn, `rn.rn.${3 * i}`, w, { act: 'relu', label: `rn${i}` });
  });
  g.output('score', linear(g, hdn, `rn.rn.${3 * cfg.rnHidden.length}`, 1, { act: 'sigmoid', label: 'rn_out' }));
  if (o.debug) {
    g.output('ca.sketch', caSk);
    g.output('ca.photo', caIm);
    g.output('anchors.sketch', anSk);
    g.output('anchors.photo', anIm);
    g.output('cos', cos);
  }
}
