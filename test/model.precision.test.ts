// The f16 precision option at model level: every graph a model builds takes it (its GEMMs round their operands to
// binary16), so embeddings move, but stay within the speed issue's bar (cosine >= 0.999 to f32); the ranking cosine
// itself stays f32. The kernel-level rounding is checked in kernel.gemm.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadCaanWeights, loadWeights } from '../src/io/weights.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { toFloat32 } from '../src/io/tensor.ts';
import { CaanModel } from '../src/models/caan/model.ts';
import { ZseModel } from '../src/models/zse/model.ts';
import { FIXTURES } from './paths.ts';
import { gpu, maxAbsDiff } from './util.ts';
import { cli, json } from './cli-util.ts';
import { writeNpy } from '../src/io/npy.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** min over rows of the cosine between rows of a and b (unit rows). */
function minRowCosine(a: Float32Array, b: Float32Array, D: number): number {
  let m = 1;
  for (let i = 0; i < a.length / D; i++) {
    let c = 0;
    for (let d = 0; d < D; d++) c += a[i * D + d]! * b[i * D + d]!;
    m = Math.min(m, c);
  }
  return m;
}

test('ZSE-SBIR tiny: f16 GEMM operands move the embeddings and RN scores slightly, cosine >= 0.999', async () => {
  const ctx = await gpu();
  const w = await loadWeights(resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors'));
  const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'zse', 'tiny64.expected.safetensors'))).tensors;
  const x = toFloat32(exp.get('sketch.input')!), n = exp.get('sketch.input')!.shape[0]!;
  const y = toFloat32(exp.get('photo.input')!), m = exp.get('photo.input')!.shape[0]!;
  const a = ZseModel.create(ctx, w.config, w.tensors);
  const b = ZseModel.create(ctx, w.config, w.tensors, { precision: 'f16' });
  try {
    assert.is(b.precision, 'f16');
    const [ea, eb] = [await a.encode(x, n, { tokens: true }), await b.encode(x, n, { tokens: true })];
    const [pa, pb] = [await a.encode(y, m, { tokens: true }), await b.encode(y, m, { tokens: true })];
    const D = w.config.dim;
    assert.ok(maxAbsDiff(ea.emb, eb.emb) > 1e-6, 'f16 changed nothing: the option did not reach the graphs');
    const c = minRowCosine(ea.emb, eb.emb, D);
    assert.ok(c >= 0.999, `min cosine ${c}`);
    const pairs = Uint32Array.from({ length: 2 * n * m }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2 / m) : (i >> 1) % m));
    const ra = await a.relation(ea.tokens!, n, pa.tokens!, m, pairs);
    const rb = await b.relation(eb.tokens!, n, pb.tokens!, m, pairs);
    assert.ok(maxAbsDiff(ra, rb) > 0 && maxAbsDiff(ra, rb) < 1e-2, `RN scores moved by ${maxAbsDiff(ra, rb)}`);
    // ranking cosines stay f32: the same embeddings give the same scores through either model
    assert.is(maxAbsDiff(await a.cosine(ea.emb, n, pa.emb, m), await b.cosine(ea.emb, n, pa.emb, m)), 0);
  } finally {
    await a.destroy();
    await b.destroy();
  }
});

test('CAAN tiny: f16 GEMM operands in the towers, cosine >= 0.999', async () => {
  const ctx = await gpu();
  const w = await loadCaanWeights(resolve(FIXTURES, 'caan', 'tiny.weights.safetensors'));
  const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'caan', 'tiny.expected.safetensors'))).tensors;
  const x = toFloat32(exp.get('photo.input')!), n = exp.get('photo.input')!.shape[0]!;
  const a = CaanModel.create(ctx, w.config, w.tensors);
  const b = CaanModel.create(ctx, w.config, w.tensors, { precision: 'f16' });
  try {
    const [ea, eb] = [await a.encodePhotos(x, n), await b.encodePhotos(x, n)];
    assert.ok(maxAbsDiff(ea.emb, eb.emb) > 1e-6, 'f16 changed nothing');
    const c = minRowCosine(ea.emb, eb.emb, w.config.embed);
    assert.ok(c >= 0.999, `min cosine ${c}`);
  } finally {
    await a.destroy();
    await b.destroy();
  }
});

test('CLI: embed --precision f16 differs slightly from f32; an unknown precision is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sketchgpu-precision-'));
  const exp = readSafetensors(readFileSync(resolve(FIXTURES, 'zse', 'tiny64.expected.safetensors'))).tensors;
  const x = toFloat32(exp.get('sketch.input')!);
  const file = join(dir, 'sk.npy');
  writeFileSync(file, writeNpy({ dtype: 'f32', shape: exp.get('sketch.input')!.shape as number[], data: x }));
  const W = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
  const run = (p: string) => Float32Array.from((json(['embed', '--weights', W, '--modality', 'sketch', '--precision', p, '--json', file]).embeddings as number[][]).flat());
  const a = run('f32'), b = run('f16');
  assert.ok(maxAbsDiff(a, b) > 1e-6 && minRowCosine(a, b, 24) >= 0.999, "tiny64: D = 24");
  const r = cli(['embed', '--weights', W, '--modality', 'sketch', '--precision', 'f8', file]);
  assert.is(r.code, 1, 'a usage error, as for every option commander checks');
  assert.match(r.err, /argument 'f8' is invalid. Allowed choices are f32, f16/);
});

test.run();
