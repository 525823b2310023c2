// The page's parameters (query string), constants, elements and drawing pad.
import { SketchPad } from './pad.ts';

// Parameters and elements

export const params = new URLSearchParams(location.search);
const intParam = (name: string, dflt: number, lo: number, hi: number): number => {
  const v = Number(params.get(name));
  return params.has(name) && Number.isInteger(v) ? Math.min(hi, Math.max(lo, v)) : dflt;
};
export const K = intParam('k', 12, 1, 100);
export const DEBOUNCE_MS = intParam('debounce', 300, 0, 10_000);
export const PER_CLASS = params.has('perclass') ? intParam('perclass', 4, 1, 1_000_000) : undefined;
export const USE_INDEX_CACHE = params.get('cache') !== '0';
/** ?precision=f16: the CLI's --precision f16 (weights and GEMM inputs as binary16: about half the GPU memory). */
export const PRECISION = params.get('precision') === 'f16' ? 'f16' : 'f32';
export const SHELL_CACHE = 'sketchgpu-web-v1';
export const INDEX_CACHE = 'sketchgpu-index-v1';
export const VOCAB_URL = params.get('vocab') || '../clip/bpe_simple_vocab_16e6.txt.gz';
/** The default text weight of a composed sketch+text query: the CLI's --text-weight default (src/retrieval/query.ts). */
export const DEFAULT_TEXT_WEIGHT = 0.5;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
export const el = {
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
  searchStatus: $('search-status'),
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


/** The drawing pad. */
export const pad = new SketchPad(el.pad);
