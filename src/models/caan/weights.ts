/**
 * CAAN weights: the tensor list of a config (docs/caan.md "Tensors"; the same list as tools/reference/caan_ref.py
 * expected_shapes), parsing a safetensors file (pure, browser-safe) and a validation naming every missing,
 * unexpected, mis-shaped or non-float tensor.
 */
import { checkFiniteWeights, checkTensors, formatTensorReport, problemCount, type TensorReport } from '../../io/tensor-check.ts';
import { SketchError } from '../../core/errors.ts';
import { readSafetensors } from '../../io/safetensors.ts';
import type { HostTensor } from '../../core/tensor.ts';
import { anchorGrid, CAAN_MODEL_NAME, META_CONFIG, META_MODEL, parseCaanConfig, type CaanConfig } from './config.ts';

type Shapes = [string, number[]][];

/** One image tower's tensors under `m` ("sketch" or "photo"): ZSE's SA names (zse-sbir.md §4) + `proj`. */
function imageShapes(m: string, c: CaanConfig): Shapes {
  const { width: d, grid: G, mlp, stem } = c.image;
  const out: Shapes = [
    [`${m}.pos_embedding`, [1, 1 + G * G, d]], [`${m}.cls`, [1, 1, d]], [`${m}.proj`, [d, c.embed]],
    [`${m}.embedding.weight`, [d, 3, 16, 16]], [`${m}.embedding.bias`, [d]],
  ];
  if (stem.length) {
    const ch = [3, ...stem];
    [7, 3, 3].forEach((k, i) => out.push([`${m}.scale.seq.${2 * i}.weight`, [ch[i + 1]!, ch[i]!, k, k]]));
    out.push([`${m}.scale.seq.6.weight`, [d, ch[3]!, 3, 3]]);
  }
  out.push([`${m}.transformer.encoder_norm.weight`, [d]], [`${m}.transformer.encoder_norm.bias`, [d]]);
  for (let l = 0; l < c.image.depth; l++) {
    const b = `${m}.transformer.layers.${l}.0.`;
    out.push(
      [`${b}layer_norm_input.weight`, [d]], [`${b}layer_norm_input.bias`, [d]],
      [`${b}layer_norm_out.weight`, [d]], [`${b}layer_norm_out.bias`, [d]],
      [`${b}attention.to_qkv.weight`, [3 * d, d]], [`${b}attention.to_qkv.bias`, [3 * d]],
      [`${b}attention.to_out.0.weight`, [d, d]], [`${b}attention.to_out.0.bias`, [d]],
      [`${b}mlp.net.0.weight`, [mlp, d]], [`${b}mlp.net.0.bias`, [mlp]],
      [`${b}mlp.net.3.weight`, [d, mlp]], [`${b}mlp.net.3.bias`, [d]],
    );
  }
  return out;
}

/** CLIP's text transformer names under `text.`. */
function textShapes(c: CaanConfig): Shapes {
  const { width: w, mlp, vocab, context } = c.text;
  const out: Shapes = [
    ['text.positional_embedding', [context, w]], ['text.text_projection', [w, c.embed]], ['text.token_embedding.weight', [vocab, w]],
  ];
  for (let l = 0; l < c.text.depth; l++) {
    const b = `text.transformer.resblocks.${l}.`;
    out.push(
      [`${b}attn.in_proj_weight`, [3 * w, w]], [`${b}attn.in_proj_bias`, [3 * w]],
      [`${b}attn.out_proj.weight`, [w, w]], [`${b}attn.out_proj.bias`, [w]],
      [`${b}ln_1.weight`, [w]], [`${b}ln_1.bias`, [w]],
      [`${b}mlp.c_fc.weight`, [mlp, w]], [`${b}mlp.c_fc.bias`, [mlp]],
      [`${b}mlp.c_proj.weight`, [w, mlp]], [`${b}mlp.c_proj.bias`, [w]],
      [`${b}ln_2.weight`, [w]], [`${b}ln_2.bias`, [w]],
    );
  }
  out.push(['text.ln_final.weight', [w]], ['text.ln_final.bias', [w]]);
  return out;
}

/** The cross-attention layers, `<updated>_<attended>`: sk_im and im_sk re-rank; the text ones serve training. */
export const CAAN_CA_LAYERS = ['sk_im', 'im_sk', 'sk_txt', 'txt_sk', 'im_txt', 'txt_im'] as const;

function alignShapes(c: CaanConfig): Shapes {
  const E = c.embed, { ff, anchorDim: C, rnHidden, rnTextHidden: ht } = c.align;
  const out: Shapes = [];
  for (const n of CAAN_CA_LAYERS) {
    const p = `align.${n}.`;
    for (let i = 0; i < 4; i++) out.push([`${p}self_attn.linears.${i}.weight`, [E, E]], [`${p}self_attn.linears.${i}.bias`, [E]]);
    out.push(
      [`${p}feed_forward.w_1.weight`, [ff, E]], [`${p}feed_forward.w_1.bias`, [ff]],
      [`${p}feed_forward.w_2.weight`, [E, ff]], [`${p}feed_forward.w_2.bias`, [E]],
      [`${p}sublayer.0.norm.a`, [E]], [`${p}sublayer.0.norm.b`, [E]], [`${p}sublayer.1.norm.a`, [E]], [`${p}sublayer.1.norm.b`, [E]],
    );
  }
  const A = anchorGrid(c) ** 2;
  const [h0, h1] = rnHidden as [number, number];
  out.push(
    ['align.anchor.weight', [C, E, 2, 2]], ['align.anchor.bias', [C]],
    ['align.text_anchor.weight', [C, E]], ['align.text_anchor.bias', [C]],
    ['align.rn.rn.0.weight', [h0, A * A]], ['align.rn.rn.0.bias', [h0]],
    ['align.rn.rn.3.weight', [h1, h0]], ['align.rn.rn.3.bias', [h1]],
    ['align.rn.rn.6.weight', [1, h1]], ['align.rn.rn.6.bias', [1]],
    ['align.rn_text.0.weight', [ht, A]], ['align.rn_text.0.bias', [ht]],
    ['align.rn_text.3.weight', [1, ht]], ['align.rn_text.3.bias', [1]],
  );
  return out;
}

/** Every tensor of a CAAN model with its shape (569 at full size, tools/reference/caan_ref.py checks the same list). */
export function caanTensorShapes(c: CaanConfig): Map<string, number[]> {
  return new Map([...imageShapes('sketch', c), ...imageShapes('photo', c), ...textShapes(c), ...alignShapes(c)]);
}

export type CaanWeightsReport = TensorReport;

export function validateCaanWeights(tensors: ReadonlyMap<string, HostTensor>, c: CaanConfig): CaanWeightsReport {
  return checkTensors(tensors, caanTensorShapes(c));
}

export interface LoadedCaanWeights {
  config: CaanConfig;
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
  /**
   * The token ids whose embedding rows the file stores, ascending, when it stores the compact token table (below);
   * every other row is zero. Undefined for a file with the whole table.
   */
  tokenIds?: Int32Array;
}

/** The compact token table: the stored rows and their ids (tools/reference/caan_ref.py prune_token_table). */
export const TOKEN_TABLE = 'text.token_embedding.weight';
export const TOKEN_ROWS = 'text.token_embedding.rows';
export const TOKEN_IDS = 'text.token_embedding.ids';
/** What a compact table may expand to: full-size CAAN's (49,408 x 512) in float32 is 97 MiB. */
const MAX_TOKEN_TABLE_BYTES = 256 * 2 ** 20;

/**
 * A file may store the token embedding as `text.token_embedding.rows` [R, width] and `text.token_embedding.ids` [R]
 * (int32 or int64, strictly ascending, each < vocab) instead of the whole [vocab, width] table: the rows of tokens
 * that never occur in a training text are their random initialisation, no information, and at CLIP's 49,408 ids they
 * are most of the file. The table is rebuilt here with zeros for the rows not stored, so everything downstream sees
 * the usual tensor. Returns the ids (undefined when the file has the whole table).
 */
export function expandTokenTable(tensors: Map<string, HostTensor>, c: CaanConfig, fileName: string): Int32Array | undefined {
  const rows = tensors.get(TOKEN_ROWS), idsT = tensors.get(TOKEN_IDS);
  if (!rows && !idsT) return undefined;
  const hint = 'write the compact table with tools/reference/caan_ref.py prune_token_table (tools/training/prune_caan_vocab.py)';
  const bad = (what: string) => new SketchError('BAD_WEIGHTS', `${fileName}: ${what}`, hint);
  if (!rows || !idsT) throw bad(`${rows ? TOKEN_IDS : TOKEN_ROWS} is missing: the compact token table needs both ${TOKEN_ROWS} and ${TOKEN_IDS}`);
  if (tensors.has(TOKEN_TABLE)) throw bad(`holds both ${TOKEN_TABLE} and the compact ${TOKEN_ROWS} / ${TOKEN_IDS}: keep one`);
  const { vocab, width } = c.text;
  const bytes = vocab * width * (rows.dtype === 'f16' ? 2 : 4);
  if (bytes > MAX_TOKEN_TABLE_BYTES) {
    throw bad(`the token table it describes (${vocab} x ${width}) would take ${(bytes / 2 ** 20).toFixed(0)} MiB, more than the ${MAX_TOKEN_TABLE_BYTES / 2 ** 20} MiB sketchgpu rebuilds from a compact one`);
  }
  if (idsT.dtype !== 'i32' && idsT.dtype !== 'i64') throw bad(`${TOKEN_IDS} is ${idsT.dtype}, not int32 or int64`);
  if (idsT.shape.length !== 1) throw bad(`${TOKEN_IDS} has shape [${idsT.shape.join(', ')}], not [R]`);
  const n = idsT.shape[0]!;
  if (rows.dtype !== 'f32' && rows.dtype !== 'f16') throw bad(`${TOKEN_ROWS} is ${rows.dtype}, not f32 or f16`);
  if (rows.shape.length !== 2 || rows.shape[0] !== n || rows.shape[1] !== width) {
    throw bad(`${TOKEN_ROWS} has shape [${rows.shape.join(', ')}], not [${n}, ${width}] (one row of the text width per id)`);
  }
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(idsT.data[i]!);
    if (!Number.isInteger(v) || v < 0 || v >= vocab) throw bad(`${TOKEN_IDS}[${i}] = ${v} is not a token id (0..${vocab - 1})`);
    if (i > 0 && v <= ids[i - 1]!) throw bad(`${TOKEN_IDS} must be strictly ascending: [${i - 1}] = ${ids[i - 1]}, [${i}] = ${v}`);
    ids[i] = v;
  }
  const src = rows.data as Float32Array | Uint16Array;
  const full = rows.dtype === 'f16' ? new Uint16Array(vocab * width) : new Float32Array(vocab * width); // zeros (+0 in f16 too)
  for (let i = 0; i < n; i++) full.set(src.subarray(i * width, (i + 1) * width), ids[i]! * width);
  tensors.delete(TOKEN_ROWS);
  tensors.delete(TOKEN_IDS);
  tensors.set(TOKEN_TABLE, { dtype: rows.dtype, shape: [vocab, width], data: full });
  return ids;
}

/** True when safetensors metadata names the model CAAN. */
export const isCaanMetadata = (metadata: Record<string, string>): boolean => metadata[META_MODEL] === CAAN_MODEL_NAME;

/** CAAN weights from the bytes of a .safetensors file (`fileName` names it in messages). */
export function parseCaanWeights(bytes: Uint8Array, fileName: string): LoadedCaanWeights {
  const file = readSafetensors(bytes, fileName);
  const metadata = { ...file.metadata };
  if (!isCaanMetadata(metadata)) {
    throw new SketchError('BAD_WEIGHTS',
      `${fileName} is not a CAAN weights file: its metadata ${META_MODEL} is ${JSON.stringify(metadata[META_MODEL] ?? null)}, not "${CAAN_MODEL_NAME}"`,
      metadata[META_MODEL] === 'zse-sbir' || [...file.tensors.keys()].some((k) => k.startsWith('sa.model.'))
        ? 'these look like ZSE-SBIR weights: load them with loadWeights / ZseModel'
        : 'write CAAN weights with tools/reference/caan_ref.py (metadata sketchgpu.model = "caan" and sketchgpu.config)');
  }
  const raw = metadata[META_CONFIG];
  if (!raw) throw new SketchError('BAD_WEIGHTS', `${fileName} has no ${META_CONFIG} metadata; CAAN sizes are not read off shapes`, 'add the config JSON (tools/reference/caan_ref.py CaanConfig.to_json)');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new SketchError('BAD_WEIGHTS', `${fileName}: metadata ${META_CONFIG} is not valid JSON`, 'write it again with tools/reference/caan_ref.py');
  }
  const config = parseCaanConfig(json, `${fileName} ${META_CONFIG}`);
  const tokenIds = expandTokenTable(file.tensors, config, fileName);
  const report = validateCaanWeights(file.tensors, config);
  const n = problemCount(report);
  if (n > 0) {
    throw new SketchError('BAD_WEIGHTS',
      `${fileName} does not match the CAAN layout of its config (image width ${config.image.width}, depth ${config.image.depth}, grid ${config.image.grid}; ` +
      `text width ${config.text.width}, depth ${config.text.depth}; embed ${config.embed}): ${n} problem(s)\n${formatTensorReport(report, file.tensors)}`,
      'the tensors and the sketchgpu.config metadata must come from the same model; export both again with tools/reference/caan_ref.py');
  }
  checkFiniteWeights(file.tensors, fileName);
  return { config, tensors: file.tensors, metadata, ...(tokenIds ? { tokenIds } : {}) };
}
