/**
 * The one way the CLI opens a model (every command that runs one comes here): either model, detected from the
 * file, uploaded to the Node device and wrapped in the retrieval interface.
 */
import { basename } from 'node:path';
import { SketchError } from '../core/errors.ts';
import { nodeGpu } from '../graph/node-gpu.ts';
import { loadModelWeights, nodeWeightsHash as weightsHash } from '../models/load-file.ts';
import { CaanModel } from '../models/caan/model.ts';
import { MODEL_LABEL, parseModelChoice, type ModelKind } from '../models/load.ts';
import { ZseModel } from '../models/zse/model.ts';
import type { ModelIdentity } from '../retrieval/index-format.ts';
import { CaanRetrieval, ZseRetrieval, type RetrievalModel } from '../retrieval/model.ts';
import { loadClipTokenizer } from '../text/clip-vocab-node.ts';

export interface ModelOptions {
  adapter?: string;
  saHeads?: number;
  caHeads?: number;
  /** --model zse|caan: must match the weights. */
  model?: string;
  /** --precision f32|f16 (GEMM operands). */
  precision?: string;
  /** The command runs this model only (demo and explain: ZSE-SBIR); other weights are refused. */
  only?: ModelKind;
}

export interface OpenedModel {
  model: RetrievalModel;
  ctx: RetrievalModel['ctx'];
  identity: ModelIdentity;
  kind: ModelKind;
}

/** Loads and validates the weights (ZSE-SBIR or CAAN, from the file; checked against --model) and uploads them. */
export async function openModel(path: string, o: ModelOptions): Promise<OpenedModel> {
  const w = await loadModelWeights(path, { saHeads: o.saHeads, caHeads: o.caHeads, model: o.model ? parseModelChoice(o.model) : undefined });
  if (o.only && w.kind !== o.only) {
    throw new SketchError('BAD_WEIGHTS', `${basename(path)} holds ${MODEL_LABEL[w.kind]} weights, not ${MODEL_LABEL[o.only]}'s`,
      `This command runs ${MODEL_LABEL[o.only]} only; pass ${MODEL_LABEL[o.only]} weights.`);
  }
  const sha = weightsHash(w.weights.tensors);
  const ctx = await nodeGpu({ adapter: o.adapter });
  const precision = o.precision === 'f16' ? 'f16' : 'f32';
  const model: RetrievalModel = w.kind === 'caan'
    // The CLIP vocabulary is read only when a text comes.
    ? new CaanRetrieval(CaanModel.create(ctx, w.weights.config, w.weights.tensors, { precision }), () => loadClipTokenizer())
    : new ZseRetrieval(ZseModel.create(ctx, w.weights.config, w.weights.tensors, { precision }));
  return { model, ctx, identity: model.identity(sha), kind: w.kind };
}
