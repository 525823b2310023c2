// Queries: the pad and the text box searched as they change, results, and the explanation of a match; all through
// the browser API (search, modelInput, explain, relationScore, textTokens of SketchGPU).
import { isSketchError, SketchError, type BrowserImage, type Explanation, type ModelInput, type RawImage, type TextQuery } from '../src/browser.ts';
import { K, DEBOUNCE_MS, el, pad } from './page.ts';
import { errorText, ms } from './messages.ts';
import { type Hit, session, gallery, galleryReady, modelInfo, onGalleryChange, textTokens } from './gallery.ts';

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
let lastSketchInput: ModelInput | null = null;

/** `embed`: embedding and search together (one API call, `search`); `search` is 0, kept for the timings' shape. */
export interface QueryTimings { preprocess: number; embed: number; search: number; total: number }

/** One query: a preprocessed sketch (the API's modelInput), a text (CAAN), or both composed with the text's weight. */
export interface Query {
  sketch: ModelInput | null;
  text: string | null;
  /** The weight of the text in a composed query, in [0, 1] (the API's TextQuery.textWeight, as `query --text-weight`). */
  textWeight: number;
}

/**
 * Why a text cannot be searched for, as the CLI refuses it (CaanRetrieval.encodeTexts): empty, or longer than the
 * text context (the count includes the start and end tokens). Null when it can.
 */
async function textProblem(text: string): Promise<string | null> {
  if (!modelInfo || modelInfo.textContext === null) {
    return `${modelInfo?.label ?? 'ZSE-SBIR'} has no text tower: text queries need CAAN weights.`;
  }
  if (text.trim() === '') return 'The text is empty: type what to find, e.g. "a giraffe".';
  const n = await textTokens(text);
  const limit = modelInfo.textContext;
  if (n > limit) {
    return `The text is ${n} tokens long (with the start and end tokens); the model's text context holds ${limit}. ` +
      `Shorten it by ${n - limit} token${n - limit > 1 ? 's' : ''}.`;
  }
  return null;
}

/**
 * Search the gallery with the API: cosine top-k on the GPU. A sketch goes through the sketch encoder (ZSE-SBIR's
 * encoder, CAAN's sketch tower), a text through CAAN's text tower; both: normalise((1 - w)·s + w·t), the CLI's
 * composition (the API's `{ sketch, text, textWeight }` query).
 */
export async function search(q: Query, k: number): Promise<{ hits: Hit[]; embed: number; search: number }> {
  const g = await galleryReady;
  if (q.text !== null) {
    const problem = await textProblem(q.text);
    if (problem) throw new SketchError('BAD_ARGUMENT', problem, 'Change the text and search again.');
  }
  const query: ModelInput | TextQuery<BrowserImage> | null = q.text === null ? q.sketch
    : q.sketch ? { sketch: q.sketch, text: q.text, textWeight: q.textWeight } : { text: q.text };
  if (!query) throw new SketchError('BAD_ARGUMENT', 'nothing to search for', 'Draw something or type a text.');
  return session.retrying(async (m) => {
    const t0 = performance.now();
    const found = await m.search(query, { k: Math.min(k, g.photos) });
    return { hits: found.map((h) => ({ path: h.id, score: h.score })), embed: performance.now() - t0, search: 0 };
  });
}

/** A sketch as the model sees it (the API's modelInput): what a query embeds. */
export function sketchInputOf(img: BrowserImage): Promise<ModelInput> {
  return session.retrying((m) => m.modelInput(img, 'sketch'));
}

/** The text box's text when the model has a text tower and the box holds more than white space, else null. */
export function currentText(): string | null {
  if (!modelInfo || modelInfo.textContext === null) return null;
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
  if (limit === undefined || limit === null) return;
  const v = el.text.value;
  if (v.trim() === '') {
    el.textTokens.textContent = '';
    return;
  }
  try {
    const n = await textTokens(v);
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
  if (!session.model) return;
  const text = currentText();
  if (pad.isEmpty() && text === null) {
    showResults(null, null);
    return;
  }
  const t0 = performance.now();
  let x: ModelInput | null = null;
  const file = pad.file;
  let source = pad.isEmpty() ? 'text' : file ? file.name : 'drawing';
  if (!pad.isEmpty()) {
    try {
      x = await sketchInputOf(file ? new File([file.bytes as Uint8Array<ArrayBuffer>], file.name) : pad.pixels());
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
    source, timings, generation: session.generation,
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
  return modelInfo?.model === 'caan' ? 'sketch: cosine of the sketch tower\'s embedding' : 'sketch: cosine';
}

export function showResults(hits: Hit[] | null, t: QueryTimings | null, q?: Query): void {
  el.results.replaceChildren();
  el.resultsHint.hidden = !!hits;
  el.resultsHint.textContent = modelInfo?.textContext !== undefined
    ? 'Draw something (or try a sample sketch), or type a text: results update as you go.'
    : 'Draw something (or try a sample sketch): results update as you draw.';
  el.timings.textContent = t
    ? `preprocess ${ms(t.preprocess)} · embed + search ${ms(t.embed + t.search)} · total ${ms(t.total)}`
    : '';
  el.queryInfo.textContent = hits && q && modelInfo?.model === 'caan' ? `query: ${describeQuery(q)}` : '';
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

/** Draw a model input (what the model sees, the API's ModelInput) on a canvas. */
function drawInput(c: HTMLCanvasElement, x: ModelInput): void {
  const img = x.toImage();
  c.width = img.width;
  c.height = img.height;
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
}

/** One explanation picture as a figure with a caption. */
function figure(img: RawImage, caption: string): HTMLElement {
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

function showExplanation(e: Explanation): void {
  const v = e.views;
  const anchors = e.anchors.shape[0];
  el.explainSlot.replaceChildren(
    figure(v.links, `the ${e.links.length} strongest cross-attention links: sketch patch -> the photo patch it attends to most`),
    figure(v.heatSketch, 'sketch patches the photo attends to'),
    figure(v.heatPhoto, 'photo patches the sketch attends to'),
    figure(v.sketchFromPhoto, 'patch replacement: the sketch rebuilt from its best-matching photo patches'),
    figure(v.photoFromSketch, 'and the photo rebuilt from sketch patches'),
    figure(v.anchors, `the ${anchors}x${anchors} anchor cosine matrix the relation network reads`),
  );
}

/**
 * "Why this match": the sketch and the photo as the model sees them (modelInput), their cosine, and with the RN head
 * the relation-network score and the explanation views of the API's `explain` (cross-attention links, heat maps,
 * patch replacement, anchor cosines), the same as `sketchgpu explain`. Those views read ZSE-SBIR's cross-attention;
 * for CAAN the page shows its relation score (`relationScore`: sk_im/im_sk cross-attention, anchors, RN: what `query
 * --rerank rn` re-ranks by) with a note that the views are ZSE-SBIR's.
 */
async function explain(h: Hit): Promise<void> {
  const g = gallery;
  const x = lastSketchInput;
  if (!g || !x) return;
  el.explain.hidden = false;
  el.explainPath.textContent = h.path;
  el.explainScores.textContent = `cosine ${h.score.toFixed(6)}…`;
  drawInput(el.explainSketch, x);
  const photo = await session.retrying((m) => m.modelInput(g.image(h.path), 'photo'));
  drawInput(el.explainPhoto, photo);
  // Below the results: bring the panel's head to the top of the view (not just its first visible pixel).
  el.explain.scrollIntoView({ block: 'start', behavior: 'smooth' });
  const composed = lastRun.lastQuery?.text !== undefined;
  const parts = [`${composed ? 'sketch+text cosine' : 'cosine'} ${h.score.toFixed(6)}`];
  el.explainSlot.replaceChildren();
  if (modelInfo!.model === 'caan') {
    const t0 = performance.now();
    const rn = await session.retrying((m) => m.relationScore(x, photo));
    parts.push(`CAAN relation score ${rn.toFixed(6)} (${ms(performance.now() - t0)})`);
    const note = document.createElement('p');
    note.className = 'explain-note';
    note.textContent = 'The relation score is CAAN\'s local sketch-photo score (sketch-photo cross-attention, anchor ' +
      'cosines, relation network), the score `sketchgpu query --rerank rn` re-ranks by' +
      (composed ? '; it scores the drawing alone, the text plays no part in it' : '') +
      '. The correspondence views (cross-attention links, heat maps, patch replacement) are drawn for ZSE-SBIR weights only.';
    el.explainSlot.append(note);
    lastRun.lastExplain = { path: h.path, cosine: h.score, rn };
  } else if (modelInfo!.hasRelation) {
    const t0 = performance.now();
    const e = await session.retrying((m) => m.explain(x, photo, { top: 12 }));
    parts.push(`relation-network score ${e.rn.toFixed(6)} (${ms(performance.now() - t0)})`);
    showExplanation(e);
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
