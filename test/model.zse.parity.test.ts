// Engine vs. the PyTorch reference (tools/reference/zse_ref.py, run in float64 from the same fp32 weights and inputs;
// fixtures from tools/fixtures/make_zse_fixtures.py) at every stage of the model, for two tiny configs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadWeights } from '../src/models/load-file.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { toFloat32 } from '../src/core/tensor.ts';
import { ZseModel } from '../src/models/zse/model.ts';
import { buildPairGraph, buildSaGraph } from '../src/models/zse/graph.ts';
import { Graph } from '../src/graph/graph.ts';
import { FIXTURES } from './paths.ts';
import { assertClose, gpu, maxAbsDiff } from './util.ts';

// Tolerances. The reference is float64; the engine computes in fp32 with different summation orders.
// Activations are O(1) (LayerNorm outputs) and each stage sums at most a few thousand products, so fp32
// rounding gives errors of order 1e-6..1e-5 that grow mildly through the layers. We allow 1e-4 absolute +
// 1e-4 relative on every intermediate: an order of magnitude above the measured error (printed with
// SKETCHGPU_VERBOSE=1), far below any real mistake (a wrong quirk moves values by 1e-1 or more).
// Embeddings (unit vectors) and RN scores (sigmoid) are held to the 1e-4 bound directly.
const TOL = 1e-4;
const verbose = !!process.env.SKETCHGPU_VERBOSE;

for (const name of ['tiny64', 'tiny224', 'tinyfront']) {
  for (const format of ['pth', 'weights.safetensors'] as const) {
    const t = suite(`ZSE-SBIR parity ${name} (${format})`);
    const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'zse', `${name}.expected.safetensors`))).tensors;
    const get = (k: string) => {
      const v = exp.get(k);
      if (!v) throw new Error(`fixture has no ${k}`);
      return toFloat32(v);
    };
    const cmp = (got: Float32Array, key: string, tol = TOL) => {
      if (verbose) console.log(`    ${name} ${key}: max |diff| ${maxAbsDiff(got, get(key)).toExponential(2)}`);
      assertClose(got, get(key), tol, tol, `${name} ${key}`);
    };
    let model: ZseModel;
    let sk: Record<string, Float32Array>;
    let im: Record<string, Float32Array>;
    const ns = exp.get('sketch.input')!.shape[0]!;
    const np = exp.get('photo.input')!.shape[0]!;

    t.before(async () => {
      const w = await loadWeights(resolve(FIXTURES, 'zse', `${name}.${format}`));
      model = ZseModel.create(await gpu(), w.config, w.tensors);
      sk = await model.debugEncode(get('sketch.input'), ns);
      im = await model.debugEncode(get('photo.input'), np);
    });
    t.after(async () => model.destroy());

    t('tokenizer: patch conv, conv stem, tokens', () => {
      for (const [mod, out] of [['sketch', sk], ['photo', im]] as const) {
        cmp(out.patch!, `${mod}.patch`);
        cmp(out.stem!, `${mod}.stem`);
        cmp(out.tokens!, `${mod}.tokens`);
      }
    });
    t('SA blocks and final norm', () => {
      for (const [mod, out] of [['sketch', sk], ['photo', im]] as const) {
        for (let l = 0; l < model.config.depth; l++) cmp(out[`layer${l}`]!, `${mod}.sa.layer${l}`);
        cmp(out.sa!, `${mod}.sa`);
      }
    });
    t('embeddings and ret-mode cosine', async () => {
      cmp(sk.emb!, 'sketch.emb');
      cmp(im.emb!, 'photo.emb');
      const D = model.config.dim;
      const cos = new Float32Array(ns * np);
      for (let i = 0; i < ns; i++) for (let j = 0; j < np; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += sk.emb![i * D + d]! * im.emb![j * D + d]!;
        cos[i * np + j] = s;
      }
      cmp(cos, 'ret.cosine');
      // the batched path (encode) agrees with the debug path
      const e = await model.encode(get('sketch.input'), ns);
      assert.ok(maxAbsDiff(e.emb, sk.emb!) === 0, 'encode() and debugEncode() differ');
    });
    t('CA, anchors, anchor cosine and RN score for every pair', async () => {
      const pairs = new Uint32Array(2 * ns * np);
      for (let s = 0; s < ns; s++) for (let j = 0; j < np; j++) pairs.set([s, j], 2 * (s * np + j));
      const r = await model.debugRelation(sk.sa!, ns, im.sa!, np, pairs);
      cmp(r['ca.sketch']!, 'pair.ca.sketch');
      cmp(r['ca.photo']!, 'pair.ca.photo');
      cmp(r['anchors.sketch']!, 'pair.anchors.sketch');
      cmp(r['anchors.photo']!, 'pair.anchors.photo');
      cmp(r.cos!, 'pair.cos');
      cmp(r.score!, 'rn.score');
      // the chunked production path gives the same scores, also with pairs in another order
      const rev = new Uint32Array(pairs.length);
      for (let p = 0; p < ns * np; p++) rev.set(pairs.subarray(2 * (ns * np - 1 - p), 2 * (ns * np - p)), 2 * p);
      const scores = await model.relation(sk.sa!, ns, im.sa!, np, rev);
      assertClose(scores.slice().reverse(), r.score!, 1e-6, 0, 'relation() vs debugRelation()');
      // with each image's CA projections computed once and cached (§13): the same scores
      const cached = { sketch: await model.projections(sk.sa!, ns, 'sketch'), photo: await model.projections(im.sa!, np, 'photo') };
      cmp(await model.relation(sk.sa!, ns, im.sa!, np, pairs, cached), 'rn.score');
    });
    t.run();
  }
}

// The graph a GPU adapter gets (tiled GEMMs, workgroup LayerNorms, flash attention, and each block's two pre-norm
// LayerNorms fused into the qkv and fc1 GEMMs), run here on this adapter whatever it is: the same reference, the
// same tolerances. (On a CPU driver the default suites above run the software graph, where nothing is fused.)
{
  const name = 'tiny64';
  const t = suite(`ZSE-SBIR parity ${name} on the graph of a hardware adapter (fused LayerNorms)`);
  const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'zse', `${name}.expected.safetensors`))).tensors;
  const get = (k: string) => toFloat32(exp.get(k)!);
  let model: ZseModel;
  t.before(async () => {
    const w = await loadWeights(resolve(FIXTURES, 'zse', `${name}.pth`));
    model = ZseModel.create({ ...(await gpu()), software: false, gemmTuner: undefined }, w.config, w.tensors);
  });
  t.after(async () => model.destroy());
  t('the graph: two fused GEMMs per block, one LayerNorm dispatch (the final norm)', () => {
    const g = new Graph({ software: false });
    buildSaGraph(g, model.config, 2);
    const kernels = g.nodes.map((n) => n.kernel.name);
    assert.is(kernels.filter((k) => k.endsWith('ln')).length, 2 * model.config.depth, kernels.join(' '));
    assert.is(kernels.filter((k) => k.startsWith('layernorm')).length, 1, kernels.join(' '));
  });
  t('the pair graph: the attention reads q, k, v and the output projection its residual through the pair table', () => {
    for (const cachedProjections of [false, true]) {
      const g = new Graph({ software: false });
      buildPairGraph(g, model.config, 2, 3, 5, { cachedProjections });
      const kernels = g.nodes.map((n) => n.kernel.name);
      assert.is(kernels.filter((k) => k === 'gather').length, 0, kernels.join(' '));
      assert.is(kernels.filter((k) => k.endsWith('pt')).length, 2, kernels.join(' '));
      assert.is(g.nodes.filter((n) => n.kernel.name.startsWith('attention') && n.reads.length === 4 && n.reads[3]!.name === 'pairs').length, 2);
    }
  });
  t('SA blocks, final norm and embeddings', async () => {
    for (const mod of ['sketch', 'photo'] as const) {
      const n = exp.get(`${mod}.input`)!.shape[0]!;
      const out = await model.debugEncode(get(`${mod}.input`), n);
      for (let l = 0; l < model.config.depth; l++) assertClose(out[`layer${l}`]!, get(`${mod}.sa.layer${l}`), TOL, TOL, `${mod} layer${l}`);
      assertClose(out.sa!, get(`${mod}.sa`), TOL, TOL, `${mod} sa`);
      assertClose(out.emb!, get(`${mod}.emb`), TOL, TOL, `${mod} emb`);
    }
  });
  t.run();
}
