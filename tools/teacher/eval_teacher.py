#!/usr/bin/python3
"""The teacher alone as a retriever, the baseline the distilled students are compared with (issue 20's table):
spatially averaged --layer features, L2-normalised, cosine ranking; 'centred' subtracts each modality's mean feature
over the seen training images (from the feature cache, never from the evaluated images); 'whitened' is what
train_zse.py --teacher-whiten K makes of the pooled feature (train_zse.PooledTransform, fitted on the same training
rows: signed square root, centred, half-whitened on K principal directions; K = --whiten, default 256).
The unseen split's pooled features are kept in .cache/teacher/ (keyed by the cache's name), so a second call is quick.

    /usr/bin/python3 tools/teacher/eval_teacher.py --split val        # the 10 held-out seen classes (from the cache)
    /usr/bin/python3 tools/teacher/eval_teacher.py --split unseen21   # a final measurement: runs the teacher (~10 min)

Metrics: tools/training/eval_zse.py's (the engine's), sketch -> photo, and photo -> photo (P@10) for reference;
sketch_sketch and photo_photo: retrieval inside each modality (eval_zse.within_metrics, as eval_zse.py --within).
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path[:0] = [os.path.join(os.path.dirname(HERE), 'training'), os.path.join(os.path.dirname(HERE), 'reference')]
import eval_zse as ev  # noqa: E402
from train_zse import PooledTransform  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--cache', default='.cache/teacher/feat-inception_v3-mixed7-s128.npy')
ap.add_argument('--split', choices=['val', 'unseen21'], default='val')
ap.add_argument('--val-classes', type=int, default=10)
ap.add_argument('--split-seed', type=int, default=0)
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--whiten', type=int, default=256)
ap.add_argument('--json', default='')
a = ap.parse_args()
torch.set_num_threads(a.threads)

meta = json.load(open(a.cache[:-4] + '.json'))
arr = np.load(a.cache, mmap_mode='r')
train, val = ev.split_seen(a.val_classes, a.split_seed)
trs = set(train)
rows = [i for i, f in enumerate(meta['files']) if f.split('/')[1] in trs]
mean, train_pooled = {}, {}
for mod in ('sketch', 'photo'):
    r = [i for i in rows if meta['modality'][i] == mod]
    train_pooled[mod] = np.stack([arr[i].astype(np.float32).mean(axis=(1, 2)) for i in r])
    mean[mod] = train_pooled[mod].mean(axis=0)
whiten = PooledTransform({m: torch.from_numpy(v) for m, v in train_pooled.items()}, a.whiten, torch.device('cpu'))

if a.split == 'val':
    vs = set(val)
    ev.check_purpose(ev.ALL128, val, 'select')
    feats, labels = {}, {}
    for mod in ('sketch', 'photo'):
        r = [i for i, f in enumerate(meta['files']) if f.split('/')[1] in vs and meta['modality'][i] == mod]
        feats[mod] = np.stack([arr[i].astype(np.float32).mean(axis=(1, 2)) for i in r])
        labels[mod] = np.array([val.index(meta['files'][i].split('/')[1]) for i in r])
else:
    from keras_torch import INPUT_SIZE, load_teacher
    d = ev.load_split(ev.UNSEEN256, ev.unseen_classes(), meta['size'], cache_name='unseen21', purpose='final-eval')
    kept = Path(a.cache).with_name(Path(a.cache).stem + '-unseen21-pooled.npz')
    feats, labels = {}, {}
    if kept.exists():
        z = np.load(kept, allow_pickle=False)
        feats = {m: z[m] for m in ('sketch', 'photo')}
        labels = {m: d[f'{m}_label'] for m in feats}
    net = None if feats else load_teacher(meta['model'])
    for mod in ('sketch', 'photo') if net is not None else ():
        out = []
        for i in range(0, len(d[mod]), 16):
            x = torch.from_numpy(np.ascontiguousarray(d[mod][i:i + 16])).permute(0, 3, 1, 2).float() / 255.0
            x = F.interpolate(x, size=(INPUT_SIZE[meta['model']],) * 2, mode='bilinear', align_corners=True)
            with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=meta['bf16']):
                out.append(net(x, outputs=[meta['layer']])[meta['layer']].float().mean(dim=(2, 3)).numpy())
            print(f'{mod} {i + len(x)}/{len(d[mod])}', file=sys.stderr, flush=True)
        feats[mod] = np.concatenate(out)
        labels[mod] = d[f'{mod}_label']
    if net is not None:
        np.savez(kept, **feats)

res = {'split': a.split, 'teacher': f'{meta["model"]} {meta["layer"]}', 'preprocess_size': meta['size'],
       'whiten': whiten.dim}
for kind in ('raw', 'centred', 'whitened'):
    f = {m: feats[m] - (mean[m] if kind == 'centred' else 0) for m in feats}
    if kind == 'whitened':
        f = {m: whiten(torch.from_numpy(np.ascontiguousarray(v)), m).numpy() for m, v in feats.items()}
    f = {m: v / np.linalg.norm(v, axis=1, keepdims=True) for m, v in f.items()}
    dist = -(f['sketch'] @ f['photo'].T)
    same = (labels['sketch'][:, None] == labels['photo'][None, :]).astype(np.int64)
    r = ev.calculate(dist, same)
    for m in ('sketch', 'photo'):   # inside one modality, as eval_zse.py --within gives for a student
        r[f'{m}_{m}'] = ev.within_metrics(f[m].astype(np.float64), labels[m])
    r['photo_photo_p10'] = r['photo_photo']['precision_10']
    res[kind] = r
print(json.dumps(res, indent=1))
if a.json:
    open(a.json, 'w').write(json.dumps(res, indent=1) + '\n')
