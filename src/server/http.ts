/**
 * Node-only: the HTTP face of the search service (`sketchgpu serve`, docs/server.md), on node:http.
 *
 *   GET  /              a page: draw a sketch (or open one) and see the results, searched here (src/server/page.ts)
 *   POST /search        a sketch as the body (image/png, image/jpeg; options in the query string), or JSON
 *                       {"sketch": base64 or data URL, "text", "k", "rerank", "rerank_k", "text_weight"}
 *   GET  /info          the model, the gallery, the adapter, the queue
 *   GET  /metrics       counters and latency histograms in Prometheus' text format
 *   GET  /health        200 while queries can run, 503 while the model reloads after a device loss or after it failed
 *   POST /explain       why a sketch matches a photo (ZSE-SBIR): ?id=<photo id>, the sketch as the body; a PNG sheet
 *                       (or JSON with format=json)
 *   GET  /photos/<id>   a gallery photo by its id (only ids of the index, read inside its root)
 *
 * Every request is bounded: the body (--max-body), the time to send it (requestTimeout), the queue (BUSY -> 503).
 * Every refusal is JSON `{"error": {"code", "message", "hint"}}` with a 4xx/5xx status; nothing a client sends can
 * make the server read outside the gallery or stop it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname } from 'node:path';
import { SketchError, isSketchError, type ErrorCode } from '../core/errors.ts';
import { readBoundedFile } from '../io/read-file.ts';
import { confinedGalleryPath } from '../retrieval/gallery.ts';
import { encodePng } from '../io/png-encode.ts';
import { PAGE_CSP, PAGE_HTML } from './page.ts';
import type { SearchService } from './service.ts';
import { BodyBudget, HttpError, parseExplainRequest, parseSearchRequest, readBody } from './requests.ts';
import { Metrics, routeOf } from './metrics.ts';

export interface SearchHandlerOptions {
  /** The largest request body accepted, in bytes (default 16 MiB). */
  maxBodyBytes?: number;
  /** The bytes of all request bodies held at once (default the larger of 4 bodies and 256 MiB); beyond, 503. */
  maxBodyBytesInFlight?: number;
  /** Serve the gallery's photos at /photos/<id> (default true; never with ANN, whose rows are not all in memory). */
  photos?: boolean;
  /** Serve the search page at / (default true; src/server/page.ts). */
  page?: boolean;
  /** An origin allowed to call from a browser page (CORS), e.g. "https://app.example.org", or "*". */
  cors?: string;
  /**
   * Host names a request may name (the Host header), against DNS rebinding; empty: any. `startSearchServer` fills it
   * with the loopback names when it binds a loopback address.
   */
  allowedHosts?: string[];
  /**
   * A secret every request but the page and /health must present as `Authorization: Bearer <token>` (401 without
   * it). The page takes it from its URL's fragment (`/#token=...`, never sent to the server) and sends it along.
   */
  token?: string;
  /** One line per request (method, path, status, ms, batch) for a log. */
  log?: (entry: RequestLog) => void;
  /** Unexpected errors (a 500), with their stack, for the operator. */
  onError?: (e: unknown) => void;
}

export interface RequestLog {
  time: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  batch?: number;
  error?: string;
}

export const DEFAULT_MAX_BODY = 16 * 2 ** 20;
const PHOTO_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg' };

/** HTTP status of a refusal. */
function statusOf(code: ErrorCode): number {
  switch (code) {
    case 'BUSY':
    case 'DEVICE_LOST':
      return 503;
    case 'BAD_ARGUMENT':
    case 'BAD_IMAGE':
    case 'EMPTY_SKETCH':
    case 'BAD_NPY':
    case 'NON_FINITE':
      return 400;
    default:
      return 500;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]', '::1'];

/** The host name of a Host header ("example.org:8090" -> "example.org", "[::1]:80" -> "[::1]"). */
function hostName(h: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(h.trim().toLowerCase());
  return m ? m[1]! : '';
}

/**
 * The request handler, to mount on an http.Server of one's own (or use startSearchServer).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * const handle = searchHandler(service, { cors: 'https://app.example.org' });
 * createServer((req, res) => (req.url === '/app' ? myPage(req, res) : handle(req, res))).listen(8080);
 * ```
 */
export function searchHandler(service: SearchService, o: SearchHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const maxBody = o.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const budget = new BodyBudget(o.maxBodyBytesInFlight ?? Math.max(4 * maxBody, 256 * 2 ** 20));
  const allowed = new Set((o.allowedHosts ?? []).map((h) => h.toLowerCase()));
  /** Photos are served (and linked from hits) for the gallery's own ids, when the gallery holds its rows. */
  const servesPhotos = () => o.photos !== false && service.index.paths.length > 0;

  const cors: Record<string, string> = o.cors ? { 'Access-Control-Allow-Origin': o.cors, Vary: 'Origin' } : {};
  if (o.token !== undefined && !(typeof o.token === 'string' && o.token.length >= 16 && /^[\x21-\x7e]+$/.test(o.token))) {
    throw new SketchError('BAD_ARGUMENT', 'the token must be at least 16 printable characters (no spaces)', 'Make one with e.g. `openssl rand -hex 24`.');
  }
  const tokenHash = o.token !== undefined ? createHash('sha256').update(o.token).digest() : null;
  /** Whether the request carries the token (compared in constant time, through hashes of equal length). */
  const authorized = (req: IncomingMessage) => {
    if (!tokenHash) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(String(req.headers.authorization ?? ''));
    return !!m && timingSafeEqual(createHash('sha256').update(m[1]!).digest(), tokenHash);
  };
  const metrics = new Metrics();
  return (req, res) => {
    const t0 = performance.now();
    res.on('finish', () => metrics.observe(routeOf(req.url), res.statusCode, (performance.now() - t0) / 1000));
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://x');
    } catch {
      url = new URL('http://x/');
    }
    const method = req.method ?? 'GET';
    let batch: number | undefined;
    const finish = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      send(res, status, body, { ...cors, ...headers });
      o.log?.({ time: new Date().toISOString(), method, path: url.pathname.slice(0, 200), status, ms: Number((performance.now() - t0).toFixed(2)), ...(batch ? { batch } : {}),
        ...(status >= 400 ? { error: (body as { error?: { code?: string } }).error?.code } : {}) });
    };
    const fail = (e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (isSketchError(e)) {
        const status = e instanceof HttpError ? e.status : statusOf(e.code);
        if (status >= 500 && e.code !== 'BUSY' && e.code !== 'DEVICE_LOST') o.onError?.(e);
        // A body refused while it was read (413, or 503 over the budget): the rest is not read, so this connection
        // cannot carry another request.
        const unread = status === 413 || (e instanceof HttpError && e.code === 'BUSY');
        const retry = e.code === 'BUSY' || e.code === 'DEVICE_LOST';
        finish(status, { error: { code: e.code, message: e.message, hint: e.hint } }, {
          ...(retry ? { 'Retry-After': '1' } : {}), ...(unread ? { Connection: 'close' } : {}), ...(status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {}),
        });
      } else {
        o.onError?.(e);
        finish(500, { error: { code: 'INTERNAL', message: 'the server failed on this request', hint: 'This is unexpected; the server log has the details.' } });
      }
    };
    const route = async () => {
      if (allowed.size && !allowed.has(hostName(req.headers.host ?? ''))) {
        throw new HttpError(403, 'BAD_ARGUMENT', `this server answers requests for ${[...allowed].join(', ')}, not for the host ${JSON.stringify((req.headers.host ?? '').slice(0, 100))}`,
          'Call it by a loopback name (localhost, 127.0.0.1), or bind it to another address with --host.');
      }
      const path = url.pathname;
      if (method !== 'OPTIONS' && path !== '/' && path !== '/health' && !authorized(req)) {
        throw new HttpError(401, 'BAD_ARGUMENT', req.headers.authorization ? 'the token is wrong' : 'this server needs a token',
          'Send the header "Authorization: Bearer <token>" (the page: open it as /#token=<token>).');
      }
      if (method === 'OPTIONS') {
        res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type, Authorization', 'Access-Control-Max-Age': '600', Allow: 'GET, POST, OPTIONS' });
        res.end();
        return;
      }
      const only = (...methods: string[]) => {
        if (!methods.includes(method)) throw new HttpError(405, 'BAD_ARGUMENT', `${path} takes ${methods.join(' or ')}, not ${method.slice(0, 20)}`, `Send a ${methods[0]} request.`);
      };
      if (path === '/search') {
        only('POST');
        const body = await readBody(req, res, maxBody, budget);
        const q = parseSearchRequest(String(req.headers['content-type'] ?? ''), body, url.searchParams);
        const r = await service.query(q);
        batch = r.batch;
        const photos = servesPhotos();
        const hits = r.hits.map((h) => (photos ? { ...h, photo: `/photos/${h.id.split('/').map(encodeURIComponent).join('/')}` } : h));
        finish(200, { hits, batch: r.batch, timings_ms: Object.fromEntries(Object.entries(r.timings_ms).map(([k, v]) => [k, Number(v.toFixed(3))])) });
        return;
      }
      if (path === '/explain') {
        only('POST');
        // An explanation shows the photo: none where photos are not served.
        if (!servesPhotos()) throw new HttpError(404, 'BAD_ARGUMENT', 'this server does not explain matches (it serves no photos, and an explanation shows the photo)', 'Start it without --no-photos, on an .sgi index or a LanceDB table searched exactly.');
        const body = await readBody(req, res, maxBody, budget);
        const q = parseExplainRequest(String(req.headers['content-type'] ?? ''), body, url.searchParams);
        const e = await service.explain(q);
        const t = Object.fromEntries(Object.entries(e.timings_ms).map(([k, v]) => [k, Number(v.toFixed(3))]));
        const sheet = encodePng(e.views.sheet);
        if (q.format === 'json') {
          finish(200, { rn: e.rn, cosine: e.cosine, grid: e.grid, image_size: e.imageSize, links: e.links, sheet: `data:image/png;base64,${sheet.toString('base64')}`, timings_ms: t });
          return;
        }
        res.writeHead(200, { ...cors, 'Content-Type': 'image/png', 'Content-Length': sheet.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff',
          'X-Sketchgpu-Rn': String(e.rn), 'X-Sketchgpu-Cosine': String(e.cosine), ...(o.cors ? { 'Access-Control-Expose-Headers': 'X-Sketchgpu-Rn, X-Sketchgpu-Cosine' } : {}) });
        res.end(sheet);
        o.log?.({ time: new Date().toISOString(), method, path, status: 200, ms: Number((performance.now() - t0).toFixed(2)) });
        return;
      }
      if (path === '/' && o.page !== false) {
        only('GET', 'HEAD');
        res.writeHead(200, { ...cors, 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(PAGE_HTML), 'Cache-Control': 'no-cache',
          'Content-Security-Policy': PAGE_CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' });
        res.end(method === 'HEAD' ? undefined : PAGE_HTML);
        o.log?.({ time: new Date().toISOString(), method, path, status: 200, ms: Number((performance.now() - t0).toFixed(2)) });
        return;
      }
      if (path === '/info') {
        only('GET', 'HEAD');
        const m = service.model.info, ix = service.index, photos = servesPhotos();
        finish(200, {
          service: 'sketchgpu', status: service.status, model: m.model, label: m.label, weights: m.weights, weights_sha256: m.weightsSha256,
          dim: m.dim, image_size: m.imageSize, has_text: m.hasText, has_relation: m.hasRelation, adapter: m.adapter,
          index: ix.file ?? null, photos: ix.paths.length || null, photos_served: photos, explain: m.model === 'zse-sbir' && m.hasRelation && ix.paths.length > 0,
          queue: { waiting: service.queued, max: service.maxQueue, max_batch: service.maxBatch }, stats: service.stats, token: !!tokenHash,
          sketch_decoding: service.decodesOnWorkers ? 'worker threads' : 'main thread',
          endpoints: { page: o.page !== false ? 'GET /' : null, search: 'POST /search', info: 'GET /info', health: 'GET /health', metrics: 'GET /metrics', photos: photos ? 'GET /photos/<id>' : null, explain: 'POST /explain' },
        });
        return;
      }
      if (path === '/metrics') {
        only('GET', 'HEAD');
        const text = metrics.render(service);
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
        res.end(method === 'HEAD' ? undefined : text);
        return;
      }
      if (path === '/health') {
        only('GET', 'HEAD');
        const ok = service.status === 'ready';
        finish(ok ? 200 : 503, { ok, status: service.status }, ok ? {} : { 'Retry-After': '1' });
        return;
      }
      if (path.startsWith('/photos/')) {
        only('GET', 'HEAD');
        const photos = servesPhotos();
        let id: string;
        try {
          id = path.slice('/photos/'.length).split('/').map(decodeURIComponent).join('/');
        } catch {
          id = '';
        }
        if (!photos || !service.hasPhoto(id)) {
          throw new HttpError(404, 'BAD_ARGUMENT', photos ? `no photo ${JSON.stringify(id.slice(0, 200))} in this gallery` : 'this server does not serve photos',
            photos ? 'Use an id from a search result.' : 'Photos are served from an .sgi index or a LanceDB table searched exactly (not with --ann, nor with --no-photos).');
        }
        const bytes = await readBoundedFile(confinedGalleryPath(service.index.root, id, service.index.file), 'image');
        res.writeHead(200, { ...cors, 'Content-Type': PHOTO_TYPES[extname(id).toLowerCase()] ?? 'application/octet-stream', 'Content-Length': bytes.length, 'Cache-Control': 'max-age=3600', 'X-Content-Type-Options': 'nosniff' });
        res.end(method === 'HEAD' ? undefined : bytes);
        o.log?.({ time: new Date().toISOString(), method, path: path.slice(0, 200), status: 200, ms: Number((performance.now() - t0).toFixed(2)) });
        return;
      }
      throw new HttpError(404, 'BAD_ARGUMENT', `no such endpoint: ${path.slice(0, 200)}`, 'The endpoints are GET / (the page), POST /search, POST /explain, GET /info, GET /health, GET /metrics, GET /photos/<id>.');
    };
    route().catch(fail);
  };
}

export interface StartOptions extends SearchHandlerOptions {
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 8090; 0 picks a free one). */
  port?: number;
}

export interface RunningServer {
  server: Server;
  /** e.g. http://127.0.0.1:8090 */
  url: string;
  port: number;
  /** Stops accepting, lets the queued queries finish, frees the GPU. */
  close(): Promise<void>;
}

/**
 * Starts an HTTP server for the service (docs/server.md): 127.0.0.1:8090 unless told otherwise.
 *
 * @example
 * ```ts
 * const s = await startSearchServer(service, { port: 0 });
 * const r = await fetch(`${s.url}/search?k=5`, { method: 'POST', body: readFileSync('giraffe.png'), headers: { 'Content-Type': 'image/png' } });
 * console.log((await r.json()).hits);
 * await s.close();
 * ```
 */
export async function startSearchServer(service: SearchService, o: StartOptions = {}): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  const allowedHosts = o.allowedHosts ?? (loopback ? [...LOOPBACK_NAMES, host] : []);
  const server = createServer(searchHandler(service, { ...o, allowedHosts }));
  // A client gets 30 s to send its request; a slow one cannot hold a connection open forever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
      ? new SketchError('IO', `port ${o.port ?? 8090} on ${host} is in use`, 'Pick another with --port (0 picks a free one), or stop what uses it.')
      : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' ? new SketchError('BAD_ARGUMENT', `cannot bind ${host}: ${e.message}`, 'Pass an address of this machine with --host (default 127.0.0.1; 0.0.0.0 for every interface).')
        : e));
    server.listen(o.port ?? 8090, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return {
    server, port, url: `http://${shown}:${port}`,
    close: () => (closing ??= (async () => {
      const stopped = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await service.close();
      server.closeAllConnections();
      await stopped;
    })()),
  };
}
