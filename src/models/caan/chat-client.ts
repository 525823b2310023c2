/**
 * A minimal client for OpenAI-compatible chat endpoints (llama.cpp's llama-server, Ollama, vLLM, hosted APIs):
 * POST {endpoint}/chat/completions with a timeout per try, and retries with exponential backoff on network
 * errors, timeouts, 429 and 5xx. Other 4xx answers are final: retrying cannot fix a bad key or a wrong model.
 * Uses the global fetch, so it runs in Node 20+ and in browsers.
 */
import { SketchError } from '../../core/errors.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatOptions {
  /** API base, e.g. http://127.0.0.1:8080/v1 ("/chat/completions" is appended). */
  endpoint: string;
  model: string;
  apiKey?: string;
  /** Where the key came from, for error hints (e.g. "the environment variable OPENAI_API_KEY"). */
  apiKeySource?: string;
  timeoutMs: number;
  /** Tries after the first one. */
  retries: number;
  /** The first backoff; doubled on each retry, capped at 30 s. A 429's Retry-After is honoured up to 60 s. */
  retryDelayMs: number;
  temperature?: number;
  maxTokens?: number;
  /** Aborts everything (the run stopped). */
  signal?: AbortSignal;
  onRetry?: (info: { attempt: number; reason: string; delayMs: number }) => void;
}

export interface ChatResult {
  content: string;
  /** Tries it took (1 = no retry). */
  tries: number;
}

export function chatCompletionsUrl(endpoint: string): string {
  return endpoint.replace(/\/+$/, '') + '/chat/completions';
}

/** Why a try failed, and whether another try may help. */
interface TryFailure {
  retry: boolean;
  reason: string;
  retryAfterMs?: number;
  error?: SketchError;
}

const snippet = (s: string) => {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 197)}...` : one;
};

function serverMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    const m = typeof j.error === 'string' ? j.error : j.error?.message ?? j.message ?? j.detail;
    if (typeof m === 'string' && m) return snippet(m);
  } catch { /* not JSON */ }
  return snippet(body) || '(empty body)';
}

function retryAfterMs(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(h);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

function networkReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e);
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  if (signal?.aborted) return resolve();
  const t = setTimeout(done, ms);
  function done() {
    clearTimeout(t);
    signal?.removeEventListener('abort', done);
    resolve();
  }
  signal?.addEventListener('abort', done, { once: true });
});

/** AbortSignal.any, which Node gained in 20.3. */
function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([a, b]);
  const c = new AbortController();
  for (const s of [a, b]) {
    if (s.aborted) c.abort();
    else s.addEventListener('abort', () => c.abort(), { once: true });
  }
  return c.signal;
}

/** One chat completion: the first choice's message content ('' when the model gave none). */
export async function chatComplete(messages: ChatMessage[], o: ChatOptions): Promise<ChatResult> {
  const url = chatCompletionsUrl(o.endpoint);
  const body = JSON.stringify({
    model: o.model, messages, stream: false,
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
    ...(o.maxTokens !== undefined ? { max_tokens: o.maxTokens } : {}),
  });
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  let last: TryFailure | undefined;
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    if (attempt > 0) {
      const backoff = Math.min(30_000, o.retryDelayMs * 2 ** (attempt - 1));
      const delayMs = Math.min(60_000, Math.max(backoff, last?.retryAfterMs ?? 0));
      o.onRetry?.({ attempt, reason: last!.reason, delayMs });
      await sleep(delayMs, o.signal);
    }
    if (o.signal?.aborted) throw new SketchError('INTERRUPTED', 'the request was cancelled', 'Rerun the command to continue.');
    const r = await tryOnce(url, body, headers, o);
    if (typeof r === 'string') return { content: r, tries: attempt + 1 };
    if (!r.retry) throw r.error!;
    last = r;
  }
  const tries = o.retries + 1;
  const reason = last!.reason;
  if (reason.startsWith('timeout')) {
    throw new SketchError('IO', `${url} gave no answer within ${o.timeoutMs} ms (${tries} ${tries === 1 ? 'try' : 'tries'})`,
      'Raise --timeout-ms (a large model on a CPU can take minutes per answer), lower --concurrency, or check that the server is not stuck.');
  }
  if (reason.startsWith('HTTP')) {
    throw new SketchError('IO', `${url} kept failing: ${reason} (${tries} ${tries === 1 ? 'try' : 'tries'})`,
      'The server is overloaded or broken: look at its log, lower --concurrency, or raise --retries / --retry-delay-ms.');
  }
  throw new SketchError('IO', `cannot reach ${url} (${reason}; ${tries} ${tries === 1 ? 'try' : 'tries'})`,
    'Is the server running and is --endpoint its API base? e.g. `llama-server -m model.gguf --port 8080` -> http://127.0.0.1:8080/v1, `ollama serve` -> http://127.0.0.1:11434/v1.');
}

async function tryOnce(url: string, body: string, headers: Record<string, string>, o: ChatOptions): Promise<string | TryFailure> {
  const timer = new AbortController();
  const t = setTimeout(() => timer.abort(), o.timeoutMs);
  const signal = o.signal ? anySignal(o.signal, timer.signal) : timer.signal;
  let status: number, text: string, retryAfter: string | null;
  try {
    const res = await fetch(url, { method: 'POST', headers, body, signal });
    status = res.status;
    retryAfter = res.headers.get('retry-after');
    text = await res.text();
  } catch (e) {
    if (o.signal?.aborted) return { retry: false, reason: 'cancelled', error: new SketchError('INTERRUPTED', 'the request was cancelled', 'Rerun the command to continue.') };
    if (timer.signal.aborted) return { retry: true, reason: `timeout after ${o.timeoutMs} ms` };
    const reason = networkReason(e);
    if (reason === 'bad port') {
      return { retry: false, reason, error: new SketchError('BAD_ARGUMENT', `fetch refuses the port of ${url} (it is on the WHATWG "bad ports" list)`,
        'Run the server on another port, e.g. 8080.') };
    }
    return { retry: true, reason };
  } finally {
    clearTimeout(t);
  }
  if (status >= 200 && status < 300) return readContent(url, text);
  const msg = serverMessage(text);
  if (status === 429 || status >= 500) return { retry: true, reason: `HTTP ${status}: ${msg}`, retryAfterMs: retryAfterMs(retryAfter) };
  if (status === 401 || status === 403) {
    const key = o.apiKey
      ? `The key from ${o.apiKeySource ?? 'the API key'} was refused: check it.`
      : 'No key was sent: put the key in an environment variable and pass its name with --api-key-env NAME.';
    return { retry: false, reason: `HTTP ${status}`, error: new SketchError('BAD_ARGUMENT', `${url} refused the request: HTTP ${status} (${msg})`, key) };
  }
  if (status === 404) {
    return { retry: false, reason: 'HTTP 404', error: new SketchError('BAD_ARGUMENT', `${url} answered HTTP 404 (${msg})`,
      `Check that --endpoint is the API base (it usually ends in /v1) and that the server has the model "${o.model}".`) };
  }
  return { retry: false, reason: `HTTP ${status}`, error: new SketchError('BAD_ARGUMENT', `${url} refused the request: HTTP ${status} (${msg})`,
    `Check --model ("${o.model}") and that the endpoint speaks the OpenAI chat completions API.`) };
}

function readContent(url: string, text: string): string | TryFailure {
  const shape = (what: string) => ({
    retry: false, reason: 'bad response',
    error: new SketchError('BAD_ARGUMENT', `${url} did not answer like an OpenAI chat completions API: ${what}`,
      'Point --endpoint at an OpenAI-compatible API base (e.g. http://127.0.0.1:8080/v1), not at a web page or another API.'),
  });
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return shape(`the body is not JSON (${snippet(text) || 'empty'})`);
  }
  const choices = (j as { choices?: unknown })?.choices;
  if (!Array.isArray(choices) || choices.length === 0) return shape('no "choices" list');
  const message = (choices[0] as { message?: { content?: unknown } })?.message;
  if (typeof message !== 'object' || message === null) return shape('choices[0] has no "message"');
  const c = message.content;
  if (c === null || c === undefined) return '';
  if (typeof c === 'string') return c;
  // Some servers send content parts: [{type: "text", text: "..."}].
  if (Array.isArray(c)) return c.map((p) => (typeof p === 'string' ? p : typeof p?.text === 'string' ? p.text : '')).join('');
  return shape('choices[0].message.content is not text');
}
