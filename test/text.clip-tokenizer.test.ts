// The CLIP BPE tokenizer (src/text/clip-tokenizer.ts) against tools/reference/clip_tokenizer_ref.py, our Python
// implementation of CLIP's simple_tokenizer.py: test/fixtures/text/clip_tokens.json holds its cleaned text and ids
// for several hundred strings, tokenize() rows with and without truncation, decodes, and its Unicode tables
// (character classes of the split pattern, lowercasing) for every code point its Unicode version assigns.
// Needs the vocabulary at ../shared/data/clip (SKETCHGPU_CLIP_VOCAB overrides); skipped when it is absent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { isSketchError } from '../src/core/errors.ts';
import { CLIP_EOT, CLIP_MAX_TEXT_CHARS, CLIP_SOT, ClipTokenizer, cleanText, htmlUnescape, splitPieces } from '../src/text/clip-tokenizer.ts';
import { defaultClipVocabPath, loadClipTokenizer } from '../src/text/clip-vocab-node.ts';
import { FIXTURES, REPO_ROOT } from './paths.ts';

type Range = [number, number];
interface Fixture {
  unicode: string;
  vocab: { size: number; merges: number; sot: number; eot: number };
  anchors: Record<string, number[]>;
  cases: { text: string; clean: string; ids: number[] }[];
  rows: { text: string; context_length: number; truncate: boolean; row?: number[]; error?: string }[];
  decodes: { ids: number[]; text: string }[];
  char_classes: { L: Range[]; N: Range[]; S: Range[] };
  assigned: Range[];
  lower: Record<string, number[]>;
}
const fx = JSON.parse(readFileSync(resolve(FIXTURES, 'text', 'clip_tokens.json'), 'utf8')) as Fixture;
const VOCAB = defaultClipVocabPath();
const have = existsSync(VOCAB);
if (!have) console.log(`NOTE: ${VOCAB} not found: skipping the CLIP tokenizer checks (counted as skipped)`);
const t = have ? test : test.skip;
let tok: ClipTokenizer;
test.before(async () => {
  if (have) tok = await loadClipTokenizer();
});

const show = (s: string) => JSON.stringify(s);

function expectError(fn: () => unknown, code: string, msg: RegExp) {
  try {
    fn();
  } catch (e) {
    assert.ok(isSketchError(e), `expected a SketchError, got ${String(e)}`);
    assert.is(e.code, code);
    assert.match(e.message, msg);
    assert.ok(e.hint && e.hint.length > 10, 'a hint says what to do');
    return;
  }
  assert.unreachable('no error was thrown');
}

t('the vocabulary: 49408 tokens; ids checked against the merge lines of the file itself', () => {
  assert.is(tok.vocabSize, fx.vocab.size);
  assert.is(tok.vocabSize, 49408);
  assert.is(CLIP_SOT, 49406);
  assert.is(CLIP_EOT, 49407);
  assert.is(tok.tokenText(49406), '<|startoftext|>');
  assert.is(tok.tokenText(49407), '<|endoftext|>');
  // Independent of the tokenizer's own construction: token 512+k is the k-th merge line after the header, and
  // the byte tokens follow bytes_to_unicode's order ('!' = 0, 'a' = 0x61-0x21 = 64, "a</w>" = 256+64).
  const lines = gunzipSync(readFileSync(VOCAB)).toString('utf8').split('\n');
  const mergeId = (pair: string) => 512 + lines.indexOf(pair) - 1;
  assert.is(tok.tokenId('!'), 0);
  assert.is(tok.tokenId('a'), 64);
  assert.is(tok.tokenId('a</w>'), 320);
  assert.is(mergeId('pho to</w>'), 1125);
  assert.is(mergeId('o f</w>'), 539);
  assert.is(mergeId('c at</w>'), 2368);
  assert.is(mergeId('i n'), 512); // the first merge
  for (const id of [1125, 539, 2368, 512, 49405]) assert.is(tok.tokenId(tok.tokenText(id)!), id);
  assert.is(tok.tokenText(1125), 'photo</w>');
  assert.is(tok.tokenText(539), 'of</w>');
  assert.is(tok.tokenText(2368), 'cat</w>');
});

t('anchors: "a photo of a cat" is [49406, 320, 1125, 539, 320, 2368, 49407], zero padded to 77', () => {
  const r = tok.tokenize('a photo of a cat');
  assert.equal(r.shape, [1, 77]);
  assert.ok(r.data instanceof Int32Array);
  assert.equal(Array.from(r.data.subarray(0, 7)), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.ok(r.data.subarray(7).every((v) => v === 0));
  for (const [text, ids] of Object.entries(fx.anchors)) {
    assert.equal(Array.from(tok.tokenize(text).data.subarray(0, ids.length)), ids, text);
  }
  const two = tok.tokenize(['a photo of a cat', 'hello world'], 10);
  assert.equal(two.shape, [2, 10]);
  assert.equal(Array.from(two.data), [49406, 320, 1125, 539, 320, 2368, 49407, 0, 0, 0, 49406, 3306, 1002, 49407, 0, 0, 0, 0, 0, 0]);
});

t(`cleaning and ids equal the Python reference on all ${fx.cases.length} fixture strings`, () => {
  const bad: string[] = [];
  for (const c of fx.cases) {
    const clean = cleanText(c.text);
    if (clean !== c.clean) bad.push(`clean ${show(c.text)}: ${show(clean)} != ${show(c.clean)}`);
    const ids = tok.encode(c.text);
    if (ids.join() !== c.ids.join()) bad.push(`ids ${show(c.text)}: [${ids}] != [${c.ids}] (pieces ${show(splitPieces(clean).join('|'))})`);
  }
  assert.is(bad.length, 0, bad.slice(0, 10).join('\n'));
  // The fixture covers what it claims to.
  const texts = fx.cases.map((c) => c.text);
  for (const s of ['car_(sedan)', 'jack-o-lantern', 'a sketch of a hot-air balloon', "don't", '&amp;amp;', '👨‍👩‍👧', 'İstanbul', '<|endoftext|>']) {
    assert.ok(texts.includes(s), s);
  }
  assert.ok(fx.cases.length >= 300);
});

t('tokenize(): rows with and without truncation, and the too-long error, as the reference', () => {
  let errors = 0;
  for (const r of fx.rows) {
    const what = `${show(r.text.slice(0, 30))} ctx ${r.context_length} truncate ${r.truncate}`;
    if (r.error) {
      errors++;
      expectError(() => tok.tokenize([r.text], r.context_length, r.truncate), 'BAD_ARGUMENT', /more than the context length/);
    } else {
      assert.equal(Array.from(tok.tokenize([r.text], r.context_length, r.truncate).data), r.row, what);
    }
  }
  assert.ok(errors >= 10, `${errors} too-long cases`);
  // Truncation keeps exactly contextLength ids and ends with EOT.
  const long = tok.tokenize(['cat '.repeat(200)], 77, true).data;
  assert.is(long[0], CLIP_SOT);
  assert.is(long[76], CLIP_EOT);
  assert.ok(long.subarray(1, 76).every((v) => v === 2368));
  // The error names the text and its length.
  expectError(() => tok.tokenize(['ok', 'cat '.repeat(80)]), 'BAD_ARGUMENT', /text 2 of 2 \("cat cat .*82 tokens/);
  expectError(() => tok.tokenize('x', 0), 'BAD_ARGUMENT', /context length/);
});

t(`decode() equals CLIP's on ${fx.decodes.length} id lists (random byte tokens: invalid UTF-8 -> U+FFFD)`, () => {
  for (const d of fx.decodes) assert.is(tok.decode(d.ids), d.text, `[${d.ids}]`);
  assert.is(tok.decodeRow(tok.tokenize('A Photo of a CAT!').data), 'a photo of a cat !');
  expectError(() => tok.decode([49408]), 'BAD_ARGUMENT', /outside CLIP's vocabulary/);
  expectError(() => tok.decode([-1]), 'BAD_ARGUMENT', /outside/);
});

t(`the split pattern's classes and lowercasing equal Python's on every code point Unicode ${fx.unicode} assigns`, () => {
  const kind = new Uint8Array(0x110000); // 0 other, 1 letter, 2 number, 3 space
  fx.char_classes.L.forEach(([a, b]) => kind.fill(1, a, b + 1));
  fx.char_classes.N.forEach(([a, b]) => kind.fill(2, a, b + 1));
  fx.char_classes.S.forEach(([a, b]) => kind.fill(3, a, b + 1));
  const bad: string[] = [];
  let n = 0;
  for (const [a, b] of fx.assigned) {
    for (let cp = a; cp <= b; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      n++;
      const c = String.fromCodePoint(cp);
      // Through the module's own regex: a letter joins its neighbours, a number stands alone, a space vanishes.
      const ours = splitPieces(c).length === 0 ? 3 : splitPieces(`a${c}a`).length === 1 ? 1 : splitPieces(c + c).length === 2 ? 2 : 0;
      if (ours !== kind[cp]) bad.push(`U+${cp.toString(16)} class ${ours} != ${kind[cp]}`);
      const lo = fx.lower[cp] ? String.fromCodePoint(...fx.lower[cp]!) : c;
      if (c.toLowerCase() !== lo) bad.push(`U+${cp.toString(16)} lower`);
    }
  }
  assert.ok(n > 250_000, `${n} code points`);
  assert.is(bad.length, 0, bad.slice(0, 20).join('\n'));
});

t("htmlUnescape is Python's html.unescape (named without ';', numeric remaps, longest prefix)", () => {
  assert.is(htmlUnescape('&amp;lt;'), '&lt;');
  assert.is(htmlUnescape('&notit;'), '¬it;');
  assert.is(htmlUnescape('&#128;'), '€');
  assert.is(htmlUnescape('&#xD800;&#0;&#1;'), '\ufffd\ufffd');
  assert.is(htmlUnescape('&constructor;&toString;&__proto__;'), '&constructor;&toString;&__proto__;');
  assert.is(cleanText(' A&amp;amp;B\u3000\u00a0C\ufeff '), 'a&b c\ufeff');
});

t('errors: unpaired surrogates, not a vocabulary, a truncated vocabulary', () => {
  expectError(() => tok.encode('a\ud800b'), 'BAD_ARGUMENT', /surrogate/);
  // Bounded length (byte-pair merging is quadratic in a word's length; fuzzing found the cost): the bound itself
  // passes, one more character is refused, through tokenize too.
  assert.ok(tok.encode('ab '.repeat(CLIP_MAX_TEXT_CHARS / 4) + 'a'.repeat(CLIP_MAX_TEXT_CHARS - 3 * (CLIP_MAX_TEXT_CHARS / 4))).length > 0);
  expectError(() => tok.encode('a'.repeat(CLIP_MAX_TEXT_CHARS + 1)), 'BAD_ARGUMENT', /more than the 4096/);
  expectError(() => tok.tokenize('a '.repeat(CLIP_MAX_TEXT_CHARS), 77, true), 'BAD_ARGUMENT', /characters/);
  assert.equal(tok.encode('🐱'), tok.encode('\ud83d\udc31')); // a pair is fine
  expectError(() => ClipTokenizer.fromBytes(new TextEncoder().encode('hello\nworld')), 'BAD_ARGUMENT', /not CLIP's BPE vocabulary/);
  expectError(() => ClipTokenizer.fromBytes(Uint8Array.of(0x1f, 0x8b, 8, 0, 1, 2, 3)), 'BAD_ARGUMENT', /gzip|not CLIP/);
  const head = gunzipSync(readFileSync(VOCAB)).toString('utf8').split('\n').slice(0, 1000).join('\n');
  expectError(() => ClipTokenizer.fromBpeText(head), 'BAD_ARGUMENT', /merge lines/);
});

t('the browser path (fflate gunzip of the .gz bytes) builds the same tokenizer; the cache changes nothing', () => {
  const web = ClipTokenizer.fromBytes(new Uint8Array(readFileSync(VOCAB)));
  for (const c of fx.cases.slice(0, 150)) assert.is(web.encode(c.text).join(), c.ids.join(), c.text);
  for (const c of fx.cases.slice(0, 150)) assert.is(web.encode(c.text).join(), c.ids.join(), `${c.text} (cached)`);
});

test('src/text/clip-tokenizer.ts bundles for the browser with no Node built-ins', async () => {
  const r = await build({
    absWorkingDir: REPO_ROOT, entryPoints: ['src/text/clip-tokenizer.ts'], bundle: true, platform: 'browser',
    format: 'esm', write: false, logLevel: 'silent',
  });
  const js = r.outputFiles[0]!.text;
  assert.not.match(js, /from\s*["']node:|require\(["'](node:)?(fs|zlib|path)["']\)/);
  assert.ok(js.length < 200_000, `${js.length} bytes`);
});

test.run();
