/**
 * The CLI's one way into a model: the public embedding API (`SketchGPU.load` of src/api/node.ts), opened with the
 * options every model command shares. What a command does beyond one API call (resumable index files, LanceDB
 * stores, ANN, metrics, HTML sheets) lives in src/retrieval and gets its images read and embedded through the same
 * API object (`queryEncoder`, `galleryEncoder`) and its model as `m.model`.
 */
import { basename } from 'node:path';
import { SketchGPU } from '../api/node.ts';
import { SketchError } from '../core/errors.ts';
import { MODEL_LABEL, type ModelKind } from '../models/load.ts';

export interface ModelOptions {
  adapter?: string;
  saHeads?: number;
  caHeads?: number;
  /** --model zse|caan: must match the weights. */
  model?: string;
  /** --precision f32|f16 (GEMM operands). */
  precision?: string;
  /** The command runs this model only (demo: ZSE-SBIR); other weights are refused. */
  only?: ModelKind;
}

/** Loads and validates the weights (ZSE-SBIR or CAAN, from the file; checked against --model) and uploads them. */
export async function loadModel(weights: string, o: ModelOptions): Promise<SketchGPU> {
  const m = await SketchGPU.load({
    weights,
    model: o.model as 'zse' | 'caan' | undefined,
    precision: o.precision === 'f16' ? 'f16' : 'f32',
    adapter: o.adapter,
    heads: { sa: o.saHeads, ca: o.caHeads },
    // The CLI's warning lines (a sketch with its ink in the alpha channel).
    onWarning: (w) => console.error(`warning: ${w}`),
  });
  if (o.only && m.info.model !== o.only) {
    await m.dispose();
    throw new SketchError('BAD_WEIGHTS', `${basename(weights)} holds ${MODEL_LABEL[m.info.model]} weights, not ${MODEL_LABEL[o.only]}'s`,
      `This command runs ${MODEL_LABEL[o.only]} only; pass ${MODEL_LABEL[o.only]} weights.`);
  }
  return m;
}

export { identityOf, queryEncoder, galleryEncoder } from '../api/encoders.ts';
