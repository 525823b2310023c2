// The Description Generation Module's pure parts (src/models/caan/descriptions.ts): reading a chat model's answer,
// class lists, the prompts file, and the shipped src/models/caan/data/descriptions-sketchy104.json (the 104 seen Sketchy
// classes, none of the 21 unseen ones, every prompt answered, written for the current prompts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isSketchError } from '../src/core/errors.ts';
import {
  classDisplayName, isComplete, mergePhrases, parseAnswer, parseClassList, promptsCanonical, renderUserMessage,
  validateDescriptions, validatePrompts,
} from '../src/models/caan/descriptions.ts';
import { loadClipTokenizer, defaultClipVocabPath } from '../src/text/clip-vocab-node.ts';
import { REPO_ROOT, SHARED_DATA } from './paths.ts';

const read = (p: string) => JSON.parse(readFileSync(resolve(REPO_ROOT, p), 'utf8'));
const prompts = validatePrompts(read('src/models/caan/data/prompts.json'), 'src/models/caan/data/prompts.json');
const desc = validateDescriptions(read('src/models/caan/data/descriptions-sketchy104.json'), 'descriptions-sketchy104.json');

function throwsSketch(fn: () => unknown, msg: RegExp) {
  try {
    fn();
  } catch (e) {
    assert.ok(isSketchError(e), String(e));
    assert.match(e.message, msg);
    assert.ok(e.hint, 'a hint');
    return;
  }
  assert.unreachable('no error');
}

test('parseAnswer: JSON lists, fenced, wrapped in an object, bullets, numbers, <think>, lead-ins, junk', () => {
  const two = ['rounded head with two pointed ears', 'long curved tail'];
  assert.equal(parseAnswer('["rounded head with two pointed ears", "long curved tail"]'), two);
  assert.equal(parseAnswer('Sure! Here you go:\n```json\n[\n  "rounded head with two pointed ears",\n  "long curved tail"\n]\n```\nHope it helps.'), two);
  assert.equal(parseAnswer('```\n["rounded head with two pointed ears","long curved tail"]\n```'), two);
  assert.equal(parseAnswer('{"phrases": ["rounded head with two pointed ears", "long curved tail"]}'), two);
  assert.equal(parseAnswer('[{"phrase": "rounded head with two pointed ears"}, {"text": "long curved tail"}]'), two);
  assert.equal(parseAnswer('Here are some phrases:\n- Rounded head with two pointed ears.\n- **long curved tail**\n\nLet me know!'), ['Rounded head with two pointed ears', 'long curved tail']);
  assert.equal(parseAnswer('1. rounded head with two pointed ears\n2) long curved tail'), two);
  assert.equal(parseAnswer('• rounded head with two pointed ears\n• long curved tail'), two);
  assert.equal(parseAnswer('<think>\nThe user wants [a list].\n</think>\n["rounded head with two pointed ears", "long curved tail"]'), two);
  assert.equal(parseAnswer('"rounded head with two pointed ears"\n“long curved tail”'), two);
  assert.equal(parseAnswer('rounded head with two pointed ears; long curved tail'), two);
  assert.equal(parseAnswer('["a", "A", " a ", "b"]'), ['a', 'b']); // repeats ignoring case
  assert.is(parseAnswer(JSON.stringify(Array.from({ length: 20 }, (_, i) => `phrase ${i}`))).length, 8);
  assert.equal(parseAnswer(''), []);
  assert.equal(parseAnswer('   \n  '), []);
  assert.equal(parseAnswer('Sure:'), []);
  assert.equal(parseAnswer('<think>only thinking, cut off'), []);
  assert.equal(parseAnswer('[1, 2, 3]'), ['[1, 2, 3]']); // not strings: read as a line rather than lost
});

test('class lists: comments, blanks, duplicates, and "name id" split files', () => {
  assert.equal(parseClassList('# classes\ncat\n\n dog \ncat\r\nhot-air_balloon\n'), ['cat', 'dog', 'hot-air_balloon']);
  assert.equal(parseClassList('table 0\nteapot 1\nwading_bird 3\n'), ['table', 'teapot', 'wading_bird']);
  assert.equal(parseClassList('route 66\nairplane\n'), ['route 66', 'airplane']); // ids only when every line has one
  assert.equal(parseClassList('\n# none\n'), []);
  const split = resolve(SHARED_DATA, 'splits', 'sketchy-zeroshot0-cname_cid.txt');
  if (existsSync(split)) assert.is(parseClassList(readFileSync(split, 'utf8')).length, 104);
  assert.is(classDisplayName('car_(sedan)'), 'car (sedan)');
  assert.is(classDisplayName('hot-air_balloon'), 'hot-air balloon');
  const msg = renderUserMessage(prompts, prompts.prompts[0]!, 'car_(sedan)');
  assert.match(msg, /^Category: car \(sedan\)\n\nWhat is the overall shape and outline of a car \(sedan\) when it is drawn/);
  assert.match(msg, /JSON list of 2 to 4 short visual phrases/);
  assert.not.match(msg, /\{class\}|\{question\}/);
});

test('src/models/caan/data/prompts.json: six interrogative prompts about what a sketch shows, a system prompt, the output format', () => {
  assert.equal(prompts.prompts.map((p) => p.id), ['shape', 'parts', 'distinctive', 'proportions', 'texture', 'pose']);
  for (const p of prompts.prompts) {
    assert.ok(p.question.endsWith('?'), p.id);
    assert.match(p.question, /\{class\}/);
  }
  assert.match(prompts.system, /JSON list/);
  assert.match(prompts.system, /line drawing/);
  throwsSketch(() => validatePrompts({ schema: 'x' }, 'p.json'), /not a prompts file/);
  throwsSketch(() => validatePrompts({ ...prompts, prompts: [] }, 'p.json'), /non-empty list/);
  throwsSketch(() => validatePrompts({ ...prompts, prompts: [prompts.prompts[0], prompts.prompts[0]] }, 'p.json'), /appears twice/);
  throwsSketch(() => validatePrompts({ ...prompts, user_template: 'no slot' }, 'p.json'), /\{question\}/);
  throwsSketch(() => validateDescriptions({ ...desc, classes: { cat: { phrases: 'x' } } }, 'd.json'), /class "cat"/);
});

test('descriptions-sketchy104.json: the 104 seen classes, none unseen, every prompt answered, 5-8 phrases each', () => {
  const unseen = desc.provenance.excluded_classes!;
  assert.is(unseen.length, 21);
  const classes = Object.keys(desc.classes);
  assert.is(classes.length, 104);
  for (const u of unseen) assert.not.ok(u in desc.classes, `unseen class ${u} must not be described`);
  const photos = resolve(SHARED_DATA, 'sketchy', 'all125-128', 'photo');
  if (existsSync(photos)) {
    const unseenFile = readFileSync(resolve(SHARED_DATA, 'splits', 'test_class_sketchy21.txt'), 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
    assert.equal([...unseen].sort(), [...unseenFile].sort());
    assert.equal(classes, readdirSync(photos).filter((c) => !unseenFile.includes(c)).sort());
  }
  assert.equal(desc.prompt_ids, prompts.prompts.map((p) => p.id));
  for (const [c, e] of Object.entries(desc.classes)) {
    assert.ok(isComplete(e, desc.prompt_ids), c);
    assert.ok(e.phrases.length >= 5 && e.phrases.length <= 8, `${c}: ${e.phrases.length} phrases`);
    assert.equal(e.phrases, mergePhrases(e.by_prompt, desc.prompt_ids), c);
    for (const p of e.phrases) {
      const words = p.split(/[\s,]+/).filter(Boolean).length;
      assert.ok(words >= 3 && words <= 10, `${c}: "${p}"`);
      assert.is(p, p.trim());
    }
  }
});

test('descriptions-sketchy104.json says how it was made, for the prompts as they are now', () => {
  const p = desc.provenance;
  assert.is(p.method, 'written');
  assert.ok(p.note.startsWith('written by an AI assistant following src/models/caan/data/prompts.json, no API call'), p.note);
  assert.match(p.note, /unseen classes .* are deliberately absent/);
  assert.match(p.created, /^\d{4}-\d{2}-\d{2}/);
  assert.is(p.model, null);
  assert.is(p.endpoint, null);
  const sha = createHash('sha256').update(promptsCanonical(prompts)).digest('hex');
  assert.is(p.prompts_sha256, sha, 'src/models/caan/data/prompts.json changed after the descriptions were written: update one or the other');
});

test('every shipped phrase fits the CLIP text tower\'s context (77 with SOT and EOT)', async () => {
  if (!existsSync(defaultClipVocabPath())) return console.log('NOTE: no CLIP vocabulary: phrase lengths not checked');
  const tok = await loadClipTokenizer();
  let longest = 0;
  for (const e of Object.values(desc.classes)) for (const p of e.phrases) longest = Math.max(longest, tok.encode(p).length);
  assert.ok(longest + 2 <= 77, `${longest} tokens`);
  assert.ok(longest <= 16, `the longest phrase is ${longest} tokens: phrases should be short`);
});

test.run();
