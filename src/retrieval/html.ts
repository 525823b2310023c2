/** Node-only: a self-contained HTML result sheet (images inlined as data URIs, so the file can be moved or mailed). */
import { isSketchError } from '../core/errors.ts';
import { readBoundedFileSync } from '../io/read-file.ts';
import { basename } from 'node:path';
import type { QueryHit } from './query.ts';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Inline images up to this size; larger ones are linked by path. */
const INLINE_MAX = 2 * 2 ** 20;

/**
 * A data URI of a PNG or JPEG file. Only a regular file whose content is a PNG or JPEG is inlined: whatever path a
 * crafted index names (query.ts confines them to the index root), the sheet never carries another file's bytes.
 */
function imageSrc(file: string): string {
  let b: Uint8Array;
  try {
    b = readBoundedFileSync(file, 'image', INLINE_MAX);
  } catch (e) {
    return isSketchError(e) && /MiB, more than/.test(e.message) ? `file://${encodeURI(file)}` : '';
  }
  const mime = b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 ? 'image/png'
    : b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff ? 'image/jpeg' : null;
  return mime ? `data:${mime};base64,${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')}` : '';
}

/** One query of the sheet: a sketch, a text, or both (a composed query). */
export interface SheetRow { sketch?: string; text?: string; hits: QueryHit[] }

function queryFigure(r: SheetRow): string {
  if (r.sketch === undefined) return `<figure class="query"><div class="text">${esc(r.text ?? '')}</div><figcaption>text query</figcaption></figure>`;
  const caption = esc(basename(r.sketch)) + (r.text === undefined ? '' : `<br>+ <q>${esc(r.text)}</q>`);
  return `<figure class="query"><img src="${imageSrc(r.sketch)}" alt="sketch"><figcaption>${caption}</figcaption></figure>`;
}

export function renderResultSheet(o: { title: string; subtitle: string; results: SheetRow[]; rerank: boolean }): string {
  const rows = o.results.map((r) => `
<section>
  ${queryFigure(r)}
  <div class="hits">${r.hits.map((h) => `
    <figure><img src="${imageSrc(h.file)}" alt="${esc(h.path)}" loading="lazy">
      <figcaption><b>#${h.rank}</b> ${h.score.toFixed(4)}${o.rerank ? ` <span class="aux">cos ${h.cosine.toFixed(4)}</span>` : ''}<br><span class="path">${esc(h.path)}</span></figcaption></figure>`).join('')}
  </div>
</section>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(o.title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}p.sub{color:#666;margin:0 0 20px}
section{display:flex;gap:16px;align-items:flex-start;background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px;margin-bottom:16px}
figure{margin:0;width:132px}figure img{width:128px;height:128px;object-fit:cover;border:1px solid #ccc;border-radius:4px;background:#fff}
figure.query img{border:2px solid #2563eb}figure.query .text{width:112px;height:112px;padding:8px;border:2px solid #2563eb;border-radius:4px;background:#fff;font-size:15px;overflow:hidden}.hits{display:flex;flex-wrap:wrap;gap:10px}
figcaption{font-size:12px;line-height:1.3;word-break:break-all}.aux,.path{color:#777}
</style></head><body>
<h1>${esc(o.title)}</h1><p class="sub">${esc(o.subtitle)}</p>${rows}
</body></html>
`;
}
