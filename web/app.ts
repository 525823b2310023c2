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
 */
import {
  ClipTokenizer, composeQueries, decodeImage, GALLERY_IMAGE_EXT, indexPhotos, isSketchError, MODEL_LABEL, modelIdentity,
  parseIndex, parseModelWeights, preprocessPhoto, preprocessSketch, serializeIndex, SketchError, ZseRetrieval,
  type DecodedImage, type GalleryIndex, type LoadedModelWeights, type ModelIdentity, type ModelKind, type PhotoSource,
  explainPair, renderExplanation, type Rgba,
} from '../src/browser.ts';
import { Engine } from './engine.ts';
import { SketchPad } from './pad.ts';

// ---------------------------------------------------------------------------------------------------------------
// Parameters and elements

const params = new URLSearchParams(location.search);
const intParam = (name: string, dflt: number, lo: number, hi: number): number => {
  const v = Number(params.get(name));
  return params.has(name) && Number.isInteger(v) ? Math.min(hi, Math.max(lo, v)) : dflt;
};
const K = intParam('k', 12, 1, 100);
const DEBOUNCE_MS = intParam('debounce', 300, 0, 10_000);
const PER_CLASS = params.has('perclass') ? intParam('perclass', 4, 1, 1_000_000) : undefined;
const USE_INDEX_CACHE = params.get('cache') !== '0';
/** ?precision=f16: the CLI's --precision f16 (weights and GEMM inputs as binary16: about half the GPU memory). */
const PRECISION = params.get('precision') === 'f16' ? 'f16' : 'f32';
const SHELL_CACHE = 'sketchgpu-web-v1';
const INDEX_CACHE = 'sketchgpu-index-v1';
const VOCAB_URL = params.get('vocab') || '../clip/bpe_simple_vocab_16e6.txt.gz';
/** The default text weight of a composed sketch+text query: the CLI's --text-weight default (src/retrieval/query.ts). */
const DEFAULT_TEXT_WEIGHT = 0.5;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = {
  adapter: $('adapter'),
  tag: $('tag'),
  model: $('model'),
  textPanel: $('text-panel'),
  text: $<HTMLInputElement>('text-query'),
  textSearch: $<HTMLButtonElement>('text-search'),
  textTokens: $('text-tokens'),
  textWeight: $<HTMLInputElement>('text-weight'),
  textWeightOut: $('text-weight-value'),
  textMessage: $('text-message'),
  queryInfo: $('query-info'),
  banner: $('banner'),
  note: $('note'),
  status: $('status'),
  weights: $('weights-info'),
  pad: $<HTMLCanvasElement>('pad'),
  undo: $<HTMLButtonElement>('undo'),
  clear: $<HTMLButtonElement>('clear'),
  width: $<HTMLInputElement>('stroke-width'),
  widthOut: $('stroke-width-value'),
  open: $<HTMLInputElement>('open-image'),
  samples: $('samples'),
  galleryName: $('gallery-name'),
  useSample: $<HTMLButtonElement>('use-sample'),
  folder: $<HTMLInputElement>('folder'),
  progress: $<HTMLProgressElement>('index-progress'),
  indexStatus: $('index-status'),
  timings: $('timings'),
  results: $('results'),
  resultsHint: $('results-hint'),
  explain: $('explain'),
  explainSketch: $<HTMLCanvasElement>('explain-sketch'),
  explainPhoto: $<HTMLCanvasElement>('explain-photo'),
  explainPath: $('explain-path'),
  explainScores: $('explain-scores'),
  explainClose: $<HTMLButtonElement>('explain-close'),
  explainSlot: $('explain-slot'),
  offline: $('offline'),
};

// ---------------------------------------------------------------------------------------------------------------
// Messages

type BannerKind = 'error' | 'warn' | 'ok';
/** Every banner shown, oldest first (for tests: recoveries replace the lost-device message quickly). */
const messages: string[] = [];
let bannerTimer: ReturnType<typeof setTimeout> | undefined;
function banner(kind: BannerKind, title: string, detail?: string, autoHideMs?: number): void {
  clearTimeout(bannerTimer);
  messages.push(`${kind}: ${title}${detail ? ` | ${detail}` : ''}`);
  el.banner.hidden = false;
  el.banner.className = `banner ${kind}`;
  el.banner.replaceChildren();
  const t = document.createElement('strong');
  t.textContent = title;
  el.banner.append(t);
  if (detail) {
    const d = document.createElement('div');
    d.textContent = detail;
    el.banner.append(d);
  }
  if (autoHideMs) bannerTimer = setTimeout(() => (el.banner.hidden = true), autoHideMs);
}

function errorText(e: unknown): { title: string; hint?: string } {
  if (isSketchError(e) && e.code === 'NO_ADAPTER' && (navigator as { gpu?: unknown }).gpu) {
    // navigator.gpu exists but no adapter answered: WebGPU is there, the GPU (or its driver) is not usable.
    return {
      title: e.message,
      hint: 'This browser has WebGPU, but no GPU adapter answered. Turn on hardware acceleration, see chrome://gpu ' +
        'for why WebGPU is off; on Linux, Chrome may need --enable-unsafe-webgpu --enable-features=Vulkan.',
    };
  }
  if (isSketchError(e)) return { title: e.message, hint: e.hint };
  return { title: e instanceof Error ? e.message : String(e) };
}

function status(text: string): void {
  el.status.textContent = text;
}

const ms = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
const secs = (x: number) => `${(x / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------------------------
// Engine, weights, gallery

interface Gallery {
  name: string;
  index: GalleryIndex;
  url(path: string): string;
  load(path: string): Promise<Uint8Array>;
}

interface Hit {
  path: string;
  score: number;
}

/** CLIP's tokenizer for CAAN's text tower: its vocabulary fetched once, on the first need (kept across devices). */
let tokenizerP: Promise<ClipTokenizer> | null = null;
function clipTokenizer(): Promise<ClipTokenizer> {
  if (!tokenizerP) {
    tokenizerP = ClipTokenizer.fromUrl(new URL(VOCAB_URL, location.href)).catch((e) => {
      tokenizerP = null; // try again on the next text
      const t = errorText(e);
      throw new SketchError('IO', `text queries need CLIP's vocabulary, and it could not be loaded: ${t.title}`,
        'Serve the page with `npm run web` (it serves ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz, or the file ' +
        'SKETCHGPU_CLIP_VOCAB names), or pass ?vocab=<url of bpe_simple_vocab_16e6.txt.gz>.');
    });
  }
  return tokenizerP;
}

const engine = new Engine({
  onLost: (info) => {
    banner('warn', `The GPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''}). Recreating it…`,
      'Results pause until a new device is ready; the gallery is kept and uploaded again.');
    status('GPU device lost: recreating it…');
  },
  onRecovered: (ctx) => {
    banner('ok', `Recovered: a new GPU device on ${ctx.adapterName}.`, 'The weights and the gallery were uploaded again.', 8000);
    showAdapter();
    status('Ready.');
    if (!pad.isEmpty() || currentText() !== null) schedule(0);
  },
  onRecoverFailed: (e) => {
    const t = errorText(e);
    banner('error', `The GPU device was lost and could not be recreated: ${t.title}`, t.hint ?? 'Reload the page.');
    status('No GPU device.');
  },
}, clipTokenizer, PRECISION);

let gallery: Gallery | null = null;
let galleryReady: Promise<Gallery>;
let identity: ModelIdentity | null = null;
let weightsUrl = '';
/** What the loaded weights are: the model, its input size and its text context (undefined: no text tower). */
let modelInfo: { kind: ModelKind; imageSize: number; textContext: number | undefined } | null = null;
let lastSketchInput: Float32Array | null = null;
let galleryJob = 0;

function showAdapter(): void {
  const f = engine.ctx.features;
  const feats = [f.f16 && 'shader-f16', f.subgroups && 'subgroups', f.subgroupMatrix && 'subgroup matrices', f.timestamp && 'timestamps'].filter(Boolean).join(', ');
  el.adapter.textContent = `GPU: ${engine.ctx.adapterName}${feats ? ` (${feats})` : ''}${PRECISION === 'f16' ? ' · f16 precision' : ''}`;
  el.adapter.title = PRECISION === 'f16'
    ? 'The WebGPU adapter in use; ?precision=f16: weights and GEMM inputs stored as binary16, f32 accumulation'
    : 'The WebGPU adapter in use';
}

async function fetchBytes(url: string, onProgress?: (got: number, total: number) => void): Promise<Uint8Array> {
  let r: Response;
  try {
    r = await fetch(url);
  } catch (e) {
    throw new SketchError('IO', `cannot fetch ${url}: ${(e as Error).message}`, 'Check the address, or that the server (npm run web) is running.');
  }
  if (!r.ok) throw new SketchError('IO', `cannot fetch ${url}: HTTP ${r.status} ${r.statusText}`, 'Check the address.');
  const total = Number(r.headers.get('content-length') ?? 0);
  if (!r.body || !onProgress) return new Uint8Array(await r.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let got = 0;
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    onProgress(got, total);
  }
  const out = new Uint8Array(got);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

async function pickWeights(): Promise<{ url: string; random: boolean }> {
  const fromQuery = params.get('weights');
  if (fromQuery) return { url: fromQuery, random: /(^|\/)test\/fixtures\//.test(new URL(fromQuery, location.href).pathname) };
  try {
    const r = await fetch('config.json', { cache: 'no-store' });
    if (r.ok) {
      const c = await r.json();
      if (typeof c.weights === 'string') return { url: c.weights, random: !!c.random };
    }
  } catch {
    // Not served by web/serve.mjs (a plain static host): use the test model.
  }
  return { url: '../test/fixtures/zse/tiny224.weights.safetensors', random: true };
}

async function loadWeights(): Promise<LoadedModelWeights> {
  const pick = await pickWeights();
  weightsUrl = pick.url;
  const name = decodeURIComponent(new URL(pick.url, location.href).pathname.split('/').pop() || pick.url);
  status(`Loading weights ${name}…`);
  el.progress.hidden = false;
  const t0 = performance.now();
  const bytes = await fetchBytes(pick.url, (got, total) => {
    el.progress.max = total || 1;
    el.progress.value = total ? got : 0;
    status(`Loading weights ${name}: ${(got / 1e6).toFixed(1)}${total ? ` / ${(total / 1e6).toFixed(1)}` : ''} MB…`);
  });
  el.progress.hidden = true;
  const w = parseModelWeights(bytes, name);
  const mb = (bytes.length / 1e6).toFixed(1);
  if (w.kind === 'caan') {
    const c = w.weights.config;
    modelInfo = { kind: w.kind, imageSize: 16 * c.image.grid, textContext: c.text.context };
    el.weights.textContent = `weights: ${name} (${mb} MB, CAAN: image towers width ${c.image.width}, depth ${c.image.depth}, ` +
      `${16 * c.image.grid} px; text tower width ${c.text.width}, depth ${c.text.depth}, context ${c.text.context}; embed ${c.embed}) ` +
      `loaded in ${secs(performance.now() - t0)}`;
  } else {
    const c = w.weights.config;
    modelInfo = { kind: w.kind, imageSize: c.imageSize, textContext: undefined };
    el.weights.textContent = `weights: ${name} (${mb} MB, D=${c.dim}, depth ${c.depth}, ` +
      `${c.imageSize} px, ${c.hasHead ? 'with' : 'no'} RN head) loaded in ${secs(performance.now() - t0)}`;
  }
  showModel();
  if (pick.random) {
    el.note.hidden = false;
    el.note.textContent = 'random test weights: results are chance-level';
  }
  return w;
}

/** Which model the page runs (header), and the text box when the model has a text tower. */
function showModel(): void {
  const m = modelInfo!;
  document.body.dataset.model = m.kind;
  if (m.kind === 'caan') {
    el.model.textContent = 'Model: CAAN (sketch, photo and text towers)';
    el.model.title = 'Detected from the weights: safetensors metadata sketchgpu.model = "caan"';
    el.tag.textContent = 'Draw something, or describe it; photos of it are found on your GPU (WebGPU), with a zero-shot ' +
      'sketch-based retrieval model with a text tower (CAAN).';
  } else {
    el.model.textContent = 'Model: ZSE-SBIR';
    el.model.title = 'Detected from the weights (no sketchgpu.model = "caan" metadata)';
  }
  el.textPanel.hidden = m.textContext === undefined;
  el.text.disabled = m.textContext === undefined;
}

/** The bundled sample gallery's file lists (made by web/build.mjs). */
async function sampleManifest(): Promise<{ photos: string[]; sketches: string[] }> {
  const r = await fetch('../dist/web/sample.json');
  if (!r.ok) throw new SketchError('IO', `cannot fetch the sample list (HTTP ${r.status})`, 'Build it with `npm run build`.');
  return r.json();
}

function perClass(paths: string[], n: number | undefined): string[] {
  if (n === undefined) return paths;
  const count = new Map<string, number>();
  return paths.filter((p) => {
    const c = p.includes('/') ? p.slice(0, p.indexOf('/')) : '';
    const k = (count.get(c) ?? 0) + 1;
    count.set(c, k);
    return k <= n;
  });
}

async function hashText(s: string): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('').slice(0, 24);
}

async function cachedIndex(key: string): Promise<GalleryIndex | null> {
  if (!USE_INDEX_CACHE || !('caches' in self)) return null;
  try {
    const r = await (await caches.open(INDEX_CACHE)).match(key);
    if (!r) return null;
    const ix = parseIndex(new Uint8Array(await r.arrayBuffer()), 'cached index');
    // Keyed by the weights' hash, and checked again: an index of other weights (or of the other model) is never used.
    return ix.model.weights_sha256 === identity!.weights_sha256 && ix.model.family === identity!.family ? ix : null;
  } catch {
    return null;
  }
}

async function storeIndex(key: string, ix: GalleryIndex): Promise<void> {
  if (!USE_INDEX_CACHE || !('caches' in self)) return;
  try {
    await (await caches.open(INDEX_CACHE)).put(key, new Response(serializeIndex(ix) as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
  } catch {
    // Storage full or unavailable: the index is rebuilt next time.
  }
}

/**
 * Index a gallery (or take its index from the browser's cache) and make it the one searched. Survives a lost device:
 * photos already embedded are kept and the rest is embedded on the new device.
 */
async function useGallery(name: string, photos: PhotoSource[], urlOf: (p: string) => string, cacheKeyText: string): Promise<Gallery> {
  const job = ++galleryJob;
  el.galleryName.textContent = name;
  el.results.replaceChildren();
  el.progress.hidden = false;
  el.progress.value = 0;
  el.progress.max = photos.length;
  const key = `${location.origin}/__sketchgpu-index/${identity!.family}/${identity!.weights_sha256.slice(0, 24)}${PRECISION === 'f16' ? '/f16' : ''}/${await hashText(cacheKeyText)}`;
  const t0 = performance.now();
  let ix = await cachedIndex(key);
  let how: string;
  if (ix) {
    how = `${ix.paths.length} photos: index loaded from the browser cache`;
  } else {
    el.indexStatus.textContent = `Indexing ${photos.length} photos…`;
    const done = new Map<string, Float32Array>();
    ix = await engine.retrying(() => indexPhotos(engine.requireModel(), photos, {
      identity: identity!, weightsName: weightsUrl, root: name, done, batch: 8,
      exclusive: (fn) => engine.exclusive(fn),
      onProgress: (n, total, skipped) => {
        if (job !== galleryJob) throw new DOMException('another gallery was picked', 'AbortError');
        el.progress.value = n;
        el.indexStatus.textContent = `Indexing ${name}: ${n} / ${total} photos${skipped ? ` (${skipped} unreadable)` : ''}…`;
      },
    }));
    const dt = performance.now() - t0;
    how = `${ix.paths.length} photos indexed in ${secs(dt)} (${((ix.paths.length * 1000) / dt).toFixed(1)} photos/s)` +
      (ix.skipped.length ? `; ${ix.skipped.length} unreadable skipped` : '');
    void storeIndex(key, ix);
  }
  if (job !== galleryJob) throw new DOMException('another gallery was picked', 'AbortError');
  engine.setGallery(ix);
  el.progress.hidden = true;
  el.indexStatus.textContent = how;
  indexTimings = { photos: ix.paths.length, ms: performance.now() - t0, cached: how.includes('cache'), family: ix.model.family, weightsSha256: ix.model.weights_sha256 };
  const g: Gallery = {
    name, index: ix, url: urlOf,
    load: (p) => photos.find((x) => x.path === p)!.load(),
  };
  gallery = g;
  return g;
}
let indexTimings: IndexTimings | null = null;
interface IndexTimings {
  photos: number;
  ms: number;
  cached: boolean;
  /** The model family and weights hash recorded in the gallery index in use. */
  family: ModelIdentity['family'];
  weightsSha256: string;
}

async function useSampleGallery(manifest: { photos: string[] }): Promise<Gallery> {
  const paths = perClass(manifest.photos, PER_CLASS);
  const url = (p: string) => `sample/photo/${p.split('/').map(encodeURIComponent).join('/')}`;
  const photos = paths.map((p) => ({ path: p, load: () => fetchBytes(url(p)) }));
  el.useSample.hidden = true;
  return useGallery(`sample gallery${PER_CLASS ? ` (${PER_CLASS} per class)` : ''}`, photos, url, `sample\n${paths.join('\n')}`);
}

async function useFolder(files: FileList): Promise<Gallery> {
  const list = Array.from(files).filter((f) => {
    const parts = (f.webkitRelativePath || f.name).split('/');
    return GALLERY_IMAGE_EXT.test(f.name) && !parts.some((s) => s.startsWith('.'));
  });
  if (list.length === 0) throw new SketchError('EMPTY_GALLERY', 'the folder holds no .png, .jpg or .jpeg files', 'Pick a folder of photos (subfolders are searched too).');
  const root = (list[0]!.webkitRelativePath || list[0]!.name).split('/')[0]!;
  // Paths relative to the picked folder, as `sketchgpu index <folder>` names them.
  const byPath = new Map(list.map((f) => {
    const rel = f.webkitRelativePath ? f.webkitRelativePath.split('/').slice(1).join('/') : f.name;
    return [rel, f] as const;
  }));
  const urls = new Map<string, string>();
  const url = (p: string) => {
    let u = urls.get(p);
    if (!u) urls.set(p, (u = URL.createObjectURL(byPath.get(p)!)));
    return u;
  };
  const photos = [...byPath].map(([p, f]) => ({ path: p, load: async () => new Uint8Array(await f.arrayBuffer()) }));
  el.useSample.hidden = false;
  const key = `folder\n${root}\n${[...byPath].map(([p, f]) => `${p}\t${f.size}\t${f.lastModified}`).sort().join('\n')}`;
  return useGallery(`folder "${root}"`, photos, url, key);
}

function switchGallery(start: () => Promise<Gallery>): void {
  const p = start();
  galleryReady = p;
  p.then(() => {
    if (!pad.isEmpty() || currentText() !== null) schedule(0);
  }, (e) => {
    if (e instanceof DOMException && e.name === 'AbortError') return;
    const t = errorText(e);
    el.progress.hidden = true;
    el.indexStatus.textContent = `Indexing failed: ${t.title}`;
    banner('error', `The gallery could not be indexed: ${t.title}`, t.hint);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Queries

interface QueryTimings { preprocess: number; embed: number; search: number; total: number }

/** One query: a preprocessed sketch, a text (CAAN), or both composed with the text's weight. */
interface Query {
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
async function search(q: Query, k: number): Promise<{ hits: Hit[]; embed: number; search: number }> {
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

function sketchInputOf(img: DecodedImage): Float32Array {
  return preprocessSketch(img, modelInfo!.imageSize);
}

/** The text box's text when the model has a text tower and the box holds more than white space, else null. */
function currentText(): string | null {
  if (modelInfo?.textContext === undefined) return null;
  return el.text.value.trim() === '' ? null : el.text.value;
}

const textWeight = (): number => Number(el.textWeight.value);

function textMessage(text: string): void {
  el.textMessage.textContent = text;
  el.textMessage.hidden = text === '';
}

/** The live token count under the text box ("5 / 77 tokens"), once the vocabulary is there. */
async function showTokenCount(): Promise<void> {
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
let queryRunning = false;
let queryPending = false;

let queryScheduled = false;

function schedule(delay = DEBOUNCE_MS): void {
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
  const r = await search(q, K);
  const timings = { preprocess: t1 - t0, embed: r.embed, search: r.search, total: performance.now() - t0 };
  lastSketchInput = x;
  demo.lastQuery = {
    source, timings, generation: engine.generation,
    ...(text !== null ? { text, ...(x ? { textWeight: q.textWeight } : {}) } : {}),
  };
  demo.lastResults = r.hits;
  demo.resultsVersion++;
  showResults(r.hits, timings, q);
}

function describeQuery(q: Query): string {
  const quoted = (t: string) => `"${t.length > 60 ? `${t.slice(0, 57)}…` : t}"`;
  if (q.sketch && q.text !== null) return `sketch + text ${quoted(q.text)}, text weight ${q.textWeight.toFixed(2)}: cosine of the composed query`;
  if (q.text !== null) return `text ${quoted(q.text)}: cosine with the text tower's embedding`;
  return modelInfo?.kind === 'caan' ? 'sketch: cosine of the sketch tower\'s embedding' : 'sketch: cosine';
}

function showResults(hits: Hit[] | null, t: QueryTimings | null, q?: Query): void {
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
  el.explain.scrollIntoView({ block: 'nearest' });
  const composed = demo.lastQuery?.text !== undefined;
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
    demo.lastExplain = { path: h.path, cosine: h.score, rn };
  } else if (engine.weights!.kind === 'zse-sbir' && engine.weights!.weights.config.hasHead) {
    const t0 = performance.now();
    const e = await engine.retrying(() => engine.exclusive(() => explainPair((engine.requireModel() as ZseRetrieval).model, x, photo)));
    parts.push(`relation-network score ${e.rn.toFixed(6)} (${ms(performance.now() - t0)})`);
    showExplanation(renderExplanation(e, x, photo, 12), e.anchorGrid ** 2);
    demo.lastExplain = { path: h.path, cosine: h.score, rn: e.rn };
  } else {
    parts.push('no relation-network score or correspondences: these weights have no cross-attention head');
    demo.lastExplain = { path: h.path, cosine: h.score, rn: null };
  }
  el.explainScores.textContent = parts.join(' · ');
}

// ---------------------------------------------------------------------------------------------------------------
// Automation

interface SketchgpuDemo {
  /** Resolves when the weights are on the GPU and the gallery is indexed; rejects with the page's error. */
  ready: Promise<void>;
  /**
   * Fetch an image, treat it as a sketch (decode + preprocessSketch), search the gallery: paths relative to its root.
   * With `text` (CAAN) the query is composed with it: normalise((1 - textWeight)·sketch + textWeight·text), textWeight
   * 0.5 by default, as `sketchgpu query <sketch> --text <text> [--text-weight w]`.
   */
  queryImage(url: string, k?: number, o?: { text?: string; textWeight?: number }): Promise<Hit[]>;
  /** Search the gallery by a text (CAAN's text tower), as `sketchgpu query --text <text>`; rejects with the page's message. */
  queryText(text: string, k?: number): Promise<Hit[]>;
  /** The loaded model, its text context (null: no text tower) and the default text weight. */
  model: { kind: ModelKind; label: string; textContext: number | null; defaultTextWeight: number } | null;
  /** The results shown for the pad, and a counter bumped with each new result list. */
  lastResults: Hit[] | null;
  resultsVersion: number;
  lastQuery: { source: string; text?: string; textWeight?: number; timings: QueryTimings; generation: number } | null;
  lastExplain: { path: string; cosine: number; rn: number | null } | null;
  /** The pad as a PNG data URL (the pixels a drawn query uses). */
  exportDrawingPng(): string;
  /** Every message banner shown, as "kind: title | detail". */
  messages: string[];
  /** True while a pad query is scheduled (debounce) or running. */
  readonly busy: boolean;
  /** The model input [3,S,S] that the pad's current content preprocesses to (what a drawn query embeds). */
  padInput(): number[];
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

const pad = new SketchPad(el.pad);
let resolveOffline: (v: boolean) => void = () => undefined;

const demo: SketchgpuDemo = {
  ready: null as unknown as Promise<void>,
  async queryImage(url: string, k = 10, o: { text?: string; textWeight?: number } = {}) {
    await demo.ready;
    const bytes = await fetchBytes(url);
    const name = decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || 'image');
    const q: Query = { sketch: sketchInputOf(decodeImage(bytes, name)), text: o.text ?? null, textWeight: o.textWeight ?? DEFAULT_TEXT_WEIGHT };
    return (await search(q, k)).hits;
  },
  async queryText(text: string, k = 10) {
    await demo.ready;
    return (await search({ sketch: null, text, textWeight: 1 }, k)).hits;
  },
  get model() {
    return modelInfo && { kind: modelInfo.kind, label: MODEL_LABEL[modelInfo.kind], textContext: modelInfo.textContext ?? null, defaultTextWeight: DEFAULT_TEXT_WEIGHT };
  },
  lastResults: null,
  resultsVersion: 0,
  messages,
  lastQuery: null,
  lastExplain: null,
  exportDrawingPng: () => el.pad.toDataURL('image/png'),
  get busy() {
    return queryScheduled || queryRunning;
  },
  padInput: () => Array.from(sketchInputOf(pad.pixels())),
  loseDevice: () => engine.loseDevice(),
  get indexTimings() {
    return indexTimings;
  },
  get adapter() {
    return engine.ctx?.adapterName ?? '';
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
    decodeImage(bytes, name); // only PNG and JPEG, with a clear message otherwise
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
    if (modelInfo?.textContext !== undefined) await cache.add(VOCAB_URL).catch(() => undefined);
    el.offline.textContent = 'available offline';
    resolveOffline(true);
  } catch (e) {
    el.offline.textContent = `not available offline (${errorText(e).title})`;
    resolveOffline(false);
  }
}

async function main(): Promise<void> {
  status('Starting WebGPU…');
  await engine.openDevice();
  showAdapter();
  const [w, manifest] = await Promise.all([loadWeights(), sampleManifest()]);
  showSamples(manifest.sketches);
  engine.setWeights(w);
  identity = modelIdentity(w.weights.tensors, w.weights.config);
  if (modelInfo!.textContext !== undefined) {
    // Fetch the vocabulary while the gallery is indexed; a failure is said in the text box (and again on use).
    clipTokenizer().then(() => showTokenCount(), (e) => textMessage(errorText(e).title));
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
  if (!engine.ctx) el.adapter.textContent = 'GPU: none';
  status('Not ready.');
  document.body.classList.add('failed');
  resolveOffline(false);
});
