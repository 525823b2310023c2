/**
 * ZSE-SBIR weights from bytes: a .safetensors file or a torch.save checkpoint, told apart by content. Keys are
 * normalized, the dead CA clone dropped, the config inferred and every tensor checked against §4 of
 * ../shared/docs/zse-sbir.md before anything reaches the GPU.
 */
import { SketchError } from '../errors.ts';
import type { ZseConfig } from '../models/zse/config.ts';
import {
  formatZseReport, inferZseConfig, isCleanReport, META_CA_HEADS, META_SA_HEADS, normalizeZseKeys,
  validateZseWeights,
} from '../models/zse/weights.ts';
import { parseCaanWeights, type LoadedCaanWeights } from '../models/caan/weights.ts';
import { checkModelKind, detectModelKind, type ModelKind } from '../models/kind.ts';
import { identifyFile, isHostTensor, readTorchCheckpoint } from './checkpoint.ts';
import { readSafetensors } from './safetensors.ts';
import { type HostTensor } from './tensor.ts';
import { checkFiniteWeights } from './tensor-check.ts';

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

const STATE_DICT_KEYS = ['model', 'state_dict', 'model_state_dict', 'net'];

function tensorEntries(m: Map<unknown, unknown>): [string, HostTensor][] | null {
  const out: [string, HostTensor][] = [];
  for (const [k, v] of m) if (typeof k === 'string' && isHostTensor(v)) out.push([k, v]);
  return out.length > 0 ? out : null;
}

/**
 * The state dict inside a checkpoint's root object: the root itself when it maps names to tensors, else the dict
 * under 'model' (the official save_checkpoint) or 'state_dict' (Lightning and many others).
 */
export function findStateDict(root: unknown, fileName: string): {
  tensors: Map<string, HostTensor>;
  container: Map<unknown, unknown> | null;
  path: string;
} {
  if (!(root instanceof Map)) {
    throw new SketchError('BAD_WEIGHTS', `${fileName} holds ${isHostTensor(root) ? 'a single tensor' : 'no dict'}, not a state dict`,
      "save the weights as a dict: torch.save({'model': model.state_dict()}, path)");
  }
  for (const key of STATE_DICT_KEYS) {
    const inner = root.get(key);
    if (inner instanceof Map) {
      const entries = tensorEntries(inner);
      if (entries) return { tensors: new Map(entries), container: root, path: key };
    }
  }
  const entries = tensorEntries(root);
  if (entries) return { tensors: new Map(entries), container: null, path: '' };
  const keys = [...root.keys()].map(String);
  throw new SketchError('BAD_WEIGHTS',
    `${fileName} has no state dict: no tensors at its top level or under ${STATE_DICT_KEYS.map((k) => `'${k}'`).join(', ')} (top-level keys: ${keys.slice(0, 8).join(', ') || 'none'})`,
    "save the weights as torch.save({'model': model.state_dict()}, path)");
}

const scalarString = (v: unknown): string | null =>
  typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'bigint' ? String(v) : null;

/** Parses weights from bytes (no file system needed); `fileName` names them in messages. */
export function parseWeights(bytes: Uint8Array, fileName: string, opts: WeightsOptions = {}): LoadedWeights {
  const id = identifyFile(bytes);
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
      }
    }
  }
  if (opts.saHeads !== undefined) metadata[META_SA_HEADS] = String(opts.saHeads);
  if (opts.caHeads !== undefined) metadata[META_CA_HEADS] = String(opts.caHeads);

  const { tensors, dropped } = normalizeZseKeys(raw);
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

export type LoadedModelWeights =
  | { kind: 'zse-sbir'; weights: LoadedWeights }
  | { kind: 'caan'; weights: LoadedCaanWeights };

/**
 * Either model's weights from the bytes of a file, detecting which from its content (`sketchgpu.model` = "caan"
 * metadata, else ZSE-SBIR); `model` (the CLI's --model) must then agree, or the error names both. The browser's
 * counterpart of loadModelWeights (src/io/weights.ts).
 */
export function parseModelWeights(bytes: Uint8Array, fileName: string, opts: WeightsOptions & { model?: ModelKind } = {}): LoadedModelWeights {
  const kind = detectModelKind(bytes);
  checkModelKind(kind, opts.model, fileName);
  return kind === 'caan'
    ? { kind, weights: parseCaanWeights(bytes, fileName) }
    : { kind, weights: parseWeights(bytes, fileName, opts) };
}
