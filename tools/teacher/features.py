#!/usr/bin/python3
"""Caches the teacher's dense feature maps for the training images of the 104 seen Sketchy classes only.

    /usr/bin/python3 tools/teacher/features.py [--model inception_v3] [--layer mixed7] [--size 128] [--threads 2]

Each seen-class image of ../shared/data/sketchy/all125-128 is preprocessed exactly as the engine (and
tools/training/train_zse.py) does, at --size (the data's own 128 px; the student sees the same picture at its input size, so
both grids cover the same square), then fed to the teacher as nsfwjs feeds it ([0, 1], bilinear align-corners resize
to 299 for InceptionV3) with bfloat16 autocast (oneDNN; Debian's torch has no fast float32 BLAS: 4-7x faster, cosine to
the float32 maps printed at the start). The --layer output ([C, h, w], 768 x 17 x 17 for mixed7) is stored as float16.

Training augments on the fly (random resized crop, flip, rotation, shear: one affine map per image,
train_zse.augment); the distillation target for an augmented view is the cached map warped by the same affine map
(grid_sample on the feature grid), so one teacher pass per image serves every augmentation. How close that is to
running the teacher on the augmented image is measured by --check-warp (printed, and in the model card).

Output (.cache/teacher/): feat-<model>-<layer>-s<size>.npy (float16 [N, C, h, w], sketches then photos) and
feat-<model>-<layer>-s<size>.json (files, modality, class of each row, the seen-class list). Resumable: rows are
written in chunks and a partial run continues where it stopped. The unseen classes are never read (tools/training/splits.py;
test/training.honesty.test.ts).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path[:0] = [os.path.join(os.path.dirname(HERE), 'training'), os.path.join(os.path.dirname(HERE), 'reference')]
from keras_torch import INPUT_SIZE, load_teacher  # noqa: E402
import eval_zse as ev  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
ap.add_argument('--model', default='inception_v3')
ap.add_argument('--layer', default='mixed7')
ap.add_argument('--size', type=int, default=128, help='preprocessing size (the engine pipeline) before the teacher')
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--batch', type=int, default=16)
ap.add_argument('--fp32', action='store_true', help='float32 teacher (slow on Debian torch)')
ap.add_argument('--limit', type=int, default=0, help='first N rows only (smoke test)')
ap.add_argument('--check-warp', type=int, default=0, help='measure warped-map vs teacher-on-augmented on N images')
ap.add_argument('--out', default=os.path.join('.cache', 'teacher'))
a = ap.parse_args()
torch.set_num_threads(a.threads)


def to_teacher_input(u8, size):
    """uint8 [N,S,S,3] -> float [N,3,size,size]: /255 then align-corners bilinear (nsfwjs's own input path)."""
    x = torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float() / 255.0
    return F.interpolate(x, size=(size, size), mode='bilinear', align_corners=True)


def run_teacher(net, x):
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=not a.fp32):
        return net(x, outputs=[a.layer])[a.layer].float()


def main():
    classes = ev.seen_classes()
    unseen = set(ev.unseen_classes())
    d = ev.load_split(ev.ALL128, classes, a.size, cache_name='seen104', purpose='cache')
    files = [str(f) for f in d['sketch_files']] + [str(f) for f in d['photo_files']]
    for f in files:
        assert f.split('/')[1] not in unseen, f
    u8 = np.concatenate([d['sketch'], d['photo']])
    n = len(files) if not a.limit else a.limit
    net = load_teacher(a.model)
    tsize = INPUT_SIZE[a.model]
    probe = run_teacher(net, to_teacher_input(u8[:2], tsize))
    c, h, w = probe.shape[1:]
    if not a.fp32:
        with torch.no_grad():
            ref = net(to_teacher_input(u8[:2], tsize), outputs=[a.layer])[a.layer]
        cos = F.cosine_similarity(ref.flatten(2), probe.flatten(2), dim=1).min().item()
        gcos = F.cosine_similarity(ref.mean((2, 3)), probe.mean((2, 3)), dim=1).min().item()
        print(f'bfloat16 vs float32 teacher on 2 images: min cosine per cell {cos:.5f}, pooled {gcos:.6f}', flush=True)
    if a.check_warp:
        check_warp(net, u8, tsize)
        return
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, f'feat-{a.model}-{a.layer}-s{a.size}')
    meta = {'model': a.model, 'layer': a.layer, 'size': a.size, 'teacher_input': tsize, 'shape': [len(files), c, h, w],
            'dtype': 'float16', 'bf16': not a.fp32, 'classes': classes,
            'files': files, 'modality': ['sketch'] * len(d['sketch']) + ['photo'] * len(d['photo']),
            'label': [int(x) for x in d['sketch_label']] + [int(x) for x in d['photo_label']], 'done': 0}
    if os.path.exists(stem + '.json'):
        old = json.load(open(stem + '.json'))
        if old['files'] == files and old['shape'] == meta['shape']:
            meta['done'] = old['done']
    mode = 'r+' if meta['done'] and os.path.exists(stem + '.npy') else 'w+'
    arr = np.lib.format.open_memmap(stem + '.npy', mode=mode, dtype=np.float16, shape=tuple(meta['shape']))
    t0 = time.time()
    start = meta['done']
    for i in range(start, n, a.batch):
        j = min(n, i + a.batch)
        arr[i:j] = run_teacher(net, to_teacher_input(u8[i:j], tsize)).numpy().astype(np.float16)
        arr.flush()
        meta['done'] = j
        with open(stem + '.json.tmp', 'w') as f:
            json.dump(meta, f)
        os.replace(stem + '.json.tmp', stem + '.json')
        el = time.time() - t0
        print(f'{j}/{n} rows, {el / (j - start) * 1000:.0f} ms/image, eta {(n - j) * el / (j - start) / 60:.1f} min',
              flush=True)
    print(f'done: {stem}.npy {tuple(meta["shape"])}', flush=True)


def check_warp(net, u8, tsize):
    """Warped cached map vs the teacher run on the augmented picture (the approximation training relies on)."""
    sys.path[:0] = [os.path.join(os.path.dirname(HERE), 'training'), os.path.join(os.path.dirname(HERE), 'reference')]
    import train_zse as tz
    gen = torch.Generator().manual_seed(0)
    n = a.check_warp
    idx = np.linspace(0, len(u8) - 1, n).astype(int)
    out = {}
    for sketch in (True, False):
        sel = idx[idx < 2600] if sketch else idx[idx >= 2600]
        x = ev.to_input(u8[sel])
        g0 = gen.get_state()
        y = tz.augment(x, gen, sketch=sketch, p=1.0)
        gen.set_state(g0)
        theta, _ = tz.augment_theta(len(sel), gen, sketch=sketch, p=1.0)
        t_aug = run_teacher(net, F.interpolate((y + 1) / 2, size=(tsize, tsize), mode='bilinear', align_corners=True))
        t_map = run_teacher(net, to_teacher_input(u8[sel], tsize))
        warped = tz.warp_map(t_map, theta)
        pooled = F.cosine_similarity(t_aug.mean((2, 3)), warped.mean((2, 3)), dim=1)
        cells = F.cosine_similarity(F.adaptive_avg_pool2d(t_aug, 7).flatten(2), F.adaptive_avg_pool2d(warped, 7).flatten(2), dim=1)
        base = F.cosine_similarity(t_aug.mean((2, 3)), t_map.mean((2, 3)), dim=1)
        out['sketch' if sketch else 'photo'] = {'images': int(len(sel)), 'pooled_cosine_mean': pooled.mean().item(),
                                                'cell7x7_cosine_mean': cells.mean().item(),
                                                'unwarped_pooled_cosine_mean': base.mean().item()}
    print(json.dumps({'check_warp': out}), flush=True)


if __name__ == '__main__':
    main()
