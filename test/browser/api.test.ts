// The embedding API in the browser (`SketchGPU` of dist/browser/sketchgpu.js, issue 17) in real Chromium on
// SwiftShader, against the same API in Node: every browser image form (URL string, URL, bytes, ArrayBuffer, Blob,
// ImageBitmap, canvas, ImageData, raw RGBA) gives Node's embedding of the file; index + search (cosine and RN
// re-rank) rank the photos as Node does; a bad input is a SketchError with a hint.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SketchGPU } from '../../src/index.ts';
import { REPO_ROOT } from '../paths.ts';
import { browserUnavailable, openSession } from './harness.ts';
// @ts-expect-error: plain JS module without types
import { startServer } from '../../web/serve.mjs';

const T = suite('browser API');
const skip = browserUnavailable();
const WEIGHTS_REL = 'test/fixtures/zse/tiny64.weights.safetensors';
const SAMPLE = resolve(REPO_ROOT, 'web', 'sample');
const sketchRel = `web/sample/sketch/cow/${readdirSync(join(SAMPLE, 'sketch', 'cow')).sort()[0]}`;
const photoRels = ['cow', 'bat', 'pear'].flatMap((c) => readdirSync(join(SAMPLE, 'photo', c)).sort().slice(0, 2).map((f) => `web/sample/photo/${c}/${f}`));

type PageResult = {
  shape: number[]; rows: number[][]; names: string[];
  hits: { id: string; score: number }[]; reranked: { id: string; score: number }[];
  bad: { code: string; hint: string; message: string } | null;
};

if (skip) T.skip(`the browser API equals Node's (SKIPPED: ${skip})`, () => undefined);
else T('every browser image form gives Node\'s embedding; index + search rank as in Node; refusals', async () => {
  const server = await startServer({ port: 0 });
  const s = await openSession();
  const node = await SketchGPU.load({ weights: resolve(REPO_ROOT, WEIGHTS_REL) });
  try {
    const missing: string[] = [];
    s.page.on('response', (res) => { if (res.status() === 404) missing.push(new URL(res.url()).pathname); });
    await s.page.goto(new URL("/dist/browser/sketchgpu.js", server.url).href); // a same-origin document to import from
    const r: PageResult = await s.page.evaluate(async ([weights, sketch, photos]) => {
      const { SketchGPU: B } = await import('/dist/browser/sketchgpu.js' as string);
      const m = await B.load({ weights: `/${weights}` });
      const url = `/${sketch}`;
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const blob = new Blob([bytes], { type: 'image/png' });
      const bmp = await createImageBitmap(blob);
      const canvas = document.createElement('canvas');
      canvas.width = bmp.width;
      canvas.height = bmp.height;
      const g = canvas.getContext('2d')!;
      g.drawImage(bmp, 0, 0);
      const id = g.getImageData(0, 0, bmp.width, bmp.height);
      const forms: [string, unknown][] = [['url string', url], ['URL', new URL(url, location.href)], ['bytes', bytes], ['ArrayBuffer', bytes.buffer],
        ['Blob', blob], ['ImageBitmap', bmp], ['canvas', canvas], ['ImageData', id], ['raw RGBA', { data: new Uint8Array(id.data), width: id.width, height: id.height }]];
      const e = await m.embedSketch(forms.map((f) => f[1]));
      await m.index((photos as string[]).map((p) => `/${p}`));
      const hits = (await m.search(url, { k: 6 })).map((h: { id: string; score: number }) => ({ id: h.id, score: h.score }));
      const reranked = (await m.search(url, { k: 6, rerank: true })).map((h: { id: string; score: number }) => ({ id: h.id, score: h.score }));
      let bad = null;
      try {
        await m.embedSketch(42);
      } catch (err) {
        bad = { code: (err as { code: string }).code, hint: (err as { hint: string }).hint, message: (err as Error).message };
      }
      await m.dispose();
      return { shape: [...e.shape], rows: e.rows, names: forms.map((f) => f[0]), hits, reranked, bad };
    }, [WEIGHTS_REL, sketchRel, photoRels] as const);
    const ref = (await node.embedSketch(resolve(REPO_ROOT, sketchRel))).rows[0]!;
    assert.equal(r.shape, [9, ref.length]);
    r.rows.forEach((row, i) => {
      const d = Math.max(...row.map((v, j) => Math.abs(v - ref[j]!)));
      assert.ok(d < 1e-4, `${r.names[i]}: max |diff| ${d} from Node's embedding`);
    });
    await node.index(photoRels.map((p) => ({ id: `/${p}`, image: resolve(REPO_ROOT, p) })));
    for (const [what, got, rerank] of [['cosine', r.hits, false], ['RN re-rank', r.reranked, true]] as const) {
      const want = await node.search(resolve(REPO_ROOT, sketchRel), { k: 6, rerank });
      assert.equal(got.map((h) => h.id), want.map((h) => h.id), `${what}: browser vs Node ranking`);
      got.forEach((h, i) => assert.ok(Math.abs(h.score - want[i]!.score) < 1e-4, `${what} rank ${i + 1}: ${h.score} vs ${want[i]!.score}`));
    }
    assert.is(r.bad?.code, 'BAD_ARGUMENT');
    assert.match(r.bad!.message, /not an image/);
    assert.ok(r.bad!.hint.length > 0);
    // Every request of the page was found; the one 404 in the console is the browser's own favicon request (the
    // document is the bundle itself, no page of ours), which Playwright does not report as a page response.
    assert.equal(missing, [], 'requests not found');
    assert.equal(s.errors.filter((e) => !/status of 404/.test(e)), [], 'console errors');
    assert.ok(s.errors.length <= 1, `console errors: ${s.errors.join('; ')}`);
  } finally {
    await node.dispose();
    await s.close();
    await server.close();
  }
});

T.run();
