/**
 * CAAN's Description Generation Module (../shared/docs/caan.md §1): the prompts file, the descriptions file and
 * reading a chat model's answer. Browser-safe (no Node APIs); the `sketchgpu describe` command (src/cli/describe.ts)
 * does the file and network I/O. Formats: src/models/caan/data/README.md.
 */
import { SketchError } from '../../core/errors.ts';

export const PROMPTS_SCHEMA = 'sketchgpu.caan-prompts/1';
export const DESCRIPTIONS_SCHEMA = 'sketchgpu.caan-descriptions/1';

export interface Prompt {
  id: string;
  question: string;
}

export interface PromptSet {
  schema: typeof PROMPTS_SCHEMA;
  version: number;
  system: string;
  /** The user message; {class} and {question} are filled in ({class} also inside the question). */
  user_template: string;
  prompts: Prompt[];
  request?: { temperature?: number; max_tokens?: number };
}

export interface ClassDescriptions {
  /** Every prompt's phrases in prompt order, duplicates (ignoring case) removed. */
  phrases: string[];
  /** The phrases each prompt (by id) produced. A class is complete when every prompt id has some. */
  by_prompt: Record<string, string[]>;
}

export interface DescriptionsProvenance {
  /** "llm": answers of a chat model through `sketchgpu describe`; "written": written by following the prompts. */
  method: 'llm' | 'written';
  /** How the file was made, in words. */
  note: string;
  endpoint: string | null;
  model: string | null;
  prompts: string;
  prompts_version: number;
  /** SHA-256 of the canonical prompts (promptsCanonical), to tell when prompts changed under a file. */
  prompts_sha256: string;
  created: string;
  updated: string;
  /** Optional, for files made by hand: where the class list came from and which classes were left out on purpose. */
  classes_from?: string;
  excluded_classes?: string[];
}

export interface DescriptionsFile {
  schema: typeof DESCRIPTIONS_SCHEMA;
  provenance: DescriptionsProvenance;
  prompt_ids: string[];
  classes: Record<string, ClassDescriptions>;
}

const bad = (where: string, what: string, hint: string) => new SketchError('BAD_ARGUMENT', `${where}: ${what}`, hint);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string' && v.trim().length > 0;

export function validatePrompts(doc: unknown, where: string): PromptSet {
  const hint = 'Start from src/models/caan/data/prompts.json; its format is in src/models/caan/data/README.md.';
  if (!isObj(doc) || doc.schema !== PROMPTS_SCHEMA) throw bad(where, `not a prompts file (schema must be "${PROMPTS_SCHEMA}")`, hint);
  if (!isStr(doc.system)) throw bad(where, '"system" must be a non-empty string', hint);
  if (!isStr(doc.user_template) || !doc.user_template.includes('{question}')) {
    throw bad(where, '"user_template" must be a string containing {question}', hint);
  }
  if (!Array.isArray(doc.prompts) || doc.prompts.length === 0) throw bad(where, '"prompts" must be a non-empty list', hint);
  const ids = new Set<string>();
  for (const p of doc.prompts as unknown[]) {
    if (!isObj(p) || !isStr(p.id) || !isStr(p.question)) throw bad(where, 'every prompt needs an "id" and a "question" string', hint);
    if (!/^[a-z0-9_-]+$/.test(p.id)) throw bad(where, `prompt id "${p.id}" must be lowercase letters, digits, "_" or "-"`, hint);
    if (ids.has(p.id)) throw bad(where, `prompt id "${p.id}" appears twice`, hint);
    ids.add(p.id);
  }
  if (doc.request !== undefined && !isObj(doc.request)) throw bad(where, '"request" must be an object', hint);
  return { ...(doc as unknown as PromptSet), version: typeof doc.version === 'number' ? doc.version : 0 };
}

/** What the hash of a prompt set covers: what is sent to the model. */
export function promptsCanonical(p: PromptSet): string {
  return JSON.stringify({ system: p.system, user_template: p.user_template, prompts: p.prompts.map((q) => [q.id, q.question]), request: p.request ?? {} });
}

/** "car_(sedan)" -> "car (sedan)", "hot-air_balloon" -> "hot-air balloon": the name the model reads. */
export function classDisplayName(cls: string): string {
  return cls.replace(/_+/g, ' ').replace(/\s+/g, ' ').trim();
}

export function renderUserMessage(set: PromptSet, prompt: Prompt, cls: string): string {
  const name = classDisplayName(cls);
  return set.user_template.replaceAll('{question}', prompt.question.replaceAll('{class}', name)).replaceAll('{class}', name);
}

/**
 * Class names from a text file: one per line; blank lines and "#" comments skipped; duplicates dropped. A file
 * whose every line is "name <integer id>" (../shared/data/splits/*-cname_cid.txt) gives the names.
 */
export function parseClassList(text: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const withIds = lines.length > 0 && lines.every((l) => /\s\d+$/.test(l));
  const names = lines.map((l) => (withIds ? l.replace(/\s+\d+$/, '') : l));
  return [...new Set(names)];
}

export function isComplete(entry: ClassDescriptions | undefined, promptIds: readonly string[]): boolean {
  return !!entry && promptIds.every((id) => (entry.by_prompt[id]?.length ?? 0) > 0);
}

/** All phrases in prompt order (then any other prompt ids), without repeats ignoring case. */
export function mergePhrases(byPrompt: Record<string, string[]>, promptIds: readonly string[]): string[] {
  const order = [...promptIds, ...Object.keys(byPrompt).filter((k) => !promptIds.includes(k))];
  const seen = new Set<string>();
  const out: string[] = [];
  for (const id of order) {
    for (const p of byPrompt[id] ?? []) {
      const key = p.toLowerCase();
      if (!seen.has(key)) {
        seen.add(key);
        out.push(p);
      }
    }
  }
  return out;
}

export function validateDescriptions(doc: unknown, where: string): DescriptionsFile {
  const hint = 'Its format is in src/models/caan/data/README.md; pass --force to start it over, or write to another file with -o.';
  if (!isObj(doc) || doc.schema !== DESCRIPTIONS_SCHEMA) throw bad(where, `not a descriptions file (schema must be "${DESCRIPTIONS_SCHEMA}")`, hint);
  if (!isObj(doc.provenance)) throw bad(where, '"provenance" is missing', hint);
  if (!Array.isArray(doc.prompt_ids) || !doc.prompt_ids.every(isStr)) throw bad(where, '"prompt_ids" must be a list of strings', hint);
  if (!isObj(doc.classes)) throw bad(where, '"classes" must be an object', hint);
  for (const [cls, e] of Object.entries(doc.classes)) {
    const ok = isObj(e) && Array.isArray(e.phrases) && e.phrases.every(isStr) && isObj(e.by_prompt) &&
      Object.values(e.by_prompt).every((v) => Array.isArray(v) && v.every(isStr));
    if (!ok) throw bad(where, `class "${cls}" is not {"phrases": [...], "by_prompt": {id: [...]}}`, hint);
  }
  return doc as unknown as DescriptionsFile;
}

// ---- reading a model's answer ------------------------------------------------------------------------------------

const BULLET = /^(?:[-*•·‣◦–—+]|\d{1,2}[.):]|[a-z][.)]|\(\d{1,2}\))\s+/i;

function stringsIn(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) {
    return v.flatMap((x) => {
      if (typeof x === 'string') return [x];
      if (isObj(x)) {
        const s = Object.values(x).find((y) => typeof y === 'string');
        return s === undefined ? [] : [s as string];
      }
      return [];
    });
  }
  if (isObj(v)) {
    for (const y of Object.values(v)) if (Array.isArray(y)) return stringsIn(y);
  }
  return [];
}

function tidy(p: string): string {
  let s = p.replace(/\*\*|__/g, '').replace(/\s+/g, ' ').trim();
  s = s.replace(/^["'`“”‘’]+|["'`“”‘’]+$/g, '').trim();
  s = s.replace(/[.;,]+$/, '').trim();
  return s;
}

function tryJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/**
 * The phrases in a chat model's answer: a JSON list (also inside a ``` fence, inside an object such as
 * {"phrases": [...]}, or of objects with one string each), else bullet or numbered lines, else the non-empty lines
 * that are not a lead-in ending in ":". Reasoning blocks (<think>...</think>) are dropped. Phrases are trimmed of
 * quotes, markdown emphasis and final punctuation; repeats (ignoring case) and empty ones are dropped; at most
 * `max` are kept. An empty list means the answer held nothing usable.
 */
export function parseAnswer(content: string, max = 8): string[] {
  let s = content.replace(/<think>[\s\S]*?<\/think>/gi, '').replace(/<think>[\s\S]*$/i, '').trim();
  const fence = /```[a-zA-Z]*\s*\n?([\s\S]*?)```/.exec(s);
  if (fence) s = fence[1]!.trim();
  let phrases: string[] = [];
  const lb = s.indexOf('['), rb = s.lastIndexOf(']');
  if (lb >= 0 && rb > lb) phrases = stringsIn(tryJson(s.slice(lb, rb + 1)));
  if (!phrases.length && s.startsWith('{')) phrases = stringsIn(tryJson(s));
  if (!phrases.length) {
    const lines = s.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
    const bullets = lines.filter((l) => BULLET.test(l));
    if (bullets.length) phrases = bullets.map((l) => l.replace(BULLET, ''));
    else {
      phrases = lines.filter((l) => !l.endsWith(':'));
      if (phrases.length === 1 && phrases[0]!.includes(';')) phrases = phrases[0]!.split(';');
    }
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of phrases.map(tidy)) {
    const key = p.toLowerCase();
    if (!p || seen.has(key)) continue;
    seen.add(key);
    out.push(p);
    if (out.length === max) break;
  }
  return out;
}
