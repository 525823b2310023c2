#!/usr/bin/python3
"""Fit a ZSE-SBIR conv stem to an early teacher layer, for train_zse.py --stem-graft (weights/README.md, run N).

    /usr/bin/python3 tools/teacher/features.py --layer mixed2              # the early-layer cache (35 x 35 maps)
    /usr/bin/python3 tools/training/stem_fit.py --out .cache/stem-mixed2.pt   # ~5 min on 2 cores

The stem is the first three convolutions of zse_ref.ScaleEmbedding (7x7/2, 3x3/2, 3x3/2, bias-free, ReLU after
each): its stride-8 map (16 x 16 at 128 px) is regressed, through a 1x1 convolution (training-only), onto the teacher
map of the same picture, average-pooled to that grid and standardised per channel over the training rows; loss
1 - cosine per cell. Training rows: the training classes of train_zse.py's split only (eval_zse.split_seen; the cache's
file list is checked against the split, as train_zse.Teacher does); random horizontal flips. Prints one JSON line:
the mean cosine per cell on 800 training images and on the 10 held-out seen classes (sketches and photos), and
the val ret mAP@all / P@100 of the stem's global-average-pooled map (PooledTransform, K 256) beside the teacher
layer's own pooled feature ranked the same way. The unseen classes are never read.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / 'reference')]
import eval_zse as ev  # noqa: E402
import train_zse as tz  # noqa: E402


def fail(msg, hint):
    print(f'error: {msg}\nhint: {hint}', file=sys.stderr)
    sys.exit(2)


def make_stem(widths):
    c1, c2, c3 = widths
    return nn.Sequential(nn.Conv2d(3, c1, 7, 2, 3, bias=False), nn.ReLU(), nn.Conv2d(c1, c2, 3, 2, 1, bias=False),
                         nn.ReLU(), nn.Conv2d(c2, c3, 3, 2, 1, bias=False), nn.ReLU())


def to_input(u8):
    return ev.to_input(np.ascontiguousarray(u8))


def load_maps(path, files, grid):
    """The cached teacher maps of `files` (rows checked against the cache's list), pooled to grid x grid, float16."""
    meta = json.loads(Path(path).with_suffix('.json').read_text())
    if meta['done'] != meta['shape'][0]:
        fail(f'{path} is incomplete ({meta["done"]} of {meta["shape"][0]} rows)', 'run tools/teacher/features.py again (it resumes)')
    unseen = set(ev.unseen_classes())
    bad = [f for f in meta['files'] if f.split('/')[1] in unseen]
    assert not bad, f'teacher cache holds unseen-class files: {bad[:3]}'
    row = {f: i for i, f in enumerate(meta['files'])}
    arr = np.load(path, mmap_mode='r')
    out = []
    for i in range(0, len(files), 256):
        m = torch.from_numpy(np.stack([arr[row[str(f)]] for f in files[i:i + 256]])).float()
        out.append(F.adaptive_avg_pool2d(m, grid).half())
    return torch.cat(out), meta['layer']


def pooled_ret(ftr, mtr, fva, mva, lva):
    """val ret of global features: L2-normalised, PooledTransform (K 256) fitted on the training rows."""
    ftr, fva = F.normalize(ftr.float(), dim=1), F.normalize(fva.float(), dim=1)
    P = tz.PooledTransform({m: ftr[mtr == m] for m in ('sketch', 'photo')}, 256, torch.device('cpu'))
    s, p = F.normalize(P(fva[mva == 'sketch'], 'sketch'), dim=1), F.normalize(P(fva[mva == 'photo'], 'photo'), dim=1)
    same = (lva[mva == 'sketch'][:, None] == lva[mva == 'photo'][None, :]).astype(np.int64)
    r = ev.calculate((1 - s @ p.t()).numpy(), same)
    return round(r['map_all'], 4), round(r['precision_100'], 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--teacher', default='.cache/teacher/feat-inception_v3-mixed2-s128.npy', help='early-layer map cache')
    ap.add_argument('--out', default='.cache/stem-mixed2.pt')
    ap.add_argument('--widths', type=int, nargs=3, default=[32, 64, 192])
    ap.add_argument('--steps', type=int, default=800)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    if not Path(a.teacher).is_file():
        fail(f'{a.teacher} does not exist', 'run /usr/bin/python3 tools/teacher/features.py --layer mixed2 first')
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train_cls, val_cls = ev.split_seen(10, 0)
    tr = ev.load_split(ev.ALL128, train_cls, 128, cache_name='train10s0', purpose='train')
    va = ev.load_split(ev.ALL128, val_cls, 128, cache_name='val10s0', purpose='select')
    grid = 128 // 8

    def rows(d):
        return (np.concatenate([d['sketch'], d['photo']]), np.concatenate([d['sketch_files'], d['photo_files']]),
                np.concatenate([d['sketch_label'], d['photo_label']]),
                np.array(['sketch'] * len(d['sketch']) + ['photo'] * len(d['photo'])))
    Xtr, Ftr, Ltr, Mtr = rows(tr)
    Xva, Fva, Lva, Mva = rows(va)
    Ttr, layer = load_maps(a.teacher, Ftr, grid)
    Tva, _ = load_maps(a.teacher, Fva, grid)
    mu = Ttr.float().mean((0, 2, 3), keepdim=True)
    sd = Ttr.float().std((0, 2, 3), keepdim=True) + 1e-3
    stem, head = make_stem(a.widths), nn.Conv2d(a.widths[2], Ttr.shape[1], 1)
    params = list(stem.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.steps, pct_start=0.1)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    for s in range(a.steps):
        idx = rng.integers(0, len(Xtr), a.batch)
        x, t = to_input(Xtr[idx]), (Ttr[idx].float() - mu) / sd
        if rng.random() < 0.5:
            x, t = x.flip(3), t.flip(3)
        loss = (1 - F.cosine_similarity(head(stem(x)), t, dim=1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if s % 100 == 0 or s == a.steps - 1:
            print(f'step {s}: loss {loss.item():.4f} ({time.time() - t0:.0f} s)', file=sys.stderr, flush=True)

    @torch.no_grad()
    def run(X, T=None):
        cos, pooled = [], []
        for i in range(0, len(X), 256):
            h = stem(to_input(X[i:i + 256]))
            pooled.append(h.mean((2, 3)))
            if T is not None:
                cos.append(F.cosine_similarity(head(h), (T[i:i + 256].float() - mu) / sd, dim=1).mean((1, 2)))
        return (torch.cat(cos) if cos else None), torch.cat(pooled)
    c_tr, p_tr = run(Xtr)
    c_fit, _ = run(Xtr[:800], Ttr[:800])
    c_va, p_va = run(Xva, Tva)
    out = {'layer': layer, 'widths': a.widths, 'steps': a.steps, 'train_cos_800': round(float(c_fit.mean()), 4),
           'val_cos': round(float(c_va.mean()), 4), 'val_cos_photos': round(float(c_va[torch.from_numpy(Mva == 'photo')].mean()), 4),
           'val_cos_sketches': round(float(c_va[torch.from_numpy(Mva == 'sketch')].mean()), 4),
           'stem_pooled_val_ret': pooled_ret(p_tr, Mtr, p_va, Mva, Lva),
           'teacher_layer_pooled_val_ret': pooled_ret(Ttr.float().mean((2, 3)), Mtr, Tva.float().mean((2, 3)), Mva, Lva),
           'minutes': round((time.time() - t0) / 60, 1)}
    torch.save({'stem': stem.state_dict(), 'head': head.state_dict(), 'mu': mu, 'sd': sd, 'layer': layer,
                'widths': list(a.widths), 'teacher': str(a.teacher), 'fit': out}, a.out)
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
    main()
