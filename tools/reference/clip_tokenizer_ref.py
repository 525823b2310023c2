#!/usr/bin/python3
"""Reference CLIP BPE tokenizer, written from OpenAI CLIP's published algorithm (clip/simple_tokenizer.py, MIT),
standard library only. It is the oracle for src/text/clip-tokenizer.ts.

    /usr/bin/python3 tools/reference/clip_tokenizer_ref.py tokenize "a photo of a cat" ...   # print the [77] rows
    /usr/bin/python3 tools/reference/clip_tokenizer_ref.py fixture     # write test/fixtures/text/clip_tokens.json
    /usr/bin/python3 tools/reference/clip_tokenizer_ref.py entities    # write src/text/html5-entities.ts

What it does, step by step (CLIP's order):
1. clean: CLIP runs ftfy.fix_text first. ftfy is not installed here and its mojibake repair is heuristic, so this
   implementation (and the TypeScript one) leaves it out: html.unescape twice, strip, collapse every run of Python
   whitespace (str.isspace) to one space, strip, lowercase (str.lower, full Unicode mapping). For plain text this is
   what CLIP does; it differs where ftfy would have changed the text (mojibake, curly quotes -> straight ones,
   NFC normalisation, full-width forms, Latin ligatures, control and terminal-escape characters).
2. split with CLIP's pattern
       <\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
   compiled by CLIP with the `regex` module and re.IGNORECASE. `regex` is not installed here, so the pattern is
   emulated with `re` and explicit character classes computed from unicodedata (Unicode 14.0 in Python 3.11):
     - \\p{L}: general category L*, plus the characters that are not letters but whose simple case variants are
       (only U+0345 COMBINING GREEK YPOGEGRAMMENI, which case-folds to iota) - what IGNORECASE does to a class;
     - \\p{N}: general category N* (no non-number has a number as case variant);
     - \\s: str.isspace() (after step 1 only U+0020 can be left, so the exact definition does not matter);
     - IGNORECASE on the literals: each ASCII letter with its simple case-fold partners (s also matches U+017F long
       s, k also U+212A Kelvin sign; the text is already lowercase, so only U+017F can matter: "'\u017f" is a
       contraction).
3. each piece -> UTF-8 bytes -> CLIP's bytes_to_unicode characters -> BPE with the merge ranks (cached; the two
   special tokens are pre-seeded in the cache, so "<|endoftext|>" written in a text becomes id 49407).
4. tokenize(): [SOT] + ids + [EOT], zero padded to the context length; too long -> error, or with truncate the
   first context_length ids with the last one replaced by EOT.
decode(): ids -> strings -> bytes -> UTF-8 with errors='replace', '</w>' -> ' ' (exactly CLIP's).
"""
import argparse
import gzip
import html
import html.entities
import json
import os
import random
import re
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VOCAB = os.environ.get('SKETCHGPU_CLIP_VOCAB') or os.path.join(
    os.environ.get('SKETCHGPU_SHARED') or os.path.join(ROOT, '..', 'shared'), 'data', 'clip', 'bpe_simple_vocab_16e6.txt.gz')
SOT, EOT = '<|startoftext|>', '<|endoftext|>'
FIXTURE_VERSION = 1


def bytes_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('\u00a1'), ord('\u00ac') + 1)) + list(range(ord('\u00ae'), ord('\u00ff') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    return {(word[i], word[i + 1]) for i in range(len(word) - 1)}


# ---- the character classes of step 2 ------------------------------------------------------------------------------
def _case_variants(c):
    return {v for v in (c, c.lower(), c.upper(), c.casefold(), c.title()) if len(v) == 1}


def _ranges(pred):
    out, start = [], None
    for cp in range(0x110001):
        ok = cp <= 0x10FFFF and not (0xD800 <= cp <= 0xDFFF) and pred(chr(cp))
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    return out


def _cls(ranges):
    esc = lambda cp: '\\U%08x' % cp  # noqa: E731
    return ''.join(esc(a) if a == b else f'{esc(a)}-{esc(b)}' for a, b in ranges)


def char_class(c):
    """'L', 'N', 'S' (whitespace) or 'O' (other): how step 2 sees one character (after lowercasing)."""
    if c.isspace():
        return 'S'
    cats = {unicodedata.category(v)[0] for v in _case_variants(c)}
    if 'L' in cats:
        return 'L'
    if 'N' in cats:
        return 'N'
    return 'O'


_CLASS_CACHE = {}


def class_ranges():
    if not _CLASS_CACHE:
        table = {k: [] for k in 'LNSO'}
        prev, start = None, 0
        for cp in range(0x110001):
            k = None if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF else char_class(chr(cp))
            if k != prev:
                if prev is not None:
                    table[prev].append((start, cp - 1))
                prev, start = k, cp
        _CLASS_CACHE.update(table)
    return _CLASS_CACHE


def _ci(lit):
    """A literal matched case-insensitively (simple case folding, as IGNORECASE does)."""
    extra = {'s': '\u017f', 'k': '\u212a'}
    out = ''
    for ch in lit:
        if ch.isalpha():
            out += '[' + ch + ch.upper() + extra.get(ch, '') + ']'
        else:
            out += re.escape(ch)
    return out


def clip_pattern():
    r = class_ranges()
    L, N, S = _cls(r['L']), _cls(r['N']), _cls(r['S'])
    alts = [_ci(SOT), _ci(EOT)] + ["'" + _ci(x) for x in ('s', 't', 're', 've', 'm', 'll', 'd')]
    alts += [f'[{L}]+', f'[{N}]', f'[^{S}{L}{N}]+']
    return re.compile('|'.join(alts))


# ---- the tokenizer ------------------------------------------------------------------------------------------------
def basic_clean(text):
    # CLIP: ftfy.fix_text(text) first - left out, see the module docstring.
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text):
    text = re.sub(r'\s+', ' ', text)
    return text.strip()


class ClipTokenizer:
    def __init__(self, bpe_path=DEFAULT_VOCAB):
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        merges = gzip.open(bpe_path).read().decode('utf-8').split('\n')
        merges = merges[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        assert all(len(m) == 2 for m in merges), 'a merge line is not two symbols'
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + '</w>' for v in vocab]
        for m in merges:
            vocab.append(''.join(m))
        vocab.extend([SOT, EOT])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        assert len(self.encoder) == len(vocab) == 49408, 'the vocabulary is not 49408 distinct tokens'
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {SOT: SOT, EOT: EOT}
        self.pat = clip_pattern()

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + '</w>',)
        pairs = get_pairs(word)
        if not pairs:
            return token + '</w>'
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float('inf')))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = ' '.join(word)
        self.cache[token] = word
        return word

    def clean(self, text):
        return whitespace_clean(basic_clean(text)).lower()

    def pieces(self, text):
        return self.pat.findall(self.clean(text))

    def encode(self, text):
        ids = []
        for token in self.pieces(text):
            token = ''.join(self.byte_encoder[b] for b in token.encode('utf-8'))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(' '))
        return ids

    def decode(self, tokens):
        text = ''.join(self.decoder[t] for t in tokens)
        return bytearray([self.byte_decoder[c] for c in text]).decode('utf-8', errors='replace').replace('</w>', ' ')

    def tokenize(self, texts, context_length=77, truncate=False):
        if isinstance(texts, str):
            texts = [texts]
        sot, eot = self.encoder[SOT], self.encoder[EOT]
        rows = []
        for text in texts:
            tokens = [sot] + self.encode(text) + [eot]
            if len(tokens) > context_length:
                if not truncate:
                    raise ValueError(f'Input {text} is too long for context length {context_length}')
                tokens = tokens[:context_length]
                tokens[-1] = eot
            rows.append(tokens + [0] * (context_length - len(tokens)))
        return rows


# ---- the fixture --------------------------------------------------------------------------------------------------
def class_names():
    d = os.path.join(os.path.dirname(os.path.dirname(DEFAULT_VOCAB)), 'sketchy', 'all125-128', 'photo')
    names = sorted(os.listdir(d))
    assert len(names) == 125, f'expected the 125 Sketchy classes in {d}, found {len(names)}'
    return names


SENTENCES = [
    'a photo of a cat', 'a sketch of a dog', 'A Photo Of A Cat', 'a photo of a cat.', '  a   photo\tof\na cat  ',
    'a line drawing of an airplane with two wings and a tail fin',
    'rounded head with distinct ears', 'almond-shaped eyes', 'long, flexible tail',
    'A giraffe: very long neck, long thin legs, small ossicones on the head, patchy spots.',
    'The teapot has a round body, a curved spout, a looped handle and a small lid with a knob.',
    'hot-air balloon: large inverted-teardrop envelope above a small square basket, joined by ropes',
    'a jack-o\'-lantern with triangular eyes and a jagged grin',
    'Sketchy (Sangkloy et al., 2016) has 125 classes; ZS-SBIR holds out 21 of them.',
    'zero-shot sketch-based image retrieval (ZS-SBIR)', 'CAAN: cross-modal attention alignment network',
    'pre-LN blocks, QuickGELU, EOT pooling', 'x = y + 2 * (z - 1) / 3', 'e-mail: someone@example.com',
    'https://github.com/openai/CLIP', 'C:\\path\\to\\file.txt', 'snake_case_identifier and camelCaseIdentifier',
    'Hello, World!', 'hello world', 'HELLO WORLD', '...', '!!!???', '---', '"quoted"', '(parenthesised)',
    '[brackets] {braces} <angles>', '#hashtag @mention $100 50% 3^2 ~tilde `backtick` |pipe|',
    'wait... what?!', 'semi;colon:colon', 'tab\tseparated\tvalues', 'line one\nline two\r\nline three',
]
DIGITS = ['0', '7', '42', '123', '2024', '3.14159', '1,000,000', '12:30', '1/2', '10x', 'x10', 'v2.0.1',
          '٣٤٥ arabic-indic digits', '१२३ devanagari digits', '½ ¼ ¾', '²³ superscripts', 'Ⅻ ⅻ roman numerals',
          '①②③ circled', '１２３ fullwidth digits', 'route 66', '007 agent', '9 lives', '99 red balloons']
CONTRACTIONS = ["don't", "it's", "they're", "I've", "I'm", "we'll", "she'd", "can't", "won't", "isn't",
                "DON'T", "IT'S", "They'Re", "the cat's tail", "rock'n'roll", "'s", "'t", "'re", "'ve", "'m", "'ll",
                "'d", "''s", "'", "''", "o'clock", "y'all", "'sup", "it'ſ", "it\u2019s curly", "don\u2019t",
                "ma'am", "'twas", "it's's", "'ss", "'dd", "'lll"]
NON_ASCII = ['café', 'naïve résumé', 'Straße', 'STRASSE', 'ẞ capital sharp s', 'İstanbul', 'ıi dotless',
             'ΟΔΟΣ', 'Ελληνικά γράμματα', 'ᾳ iota subscript', 'α\u0345', 'ΑΙ\u0345', 'русский текст', 'Москва',
             '日本語のテキスト', '東京', '中文字符', '한국어 텍스트', 'עברית', 'العربية', 'हिन्दी',
             'ภาษาไทย', 'e\u0301 combining acute', 'n\u0303o', 'Åström', 'Ærøskøbing', 'Łódź', 'ğüşöçİ',
             'ǅungla', 'ǈ ǋ titlecase digraphs', 'ﬁ ligature', 'ＡＢＣ fullwidth', 'ｶﾀｶﾅ halfwidth', 'ℌ𝔢𝔩𝔩𝔬',
             '𝐁𝐨𝐥𝐝', 'µ micro', 'Ω ohm Ω omega', 'K kelvin', 'Å angstrom', 'ß', 'ŉ', 'ǰ', 'ﬀ', 'Ꭰ Cherokee ꭰ',
             'ʻokina', 'ʼapostrophe', 'ˈstress', 'ー長音', '〆', '々', 'ゝ']
EMOJI = ['🐱', 'a cat 🐱 and a dog 🐶', '👍', '👍🏽', '👨‍👩‍👧', '🇫🇷 flag', '❤️', '❤', '✨sparkles✨', '🤖🎨✏️',
         '😀😃😄😁', '☕ coffee', '♥♦♣♠', '→ ← ↑ ↓', '★☆', '©®™', '€£¥$', '°C', '±×÷', '∞≠≤≥', '“smart” ‘quotes’',
         '— em dash – en dash', '…ellipsis', '«guillemets»', '¿qué?', '¡hola!', '•bullet', '§ ¶', '\u00b7middle dot']
ENTITIES = ['&amp;', '&lt;b&gt;bold&lt;/b&gt;', '&amp;amp;', '&amp;amp;amp;', '&amp;lt;', '&#39;', '&#x27;',
            '&#X27;', 'a&nbsp;b', '&copy; 2024', '&copy 2024', '&notit;', '&notin;', '&not', '&AMP;', '&amp',
            '&ampx', '&#128;', '&#0;', '&#xD800;', '&#1114112;', '&#x110000;', '&#65', '&#x41;&#x42', '&#9;tab',
            '&#10;newline', '&#13;', '&#x85;', '&#11;', '&#xFFFE;', '&#x1F431;', '&eacute;t&eacute;', '&Eacute;',
            '&hearts;&spades;', '&NotNestedGreaterGreater;', '&bogus;', '& lone ampersand', '&&&', '&;', '&#;',
            '&#x;', '&#xyz;', '&#9999999999999999999999;', '&' + 'a' * 40 + ';', '&lt', '&ltx', 'AT&amp;T',
            'fish &amp; chips', '&quot;quoted&quot;', '&apos;s', '&lsquo;single&rsquo;', '&ensp;&emsp;&thinsp;',
            '&zwnj;&zwj;', '&#x200B;zero width', '&shy;soft', '&Tab;&NewLine;', '&lt;|endoftext|&gt;']
WHITESPACE = ['', ' ', '   ', '\t\n\r', 'a\u3000b', 'a\u00a0b', 'a\u2028b', 'a\u2029b', 'a\x1cb', 'a\x1fb',
              'a\x85b', 'a\ufeffb', 'a\u200bb', 'a\u180eb', 'a\u2007b', 'a\u202fb', '\u3000full\u3000width\u3000',
              'a\x00b', 'a\x07b', 'a\x7fb', 'a\u0000\u0001b', 'trailing   ', '   leading', 'a \t \n b']
SPECIALS = ['<|startoftext|>', '<|endoftext|>', 'a <|endoftext|> b', '<|ENDOFTEXT|>', '<|StartOfText|>',
            '<|endoftext|><|endoftext|>', '<|endoftext', 'endoftext|>', '<|ſtartoftext|>', '<|unk|>', '</w>',
            'a</w>b', '<|startoftext|>a photo<|endoftext|>']


def random_strings(n, seed):
    rng = random.Random(seed)
    pools = [
        'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789', ' ' * 6, ".,;:!?'\"-_()[]{}/\\&#@%*+=<>|~`^$",
        'àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ', 'αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΣΩ', 'абвгдежзийклмнопрстуфхцчшщъыьэюя',
        '日本語中文字東京猫犬鳥', 'ひらがなカタカナ', '한국어', '🐱🐶🎨✏️👍🏽❤', '\u0301\u0308\u0345\u200d\ufe0f', '\t\n\u3000\u00a0',
    ]
    out = []
    for _ in range(n):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 34])
        out.append(''.join(rng.choice(rng.choice(pools)) for _ in range(length)))
    return out


def long_strings():
    return [
        'a ' * 75, 'a ' * 76, 'cat ' * 74 + 'cat', 'cat ' * 75 + 'cat', ' '.join(['a', 'photo', 'of', 'a', 'cat'] * 16),
        'supercalifragilisticexpialidocious ' * 12, '🐱' * 30, 'x' * 500, 'abc' * 100, '1234567890' * 10,
        'This is a very long description of a sketch of a house with a triangular roof, two square windows, a '
        'rectangular door in the middle, a chimney on the left side of the roof with smoke curling out of it, a '
        'path leading to the door, a fence with pointed pickets in front, a tree with a round crown on the right, '
        'and a sun with rays in the upper corner, all drawn with simple black lines on white paper.',
    ]


def decode_cases(tok, rng):
    cases = []
    byte_ids = list(range(256)) + list(range(256, 512))
    for _ in range(40):  # random byte-level tokens: invalid UTF-8 sequences exercise errors='replace'
        cases.append([rng.choice(byte_ids) for _ in range(rng.randint(1, 8))])
    for _ in range(40):  # random ids over the whole vocabulary, specials included
        cases.append([rng.randrange(49408) for _ in range(rng.randint(1, 12))])
    cases.append(tok.tokenize('a photo of a cat')[0])  # with SOT, EOT and the zero padding ('!')
    return cases


def make_fixture(out):
    tok = ClipTokenizer()
    names = class_names()
    texts = []
    texts += names
    texts += [n.replace('_', ' ') for n in names]
    texts += [f'a sketch of a {n.replace("_", " ")}' for n in names]
    texts += SENTENCES + DIGITS + CONTRACTIONS + NON_ASCII + EMOJI + ENTITIES + WHITESPACE + SPECIALS
    texts += random_strings(120, 8)
    longs = long_strings()
    texts += longs
    seen, uniq = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            uniq.append(t)
    cases = [{'text': t, 'clean': tok.clean(t), 'ids': tok.encode(t)} for t in uniq]
    rows = []
    for t in longs + ['a photo of a cat', '', 'a ' * 20]:
        for ctx in (77, 16):
            for trunc in (False, True):
                try:
                    r = {'text': t, 'context_length': ctx, 'truncate': trunc, 'row': tok.tokenize([t], ctx, trunc)[0]}
                except ValueError:
                    r = {'text': t, 'context_length': ctx, 'truncate': trunc, 'error': 'too long'}
                rows.append(r)
    rng = random.Random(9)
    decodes = [{'ids': ids, 'text': tok.decode(ids)} for ids in decode_cases(tok, rng)]
    decodes += [{'ids': c['ids'], 'text': tok.decode(c['ids'])} for c in cases[::7]]
    # Step-2 character classes and lowercasing for every code point assigned in Python's Unicode, so the
    # TypeScript test can check its regex and toLowerCase over the whole range, not only the strings above.
    r = class_ranges()
    assigned = _ranges(lambda c: unicodedata.category(c) != 'Cn')
    lower = {}
    for a, b in assigned:
        for cp in range(a, b + 1):
            lo = chr(cp).lower()
            if lo != chr(cp):
                lower[cp] = [ord(x) for x in lo]
    anchors = {t: tok.tokenize([t])[0][:len(tok.encode(t)) + 2] for t in ('a photo of a cat', 'a sketch of a dog', 'hello world')}
    doc = {
        'about': 'CLIP BPE tokenizer fixture made by tools/reference/clip_tokenizer_ref.py (Python ' + sys.version.split()[0]
                 + ', unicodedata ' + unicodedata.unidata_version + '; no ftfy; `regex` emulated with re). Regenerate: '
                 '/usr/bin/python3 tools/reference/clip_tokenizer_ref.py fixture',
        'version': FIXTURE_VERSION,
        'unicode': unicodedata.unidata_version,
        'vocab': {'size': len(tok.encoder), 'merges': len(tok.bpe_ranks), 'sot': tok.encoder[SOT], 'eot': tok.encoder[EOT]},
        'anchors': anchors,
        'cases': cases,
        'rows': rows,
        'decodes': decodes,
        'char_classes': {k: r[k] for k in 'LNS'},
        'assigned': assigned,
        'lower': {str(k): v for k, v in lower.items()},
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, 'w', encoding='utf-8') as f:
        json.dump(doc, f, ensure_ascii=True, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {out}: {len(cases)} strings, {len(rows)} rows, {len(decodes)} decodes, '
          f'{len(lower)} lowercase mappings, {os.path.getsize(out)} bytes')


def write_entities(out):
    d = html.entities.html5
    body = json.dumps(d, ensure_ascii=True, separators=(',', ':'), sort_keys=True)
    with open(out, 'w', encoding='utf-8') as f:
        f.write('// Generated by tools/reference/clip_tokenizer_ref.py entities from Python ' + sys.version.split()[0] + "'s\n")
        f.write('// html.entities.html5 (the HTML5 named character references, ' + str(len(d)) + ' names, with and\n')
        f.write('// without the ";" as the standard lists them). Do not edit.\n')
        f.write('export const HTML5_ENTITIES: Readonly<Record<string, string>> = ' + body + ';\n')
    print(f'wrote {out}: {len(d)} entities')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    t = sub.add_parser('tokenize', help='print the token rows of the given texts')
    t.add_argument('texts', nargs='+')
    t.add_argument('--context-length', type=int, default=77)
    t.add_argument('--truncate', action='store_true')
    f = sub.add_parser('fixture', help='write the test fixture')
    f.add_argument('--out', default=os.path.join(ROOT, 'test', 'fixtures', 'text', 'clip_tokens.json'))
    e = sub.add_parser('entities', help='write the HTML5 entity table for the TypeScript tokenizer')
    e.add_argument('--out', default=os.path.join(ROOT, 'src', 'text', 'html5-entities.ts'))
    a = ap.parse_args()
    if a.cmd == 'tokenize':
        tok = ClipTokenizer()
        for row in tok.tokenize(a.texts, a.context_length, a.truncate):
            print(json.dumps(row))
    elif a.cmd == 'fixture':
        make_fixture(a.out)
    else:
        write_entities(a.out)


if __name__ == '__main__':
    main()
