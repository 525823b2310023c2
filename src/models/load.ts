/**
 * Which model a weights file holds, and its weights from bytes (pure, browser-safe): detection, then the model's own
 * parser (models/zse/weights.ts, models/caan/weights.ts). A CAAN file says so in its safetensors metadata
 * (`sketchgpu.model` = "caan", docs/caan.md); ZSE-SBIR files (converted safetensors, torch checkpoints) carry no
 * such key, so everything else is taken for ZSE-SBIR and its own parser says what is wrong with it.
 * Reading files from disk (Node) is models/load-file.ts.
 */
import { SketchError } from '../core/errors.ts';
import { identifyFile, type FileIdentity } from '../io/checkpoint.ts';
import { readSafetensorsMetadata } from '../io/safetensors.ts';
import { parseCaanWeights, type LoadedCaanWeights } from './caan/weights.ts';
import { parseWeights, type LoadedWeights, type WeightsOptions } from './zse/weights.ts';

export type ModelKind = 'zse-sbir' | 'caan';

/** How messages name each model. */
export const MODEL_LABEL: Record<ModelKind, string> = { 'zse-sbir': 'ZSE-SBIR', caan: 'CAAN' };

/** The `--model` values of the CLI. */
export const MODEL_CHOICES = ['zse', 'caan'] as const;

export function parseModelChoice(v: string): ModelKind {
  if (v === 'zse' || v === 'zse-sbir') return 'zse-sbir';
  if (v === 'caan') return 'caan';
  throw new SketchError('BAD_ARGUMENT', `--model must be "zse" or "caan", not "${v}"`, 'Pass --model zse or --model caan, or leave it out to detect the model from the weights.');
}

/** The `sketchgpu.model` metadata of a safetensors file, read from its header alone; null when absent or not safetensors. */
export function safetensorsModelTag(bytes: Uint8Array, id: FileIdentity = identifyFile(bytes)): string | null {
  if (id.kind !== 'safetensors') return null;
  const tag = readSafetensorsMetadata(bytes)?.['sketchgpu.model'];
  return typeof tag === 'string' ? tag : null;
}

/** The model a weights file holds: "caan" when its metadata says so, else "zse-sbir". */
export function detectModelKind(bytes: Uint8Array, id: FileIdentity = identifyFile(bytes)): ModelKind {
  return safetensorsModelTag(bytes, id) === 'caan' ? 'caan' : 'zse-sbir';
}

/** Refuses weights of another model than the one asked for (`--model`), naming both. */
export function checkModelKind(found: ModelKind, wanted: ModelKind | undefined, fileName: string): void {
  if (!wanted || wanted === found) return;
  const why = found === 'caan'
    ? 'its safetensors metadata says sketchgpu.model = "caan"'
    : 'it has no sketchgpu.model = "caan" metadata, so it is read as ZSE-SBIR';
  throw new SketchError('BAD_WEIGHTS',
    `--model ${wanted === 'caan' ? 'caan' : 'zse'} was given, but ${fileName} holds ${MODEL_LABEL[found]} weights (${why})`,
    `Drop --model to use the model the file holds, or pass ${MODEL_LABEL[wanted]} weights.`);
}

export type LoadedModelWeights =
  | { kind: 'zse-sbir'; weights: LoadedWeights }
  | { kind: 'caan'; weights: LoadedCaanWeights };

/**
 * Either model's weights from the bytes of a file, detecting which from its content; `model` (the CLI's --model)
 * must then agree, or the error names both. The file is identified once, here.
 */
export function parseModelWeights(bytes: Uint8Array, fileName: string, opts: WeightsOptions & { model?: ModelKind } = {}): LoadedModelWeights {
  const id = identifyFile(bytes);
  const kind = detectModelKind(bytes, id);
  checkModelKind(kind, opts.model, fileName);
  return kind === 'caan'
    ? { kind, weights: parseCaanWeights(bytes, fileName) }
    : { kind, weights: parseWeights(bytes, fileName, opts, id) };
}
