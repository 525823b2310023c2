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

/** A gallery's classes (the demo's: the first folder of each path), to name each query's class and mark its hits. */
export interface SheetClasses {
  /** The class of a query row (undefined: unknown, nothing marked). */
  query(r: SheetRow): string | undefined;
  /** The class of a hit, from its path. */
  hit(path: string): string;
}

function queryFigure(r: SheetRow, cls: string | undefined): string {
  const named = cls === undefined ? '' : `<div class="cls">${esc(cls)}</div>`;
  if (r.sketch === undefined) return `<figure class="query"><div class="text">${esc(r.text ?? '')}</div><figcaption>${named}text query</figcaption></figure>`;
  const caption = named + `<span class="path">${esc(basename(r.sketch))}</span>` + (r.text === undefined ? '' : `<br>+ <q>${esc(r.text)}</q>`);
  return `<figure class="query"><img src="${imageSrc(r.sketch)}" alt="sketch"><figcaption>${caption}</figcaption></figure>`;
}

/**
 * Each score with its name (the ranking score first), never broken across lines: "RN 0.4405 · cos 0.4167" after a
 * relation re-rank, "cos 0.4167" otherwise.
 */
function scores(h: QueryHit, rerank: boolean, rerankLabel: string): string {
  const cos = `<span class="num">cos ${h.cosine.toFixed(4)}</span>`;
  return rerank ? `<span class="num">${esc(rerankLabel)} ${h.score.toFixed(4)}</span> <span class="aux num">${cos}</span>` : cos;
}

export function renderResultSheet(o: { title: string; subtitle: string; results: SheetRow[]; rerank: boolean; classes?: SheetClasses; rerankLabel?: string }): string {
  const label = o.rerankLabel ?? 'RN';
  const rows = o.results.map((r) => {
    const want = o.classes?.query(r);
    return `
<section>
  ${queryFigure(r, want)}
  <div class="hits">${r.hits.map((h) => {
    const same = want !== undefined && o.classes!.hit(h.path) === want;
    return `
    <figure${same ? ' class="same"' : ''}><img src="${imageSrc(h.file)}" alt="${esc(h.path)}" loading="lazy">
      <figcaption><b>#${h.rank}</b>${same ? ' <span class="mark" title="same class as the sketch">&#10003; same class</span>' : ''}<br>${scores(h, o.rerank, label)}<br><span class="path">${esc(h.path)}</span></figcaption></figure>`;
  }).join('')}
  </div>
</section>`;
  }).join('');
  const legend = o.classes ? '<p class="sub"><span class="mark">&#10003; same class</span>: a result of the sketch\'s own class (green frame).' +
    (o.rerank ? ` ${esc(label)}: the re-rank score the results are ordered by; cos: the cosine of the embeddings.` : ' cos: the cosine of the embeddings, the order of the results.') + '</p>' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(o.title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}p.sub{color:#666;margin:0 0 20px}
section{display:flex;gap:16px;align-items:flex-start;background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px;margin-bottom:16px}
figure{margin:0;width:132px}figure img{width:128px;height:128px;object-fit:cover;border:1px solid #ccc;border-radius:4px;background:#fff}
figure.query img{border:2px solid #2563eb}figure.query .text{width:112px;height:112px;padding:8px;border:2px solid #2563eb;border-radius:4px;background:#fff;font-size:15px;overflow:hidden}.hits{display:flex;flex-wrap:wrap;gap:10px}
figcaption{font-size:12px;line-height:1.3}.aux,.path{color:#777}.path{overflow-wrap:anywhere}.num{white-space:nowrap}
figure.same img{border:3px solid #16a34a}.mark{color:#15803d;font-weight:600;white-space:nowrap}.cls{font-weight:600;font-size:13px}
</style></head><body>
<h1>${esc(o.title)}</h1><p class="sub">${esc(o.subtitle)}</p>${legend}${rows}
</body></html>
`;
}
