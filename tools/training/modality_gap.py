#!/usr/bin/python3
"""Where does a distilled student lose the unseen classes: in its sketch encoder or its photo encoder? (weights/README.md,
"Diagnosis").

    /usr/bin/python3 tools/training/modality_gap.py weights/zse-sketchy104-small.safetensors [--teacher .cache/teacher/feat-inception_v3-mixed7-s128.npy]

For the training classes (94), the held-out seen classes (val, 10) and the unseen classes (21), three retrievals by
cosine of L2-normalised features: sketch -> photo (the shipped `ret`), sketch -> sketch and photo -> photo (inside one
modality, the query left out: eval_zse.within_metrics), mAP@all each, for the student's SA cls and for the teacher's
pooled feature (raw, centred on each modality's training mean, and whitened as train_zse.py --teacher-whiten 256).
The splits have different numbers of classes, which moves mAP by itself, so each number is also given as the mean
over --draws random subsets of --classes-per-draw classes (val has exactly 10: its one subset is itself); those
columns compare across splits.

A final measurement, not a selection step: run it on shipped weights only. The teacher's unseen features come from
tools/teacher/eval_teacher.py --split unseen21 (kept beside the cache; run that first); its seen-class features from
the cache of tools/teacher/features.py. The student's features are computed here (about 6 minutes on 2 cores).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / 'reference')]
import eval_zse as ev  # noqa: E402
from train_zse import PooledTransform  # noqa: E402

SPLITS = ('train', 'val', 'unseen21')


def fail(msg, hint):
    print(f'error: {msg}\nhint: {hint}', file=sys.stderr)
    sys.exit(2)


def metrics(f, lab, k, draws, seed=0):
    """{'sketch_photo', 'sketch_sketch', 'photo_photo'}: mAP@all on all classes, and the mean over `draws` random
    subsets of `k` classes (one subset, the whole split, when it has k classes or fewer)."""
    def one(keep_s, keep_p):
        fs, fp, ls, lp = f['sketch'][keep_s], f['photo'][keep_p], lab['sketch'][keep_s], lab['photo'][keep_p]
        ns = fs / np.linalg.norm(fs, axis=1, keepdims=True)
        nph = fp / np.linalg.norm(fp, axis=1, keepdims=True)
        sp = ev.calculate(1.0 - ns @ nph.T, (ls[:, None] == lp[None, :]).astype(np.int64))['map_all']
        return {'sketch_photo': sp, 'sketch_sketch': ev.within_metrics(fs, ls)['map_all'],
                'photo_photo': ev.within_metrics(fp, lp)['map_all']}
    classes = np.unique(lab['photo'])
    full = one(np.ones(len(lab['sketch']), bool), np.ones(len(lab['photo']), bool))
    if len(classes) <= k:
        return {'all': full, f'{k}_classes': full}
    rng = np.random.default_rng(seed)
    acc = []
    for _ in range(draws):
        pick = rng.choice(classes, k, replace=False)
        acc.append(one(np.isin(lab['sketch'], pick), np.isin(lab['photo'], pick)))
    return {'all': full, f'{k}_classes': {m: float(np.mean([a[m] for a in acc])) for m in full}}


def selftest():
    """metrics() on made-up features: perfect clusters give 1.0 everywhere, on all classes and on 10-class draws; a
    split of k classes or fewer is its own single subset."""
    rng = np.random.default_rng(0)
    lab = {m: np.repeat(np.arange(30), 5) for m in ('sketch', 'photo')}
    perfect = {m: np.eye(30)[lab[m]] + 1e-3 * rng.normal(size=(150, 30)) for m in lab}
    r = metrics(perfect, lab, 10, 20)
    ok_perfect = all(abs(v - 1.0) < 1e-12 for part in r.values() for v in part.values())
    small = {m: v[:50] for m, v in lab.items()}
    noise = {m: rng.normal(size=(50, 8)) for m in lab}
    r10 = metrics(noise, small, 10, 20)
    print(json.dumps({'perfect_all_one': ok_perfect, 'ten_classes_is_all': r10['all'] == r10['10_classes']}))
    assert ok_perfect and r10['all'] == r10['10_classes']


def main():
    if sys.argv[1:] == ['--selftest']:
        return selftest()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('checkpoint', help='a student: official-layout .pth or sketchgpu .safetensors; or --selftest (no data)')
    ap.add_argument('--teacher', default='.cache/teacher/feat-inception_v3-mixed7-s128.npy')
    ap.add_argument('--whiten', type=int, default=256)
    ap.add_argument('--classes-per-draw', type=int, default=10)
    ap.add_argument('--draws', type=int, default=100)
    ap.add_argument('--val-classes', type=int, default=10)
    ap.add_argument('--split-seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', help='write the result here')
    a = ap.parse_args()
    if not Path(a.checkpoint).is_file():
        fail(f'{a.checkpoint} does not exist', 'pass the shipped weights, weights/zse-sketchy104-small.safetensors')
    kept = Path(a.teacher).with_name(Path(a.teacher).stem + '-unseen21-pooled.npz')
    for p, hint in ((Path(a.teacher), 'run /usr/bin/python3 tools/teacher/features.py first'),
                    (kept, f'run /usr/bin/python3 tools/teacher/eval_teacher.py --split unseen21 --cache {a.teacher} first')):
        if not p.is_file():
            fail(f'{p} does not exist', hint)
    torch.set_num_threads(a.threads)

    train, val = ev.split_seen(a.val_classes, a.split_seed)
    model, _ = ev.load_pth(a.checkpoint)           # in eval mode
    size = model.cfg.image_size
    data = {
        'train': ev.load_split(ev.ALL128, train, size, cache_name=f'train{a.val_classes}s{a.split_seed}', purpose='train'),
        'val': ev.load_split(ev.ALL128, val, size, cache_name=f'val{a.val_classes}s{a.split_seed}', purpose='select'),
        'unseen21': ev.load_split(ev.UNSEEN256, ev.unseen_classes(), size, 'unseen21', purpose='final-eval'),
    }
    labels = {s: {m: data[s][f'{m}_label'] for m in ('sketch', 'photo')} for s in SPLITS}
    feats = {'student': {}}
    for s in SPLITS:
        feats['student'][s] = {m: ev.sa_features(model, data[s][m])[:, 0].numpy().astype(np.float64)
                               for m in ('sketch', 'photo')}
        print(f'student features: {s}', file=sys.stderr, flush=True)

    # the teacher: seen classes from the feature cache (rows named by file), unseen from eval_teacher.py's kept file
    meta = json.load(open(a.teacher[:-4] + '.json'))
    arr = np.load(a.teacher, mmap_mode='r')
    row = {f: i for i, f in enumerate(meta['files'])}
    pooled = {}
    for s in ('train', 'val'):
        pooled[s] = {m: np.stack([arr[row[f]].astype(np.float32).mean(axis=(1, 2)) for f in data[s][f'{m}_files']])
                     for m in ('sketch', 'photo')}
    z = np.load(kept, allow_pickle=False)
    pooled['unseen21'] = {m: z[m].astype(np.float32) for m in ('sketch', 'photo')}
    for m in ('sketch', 'photo'):
        if len(pooled['unseen21'][m]) != len(labels['unseen21'][m]):
            fail(f'{kept} has {len(pooled["unseen21"][m])} {m} rows, the split {len(labels["unseen21"][m])}',
                 'delete it and run tools/teacher/eval_teacher.py --split unseen21 again')
    mean = {m: pooled['train'][m].mean(0) for m in ('sketch', 'photo')}
    wt = PooledTransform({m: torch.from_numpy(pooled['train'][m]) for m in ('sketch', 'photo')}, a.whiten,
                         torch.device('cpu'))
    for s in SPLITS:
        feats.setdefault('teacher raw', {})[s] = {m: pooled[s][m].astype(np.float64) for m in ('sketch', 'photo')}
        feats.setdefault('teacher centred', {})[s] = {m: (pooled[s][m] - mean[m]).astype(np.float64)
                                                      for m in ('sketch', 'photo')}
        feats.setdefault('teacher whitened', {})[s] = {
            m: wt(torch.from_numpy(np.ascontiguousarray(pooled[s][m])), m).numpy().astype(np.float64)
            for m in ('sketch', 'photo')}

    k = a.classes_per_draw
    res = {'checkpoint': str(a.checkpoint), 'teacher': a.teacher, 'draws': a.draws, 'classes_per_draw': k,
           'chance': {}, 'results': {}}
    rng = np.random.default_rng(1)
    for s in SPLITS:
        noise = {m: rng.normal(size=(len(labels[s][m]), 64)) for m in ('sketch', 'photo')}
        res['chance'][s] = metrics(noise, labels[s], k, a.draws)
        for name in feats:
            res['results'].setdefault(name, {})[s] = metrics(feats[name][s], labels[s], k, a.draws)
        print(f'metrics: {s}', file=sys.stderr, flush=True)

    cols = [(s, m) for m in ('sketch_photo', 'sketch_sketch', 'photo_photo') for s in SPLITS]
    print(f'mAP@all, mean over {a.draws} draws of {k} classes (all classes in brackets)')
    print('| features | ' + ' | '.join(f'{m.replace("_", "->")} {s}' for s, m in cols) + ' |')
    print('|---' * (len(cols) + 1) + '|')
    for name, r in list(res['results'].items()) + [('chance (random features)', res['chance'])]:
        print(f'| {name} | ' + ' | '.join(f'{r[s][f"{k}_classes"][m]:.3f} ({r[s]["all"][m]:.3f})' for s, m in cols) + ' |')
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()
