// The embedding API (src/api, `SketchGPU` of `sketchgpu`) in Node, on the tiny64 test model and a small synthetic
// gallery: every image form gives the same embedding as the CLI's `embed`; modelInput, ModelInput.fromTensor and
// score give the CLI's `preprocess`, .npy inputs and `score`; index + search (cosine and RN re-rank)
// give the CLI's `index` + `query` ranking and scores; explain gives the CLI's RN score; a saved index is one the CLI
// queries; bad inputs are SketchErrors with hints.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import { SketchGPU, Embeddings, ModelInput, Scores, isSketchError, nodeGpu } from '../src/index.ts';
import { readNpy } from '../src/io/npy.ts';
import { FIXTURES } from './paths.ts';
import { cli, json, png, smallGallery } from './cli-util.ts';
import { assertClose } from './util.ts';

const W64 = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-api-'));
const { gallery, classes } = smallGallery(join(tmp, 'gallery'));
const sk = join(tmp, 'sk.png');
png(sk, 90, 80, 7, 'sketch');

let m: SketchGPU;

async function refusal(p: Promise<unknown>, code: string, msg: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(isSketchError(e), `not a SketchError: ${(e as Error)?.stack}`);
    assert.is((e as { code: string }).code, code, (e as Error).message);
    assert.match((e as Error).message, msg);
    assert.ok((e as { hint?: string }).hint, 'a hint');
    return;
  }
  assert.unreachable(`expected a ${code} refusal`);
}

test.before(async () => {
  m = await SketchGPU.load({ weights: W64 });
});
test.after(async () => {
  await m?.dispose();
});

test('load: info names the model; the default is the bundled ZSE-SBIR weights', async () => {
  assert.is(m.info.model, 'zse-sbir');
  assert.is(m.info.imageSize, 64);
  assert.ok(m.info.hasRelation);
  assert.not.ok(m.info.hasText);
  assert.match(m.info.weightsSha256, /^[0-9a-f]{64}$/);
  const d = await SketchGPU.load();
  try {
    assert.match(d.info.weights, /weights\/zse-sketchy104-small\.safetensors$/);
    assert.is(d.info.imageSize, 128); // the shipped weights: run H (weights/README.md), 128 px
  } finally {
    await d.dispose();
  }
});

test('embedSketch / embedPhoto: a path, a file URL, a Buffer, an ArrayBuffer and raw RGBA give the CLI\'s embedding', async () => {
  const cliEmb = json(['embed', '--weights', W64, '--modality', 'sketch', '--json', sk]).embeddings as number[][];
  const bytes = readFileSync(sk);
  const decoded = PNG.sync.read(bytes);
  const raw = { data: new Uint8Array(decoded.data), width: decoded.width, height: decoded.height };
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const all = await m.embedSketch([sk, pathToFileURL(sk), bytes, ab, raw]);
  assert.ok(all instanceof Embeddings);
  assert.equal([...all.shape], [5, m.info.dim]);
  for (let i = 0; i < 5; i++) assertClose(all.rows[i]!, cliEmb[0]!, 1e-6, 0, `form ${i}`);
  const one = await m.embedSketch(sk);
  assert.equal([...one.shape], [1, m.info.dim]);
  assert.equal(JSON.parse(JSON.stringify(one)), { shape: [1, m.info.dim], rows: one.rows }, 'JSON: shape and nested rows');
  const photos = [join(gallery, 'apple', 'p0.png'), join(gallery, 'cat', 'p2.png')];
  const cliPhoto = json(['embed', '--weights', W64, '--modality', 'photo', '--json', ...photos]).embeddings as number[][];
  assertClose((await m.embedPhoto(photos)).data, cliPhoto.flat(), 1e-6, 0, 'photos');
});

test('modelInput, ModelInput.fromTensor, { tokens } and score: the CLI\'s preprocess, embed of a .npy and score (ret, rn)', async () => {
  const S = m.info.imageSize;
  const xi = await m.modelInput(sk, 'sketch');
  const x = xi.data;
  assert.is(xi.count, 1);
  const npy = join(tmp, 'sk.npy');
  assert.is(cli(['preprocess', '--modality', 'sketch', '--size', String(S), sk, '-o', npy]).code, 0);
  assert.equal(x, readNpy(readFileSync(npy)).data, 'the model input is the CLI preprocess .npy');
  const photos = [join(gallery, 'apple', 'p0.png'), join(gallery, 'cat', 'p2.png')];
  const px = await Promise.all(photos.map(async (p) => (await m.modelInput(p, 'photo')).data));
  // A tensor of two images stands for two rows, in place.
  const both = new Float32Array(2 * 3 * S * S);
  both.set(px[0]!, 0);
  both.set(px[1]!, 3 * S * S);
  const mixed = await m.embedPhoto([photos[1]!, ModelInput.fromTensor(both, 'photo', S)]);
  const plain = await m.embedPhoto(photos);
  assert.equal([...mixed.shape], [3, m.info.dim]);
  assert.equal(mixed.rows, [plain.rows[1], plain.rows[0], plain.rows[1]]);
  assert.equal((await m.embedSketch(xi)).data, (await m.embedSketch(sk)).data);
  assert.equal((await m.embedSketch(ModelInput.fromTensor(x, 'sketch', S))).data, (await m.embedSketch(sk)).data);
  const withTokens = await m.embedPhoto(photos, { tokens: true });
  assert.equal(withTokens.data, plain.data);
  assert.is(withTokens.tokens!.length, 2 * m.model.tokens * m.info.dim);
  assert.is(plain.tokens, undefined);
  for (const mode of ['ret', 'rn'] as const) {
    const ref = json(['score', '--weights', W64, '--mode', mode, '--json', '--sketch', sk, npy, '--photo', ...photos]).scores as number[][];
    const s = await m.score([sk, xi], photos, { relation: mode === 'rn' });
    assert.ok(s instanceof Scores);
    assert.equal([...s.shape], [2, 2]);
    assertClose(s.data, ref.flat(), 1e-6, 0, `score ${mode}`);
    assert.equal(s.rows[0], s.rows[1], `${mode}: the image and its preprocessed tensor score alike`);
    if (mode === 'ret') {
      // Cosine: the dot products of the unit embeddings.
      const e = (await m.embedSketch(sk)).rows[0]!;
      assertClose(s.rows[0]!, plain.rows.map((p) => p.reduce((acc, v, d) => acc + v * e[d]!, 0)), 1e-5, 1e-5, 'cosine = dot of unit embeddings');
    }
  }
  // Warnings go where onWarning says (the CLI prints them as warning: lines).
  const img = new PNG({ width: 64, height: 64 });
  for (let i = 0; i < 64 * 64; i++) img.data.set(i % 64 > 20 && i % 64 < 24 ? [0, 0, 0, 255] : [0, 0, 0, 0], 4 * i);
  const warned: string[] = [];
  const w = await SketchGPU.load({ weights: W64, onWarning: (msg) => warned.push(msg) });
  try {
    await w.modelInput(PNG.sync.write(img), 'sketch', { name: 'clear.png' });
    assert.is(warned.length, 1);
    assert.match(warned[0]!, /clear\.png: 9\d\.\d% of the sketch's pixels are \(partly\) transparent/);
  } finally {
    await w.dispose();
  }
});

test('index + search: the CLI\'s index + query ranking and scores, cosine and RN re-rank; unreadable photos skipped', async () => {
  const seen: [number, number][] = [];
  const r = await m.index(gallery, { onProgress: (d, t) => seen.push([d, t]) });
  assert.is(r.photos, 9);
  assert.equal(r.skipped.map((s) => s.id), ['boat/broken.jpg']);
  assert.equal(seen.at(-1), [10, 10]);
  const ix = join(tmp, 'cli.sgi');
  json(['index', gallery, '-o', ix, '--weights', W64, '--json']);
  for (const rerank of [false, true]) {
    const q = json(['query', sk, '--index', ix, '-k', '5', '--json', ...(rerank ? ['--rerank', 'rn', '--rerank-k', '9'] : [])]);
    // query --json: the sketch embeddings as nested arrays, a row per sketch, equal to the API's.
    assert.ok(Array.isArray(q.sketchEmbeddings) && Array.isArray(q.sketchEmbeddings[0]), 'sketchEmbeddings as number[][]');
    assertClose(q.sketchEmbeddings[0], (await m.embedSketch(sk)).rows[0]!, 1e-6, 0, 'query --json embedding');
    const ref = q.results[0].hits;
    const hits = await m.search(sk, { k: 5, rerank, rerankK: 9 });
    assert.equal(hits.map((h) => h.id), ref.map((h: { path: string }) => h.path), `rerank ${rerank}: ranking`);
    assertClose(hits.map((h) => h.score), ref.map((h: { score: number }) => h.score), 1e-5, 0, `rerank ${rerank}: scores`);
    assert.equal(hits.map((h) => h.rank), [1, 2, 3, 4, 5]);
    if (rerank) assert.ok(hits.every((h) => h.rn === h.score));
  }
});

test('index an array of named images; saveIndex is an index file the CLI queries with the same ranking', async () => {
  const r = await m.index(classes.map((c) => ({ id: `${c}/p1.png`, image: readFileSync(join(gallery, c, 'p1.png')) })));
  assert.is(r.photos, 3);
  const hits = await m.search(sk, { k: 3, rerank: true });
  assert.equal(hits.map((h) => h.id).sort(), classes.map((c) => `${c}/p1.png`));
  // Ids an index file cannot hold (loadIndex would refuse the file) are refused when saving, not after.
  await m.index([{ id: '/web/sample/a.png', image: readFileSync(join(gallery, 'cat', 'p1.png')) }]);
  await refusal(Promise.resolve().then(() => m.saveIndex()), 'BAD_ARGUMENT', /"\/web\/sample\/a\.png" cannot go into an index file/);
  await m.index(gallery);
  const file = join(tmp, 'api.sgi');
  writeFileSync(file, m.saveIndex());
  const ref = json(['query', sk, '--index', file, '--weights', W64, '-k', '4', '--json']).results[0].hits;
  assert.equal((await m.search(sk, { k: 4 })).map((h) => h.id), ref.map((h: { path: string }) => h.path));
  // Reopened: re-ranking re-reads the photos from the index's folder.
  assert.equal(await m.loadIndex(readFileSync(file), file), { photos: 9 });
  const rr = json(['query', sk, '--index', file, '--weights', W64, '-k', '4', '--rerank', 'rn', '--json']).results[0].hits;
  assert.equal((await m.search(sk, { k: 4, rerank: true })).map((h) => h.id), rr.map((h: { path: string }) => h.path));
});

test('explain: the CLI\'s RN score and links, and the pictures', async () => {
  const photo = join(gallery, 'cat', 'p0.png');
  const ref = json(['explain', sk, photo, '--weights', W64, '-o', join(tmp, 'why.png'), '--json']);
  const e = await m.explain(sk, photo);
  assert.ok(Math.abs(e.rn - ref.rn) < 1e-5, `${e.rn} vs ${ref.rn}`);
  assert.ok(Math.abs(e.cosine - ref.cosine) < 1e-5);
  assert.equal(e.links.map((l) => [l.sketchPatch, l.photoPatch]), ref.links.map((l: { sketch_patch: number[]; photo_patch: number[] }) => [l.sketch_patch, l.photo_patch]));
  assert.is(e.views.sheet.data.length, e.views.sheet.width * e.views.sheet.height * 4);
  assert.equal(e.anchors.shape, [e.anchors.shape[0], e.anchors.shape[0]]);
});

test('CAAN: embedText, text and sketch+text searches (with the text re-rank) give the CLI\'s', async () => {
  const WC = resolve(FIXTURES, 'caan', 'tiny.weights.safetensors');
  const c = await SketchGPU.load({ weights: WC });
  try {
    assert.is(c.info.model, 'caan');
    assert.ok(c.info.hasText);
    const t = 'a photo of a cat';
    const cliText = json(['embed', '--weights', WC, '--modality', 'text', '--json', t]).embeddings as number[][];
    assertClose((await c.embedText(t)).rows[0]!, cliText[0]!, 1e-6, 0, 'text embedding');
    await c.index(gallery);
    const ix = join(tmp, 'caan.sgi');
    json(['index', gallery, '-o', ix, '--weights', WC, '--json']);
    const cases: [Parameters<typeof c.search>[0], string[]][] = [
      [{ text: t }, ['--text', t]],
      [{ text: t, sketch: sk, textWeight: 0.3 }, [sk, '--text', t, '--text-weight', '0.3']],
    ];
    for (const [q, args] of cases) {
      for (const rerank of [false, true]) {
        const ref = json(['query', ...args, '--index', ix, '-k', '4', '--json', ...(rerank ? ['--rerank', 'rn'] : [])]).results[0].hits;
        const hits = await c.search(q, { k: 4, rerank });
        const what = `${args.join(' ')}${rerank ? ' --rerank rn' : ''}`;
        assert.equal(hits.map((h) => h.id), ref.map((h: { path: string }) => h.path), what);
        assertClose(hits.map((h) => h.score), ref.map((h: { score: number }) => h.score), 1e-5, 0, what);
      }
    }
    await refusal(c.explain(sk, join(gallery, 'cat', 'p0.png')), 'BAD_WEIGHTS', /ZSE-SBIR/);
  } finally {
    await c.dispose();
  }
});

test('bad inputs are SketchErrors with a hint', async () => {
  await refusal(m.embedSketch(join(tmp, 'missing.png')), 'IO', /missing\.png/);
  await refusal(m.embedSketch(Buffer.from('not an image')), 'BAD_IMAGE', /./);
  await refusal(m.embedSketch({ data: new Uint8Array(10), width: 4, height: 4 }), 'BAD_IMAGE', /RGBA/);
  await refusal(m.embedSketch(42 as never), 'BAD_ARGUMENT', /not an image/);
  await refusal(m.embedSketch([]), 'BAD_ARGUMENT', /no sketch/);
  const S = m.info.imageSize;
  const fromTensor = (t: Float32Array, modality: 'sketch' | 'photo', name?: string) => Promise.resolve().then(() => ModelInput.fromTensor(t, modality, S, name));
  await refusal(fromTensor(new Float32Array(3 * S * S + 1), 'sketch'), 'BAD_ARGUMENT', new RegExp(`n x 3x${S}x${S} values; got ${3 * S * S + 1} values`));
  await refusal(fromTensor(new Float32Array(3 * S * S).fill(255), 'sketch'), 'BAD_NPY', /the sketch tensor holds 255 \(image 0, element 0\), far outside the \[-1, 1\]/);
  await refusal(fromTensor(new Float32Array(3 * S * S).fill(NaN), 'photo', 'x.npy'), 'BAD_NPY', /x\.npy holds NaN .*finite/);
  await refusal(m.modelInput(sk, 'text' as never), 'BAD_ARGUMENT', /modality must be/);
  // A model input is of one modality and size, and search and explain take one image.
  const skIn = await m.modelInput(sk, 'sketch');
  await refusal(m.embedPhoto(skIn), 'BAD_ARGUMENT', /is a sketch of \d+ px, and a photo/);
  await refusal(m.embedSketch(ModelInput.fromTensor(new Float32Array(3 * 32 * 32), 'sketch', 32)), 'BAD_ARGUMENT', /of 32 px/);
  const two = new Float32Array(2 * 3 * S * S);
  two.set(skIn.data, 0);
  two.set(skIn.data, 3 * S * S);
  await refusal(m.search(ModelInput.fromTensor(two, 'sketch', S)), 'BAD_ARGUMENT', /search takes one image, and this model input holds 2/);
  await refusal(SketchGPU.load({ weights: W64, onWarning: 'console' as never }), 'BAD_ARGUMENT', /onWarning must be a function/);
  await refusal(m.search(sk, { k: 0 }), 'BAD_ARGUMENT', /k must be/);
  await refusal(m.search({ text: 'a cat' }), 'BAD_ARGUMENT', /text tower/);
  await refusal(m.index([{ id: 'a', image: sk }, { id: 'a', image: sk }]), 'BAD_ARGUMENT', /two photos/);
  await refusal(SketchGPU.load({ weights: join(tmp, 'missing.safetensors') }), 'IO', /missing/);
  await refusal(SketchGPU.load({ weights: W64, model: 'caan' }), 'BAD_WEIGHTS', /CAAN|caan/);
  const fresh = await SketchGPU.load({ weights: W64 });
  await refusal(fresh.search(sk), 'BAD_ARGUMENT', /nothing is indexed/);
  await fresh.dispose();
  await refusal(fresh.embedSketch(sk), 'BAD_ARGUMENT', /disposed/);
});

test('dispose frees the model, not the process\'s device, which the lower-level API and other models share', async () => {
  const other = await SketchGPU.load({ weights: W64 });
  await other.dispose();
  await m.dispose();
  const ctx = await nodeGpu();
  assert.not.ok(ctx.isLost(), 'the shared device was destroyed');
  const again = await SketchGPU.load({ weights: W64 });
  try {
    assert.equal([...(await again.embedSketch(sk)).shape], [1, again.info.dim]);
  } finally {
    await again.dispose();
  }
  assert.not.ok(ctx.isLost());
});

test.run();
