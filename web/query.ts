// Queries: the pad and the text box searched as they change, results, and the explanation of a match.
import { composeQueries, decodeImage, isSketchError, MODEL_LABEL, preprocessPhoto, preprocessSketch, SketchError, ZseRetrieval, type DecodedImage, explainPair, renderExplanation, type Rgba } from '../src/browser.ts';
import { K, DEBOUNCE_MS, el, pad } from './page.ts';
import { errorText, ms } from './messages.ts';
import { type Hit, clipTokenizer, engine, gallery, galleryReady, modelInfo, onGalleryChange } from './gallery.ts';

// Queries

/** What the page showed last: read (and lastExplain reset) by the automation object, window.sketchgpuDemo. */
export interface LastRun {
  /** The results shown for the pad, and a counter bumped with each new result list. */
  lastResults: Hit[] | null;
  resultsVersion: number;
  lastQuery: { source: string; text?: string; textWeight?: number; timings: QueryTimings; generation: number } | null;
  lastExplain: { path: string; cosine: number; rn: number | null } | null;
}
export const lastRun: LastRun = {
  lastResults: null, resultsVersion: 0, lastQuery: null, lastExplain: null,
};

/** The model input of the last drawn query, for the explanation view. */
let lastSketchInput: Float32Array | null = null;

export interface QueryTimings { preprocess: number; embed: number; search: number; total: number }

/** One query: a preprocessed sketch, a text (CAAN), or both composed with the text's weight. */
export interface Query {
  sketch: Float32Array | null;
  text: string | null;
  /** The weight of the text in a composed query, in [0, 1] (composeQueries, as `query --text-weight`). */
  textWeight: number;
}

/**
 * Why a text cannot be searched for, as the CLI refuses it (CaanRetrieval.encodeTexts): empty, or longer than the
 * text context (the count includes the start and end tokens). Null when it can.
 */
async function textProblem(text: string): Promise<string | null> {
  if (modelInfo?.textContext === undefined) {
    return `${MODEL_LABEL[modelInfo?.kind ?? 'zse-sbir']} has no text tower: text queries need CAAN weights.`;
  }
  if (text.trim() === '') return 'The text is empty: type what to find, e.g. "a giraffe".';
  const n = (await clipTokenizer()).encode(text).length + 2;
  const limit = modelInfo.textContext;
  if (n > limit) {
    return `The text is ${n} tokens long (with the start and end tokens); the model's text context holds ${limit}. ` +
      `Shorten it by ${n - limit} token${n - limit > 1 ? 's' : ''}.`;
  }
  return null;
}

/**
 * Embed a query and search the gallery: cosine top-k on the GPU. A sketch goes through the sketch encoder (ZSE-SBIR's
 * encoder, CAAN's sketch tower), a text through CAAN's text tower; both: normalise((1 - w)·s + w·t), the CLI's
 * composition (composeQueries).
 */
export async function search(q: Query, k: number): Promise<{ hits: Hit[]; embed: number; search: number }> {
  const g = await galleryReady;
  if (q.text !== null) {
    const problem = await textProblem(q.text);
    if (problem) throw new SketchError('BAD_ARGUMENT', problem, 'Change the text and search again.');
  }
  return engine.retrying(async () => {
    const t0 = performance.now();
    const m = engine.requireModel();
    const s = q.sketch ? (await engine.exclusive(() => m.embed(q.sketch!, 1, 'sketch'))).emb : null;
    const t = q.text !== null ? await engine.exclusive(() => m.encodeTexts([q.text!])) : null;
    const emb = s && t ? composeQueries(s, 1, t, () => 0, q.textWeight, m.dim) : (s ?? t);
    if (!emb) throw new SketchError('BAD_ARGUMENT', 'nothing to search for', 'Draw something or type a text.');
    const t1 = performance.now();
    const found = await engine.exclusive(() => engine.search!.search(emb, 1, Math.min(k, g.index.paths.length)));
    const t2 = performance.now();
    return { hits: found[0]!.map((h) => ({ path: g.index.paths[h.index]!, score: h.score })), embed: t1 - t0, search: t2 - t1 };
  });
}

export function sketchInputOf(img: DecodedImage): Float32Array {
  return preprocessSketch(img, modelInfo!.imageSize);
}

/** The text box's text when the model has a text tower and the box holds more than white space, else null. */
export function currentText(): string | null {
  if (modelInfo?.textContext === undefined) return null;
  return el.text.value.trim() === '' ? null : el.text.value;
}

export const textWeight = (): number => Number(el.textWeight.value);

export function textMessage(text: string): void {
  el.textMessage.textContent = text;
  el.textMessage.hidden = text === '';
}

/** The live token count under the text box ("5 / 77 tokens"), once the vocabulary is there. */
export async function showTokenCount(): Promise<void> {
  const limit = modelInfo?.textContext;
  if (limit === undefined) return;
  const v = el.text.value;
  if (v.trim() === '') {
    el.textTokens.textContent = '';
    return;
  }
  try {
    const n = (await clipTokenizer()).encode(v).length + 2;
    if (el.text.value !== v) return;
    el.textTokens.textContent = `${n} / ${limit} tokens`;
    el.textTokens.classList.toggle('over', n > limit);
  } catch {
    el.textTokens.textContent = '';
  }
}

let queryTimer: ReturnType<typeof setTimeout> | undefined;
export let queryRunning = false;
let queryPending = false;

export let queryScheduled = false;

export function schedule(delay = DEBOUNCE_MS): void {
  clearTimeout(queryTimer);
  queryScheduled = true;
  queryTimer = setTimeout(fire, delay);
}

async function fire(): Promise<void> {
  queryScheduled = false;
  if (queryRunning) {
    queryPending = true;
    return;
  }
  queryRunning = true;
  try {
    await queryPad();
  } catch (e) {
    const t = errorText(e);
    el.resultsHint.hidden = false;
    el.resultsHint.textContent = `The query failed: ${t.title}${t.hint ? ` (${t.hint})` : ''}`;
  } finally {
    queryRunning = false;
    if (queryPending) {
      queryPending = false;
      void fire();
    }
  }
}

/**
 * Runs a search with "searching…" shown and the results on screen greyed as stale until it ends (the first search
 * takes seconds on a software GPU: pipelines are compiled then).
 */
async function searching<T>(fn: () => Promise<T>): Promise<T> {
  el.searchStatus.hidden = false;
  el.results.classList.add('stale');
  el.results.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    el.searchStatus.hidden = true;
    el.results.classList.remove('stale');
    el.results.removeAttribute('aria-busy');
  }
}

/** The query of the pad and the text box (CAAN), as they are now: searched and shown. */
async function queryPad(): Promise<void> {
  if (!engine.weights) return;
  const text = currentText();
  if (pad.isEmpty() && text === null) {
    showResults(null, null);
    return;
  }
  const t0 = performance.now();
  let x: Float32Array | null = null;
  const file = pad.file;
  let source = pad.isEmpty() ? 'text' : file ? file.name : 'drawing';
  if (!pad.isEmpty()) {
    try {
      x = sketchInputOf(file ? decodeImage(file.bytes, file.name) : pad.pixels());
    } catch (e) {
      if (!(isSketchError(e) && e.code === 'EMPTY_SKETCH')) throw e;
      if (text === null) {
        showResults(null, null);
        el.resultsHint.textContent = 'No ink yet: strokes must be dark on white.';
        return;
      }
      source = 'text';
    }
  }
  if (text !== null) {
    const problem = await textProblem(text);
    textMessage(problem ?? '');
    if (problem) {
      showResults(null, null);
      el.resultsHint.textContent = problem;
      return;
    }
  }
  const t1 = performance.now();
  if (!gallery) el.resultsHint.textContent = 'Waiting for the gallery index…';
  const q: Query = { sketch: x, text, textWeight: textWeight() };
  const r = await searching(() => search(q, K));
  const timings = { preprocess: t1 - t0, embed: r.embed, search: r.search, total: performance.now() - t0 };
  lastSketchInput = x;
  lastRun.lastQuery = {
    source, timings, generation: engine.generation,
    ...(text !== null ? { text, ...(x ? { textWeight: q.textWeight } : {}) } : {}),
  };
  lastRun.lastResults = r.hits;
  lastRun.resultsVersion++;
  showResults(r.hits, timings, q);
}

function describeQuery(q: Query): string {
  const quoted = (t: string) => `"${t.length > 60 ? `${t.slice(0, 57)}…` : t}"`;
  if (q.sketch && q.text !== null) return `sketch + text ${quoted(q.text)}, text weight ${q.textWeight.toFixed(2)}: cosine of the composed query`;
  if (q.text !== null) return `text ${quoted(q.text)}: cosine with the text tower's embedding`;
  return modelInfo?.kind === 'caan' ? 'sketch: cosine of the sketch tower\'s embedding' : 'sketch: cosine';
}

export function showResults(hits: Hit[] | null, t: QueryTimings | null, q?: Query): void {
  el.results.replaceChildren();
  el.resultsHint.hidden = !!hits;
  el.resultsHint.textContent = modelInfo?.textContext !== undefined
    ? 'Draw something (or try a sample sketch), or type a text: results update as you go.'
    : 'Draw something (or try a sample sketch): results update as you draw.';
  el.timings.textContent = t
    ? `preprocess ${ms(t.preprocess)} · embed ${ms(t.embed)} · search ${ms(t.search)} · total ${ms(t.total)}`
    : '';
  el.queryInfo.textContent = hits && q && modelInfo?.kind === 'caan' ? `query: ${describeQuery(q)}` : '';
  if (!hits || !gallery) return;
  const g = gallery;
  const explainable = !!q?.sketch;
  hits.forEach((h, i) => {
    const li = document.createElement('li');
    li.tabIndex = 0;
    li.dataset.path = h.path;
    li.title = `${h.path}: cosine ${h.score.toFixed(6)}${explainable ? ' (click: why this match)' : ''}`;
    const img = document.createElement('img');
    img.src = g.url(h.path);
    img.alt = h.path;
    const cap = document.createElement('div');
    cap.className = 'cap';
    const cls = h.path.includes('/') ? h.path.slice(0, h.path.indexOf('/')) : h.path;
    cap.innerHTML = `<span class="rank">${i + 1}</span> <span class="cls"></span> <span class="score">${h.score.toFixed(4)}</span>`;
    cap.querySelector('.cls')!.textContent = cls;
    li.append(img, cap);
    const open = () => void explain(h).catch((e) => {
      const t2 = errorText(e);
      el.explainScores.textContent = `Could not explain: ${t2.title}`;
    });
    li.addEventListener('click', open);
    li.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') open();
    });
    el.results.append(li);
  });
}

/** Draw a model input [3,S,S] in [-1,1] (what the model sees) on a canvas. */
function drawInput(c: HTMLCanvasElement, x: Float32Array, S: number): void {
  c.width = S;
  c.height = S;
  const g = c.getContext('2d')!;
  const im = g.createImageData(S, S);
  const n = S * S;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < 3; ch++) im.data[4 * i + ch] = Math.round((x[ch * n + i]! * 0.5 + 0.5) * 255);
    im.data[4 * i + 3] = 255;
  }
  g.putImageData(im, 0, 0);
}

/** One explanation picture as a figure with a caption. */
function figure(img: Rgba, caption: string): HTMLElement {
  const c = document.createElement('canvas');
  c.width = img.width;
  c.height = img.height;
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  const f = document.createElement('figure');
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  f.append(c, cap);
  return f;
}

function showExplanation(v: ReturnType<typeof renderExplanation>, anchors: number): void {
  el.explainSlot.replaceChildren(
    figure(v.links, `the ${v.linkList.length} strongest cross-attention links: sketch patch -> the photo patch it attends to most`),
    figure(v.heatSketch, 'sketch patches the photo attends to'),
    figure(v.heatPhoto, 'photo patches the sketch attends to'),
    figure(v.sketchFromPhoto, 'patch replacement: the sketch rebuilt from its best-matching photo patches'),
    figure(v.photoFromSketch, 'and the photo rebuilt from sketch patches'),
    figure(v.anchors, `the ${anchors}x${anchors} anchor cosine matrix the relation network reads`),
  );
}

/**
 * "Why this match": the sketch and the photo as the model sees them, their cosine, and with the RN head the
 * relation-network score and the explanation views of src/explain (cross-attention links, heat maps, patch
 * replacement, anchor cosines), the same as `sketchgpu explain`. Those views read ZSE-SBIR's cross-attention; for
 * CAAN the page shows its relation score (sk_im/im_sk cross-attention, anchors, RN: what `query --rerank rn`
 * re-ranks by) with a note that the views are ZSE-SBIR's.
 */
async function explain(h: Hit): Promise<void> {
  const g = gallery;
  const x = lastSketchInput;
  if (!g || !x) return;
  const S = modelInfo!.imageSize;
  el.explain.hidden = false;
  el.explainPath.textContent = h.path;
  el.explainScores.textContent = `cosine ${h.score.toFixed(6)}…`;
  drawInput(el.explainSketch, x, S);
  const photo = preprocessPhoto(decodeImage(await g.load(h.path), h.path.split('/').pop()), S);
  drawInput(el.explainPhoto, photo, S);
  // Below the results: bring the panel's head to the top of the view (not just its first visible pixel).
  el.explain.scrollIntoView({ block: 'start', behavior: 'smooth' });
  const composed = lastRun.lastQuery?.text !== undefined;
  const parts = [`${composed ? 'sketch+text cosine' : 'cosine'} ${h.score.toFixed(6)}`];
  el.explainSlot.replaceChildren();
  if (modelInfo!.kind === 'caan') {
    const t0 = performance.now();
    const rn = await engine.retrying(() => engine.exclusive(async () => {
      const m = engine.requireModel();
      const sk = await m.embed(x, 1, 'sketch', { tokens: true });
      const im = await m.embed(photo, 1, 'photo', { tokens: true });
      const side = (tokens: Float32Array, which: 'sketch' | 'photo') => m.relationSide(tokens, 1, which, false);
      return (await m.relation(await side(sk.tokens!, 'sketch'), await side(im.tokens!, 'photo'), Uint32Array.of(0, 0)))[0]!;
    }));
    parts.push(`CAAN relation score ${rn.toFixed(6)} (${ms(performance.now() - t0)})`);
    const note = document.createElement('p');
    note.className = 'explain-note';
    note.textContent = 'The relation score is CAAN\'s local sketch-photo score (sketch-photo cross-attention, anchor ' +
      'cosines, relation network), the score `sketchgpu query --rerank rn` re-ranks by' +
      (composed ? '; it scores the drawing alone, the text plays no part in it' : '') +
      '. The correspondence views (cross-attention links, heat maps, patch replacement) are drawn for ZSE-SBIR weights only.';
    el.explainSlot.append(note);
    lastRun.lastExplain = { path: h.path, cosine: h.score, rn };
  } else if (engine.weights!.kind === 'zse-sbir' && engine.weights!.weights.config.hasHead) {
    const t0 = performance.now();
    const e = await engine.retrying(() => engine.exclusive(() => explainPair((engine.requireModel() as ZseRetrieval).model, x, photo)));
    parts.push(`relation-network score ${e.rn.toFixed(6)} (${ms(performance.now() - t0)})`);
    showExplanation(renderExplanation(e, x, photo, 12), e.anchorGrid ** 2);
    lastRun.lastExplain = { path: h.path, cosine: h.score, rn: e.rn };
  } else {
    parts.push('no relation-network score or correspondences: these weights have no cross-attention head');
    lastRun.lastExplain = { path: h.path, cosine: h.score, rn: null };
  }
  el.explainScores.textContent = parts.join(' · ');
  // Again now that the views are in: the panel has grown, and the page can scroll its head to the top.
  el.explain.scrollIntoView({ block: 'start', behavior: 'smooth' });
}


onGalleryChange(() => {
  if (!pad.isEmpty() || currentText() !== null) schedule(0);
});
