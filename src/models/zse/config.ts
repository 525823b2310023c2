import type { InceptionBlock } from '../inception.ts';

/**
 * ZSE-SBIR dimensions. Everything except the head counts is read off the weight shapes, so smaller
 * configs (tests, the demo weights) run through the same code as ViT-B/16 (../shared/docs/zse-sbir.md §4).
 * Head counts cannot be inferred from shapes; they come from the weights' metadata, else the reference's 12 / 8.
 */
export interface ZseConfig {
  /** Token width D (768 for ViT-B/16). */
  dim: number;
  /** Number of SA (ViT) blocks (12). */
  depth: number;
  /** SA heads (12); head dim = dim / saHeads. */
  saHeads: number;
  /** SA MLP hidden width (3072). */
  mlpDim: number;
  /** Patch grid side G: tokens = 1 + G*G, image side = 16*G (14 -> 224 px). */
  grid: number;
  /** Image side in pixels (16 * grid; with a front, the file says it). */
  imageSize: number;
  /** Conv-stem channel widths before the last conv, e.g. [64, 128, 256]. */
  stemChannels: number[];
  /** CA heads (8); d_k = dim / caHeads. */
  caHeads: number;
  /** CA feed-forward width (1024). */
  caFF: number;
  /** Anchor conv output channels (512). */
  anchorDim: number;
  /** Anchor grid side floor(G/2) (7): anchors = side^2. */
  anchorGrid: number;
  /** RN MLP widths after the cosine input, e.g. [343, 49] (then 1). */
  rnHidden: number[];
  /** Whether the weights hold the CA/RN head (false: an SA-only, ret-mode file). */
  hasHead: boolean;
  /**
   * sketchgpu's variant, not the paper's: an ImageNet-trained CNN front instead of the patch conv and conv stem
   * (src/models/inception.ts). The [-1, 1] input of imageSize px is resized (bilinear, align corners) to `input` px
   * in [0, 1], run through InceptionV3 to `end`, and a 1x1 convolution (`sa.model.proj`) makes the grid x grid
   * tokens. Absent: the official tokenizer.
   */
  front?: ZseFront;
}

export interface ZseFront {
  kind: 'inception_v3';
  end: InceptionBlock;
  /** The front's input side in pixels (299: InceptionV3's own; grid 17 at mixed7). */
  input: number;
  /** Its channel counts divided by this (1; test fixtures use 16). */
  widthDivisor: number;
}

/** The reference configuration (ViT-B/16 at 224 px, official ZSE-SBIR). */
export const ZSE_VIT_B16: ZseConfig = {
  dim: 768, depth: 12, saHeads: 12, mlpDim: 3072, grid: 14, imageSize: 224,
  stemChannels: [64, 128, 256], caHeads: 8, caFF: 1024, anchorDim: 512, anchorGrid: 7,
  rnHidden: [343, 49], hasHead: true,
};
