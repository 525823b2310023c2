#!/usr/bin/python3
"""Write a CAAN engine file with the compact token table: only the embedding rows of tokens that occur in a text of
the 104 seen classes (what train_caan.py trains on, and validates with), every other row left out (read as zero).

    /usr/bin/python3 tools/training/prune_caan_vocab.py IN.safetensors OUT.safetensors [--json]

Why: CLIP's vocabulary has 49,408 tokens; train_caan.py's texts (src/models/caan/data/descriptions-sketchy104.json
phrases, the class names in its templates, ", ") use about a thousand of them. The others never get a gradient
(the token table has no weight decay: train_caan.param_groups), so their rows are still the random initialisation:
no information, yet 12.6 of the demo file's 20.8 MB at width 128. The engine (src/models/caan/weights.ts
expandTokenTable) and caan_ref.expand_token_table rebuild the whole table with zeros for the missing rows.

The kept ids: every token of every phrase, class name (in each of train_caan.TEMPLATES and VAL_PROMPT) and ", " of the
104 seen classes (the 10 held-out validation classes included, so validation reads exactly what it read before),
plus start, end and padding (id 0). CLIP's BPE splits a text into words and runs of punctuation first and encodes
each alone, so a joined text uses no token that its parts do not, except where a part's last punctuation meets the
joining comma ("car (sedan), ..." has the token "),"): each part is also tokenized with ", " after it. The script
then draws 20,000 texts with train_caan.TextSampler and checks that each one's ids are kept. Unseen classes are not
read (their names are not in any seen text; a text about them, e.g. "a photo of a giraffe", loses the random rows of
the words no seen text has).

Prints what it kept and dropped (with --json, one JSON line) and checks that the rebuilt table equals the input's at
every kept row.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent
sys.path[:0] = [str(TOOLS / 'training'), str(TOOLS / 'reference')]
import caan_ref as C  # noqa: E402
import splits  # noqa: E402
import train_caan  # noqa: E402
from clip_tokenizer_ref import ClipTokenizer  # noqa: E402
from safetensors_min import load_file, save_file  # noqa: E402


def seen_text_ids(tok, context):
    """The token ids of every text train_caan.py can make from the seen classes' descriptions."""
    desc = json.loads(train_caan.DESCRIPTIONS.read_text())
    seen = splits.seen_classes()
    missing = [c for c in seen if c not in desc['classes']]
    assert not missing, f'no descriptions for {missing}'
    assert not set(desc['classes']) & set(splits.unseen_classes()), 'descriptions of unseen classes'
    pieces = [', ']
    for c in seen:
        name = train_caan.class_name(c)
        pieces += list(desc['classes'][c]['phrases'])
        pieces += [t.format(name) for t in (*train_caan.TEMPLATES, train_caan.VAL_PROMPT)]
    ids = {0}
    for p in pieces:                                 # alone and followed by the ", " of a join (")," is one token)
        for text in (p, p + ', '):
            ids.update(int(i) for i in tok.tokenize([text], context, truncate=True)[0])
    sampler = train_caan.TextSampler(seen, desc, tok, context, seed=0, name_p=0.5)
    rng = np.random.RandomState(1)
    for _ in range(40):                              # 40 x 500 sampled texts, each one's ids must be kept
        _, rows = sampler.sample(rng.randint(len(seen), size=500))
        extra = set(np.unique(rows.numpy()).tolist()) - ids
        assert not extra, f'a sampled text uses ids outside the kept set: {sorted(extra)[:8]}'
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('src')
    ap.add_argument('out')
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    tensors, meta = load_file(a.src)
    if C.TOKEN_TABLE not in tensors:
        raise SystemExit(f'error: {a.src} has no {C.TOKEN_TABLE} (already compact?)\n'
                         'hint: give a CAAN engine file with the whole token table')
    cfg = json.loads(meta['sketchgpu.config'])
    tok = ClipTokenizer()
    keep = seen_text_ids(tok, cfg['text']['context'])
    table = tensors[C.TOKEN_TABLE]
    out = C.prune_token_table(tensors, keep)
    back = C.expand_token_table(dict(out), table.shape[0])[C.TOKEN_TABLE]
    ids = out[C.TOKEN_IDS]
    assert np.array_equal(back[ids], table[ids]) and not back[np.setdiff1d(np.arange(len(table)), ids)].any()
    dropped = np.setdiff1d(np.arange(len(table)), ids)
    tmp = a.out + '.tmp'
    save_file(out, tmp, meta)
    Path(tmp).replace(a.out)
    r = {'kept_rows': int(ids.size), 'dropped_rows': int(dropped.size), 'width': int(table.shape[1]),
         'dropped_row_std': float(table[dropped].astype(np.float64).std()),
         'kept_row_std': float(table[ids].astype(np.float64).std()),
         'bytes_in': Path(a.src).stat().st_size, 'bytes_out': Path(a.out).stat().st_size}
    print(json.dumps(r) if a.json else
          f'{a.out}: kept {r["kept_rows"]} token rows of {len(table)} ({r["bytes_in"]:,} -> {r["bytes_out"]:,} bytes); '
          f'std of the dropped rows {r["dropped_row_std"]:.4f} (init 0.02), of the kept {r["kept_row_std"]:.4f}')


if __name__ == '__main__':
    main()
