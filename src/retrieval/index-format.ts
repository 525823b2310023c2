/**
 * The gallery index file (format 1): a safetensors file, so any safetensors reader can open it.
 *
 * Tensors
 * - `embeddings` [N, D] F32 or F16: each photo's L2-normalised global embedding (what `embed` prints): ZSE-SBIR's SA
 *   cls token, CAAN's projected photo-tower cls token.
 * - `paths` [bytes] U8: the photos' paths relative to the root, UTF-8, '/'-separated, joined by '\n', in row order
 *   (sorted by relative path).
 * - `tokens` [N, T, D] F32 or F16, optional (`index --rn-cache`): each photo's SA output tokens, the input of the
 *   cross-attention, and `proj.q2`, `proj.v2`, `proj.k1` [N, T, D]: the photo's CA input projections (layer2's
 *   linears.0 and .2, layer1's linears.1; ../shared/docs/zse-sbir.md §13). With them an RN re-rank runs neither
 *   photo SA nor photo projections at query time. For CAAN `tokens` are the photo tower's projected tokens
 *   [N, T, E] (the relation's input) and there are no `proj.*` tensors.
 *
 * Metadata (all strings)
 * - `sketchgpu.index`: "2", the format version (format 1 had no checksums and is refused with a rebuild hint).
 * - `sketchgpu.index.crc32`: JSON {"header": crc, <tensor name>: crc, ...}, hex CRC-32s: "header" over every other
 *   metadata entry and the tensor table (names, dtypes, shapes), one per tensor over its bytes. Verified on open, so
 *   any flipped bit is refused (docs/reliability.md).
 * - `sketchgpu.index.model`: JSON {family: "zse-sbir" | "caan", weights_sha256, config}: the model and the identity
 *   of the weights that made it; queries with another model or other weights are refused.
 * - `sketchgpu.index.weights`: the weights file used (absolute path), the default for `query`.
 * - `sketchgpu.index.root`: the absolute directory the paths are relative to.
 * - `sketchgpu.index.skipped`: JSON [[path, reason], ...] of images that could not be read.
 * - `sketchgpu.index.created`: ISO 8601 time of completion.
 */
import { SketchError } from '../core/errors.ts';
import { readSafetensors, writeSafetensors } from '../io/safetensors.ts';
import { crc32 } from '../io/crc32.ts';
import { firstNonFinite } from '../io/tensor-check.ts';
import { f16ToF32, f32ToF16, type HostTensor } from '../core/tensor.ts';
import type { CaanConfig } from '../models/caan/config.ts';
import { MODEL_LABEL } from '../models/load.ts';
import type { ZseConfig } from '../models/zse/config.ts';

export const INDEX_FORMAT = '2';
const CRC_KEY = 'sketchgpu.index.crc32';

/**
 * What a photo path in an index may be: '/'-separated relative segments, none empty, '.' or '..', no NUL or
 * backslash, ending in an image extension. Anything else (an absolute path, '../../etc/passwd') is a crafted file.
 */
export function isConfinedRelativePath(p: string): boolean {
  if (p.length === 0 || p.length > 4096 || p.startsWith('/') || p.includes('\\') || p.includes('\0') || /^[A-Za-z]:/.test(p)) return false;
  if (!/\.(png|jpe?g)$/i.test(p)) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const bytesOf = (t: HostTensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** The CRC-32 of the metadata (without the checksums) and the tensor table, in a canonical order. */
function headerCrc(metadata: Record<string, string>, tensors: ReadonlyMap<string, HostTensor>): string {
  const meta = Object.keys(metadata).filter((k) => k !== CRC_KEY).sort().map((k) => [k, metadata[k]]);
  const table = [...tensors.keys()].sort().map((k) => [k, tensors.get(k)!.dtype, tensors.get(k)!.shape]);
  return hex8(crc32(new TextEncoder().encode(JSON.stringify([meta, table]))));
}

function checksums(metadata: Record<string, string>, tensors: ReadonlyMap<string, HostTensor>): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  out['header'] = headerCrc(metadata, tensors);
  for (const [k, t] of tensors) out[k] = hex8(crc32(bytesOf(t)));
  return out;
}

/** The model that made an index: its family (the model kind) and the hash and config of its weights. */
export type ModelIdentity =
  | { family: 'zse-sbir'; weights_sha256: string; config: ZseConfig }
  | { family: 'caan'; weights_sha256: string; config: CaanConfig };

/** The embedding width an identity implies. */
export const identityDim = (m: ModelIdentity): number => (m.family === 'caan' ? m.config.embed : m.config.dim);

export interface GalleryIndex {
  model: ModelIdentity;
  weightsPath: string;
  root: string;
  /** Relative paths, row order. */
  paths: string[];
  dim: number;
  dtype: 'f32' | 'f16';
  /** [N, D] f32 (converted from f16 on load when stored so). */
  embeddings: Float32Array;
  /** [N, T, D] tokens when cached (ZSE: SA output; CAAN: projected photo-tower tokens). */
  tokens?: Float32Array;
  /** [N, T, D] each: the photos' CA projections when cached (with tokens). */
  projections?: { q: Float32Array; v: Float32Array; k: Float32Array };
  skipped: [string, string][];
  created: string;
  /** The file it was read from (parseIndex's `fileName`), for messages. */
  file?: string;
}

/** Every binary16 value as float32, so a large f16 index converts by lookup (f16ToF32 per element is ~20x slower). */
let F16_TABLE: Float32Array | undefined;

function toF32(t: HostTensor): Float32Array {
  if (t.dtype === 'f32') return t.data as Float32Array;
  const h = t.data as Uint16Array;
  const table = (F16_TABLE ??= Float32Array.from({ length: 65536 }, (_, i) => f16ToF32(i)));
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = table[h[i]!]!;
  return out;
}

function fromF32(a: Float32Array, dtype: 'f32' | 'f16', shape: number[]): HostTensor {
  if (dtype === 'f32') return { dtype, shape, data: a };
  const h = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) h[i] = f32ToF16(a[i]!);
  return { dtype, shape, data: h };
}

export function serializeIndex(ix: GalleryIndex): Uint8Array {
  const N = ix.paths.length;
  const tensors = new Map<string, HostTensor>();
  tensors.set('embeddings', fromF32(ix.embeddings, ix.dtype, [N, ix.dim]));
  const pathBytes = new TextEncoder().encode(ix.paths.join('\n'));
  tensors.set('paths', { dtype: 'u8', shape: [pathBytes.length], data: pathBytes });
  if (ix.tokens) tensors.set('tokens', fromF32(ix.tokens, ix.dtype, [N, ix.tokens.length / N / ix.dim, ix.dim]));
  if (ix.projections) {
    for (const [k, v] of [['proj.q2', ix.projections.q], ['proj.v2', ix.projections.v], ['proj.k1', ix.projections.k]] as const) {
      tensors.set(k, fromF32(v, ix.dtype, [N, v.length / N / ix.dim, ix.dim]));
    }
  }
  const metadata: Record<string, string> = {
    'sketchgpu.index': INDEX_FORMAT,
    'sketchgpu.index.model': JSON.stringify(ix.model),
    'sketchgpu.index.weights': ix.weightsPath,
    'sketchgpu.index.root': ix.root,
    'sketchgpu.index.skipped': JSON.stringify(ix.skipped),
    'sketchgpu.index.created': ix.created,
  };
  metadata[CRC_KEY] = JSON.stringify(checksums(metadata, tensors));
  return writeSafetensors(tensors, metadata);
}

/**
 * Refuses, from its first bytes, a file that cannot be an index (not safetensors, or a header length past the
 * file), so that a large file of anything else is not read whole first. parseIndex checks everything again.
 */
export function checkIndexHead(head: Uint8Array, size: number, fileName: string): void {
  const ok = head.length >= 10 && head[8] === 0x7b && head[9] === 0x22 &&
    new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true) <= BigInt(Math.max(0, size - 8));
  if (!ok) {
    throw new SketchError('BAD_INDEX', `${fileName} is not a sketchgpu gallery index: it does not start as a safetensors file with a header that fits in it.`,
      `Build one with \`sketchgpu index <photo dir> -o <file> --weights <w>\`; if it was one, it is damaged: rebuild it: sketchgpu index <photo dir> -o ${fileName} --weights <weights> --force`);
  }
}

export function parseIndex(bytes: Uint8Array, fileName: string): GalleryIndex {
  const rebuild = `Rebuild it: sketchgpu index <photo dir> -o ${fileName} --weights <weights> --force`;
  const notIndex = (why: string) => new SketchError('BAD_INDEX', `${fileName} is not a sketchgpu gallery index: ${why}.`, `Build one with \`sketchgpu index <photo dir> -o <file> --weights <w>\`; if it was one, it is damaged. ${rebuild}`);
  const damaged = (why: string) => new SketchError('BAD_INDEX', `${fileName} is damaged: ${why}.`, `The file changed after it was written (a disk or copy error?). ${rebuild}`);
  let st;
  try {
    st = readSafetensors(bytes, fileName);
  } catch (e) {
    throw notIndex(`it cannot be read as a safetensors file (${(e as Error).message})`);
  }
  const m = st.metadata;
  const version = m['sketchgpu.index'];
  if (version === undefined) throw notIndex('it has no sketchgpu.index metadata (is it a weights file?)');
  if (version === '1') {
    throw new SketchError('BAD_INDEX', `${fileName} is a gallery index of format 1, which carries no checksums; this sketchgpu reads format ${INDEX_FORMAT} only, whose damage it can detect.`, rebuild);
  }
  if (version !== INDEX_FORMAT) {
    throw new SketchError('BAD_INDEX', `${fileName} is a gallery index of format ${JSON.stringify(version)}; this sketchgpu reads format ${INDEX_FORMAT}.`, `${rebuild} (with this version of sketchgpu)`);
  }
  // Integrity before meaning: nothing below reads a value the checksums have not vouched for.
  let sums: Record<string, unknown>;
  try {
    sums = JSON.parse(m[CRC_KEY] ?? '');
  } catch {
    throw damaged(`its ${CRC_KEY} checksums are missing or unreadable`);
  }
  if (typeof sums !== 'object' || sums === null || Array.isArray(sums)) throw damaged(`its ${CRC_KEY} checksums are not an object`);
  const parts = Object.keys(sums).filter((k) => k !== 'header').sort();
  const names = [...st.tensors.keys()].sort();
  if (parts.join('\n') !== names.join('\n')) throw damaged(`its checksums cover the tensors [${parts}] but it holds [${names}]`);
  if (sums['header'] !== headerCrc(m, st.tensors)) throw damaged('the CRC-32 of its metadata and tensor table does not match');
  for (const [k, t] of st.tensors) {
    if (sums[k] !== hex8(crc32(bytesOf(t)))) throw damaged(`the CRC-32 of its ${k} tensor does not match`);
  }
  const emb = st.tensors.get('embeddings');
  const paths = st.tensors.get('paths');
  if (!emb || !paths) throw notIndex(`the ${!emb ? 'embeddings' : 'paths'} tensor is missing`);
  if (emb.shape.length !== 2 || (emb.dtype !== 'f32' && emb.dtype !== 'f16')) throw notIndex(`embeddings are ${emb.dtype} [${emb.shape}], not a float matrix`);
  const [N, D] = emb.shape as [number, number];
  const list = N === 0 ? [] : new TextDecoder().decode(paths.data as Uint8Array).split('\n');
  if (list.length !== N) throw notIndex(`it lists ${list.length} paths for ${N} embeddings`);
  // A crafted index (valid checksums are easy to forge) may name any file: only relative image paths inside the root.
  const escaping = list.find((p) => !isConfinedRelativePath(p));
  if (escaping !== undefined) {
    throw new SketchError('BAD_INDEX', `${fileName} names the photo ${JSON.stringify(escaping.slice(0, 200))}, which is not a relative image path inside its root (absolute paths, '..' and non-image files are refused)`,
      `An index that sketchgpu wrote never does this; do not use this file. ${rebuild}`);
  }
  let model: ModelIdentity;
  let skipped: [string, string][];
  try {
    model = JSON.parse(m['sketchgpu.index.model'] ?? '');
    skipped = JSON.parse(m['sketchgpu.index.skipped'] ?? '[]');
  } catch {
    throw notIndex('its model metadata is not valid JSON');
  }
  const family = (model as { family?: unknown } | null)?.family;
  if (family !== 'zse-sbir' && family !== 'caan') throw notIndex(`its model family ${JSON.stringify(family)} is neither "zse-sbir" nor "caan"`);
  const modelDim = model.config ? identityDim(model) : undefined;
  if (modelDim !== D) throw notIndex(`its embeddings are ${D}-d but its model says ${modelDim}`);
  const tok = st.tensors.get('tokens');
  if (tok && (tok.shape.length !== 3 || tok.shape[0] !== N || tok.shape[2] !== D)) throw notIndex(`its tokens are [${tok.shape}], not [${N}, T, ${D}]`);
  const pq = st.tensors.get('proj.q2'), pv = st.tensors.get('proj.v2'), pk = st.tensors.get('proj.k1');
  for (const t of [pq, pv, pk]) if (t && (!tok || t.shape.join() !== tok.shape.join())) throw notIndex(`its cached projections are [${t.shape}], not like its tokens`);
  const projections = pq && pv && pk ? { q: toF32(pq), v: toF32(pv), k: toF32(pk) } : undefined;
  const embeddings = toF32(emb);
  // Unit rows, as `index` writes them (f16 storage rounds the norm by < 1e-3): a NaN or zero row would rank as a
  // meaningless score.
  for (let r = 0; r < N; r++) {
    let s = 0;
    for (let k = r * D; k < (r + 1) * D; k++) s += embeddings[k]! * embeddings[k]!;
    if (!(Math.abs(Math.sqrt(s) - 1) < 1e-2)) throw notIndex(`the embedding of ${JSON.stringify(list[r])} (row ${r}) has norm ${Math.sqrt(s)}, not 1`);
  }
  for (const t of [tok, pq, pv, pk]) {
    if (t && firstNonFinite(t) >= 0) throw notIndex('its cached tokens hold NaN or infinite values');
  }
  return {
    model, weightsPath: m['sketchgpu.index.weights'] ?? '', root: m['sketchgpu.index.root'] ?? '', paths: list, dim: D,
    dtype: emb.dtype, embeddings, tokens: tok ? toF32(tok) : undefined, projections, skipped, created: m['sketchgpu.index.created'] ?? '',
    file: fileName,
  };
}

/**
 * Refuse an index made with another model (when `family` is given) or other weights, naming both.
 */
export function checkIndexModel(ix: GalleryIndex, weightsSha: string, indexName: string, weightsName: string, family?: ModelIdentity['family']): void {
  if (family && ix.model.family !== family) {
    throw new SketchError('INDEX_MISMATCH',
      `${indexName} was built with ${MODEL_LABEL[ix.model.family]} weights (from ${ix.weightsPath || 'an unknown file'}), but ${weightsName} holds ${MODEL_LABEL[family]} weights: the two models' embeddings are not comparable.`,
      `Query with the weights the index was built with, or rebuild the index: sketchgpu index <photos> -o ${indexName} --weights ${weightsName}`);
  }
  if (ix.model.weights_sha256 !== weightsSha) {
    throw new SketchError('INDEX_MISMATCH',
      `${indexName} was built with other weights (sha256 ${ix.model.weights_sha256.slice(0, 12)}…, ${identityDim(ix.model)}-d, from ${ix.weightsPath || 'an unknown file'}) than ${weightsName} (sha256 ${weightsSha.slice(0, 12)}…): their embeddings are not comparable.`,
      `Query with the weights the index was built with, or rebuild the index: sketchgpu index <photos> -o ${indexName} --weights ${weightsName}`);
  }
}
