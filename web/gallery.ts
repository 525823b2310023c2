// The engine, the weights and the gallery: loading, indexing (cached in the browser), switching galleries.
import { ClipTokenizer, GALLERY_IMAGE_EXT, indexPhotos, parseIndex, parseModelWeights, serializeIndex, SketchError, type GalleryIndex, type LoadedModelWeights, type ModelIdentity, type ModelKind } from '../src/browser.ts';
import { Engine } from './engine.ts';
import { params, PER_CLASS, USE_INDEX_CACHE, PRECISION, INDEX_CACHE, VOCAB_URL, el } from './page.ts';
import { banner, errorText, status, secs } from './messages.ts';

// Engine, weights, gallery

interface Gallery {
  name: string;
  index: GalleryIndex;
  url(path: string): string;
  load(path: string): Promise<Uint8Array>;
}

export interface Hit {
  path: string;
  score: number;
}

/** CLIP's tokenizer for CAAN's text tower: its vocabulary fetched once, on the first need (kept across devices). */
let tokenizerP: Promise<ClipTokenizer> | null = null;
export function clipTokenizer(): Promise<ClipTokenizer> {
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

export const engine = new Engine({
  onLost: (info) => {
    banner('warn', `The GPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''}). Recreating it…`,
      'Results pause until a new device is ready; the gallery is kept and uploaded again.');
    status('GPU device lost: recreating it…');
  },
  onRecovered: (ctx) => {
    banner('ok', `Recovered: a new GPU device on ${ctx.adapterName}.`, 'The weights and the gallery were uploaded again.', 8000);
    showAdapter();
    status('Ready.');
    galleryChanged();
  },
  onRecoverFailed: (e) => {
    const t = errorText(e);
    banner('error', `The GPU device was lost and could not be recreated: ${t.title}`, t.hint ?? 'Reload the page.');
    status('No GPU device.');
  },
}, clipTokenizer, PRECISION);

export let gallery: Gallery | null = null;
export let galleryReady: Promise<Gallery>;
let identity: ModelIdentity | null = null;
export let weightsUrl = '';
/** What the loaded weights are: the model, its input size and its text context (undefined: no text tower). */
export let modelInfo: { kind: ModelKind; imageSize: number; textContext: number | undefined } | null = null;
let galleryJob = 0;

export function showAdapter(): void {
  const f = engine.ctx.features;
  const feats = [f.f16 && 'shader-f16', f.subgroups && 'subgroups', f.subgroupMatrix && 'subgroup matrices', f.timestamp && 'timestamps'].filter(Boolean).join(', ');
  el.adapter.textContent = `GPU: ${engine.ctx.adapterName}${feats ? ` (${feats})` : ''}${PRECISION === 'f16' ? ' · f16 precision' : ''}`;
  el.adapter.title = PRECISION === 'f16'
    ? 'The WebGPU adapter in use; ?precision=f16: weights and GEMM inputs stored as binary16, f32 accumulation'
    : 'The WebGPU adapter in use';
}

export async function fetchBytes(url: string, onProgress?: (got: number, total: number) => void): Promise<Uint8Array> {
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

export async function loadWeights(): Promise<LoadedModelWeights> {
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
async function useGallery(name: string, photos: { path: string; load(): Promise<Uint8Array> }[], urlOf: (p: string) => string, cacheKeyText: string): Promise<Gallery> {
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
export let indexTimings: IndexTimings | null = null;
export interface IndexTimings {
  photos: number;
  ms: number;
  cached: boolean;
  /** The model family and weights hash recorded in the gallery index in use. */
  family: ModelIdentity['family'];
  weightsSha256: string;
}

export async function useSampleGallery(manifest: { photos: string[] }): Promise<Gallery> {
  const paths = perClass(manifest.photos, PER_CLASS);
  const url = (p: string) => `sample/photo/${p.split('/').map(encodeURIComponent).join('/')}`;
  const photos = paths.map((p) => ({ path: p, load: () => fetchBytes(url(p)) }));
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
  const photos = [...byPath].map(([p, f]) => ({ path: p, load: async () => new Uint8Array(await f.arrayBuffer()) }));
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

/** The identity of the loaded weights, named in the gallery index (set once the weights are read). */
export function setIdentity(id: ModelIdentity): void {
  identity = id;
}
