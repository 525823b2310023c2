/**
 * Node side of weight loading: reading weights files (either model, through models/load.ts), writing converted
 * ones, and the weights identity with node:crypto's SHA-256. Everything here is a thin layer over the pure parsers.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SketchError } from '../core/errors.ts';
import type { HostTensor } from '../core/tensor.ts';
import { identifyFile, notACheckpoint } from '../io/checkpoint.ts';
import { readBoundedFile } from '../io/read-file.ts';
import { weightsHash as hashWith, type Hasher } from '../io/weights-hash.ts';
import { parseCaanWeights, type LoadedCaanWeights } from './caan/weights.ts';
import { parseModelWeights, type LoadedModelWeights, type ModelKind } from './load.ts';
import { parseWeights, zseSafetensors, type ConvertReport, type LoadedWeights, type WeightsOptions } from './zse/weights.ts';

/** node:crypto's SHA-256 in the Hasher shape (the same digest as io/weights-hash.ts's Sha256, much faster). */
export const nodeSha256 = (): Hasher => {
  const h = createHash('sha256');
  return { update: (d) => h.update(d), hex: () => h.digest('hex') };
};

/** weightsHash (io/weights-hash.ts) with node:crypto's SHA-256. */
export const nodeWeightsHash = (tensors: ReadonlyMap<string, HostTensor>): string => hashWith(tensors, nodeSha256);

/** A weights file's bytes; a file that is neither a zip (torch.save) nor safetensors is refused from its first bytes. */
const readBytes = (path: string): Promise<Uint8Array> => readBoundedFile(path, 'weights', undefined, (head) => {
  const id = identifyFile(head);
  if (id.kind !== 'zip' && id.kind !== 'safetensors') throw notACheckpoint(basename(path), id);
});

/** Reads, normalizes and validates ZSE-SBIR weights from a .safetensors file or a torch checkpoint. */
export async function loadWeights(path: string, opts: WeightsOptions = {}): Promise<LoadedWeights> {
  return parseWeights(await readBytes(path), basename(path), opts);
}

/** Reads and validates CAAN weights from a .safetensors file (docs/caan.md). */
export async function loadCaanWeights(path: string): Promise<LoadedCaanWeights> {
  return parseCaanWeights(await readBytes(path), basename(path));
}

/**
 * Reads either model's weights, detecting which from the file (`sketchgpu.model` = "caan" metadata, else ZSE-SBIR);
 * `model` (the CLI's --model) must then agree, or the error names both.
 */
export async function loadModelWeights(path: string, opts: WeightsOptions & { model?: ModelKind } = {}): Promise<LoadedModelWeights> {
  return parseModelWeights(await readBytes(path), basename(path), opts);
}

/**
 * Converts a checkpoint (or safetensors file) to a validated safetensors file for sketchgpu: used tensors only,
 * in f32 or f16, with the config and head counts in the metadata (models/zse/weights.ts zseSafetensors).
 */
export async function convertCheckpoint(
  inPath: string,
  outPath: string,
  opts: { fp16: boolean } & WeightsOptions,
): Promise<ConvertReport> {
  const loaded = parseWeights(await readBytes(inPath), basename(inPath), opts);
  const { bytes, report } = zseSafetensors(loaded, { path: inPath, name: basename(inPath) }, opts.fp16 ? 'f16' : 'f32', nodeSha256);
  try {
    await writeFile(outPath, bytes);
  } catch (e) {
    throw new SketchError('IO', `cannot write ${outPath}: ${(e as Error).message}`, 'check that the folder exists and is writable', { cause: e });
  }
  return { ...report, output: outPath };
}
