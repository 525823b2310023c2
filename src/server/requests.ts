/**
 * Node-only: what the search server reads from a request (src/server/http.ts): the body within its bounds, and the
 * queries of POST /search and POST /explain, as a raw image body with options in the query string or as JSON. Every
 * refusal is an HttpError (a SketchError with its HTTP status).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SketchError, type ErrorCode } from '../core/errors.ts';
import type { ServiceQuery } from './service.ts';

/** A refusal with its HTTP status. */
export class HttpError extends SketchError {
  constructor(readonly status: number, code: ErrorCode, message: string, hint: string) {
    super(code, message, hint);
  }
}

const JSON_FIELDS = new Set(['sketch', 'text', 'k', 'rerank', 'rerank_k', 'text_weight']);
const QUERY_FIELDS = new Set(['k', 'rerank', 'rerank_k', 'text', 'text_weight']);

/**
 * Bytes of request bodies held at once, across requests: each body is bounded by --max-body, and this bounds their sum
 * (a flood of large uploads cannot exhaust memory). A body's bytes count from its first chunk until its response is
 * sent.
 */
export class BodyBudget {
  used = 0;
  constructor(readonly max: number) {}
}

/** The body, at most `max` bytes (413 beyond, without reading the rest), within the shared budget (503 beyond). */
export function readBody(req: IncomingMessage, res: ServerResponse, max: number, budget: BodyBudget): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) return Promise.reject(new HttpError(413, 'BAD_ARGUMENT', `the body is ${declared} bytes, more than the ${max} bytes this server takes`, 'Send a smaller image (a sketch needs no more than a few hundred KB), or start the server with a larger --max-body.'));
  let held = 0;
  const release = () => { budget.used -= held; held = 0; };
  res.once('close', release);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const stop = (e: HttpError) => {
      req.removeAllListeners('data');
      req.pause();
      reject(e);
    };
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) return stop(new HttpError(413, 'BAD_ARGUMENT', `the body is more than the ${max} bytes this server takes`, 'Send a smaller image, or start the server with a larger --max-body.'));
      if (budget.used + c.length > budget.max) {
        return stop(new HttpError(503, 'BUSY', `the server holds ${budget.used} bytes of request bodies already, its limit for all requests together`, 'Retry in a moment.'));
      }
      budget.used += c.length;
      held += c.length;
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, n)));
    // A client that goes away mid-body: nothing to answer, but the request must not wait forever.
    req.on('close', () => { if (!req.complete) reject(new HttpError(400, 'BAD_ARGUMENT', 'the client closed the connection before sending the whole body', 'Send the request again.')); });
    req.on('error', (e) => reject(new HttpError(400, 'BAD_ARGUMENT', `the request body could not be read: ${e.message}`, 'Send the request again.')));
  });
}

const bad = (message: string, hint: string) => new HttpError(400, 'BAD_ARGUMENT', message, hint);

function parseInt10(name: string, v: unknown): number {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return v;
  } else if (typeof v === 'string' && /^\d{1,9}$/.test(v)) return Number(v);
  throw bad(`${name} must be a positive integer, not ${JSON.stringify(v)}`, `e.g. ${name}=10.`);
}

function parseNumber(name: string, v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw bad(`${name} must be a number, not ${JSON.stringify(v)}`, `e.g. ${name}=0.5.`);
  return n;
}

function parseRerank(v: unknown): boolean {
  if (v === true || v === 'rn' || v === 'true' || v === '1') return true;
  if (v === false || v === 'false' || v === '0' || v === '' || v === 'none') return false;
  throw bad(`rerank must be "rn" or true/false, not ${JSON.stringify(v)}`, 'e.g. rerank=rn (re-rank the cosine shortlist with the relation network).');
}

/** A sketch sent in JSON: base64, or a data: URL of a PNG or JPEG. */
function decodeSketch(v: unknown): Uint8Array {
  if (typeof v !== 'string') throw bad('sketch must be a string: the image file in base64, or a data: URL', 'e.g. {"sketch": "data:image/png;base64,iVBOR..."} (canvas.toDataURL() gives one).');
  let b64 = v;
  const m = /^data:([^;,]*)(;base64)?,/.exec(v);
  if (m) {
    if (!m[2]) throw bad('the sketch data: URL is not base64-encoded', 'Send data:image/png;base64,... (canvas.toDataURL() gives one).');
    b64 = v.slice(m[0].length);
  }
  b64 = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) throw bad('the sketch is not valid base64', 'Encode the PNG or JPEG file in base64 (or send it as the body with Content-Type image/png).');
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length === 0) throw bad('the sketch is empty', 'Send the image file in base64.');
  return bytes;
}

/** Refuses a query-string parameter outside `allowed` (a typo is said, not ignored). */
function checkParams(params: URLSearchParams, allowed: Set<string>): void {
  for (const key of params.keys()) {
    if (!allowed.has(key)) throw bad(`unknown query parameter "${key.slice(0, 100)}"`, `The parameters are ${[...allowed].join(', ')}.`);
  }
}

/** A JSON request body: an object with only `allowed` fields, and no options in the URL beside it. */
function jsonObject(body: Buffer, params: URLSearchParams, allowed: Set<string>, example: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw bad(`the body is not JSON: ${(e as Error).message}`, `Send ${example}, or the image itself with Content-Type image/png.`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw bad('the JSON body must be an object', `e.g. ${example}.`);
  const o = j as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!allowed.has(key)) throw bad(`unknown field "${key.slice(0, 100)}"`, `The fields are ${[...allowed].join(', ')}.`);
  }
  if ([...params.keys()].length) throw bad('a JSON request takes its options in the body, not in the URL', 'Move them into the JSON object.');
  return o;
}

/** The query of a POST /search. */
export function parseSearchRequest(contentType: string, body: Buffer, params: URLSearchParams): ServiceQuery {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  const q: ServiceQuery = {};
  const take = (get: (f: string) => unknown, has: (f: string) => boolean) => {
    if (has('k')) q.k = parseInt10('k', get('k'));
    if (has('rerank_k')) q.rerankK = parseInt10('rerank_k', get('rerank_k'));
    if (has('rerank')) q.rerank = parseRerank(get('rerank'));
    if (has('text_weight')) q.textWeight = parseNumber('text_weight', get('text_weight'));
    if (has('text')) {
      const t = get('text');
      if (typeof t !== 'string') throw bad('text must be a string', 'e.g. "text": "a giraffe".');
      q.text = t;
    }
  };
  checkParams(params, QUERY_FIELDS);
  if (type === 'application/json') {
    const o = jsonObject(body, params, JSON_FIELDS, '{"sketch": "<base64 PNG>", "k": 10}');
    take((f) => o[f], (f) => o[f] !== undefined && o[f] !== null);
    if (o.sketch !== undefined && o.sketch !== null) q.sketch = decodeSketch(o.sketch);
    return q;
  }
  if (type === 'image/png' || type === 'image/jpeg' || type === 'application/octet-stream') {
    if (body.length === 0) throw bad('the body is empty', 'Send the sketch image (PNG or JPEG) as the body.');
    take((f) => params.get(f), (f) => params.has(f));
    q.sketch = body;
    return q;
  }
  throw new HttpError(415, 'BAD_ARGUMENT', `the body type ${JSON.stringify(type || 'none')} is not one this server reads`,
    'Send the sketch as image/png or image/jpeg (options in the query string), or as application/json.');
}

const EXPLAIN_JSON_FIELDS = new Set(['sketch', 'id', 'top', 'format']);
const EXPLAIN_QUERY_FIELDS = new Set(['id', 'top', 'format']);

/** The request of a POST /explain: the sketch (body or JSON) and the photo's id; the answer a PNG sheet or JSON. */
export function parseExplainRequest(contentType: string, body: Buffer, params: URLSearchParams): { sketch: Uint8Array; id: string; top?: number; format: 'png' | 'json' } {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  checkParams(params, EXPLAIN_QUERY_FIELDS);
  let get: (f: string) => unknown;
  let sketch: Uint8Array;
  if (type === 'application/json') {
    const o = jsonObject(body, params, EXPLAIN_JSON_FIELDS, '{"sketch": "<base64 PNG>", "id": "<photo id>"}');
    if (o.sketch === undefined || o.sketch === null) throw bad('the request has no sketch', 'Send the sketch (base64 or a data: URL) in "sketch".');
    sketch = decodeSketch(o.sketch);
    get = (f) => (o[f] === null ? undefined : o[f]);
  } else if (type === 'image/png' || type === 'image/jpeg' || type === 'application/octet-stream') {
    if (body.length === 0) throw bad('the body is empty', 'Send the sketch image (PNG or JPEG) as the body.');
    sketch = body;
    get = (f) => (params.has(f) ? params.get(f) : undefined);
  } else {
    throw new HttpError(415, 'BAD_ARGUMENT', `the body type ${JSON.stringify(type || 'none')} is not one this server reads`,
      'Send the sketch as image/png or image/jpeg (the photo id in ?id=), or as application/json.');
  }
  const id = get('id');
  if (typeof id !== 'string' || id === '') throw bad('the request names no photo', 'Pass the id of a search hit: ?id=<id> (or "id" in JSON).');
  const top = get('top');
  const format = get('format') ?? 'png';
  if (format !== 'png' && format !== 'json') throw bad(`format must be "png" or "json", not ${JSON.stringify(format)}`, 'e.g. format=json for the links and scores with the sheet as a data: URL.');
  return { sketch, id, ...(top !== undefined ? { top: parseInt10('top', top) } : {}), format };
}
