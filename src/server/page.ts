/**
 * The page `sketchgpu serve` answers at GET /: draw a sketch (or open a sketch image) and see the gallery's best
 * photos, searched by the server. No WebGPU in the browser: the GPU work is the server's, so it works in any browser
 * that reaches the server (a phone, a browser without WebGPU). One self-contained document: the script is inline
 * and allowed by its hash in the Content-Security-Policy, nothing else runs and nothing is fetched from elsewhere.
 */
import { createHash } from 'node:crypto';

const STYLE = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 10px 18px; background: #1f2933; color: #fff; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header span { color: #cbd2d9; font-size: 13px; }
main { display: flex; gap: 22px; padding: 18px; flex-wrap: wrap; align-items: flex-start; }
#pad { background: #fff; border: 1px solid #9aa5b1; touch-action: none; cursor: crosshair; width: 288px; height: 288px; }
.tools { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; margin-top: 8px; max-width: 290px; }
.tools input[type=text] { width: 270px; padding: 4px; }
button { padding: 4px 10px; }
#status { font-size: 13px; color: #52606d; max-width: 290px; min-height: 2.8em; }
#status.error { color: #b00020; }
#hits { list-style: none; padding: 0; margin: 0; display: grid; grid-template-columns: repeat(auto-fill, 150px); gap: 12px; flex: 1; min-width: 300px; }
#hits li { background: #fff; border: 1px solid #e4e7eb; padding: 6px; font-size: 12px; overflow-wrap: anywhere; }
#hits img { width: 138px; height: 138px; object-fit: cover; display: block; margin-bottom: 4px; background: #eee; }
#hits b { font-size: 13px; }
#hits button { float: right; padding: 0 6px; font-size: 12px; }
dialog { max-width: 95vw; padding: 10px; border: 1px solid #9aa5b1; }
dialog img { max-width: 92vw; display: block; image-rendering: pixelated; }
dialog p { margin: 6px 0; font-size: 13px; }
`;

const SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const pad = $('pad'), ctx = pad.getContext('2d'), hitsEl = $('hits'), statusEl = $('status');
let strokes = [], current = null, opened = null, info = null, seq = 0, timer = 0, lastSketch = null;
// A server started with a token: the page is opened as /#token=..., a fragment the browser never sends anywhere.
const token = new URLSearchParams(location.hash.slice(1)).get('token');
const auth = token ? { Authorization: 'Bearer ' + token } : {};
async function photo(img, url) {
  // With a token, photos come through fetch (an <img> cannot send the header) as blob: URLs.
  if (!token) { img.src = url; return; }
  const r = await fetch(url, { headers: auth });
  if (r.ok) img.src = URL.createObjectURL(await r.blob());
}
function status(text, error) { statusEl.textContent = text; statusEl.className = error ? 'error' : ''; }
function redraw() {
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, pad.width, pad.height);
  if (opened) { const s = Math.min(pad.width / opened.img.width, pad.height / opened.img.height); const w = opened.img.width * s, h = opened.img.height * s; ctx.drawImage(opened.img, (pad.width - w) / 2, (pad.height - h) / 2, w, h); }
  ctx.strokeStyle = '#000'; ctx.lineWidth = 3; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  for (const s of strokes) { ctx.beginPath(); s.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); if (s.length === 1) ctx.lineTo(s[0][0] + 0.1, s[0][1]); ctx.stroke(); }
}
function at(e) { const r = pad.getBoundingClientRect(); return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height]; }
pad.addEventListener('pointerdown', (e) => { pad.setPointerCapture(e.pointerId); current = [at(e)]; strokes.push(current); redraw(); });
pad.addEventListener('pointermove', (e) => { if (current) { current.push(at(e)); redraw(); } });
const end = () => { if (current) { current = null; search(); } };
pad.addEventListener('pointerup', end); pad.addEventListener('pointercancel', end);
$('undo').onclick = () => { if (strokes.length) strokes.pop(); else opened = null; redraw(); search(); };
$('clear').onclick = () => { strokes = []; opened = null; $('file').value = ''; redraw(); search(); };
$('k').onchange = () => search(); $('rerank').onchange = () => search();
$('text').oninput = () => { clearTimeout(timer); timer = setTimeout(search, 400); };
$('file').onchange = async () => {
  const f = $('file').files[0]; if (!f) return;
  const bytes = new Uint8Array(await f.arrayBuffer());
  const img = new Image(); const url = URL.createObjectURL(f);
  img.onload = () => { URL.revokeObjectURL(url); strokes = []; opened = { img, bytes, type: f.type || 'application/octet-stream' }; redraw(); search(); };
  img.onerror = () => { URL.revokeObjectURL(url); status('That file is not an image this browser can show.', true); };
  img.src = url;
};
async function body() {
  // An opened image not drawn over goes as it is (the server preprocesses it exactly as the CLI does); a drawing as PNG.
  if (opened && !strokes.length) return { bytes: opened.bytes, type: opened.type };
  if (!strokes.length) return null;
  const blob = await new Promise((r) => pad.toBlob(r, 'image/png'));
  return { bytes: new Uint8Array(await blob.arrayBuffer()), type: 'image/png' };
}
async function search() {
  const my = ++seq;
  const text = info && info.has_text ? $('text').value.trim() : '';
  const sketch = await body();
  if (my !== seq) return;
  lastSketch = sketch;
  if (!sketch && !text) { hitsEl.replaceChildren(); status(info ? 'Draw something, or open a sketch image.' : ''); return; }
  const p = new URLSearchParams({ k: $('k').value });
  if ($('rerank').checked) p.set('rerank', 'rn');
  status('Searching…');
  let r;
  try {
    r = sketch
      ? await fetch('search?' + (text ? (p.set('text', text), p) : p), { method: 'POST', body: sketch.bytes, headers: { 'Content-Type': sketch.type, ...auth } })
      : await fetch('search', { method: 'POST', body: JSON.stringify({ text, k: Number(p.get('k')), rerank: p.has('rerank') }), headers: { 'Content-Type': 'application/json', ...auth } });
  } catch (e) { if (my === seq) status('The server did not answer: ' + e.message, true); return; }
  const j = await r.json().catch(() => ({ error: { message: 'not a JSON answer (' + r.status + ')' } }));
  if (my !== seq) return;
  if (!r.ok) { hitsEl.replaceChildren(); status(j.error.message + (j.error.hint ? ' — ' + j.error.hint : ''), true); return; }
  hitsEl.replaceChildren(...j.hits.map((h) => {
    const li = document.createElement('li'); li.dataset.id = h.id; li.dataset.score = String(h.score);
    if (h.photo) { const img = document.createElement('img'); img.alt = h.id; img.loading = 'lazy'; void photo(img, h.photo.replace(/^\\//, '')); li.append(img); }
    const b = document.createElement('b'); b.textContent = h.rank + '. ' + h.score.toFixed(4);
    li.append(b, document.createElement('br'), h.id);
    if (h.rn !== undefined) li.append(document.createElement('br'), 'cosine ' + h.cosine.toFixed(4));
    if (info.explain && sketch) {
      const why = document.createElement('button'); why.type = 'button'; why.textContent = 'why?'; why.title = 'what in the sketch matches what in the photo';
      const sent = sketch;
      why.onclick = () => explain(h.id, sent);
      b.before(why);
    }
    return li;
  }));
  status(j.hits.length + ' results, ' + Math.round(j.timings_ms.total) + ' ms on the server' + (j.batch > 1 ? ' (in a batch of ' + j.batch + ')' : '') + '.');
  document.body.dataset.searches = String(Number(document.body.dataset.searches || 0) + 1);
}
async function explain(id, sketch) {
  const dlg = $('why'), img = $('why-img'), cap = $('why-cap');
  cap.textContent = 'Explaining ' + id + '…'; img.removeAttribute('src'); dlg.showModal();
  try {
    const r = await fetch('explain?id=' + encodeURIComponent(id), { method: 'POST', body: sketch.bytes, headers: { 'Content-Type': sketch.type, ...auth } });
    if (!r.ok) { const j = await r.json().catch(() => ({ error: { message: String(r.status) } })); cap.textContent = j.error.message + (j.error.hint ? ' — ' + j.error.hint : ''); return; }
    img.onload = () => { img.style.width = Math.min(img.naturalWidth * 2, innerWidth * 0.9) + 'px'; };
    img.src = URL.createObjectURL(await r.blob());
    cap.textContent = id + ': relation score ' + Number(r.headers.get('X-Sketchgpu-Rn')).toFixed(4) + ', cosine ' + Number(r.headers.get('X-Sketchgpu-Cosine')).toFixed(4) +
      '. Lines join each sketch patch to the photo patch it attends to most; heat maps, each image rebuilt from the patches of the other, and the anchor cosines the relation network reads.';
    document.body.dataset.explained = id;
  } catch (e) { cap.textContent = 'The server did not answer: ' + e.message; }
}
$('why-close').onclick = () => $('why').close();
fetch('info', { headers: auth }).then((r) => r.json()).then((i) => {
  if (i.error) { status(i.error.message + ' — ' + i.error.hint, true); return; }
  info = i;
  $('info').textContent = (i.photos === null ? 'a LanceDB gallery' : i.photos + ' photos') + ' · ' + i.label + ' weights · ' + i.adapter;
  $('rerank-l').hidden = !i.has_relation; $('text').hidden = !i.has_text;
  redraw(); status('Draw something, or open a sketch image.');
  document.body.dataset.ready = '1';
}, (e) => status('The server did not answer: ' + e.message, true));
redraw();
`;

/** The CSP source of the inline script (its SHA-256). */
export const PAGE_SCRIPT_HASH = `sha256-${createHash('sha256').update(SCRIPT).digest('base64')}`;

/** Headers of the page: only its own inline script and style run; images and requests go to this server only. */
export const PAGE_CSP = `default-src 'none'; script-src '${PAGE_SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'`;

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sketchgpu search</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>sketchgpu search</h1><span id="info">connecting…</span></header>
<main>
<section>
<canvas id="pad" width="256" height="256" aria-label="drawing pad: draw a sketch with the mouse, a pen or a finger"></canvas>
<div class="tools">
<button id="undo" type="button">Undo</button>
<button id="clear" type="button">Clear</button>
<label>results <select id="k"><option>5</option><option selected>10</option><option>20</option><option>50</option></select></label>
<label id="rerank-l" hidden><input type="checkbox" id="rerank"> re-rank (relation network)</label>
<label>or open a sketch <input id="file" type="file" accept="image/png,image/jpeg"></label>
<input id="text" type="text" placeholder="and/or a text, e.g. a giraffe (CAAN)" hidden>
</div>
<p id="status"></p>
</section>
<ol id="hits"></ol>
</main>
<dialog id="why"><p id="why-cap"></p><img id="why-img" alt="why the sketch matches the photo"><p><button id="why-close" type="button">Close</button></p></dialog>
<script>${SCRIPT}</script>
</body>
</html>
`;
