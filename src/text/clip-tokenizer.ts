/**
 * OpenAI CLIP's byte-level BPE tokenizer (clip/simple_tokenizer.py), exact, for the CAAN text tower
 * (../shared/docs/caan.md). Browser-safe: no Node APIs here; src/text/clip-vocab-node.ts reads the vocabulary
 * file in Node, and a page passes the .gz bytes (or the decompressed text) it fetched.
 *
 * Built from `bpe_simple_vocab_16e6.txt.gz` as CLIP does: the 256 byte characters of bytes_to_unicode, the same
 * with "</w>", the first 48,894 merges after the header line, then <|startoftext|> (49406) and <|endoftext|>
 * (49407): 49,408 tokens.
 *
 * One deliberate difference: CLIP runs ftfy.fix_text before everything else. ftfy is a large heuristic library
 * (mojibake repair) with no JavaScript twin, so it is left out, here and in the reference tools/reference/clip_tokenizer_ref.py
 * alike. Cleaning is therefore: HTML-unescape twice (Python's html.unescape, HTML5 rules), strip, collapse each run
 * of Python whitespace to one space, strip, lowercase. For ordinary text this equals CLIP; it differs where ftfy
 * would have changed the text: mojibake, curly quotes (ftfy straightens "it’s" to "it's", which then splits as a
 * contraction), NFC normalisation, full-width forms, Latin ligatures, control characters.
 *
 * Unicode tables: the split pattern uses the JavaScript engine's \p{L} / \p{N} and toLowerCase, CLIP uses the
 * `regex` module's and Python's. They agree on every code point the fixture's Unicode (14.0) assigns, which
 * test/text.clip-tokenizer.test.ts checks exhaustively; characters assigned later may be split differently by an
 * older Python.
 */
import { gunzipSync } from 'fflate';
import { SketchError } from '../core/errors.ts';
import { HTML5_ENTITIES } from './html5-entities.ts';

export const CLIP_CONTEXT_LENGTH = 77;
export const CLIP_VOCAB_SIZE = 49408;
export const CLIP_SOT = 49406;
export const CLIP_EOT = 49407;
/**
 * The longest text encode() takes, in UTF-16 units. CLIP reads 77 tokens (a few hundred characters of prose), and
 * byte-pair merging is quadratic in a word's length (fuzzing: one 50,000-letter word took 9.6 s): a bound keeps an
 * untrusted query cheap (a 4,096-letter word: well under a second). Longer texts are refused, not truncated.
 */
export const CLIP_MAX_TEXT_CHARS = 4096;
const SOT_TEXT = '<|startoftext|>';
const EOT_TEXT = '<|endoftext|>';
/** CLIP reads merges[1 : 49152-256-2+1]: the header line is skipped. */
const N_MERGES = 49152 - 256 - 2;

/** Token ids [n, contextLength], row-major, zero padded (the HostTensor layout of src/core/tensor.ts). */
export interface ClipTokenIds {
  dtype: 'i32';
  shape: [number, number];
  data: Int32Array;
}

/**
 * CLIP's bytes_to_unicode: each byte value and the printable character that stands for it in the vocabulary, in
 * CLIP's order (the printable bytes first, then the rest), which is the order of the first 256 tokens.
 */
export function bytesToUnicodePairs(): Array<[byte: number, char: string]> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return bs.map((b, i) => [b, String.fromCharCode(cs[i]!)]);
}

// ---- cleaning ----------------------------------------------------------------------------------------------------

/** Python's html.unescape tables (Lib/html/__init__.py): numeric references the HTML5 spec remaps or drops. */
const INVALID_CHARREFS: Record<number, string> = {
  0x00: '\ufffd', 0x0d: '\r', 0x80: '\u20ac', 0x81: '\x81', 0x82: '\u201a', 0x83: '\u0192', 0x84: '\u201e',
  0x85: '\u2026', 0x86: '\u2020', 0x87: '\u2021', 0x88: '\u02c6', 0x89: '\u2030', 0x8a: '\u0160', 0x8b: '\u2039',
  0x8c: '\u0152', 0x8d: '\x8d', 0x8e: '\u017d', 0x8f: '\x8f', 0x90: '\x90', 0x91: '\u2018', 0x92: '\u2019',
  0x93: '\u201c', 0x94: '\u201d', 0x95: '\u2022', 0x96: '\u2013', 0x97: '\u2014', 0x98: '\u02dc', 0x99: '\u2122',
  0x9a: '\u0161', 0x9b: '\u203a', 0x9c: '\u0153', 0x9d: '\x9d', 0x9e: '\u017e', 0x9f: '\u0178',
};

function isInvalidCodepoint(n: number): boolean {
  return (n >= 0x1 && n <= 0x8) || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || n === 0xb || (n & 0xfffe) === 0xfffe;
}

const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;
const hasEntity = (name: string) => Object.prototype.hasOwnProperty.call(HTML5_ENTITIES, name);

/** Python's html.unescape, rule for rule (named references need not end in ";" when the standard allows it). */
export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(CHARREF, (_m, ref: string) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      // Beyond 0x10FFFF the exact value does not matter (U+FFFD); parseInt may round huge ones.
      const num = parseInt(digits, hex ? 16 : 10);
      if (Object.prototype.hasOwnProperty.call(INVALID_CHARREFS, num)) return INVALID_CHARREFS[num]!;
      if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
      if (isInvalidCodepoint(num)) return '';
      return String.fromCodePoint(num);
    }
    if (hasEntity(ref)) return HTML5_ENTITIES[ref]!;
    // The longest prefix that is a name (at least 2 characters), as Python does; names are ASCII, so slicing
    // code points or UTF-16 units finds the same prefix.
    const cps = Array.from(ref);
    for (let x = cps.length - 1; x > 1; x--) {
      const head = cps.slice(0, x).join('');
      if (hasEntity(head)) return HTML5_ENTITIES[head]! + cps.slice(x).join('');
    }
    return '&' + ref;
  });
}

/** Python's str.isspace() characters (what `\s` and str.strip() mean in CLIP's Python code). */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, 'gu');
const EDGE_SPACE = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'gu');
const pyStrip = (s: string) => s.replace(EDGE_SPACE, '');

/** CLIP's whitespace_clean(basic_clean(text)).lower(), without ftfy (see the file comment). */
export function cleanText(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(text)));
  return pyStrip(basic.replace(SPACE_RUN, ' ')).toLowerCase();
}

/**
 * CLIP's split pattern, case-insensitive as CLIP compiles it (re.IGNORECASE). `\s` is spelled out as Python's
 * whitespace: JavaScript's would also take U+FEFF, which Python keeps as a character. After cleanText only
 * U+0020 can be left anyway.
 */
const PIECES = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_SPACE}\\p{L}\\p{N}]+`, 'giu');

/** The pieces BPE sees, from already cleaned text. */
export function splitPieces(cleaned: string): string[] {
  return Array.from(cleaned.matchAll(PIECES), (m) => m[0]);
}

const LONE_SURROGATE = /[\ud800-\udfff]/u; // with the u flag only unpaired halves match

// ---- the tokenizer -----------------------------------------------------------------------------------------------

const badVocab = (what: string) => new SketchError('BAD_ARGUMENT', `this is not CLIP's BPE vocabulary: ${what}`,
  'Use bpe_simple_vocab_16e6.txt.gz from OpenAI CLIP\'s repository (clip/), as in ../shared/data/clip/.');

export class ClipTokenizer {
  readonly vocabSize = CLIP_VOCAB_SIZE;
  readonly sot = CLIP_SOT;
  readonly eot = CLIP_EOT;
  private readonly encoder = new Map<string, number>();
  private readonly decoder: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly byteEncoder: string[] = new Array(256);
  private readonly byteDecoder = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();
  private readonly utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  private constructor(bpeText: string) {
    const lines = bpeText.split('\n');
    if (!lines[0]?.includes('#version')) throw badVocab('its first line is not the "#version" header');
    if (lines.length < N_MERGES + 1) throw badVocab(`${lines.length - 1} merge lines, CLIP needs ${N_MERGES}`);
    const pairs = bytesToUnicodePairs();
    for (const [b, c] of pairs) {
      this.byteEncoder[b] = c;
      this.byteDecoder.set(c, b);
    }
    const vocab = [...pairs.map(([, c]) => c), ...pairs.map(([, c]) => c + '</w>')];
    for (let i = 1; i <= N_MERGES; i++) {
      const parts = lines[i]!.split(/[ \t\r\f\v]+/).filter((p) => p.length > 0);
      if (parts.length !== 2) throw badVocab(`line ${i + 1} is not a pair of symbols`);
      this.ranks.set(parts[0] + ' ' + parts[1], i - 1);
      vocab.push(parts[0]! + parts[1]!);
    }
    vocab.push(SOT_TEXT, EOT_TEXT);
    vocab.forEach((t, i) => {
      this.encoder.set(t, i);
      this.decoder.push(t);
    });
    if (this.encoder.size !== CLIP_VOCAB_SIZE) throw badVocab(`${this.encoder.size} distinct tokens instead of ${CLIP_VOCAB_SIZE}`);
    this.cache.set(SOT_TEXT, [CLIP_SOT]);
    this.cache.set(EOT_TEXT, [CLIP_EOT]);
  }

  /** From the decompressed text of bpe_simple_vocab_16e6.txt.gz. */
  static fromBpeText(text: string): ClipTokenizer {
    return new ClipTokenizer(text);
  }

  /** From the bytes of bpe_simple_vocab_16e6.txt.gz (gzip) or of its decompressed text. */
  static fromBytes(bytes: Uint8Array): ClipTokenizer {
    let raw = bytes;
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      try {
        raw = gunzipSync(bytes);
      } catch (e) {
        throw badVocab(`the gzip data is corrupt (${(e as Error).message})`);
      }
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw badVocab('it is not UTF-8 text');
    }
    return new ClipTokenizer(text);
  }

  /** Fetches and builds (browser or Node): the URL of the .gz file or of its decompressed text. */
  static async fromUrl(url: string | URL): Promise<ClipTokenizer> {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new SketchError('IO', `cannot fetch the CLIP vocabulary from ${String(url)} (${(e as Error).message})`,
        'Check the URL and that the server serves bpe_simple_vocab_16e6.txt.gz.');
    }
    if (!res.ok) throw new SketchError('IO', `cannot fetch the CLIP vocabulary from ${String(url)}: HTTP ${res.status}`, 'Check the URL.');
    return ClipTokenizer.fromBytes(new Uint8Array(await res.arrayBuffer()));
  }

  /** The ids of one text, without SOT/EOT (CLIP's SimpleTokenizer.encode). */
  encode(text: string): number[] {
    if (text.length > CLIP_MAX_TEXT_CHARS) {
      throw new SketchError('BAD_ARGUMENT', `the text is ${text.length} characters, more than the ${CLIP_MAX_TEXT_CHARS} the tokenizer takes`,
        `CLIP reads only its first ${CLIP_CONTEXT_LENGTH} tokens (a few hundred characters): pass a shorter text.`);
    }
    if (LONE_SURROGATE.test(text)) {
      throw new SketchError('BAD_ARGUMENT', 'the text contains an unpaired UTF-16 surrogate, which has no UTF-8 form',
        'Pass well-formed Unicode text (CLIP\'s Python tokenizer fails on it too).');
    }
    const ids: number[] = [];
    for (const piece of splitPieces(cleanText(text))) {
      let token = '';
      for (const b of this.utf8.encode(piece)) token += this.byteEncoder[b];
      for (const id of this.bpe(token)) ids.push(id);
    }
    return ids;
  }

  /**
   * CLIP's clip.tokenize: [SOT] + ids + [EOT], zero padded to `contextLength`. A text that does not fit is an
   * error, or with `truncate` keeps the first contextLength ids and makes the last one EOT (as CLIP does).
   */
  tokenize(texts: string | readonly string[], contextLength = CLIP_CONTEXT_LENGTH, truncate = false): ClipTokenIds {
    if (!Number.isInteger(contextLength) || contextLength < 1) {
      throw new SketchError('BAD_ARGUMENT', `the context length must be a positive integer, not ${contextLength}`, `CLIP uses ${CLIP_CONTEXT_LENGTH}.`);
    }
    const list = typeof texts === 'string' ? [texts] : texts;
    const data = new Int32Array(list.length * contextLength);
    list.forEach((text, i) => {
      let tokens = [CLIP_SOT, ...this.encode(text), CLIP_EOT];
      if (tokens.length > contextLength) {
        if (!truncate) {
          const preview = text.length > 60 ? `${text.slice(0, 57)}...` : text;
          throw new SketchError('BAD_ARGUMENT',
            `text ${i + 1} of ${list.length} ("${preview}") is ${tokens.length} tokens with SOT and EOT, more than the context length ${contextLength}`,
            `Shorten it, or tokenize with truncate=true to keep the first ${contextLength - 1} tokens and end with EOT, as CLIP does.`);
        }
        tokens = tokens.slice(0, contextLength);
        tokens[contextLength - 1] = CLIP_EOT;
      }
      data.set(tokens, i * contextLength);
    });
    return { dtype: 'i32', shape: [list.length, contextLength], data };
  }

  /** CLIP's SimpleTokenizer.decode, exactly: every id (padding 0 reads "!"), invalid UTF-8 -> U+FFFD, "</w>" -> " ". */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const t = this.decoder[ids[i]!];
      if (t === undefined) {
        throw new SketchError('BAD_ARGUMENT', `token id ${ids[i]} at position ${i} is outside CLIP's vocabulary (0..${CLIP_VOCAB_SIZE - 1})`,
          'Decode ids that came from this tokenizer.');
      }
      for (const c of t) bytes.push(this.byteDecoder.get(c)!);
    }
    return this.utf8Decoder.decode(new Uint8Array(bytes)).replaceAll('</w>', ' ');
  }

  /** The text of one tokenize() row: what lies between SOT and the first EOT, trimmed. */
  decodeRow(row: ArrayLike<number>): string {
    const ids: number[] = [];
    for (let i = 0; i < row.length; i++) {
      const t = row[i]!;
      if (t === CLIP_EOT) break;
      if (t !== CLIP_SOT) ids.push(t);
    }
    return this.decode(ids).trim();
  }

  /** Token id of a vocabulary entry (e.g. "cat</w>"), or undefined. */
  tokenId(token: string): number | undefined {
    return this.encoder.get(token);
  }

  /** Vocabulary entry of an id (e.g. 2368 -> "cat</w>"). */
  tokenText(id: number): string | undefined {
    return this.decoder[id];
  }

  /** BPE of one byte-encoded piece, as CLIP's SimpleTokenizer.bpe (merge the lowest-ranked pair until none is left). */
  private bpe(token: string): number[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    // The byte characters are all in the BMP, so UTF-16 units are characters here.
    let word = token.split('');
    word[word.length - 1] += '</w>';
    while (word.length > 1) {
      let best = Infinity, first = '', second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(word[i] + ' ' + word[i + 1]);
        if (r !== undefined && r < best) {
          best = r;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i]!);
        }
      }
      word = merged;
    }
    const ids = word.map((w) => this.encoder.get(w)!);
    if (this.cache.size >= 100_000) this.cache.clear(); // a long-lived page should not grow without bound
    this.cache.set(token, ids);
    return ids;
  }
}
