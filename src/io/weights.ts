import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SketchError } from '../errors.ts';
import { META_CA_HEADS, META_CONFIG, META_SA_HEADS } from '../models/zse/weights.ts';
import { identifyFile, notACheckpoint } from './checkpoint.ts';
import { readBoundedFile } from './read-file.ts';
import { writeSafetensors } from './safetensors.ts';
import { hashWeightsInto } from '../web-hash.ts';
import { f32ToF16, numel, toFloat32, type HostTensor } from './tensor.ts';
import { parseModelWeights, parseWeights, type ConvertReport, type LoadedModelWeights, type LoadedWeights, type WeightsOptions } from './weights-parse.ts';
import { parseCaanWeights, type LoadedCaanWeights } from '../models/caan/weights.ts';
import type { ModelKind } from '../models/kind.ts';

// Node side of weight loading: files, conversion, hashing. The parsing itself (weights-parse.ts) is pure
// and also runs in the browser.
export * from './weights-parse.ts';

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
 * Converts a checkpoint (or safetensors file) to a validated safetensors file for sketchgpu: used tensors only,
 * in f32 or f16, with the config and head counts in the metadata.
 */
export async function convertCheckpoint(
  inPath: string,
  outPath: string,
  opts: { fp16: boolean } & WeightsOptions,
): Promise<ConvertReport> {
  const loaded = parseWeights(await readBytes(inPath), basename(inPath), opts);
  const dtype = opts.fp16 ? 'f16' : 'f32';
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
    'sketchgpu.source': basename(inPath),
  };
  if (Object.keys(checkpointInfo).length) metadata['sketchgpu.checkpoint'] = JSON.stringify(checkpointInfo);

  const bytes = writeSafetensors(out, metadata);
  try {
    await writeFile(outPath, bytes);
  } catch (e) {
    throw new SketchError('IO', `cannot write ${outPath}: ${(e as Error).message}`, 'check that the folder exists and is writable', { cause: e });
  }
  let params = 0;
  for (const t of out.values()) params += numel(t.shape);
  return {
    source: inPath, output: outPath, config: loaded.config, dtype,
    tensorsKept: out.size, tensorsDropped: loaded.dropped.length, droppedKeys: loaded.dropped,
    params, bytes: bytes.length, hash: weightsHash(out),
  };
}

/**
 * A stable identity for a set of weights: SHA-256 over the sorted key names, each with its dtype, shape and bytes
 * (the stream of hashWeightsInto, which the browser bundle hashes with its own SHA-256 to the same value).
 */
export function weightsHash(tensors: ReadonlyMap<string, HostTensor>): string {
  const h = createHash('sha256');
  hashWeightsInto(h, tensors);
  return h.digest('hex');
}
