"""How well the selection split resolves: a class bootstrap of the validation ret mAP@all (the 10 held-out seen
classes of train_zse.py's split), for one ZSE checkpoint, or paired for two (B - A on the same images).

    /usr/bin/python3 tools/training/val_bootstrap.py A.pth [B.pth] [--draws 5000]

Each checkpoint is read at its own input size (its position embedding's grid).

Per query (sketch) the reference's AP (eval_zse.query_metrics) of the SA cls cosine ranking; per class the mean over its
sketches; each draw resamples the classes with replacement. Prints JSON: the means and 95 % intervals.
Reads only the seen-class selection split (purpose 'select').
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / 'reference')]
import eval_zse as ev  # noqa: E402


@torch.no_grad()
def query_aps(path, a, val):
    model, _ = ev.load_pth(path)
    size = model.cfg.image_size                                     # each checkpoint at its own input size
    data = ev.load_split(ev.ALL128, val, size, cache_name=f'val{a.val_classes}s{a.split_seed}', purpose='select')
    s, i = ev.sa_features(model, data['sketch']), ev.sa_features(model, data['photo'])
    es, ei = F.normalize(s[:, 0], dim=1), F.normalize(i[:, 0], dim=1)
    same = (data['sketch_label'][:, None] == data['photo_label'][None, :]).astype(np.int64)
    return ev.query_metrics((1.0 - es @ ei.t()).numpy(), same)['map_all'], data['sketch_label']


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('a', help='official-format .pth (train_zse.py output)')
    ap.add_argument('b', nargs='?', help='a second .pth: paired difference b - a')
    ap.add_argument('--val-classes', type=int, default=10)
    ap.add_argument('--split-seed', type=int, default=0)
    ap.add_argument('--draws', type=int, default=5000)
    a = ap.parse_args()
    torch.set_num_threads(1)
    _, val = ev.split_seen(a.val_classes, a.split_seed)
    qa, lab = query_aps(a.a, a, val)
    classes = np.unique(lab)
    per_class = lambda q: np.array([q[lab == c].mean() for c in classes])  # noqa: E731
    ca = per_class(qa)
    if a.b:
        qb, lab_b = query_aps(a.b, a, val)
        assert np.array_equal(lab, lab_b), 'the two sizes must list the same sketches'
    cb = per_class(qb) if a.b else None
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(classes), (a.draws, len(classes)))
    ci = lambda v: [float(x) for x in np.percentile(v[draws].mean(axis=1), [2.5, 97.5])]  # noqa: E731
    out = {'classes': len(classes), 'a': {'map_all': float(ca.mean()), 'ci95': ci(ca)}}
    if cb is not None:
        out['b'] = {'map_all': float(cb.mean()), 'ci95': ci(cb)}
        out['b_minus_a'] = {'mean': float((cb - ca).mean()), 'ci95': ci(cb - ca)}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
