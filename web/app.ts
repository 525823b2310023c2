/**
 * The sketch-and-search page (issue 5): draw (or drop an image), and the sample gallery (or a folder you pick) is
 * searched as you draw, on your GPU through WebGPU, with the same engine, preprocessing and index format as the CLI.
 * The model, ZSE-SBIR or CAAN, is detected from the weights (issue 8). With CAAN the gallery is indexed by its photo
 * tower and drawings go through its sketch tower; a text box (CAAN's text tower) searches by text, or with a drawing
 * composes sketch and text as the CLI's `query --text --text-weight` does.
 *
 * Query parameters: weights=<url> (default: the trained weights when served, else the random test model),
 * vocab=<url> (CLIP's bpe_simple_vocab_16e6.txt.gz for CAAN's text tower; default ../clip/…, served by web/serve.mjs),
 * perclass=<n> (index only the first n photos of each sample class), k=<n> results (default 12),
 * debounce=<ms> (default 300), cache=0 (do not reuse a gallery index stored in the browser), sw=0 (no service worker).
 *
 * Automation (tests): window.sketchgpuDemo, see `SketchgpuDemo` below.
 *
 * The page is built on the browser API, `SketchGPU` of sketchgpu/browser (src/api/browser.ts), as any app would be:
 * page.ts (parameters, elements, the pad), messages.ts, session.ts (the model, reloaded after a lost device),
 * gallery.ts (weights, gallery), query.ts (queries, results, explanations); this file holds the automation object
 * and the UI wiring.
 */
import { checkImage, isSketchError, type ModelInfo } from '../src/browser.ts';
import { params, DEBOUNCE_MS, PRECISION, SHELL_CACHE, VOCAB_URL, DEFAULT_TEXT_WEIGHT, el, pad } from './page.ts';
import { messages, banner, errorText, status } from './messages.ts';
import { type Hit, session, galleryReady, weightsUrl, modelInfo, showAdapter, fetchBytes, loadModel, sampleManifest, indexTimings, type IndexTimings, useSampleGallery, useFolder, switchGallery, textTokens } from './gallery.ts';
import { lastRun, type Query, search, sketchInputOf, currentText, textWeight, textMessage, showTokenCount, queryRunning, queryScheduled, schedule, showResults, type LastRun } from './query.ts';

// ---------------------------------------------------------------------------------------------------------------
// Automation

interface SketchgpuDemo extends LastRun {
  /** Resolves when the weights are on the GPU and the gallery is indexed; rejects with the page's error. */
  ready: Promise<void>;
  /**
   * Fetch an image, treat it as a sketch (the API's modelInput), search the gallery: paths relative to its root.
   * With `text` (CAAN) the query is composed with it: normalise((1 - textWeight)·sketch + textWeight·text), textWeight
   * 0.5 by default, as `sketchgpu query <sketch> --text <text> [--text-weight w]`.
   */
  queryImage(url: string, k?: number, o?: { text?: string; textWeight?: number }): Promise<Hit[]>;
  /** Search the gallery by a text (CAAN's text tower), as `sketchgpu query --text <text>`; rejects with the page's message. */
  queryText(text: string, k?: number): Promise<Hit[]>;
  /** The loaded model, its text context (null: no text tower) and the default text weight. */
  model: { kind: ModelInfo['model']; label: string; textContext: number | null; defaultTextWeight: number } | null;
  /** The pad as a PNG data URL (the pixels a drawn query uses). */
  exportDrawingPng(): string;
  /** Every message banner shown, as "kind: title | detail". */
  messages: string[];
  /** True while a pad query is scheduled (debounce) or running. */
  readonly busy: boolean;
  /** The model input [3,S,S] that the pad's current content preprocesses to (what a drawn query embeds). */
  padInput(): Promise<number[]>;
  /** Destroy the GPU device (as a driver reset would); resolves once the page has recovered. */
  loseDevice(): Promise<void>;
  /** Photos indexed, how long it took (ms), whether from the browser's cache, the index's model; null while indexing. */
  indexTimings: IndexTimings | null;
  adapter: string;
  /** The models' precision (?precision=f16, else f32). */
  precision: 'f32' | 'f16';
  /** Resolves when the page, bundle, weights and sample are in the offline cache. */
  offlineReady: Promise<boolean>;
}

let resolveOffline: (v: boolean) => void = () => undefined;

const demo: SketchgpuDemo = {
  ready: null as unknown as Promise<void>,
  async queryImage(url: string, k = 10, o: { text?: string; textWeight?: number } = {}) {
    await demo.ready;
    const bytes = await fetchBytes(url);
    const name = decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || 'image');
    const q: Query = { sketch: await sketchInputOf(new File([bytes as Uint8Array<ArrayBuffer>], name)), text: o.text ?? null, textWeight: o.textWeight ?? DEFAULT_TEXT_WEIGHT };
    return (await search(q, k)).hits;
  },
  async queryText(text: string, k = 10) {
    await demo.ready;
    return (await search({ sketch: null, text, textWeight: 1 }, k)).hits;
  },
  get model() {
    return modelInfo && { kind: modelInfo.model, label: modelInfo.label, textContext: modelInfo.textContext, defaultTextWeight: DEFAULT_TEXT_WEIGHT };
  },
  get lastResults() { return lastRun.lastResults; },
  set lastResults(v) { lastRun.lastResults = v; },
  get resultsVersion() { return lastRun.resultsVersion; },
  set resultsVersion(v) { lastRun.resultsVersion = v; },
  messages,
  get lastQuery() { return lastRun.lastQuery; },
  set lastQuery(v) { lastRun.lastQuery = v; },
  get lastExplain() { return lastRun.lastExplain; },
  set lastExplain(v) { lastRun.lastExplain = v; },
  exportDrawingPng: () => el.pad.toDataURL('image/png'),
  get busy() {
    return queryScheduled || queryRunning;
  },
  padInput: async () => Array.from((await sketchInputOf(pad.pixels())).data),
  loseDevice: () => session.loseDevice(),
  get indexTimings() {
    return indexTimings;
  },
  get adapter() {
    return session.model?.info.adapter ?? '';
  },
  precision: PRECISION,
  offlineReady: new Promise<boolean>((r) => (resolveOffline = r)),
};
(window as unknown as { sketchgpuDemo: SketchgpuDemo }).sketchgpuDemo = demo;


// ---------------------------------------------------------------------------------------------------------------
// UI wiring

pad.onChange = (why) => {
  el.undo.disabled = pad.isEmpty();
  el.clear.disabled = pad.isEmpty();
  if (why === 'stroke') schedule();
  else schedule(why === 'end' ? DEBOUNCE_MS : 0);
};
el.undo.addEventListener('click', () => pad.undo());
el.clear.addEventListener('click', () => pad.clear());
window.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'z') {
    e.preventDefault();
    pad.undo();
  }
});
const setWidth = () => {
  pad.width = Number(el.width.value);
  el.widthOut.textContent = `${pad.width} px`;
};
el.width.addEventListener('input', setWidth);
setWidth();

async function openImageFile(bytes: Uint8Array, name: string, type = ''): Promise<void> {
  try {
    await checkImage(bytes, name); // only PNG and JPEG, with a clear message otherwise
  } catch (e) {
    const t = errorText(e);
    banner('error', t.title, t.hint, 10_000);
    return;
  }
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const img = new Image();
  img.src = url;
  await img.decode();
  pad.setImage(img, bytes, name);
}

el.open.addEventListener('change', async () => {
  const f = el.open.files?.[0];
  if (f) await openImageFile(new Uint8Array(await f.arrayBuffer()), f.name, f.type);
  el.open.value = '';
});
el.pad.addEventListener('dragover', (e) => {
  e.preventDefault();
  el.pad.classList.add('drop');
});
el.pad.addEventListener('dragleave', () => el.pad.classList.remove('drop'));
el.pad.addEventListener('drop', async (e) => {
  e.preventDefault();
  el.pad.classList.remove('drop');
  const f = e.dataTransfer?.files?.[0];
  if (f) await openImageFile(new Uint8Array(await f.arrayBuffer()), f.name, f.type);
});
el.folder.addEventListener('change', () => {
  const files = el.folder.files;
  if (files && files.length) switchGallery(() => useFolder(files));
});
el.explainClose.addEventListener('click', () => (el.explain.hidden = true));

// The text box (CAAN): results follow the text as it is typed (debounced); Enter or Search runs it at once and says
// so when it is empty. The weight slider composes it with a drawing.
const setTextWeight = () => {
  el.textWeightOut.textContent = textWeight().toFixed(2);
};
el.textWeight.value = String(DEFAULT_TEXT_WEIGHT);
setTextWeight();
el.textWeight.addEventListener('input', () => {
  setTextWeight();
  if (!pad.isEmpty() && currentText() !== null) schedule(DEBOUNCE_MS);
});
el.text.addEventListener('input', () => {
  textMessage('');
  void showTokenCount();
  schedule(DEBOUNCE_MS);
});
const submitText = () => {
  if (el.text.value.trim() === '') {
    textMessage('The text is empty: type what to find, e.g. "a giraffe".');
    if (pad.isEmpty()) showResults(null, null);
    return;
  }
  schedule(0);
};
el.text.addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    e.preventDefault();
    submitText();
  }
});
el.textSearch.addEventListener('click', submitText);

function showSamples(sketches: string[]): void {
  el.samples.replaceChildren();
  for (const p of sketches) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'try';
    const cls = p.split('/')[0]!;
    b.title = `try the sample sketch of a ${cls}`;
    b.dataset.sketch = p;
    const img = document.createElement('img');
    const url = `sample/sketch/${p.split('/').map(encodeURIComponent).join('/')}`;
    img.src = url;
    img.alt = cls;
    const s = document.createElement('span');
    s.textContent = cls;
    b.append(img, s);
    b.addEventListener('click', async () => {
      const bytes = await fetchBytes(url);
      await openImageFile(bytes, p.split('/').pop()!, 'image/png');
    });
    el.samples.append(b);
  }
}

async function registerOffline(manifest: { photos: string[]; sketches: string[] }): Promise<void> {
  if (!('serviceWorker' in navigator) || params.get('sw') === '0') {
    el.offline.textContent = 'no offline copy';
    return resolveOffline(false);
  }
  el.offline.textContent = 'saving for offline use…';
  try {
    await navigator.serviceWorker.register('sw.js');
    await navigator.serviceWorker.ready;
    // The service worker caches the page itself; the weights and the sample are added here.
    const cache = await caches.open(SHELL_CACHE);
    const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
    await cache.addAll([
      weightsUrl,
      ...manifest.photos.map((p) => `sample/photo/${enc(p)}`),
      ...manifest.sketches.map((p) => `sample/sketch/${enc(p)}`),
    ]);
    // CAAN's text box offline too, when the vocabulary is served (without it only the text queries are missing).
    if (modelInfo?.textContext !== null) await cache.add(VOCAB_URL).catch(() => undefined);
    el.offline.textContent = 'available offline';
    resolveOffline(true);
  } catch (e) {
    el.offline.textContent = `not available offline (${errorText(e).title})`;
    resolveOffline(false);
  }
}

async function main(): Promise<void> {
  status('Starting WebGPU…');
  const [, manifest] = await Promise.all([loadModel(), sampleManifest()]);
  showAdapter();
  showSamples(manifest.sketches);
  if (modelInfo!.textContext !== null) {
    // Read the vocabulary while the gallery is indexed; a failure is said in the text box (and again on use).
    textTokens('').then(() => showTokenCount(), (e) => textMessage(errorText(e).title));
  }
  status('Indexing the gallery…');
  switchGallery(() => useSampleGallery(manifest));
  el.useSample.addEventListener('click', () => switchGallery(() => useSampleGallery(manifest)));
  await galleryReady;
  status('Ready.');
  void registerOffline(manifest);
}

demo.ready = main();
demo.ready.catch((e) => {
  const t = errorText(e);
  const title = isSketchError(e) && e.code === 'NO_ADAPTER' && !(navigator as { gpu?: unknown }).gpu
    ? 'WebGPU is not available in this browser.'
    : t.title;
  banner('error', title, t.hint);
  if (!session.model) el.adapter.textContent = 'GPU: none';
  status('Not ready.');
  document.body.classList.add('failed');
  resolveOffline(false);
});
