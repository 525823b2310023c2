/**
 * `sketchgpu describe`: CAAN's Description Generation Module (../shared/docs/caan.md). Asks an OpenAI-compatible
 * chat endpoint each prompt of src/models/caan/data/prompts.json about each class and writes the phrases to a JSON file
 * (format: src/models/caan/data/README.md). The file is rewritten (temp file + rename) after every answer, so an interrupted
 * run loses at most the requests in flight; rerunning the same command skips what is already answered.
 */
import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SketchError } from '../core/errors.ts';
import { chatComplete, type ChatOptions } from '../models/caan/chat-client.ts';
import {
  DESCRIPTIONS_SCHEMA, isComplete, mergePhrases, parseAnswer, parseClassList, promptsCanonical, renderUserMessage,
  validateDescriptions, validatePrompts, type DescriptionsFile, type Prompt, type PromptSet,
} from '../models/caan/descriptions.ts';
import { progressBar } from './progress.ts';
import { readBoundedFile } from '../io/read-file.ts';

/** src/models/caan/data/prompts.json; src/cli/ and the bundle's dist/node/ are both two levels below the repository root. */
export const DEFAULT_PROMPTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'models', 'caan', 'data', 'prompts.json');

export interface DescribeOptions {
  classes: string;
  endpoint: string;
  model: string;
  out: string;
  prompts?: string;
  apiKeyEnv?: string;
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  concurrency?: number;
  force?: boolean;
}

export interface DescribeSummary {
  output: string;
  classes: number;
  complete: number;
  /** Classes already complete in the file before this run. */
  alreadyComplete: number;
  requests: number;
  retries: number;
  /** Classes some prompt of which gave no usable phrases: rerun to try again. */
  incomplete: string[];
}

export interface DescribeIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Draw the progress bar (on a terminal only, as src/cli/progress.ts does). */
  progress?: boolean;
}

const defaultIo: DescribeIo = { out: (l) => console.log(l), err: (l) => process.stderr.write(l + '\n'), progress: true };

const intOpt = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new SketchError('BAD_ARGUMENT', `${name} must be an integer >= ${min}, not "${v}"`, `Pass a whole number, e.g. ${name} ${Math.max(min, 1) * 2}.`);
  }
  return n;
};

async function readText(path: string, what: string, hint: string): Promise<string> {
  try {
    return new TextDecoder().decode(await readBoundedFile(path, 'text'));
  } catch (e) {
    if (e instanceof SketchError && e.code === 'IO') throw new SketchError('IO', `cannot read ${what} ${path} (${e.message})`, hint, { cause: e });
    throw e;
  }
}

async function loadPrompts(path: string): Promise<PromptSet> {
  const text = await readText(path, 'the prompts file', 'Pass --prompts <file>, or use src/models/caan/data/prompts.json from the repository.');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new SketchError('BAD_ARGUMENT', `the prompts file ${path} is not valid JSON (${(e as Error).message})`, 'Fix the JSON; src/models/caan/data/README.md describes the format.');
  }
  return validatePrompts(doc, path);
}

/** Writes `text` to `path` through a temporary file and a rename, so readers never see half a file. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new SketchError('IO', `cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      'Check that the folder exists and is writable.');
  }
}

function checkEndpoint(endpoint: string): void {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new SketchError('BAD_ARGUMENT', `--endpoint "${endpoint}" is not a URL`, 'Pass the API base, e.g. http://127.0.0.1:8080/v1.');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new SketchError('BAD_ARGUMENT', `--endpoint "${endpoint}" is not an http(s) URL`, 'Pass the API base, e.g. http://127.0.0.1:8080/v1.');
  }
  if (/\/chat\/completions\/?$/.test(u.pathname)) {
    throw new SketchError('BAD_ARGUMENT', `--endpoint "${endpoint}" already ends in /chat/completions`,
      `Pass the API base without it: ${endpoint.replace(/\/chat\/completions\/?$/, '')}.`);
  }
}

/** Runs the command; throws a SketchError when the run cannot go on or ends with classes incomplete. */
export async function runDescribe(o: DescribeOptions, io: DescribeIo = defaultIo): Promise<DescribeSummary> {
  checkEndpoint(o.endpoint);
  let apiKey: string | undefined;
  if (o.apiKeyEnv) {
    apiKey = process.env[o.apiKeyEnv];
    if (!apiKey) {
      throw new SketchError('BAD_ARGUMENT', `--api-key-env ${o.apiKeyEnv}: the environment variable ${o.apiKeyEnv} is not set or empty`,
        `Set it (export ${o.apiKeyEnv}=...) or leave --api-key-env out for a server that needs no key.`);
    }
  }
  const promptsPath = resolve(o.prompts ?? DEFAULT_PROMPTS);
  const promptsName = promptsPath === DEFAULT_PROMPTS ? 'src/models/caan/data/prompts.json' : promptsPath;
  const set = await loadPrompts(promptsPath);
  const promptIds = set.prompts.map((p) => p.id);
  const promptsSha = createHash('sha256').update(promptsCanonical(set)).digest('hex');

  const classes = parseClassList(await readText(o.classes, 'the class list', 'Pass --classes <file> with one class name per line.'));
  if (classes.length === 0) {
    throw new SketchError('BAD_ARGUMENT', `the class list ${o.classes} names no classes`,
      'Write one class name per line (blank lines and lines starting with # are skipped), e.g. from ls ../shared/data/sketchy/all125-128/photo.');
  }

  const out = resolve(o.out);
  const now = new Date().toISOString();
  let doc: DescriptionsFile | undefined;
  if (existsSync(out) && !o.force) {
    const text = await readText(out, 'the output file', 'Pass --force to start it over, or another -o.');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SketchError('EXISTS', `${out} exists and is not JSON, so this run cannot resume it`, 'Pass --force to replace it, or write to another file with -o.');
    }
    doc = validateDescriptions(parsed, out);
    const p = doc.provenance;
    const differs = p.method !== 'llm' ? `was made by method "${p.method}", not by this command`
      : p.model !== o.model ? `was made with the model "${p.model}", not "${o.model}"`
        : p.prompts_sha256 !== promptsSha ? `was made with other prompts (prompts_sha256 ${p.prompts_sha256.slice(0, 12)}…, now ${promptsSha.slice(0, 12)}…)`
          : '';
    if (differs) {
      throw new SketchError('EXISTS', `${out} ${differs}: resuming would mix two kinds of answers`,
        'Pass --force to start it over, or write to another file with -o.');
    }
    p.endpoint = o.endpoint;
  }
  doc ??= {
    schema: DESCRIPTIONS_SCHEMA,
    provenance: {
      method: 'llm',
      note: `generated by \`sketchgpu describe\`: the model's answers to ${promptsName}, one request per class and prompt`,
      endpoint: o.endpoint, model: o.model, prompts: promptsName,
      prompts_version: set.version, prompts_sha256: promptsSha, created: now, updated: now,
    },
    prompt_ids: promptIds,
    classes: {},
  };
  const file = doc;
  // The class list's order first, then classes the file had from earlier runs.
  const ordered: DescriptionsFile['classes'] = {};
  for (const c of classes) ordered[c] = file.classes[c] ?? { phrases: [], by_prompt: {} };
  for (const [c, e] of Object.entries(file.classes)) ordered[c] ??= e;
  file.classes = ordered;

  const alreadyComplete = classes.filter((c) => isComplete(file.classes[c], promptIds)).length;
  const jobs: Array<{ cls: string; prompt: Prompt }> = [];
  for (const cls of classes) {
    for (const prompt of set.prompts) if (!(file.classes[cls]!.by_prompt[prompt.id]?.length)) jobs.push({ cls, prompt });
  }

  let saving: Promise<void> = Promise.resolve();
  let saves = 0;
  const save = () => {
    saves++;
    saving = saving.then(() => {
      file.provenance.updated = new Date().toISOString();
      return writeAtomic(out, JSON.stringify(file, null, 2) + '\n');
    });
    return saving;
  };
  if (jobs.length === 0) {
    await save();
  } else if (alreadyComplete > 0 || jobs.length < classes.length * promptIds.length) {
    io.err(`resuming ${out}: ${alreadyComplete} of ${classes.length} classes already complete, ${jobs.length} requests to go`);
  }

  const chat: ChatOptions = {
    endpoint: o.endpoint, model: o.model, apiKey, apiKeySource: o.apiKeyEnv ? `the environment variable ${o.apiKeyEnv}` : undefined,
    timeoutMs: o.timeoutMs ?? 30_000, retries: o.retries ?? 3, retryDelayMs: o.retryDelayMs ?? 1000,
    temperature: set.request?.temperature, maxTokens: set.request?.max_tokens,
  };
  const stop = new AbortController();
  chat.signal = stop.signal;
  const bar = io.progress ? progressBar('describing', 'req') : undefined;
  let requests = 0, retries = 0, done = 0, next = 0;
  let fatal: unknown;
  chat.onRetry = (r) => {
    retries++;
    io.err(`retry ${r.attempt}/${chat.retries} in ${(r.delayMs / 1000).toFixed(1)} s: ${r.reason}`);
  };

  async function answer(cls: string, prompt: Prompt): Promise<void> {
    const messages = [
      { role: 'system' as const, content: set.system },
      { role: 'user' as const, content: renderUserMessage(set, prompt, cls) },
    ];
    // A reply without usable phrases is asked again, as often as a failed request would be.
    let last = '';
    for (let attempt = 0; attempt <= chat.retries; attempt++) {
      const r = await chatComplete(messages, chat);
      requests += r.tries;
      const phrases = parseAnswer(r.content);
      if (phrases.length) {
        const e = file.classes[cls]!;
        e.by_prompt[prompt.id] = phrases;
        e.phrases = mergePhrases(e.by_prompt, promptIds);
        await save();
        return;
      }
      last = r.content;
      if (stop.signal.aborted) return;
    }
    io.err(`warning: ${cls} / ${prompt.id}: no usable phrases in ${chat.retries + 1} answers (the last: ${JSON.stringify(last.slice(0, 100))})`);
  }

  async function worker(): Promise<void> {
    while (!fatal && next < jobs.length) {
      const { cls, prompt } = jobs[next++]!;
      try {
        await answer(cls, prompt);
      } catch (e) {
        fatal ??= e;
        stop.abort();
        return;
      }
      bar?.update(++done);
    }
  }

  if (jobs.length) {
    bar?.start(jobs.length, 0);
    try {
      await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 2, jobs.length) }, worker));
    } finally {
      bar?.stop();
      await saving.catch(() => undefined);
    }
  }
  await saving;
  if (fatal) {
    const e = fatal as SketchError;
    if (e instanceof SketchError) {
      const kept = classes.filter((c) => isComplete(file.classes[c], promptIds)).length;
      const where = saves > 0 ? ` ${kept} of ${classes.length} classes are complete in ${out}; once fixed, rerun the same command to continue.` : '';
      throw new SketchError(e.code, e.message, `${e.hint ?? ''}${where}`.trim(), { cause: e });
    }
    throw fatal;
  }
  const incomplete = classes.filter((c) => !isComplete(file.classes[c], promptIds));
  return {
    output: out, classes: classes.length, complete: classes.length - incomplete.length, alreadyComplete, requests, retries, incomplete,
  };
}

export function addDescribeCommand(program: Command, io: DescribeIo = defaultIo): void {
  program.command('describe')
    .description('CAAN descriptions: ask an OpenAI-compatible chat endpoint the prompts of src/models/caan/data/prompts.json about each class (resumable: rerun the same command to continue)')
    .requiredOption('--classes <file>', 'class names, one per line (blank lines and # comments skipped; "name id" lines as in ../shared/data/splits/*-cname_cid.txt give the names)')
    .requiredOption('--endpoint <url>', 'the API base, e.g. http://127.0.0.1:8080/v1 (llama.cpp) or http://127.0.0.1:11434/v1 (Ollama); /chat/completions is appended')
    .requiredOption('--model <name>', 'the model name the endpoint expects')
    .requiredOption('-o, --out <file>', 'the descriptions JSON (format: src/models/caan/data/README.md), rewritten after every answer')
    .option('--prompts <file>', 'the prompts file (default: src/models/caan/data/prompts.json)')
    .option('--api-key-env <name>', 'an environment variable holding the API key, sent as "Authorization: Bearer"')
    .option('--timeout-ms <n>', 'time allowed for one request', intOpt('--timeout-ms', 1), 30_000)
    .option('--retries <n>', 'retries of a request after a network error, timeout, 429 or 5xx (with exponential backoff)', intOpt('--retries', 0), 3)
    .option('--retry-delay-ms <n>', 'the first backoff delay, doubled on each retry', intOpt('--retry-delay-ms', 0), 1000)
    .option('--concurrency <n>', 'requests in flight at once', intOpt('--concurrency', 1), 2)
    .option('--force', 'start the output file over instead of resuming it')
    .option('--json', 'print a JSON summary')
    .action(async (opts) => {
      const s = await runDescribe(opts as DescribeOptions, io);
      if (opts.json) io.out(JSON.stringify(s));
      else {
        io.out(`wrote ${s.output}: ${s.complete} of ${s.classes} classes complete (${s.alreadyComplete} were already), ${s.requests} requests, ${s.retries} retries`);
      }
      if (s.incomplete.length) {
        throw new SketchError('INTERRUPTED',
          `${s.incomplete.length} of ${s.classes} classes got no usable phrases for some prompt: ${s.incomplete.slice(0, 8).join(', ')}${s.incomplete.length > 8 ? ', ...' : ''}`,
          `Rerun the same command to ask again; the answers so far are kept in ${s.output}. A model that keeps answering without a list may need another --model.`);
      }
    });
}
