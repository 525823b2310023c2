// `sketchgpu describe` against a local emulation of an OpenAI-compatible /v1/chat/completions server (node:http
// on 127.0.0.1, a random port): normal answers in several formats, retries after 500 and 429, a hanging server
// (timeout), 401 with and without a key, other 4xx, an unreachable port, a non-API answer, an empty class list,
// answers without phrases, and resuming after a run that stopped half way.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { isSketchError } from '../src/core/errors.ts';
import { addDescribeCommand } from '../src/cli/describe.ts';
import { isComplete, type DescriptionsFile } from '../src/models/caan/descriptions.ts';
import { REPO_ROOT } from './paths.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-describe-'));
const prompts = JSON.parse(readFileSync(resolve(REPO_ROOT, 'src', 'models', 'caan', 'data', 'prompts.json'), 'utf8')) as { prompts: { id: string; question: string }[]; system: string };
const PROMPT_IDS = prompts.prompts.map((p) => p.id);
const CLASSES = ['airplane', 'car_(sedan)', 'hot-air_balloon', 'teddy_bear', 'zebra'];
const classesFile = join(tmp, 'classes.txt');
writeFileSync(classesFile, `# five Sketchy classes\n${CLASSES.join('\n')}\n\nzebra\n`);

// ---- the emulated server ------------------------------------------------------------------------------------------
interface Req { cls: string; prompt: string; auth: string | undefined; body: Record<string, unknown> }
type Handler = (r: Req, n: number, res: ServerResponse) => void;
let handler: Handler;
let log: Req[] = [];
const hanging: ServerResponse[] = [];

function identify(body: Record<string, unknown>): { cls: string; prompt: string } {
  const user = (body.messages as { role: string; content: string }[]).find((m) => m.role === 'user')!.content;
  const cls = /^Category: (.*)$/m.exec(user)![1]!;
  const p = prompts.prompts.find((q) => user.includes(q.question.replaceAll('{class}', cls)));
  return { cls, prompt: p?.id ?? '?' };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
const reply = (res: ServerResponse, content: string | null) =>
  json(res, 200, { id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] });

/** Answers in the formats models really use, picked by prompt: a bare list, a fenced list, bullets, <think>, ... */
function answerFor(r: Req): string {
  const a = [`${r.cls} ${r.prompt} one`, `${r.cls} ${r.prompt} two`];
  switch (r.prompt) {
    case 'shape': return JSON.stringify(a);
    case 'parts': return 'Here are the phrases:\n```json\n' + JSON.stringify(a, null, 2) + '\n```';
    case 'distinctive': return `- ${a[0]}\n- **${a[1]}**.\n`;
    case 'proportions': return `<think>the user wants a list</think>\n1. ${a[0]}\n2. ${a[1]}`;
    case 'texture': return JSON.stringify({ phrases: a });
    default: return `"${a[0]}"\n"${a[1]}"`;
  }
}
const normal: Handler = (r, _n, res) => reply(res, answerFor(r));

let server: Server;
let endpoint: string;
let count = new Map<string, number>();
test.before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return json(res, 404, { error: { message: `no route ${req.url}` } });
      const body = JSON.parse(data) as Record<string, unknown>;
      const r: Req = { ...identify(body), auth: req.headers.authorization, body };
      log.push(r);
      const key = `${r.cls}/${r.prompt}`;
      const n = (count.get(key) ?? 0) + 1;
      count.set(key, n);
      handler(r, n, res);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
test.after(() => {
  for (const h of hanging) h.destroy();
  server.closeAllConnections();
  server.close();
});

function reset(h: Handler) {
  handler = h;
  log = [];
  count = new Map();
}

async function run(args: string[], extra: { endpoint?: string } = {}) {
  const out: string[] = [], err: string[] = [];
  const program = new Command('sketchgpu').exitOverride();
  addDescribeCommand(program, { out: (l) => out.push(l), err: (l) => err.push(l), progress: false });
  let error: unknown;
  try {
    await program.parseAsync(['node', 'sketchgpu', 'describe', '--endpoint', extra.endpoint ?? endpoint, '--model', 'test-model',
      '--retry-delay-ms', '5', ...args]);
  } catch (e) {
    error = e;
  }
  return { out, err, error };
}

function assertSketchError(e: unknown, code: string, msg: RegExp, hint?: RegExp) {
  assert.ok(isSketchError(e), `expected a SketchError, got ${e === undefined ? 'no error' : String((e as Error)?.stack ?? e)}`);
  assert.is(e.code, code, e.message);
  assert.match(e.message, msg);
  assert.ok(e.hint && e.hint.length > 10, 'a hint');
  if (hint) assert.match(e.hint!, hint);
}

const readDoc = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as DescriptionsFile;

// ---- the tests ----------------------------------------------------------------------------------------------------
test('a normal run: every class x prompt asked once, answers in six formats parsed, the file written', async () => {
  reset(normal);
  const o = join(tmp, 'normal.json');
  const r = await run(['--classes', classesFile, '-o', o, '--json', '--concurrency', '3']);
  assert.is(r.error, undefined, String(r.error));
  assert.is(log.length, CLASSES.length * PROMPT_IDS.length);
  const s = JSON.parse(r.out[0]!);
  assert.equal([s.classes, s.complete, s.alreadyComplete, s.requests, s.retries, s.incomplete], [5, 5, 0, 30, 0, []]);
  const doc = readDoc(o);
  assert.is(doc.schema, 'sketchgpu.caan-descriptions/1');
  assert.equal(Object.keys(doc.classes), CLASSES); // the class list's order, the duplicate zebra dropped
  assert.equal(doc.prompt_ids, PROMPT_IDS);
  assert.is(doc.provenance.method, 'llm');
  assert.is(doc.provenance.model, 'test-model');
  assert.is(doc.provenance.endpoint, endpoint);
  assert.is(doc.provenance.prompts, 'src/models/caan/data/prompts.json');
  assert.match(doc.provenance.prompts_sha256, /^[0-9a-f]{64}$/);
  const car = doc.classes['car_(sedan)']!;
  for (const id of PROMPT_IDS) assert.equal(car.by_prompt[id], [`car (sedan) ${id} one`, `car (sedan) ${id} two`], id);
  assert.is(car.phrases.length, 12);
  assert.is(car.phrases[0], 'car (sedan) shape one');
  // What was sent: the system prompt, the class name with spaces, the request settings of prompts.json.
  const b = log[0]!.body;
  assert.is(b.model, 'test-model');
  assert.is(b.temperature, 0.2);
  assert.is(b.max_tokens, 256);
  assert.is((b.messages as { content: string }[])[0]!.content, prompts.system);
  assert.ok(log.some((q) => q.cls === 'hot-air balloon'));
  assert.is(log[0]!.auth, undefined);
  assert.equal(readdirSync(tmp).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  // A rerun has nothing to do.
  reset(normal);
  const again = await run(['--classes', classesFile, '-o', o, '--json']);
  assert.is(again.error, undefined);
  assert.is(log.length, 0);
  assert.is(JSON.parse(again.out[0]!).alreadyComplete, 5);
});

test('500 and 429 are retried with backoff, then the answer is used', async () => {
  reset((r, n, res) => {
    if (r.cls === 'airplane' && r.prompt === 'shape' && n === 1) return json(res, 500, { error: { message: 'model loading' } });
    if (r.cls === 'zebra' && r.prompt === 'pose' && n <= 2) return json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '0' });
    normal(r, n, res);
  });
  const o = join(tmp, 'retry.json');
  const r = await run(['--classes', classesFile, '-o', o, '--json']);
  assert.is(r.error, undefined, String(r.error));
  const s = JSON.parse(r.out[0]!);
  assert.is(s.retries, 3);
  assert.is(s.requests, 33);
  assert.is(count.get('airplane/shape'), 2);
  assert.is(count.get('zebra/pose'), 3);
  assert.ok(r.err.some((l) => /retry 1\/3 .*HTTP 500: model loading/.test(l)), r.err.join('\n'));
  assert.equal(readDoc(o).classes.airplane!.by_prompt.shape, ['airplane shape one', 'airplane shape two']);
});

test('5xx until the retries run out: a clear error, the answers so far kept', async () => {
  reset((r, n, res) => (r.cls === 'zebra' ? json(res, 503, { error: 'overloaded' }) : normal(r, n, res)));
  const o = join(tmp, 'fail503.json');
  const r = await run(['--classes', classesFile, '-o', o, '--retries', '2', '--concurrency', '1']);
  assertSketchError(r.error, 'IO', /kept failing: HTTP 503: overloaded \(3 tries\)/, /once fixed, rerun the same command/);
  assert.is(count.get('zebra/shape'), 3);
  const doc = readDoc(o);
  assert.is(['airplane', 'car_(sedan)', 'hot-air_balloon', 'teddy_bear'].filter((c) => isComplete(doc.classes[c], PROMPT_IDS)).length, 4);
});

test('a hanging server: each try times out, retried, then a clear error', async () => {
  reset((r, n, res) => {
    if (r.cls === 'airplane') hanging.push(res); // never answers
    else normal(r, n, res);
  });
  const t0 = performance.now();
  const r = await run(['--classes', classesFile, '-o', join(tmp, 'hang.json'), '--timeout-ms', '150', '--retries', '1', '--concurrency', '1']);
  assertSketchError(r.error, 'IO', /gave no answer within 150 ms \(2 tries\)/, /--timeout-ms/);
  assert.is(count.get('airplane/shape'), 2);
  assert.ok(performance.now() - t0 < 5000);
  // A server that hangs once and then answers is fine.
  reset((r, n, res) => (n === 1 && r.prompt === 'shape' ? hanging.push(res) : normal(r, n, res)));
  const ok = await run(['--classes', classesFile, '-o', join(tmp, 'hang-once.json'), '--timeout-ms', '150', '--json']);
  assert.is(ok.error, undefined, String(ok.error));
  assert.is(JSON.parse(ok.out[0]!).retries, 5);
});

test('401: a clear error at once (no retries), naming what to do about the key', async () => {
  reset((r, _n, res) => (r.auth === 'Bearer right' ? reply(res, '["ok phrase"]') : json(res, 401, { error: { message: 'Invalid API key' } })));
  const r = await run(['--classes', classesFile, '-o', join(tmp, 'auth.json'), '--concurrency', '1']);
  assertSketchError(r.error, 'BAD_ARGUMENT', /refused the request: HTTP 401 \(Invalid API key\)/, /--api-key-env/);
  assert.is(log.length, 1);
  process.env.SKETCHGPU_TEST_KEY = 'wrong';
  const wrong = await run(['--classes', classesFile, '-o', join(tmp, 'auth2.json'), '--api-key-env', 'SKETCHGPU_TEST_KEY', '--concurrency', '1']);
  assertSketchError(wrong.error, 'BAD_ARGUMENT', /HTTP 401/, /SKETCHGPU_TEST_KEY was refused/);
  assert.is(log.at(-1)!.auth, 'Bearer wrong');
  process.env.SKETCHGPU_TEST_KEY = 'right';
  const right = await run(['--classes', classesFile, '-o', join(tmp, 'auth3.json'), '--api-key-env', 'SKETCHGPU_TEST_KEY']);
  assert.is(right.error, undefined, String(right.error));
  delete process.env.SKETCHGPU_TEST_KEY;
  const unset = await run(['--classes', classesFile, '-o', join(tmp, 'auth4.json'), '--api-key-env', 'SKETCHGPU_TEST_KEY']);
  assertSketchError(unset.error, 'BAD_ARGUMENT', /SKETCHGPU_TEST_KEY is not set/);
});

test('other 4xx are not retried; 404 points at the endpoint and model', async () => {
  reset((_r, _n, res) => json(res, 400, { error: { message: 'unknown field' } }));
  const r = await run(['--classes', classesFile, '-o', join(tmp, '400.json'), '--concurrency', '1']);
  assertSketchError(r.error, 'BAD_ARGUMENT', /HTTP 400 \(unknown field\)/, /--model/);
  assert.is(log.length, 1);
  const nf = await run(['--classes', classesFile, '-o', join(tmp, '404.json')], { endpoint: endpoint.replace(/\/v1$/, '/api') });
  assertSketchError(nf.error, 'BAD_ARGUMENT', /HTTP 404/, /ends in \/v1/);
});

test('an unreachable endpoint, a non-API answer, bad arguments: clear errors', async () => {
  const closed = createServer();
  await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((ok) => closed.close(() => ok()));
  const un = await run(['--classes', classesFile, '-o', join(tmp, 'un.json'), '--retries', '1'], { endpoint: `http://127.0.0.1:${port}/v1` });
  assertSketchError(un.error, 'IO', /cannot reach http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions \(ECONNREFUSED; 2 tries\)/, /server running/);
  assert.not.ok(existsSync(join(tmp, 'un.json')));
  const badPort = await run(['--classes', classesFile, '-o', join(tmp, 'un.json')], { endpoint: 'http://127.0.0.1:9/v1' });
  assertSketchError(badPort.error, 'BAD_ARGUMENT', /"bad ports" list/, /another port/);

  reset((_r, _n, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>hello</html>'); });
  const html = await run(['--classes', classesFile, '-o', join(tmp, 'html.json')]);
  assertSketchError(html.error, 'BAD_ARGUMENT', /did not answer like an OpenAI chat completions API: the body is not JSON/);
  reset((_r, _n, res) => json(res, 200, { result: 'hi' }));
  const shape = await run(['--classes', classesFile, '-o', join(tmp, 'shape.json')]);
  assertSketchError(shape.error, 'BAD_ARGUMENT', /no "choices" list/);

  reset(normal);
  const empty = join(tmp, 'empty.txt');
  writeFileSync(empty, '# nothing here\n\n   \n');
  assertSketchError((await run(['--classes', empty, '-o', join(tmp, 'e.json')])).error, 'BAD_ARGUMENT', /names no classes/, /one class name per line/);
  assertSketchError((await run(['--classes', join(tmp, 'missing.txt'), '-o', join(tmp, 'e.json')])).error, 'IO', /cannot read the class list .*ENOENT/);
  assertSketchError((await run(['--classes', classesFile, '-o', join(tmp, 'e.json')], { endpoint: 'localhost:8080' })).error, 'BAD_ARGUMENT', /not an http\(s\) URL|not a URL/);
  assertSketchError((await run(['--classes', classesFile, '-o', join(tmp, 'e.json')], { endpoint: `${endpoint}/chat/completions` })).error, 'BAD_ARGUMENT', /already ends in \/chat\/completions/);
  assertSketchError((await run(['--classes', classesFile, '-o', join(tmp, 'e.json'), '--concurrency', '0'])).error, 'BAD_ARGUMENT', /--concurrency must be an integer >= 1/);
  assertSketchError((await run(['--classes', classesFile, '-o', join(tmp, 'd', 'e.json')])).error, 'IO', /cannot write/);
});

test('answers without phrases are asked again; a class that never gets any is reported, the rest kept', async () => {
  reset((r, n, res) => {
    if (r.cls === 'teddy bear' && r.prompt === 'texture') return reply(res, n === 1 ? '' : 'Sure:');
    if (r.cls === 'zebra' && r.prompt === 'parts' && n === 1) return reply(res, null);
    normal(r, n, res);
  });
  const o = join(tmp, 'noparse.json');
  const r = await run(['--classes', classesFile, '-o', o, '--retries', '1']);
  assertSketchError(r.error, 'INTERRUPTED', /1 of 5 classes got no usable phrases for some prompt: teddy_bear/, /Rerun the same command/);
  assert.ok(r.err.some((l) => /warning: teddy_bear \/ texture: no usable phrases in 2 answers/.test(l)), r.err.join('\n'));
  assert.is(count.get('zebra/parts'), 2);
  const doc = readDoc(o);
  assert.not.ok(isComplete(doc.classes.teddy_bear, PROMPT_IDS));
  assert.is(doc.classes.teddy_bear!.phrases.length, 10);
  assert.ok(isComplete(doc.classes.zebra, PROMPT_IDS));
  // The rerun asks only the missing prompt.
  reset(normal);
  const again = await run(['--classes', classesFile, '-o', o, '--json']);
  assert.is(again.error, undefined, String(again.error));
  assert.equal(log.map((q) => `${q.cls}/${q.prompt}`), ['teddy bear/texture']);
});

test('resume: a run stopped half way by an error continues where it stopped, asking nothing twice', async () => {
  let served = 0;
  reset((r, n, res) => (++served > 13 ? json(res, 401, { error: { message: 'key revoked' } }) : normal(r, n, res)));
  const o = join(tmp, 'resume.json');
  const first = await run(['--classes', classesFile, '-o', o, '--concurrency', '1']);
  assertSketchError(first.error, 'BAD_ARGUMENT', /key revoked/, /2 of 5 classes are complete/);
  const partial = readDoc(o);
  const answered = new Set(Object.entries(partial.classes).flatMap(([c, e]) => Object.keys(e.by_prompt).map((p) => `${c}/${p}`)));
  assert.is(answered.size, 13);
  // A partial file edited by hand: one more answer removed.
  delete partial.classes.airplane!.by_prompt.pose;
  writeFileSync(o, JSON.stringify(partial));
  reset(normal);
  const second = await run(['--classes', classesFile, '-o', o, '--json', '--concurrency', '2']);
  assert.is(second.error, undefined, String(second.error));
  assert.is(log.length, 30 - 12);
  assert.ok(log.some((q) => q.cls === 'airplane' && q.prompt === 'pose'));
  assert.ok(second.err.some((l) => /resuming .*: 1 of 5 classes already complete, 18 requests to go/.test(l)), second.err.join('\n'));
  const doc = readDoc(o);
  assert.ok(CLASSES.every((c) => isComplete(doc.classes[c], PROMPT_IDS)));
  assert.is(doc.provenance.created, partial.provenance.created);
  assert.equal(readDoc(join(tmp, 'normal.json')).classes, doc.classes, 'the same content as an uninterrupted run');
});

test('an output file from another model, other prompts or not JSON is refused unless --force', async () => {
  const o = join(tmp, 'normal.json');
  reset(normal);
  const other = await run(['--classes', classesFile, '-o', o, '--model', 'other-model']);
  assertSketchError(other.error, 'EXISTS', /made with the model "test-model", not "other-model"/, /--force/);
  const p2 = join(tmp, 'prompts2.json');
  const changed = JSON.parse(readFileSync(resolve(REPO_ROOT, 'src', 'models', 'caan', 'data', 'prompts.json'), 'utf8'));
  changed.prompts = changed.prompts.slice(0, 2);
  writeFileSync(p2, JSON.stringify(changed));
  const pr = await run(['--classes', classesFile, '-o', o, '--prompts', p2]);
  assertSketchError(pr.error, 'EXISTS', /other prompts/);
  const junk = join(tmp, 'junk.json');
  writeFileSync(junk, '{"not": "it"');
  assertSketchError((await run(['--classes', classesFile, '-o', junk])).error, 'EXISTS', /not JSON/);
  writeFileSync(junk, '{"schema": "something else"}');
  assertSketchError((await run(['--classes', classesFile, '-o', junk])).error, 'BAD_ARGUMENT', /not a descriptions file/, /--force/);
  const forced = await run(['--classes', classesFile, '-o', junk, '--prompts', p2, '--force', '--json']);
  assert.is(forced.error, undefined, String(forced.error));
  assert.equal(readDoc(junk).prompt_ids, ['shape', 'parts']);
  assert.is(log.length, 10);
});

test('sketchgpu describe through the bin script: --help, and an error printed as error:/hint: with exit code 2 and no stack', () => {
  const bin = resolve(REPO_ROOT, 'bin', 'sketchgpu.js');
  const node = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  const help = node(['describe', '--help']);
  assert.is(help.status, 0, help.stderr);
  for (const opt of ['--classes', '--endpoint', '--model', '--out', '--api-key-env', '--timeout-ms', '--retries', '--concurrency', '--json']) assert.match(help.stdout, opt);
  const empty = join(tmp, 'empty2.txt');
  writeFileSync(empty, '\n');
  const bad = node(['describe', '--classes', empty, '--endpoint', 'http://127.0.0.1:9/v1', '--model', 'm', '-o', join(tmp, 'x.json')]);
  assert.is(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /^error: the class list .* names no classes$/m);
  assert.match(bad.stderr, /^hint: /m);
  assert.not.match(bad.stderr, /\n\s+at /);
});

test.run();
