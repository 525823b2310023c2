/**
 * CAAN dimensions (docs/caan.md "Config"). Unlike ZSE-SBIR's, they are not read off shapes: a CAAN weights file
 * carries them as JSON in the safetensors metadata `sketchgpu.config` (beside `sketchgpu.model` = "caan"), and
 * every tensor is then checked against them.
 */
import { SketchError } from '../../core/errors.ts';
import { CLIP_CONTEXT_LENGTH, CLIP_VOCAB_SIZE } from '../../text/clip-tokenizer.ts';

export interface CaanImageConfig {
  /** Token width of each image tower. */
  width: number;
  depth: number;
  heads: number;
  mlp: number;
  /** Patch grid side G: image side 16 * G, tokens 1 + G*G. */
  grid: number;
  /** Conv-stem widths before the last conv (ZSE's learnable tokenizer); [] = patch conv only. */
  stem: number[];
}

export interface CaanTextConfig {
  /** Token embedding rows: CLIP's 49,408 (ids map to CLIP's BPE vocabulary exactly). */
  vocab: number;
  /** Positional rows: the longest token sequence (CLIP's 77, SOT and EOT included). */
  context: number;
  width: number;
  depth: number;
  heads: number;
  mlp: number;
}

export interface CaanAlignConfig {
  /** Cross-attention heads (the layers work at the embed width). */
  heads: number;
  /** Cross-attention feed-forward width. */
  ff: number;
  /** Anchor conv output channels. */
  anchorDim: number;
  /** Sketch-photo relation network widths after the A*A cosine input (then 1). */
  rnHidden: number[];
  /** Image-text relation network width after its A input (then 1). */
  rnTextHidden: number;
}

export interface CaanConfig {
  image: CaanImageConfig;
  text: CaanTextConfig;
  /** Joint embedding width: image `proj` and `text_projection` map into it; the alignment layers work in it. */
  embed: number;
  align: CaanAlignConfig;
}

export const META_MODEL = 'sketchgpu.model';
export const META_CONFIG = 'sketchgpu.config';
export const CAAN_MODEL_NAME = 'caan';

/** Image side in pixels. */
export const imageSize = (c: CaanConfig): number => 16 * c.image.grid;
/** Tokens per image (cls + patches). */
export const imageTokens = (c: CaanConfig): number => 1 + c.image.grid * c.image.grid;
/** Anchor grid side floor(G/2) (ZSE's anchor conv, zse-sbir.md §3.4). */
export const anchorGrid = (c: CaanConfig): number => Math.floor(c.image.grid / 2);

/** ViT-B/16 towers at 224 px + CLIP ViT-B's text tower (tools/reference/caan_ref.py CaanConfig.full). */
export const CAAN_FULL: CaanConfig = {
  image: { width: 768, depth: 12, heads: 12, mlp: 3072, grid: 14, stem: [64, 128, 256] },
  text: { vocab: CLIP_VOCAB_SIZE, context: CLIP_CONTEXT_LENGTH, width: 512, depth: 12, heads: 8, mlp: 2048 },
  embed: 512,
  align: { heads: 8, ff: 1024, anchorDim: 512, rnHidden: [343, 49], rnTextHidden: 49 },
};

const HINT = 'write the config as tools/reference/caan_ref.py does (CaanConfig.to_json) into the safetensors metadata sketchgpu.config';

/** Parses and checks the config JSON (the object form of `sketchgpu.config`); `where` names the source in errors. */
export function parseCaanConfig(value: unknown, where: string): CaanConfig {
  const fail = (msg: string): never => {
    throw new SketchError('BAD_WEIGHTS', `${where}: ${msg}`, HINT);
  };
  const obj = (v: unknown, path: string): Record<string, unknown> =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(`${path} is not an object`);
  const int = (o: Record<string, unknown>, key: string, path: string, min = 1): number => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return fail(`${path}.${key} is ${JSON.stringify(v)}, not an integer >= ${min}`);
    return v;
  };
  const ints = (o: Record<string, unknown>, key: string, path: string): number[] => {
    const v = o[key];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !Number.isSafeInteger(x) || x < 1)) return fail(`${path}.${key} is ${JSON.stringify(v)}, not a list of positive integers`);
    return v as number[];
  };
  const root = obj(value, 'config');
  const im = obj(root['image'], 'image');
  const tx = obj(root['text'], 'text');
  const al = obj(root['align'], 'align');
  const c: CaanConfig = {
    image: { width: int(im, 'width', 'image'), depth: int(im, 'depth', 'image'), heads: int(im, 'heads', 'image'), mlp: int(im, 'mlp', 'image'), grid: int(im, 'grid', 'image', 2), stem: ints(im, 'stem', 'image') },
    text: { vocab: int(tx, 'vocab', 'text'), context: int(tx, 'context', 'text', 2), width: int(tx, 'width', 'text'), depth: int(tx, 'depth', 'text'), heads: int(tx, 'heads', 'text'), mlp: int(tx, 'mlp', 'text') },
    embed: int(root, 'embed', 'config'),
    align: { heads: int(al, 'heads', 'align'), ff: int(al, 'ff', 'align'), anchorDim: int(al, 'anchorDim', 'align'), rnHidden: ints(al, 'rnHidden', 'align'), rnTextHidden: int(al, 'rnTextHidden', 'align') },
  };
  if (c.image.stem.length !== 0 && c.image.stem.length !== 3) fail(`image.stem has ${c.image.stem.length} widths; ZSE's conv stem has 3 (or none: [])`);
  if (c.align.rnHidden.length !== 2) fail(`align.rnHidden has ${c.align.rnHidden.length} widths, expected 2`);
  if (c.image.width % c.image.heads) fail(`image.width ${c.image.width} is not divisible by image.heads ${c.image.heads}`);
  if (c.text.width % c.text.heads) fail(`text.width ${c.text.width} is not divisible by text.heads ${c.text.heads}`);
  if (c.embed % c.align.heads) fail(`embed ${c.embed} is not divisible by align.heads ${c.align.heads}`);
  if (c.text.vocab !== CLIP_VOCAB_SIZE) fail(`text.vocab is ${c.text.vocab}; the engine tokenizes with CLIP's BPE, whose ids need ${CLIP_VOCAB_SIZE} rows`);
  return c;
}
