/**
 * The ZSE-SBIR state dict: its key names and shapes for a given config (../shared/docs/zse-sbir.md §4), the config
 * read back off the shapes, and a validation that names every missing, unexpected or mis-shaped tensor.
 */
import { checkTensors, formatTensorReport, problemCount, type TensorReport } from '../../io/tensor-check.ts';
import { SketchError } from '../../core/errors.ts';
import { numel, type HostTensor } from '../../core/tensor.ts';
import { findStateDict, identifyFile, readTorchCheckpoint, type FileIdentity } from '../../io/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../../io/safetensors.ts';
import { checkFiniteWeights } from '../../io/tensor-check.ts';
import { dequantizeChannels } from '../../io/quantized.ts';
import { weightsHash, type Hasher } from '../../io/weights-hash.ts';
import { f32ToF16, toFloat32 } from '../../core/tensor.ts';
import type { ZseConfig, ZseFront } from './config.ts';
import { Graph } from '../../graph/graph.ts';
import { INCEPTION_BLOCKS, INCEPTION_MIN_INPUT, inceptionOutputShape, inceptionV3, type InceptionBlock } from '../inception.ts';

/** The CA clone the official forward never calls (§3.3, §11 quirk 16): stored in every checkpoint, never used. */
export const DEAD_CA_PREFIX = 'ca.encoder.layers.0.';
/** Head counts when neither the file nor the caller says (the reference ViT-B/16's). */
export const DEFAULT_SA_HEADS = 12;
export const DEFAULT_CA_HEADS = 8;
/** safetensors metadata keys sketchgpu writes and reads. */
export const META_SA_HEADS = 'sketchgpu.sa_heads';
export const META_CA_HEADS = 'sketchgpu.ca_heads';
export const META_CONFIG = 'sketchgpu.config';
/** A front variant's file says its front (`inception_v3/mixed7`), the front's input side and the image side. */
export const META_FRONT = 'sketchgpu.front';
export const META_FRONT_INPUT = 'sketchgpu.front_input';
export const META_IMAGE_SIZE = 'sketchgpu.image_size';
/** The last Keras conv of each InceptionV3 block: which block a front's weights end at. */
const FRONT_LAST_CONV: Record<InceptionBlock, number> = { mixed0: 12, mixed1: 19, mixed2: 26, mixed3: 30, mixed4: 40, mixed5: 50, mixed6: 60, mixed7: 70 };
const FRONT_PREFIX = 'sa.model.front.convs.';

/** The front's weight shapes, read off the network the engine builds (src/models/inception.ts). */
function frontShapes(f: ZseFront): [string, number[]][] {
  const g = new Graph();
  inceptionV3(g, g.input('x', [1, 3, INCEPTION_MIN_INPUT, INCEPTION_MIN_INPUT]), 1, INCEPTION_MIN_INPUT, FRONT_PREFIX.slice(0, -1), { end: f.end, widthDivisor: f.widthDivisor });
  return g.tensors.filter((t) => t.kind === 'weight').map((t): [string, number[]] => [t.name, [...t.shape]]);
}
/** The patch conv is 16x16 with stride 16 in every ViT-B/16-style config (§3.1). */
export const PATCH_SIZE = 16;

const SA = 'sa.model.';
const BLOCK = (l: number) => `${SA}transformer.layers.${l}.0.`;
const CA_LAYERS = ['ca.encoder.layer1.0.', 'ca.encoder.layer2.0.'] as const;

function saShapes(c: ZseConfig): [string, number[]][] {
  const d = c.dim;
  const [s0, s1, s2] = c.stemChannels as [number, number, number];
  const out: [string, number[]][] = c.front ? [
    [`${SA}pos_embedding`, [1, 1 + c.grid * c.grid, d]],
    [`${SA}cls`, [1, 1, d]],
    ...frontShapes(c.front),
    [`${SA}proj.weight`, [d, inceptionOutputShape(c.front.input, c.front).C, 1, 1]],
    [`${SA}proj.bias`, [d]],
  ] : [
    [`${SA}pos_embedding`, [1, 1 + c.grid * c.grid, d]],
    [`${SA}cls`, [1, 1, d]],
    [`${SA}embedding.weight`, [d, 3, PATCH_SIZE, PATCH_SIZE]],
    [`${SA}embedding.bias`, [d]],
    [`${SA}scale.seq.0.weight`, [s0, 3, 7, 7]],
    [`${SA}scale.seq.2.weight`, [s1, s0, 3, 3]],
    [`${SA}scale.seq.4.weight`, [s2, s1, 3, 3]],
    [`${SA}scale.seq.6.weight`, [d, s2, 3, 3]],
  ];
  for (let l = 0; l < c.depth; l++) {
    const b = BLOCK(l);
    out.push(
      [`${b}layer_norm_input.weight`, [d]], [`${b}layer_norm_input.bias`, [d]],
      [`${b}attention.to_qkv.weight`, [3 * d, d]], [`${b}attention.to_qkv.bias`, [3 * d]],
      [`${b}attention.to_out.0.weight`, [d, d]], [`${b}attention.to_out.0.bias`, [d]],
      [`${b}layer_norm_out.weight`, [d]], [`${b}layer_norm_out.bias`, [d]],
      [`${b}mlp.net.0.weight`, [c.mlpDim, d]], [`${b}mlp.net.0.bias`, [c.mlpDim]],
      [`${b}mlp.net.3.weight`, [d, c.mlpDim]], [`${b}mlp.net.3.bias`, [d]],
    );
  }
  out.push([`${SA}transformer.encoder_norm.weight`, [d]], [`${SA}transformer.encoder_norm.bias`, [d]]);
  return out;
}

function caLayerShapes(prefix: string, c: ZseConfig): [string, number[]][] {
  const d = c.dim;
  const out: [string, number[]][] = [];
  for (let k = 0; k < 4; k++) {
    out.push([`${prefix}self_attn.linears.${k}.weight`, [d, d]], [`${prefix}self_attn.linears.${k}.bias`, [d]]);
  }
  out.push(
    [`${prefix}feed_forward.w_1.weight`, [c.caFF, d]], [`${prefix}feed_forward.w_1.bias`, [c.caFF]],
    [`${prefix}feed_forward.w_2.weight`, [d, c.caFF]], [`${prefix}feed_forward.w_2.bias`, [d]],
    [`${prefix}sublayer.0.norm.a`, [d]], [`${prefix}sublayer.0.norm.b`, [d]],
    [`${prefix}sublayer.1.norm.a`, [d]], [`${prefix}sublayer.1.norm.b`, [d]],
  );
  return out;
}

function headShapes(c: ZseConfig): [string, number[]][] {
  const anchors = c.anchorGrid * c.anchorGrid;
  const [h0, h1] = c.rnHidden as [number, number];
  return [
    ['rn.rn.0.weight', [h0, anchors * anchors]], ['rn.rn.0.bias', [h0]],
    ['rn.rn.3.weight', [h1, h0]], ['rn.rn.3.bias', [h1]],
    ['rn.rn.6.weight', [1, h1]], ['rn.rn.6.bias', [1]],
    ['conv2d.weight', [c.anchorDim, c.dim, 2, 2]], ['conv2d.bias', [c.anchorDim]],
  ];
}

/**
 * Every tensor the model uses, in state_dict order, with its shape: 194 at full size (154 SA-only when
 * `hasHead` is false). The dead `ca.encoder.layers.0.*` clone is not among them.
 */
export function zseTensorShapes(config: ZseConfig): Map<string, number[]> {
  const list = saShapes(config);
  if (config.hasHead) {
    for (const p of CA_LAYERS) list.push(...caLayerShapes(p, config));
    list.push(...headShapes(config));
  }
  return new Map(list);
}

/** Parameter count of the used tensors (98,240,536 for ViT-B/16 with the head; 87,946,176 SA-only). */
export function zseParamCount(config: ZseConfig): number {
  let n = 0;
  for (const s of zseTensorShapes(config).values()) n += numel(s);
  return n;
}

export const isDeadKey = (key: string): boolean => key.startsWith(DEAD_CA_PREFIX);

/**
 * Keys as the model names them: a `module.` prefix on every key (nn.DataParallel training, which test.py's
 * lenient loading silently ignores, §11 quirk 18) is stripped, and the dead CA clone is dropped.
 */
export function normalizeZseKeys(tensors: ReadonlyMap<string, HostTensor>): {
  tensors: Map<string, HostTensor>;
  dropped: string[];
  strippedPrefix: string | null;
} {
  const keys = [...tensors.keys()];
  const strip = keys.length > 0 && keys.every((k) => k.startsWith('module.'));
  const out = new Map<string, HostTensor>();
  const dropped: string[] = [];
  for (const [k, t] of tensors) {
    const key = strip ? k.slice('module.'.length) : k;
    if (isDeadKey(key)) dropped.push(key);
    else out.set(key, t);
  }
  return { tensors: out, dropped, strippedPrefix: strip ? 'module.' : null };
}

// ---- config inference -------------------------------------------------------------------------------------------
type Source = [key: string, axis: number];

/** A dimension read off the first present key among `sources`, else null. */
function dimFrom(tensors: ReadonlyMap<string, HostTensor>, sources: Source[]): number | null {
  for (const [key, axis] of sources) {
    const t = tensors.get(key);
    if (t && t.shape.length > axis) return t.shape[axis]!;
  }
  return null;
}

function parseHeads(value: unknown, what: string): number | null {
  if (value === undefined || value === null || value === '') return null;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new SketchError('BAD_WEIGHTS', `${what} is ${JSON.stringify(value)}, not a positive integer`,
      'fix the metadata, or pass the head counts explicitly');
  }
  return n;
}

/**
 * The config the tensors describe. Every size comes from a shape (§4); head counts cannot, so they come from the
 * metadata (`sketchgpu.sa_heads` / `sketchgpu.ca_heads`, else the heads in a `sketchgpu.config` JSON), else 12 / 8.
 * Expects normalized keys (see normalizeZseKeys). Throws BAD_WEIGHTS when the tensors are not ZSE-SBIR's at all.
 *
 * With `partial`, a size whose every source tensor is absent is 0 instead of an error: every tensor that would
 * show it is then absent too, so validateZseWeights names them all as missing (the token width, patch grid and
 * depth are always required, since nearly every shape depends on them).
 */
export function inferZseConfig(
  tensors: ReadonlyMap<string, HostTensor>,
  metadata: Record<string, string> = {},
  opts: { partial?: boolean } = {},
): ZseConfig {
  const keys = [...tensors.keys()];
  if (!keys.some((k) => k.startsWith(SA))) {
    const sample = keys.slice(0, 4).join(', ') + (keys.length > 4 ? `, … (${keys.length} keys)` : '');
    const vitInit = keys.some((k) => k.startsWith('transformer.layers.')) && tensors.has('pos_embedding');
    throw new SketchError('BAD_WEIGHTS',
      `these are not ZSE-SBIR weights: no key starts with "${SA}" (keys: ${sample || 'none'})`,
      vitInit
        ? 'this looks like the ImageNet ViT used to initialise training (sam_ViT-B_16.pth), not the trained model; use the trained checkpoint (best_checkpoint.pth)'
        : 'pass the trained ZSE-SBIR checkpoint (a dict with "model": state_dict), or a safetensors file converted from it');
  }
  const need = (what: string, sources: Source[], required = false): number => {
    const v = dimFrom(tensors, sources);
    if (v === null && opts.partial && !required) return 0;
    if (v === null) {
      throw new SketchError('BAD_WEIGHTS',
        `cannot tell the ${what} of these ZSE-SBIR weights: none of ${sources.map(([k]) => k).join(', ')} is present`,
        'the file is incomplete; convert it again from the original checkpoint');
    }
    return v;
  };

  const dim = need('token width', [[`${SA}cls`, 2], [`${SA}pos_embedding`, 2], [`${SA}embedding.bias`, 0], [`${SA}transformer.encoder_norm.weight`, 0]], true);
  const tokens = need('token count', [[`${SA}pos_embedding`, 1]], true);
  const grid = Math.round(Math.sqrt(tokens - 1));
  if (tokens < 2 || grid * grid !== tokens - 1) {
    throw new SketchError('BAD_WEIGHTS',
      `${SA}pos_embedding has ${tokens} tokens, which is not 1 cls token + a square patch grid`,
      'these weights do not come from ZSE-SBIR (or were cut for a non-square input)');
  }
  let depth = 0;
  const layerRe = /^sa\.model\.transformer\.layers\.(\d+)\./;
  for (const k of keys) {
    const m = layerRe.exec(k);
    if (m) depth = Math.max(depth, Number(m[1]) + 1);
  }
  if (depth === 0) throw new SketchError('BAD_WEIGHTS', `no ViT block found (no key ${SA}transformer.layers.<L>.*)`,
    'the file is incomplete; convert it again from the original checkpoint');
  const blocks = Array.from({ length: depth }, (_, l) => BLOCK(l));
  const mlpDim = need('MLP width', blocks.flatMap((b): Source[] => [[`${b}mlp.net.0.weight`, 0], [`${b}mlp.net.0.bias`, 0], [`${b}mlp.net.3.weight`, 1]]));
  const front = inferFront(tensors, metadata, grid);
  const stemChannels = front ? [] : [
    need('first stem width', [[`${SA}scale.seq.0.weight`, 0], [`${SA}scale.seq.2.weight`, 1]]),
    need('second stem width', [[`${SA}scale.seq.2.weight`, 0], [`${SA}scale.seq.4.weight`, 1]]),
    need('third stem width', [[`${SA}scale.seq.4.weight`, 0], [`${SA}scale.seq.6.weight`, 1]]),
  ];

  const hasHead = keys.some((k) => (k.startsWith('ca.') && !isDeadKey(k)) || k.startsWith('rn.') || k.startsWith('conv2d.'));
  let caFF = 0;
  let anchorDim = 0;
  let rnHidden: number[] = [];
  if (hasHead) {
    caFF = need('CA feed-forward width', CA_LAYERS.flatMap((p): Source[] => [[`${p}feed_forward.w_1.weight`, 0], [`${p}feed_forward.w_1.bias`, 0], [`${p}feed_forward.w_2.weight`, 1]]));
    anchorDim = need('anchor width', [['conv2d.weight', 0], ['conv2d.bias', 0]]);
    rnHidden = [
      need('first RN width', [['rn.rn.0.weight', 0], ['rn.rn.0.bias', 0], ['rn.rn.3.weight', 1]]),
      need('second RN width', [['rn.rn.3.weight', 0], ['rn.rn.3.bias', 0], ['rn.rn.6.weight', 1]]),
    ];
  }

  let configJson: Record<string, unknown> = {};
  if (metadata[META_CONFIG]) {
    try {
      const parsed: unknown = JSON.parse(metadata[META_CONFIG]);
      if (parsed && typeof parsed === 'object') configJson = parsed as Record<string, unknown>;
    } catch {
      throw new SketchError('BAD_WEIGHTS', `metadata ${META_CONFIG} is not valid JSON`, 'convert the checkpoint again');
    }
  }
  const saGiven = parseHeads(metadata[META_SA_HEADS], `metadata ${META_SA_HEADS}`) ??
    parseHeads(configJson['saHeads'], `${META_CONFIG}.saHeads`);
  const caGiven = parseHeads(metadata[META_CA_HEADS], `metadata ${META_CA_HEADS}`) ??
    parseHeads(configJson['caHeads'], `${META_CONFIG}.caHeads`);
  const saHeads = saGiven ?? DEFAULT_SA_HEADS;
  const caHeads = caGiven ?? DEFAULT_CA_HEADS;
  const headsHint = 'give the head counts of the training run: convert with --sa-heads / --ca-heads, or set the ' +
    `metadata ${META_SA_HEADS} / ${META_CA_HEADS}`;
  const source = (given: number | null) => (given === null ? ' (the reference default; the file names no head count)' : '');
  if (dim % saHeads !== 0) {
    throw new SketchError('BAD_WEIGHTS', `token width ${dim} is not divisible by ${saHeads} SA heads${source(saGiven)}`, headsHint);
  }
  if (hasHead && dim % caHeads !== 0) {
    throw new SketchError('BAD_WEIGHTS', `token width ${dim} is not divisible by ${caHeads} CA heads${source(caGiven)}`, headsHint);
  }

  return {
    dim, depth, saHeads, mlpDim, grid, imageSize: front ? front.imageSize : PATCH_SIZE * grid, stemChannels,
    caHeads, caFF, anchorDim,
    // The anchor conv (k2, s2) runs over the raw [dim, G, G] view of the tokens (§3.4), giving floor(G/2) a side.
    anchorGrid: Math.floor(grid / 2),
    rnHidden, hasHead,
    ...(front ? { front: front.front } : {}),
  };
}

/**
 * The front variant (ZseConfig.front) when the tensors hold a front: which block it ends at and its width divisor
 * from the shapes, its input side and the image side from the metadata (shapes cannot tell them), checked against
 * the token grid.
 */
function inferFront(tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string>, grid: number): { front: ZseFront; imageSize: number } | null {
  const first = tensors.get(`${FRONT_PREFIX}conv2d_1.weight`);
  const hasFront = [...tensors.keys()].some((k) => k.startsWith(FRONT_PREFIX));
  if (!hasFront) return null;
  const bad = (what: string) => new SketchError('BAD_WEIGHTS', `these ZSE-SBIR weights have a CNN front (${FRONT_PREFIX}*), but ${what}`,
    `a front variant's file names its front in the metadata ${META_FRONT}, ${META_FRONT_INPUT} and ${META_IMAGE_SIZE} (tools/training writes them); convert it again`);
  if (!first || first.shape.length !== 4 || first.shape[0]! < 1 || 32 % first.shape[0]! !== 0) throw bad(`its first convolution ${FRONT_PREFIX}conv2d_1.weight is ${first ? `[${first.shape.join(', ')}]` : 'missing'}`);
  const widthDivisor = 32 / first.shape[0]!;
  let last = 0;
  for (const k of tensors.keys()) {
    const m = /^sa\.model\.front\.convs\.conv2d_(\d+)\./.exec(k);
    if (m) last = Math.max(last, Number(m[1]));
  }
  const end = INCEPTION_BLOCKS.find((b) => FRONT_LAST_CONV[b] === last);
  if (!end) throw bad(`its last convolution conv2d_${last} ends no InceptionV3 block`);
  if (metadata[META_FRONT] !== `inception_v3/${end}`) throw bad(`the metadata ${META_FRONT} is ${JSON.stringify(metadata[META_FRONT] ?? null)}, not "inception_v3/${end}"`);
  const side = (key: string, min: number) => {
    const v = Number(metadata[key]);
    if (!Number.isSafeInteger(v) || v < min || v > 4096) throw bad(`the metadata ${key} is ${JSON.stringify(metadata[key] ?? null)}, not a side in pixels`);
    return v;
  };
  const input = side(META_FRONT_INPUT, INCEPTION_MIN_INPUT), imageSize = side(META_IMAGE_SIZE, 16);
  const out = inceptionOutputShape(input, { end, widthDivisor });
  if (out.side !== grid) throw bad(`at its ${input} px input the front ends at ${out.side}x${out.side}, and the position embedding holds a ${grid}x${grid} grid`);
  return { front: { kind: 'inception_v3', end, input, widthDivisor }, imageSize };
}

// ---- validation -------------------------------------------------------------------------------------------------
export type ZseWeightsReport = TensorReport;

/** Compares the tensors with the config's full key/shape list (§4); dead-clone keys are ignored, not unexpected. */
export function validateZseWeights(tensors: ReadonlyMap<string, HostTensor>, config: ZseConfig): ZseWeightsReport {
  return checkTensors(tensors, zseTensorShapes(config), isDeadKey);
}

export const isCleanReport = (r: ZseWeightsReport): boolean => problemCount(r) === 0;
export const formatZseReport = formatTensorReport;

// --- Loading: bytes (a .safetensors file or a torch.save checkpoint, told apart by content) to checked weights.
// Keys are normalized, the dead CA clone dropped, the config inferred and every tensor checked against §4 of
// ../shared/docs/zse-sbir.md before anything reaches the GPU.

export interface WeightsOptions {
  /** Head counts, overriding the file's metadata (they cannot be read off shapes). */
  saHeads?: number;
  caHeads?: number;
}

export interface LoadedWeights {
  config: ZseConfig;
  /** The used tensors under the model's key names, in file order, dtypes as stored. */
  tensors: Map<string, HostTensor>;
  /** safetensors metadata, or for a torch checkpoint: its scalar entries as `checkpoint.<key>` plus the heads. */
  metadata: Record<string, string>;
  format: 'safetensors' | 'torch';
  /** Keys dropped on load: the dead `ca.encoder.layers.0.*` clone. */
  dropped: string[];
}

export interface ConvertReport {
  source: string;
  output: string;
  config: ZseConfig;
  dtype: 'f32' | 'f16';
  tensorsKept: number;
  tensorsDropped: number;
  droppedKeys: string[];
  params: number;
  /** Size of the written file. */
  bytes: number;
  hash: string;
}

const scalarString = (v: unknown): string | null =>
  typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'bigint' ? String(v) : null;

/**
 * Parses weights from bytes (no file system needed); `fileName` names them in messages. `id` is the file's
 * identity when the caller (models/load.ts) has already read it.
 */
export function parseWeights(bytes: Uint8Array, fileName: string, opts: WeightsOptions = {}, id: FileIdentity = identifyFile(bytes)): LoadedWeights {
  let raw: Map<string, HostTensor>;
  let metadata: Record<string, string> = {};
  let format: LoadedWeights['format'];
  if (id.kind === 'safetensors') {
    const file = readSafetensors(bytes, fileName);
    raw = file.tensors;
    metadata = { ...file.metadata };
    format = 'safetensors';
    if (metadata['sketchgpu.model'] === 'caan') {
      throw new SketchError('BAD_WEIGHTS', `${fileName} holds CAAN weights, not ZSE-SBIR's`, 'load them with loadCaanWeights / parseCaanWeights and run them with CaanModel');
    }
  } else {
    const ckpt = readTorchCheckpoint(bytes, fileName);
    const found = findStateDict(ckpt.root, fileName);
    raw = found.tensors;
    format = 'torch';
    if (found.container) {
      for (const [k, v] of found.container) {
        const s = scalarString(v);
        if (typeof k === 'string' && s !== null) metadata[`checkpoint.${k}`] = s;
      }
      // A `config` dict beside the weights may carry the head counts.
      const config = found.container.get('config');
      if (config instanceof Map) {
        const sa = scalarString(config.get('sa_heads'));
        const ca = scalarString(config.get('ca_heads'));
        if (sa !== null) metadata[META_SA_HEADS] = sa;
        if (ca !== null) metadata[META_CA_HEADS] = ca;
        // A front variant's config (zse_ref.front_meta): its front, the front's input side, the image side.
        for (const [from, to] of [['front', META_FRONT], ['front_input', META_FRONT_INPUT], ['image_size', META_IMAGE_SIZE]] as const) {
          const v = scalarString(config.get(from));
          if (v !== null) metadata[to] = v;
        }
      }
    }
  }
  if (opts.saHeads !== undefined) metadata[META_SA_HEADS] = String(opts.saHeads);
  if (opts.caHeads !== undefined) metadata[META_CA_HEADS] = String(opts.caHeads);

  const { tensors, dropped } = normalizeZseKeys(dequantizeChannels(raw, fileName).tensors);
  let config: ZseConfig;
  try {
    config = inferZseConfig(tensors, metadata, { partial: true });
  } catch (e) {
    if (e instanceof SketchError) throw new SketchError(e.code, `${fileName}: ${e.message}`, e.hint, { cause: e });
    throw e;
  }
  metadata[META_SA_HEADS] = String(config.saHeads);
  metadata[META_CA_HEADS] = String(config.caHeads);

  const report = validateZseWeights(tensors, config);
  if (!isCleanReport(report)) {
    const counts = [
      report.missing.length && `${report.missing.length} missing`,
      report.unexpected.length && `${report.unexpected.length} unexpected`,
      report.misshaped.length && `${report.misshaped.length} mis-shaped`,
      report.wrongDtype.length && `${report.wrongDtype.length} of a non-float dtype`,
    ].filter(Boolean).join(', ');
    throw new SketchError('BAD_WEIGHTS',
      `${fileName} does not match the ZSE-SBIR layout its shapes imply (dim ${config.dim}, depth ${config.depth}, ` +
      `grid ${config.grid}${config.hasHead ? '' : ', SA only'}): ${counts} tensor(s)\n${formatZseReport(report, tensors)}`,
      'convert the checkpoint again from the original best_checkpoint.pth; a state dict from another model or a ' +
      'partial export cannot run');
  }
  checkFiniteWeights(tensors, fileName);
  return { config, tensors, metadata, format, dropped };
}

// --- Conversion: checked weights to the safetensors file sketchgpu writes (`sketchgpu convert`).

/** A tensor as f32 or f16 (f16 rounded to nearest-even, as torch's .half()). */
function castFloat(t: HostTensor, to: 'f32' | 'f16'): HostTensor {
  if (t.dtype === to) return t;
  const f32 = toFloat32(t);
  if (to === 'f32') return { dtype: 'f32', shape: t.shape, data: f32 };
  const h = new Uint16Array(f32.length);
  for (let i = 0; i < f32.length; i++) h[i] = f32ToF16(f32[i]!);
  return { dtype: 'f16', shape: t.shape, data: h };
}

/**
 * Checked ZSE-SBIR weights as the bytes of a safetensors file for sketchgpu: used tensors only, in f32 or f16, with
 * the config and head counts in the metadata. The report lacks only the output path, which the caller writes to.
 */
export function zseSafetensors(loaded: LoadedWeights, source: { path: string; name: string }, dtype: 'f32' | 'f16', hasher?: () => Hasher): {
  bytes: Uint8Array;
  report: Omit<ConvertReport, 'output'>;
} {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of loaded.tensors) out.set(k, castFloat(t, dtype));

  const checkpointInfo: Record<string, string> = {};
  for (const [k, v] of Object.entries(loaded.metadata)) {
    if (k.startsWith('checkpoint.')) checkpointInfo[k.slice('checkpoint.'.length)] = v;
  }
  const metadata: Record<string, string> = {
    format: 'pt',
    'sketchgpu.model': 'zse-sbir',
    [META_SA_HEADS]: String(loaded.config.saHeads),
    [META_CA_HEADS]: String(loaded.config.caHeads),
    [META_CONFIG]: JSON.stringify(loaded.config),
    'sketchgpu.source': source.name,
    ...(loaded.config.front ? { [META_FRONT]: `inception_v3/${loaded.config.front.end}`, [META_FRONT_INPUT]: String(loaded.config.front.input), [META_IMAGE_SIZE]: String(loaded.config.imageSize) } : {}),
  };
  if (Object.keys(checkpointInfo).length) metadata['sketchgpu.checkpoint'] = JSON.stringify(checkpointInfo);

  const bytes = writeSafetensors(out, metadata);
  let params = 0;
  for (const t of out.values()) params += numel(t.shape);
  return {
    bytes,
    report: {
      source: source.path, config: loaded.config, dtype,
      tensorsKept: out.size, tensorsDropped: loaded.dropped.length, droppedKeys: loaded.dropped,
      params, bytes: bytes.length, hash: weightsHash(out, hasher),
    },
  };
}
