/**
 * Which model a weights file holds (pure, browser-safe). A CAAN file says so in its safetensors metadata
 * (`sketchgpu.model` = "caan", docs/caan.md); ZSE-SBIR files (converted safetensors, torch checkpoints) carry no
 * such key, so everything else is taken for ZSE-SBIR and its own parser says what is wrong with it.
 */
import { SketchError } from '../errors.ts';
import { identifyFile } from '../io/checkpoint.ts';

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
export function safetensorsModelTag(bytes: Uint8Array): string | null {
  if (identifyFile(bytes).kind !== 'safetensors') return null;
  try {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as { __metadata__?: Record<string, unknown> };
    const tag = header.__metadata__?.['sketchgpu.model'];
    return typeof tag === 'string' ? tag : null;
  } catch {
    return null; // the full parser reports a broken header
  }
}

/** The model a weights file holds: "caan" when its metadata says so, else "zse-sbir". */
export function detectModelKind(bytes: Uint8Array): ModelKind {
  return safetensorsModelTag(bytes) === 'caan' ? 'caan' : 'zse-sbir';
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
