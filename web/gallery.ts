// The model, the weights and the gallery: loading, indexing (cached in the browser), switching galleries. All of it
// through the browser API (SketchGPU of sketchgpu/browser); session.ts reloads the model after a lost device.
import { SketchError, isSketchError, type BrowserImage, type ModelInfo, type NamedPhoto, type SketchGPU } from '../src/browser.ts';
import { Session } from './session.ts';
import { params, PER_CLASS, USE_INDEX_CACHE, PRECISION, INDEX_CACHE, VOCAB_URL, el } from './page.ts';
import { banner, errorText, status, secs } from './messages.ts';

// Model, weights, gallery

/** Image files in a gallery: .png, .jpg, .jpeg (as `sketchgpu index` picks them). */
const GALLERY_IMAGE_EXT = /\.(png|jpe?g)$/i;

interface Gallery {
  name: string;
  photos: number;
  url(path: string): string;
  /** The photo as the API takes it (its URL, or the picked File). */
  image(path: string): BrowserImage;
}

export interface Hit {
  path: string;
  score: number;
}

/**
 * How many tokens a text takes (start and end tokens included), with CAAN's tokenizer; the vocabulary is read by the
 * API on the first text (and again after a failure), and a failure says how to serve it.
 */
export async function textTokens(text: string): Promise<number> {
  try {
    return await session.retrying((m) => m.textTokens(text));
  } catch (e) {
    if (!(isSketchError(e) && e.code === 'IO')) throw e;
    const t = errorText(e);
    throw new SketchError('IO', `text queries need CLIP's vocabulary, and it could not be loaded: ${t.title}`,
      'Serve the page with `npm run web` (it serves ../shared/data/clip/bpe_simple_vocab_16e6.txt.gz, or the file ' +
      'SKETCHGPU_CLIP_VOCAB names), or pass ?vocab=<url of bpe_simple_vocab_16e6.txt.gz>.');
  }
}

export const session = new Session({
  onLost: (loss) => {
    banner('warn', `The GPU device was lost (${loss.reason}${loss.message ? `: ${loss.message}` : ''}). Recreating it…`,
      'Results pause until a new device is ready; the gallery is kept and uploaded again.');
    status('GPU device lost: recreating it…');
  },
  onRecovered: (m) => {
    banner('ok', `Recovered: a new GPU device on ${m.info.adapter}.`, 'The weights and the gallery were uploaded again.', 8000);
    showAdapter();
    status('Ready.');
    galleryChanged();
  },
  onRecoverFailed: (e) => {
    const t = errorText(e);
    banner('error', `The GPU device was lost and could not be recreated: ${t.title}`, t.hint ?? 'Reload the page.');
    status('No GPU device.');
  },
});

export let gallery: Gallery | null = null;
export let galleryReady: Promise<Gallery>;
export let weightsUrl = '';
/** What the loaded weights are (the API's ModelInfo): the model, its input size, its text context (null: no text tower). */
export let modelInfo: ModelInfo | null = null;
let galleryJob = 0;
let galleryAbort: AbortController | null = null;

export function showAdapter(): void {
  const info = session.model!.info;
  const f = info.features;
  const feats = [f.f16 && 'shader-f16', f.subgroups && 'subgroups', f.subgroupMatrix && 'subgroup matrices', f.timestamp && 'timestamps'].filter(Boolean).join(', ');
  el.adapter.textContent = `GPU: ${info.adapter}${feats ? ` (${feats})` : ''}${PRECISION === 'f16' ? ' · f16 precision' : ''}`;
  el.adapter.title = PRECISION === 'f16'
    ? 'The WebGPU adapter in use; ?precision=f16: weights and GEMM inputs stored as binary16, f32 accumulation'
    : 'The WebGPU adapter in use';
}

/** Fetches a file of the page (a sample sketch), with a clear message when it cannot. */
export async function fetchBytes(url: string): Promise<Uint8Array> {
  let r: Response;
  try {
    r = await fetch(url);
  } catch (e) {
    throw new SketchError('IO', `cannot fetch ${url}: ${(e as Error).message}`, 'Check the address, or that the server (npm run web) is running.');
  }
  if (!r.ok) throw new SketchError('IO', `cannot fetch ${url}: HTTP ${r.status} ${r.statusText}`, 'Check the address.');
  return new Uint8Array(await r.arrayBuffer());
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

/**
 * Loads the model with the API: the weights fetched (with a progress bar), the model detected from them (ZSE-SBIR or
 * CAAN), uploaded to a WebGPU device of its own at the page's precision; CAAN's vocabulary is read on the first text.
 */
export async function loadModel(): Promise<SketchGPU> {
  const pick = await pickWeights();
  weightsUrl = pick.url;
  const name = decodeURIComponent(new URL(pick.url, location.href).pathname.split('/').pop() || pick.url);
  status(`Loading weights ${name}…`);
  el.progress.hidden = false;
  const t0 = performance.now();
  let size = 0;
  const m = await session.load({
    weights: pick.url, precision: PRECISION, vocab: new URL(VOCAB_URL, location.href),
    onWeightsProgress: (got, total) => {
      size = got;
      el.progress.max = total || 1;
      el.progress.value = total ? got : 0;
      status(`Loading weights ${name}: ${(got / 1e6).toFixed(1)}${total ? ` / ${(total / 1e6).toFixed(1)}` : ''} MB…`);
    },
  });
  el.progress.hidden = true;
  modelInfo = m.info;
  const mb = (size / 1e6).toFixed(1);
  const c = m.info.config;
  if ('image' in c) {
    el.weights.textContent = `weights: ${name} (${mb} MB, CAAN: image towers width ${c.image.width}, depth ${c.image.depth}, ` +
      `${16 * c.image.grid} px; text tower width ${c.text.width}, depth ${c.text.depth}, context ${c.text.context}; embed ${c.embed}) ` +
      `loaded in ${secs(performance.now() - t0)}`;
  } else {
    el.weights.textContent = `weights: ${name} (${mb} MB, D=${c.dim}, depth ${c.depth}, ` +
      `${c.imageSize} px, ${c.hasHead ? 'with' : 'no'} RN head) loaded in ${secs(performance.now() - t0)}`;
  }
  showModel();
  if (pick.random) {
    el.note.hidden = false;
    el.note.textContent = 'random test weights: results are chance-level';
  }
  return m;
}

/** Which model the page runs (header), and the text box when the model has a text tower. */
function showModel(): void {
  const m = modelInfo!;
  document.body.dataset.model = m.model;
  if (m.model === 'caan') {
    el.model.textContent = 'Model: CAAN (sketch, photo and text towers)';
    el.model.title = 'Detected from the weights: safetensors metadata sketchgpu.model = "caan"';
    el.tag.textContent = 'Draw something, or describe it; photos of it are found on your GPU (WebGPU), with a zero-shot ' +
      'sketch-based retrieval model with a text tower (CAAN).';
  } else {
    el.model.textContent = 'Model: ZSE-SBIR';
    el.model.title = 'Detected from the weights (no sketchgpu.model = "caan" metadata)';
  }
  el.textPanel.hidden = m.textContext === null;
  el.text.disabled = m.textContext === null;
}

/** The bundled sample gallery's file lists (made by web/build.mjs). */
export async function sampleManifest(): Promise<{ photos: string[]; sketches: string[] }> {
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

/**
 * The gallery's index from the browser's cache, opened on the model (`loadIndex`); false when there is none or it is
 * not this model's. Keyed by the weights' hash, and checked again by loadIndex: an index of other weights (or of the
 * other model) is never used.
 */
async function cachedIndex(m: SketchGPU, key: string, photos: NamedPhoto<BrowserImage>[], signal: AbortSignal): Promise<number | null> {
  if (!USE_INDEX_CACHE || !('caches' in self)) return null;
  let bytes: Uint8Array;
  try {
    const r = await (await caches.open(INDEX_CACHE)).match(key);
    if (!r) return null;
    bytes = new Uint8Array(await r.arrayBuffer());
  } catch {
    return null;
  }
  // Checked just before loadIndex replaces the model's index (nothing runs in between): a gallery picked since wins.
  signal.throwIfAborted();
  try {
    return (await m.loadIndex(bytes, 'cached index', { photos })).photos;
  } catch (e) {
    if (isSketchError(e) && e.code === 'DEVICE_LOST') throw e;
    return null;
  }
}

async function storeIndex(key: string, bytes: Uint8Array): Promise<void> {
  if (!USE_INDEX_CACHE || !('caches' in self)) return;
  try {
    await (await caches.open(INDEX_CACHE)).put(key, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
  } catch {
    // Storage full or unavailable: the index is rebuilt next time.
  }
}

const abortError = () => new DOMException('another gallery was picked', 'AbortError');

/**
 * Index a gallery with the API (or take its index from the browser's cache) and make it the one searched. Survives a
 * lost device: photos already embedded are kept (`embedded`) and the rest is embedded on the new model.
 */
async function useGallery(name: string, photos: NamedPhoto<BrowserImage>[], urlOf: (p: string) => string, cacheKeyText: string): Promise<Gallery> {
  const job = ++galleryJob;
  galleryAbort?.abort(abortError());
  const abort = (galleryAbort = new AbortController());
  el.galleryName.textContent = name;
  el.results.replaceChildren();
  el.progress.hidden = false;
  el.progress.value = 0;
  el.progress.max = photos.length;
  const info = session.model!.info;
  const key = `${location.origin}/__sketchgpu-index/${info.model}/${info.weightsSha256.slice(0, 24)}${PRECISION === 'f16' ? '/f16' : ''}/${await hashText(cacheKeyText)}`;
  const t0 = performance.now();
  const cached = await session.retrying((m) => cachedIndex(m, key, photos, abort.signal));
  let how: string;
  let count: number;
  if (cached !== null) {
    count = cached;
    how = `${count} photos: index loaded from the browser cache`;
  } else {
    el.indexStatus.textContent = `Indexing ${photos.length} photos…`;
    const embedded = new Map<string, Float32Array>();
    let saved: Uint8Array | null = null;
    const r = await session.retrying(async (m) => {
      const summary = await m.index(photos, {
        batch: 8, signal: abort.signal, embedded,
        onProgress: (n, total, skipped) => {
          el.progress.value = n;
          el.indexStatus.textContent = `Indexing ${name}: ${n} / ${total} photos${skipped ? ` (${skipped} unreadable)` : ''}…`;
        },
      });
      // The index just made, before another gallery's can replace it (galleryJob changes before any of its work).
      if (job !== galleryJob) throw abortError();
      saved = m.saveIndex();
      return summary;
    });
    const dt = performance.now() - t0;
    count = r.photos;
    how = `${count} photos indexed in ${secs(dt)} (${((count * 1000) / dt).toFixed(1)} photos/s)` +
      (r.skipped.length ? `; ${r.skipped.length} unreadable skipped` : '');
    void storeIndex(key, saved!);
  }
  if (job !== galleryJob) throw abortError();
  session.photos = photos;
  el.progress.hidden = true;
  el.indexStatus.textContent = how;
  indexTimings = { photos: count, ms: performance.now() - t0, cached: cached !== null, family: info.model, weightsSha256: info.weightsSha256 };
  const byId = new Map(photos.map((p) => [p.id, p.image]));
  const g: Gallery = { name, photos: count, url: urlOf, image: (p) => byId.get(p)! };
  gallery = g;
  return g;
}
export let indexTimings: IndexTimings | null = null;
export interface IndexTimings {
  photos: number;
  ms: number;
  cached: boolean;
  /** The model family and weights hash of the gallery index in use (loadIndex and index check them against the model). */
  family: ModelInfo['model'];
  weightsSha256: string;
}

export async function useSampleGallery(manifest: { photos: string[] }): Promise<Gallery> {
  const paths = perClass(manifest.photos, PER_CLASS);
  const url = (p: string) => `sample/photo/${p.split('/').map(encodeURIComponent).join('/')}`;
  const photos = paths.map((p) => ({ id: p, image: url(p) }));
  el.useSample.hidden = true;
  return useGallery(`sample gallery${PER_CLASS ? ` (${PER_CLASS} per class)` : ''}`, photos, url, `sample\n${paths.join('\n')}`);
}

export async function useFolder(files: FileList): Promise<Gallery> {
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
  const photos = [...byPath].map(([p, f]) => ({ id: p, image: f as BrowserImage }));
  el.useSample.hidden = false;
  const key = `folder\n${root}\n${[...byPath].map(([p, f]) => `${p}\t${f.size}\t${f.lastModified}`).sort().join('\n')}`;
  return useGallery(`folder "${root}"`, photos, url, key);
}

export function switchGallery(start: () => Promise<Gallery>): void {
  const p = start();
  galleryReady = p;
  p.then(() => {
    galleryChanged();
  }, (e) => {
    if (e instanceof DOMException && e.name === 'AbortError') return;
    const t = errorText(e);
    el.progress.hidden = true;
    el.indexStatus.textContent = `Indexing failed: ${t.title}`;
    banner('error', `The gallery could not be indexed: ${t.title}`, t.hint);
  });
}


/** What runs when a gallery is ready or the device recovered (query.ts: search again what the pad and text box hold). */
let galleryChanged = (): void => undefined;
export function onGalleryChange(f: () => void): void {
  galleryChanged = f;
}
