#!/usr/bin/python3
"""Diagnostic probes of distilled students and of the teacher, on the seen classes only (weights/README.md, runs L, M).

    /usr/bin/python3 tools/training/probes.py fit   OUT/last.pt [...]   # head 'g' on the cls vs the teacher target
    /usr/bin/python3 tools/training/probes.py ridge CKPT [...]          # ridge from the sketch cls to teacher targets
    /usr/bin/python3 tools/training/probes.py space OUT/last.pt [...]   # val ranking in the cls and the g(cls) space
    /usr/bin/python3 tools/training/probes.py layers [--model inception_v3]  # the teacher alone, layer by layer
    /usr/bin/python3 tools/training/probes.py soup A.pth B.pth [...]    # val ret of weight averages (same-shape runs)
    /usr/bin/python3 tools/training/probes.py selftest                  # no data: the checkpoint reader's own check

Every probe reads the training classes (train) and the 10 held-out seen classes (val) of the zero-shot split through
eval_zse.load_split, never the 21 unseen classes (test/training.honesty.test.ts). The student is rebuilt with its own
head counts, read from the checkpoint (a last.pt's args, or a .pth's config). Targets are the pooled, half-whitened
teacher features that train_zse.py --teacher-whiten 256 distils (PooledTransform fitted on the training rows).
Each probe prints one JSON line per checkpoint (or per layer set); the means are mean cosines or val ret metrics.

  fit    mean cosine of the run's training-only head 'g' on the student's cls to the target: 500 training photos,
         the 250 val photos (their own target), 500 training and the 250 val sketches (their source photo's target,
         --distill-cross's). Needs a last.pt (the head is not in the shipped file).
  ridge  a ridge map (lambda 10) from the student's sketch cls to (a) the teacher's feature of the sketch itself,
         (b) that of its source photo, fitted on 1,200 training sketches; mean cosine on those, on 300 other
         training sketches, and on the 250 val sketches.
  space  val sketch -> photo ret mAP@all and P@100 ranked by the cls (what ships), by g(cls), and by the teacher alone.
  soup   val ret mAP@all / P@100 of each checkpoint, of the uniform average of all (a "model soup", Wortsman et al.
         2022; meaningful for runs fine-tuned from the same weights), and of the greedy soup: checkpoints in order of
         their own val ret, each kept if the average so far does not drop.
  layers the pooled features of several teacher layers of every seen-class image (cached in .cache/exp/), then val
         ret of each layer and of the combinations given by --combos (each layer L2-normalised, concatenated, then
         whitened as above).
"""
import argparse
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / 'reference'), str(HERE.parent / 'teacher')]
import eval_zse as ev  # noqa: E402
import train_zse as tz  # noqa: E402
import zse_ref  # noqa: E402

LAYERS = {'inception_v3': ['mixed4', 'mixed5', 'mixed6', 'mixed7', 'mixed8', 'mixed9', 'mixed10'],
          'mobilenet_v2': ['block_6_expand_relu', 'block_10_expand_relu', 'block_13_expand_relu',
                           'block_16_expand_relu', 'out_relu']}


def fail(msg, hint):
    print(f'error: {msg}\nhint: {hint}', file=sys.stderr)
    sys.exit(2)


def splits():
    train_cls, val_cls = ev.split_seen(10, 0)
    tr = ev.load_split(ev.ALL128, train_cls, 128, cache_name='train10s0', purpose='train')
    va = ev.load_split(ev.ALL128, val_cls, 128, cache_name='val10s0', purpose='select')
    return tr, va


class Targets:
    """Pooled, half-whitened teacher targets of cached images, by file name."""

    def __init__(self, cache, tr):
        if not Path(cache).exists():
            fail(f'{cache} is missing', 'run tools/teacher/features.py first (weights/README.md, "Reproduce")')
        self.T = tz.Teacher(types.SimpleNamespace(teacher=cache, teacher_whiten=256), tr, torch.device('cpu'))
        meta = json.loads(Path(cache).with_suffix('.json').read_text())
        self.row = {f: i for i, f in enumerate(meta['files'])}
        self.arr = np.load(cache, mmap_mode='r')

    def __call__(self, files, mod):
        m = torch.from_numpy(np.stack([self.arr[self.row[str(f)]] for f in files])).float()
        return self.T.pool(m.mean(dim=(2, 3)), mod)


def source_photos(files):
    """The photo each sketch was drawn from (sketch/C/N-k.png -> photo/C/N.jpg)."""
    return [str(f).rsplit('-', 1)[0].replace('sketch/', 'photo/') + '.jpg' for f in files]


def load_student(path, gdim=None, tdim=None):
    """(model, heads or None, step) of a last.pt or an official .pth, built with its own head counts."""
    st = tz.load_ckpt(path)
    sd = st.get('model', st)
    if 'args' in st:
        heads = (int(st['args']['heads']), int(st['args']['ca_heads']))
    else:
        c = st.get('config') or {}
        heads = (int(c.get('sa_heads', 12)), int(c.get('ca_heads', 8)))
    model = ev.model_from_state_dict(sd, *heads)
    h = None
    if gdim is not None and 'heads' in st:
        dim = model.cfg.dim
        h = torch.nn.ModuleDict({'g': torch.nn.Linear(dim, gdim), 't': torch.nn.Linear(dim, tdim)})
        h.load_state_dict(st['heads'])
    return model, h, st.get('step')


def ret(es, ei, same):
    es, ei = F.normalize(es.float(), dim=1), F.normalize(ei.float(), dim=1)
    r = ev.calculate((1.0 - es @ ei.t()).numpy(), same)
    return round(r['map_all'], 4), round(r['precision_100'], 4)


@torch.no_grad()
def probe_fit(a):
    tr, va = splits()
    tg = Targets(a.teacher, tr)
    rng = np.random.default_rng(0)
    sel = np.sort(rng.choice(len(tr['photo']), 500, replace=False))
    sel_sk = np.sort(rng.choice(len(tr['sketch']), 500, replace=False))
    for p in a.ckpt:
        model, heads, step = load_student(p, tg.T.gdim, tg.T.dim)
        if heads is None:
            fail(f'{p} has no training-only heads', 'fit needs a run\'s OUT/last.pt')
        out = {'probe': 'fit', 'ckpt': p, 'step': step}
        for name, d, rows in (('train_photos_500', tr, sel), ('val_photos_250', va, np.arange(len(va['photo'])))):
            cls = ev.sa_features(model, d['photo'][rows])[:, 0]
            out[name] = round(float(F.cosine_similarity(heads['g'](cls), tg(d['photo_files'][rows], 'photo')).mean()), 4)
        for name, d, rows in (('train_sketches_500', tr, sel_sk), ('val_sketches_250', va, np.arange(len(va['sketch'])))):
            src = np.array(source_photos(d['sketch_files'][rows]))
            ok = np.array([f in tg.row for f in src])
            cls = ev.sa_features(model, d['sketch'][rows][ok])[:, 0]
            out[name] = round(float(F.cosine_similarity(heads['g'](cls), tg(src[ok], 'photo')).mean()), 4)
            out[name + '_n'] = int(ok.sum())
        print(json.dumps(out), flush=True)


@torch.no_grad()
def probe_ridge(a):
    tr, va = splits()
    tg = Targets(a.teacher, tr)
    rng = np.random.default_rng(0)
    sel = np.sort(rng.choice(len(tr['sketch']), 1500, replace=False))
    fit, hold = sel[:1200], sel[1200:]
    files = {'fit': tr['sketch_files'][fit], 'hold': tr['sketch_files'][hold], 'val': va['sketch_files']}
    for p in a.ckpt:
        model, _, step = load_student(p)
        X = {'fit': ev.sa_features(model, tr['sketch'][fit])[:, 0], 'hold': ev.sa_features(model, tr['sketch'][hold])[:, 0],
             'val': ev.sa_features(model, va['sketch'])[:, 0]}
        out = {'probe': 'ridge', 'ckpt': p, 'step': step}
        for name, f in (('own_sketch', lambda fs: tg(fs, 'sketch')), ('source_photo', lambda fs: tg(source_photos(fs), 'photo'))):
            Y = {k: f(v) for k, v in files.items()}
            Xf = torch.cat([X['fit'], torch.ones(len(X['fit']), 1)], 1).double()
            W = torch.linalg.solve(Xf.t() @ Xf + 10.0 * torch.eye(Xf.shape[1], dtype=torch.float64), Xf.t() @ Y['fit'].double())
            for k in ('fit', 'hold', 'val'):
                pred = (torch.cat([X[k], torch.ones(len(X[k]), 1)], 1).double() @ W).float()
                out[f'{name}_{k}'] = round(float(F.cosine_similarity(pred, Y[k], dim=1).mean()), 4)
        print(json.dumps(out), flush=True)


@torch.no_grad()
def probe_space(a):
    tr, va = splits()
    tg = Targets(a.teacher, tr)
    same = (va['sketch_label'][:, None] == va['photo_label'][None, :]).astype(np.int64)
    print(json.dumps({'probe': 'space', 'teacher_whitened': ret(tg(va['sketch_files'], 'sketch'), tg(va['photo_files'], 'photo'), same)}), flush=True)
    for p in a.ckpt:
        model, heads, step = load_student(p, tg.T.gdim, tg.T.dim)
        s, i = ev.sa_features(model, va['sketch'])[:, 0], ev.sa_features(model, va['photo'])[:, 0]
        out = {'probe': 'space', 'ckpt': p, 'step': step, 'cls': ret(s, i, same)}
        if heads is not None:
            out['g_of_cls'] = ret(heads['g'](s), heads['g'](i), same)
        print(json.dumps(out), flush=True)


def probe_layers(a):
    from keras_torch import INPUT_SIZE, load_teacher
    if a.model not in LAYERS:
        fail(f'unknown teacher {a.model!r}', f'one of {", ".join(LAYERS)}')
    path = Path(a.cache_dir) / f'pooled-{a.model}.npz'
    classes = ev.seen_classes()
    d = ev.load_split(ev.ALL128, classes, 128, cache_name='seen104', purpose='cache')
    files = [str(f) for f in d['sketch_files']] + [str(f) for f in d['photo_files']]
    if not path.exists():
        u8 = np.concatenate([d['sketch'], d['photo']])
        net = load_teacher(a.model)
        ts = INPUT_SIZE[a.model]
        acc = {q: [] for q in LAYERS[a.model]}
        t0 = time.time()
        for i in range(0, len(u8), 16):
            x = torch.from_numpy(np.ascontiguousarray(u8[i:i + 16])).permute(0, 3, 1, 2).float() / 255.0
            x = F.interpolate(x, size=(ts, ts), mode='bilinear', align_corners=True)   # nsfwjs's input path
            with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
                o = net(x, outputs=LAYERS[a.model])
            for q in acc:
                acc[q].append(o[q].float().mean(dim=(2, 3)).numpy())
            print(f'{i + len(x)}/{len(u8)} images, {time.time() - t0:.0f} s', file=sys.stderr, flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, files=np.array(files), **{q: np.concatenate(v) for q, v in acc.items()})
    z = np.load(path)
    if [str(f) for f in z['files']] != files:
        fail(f'{path} holds another image list', f'delete it and run again')
    feats = {q: z[q] for q in z.files if q != 'files'}
    for extra in a.with_cache:
        e = np.load(extra)
        if [str(f) for f in e['files']] != files:
            fail(f'{extra} holds another image list', 'make it with this script')
        feats.update({q: e[q] for q in e.files if q != 'files'})
    train, val = ev.split_seen(10, 0)
    cls = np.array([f.split('/')[1] for f in files])
    mod = np.array([f.split('/')[0] for f in files])
    trm, vam = np.isin(cls, train), np.isin(cls, val)
    combos = [c.split('+') for c in a.combos.split(',')] if a.combos else [[q] for q in feats]
    for c in combos:
        if any(q not in feats for q in c):
            fail(f'unknown layer in {"+".join(c)}', f'one of {", ".join(feats)}')
        X = np.concatenate([feats[q] / np.linalg.norm(feats[q], axis=1, keepdims=True) for q in c], 1).astype(np.float32)
        P = tz.PooledTransform({m: torch.from_numpy(X[trm & (mod == m)]) for m in ('sketch', 'photo')}, 256, torch.device('cpu'))
        f = {m: P(torch.from_numpy(X[vam & (mod == m)]), m) for m in ('sketch', 'photo')}
        lab = {m: cls[vam & (mod == m)] for m in f}
        same = (lab['sketch'][:, None] == lab['photo'][None, :]).astype(np.int64)
        print(json.dumps({'probe': 'layers', 'layers': '+'.join(c), 'val_ret': ret(f['sketch'], f['photo'], same)}), flush=True)


@torch.no_grad()
def probe_soup(a):
    _, va = splits()
    same = (va['sketch_label'][:, None] == va['photo_label'][None, :]).astype(np.int64)
    sds, heads = [], None
    for p in a.ckpt:
        model, _, _ = load_student(p)
        if heads not in (None, (model.cfg.sa_heads, model.cfg.ca_heads)):
            fail(f'{p} has other head counts than {a.ckpt[0]}', 'a soup averages runs of one architecture')
        heads = (model.cfg.sa_heads, model.cfg.ca_heads)
        sds.append({k: v.float() for k, v in model.state_dict().items()})
        if sds[-1].keys() != sds[0].keys() or any(v.shape != sds[0][k].shape for k, v in sds[-1].items()):
            fail(f'{p} has other shapes than {a.ckpt[0]}', 'a soup averages runs of one architecture')

    def score(ix):
        sd = {k: sum(sds[i][k] for i in ix) / len(ix) for k in sds[0]}
        m = ev.model_from_state_dict(sd, *heads)
        return ret(ev.sa_features(m, va['sketch'])[:, 0], ev.sa_features(m, va['photo'])[:, 0], same)
    own = [score([i]) for i in range(len(sds))]
    order = sorted(range(len(sds)), key=lambda i: -own[i][0])
    greedy, best = [order[0]], own[order[0]]
    for i in order[1:]:
        r = score(greedy + [i])
        if r[0] >= best[0]:
            greedy, best = greedy + [i], r
    print(json.dumps({'probe': 'soup', 'each': dict(zip(a.ckpt, own)), 'uniform': score(list(range(len(sds)))),
                      'greedy': [a.ckpt[i] for i in greedy], 'greedy_val_ret': best}), flush=True)


@torch.no_grad()
def selftest(a):
    """load_student rebuilds a student with its own head counts (the probes once hard-coded 8 for a 4-head student):
    a tiny 4-head model saved as a run's last.pt and as an official .pth comes back with identical SA outputs, while
    the same weights read as 2 heads give other outputs (so the check can fail)."""
    import tempfile
    torch.manual_seed(0)
    cfg = zse_ref.ZseConfig(dim=16, depth=2, sa_heads=4, mlp_dim=32, grid=4, stem=(4, 8, 12), ca_heads=4, ca_ff=24,
                            anchor_dim=8, rn_hidden=(8, 4), name='probe-selftest')
    model = tz.init_weights_(zse_ref.Model(cfg), 'full').eval()
    u8 = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    ref = ev.sa_features(model, u8)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        torch.save({'model': model.state_dict(), 'args': {'heads': 4, 'ca_heads': 4}, 'step': 7}, f'{d}/last.pt')
        tz.save_official(model, f'{d}/best.pth', 7, 0.0, 0.0)
        for name in ('last.pt', 'best.pth'):
            m, _, _ = load_student(f'{d}/{name}')
            out[name] = {'sa_heads': m.cfg.sa_heads, 'ca_heads': m.cfg.ca_heads,
                         'max_abs_diff': float((ev.sa_features(m, u8) - ref).abs().max())}
        wrong = ev.model_from_state_dict(model.state_dict(), 2, 2)
        out['two_heads_max_abs_diff'] = float((ev.sa_features(wrong, u8) - ref).abs().max())
    print(json.dumps({'probe': 'selftest', **out}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--teacher', default='.cache/teacher/feat-inception_v3-mixed7-s128.npy', help='teacher map cache')
    ap.add_argument('--threads', type=int, default=2)
    sub = ap.add_subparsers(dest='probe', required=True)
    for name in ('fit', 'ridge', 'space', 'soup'):
        s = sub.add_parser(name)
        s.add_argument('ckpt', nargs='+')
    sub.add_parser('selftest', help='checks that a student is rebuilt with its own head counts (no data needed)')
    s = sub.add_parser('layers')
    s.add_argument('--model', default='inception_v3', help='inception_v3 or mobilenet_v2 (exported by tools/teacher/export.mjs)')
    s.add_argument('--cache-dir', default='.cache/exp', help='where the pooled features are kept')
    s.add_argument('--with-cache', action='append', default=[], help="another model's pooled-*.npz to combine with")
    s.add_argument('--combos', default='', help='comma-separated layer sets joined by +, e.g. mixed7+mixed8,mixed8')
    a = ap.parse_args()
    for p in getattr(a, 'ckpt', []) + getattr(a, 'with_cache', []):
        if not Path(p).is_file():
            fail(f'{p} does not exist', 'pass a run\'s OUT/last.pt (best.pth also serves ridge and space)')
    torch.set_num_threads(a.threads)
    {'fit': probe_fit, 'ridge': probe_ridge, 'space': probe_space, 'layers': probe_layers, 'soup': probe_soup, 'selftest': selftest}[a.probe](a)


if __name__ == '__main__':
    main()
