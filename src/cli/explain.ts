/** `sketchgpu explain`: why a sketch and a photo match (cross-attention correspondences, patch replacement). */
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { SketchGPU } from '../api/node.ts';
import { SketchError } from '../core/errors.ts';
import type { RawImage } from '../api/core.ts';
import { encodePng } from '../io/png-encode.ts';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function addExplainCommand(program: Command, common: (c: Command) => Command): void {
  common(program.command('explain')
    .description('show why a sketch matches a photo: cross-attention correspondences, attention heat maps, patch replacement, anchor cosines')
    .argument('<sketch>', 'sketch image (PNG/JPEG)')
    .argument('<photo>', 'photo image (PNG/JPEG)')
    .option('--weights <file>', 'ZSE-SBIR weights with the CA and RN head (.safetensors or .pth; default: the bundled weights/zse-sketchy104-small.safetensors)')
    .requiredOption('-o, --out <file>', 'out.png (one sheet) or out.html (the views with their numbers)')
    .option('--top <n>', 'correspondence lines to draw', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new SketchError('BAD_ARGUMENT', `--top must be a positive integer, not "${v}"`, 'e.g. --top 12.');
      return n;
    }, 12)
    .option('--parts <dir>', 'also write each view as its own PNG (links, heat maps, sketch-from-photo and photo-from-sketch patch replacement, anchor matrix)')
    .option('--json', 'print the scores and correspondences as JSON'))
    .action(async (sketch: string, photo: string, o) => {
      const ext = extname(o.out).toLowerCase();
      if (ext !== '.png' && ext !== '.html') throw new SketchError('BAD_ARGUMENT', `-o must end in .png or .html, not "${o.out}"`, 'e.g. -o why.png (an image) or -o why.html (a page).');
      // The embedding API (src/api): the same explain as a library user gets.
      const m = await SketchGPU.load({ weights: o.weights, adapter: o.adapter, heads: { sa: o.saHeads, ca: o.caHeads } });
      try {
        const e = await m.explain(sketch, photo, { top: o.top });
        const v = e.views;
        const S = e.imageSize, G = e.grid;
        const links = e.links.map((l) => ({ sketch_patch: l.sketchPatch, photo_patch: l.photoPatch, weight: Number(l.weight.toFixed(6)) }));
        const weightsName = basename(m.info.weights);
        const parts: Record<string, string> = {};
        if (o.parts) {
          mkdirSync(o.parts, { recursive: true });
          for (const k of ['links', 'heatSketch', 'heatPhoto', 'sketchFromPhoto', 'photoFromSketch', 'anchors'] as const) {
            parts[k] = join(o.parts, `${k}.png`);
            writeFileSync(parts[k]!, encodePng(v[k]));
          }
        }
        if (ext === '.png') writeFileSync(o.out, encodePng(v.sheet));
        else {
          const img = (r: RawImage, alt: string) => `<img alt="${alt}" src="data:image/png;base64,${encodePng(r).toString('base64')}">`;
          writeFileSync(o.out, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sketchgpu explain</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}figure{display:inline-block;margin:0 16px 16px 0;vertical-align:top}
figcaption{font-size:12px;color:#555;max-width:480px}img{image-rendering:pixelated;border:1px solid #ccc}td,th{padding:2px 8px;text-align:left}</style></head><body>
<h1>Why ${esc(basename(sketch))} matches ${esc(basename(photo))}</h1>
<p>relation-network score <b>${e.rn.toFixed(4)}</b> &middot; SA cosine <b>${e.cosine.toFixed(4)}</b> &middot; weights ${esc(weightsName)} &middot; ${esc(m.info.adapter)}</p>
<figure>${img(v.links, 'correspondences')}<figcaption>The ${links.length} strongest cross-attention links (sketch patch → its most attended photo patch, head-averaged layer-1 attention; blank sketch patches skipped). Images are the model inputs after preprocessing (${S}×${S}, ${G}×${G} patches).</figcaption></figure>
<figure>${img(v.heatSketch, 'sketch heat')}${img(v.heatPhoto, 'photo heat')}<figcaption>Attention each patch receives from the other image's patches (bright = more).</figcaption></figure>
<figure>${img(v.sketchFromPhoto, 'sketch from photo patches')}${img(v.photoFromSketch, 'photo from sketch patches')}<figcaption>Patch replacement: the sketch rebuilt from its best-matching photo patches, and the photo rebuilt from sketch patches.</figcaption></figure>
<figure>${img(v.anchors, 'anchor cosines')}<figcaption>The ${e.anchors.shape[0]}×${e.anchors.shape[0]} anchor cosine matrix the relation network reads (rows: sketch anchors; dark -1, yellow +1).</figcaption></figure>
<table><tr><th>#</th><th>sketch patch (row, col)</th><th>photo patch (row, col)</th><th>attention</th></tr>${links.map((l, i) => `<tr><td>${i + 1}</td><td>${l.sketch_patch}</td><td>${l.photo_patch}</td><td>${l.weight.toFixed(4)}</td></tr>`).join('')}</table>
</body></html>\n`);
        }
        if (o.json) console.log(JSON.stringify({ rn: e.rn, cosine: e.cosine, grid: G, links, out: o.out, ...(o.parts ? { parts } : {}) }));
        else {
          console.log(`RN score ${e.rn.toFixed(4)}, SA cosine ${e.cosine.toFixed(4)}`);
          for (const l of links.slice(0, 5)) console.log(`  sketch patch (${l.sketch_patch}) -> photo patch (${l.photo_patch})  attention ${l.weight.toFixed(4)}`);
          console.log(`wrote ${o.out}${o.parts ? ` and the views in ${o.parts}/` : ''}`);
        }
      } finally {
        await m.dispose();
      }
    });
}
