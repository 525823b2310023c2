#!/usr/bin/python3
"""Train a small ZSE-SBIR from scratch on the 104 seen Sketchy classes, in the official checkpoint format. CPU by
default where no GPU is visible; CUDA when torch sees one (--device), with the same sampling and augmentation
random numbers (drawn on the CPU generator either way).

Run with Debian's /usr/bin/python3 (torch 1.13 CPU, numpy, Pillow, OpenCV):

    nice -n 10 /usr/bin/python3 tools/training/train_zse.py --out .cache/train --max-minutes 66 --final-eval   # the shipped run
                                                                                   # (weights/README.md)
    /usr/bin/python3 tools/training/train_zse.py --steps 20 --val-every 0 --out .cache/train-probe   # speed probe

The architecture is ZSE-SBIR's (tools/reference/zse_ref.py, the official module names and state_dict keys): conv-stem + 16 px
patch tokenizer, pre-LN ViT (SA), one bidirectional CA layer, the 2x2/s2 anchor conv after the raw view, anchor
cosine matrix, RN MLP. Only the sizes are smaller (see --help). Losses as the official train.py (§10):
2 x TripletMarginLoss(margin 1, p 2) on the CA cls outputs (sk_pos, im_pos, im_neg) + 4 x MSE(RN score, 0.99/0.01).

Deviations from the official recipe, because this trains from scratch on 2,350 + 2,350 images on 2 CPU cores:
- no ImageNet init (none is available); ViT-style init (trunc-normal 0.02 linears, zero biases);
- augmentation (the reference has none): random resized crop, horizontal flip, small rotation/shear, photo colour
  jitter; sketches are padded with white;
- no dropout inside SA by default (--sa-dropout; the official has 0.1 there; CA and RN keep 0.1);
- AdamW with linear warmup + cosine decay, lr 5e-4 peak, weight decay 0.05 (not on biases, norms, cls, pos),
  gradient-norm clipping at 1.0; batch = 24 triplet groups (96 images) instead of 15;
- bfloat16 autocast in SA (--bf16 1; oneDNN's bf16 path, while Debian's torch does float32 matmuls with the slow
  reference BLAS); CA, RN, weights, optimiser and losses stay float32 (--bf16 2 also casts CA/RN: the RN's anchor
  cosines then lose their small differences);
- model selection on 10 held-out *seen* classes (never the unseen ones): best mean of ret and rn mAP@all.

Opt-in experiments (off by default, so the defaults reproduce the shipped weights; what each did is in
weights/README.md, "Later attempts"): --stem-init full, --pair-frac (positive photo = the sketch's own source photo),
--ret-loss (cross-modal supervised contrastive on the SA cls), --inst-loss (instance InfoNCE on the SA cls),
--proxy-loss (cosine-classifier cross-entropy on the SA cls), --tri-loss / --rn-loss (the official weights 2 / 4);
the teacher options (--teacher, --distill-*), --init growth and --stem-graft (a stem fitted to an early teacher layer
by tools/training/stem_fit.py, run O) are described in weights/README.md, run by run.

Data: ../shared/data/sketchy/all125-128/{photo,sketch}/<class>/ for the 104 classes not in
../shared/data/splits/test_class_sketchy21.txt, preprocessed exactly as the engine does at the model's input size
(tools/training/eval_zse.py). The unseen classes are never read here, except by --final-eval after training.

Outputs in --out: log.jsonl (one JSON record per logged step / validation), last.pt (resumable state),
best.pth and final .pth in the official format {'model', 'epoch', 'map_all', 'precision_100', 'config'},
summary.json.
"""
import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent
sys.path[:0] = [str(TOOLS / 'training'), str(TOOLS / 'reference')]
import zse_ref  # noqa: E402
import eval_zse as ev  # noqa: E402


# ----------------------------------------------------------------------------------------------------------------
def build_config(a):
    assert a.size % 16 == 0, 'the engine needs 16 px patches: --size must be a multiple of 16'
    grid = a.size // 16
    anchors = (grid // 2) ** 2
    # the official RN is 2401 -> 343 -> 49 -> 1 for 49 anchors (A^1.5, A); scale the same way
    rn_hidden = (int(round(anchors ** 1.5)), anchors) if a.rn_hidden is None else tuple(a.rn_hidden)
    return zse_ref.ZseConfig(dim=a.dim, depth=a.depth, sa_heads=a.heads, mlp_dim=a.mlp, grid=grid,
                             stem=tuple(a.stem), ca_heads=a.ca_heads, ca_ff=a.ca_ff, anchor_dim=a.anchor_dim,
                             rn_hidden=rn_hidden, name='sketchy104-small')


def init_weights_(model, stem_init='half'):
    for name, m in model.named_modules():
        if name.startswith('rn.'):
            continue                                                # RN MLP: PyTorch's default init, as the official
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            if name.startswith('sa.model.scale') and stem_init == 'full':
                # He init on fan-in: the stem's output has about the patch conv's scale (std ~0.5 on our inputs),
                # so the token average is not dominated by the linear patch conv
                last = name.endswith('.6')
                nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='linear' if last else 'relu')
            elif name.startswith('sa.model.scale'):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            else:
                nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    nn.init.trunc_normal_(model.sa.model.pos_embedding, std=0.02)
    nn.init.trunc_normal_(model.sa.model.cls, std=0.02)
    if stem_init == 'half':
        # the first shipped run's init: fan-out He, last conv halved (stem output std ~0.06, 8x below the patch conv)
        with torch.no_grad():
            model.sa.model.scale.seq[6].weight.mul_(0.5)
    return model


def param_groups(model, wd, no_decay_suffixes=('pos_embedding', '.cls')):
    """AdamW groups: weight decay on matrices only, not on biases, norms or the named embeddings; ZSE's dead CA
    clone (never used in forward, §4.2) left out. train_caan.py uses it with its own suffixes."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if n.startswith(zse_ref.DEAD_PREFIX):
            continue
        if p.dim() <= 1 or n.endswith(tuple(no_decay_suffixes)):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{'params': decay, 'weight_decay': wd}, {'params': no_decay, 'weight_decay': 0.0}]


def lr_at(step, a, progress=None):
    """Linear warmup over a.warmup steps to a.lr, then cosine to a.min_lr at a.steps (shared with train_caan.py).
    progress: the fraction of a time budget spent (--time-budget); the cosine follows whichever is further along."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    t = (step - a.warmup) / max(1, a.steps - a.warmup)
    if progress is not None:
        t = max(t, progress)
    return a.min_lr + (a.lr - a.min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


# ----------------------------------------------------------------------------------------------------------------
# Augmentation on batches (torch, seeded generator)
# ----------------------------------------------------------------------------------------------------------------
def augment_theta(n, gen, sketch, p=0.85, device='cpu'):
    """The geometric half of `augment`: per image the affine map (output coords -> input coords, affine_grid's
    normalised convention) and whether augmentation is on. Draws exactly augment's first random numbers."""
    U = lambda *s: torch.rand(*s, generator=gen).to(device)  # noqa: E731  (CPU stream on any device)
    on = (U(n) < p).float()
    scale = 0.6 + 0.4 * U(n)
    logr = (U(n) * 2 - 1) * math.log(4 / 3)
    ar = torch.exp(logr)
    sw = torch.sqrt(scale * ar).clamp(max=1.0)                     # crop width / full (in normalised coords)
    sh = torch.sqrt(scale / ar).clamp(max=1.0)
    tx = (U(n) * 2 - 1) * (1 - sw)
    ty = (U(n) * 2 - 1) * (1 - sh)
    rot = (U(n) * 2 - 1) * math.radians(15 if sketch else 10)
    shear = (U(n) * 2 - 1) * 0.1
    flip = torch.where(U(n) < 0.5, -1.0, 1.0)
    # identity where off
    sw = on * sw + (1 - on)
    sh = on * sh + (1 - on)
    tx, ty, rot, shear = on * tx, on * ty, on * rot, on * shear
    flip = on * flip + (1 - on)
    c, s = torch.cos(rot), torch.sin(rot)
    # output coords -> input coords: A = T * R * Shear * Scale * Flip
    a11 = sw * flip * c
    a12 = sh * (shear * c - s)
    a21 = sw * flip * s
    a22 = sh * (shear * s + c)
    theta = torch.stack([torch.stack([a11, a12, tx], 1), torch.stack([a21, a22, ty], 1)], 1)
    return theta, on


def warp_map(fmap, theta, size=None):
    """The augmentation's affine map applied to a feature map [N,C,h,w] (the teacher's, computed once on the
    unaugmented picture): the distillation target of the augmented view. Border padding (the picture's border is
    background: white for sketches). size: output (h, w), default the input's."""
    h, w = size or fmap.shape[-2:]
    grid = F.affine_grid(theta.to(fmap.dtype), [fmap.shape[0], fmap.shape[1], h, w], align_corners=False)
    return F.grid_sample(fmap, grid, mode='bilinear', padding_mode='border', align_corners=False)


def augment(x, gen, sketch, p=0.85, return_theta=False):
    """x: float [N,3,S,S] in [-1,1]. Random resized crop (scale 0.6..1, aspect 3/4..4/3), flip, rotation
    (+-10 deg photos, +-15 deg sketches), shear (+-0.1); photo brightness/contrast/saturation jitter.
    Sketches are padded with white (+1), photos with their border. return_theta: also the affine maps."""
    n = x.size(0)
    U = lambda *s: torch.rand(*s, generator=gen).to(x.device)  # noqa: E731  (CPU stream on any device)
    theta, on = augment_theta(n, gen, sketch, p, x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if sketch:
        y = F.grid_sample(x - 1.0, grid, mode='bilinear', padding_mode='zeros', align_corners=False) + 1.0
    else:
        y = F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)
        img = (y + 1) / 2
        b = 1 + (U(n, 1, 1, 1) * 2 - 1) * 0.25 * on.view(n, 1, 1, 1)
        ct = 1 + (U(n, 1, 1, 1) * 2 - 1) * 0.25 * on.view(n, 1, 1, 1)
        sat = 1 + (U(n, 1, 1, 1) * 2 - 1) * 0.25 * on.view(n, 1, 1, 1)
        img = img * b
        m = img.mean(dim=(1, 2, 3), keepdim=True)
        img = (img - m) * ct + m
        g = img.mean(dim=1, keepdim=True)
        img = (img - g) * sat + g
        y = img.clamp(0, 1) * 2 - 1
    return (y, theta) if return_theta else y


# ----------------------------------------------------------------------------------------------------------------
class TripletSampler:
    """Official TrainSet-style groups, deterministic from a numpy RandomState: per group a class c and another
    class c2; sk and sk_neg are two sketches of c, im a photo of c, im_neg a photo of c2. With pair_frac > 0, that
    fraction of groups takes sk among the sketches whose source photo is in the set (Sketchy sketches are drawn from
    a photo: `<photo>-<n>.png`) and im = that photo (still a photo of c, so the official losses are unchanged)."""

    def __init__(self, sk_label, im_label, seed, sk_files=None, im_files=None, pair_frac=0.0):
        self.rng = np.random.RandomState(seed)
        self.ncls = int(sk_label.max()) + 1
        self.sk_by = [np.where(sk_label == c)[0] for c in range(self.ncls)]
        self.im_by = [np.where(im_label == c)[0] for c in range(self.ncls)]
        self.pair_frac = pair_frac
        self.src = np.full(len(sk_label), -1, dtype=np.int64)       # sketch index -> its source photo index
        if sk_files is not None and im_files is not None:
            where = {Path(str(f)).stem: i for i, f in enumerate(im_files)}
            for i, f in enumerate(sk_files):
                self.src[i] = where.get(Path(str(f)).stem.rsplit('-', 1)[0], -1)
        self.paired_by = [idx[self.src[idx] >= 0] for idx in self.sk_by]

    def sample(self, b):
        r = self.rng
        c = r.randint(0, self.ncls, b)
        c2 = (c + r.randint(1, self.ncls, b)) % self.ncls
        sk = np.array([r.choice(self.sk_by[k]) for k in c])
        skn = np.array([r.choice(self.sk_by[k]) for k in c])
        im = np.array([r.choice(self.im_by[k]) for k in c])
        imn = np.array([r.choice(self.im_by[k]) for k in c2])
        if self.pair_frac > 0:
            for g in np.where(r.rand(b) < self.pair_frac)[0]:
                if len(self.paired_by[c[g]]):
                    sk[g] = r.choice(self.paired_by[c[g]])
                    im[g] = self.src[sk[g]]
        return sk, skn, im, imn


def cross_modal_supcon(z_sk, y_sk, z_im, y_im, temp):
    """Supervised contrastive loss across modalities on L2-normalised SA cls embeddings (the ret embedding): each
    sketch against every photo of the batch, positives = the photos of its class, and symmetrically each photo
    against every sketch. Mean over anchors of -mean_{pos} log softmax."""
    def one(a, ya, b, yb):
        logits = a @ b.t() / temp
        logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        pos = (ya[:, None] == yb[None, :]).float()
        return -((logp * pos).sum(1) / pos.sum(1).clamp(min=1)).mean()
    return 0.5 * (one(z_sk, y_sk, z_im, y_im) + one(z_im, y_im, z_sk, y_sk))


def instance_nce(z_sk, src_sk, z_im, id_im, temp):
    """InfoNCE between each sketch and its own source photo among the batch's photos (and each such photo against
    the batch's sketches): the instance-level signal of Sketchy's paired sketches. Rows without their photo in the
    batch are left out."""
    pos = (src_sk[:, None] == id_im[None, :]) & (src_sk[:, None] >= 0)
    logits = z_sk @ z_im.t() / temp
    terms = []
    for lg, ps in ((logits, pos), (logits.t(), pos.t())):
        rows = ps.any(1)
        if rows.any():
            lg, ps = lg[rows], ps[rows].float()
            logp = lg - torch.logsumexp(lg, dim=1, keepdim=True)
            terms.append(-((logp * ps).sum(1) / ps.sum(1)).mean())
    return sum(terms) / len(terms) if terms else torch.zeros(())


# ----------------------------------------------------------------------------------------------------------------
# Distillation from the teacher CNN (tools/teacher/: nsfwjs's ImageNet-trained InceptionV3, cached dense maps)
# ----------------------------------------------------------------------------------------------------------------
class PooledTransform:
    """What the pooled teacher feature becomes before it is a --distill-global / --distill-rel / --distill-cross
    target. whiten=0 (runs E-H): the modality's mean over the training rows subtracted. whiten=K: signed square
    root, the modality's mean (of those) subtracted, then the top K principal directions of the centred training
    rows of both modalities, each scaled by 1/sqrt(its singular value) (half-way whitening). Fitted on the training
    rows only. On the 10 held-out seen classes the teacher alone ranks sketch -> photo with K = 256 at mAP@all 0.232 /
    P@100 0.212 against 0.190 / 0.148 centred (weights/README.md, run I)."""

    def __init__(self, pooled, whiten, dev):
        self.whiten = int(whiten)
        if not self.whiten:
            self.mean = {m: v.float().mean(0).to(dev) for m, v in pooled.items()}
            self.dim = int(next(iter(pooled.values())).shape[1])
            return
        y = {m: self.ssqrt(v.double()) for m, v in pooled.items()}
        self.mean = {m: v.mean(0) for m, v in y.items()}
        z = torch.cat([y[m] - self.mean[m] for m in y])
        _, sv, vt = torch.linalg.svd(z, full_matrices=False)
        k = min(self.whiten, len(sv))
        self.w = (vt[:k].t() / sv[:k].sqrt()).float().to(dev)
        self.mean = {m: v.float().to(dev) for m, v in self.mean.items()}
        self.dim = k

    @staticmethod
    def ssqrt(x):
        return x.sign() * x.abs().sqrt()

    def __call__(self, pooled, mod):
        """pooled [N,C] raw pooled teacher features of one modality ('sketch' or 'photo') -> targets [N,dim]."""
        if not self.whiten:
            return pooled - self.mean[mod][None]
        return (self.ssqrt(pooled) - self.mean[mod][None]) @ self.w


class Teacher:
    """The cached teacher maps of the training images (seen classes only; the cache's own file list is checked
    against the split) and the per-modality mean of their pooled features over the training rows."""

    def __init__(self, a, tr, dev):
        meta = json.loads(Path(a.teacher).with_suffix('.json').read_text())
        if meta['done'] != meta['shape'][0]:
            raise SystemExit(f'error: {a.teacher} is incomplete ({meta["done"]} of {meta["shape"][0]} rows)\n'
                             'hint: run tools/teacher/features.py again (it resumes)')
        unseen = set(ev.unseen_classes())
        bad = [f for f in meta['files'] if f.split('/')[1] in unseen]
        assert not bad, f'teacher cache holds unseen-class files: {bad[:3]}'
        row = {f: i for i, f in enumerate(meta['files'])}
        arr = np.load(a.teacher, mmap_mode='r')
        self.dev = dev
        self.maps = {}
        for mod in ('sketch', 'photo'):
            idx = np.array([row[str(f)] for f in tr[f'{mod}_files']])
            self.maps[mod] = torch.from_numpy(np.ascontiguousarray(arr[np.sort(idx)]))[np.argsort(np.argsort(idx))]
        self.dim = int(meta['shape'][1])                             # channels of the map (token targets)
        self.mean = {m: v.float().mean(dim=(0, 2, 3)).to(dev) for m, v in self.maps.items()}
        self.pool = PooledTransform({m: v.float().mean(dim=(2, 3)) for m, v in self.maps.items()},
                                    a.teacher_whiten, dev)
        self.gdim = self.pool.dim                                     # width of the pooled targets
        print(f'teacher: {meta["model"]} {meta["layer"]} {tuple(meta["shape"][1:])}, train rows '
              f'{len(self.maps["sketch"])} sketches + {len(self.maps["photo"])} photos', flush=True)

    def view_maps(self, mod, i, th):
        """The raw teacher maps [N,C,h,w] of augmented views: the cached maps warped by the views' affine maps."""
        return warp_map(self.maps[mod][torch.from_numpy(i)].to(self.dev).float(), th)

    def map_targets(self, t, mod, grid):
        """Raw maps [N,C,h,w] of one modality -> pooled targets [N,gdim] (PooledTransform) and grid-cell targets
        [N,grid*grid,C] (modality mean subtracted)."""
        w = t - self.mean[mod][None, :, None, None]
        return self.pool(t.mean(dim=(2, 3)), mod), F.adaptive_avg_pool2d(w, grid).flatten(2).transpose(1, 2)

    def targets(self, i_sk, th_sk, i_im, th_im, grid):
        """For the augmented views: pooled targets [N,gdim] (PooledTransform) and grid-cell targets
        [N,grid*grid,C] (modality mean subtracted), sketches first (the order of the SA batch)."""
        gs, cs = [], []
        for mod, i, th in (('sketch', i_sk, th_sk), ('photo', i_im, th_im)):
            g, c = self.map_targets(self.view_maps(mod, i, th), mod, grid)
            gs.append(g)
            cs.append(c)
        return torch.cat(gs), torch.cat(cs)

    def photo_pooled_raw(self, i_im):
        """The raw pooled teacher feature of whole, unaugmented training photos [N,C]."""
        return self.maps['photo'][torch.from_numpy(i_im)].to(self.dev).float().mean(dim=(2, 3))

    def photo_pooled(self, i_im):
        """The pooled teacher feature of whole, unaugmented training photos (through PooledTransform) [N,gdim]:
        the --distill-cross target of the sketches drawn from them."""
        return self.pool(self.photo_pooled_raw(i_im), 'photo')


class LiveTeacher:
    """The teacher run on each augmented view itself (--teacher-net DIR: its topology and weights, e.g. trimmed by
    tools/teacher/trim.py): exact targets instead of the cache's warped maps, cheap on a GPU. Same targets as
    Teacher.targets: pooled [N,C] and grid cells [N,grid*grid,C], the per-modality mean of the pooled feature over
    the (unaugmented) training rows subtracted."""

    def __init__(self, a, sk_all, im_all, dev):
        sys.path.insert(0, str(TOOLS / 'teacher'))
        from keras_torch import INPUT_SIZE, load_teacher
        self.net = load_teacher(a.teacher_model, a.teacher_net).to(dev)
        self.layer, self.size, self.dev, self.im_all = a.teacher_layer, INPUT_SIZE[a.teacher_model], dev, im_all
        pooled = {}
        for mod, x in (('sketch', sk_all), ('photo', im_all)):
            if a.teacher_mean_rows:                   # a strided subset (quick CPU smoke runs)
                x = x[::max(1, len(x) // a.teacher_mean_rows)]
            pooled[mod] = torch.cat([self.maps(x[i:i + 128].to(dev)).mean(dim=(2, 3)) for i in range(0, len(x), 128)])
        self.mean = {m: v.mean(0) for m, v in pooled.items()}
        self.pool = PooledTransform(pooled, a.teacher_whiten, dev)
        self.dim, self.gdim = int(self.mean['sketch'].numel()), self.pool.dim
        print(f'teacher (live): {a.teacher_model} {self.layer}, {self.dim} channels, mean over '
              f'{len(sk_all)} sketches + {len(im_all)} photos', flush=True)

    @torch.no_grad()
    def maps(self, x):
        """Model inputs in [-1, 1] -> the teacher's layer map (its own input convention: [0, 1], bilinear with
        aligned corners to its size)."""
        t = F.interpolate(x.float() * 0.5 + 0.5, size=(self.size, self.size), mode='bilinear', align_corners=True)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16):
            return self.net(t, outputs=[self.layer])[self.layer].float()

    def photo_pooled_raw(self, i_im):
        """As Teacher.photo_pooled_raw: the teacher run on the whole, unaugmented photos."""
        return self.maps(self.im_all[torch.from_numpy(i_im)].to(self.dev)).mean(dim=(2, 3))

    def photo_pooled(self, i_im):
        """As Teacher.photo_pooled."""
        return self.pool(self.photo_pooled_raw(i_im), 'photo')

    def targets(self, views, n_sketch, grid):
        m = self.maps(views)
        p = m.mean(dim=(2, 3))
        g = torch.cat([self.pool(p[:n_sketch], 'sketch'), self.pool(p[n_sketch:], 'photo')])
        m[:n_sketch] -= self.mean['sketch'][None, :, None, None]
        m[n_sketch:] -= self.mean['photo'][None, :, None, None]
        return g, F.adaptive_avg_pool2d(m, grid).flatten(2).transpose(1, 2)


def load_ckpt(path):
    """torch.load of this script's own checkpoints (dicts with numbers and strings: not weights-only)."""
    return torch.load(path, map_location='cpu', weights_only=False)


def relational_kl(student, teacher, temp):
    """KL(teacher || student) between the row softmaxes of the in-batch cosine matrices, the diagonal left out."""
    s = F.normalize(student.float(), dim=1)
    t = F.normalize(teacher.float(), dim=1)
    eye = torch.eye(len(s), dtype=torch.bool, device=s.device)
    ls = (s @ s.t() / temp).masked_fill(eye, -1e9).log_softmax(1)
    lt = (t @ t.t() / temp).masked_fill(eye, -1e9).log_softmax(1)
    return F.kl_div(ls, lt, log_target=True, reduction='batchmean')


def cross_targets(teacher, src, g, gs):
    """--distill-cross (train_zse.py and train_caan.py): rows r of the batch whose sketch was drawn from a training
    photo (src[r] >= 0; sketch rows come first) take that whole photo's pooled teacher feature as their target.
    Returns the targets with those rows replaced, the mask of rows that keep their own target, and the cross loss
    (1 - cosine of the projected cls gs to the new targets; 0 when no row is paired)."""
    rows = np.where(src >= 0)[0]
    own = torch.ones(len(g), dtype=torch.bool, device=g.device)
    if not len(rows):
        return g, own, torch.zeros((), device=g.device)
    r = torch.from_numpy(rows).to(g.device)
    g = g.clone()
    g[r] = teacher.photo_pooled(src[rows]).to(g.dtype)
    own[r] = False
    return g, own, (1 - F.cosine_similarity(gs[r], g[r], dim=1)).mean()


def patch_cutmix(x, gen, grid, n):
    """--distill-mix: n new views made from the batch x [N,3,S,S] of one modality, CutMix on the patch grid: view k
    is x[k] with a box of whole patches (1..grid-1 patches a side, at a random place) taken from x[perm[k]], perm a
    random derangement of the batch (views of other classes, mostly). Returns the views [n,3,S,S], perm [n] and the
    box as a pixel mask [n,1,S,S] (1 where x[perm] shows through). Aligned to the patches so that each patch token
    sees one picture; the teacher's map is mixed with the same mask (area-pooled to the map's cells)."""
    N, S = x.size(0), x.size(-1)
    P = S // grid
    R = lambda hi: torch.randint(1, hi, (n,), generator=gen)  # noqa: E731
    perm = (torch.arange(n) + torch.randint(1, N, (n,), generator=gen)) % N
    bw, bh = R(grid), R(grid)
    x0 = (torch.rand(n, generator=gen) * (grid - bw + 1)).long()
    y0 = (torch.rand(n, generator=gen) * (grid - bh + 1)).long()
    cells = torch.arange(grid)
    mx = ((cells[None] >= x0[:, None]) & (cells[None] < (x0 + bw)[:, None])).float()
    my = ((cells[None] >= y0[:, None]) & (cells[None] < (y0 + bh)[:, None])).float()
    mask = (my[:, :, None] * mx[:, None, :])[:, None]                     # [n,1,grid,grid]
    mask = mask.repeat_interleave(P, 2).repeat_interleave(P, 3).to(x.device)
    return x[:n] * (1 - mask) + x[perm.to(x.device)] * mask, perm, mask


def edge_sketch(x, gen, ink=(0.03, 0.07)):
    """--edge-sketch: pseudo-sketches of photo views x [N,3,S,S] in [-1,1], the same geometry, as the training
    sketches look (dark strokes on white, [-1,1]): grey, a 3x3 binomial blur, Sobel gradient magnitude, and ink where
    the magnitude is in each image's top fraction (drawn per image from `ink`; real training sketches ink about 4 %
    of their pixels at 128 px), soft over a band of half the threshold so the strokes are antialiased."""
    g = x.mean(1, keepdim=True)
    k1 = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    blur = (k1[:, None] * k1[None, :] / 16)[None, None]
    g = F.conv2d(F.pad(g, (1, 1, 1, 1), mode='replicate'), blur)
    sx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)[None, None]
    gp = F.pad(g, (1, 1, 1, 1), mode='replicate')
    mag = torch.sqrt(F.conv2d(gp, sx) ** 2 + F.conv2d(gp, sx.transpose(2, 3)) ** 2 + 1e-12)
    n = x.size(0)
    frac = ink[0] + (ink[1] - ink[0]) * torch.rand(n, generator=gen).to(x.device)
    flat = mag.flatten(1)
    thr = torch.stack([torch.quantile(flat[i], 1 - frac[i]) for i in range(n)]).clamp_min(1e-3)[:, None, None, None]
    inked = ((mag - 0.5 * thr) / (0.5 * thr)).clamp(0, 1)
    return (1 - 2 * inked).expand(-1, 3, -1, -1).contiguous()


def mix_maps(t, perm, mask):
    """The teacher target of a patch_cutmix view: the two views' maps t [N,C,h,w] mixed with the box mask
    area-pooled to the map's cells (the map of a pasted picture is approximated by the pasted part of its map)."""
    m = F.adaptive_avg_pool2d(mask, t.shape[-2:])
    n = mask.size(0)
    return t[:n] * (1 - m) + t[perm.to(t.device)] * m


def ca_attention(model, layer, x_q, x_k):
    """Head-averaged attention probabilities [N, T, T] of one CA layer ('layer1': sketch queries over photo keys,
    'layer2': the reverse), as zse_ref.attention computes them (dropout left out)."""
    mha = getattr(model.ca.encoder, layer)[0].self_attn
    n, h, dk = x_q.size(0), mha.h, mha.d_k
    q = mha.linears[0](x_q).view(n, -1, h, dk).transpose(1, 2)
    k = mha.linears[1](x_k).view(n, -1, h, dk).transpose(1, 2)
    return (q @ k.transpose(-2, -1) / math.sqrt(dk)).softmax(-1).mean(1)


def attention_kl(model, sa_sk, sa_im, cells_sk, cells_im, ink, temp):
    """--distill-attn: KL(target || CA attention) over the patch positions of positive pairs, both CA directions.
    The target of sketch patch i over photo patches j is softmax_j(cos(teacher cell i, teacher cell j) / temp) (the
    teacher's own cross-modal correspondence of the two views); rows of sketch patches without ink (< 2 % dark pixels)
    are left out of layer1's term. The SA tokens are detached: only the CA's query/key projections learn from it."""
    S = F.normalize(cells_sk.float(), dim=2) @ F.normalize(cells_im.float(), dim=2).transpose(1, 2)   # [N, P, P]
    tot = 0.0
    for layer, x_q, x_k, sim, rows in (('layer1', sa_sk, sa_im, S, ink > 0.02),
                                       ('layer2', sa_im, sa_sk, S.transpose(1, 2), None)):
        lt = (sim / temp).log_softmax(-1)
        lp = ca_attention(model, layer, x_q.detach(), x_k.detach())[:, 1:, 1:].clamp_min(1e-8).log()
        kl = (lt.exp() * (lt - lp)).sum(-1)                         # [N, P]
        tot = tot + (kl[rows].mean() if rows is not None else kl.mean())
    return tot / 2


def fit_to_grid_(model, sd, path):
    """Weights trained at another input size (another patch grid): the patch rows of the position embedding are
    resized bicubically (the cls row kept), and the RN head, whose input is anchors^2 wide, starts fresh (said so).
    Every other tensor must fit as it is."""
    own = model.state_dict()
    key = 'sa.model.pos_embedding'
    if key in sd and sd[key].shape[1] != own[key].shape[1]:      # another token count (a width change: grow_)
        pe = sd[key]
        g0, g = int(round((pe.shape[1] - 1) ** 0.5)), model.cfg.grid
        if g0 * g0 + 1 != pe.shape[1] or pe.shape[2] != own[key].shape[2]:
            raise SystemExit(f'error: {path}: position embedding {tuple(pe.shape)} is not a square patch grid of '
                             f'width {own[key].shape[2]}')
        cells = pe[0, 1:].reshape(g0, g0, -1).permute(2, 0, 1)[None]
        cells = F.interpolate(cells, size=(g, g), mode='bicubic', align_corners=False)[0].permute(1, 2, 0)
        sd = dict(sd)
        sd[key] = torch.cat([pe[:, :1], cells.reshape(1, g * g, -1)], dim=1)
        fresh = [k for k in sd if k.startswith('rn.') and k in own and sd[k].shape != own[k].shape]
        for k in fresh:
            sd[k] = own[k]
        print(f'{path}: grid {g0} -> {g}: position embedding resized (bicubic), '
              f'{len(fresh)} RN tensors start fresh (its input is anchors^2 wide)', flush=True)
    return sd


SA_LAYER = re.compile(r'^sa\.model\.transformer\.layers\.(\d+)\.')


def grow_(model, sd, path, heads, noise=0.0, seed=0):
    """Weights of a smaller model grown into `model`'s config, keeping the function (Net2Net-style, for more capacity
    without starting over). `heads`: the file's (sa_heads, ca_heads).
    - Twice the width (--dim, and optionally --mlp / --ca-ff, doubled; --heads and --ca-heads doubled, so each head
      keeps its width): every channel is duplicated, [x] -> [x; x], the heads with it (heads h + H copy heads h);
      a tensor's input channels are duplicated and halved, so every Linear and convolution gives [y; y], layer norms
      of [x; x] give [n; n], attention in each copied head is the original's. Exact in the SA encoder; the CA layer's
      norm divides by the unbiased std + eps, which for 2n duplicated channels is c = sqrt((2n - 2) / (2n - 1)) times
      the n-channel one, so its gain is multiplied by c (exact but for eps: (1 - c) * 1e-6 in the denominator).
      Not kept: the RN path, because the anchor convolution reads a raw view of the CA tokens ([T, D] memory viewed
      as [D, G, G], zse-sbir.md), which another width lays out differently; its grown weights relearn. `noise`
      (relative to each grown tensor's std) breaks the symmetry of the copies, which gradient descent would keep.
    - More SA layers (--depth): appended after the file's, each an identity at first (pre-norm residual blocks with
      their attention output projection and second MLP linear zeroed; the rest of their init random).
    Returns the grown state dict (sd itself when nothing grows)."""
    own = model.state_dict()
    d0, d = sd['sa.model.cls'].shape[-1], own['sa.model.cls'].shape[-1]
    depth0 = 1 + max(int(m.group(1)) for k in sd if (m := SA_LAYER.match(k)))
    depth = model.cfg.depth
    if d == d0 and depth == depth0:
        return sd
    if d not in (d0, 2 * d0) or depth < depth0:
        raise SystemExit(f'error: {path}: width {d0}, depth {depth0} cannot grow into width {d}, depth {depth} '
                         f'(width: the same or twice; depth: the same or more)')
    if d == 2 * d0 and (model.cfg.sa_heads, model.cfg.ca_heads) != (2 * heads[0], 2 * heads[1]):
        raise SystemExit(f'error: {path} has {heads[0]} SA and {heads[1]} CA heads: doubling the width needs '
                         f'--heads {2 * heads[0]} --ca-heads {2 * heads[1]} (each head keeps its width)')
    g = torch.Generator().manual_seed(seed)
    out, grown = {}, 0
    for k, v in sd.items():
        if k not in own or own[k].shape == v.shape:
            out[k] = v
            continue
        t, want = v.float(), tuple(own[k].shape)
        qkv = k.endswith(('attention.to_qkv.weight', 'attention.to_qkv.bias'))
        if qkv:                                      # [3*d, ...]: q, k and v each grow on their own
            t = t.reshape(3, t.shape[0] // 3, *t.shape[1:])
            want = (3, want[0] // 3, *want[1:])
        first_in = 2 if qkv else 1                   # the input-channel axis of a Linear / conv weight
        for ax in range(t.dim()):
            if t.shape[ax] == want[ax]:
                continue
            if want[ax] != 2 * t.shape[ax]:
                raise SystemExit(f'error: {path}: {k} {tuple(v.shape)} cannot grow into {tuple(own[k].shape)}')
            is_input = k.endswith('.weight') and v.dim() >= 2 and ax == first_in
            t = torch.cat([t, t], dim=ax) * (0.5 if is_input else 1.0)
        t = t.reshape(own[k].shape)
        if k.startswith('ca.') and k.endswith('.norm.a'):   # CA norm: [x; x]'s unbiased std is c times x's
            t = t * math.sqrt((2 * d0 - 2) / (2 * d0 - 1))
        if noise > 0:
            t = t + noise * float(t.std()) * torch.randn(t.shape, generator=g)
        out[k] = t
        grown += 1
    added = [k for k in own if (m := SA_LAYER.match(k)) and int(m.group(1)) >= depth0]
    for k in added:
        zero = k.endswith(('attention.to_out.0.weight', 'attention.to_out.0.bias', 'mlp.net.3.weight', 'mlp.net.3.bias'))
        out[k] = torch.zeros_like(own[k]) if zero else own[k]
    print(f'{path}: grown from width {d0}, depth {depth0} to width {d}, depth {depth}: {grown} tensors widened '
          f'(noise {noise}), {depth - depth0} identity layers appended', flush=True)
    return out


def init_from_(model, path, noise=0.0, seed=0, graft=''):
    """Load weights to start from: an official-format .pth or a sketchgpu .safetensors (fp16 taken as is); a smaller
    model's weights are grown into the config (grow_)."""
    if str(path).endswith('.safetensors'):
        from safetensors_min import load_file
        tensors, meta = load_file(path)
        sd = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
        heads = (int(meta.get('sketchgpu.sa_heads', 12)), int(meta.get('sketchgpu.ca_heads', 8)))
    else:
        ck = load_ckpt(path)
        sd, cfg_d = ck['model'], ck.get('config', {})
        heads = (int(cfg_d.get('sa_heads', 12)), int(cfg_d.get('ca_heads', 8)))
    sd = fit_to_grid_(model, sd, path)
    sd = grow_(model, sd, path, heads, noise, seed)
    if graft:
        sd = graft_stem_(model, sd, graft)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith(zse_ref.DEAD_PREFIX)]
    if missing or unexpected:
        raise SystemExit(f'error: {path} does not fit the config: missing {missing[:4]}, unexpected {unexpected[:4]}')
    print(f'initialised from {path}', flush=True)


STEM_CONVS = ('sa.model.scale.seq.0.weight', 'sa.model.scale.seq.2.weight', 'sa.model.scale.seq.4.weight')


def graft_stem_(model, sd, path):
    """--stem-graft: a stem fitted to an early teacher layer (tools/training/stem_fit.py) appended to the conv stem of
    the --init weights, keeping their function: the stem's three ReLU convolutions get the grafted channels after
    their own, block-diagonal (old channels read only old ones, grafted only grafted), and the last convolution,
    which gives the tokens, reads the grafted channels with zero weights at first. So the model starts as the --init
    weights exactly; training lets the tokens use the grafted features. The config's --stem must be the sum."""
    g = load_ckpt(path)
    own = model.state_dict()
    old = [sd[k] for k in STEM_CONVS]
    new = [g['stem'][f'{i}.weight'] for i in (0, 2, 4)]
    want = tuple(own[k].shape[0] for k in STEM_CONVS)
    have = tuple(o.shape[0] + n.shape[0] for o, n in zip(old, new))
    if want != have:
        raise SystemExit(f'error: --stem-graft {path}: {tuple(o.shape[0] for o in old)} + {tuple(n.shape[0] for n in new)} '
                         f'= {have} stem channels, the config has {want}\nhint: pass --stem {" ".join(map(str, have))}')
    sd = dict(sd)
    sd[STEM_CONVS[0]] = torch.cat([old[0].float(), new[0].float()])
    for k, o, n in zip(STEM_CONVS[1:], old[1:], new[1:]):
        w = torch.zeros(own[k].shape)
        w[:o.shape[0], :o.shape[1]] = o.float()
        w[o.shape[0]:, o.shape[1]:] = n.float()
        sd[k] = w
    last = 'sa.model.scale.seq.6.weight'
    w = torch.zeros(own[last].shape)
    w[:, :sd[last].shape[1]] = sd[last].float()
    sd[last] = w
    print(f'{path}: stem {tuple(o.shape[0] for o in old)} + grafted {tuple(n.shape[0] for n in new)} '
          f'(fitted to {g.get("layer")}, {json.dumps(g.get("fit", {}))})', flush=True)
    return sd


class StemTeacher:
    """--distill-stem: the cached early-layer teacher maps (tools/teacher/features.py --layer mixed2) of the training
    rows; targets for the stem's stride-8 map: the view's warped map average-pooled to that grid, standardised per
    channel (the graft's statistics with --stem-graft, else the training rows' own)."""

    def __init__(self, a, tr, grid, dev):
        meta = json.loads(Path(a.teacher_stem).with_suffix('.json').read_text())
        if meta['done'] != meta['shape'][0]:
            raise SystemExit(f'error: {a.teacher_stem} is incomplete ({meta["done"]} of {meta["shape"][0]} rows)\n'
                             'hint: run tools/teacher/features.py --layer mixed2 again (it resumes)')
        unseen = set(ev.unseen_classes())
        bad = [f for f in meta['files'] if f.split('/')[1] in unseen]
        assert not bad, f'teacher cache holds unseen-class files: {bad[:3]}'
        row = {f: i for i, f in enumerate(meta['files'])}
        arr = np.load(a.teacher_stem, mmap_mode='r')
        self.maps, self.grid, self.dev = {}, grid, dev
        for mod in ('sketch', 'photo'):
            idx = np.array([row[str(f)] for f in tr[f'{mod}_files']])
            self.maps[mod] = torch.from_numpy(np.ascontiguousarray(arr[np.sort(idx)]))[np.argsort(np.argsort(idx))]
        self.dim, self.layer = int(meta['shape'][1]), meta['layer']
        if a.stem_graft:
            g = load_ckpt(a.stem_graft)
            self.mu, self.sd = g['mu'].to(dev), g['sd'].to(dev)
        else:
            pooled = torch.cat([F.adaptive_avg_pool2d(m[i:i + 256].float(), grid)
                                for m in self.maps.values() for i in range(0, len(m), 256)])
            self.mu, self.sd = pooled.mean((0, 2, 3), keepdim=True).to(dev), (pooled.std((0, 2, 3), keepdim=True) + 1e-3).to(dev)
        print(f'stem teacher: {meta["model"]} {meta["layer"]} {tuple(meta["shape"][1:])} -> {grid} x {grid}', flush=True)

    def targets(self, mod, i, th):
        t = warp_map(self.maps[mod][torch.from_numpy(i)].to(self.dev).float(), th)
        return (F.adaptive_avg_pool2d(t, self.grid) - self.mu) / self.sd


def init_heads_(heads, proxies, path):
    """--init-heads: the training-only distillation projections and the class proxies from a run's last.pt (a
    --resume state), nothing else of it: the weights come from --init, the optimiser and the schedule start anew."""
    st = load_ckpt(path)
    if 'heads' not in st or 'proxies' not in st:
        raise SystemExit(f'error: {path} has no distillation projections\nhint: pass a run\'s OUT/last.pt')
    load_heads_(heads, proxies, st)
    print(f'distillation projections and proxies from {path}', flush=True)


def load_heads_(heads, proxies, st):
    """The projections and proxies of a last.pt state, those it has (checkpoints before them lack them)."""
    if 'proxies' in st:
        with torch.no_grad():
            proxies.copy_(st['proxies'])
    if 'heads' in st:
        heads.load_state_dict(st['heads'])


def save_official(model, path, epoch, map_all, p100, extra=None):
    """Like zse_ref.save_official_pth (the official save_checkpoint layout), with real numbers."""
    sd = model.state_dict()
    meta = sd._metadata
    sd = type(sd)((k, v.detach().float().cpu().contiguous().clone()) for k, v in sd.items())
    sd._metadata = meta
    ck = {'model': sd, 'epoch': int(epoch), 'map_all': np.float64(map_all), 'precision_100': np.float64(p100),
          'config': {'sa_heads': model.cfg.sa_heads, 'ca_heads': model.cfg.ca_heads}}
    if extra:
        ck['sketchgpu'] = extra
    tmp = str(path) + '.tmp'
    torch.save(ck, tmp)
    os.replace(tmp, path)


class RunLog:
    """A training run's clock and its JSON-lines log, OUT/log.jsonl (appended to when resuming). `offset` is the
    time the earlier runs of a resumed chain spent; log(rec) prints and writes rec stamped with the elapsed time."""

    def __init__(self, out, resume):
        self.f = open(out / 'log.jsonl', 'a' if resume else 'w')
        self.start, self.offset = time.time(), 0.0

    def elapsed(self):
        return time.time() - self.start + self.offset

    def __call__(self, rec):
        rec = {'t': round(self.elapsed(), 1), **rec}
        self.f.write(json.dumps(rec) + '\n')
        self.f.flush()
        print(json.dumps(rec), flush=True)


def add_run_args(ap):
    """The options of a run's length and bookkeeping that train_zse.py and train_caan.py share."""
    ap.add_argument('--log-every', type=int, default=10)
    ap.add_argument('--max-minutes', type=float, default=0,
                    help='safety stop: end training (keeping the best checkpoint) after this many minutes; 0 = off')
    ap.add_argument('--resume', action='store_true', help='continue from OUT/last.pt')


def add_distill_args(ap):
    """The distillation options that train_zse.py and train_caan.py share (the teacher cache and the three losses)."""
    ap.add_argument('--teacher', default='',
                    help='teacher feature cache (tools/teacher/features.py: .cache/teacher/feat-*.npy); enables the '
                         '--distill-* losses')
    ap.add_argument('--distill-global', type=float, default=0.0,
                    help='weight: cosine regression of a projection of the cls (the SA cls; each image tower\'s in CAAN) '
                         'onto the teacher map\'s pooled feature (modality mean subtracted) of the same augmented view')
    ap.add_argument('--distill-tokens', type=float, default=0.0,
                    help='weight: the same for each patch token and the teacher map cell it covers (pooled to the grid)')
    ap.add_argument('--distill-rel', type=float, default=0.0,
                    help='weight: similarity structure, KL(teacher || student) of row softmaxes of the in-batch cosine '
                         'matrices (both modalities; teacher: mean-subtracted pooled features; student: the cls embeddings)')
    ap.add_argument('--distill-temp', type=float, default=0.1, help='temperature of --distill-rel')
    ap.add_argument('--distill-cross', type=float, default=0.0,
                    help='weight: cross-modal targets for sketches drawn from a training photo (Sketchy pairs): their '
                         'projected cls is regressed (1 - cosine, the --distill-global head) onto the teacher\'s pooled '
                         'feature of that whole photo instead of onto their own teacher feature, and --distill-rel uses '
                         'the same targets; so sketches are placed where the teacher puts photos (ImageNet features '
                         'of photos rank photos far better than of sketches). Unpaired sketches keep their own target')
    ap.add_argument('--teacher-whiten', type=int, default=0,
                    help='K > 0: the pooled targets (--distill-global, --distill-rel, --distill-cross) become the signed '
                         'square root of the pooled feature, modality mean subtracted, projected on the top K principal '
                         'directions of the training rows and half-whitened (PooledTransform); 0: mean subtracted only')
    ap.add_argument('--teacher-net', default='',
                    help='instead of --teacher\'s cache: run the teacher live on each augmented view (a GPU makes that '
                         'cheap); DIR holds MODEL.topology.json + MODEL.safetensors (tools/teacher/trim.py)')
    ap.add_argument('--teacher-model', default='inception_v3', help='with --teacher-net')
    ap.add_argument('--teacher-layer', default='mixed7', help='with --teacher-net')
    ap.add_argument('--teacher-mean-rows', type=int, default=0,
                    help='with --teacher-net: the modality means over about this many rows each (0: all training rows)')


def start_run(a):
    """Threads and seeds from the arguments, the output folder, and the run's log (RunLog)."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    return out, RunLog(out, a.resume)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(REPO / '.cache' / 'train'))
    ap.add_argument('--name', default='zse-sketchy104-small', help='final checkpoint: OUT/NAME.pth')
    ap.add_argument('--seed', type=int, default=2021)
    ap.add_argument('--size', type=int, default=112, help='input side (16 * grid)')
    ap.add_argument('--dim', type=int, default=128)
    ap.add_argument('--depth', type=int, default=5)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--mlp', type=int, default=512)
    ap.add_argument('--stem', type=int, nargs=3, default=[16, 32, 64])
    ap.add_argument('--ca-heads', type=int, default=4)
    ap.add_argument('--ca-ff', type=int, default=256)
    ap.add_argument('--anchor-dim', type=int, default=64)
    ap.add_argument('--rn-hidden', type=int, nargs=2, default=None, help='default (A^1.5, A) for A anchors')
    ap.add_argument('--batch', type=int, default=24, help='triplet groups per step (4 images each)')
    ap.add_argument('--steps', type=int, default=500)
    ap.add_argument('--lr', type=float, default=5e-4)
    ap.add_argument('--min-lr', type=float, default=1e-5)
    ap.add_argument('--warmup', type=int, default=40)
    ap.add_argument('--wd', type=float, default=0.05)
    ap.add_argument('--clip', type=float, default=1.0)
    ap.add_argument('--aug-p', type=float, default=0.85)
    ap.add_argument('--sa-dropout', type=float, default=0.0,
                    help='dropout in SA (official 0.1; 0 saves time, augmentation regularises instead)')
    ap.add_argument('--bf16', type=int, default=1, help='bfloat16 autocast: 0 off, 1 SA only (CA/RN float32), 2 everywhere')
    ap.add_argument('--stem-init', choices=['full', 'half'], default='half',
                    help="conv-stem init: 'half' (the shipped run's: He fan-out, last conv halved, stem output ~8x below "
                         "the patch conv) or 'full' (He fan-in: the stem's output on the patch conv's scale)")
    ap.add_argument('--ret-loss', type=float, default=0.0,
                    help='weight of a cross-modal supervised-contrastive loss on the SA cls (the ret embedding); 0 = off '
                         '(the official losses only)')
    ap.add_argument('--proxy-loss', type=float, default=0.0,
                    help='weight of a cosine-classifier (normalised softmax, one learned proxy per training class, '
                         'shared by both modalities) cross-entropy on the SA cls; 0 = off')
    ap.add_argument('--proxy-scale', type=float, default=16.0, help='logit scale of --proxy-loss')
    ap.add_argument('--tri-loss', type=float, default=2.0, help='weight of the CA-cls triplet loss (official 2)')
    ap.add_argument('--rn-loss', type=float, default=4.0, help='weight of the RN MSE loss (official 4)')
    ap.add_argument('--pair-frac', type=float, default=0.0,
                    help='fraction of triplet groups whose positive photo is the sketch\'s own source photo')
    ap.add_argument('--inst-loss', type=float, default=0.0,
                    help='weight of an instance-level InfoNCE (sketch vs its source photo) on the SA cls; 0 = off')
    ap.add_argument('--ret-temp', type=float, default=0.1, help='temperature of --ret-loss')
    ap.add_argument('--val-classes', type=int, default=10)
    ap.add_argument('--split-seed', type=int, default=0)
    ap.add_argument('--val-every', type=int, default=100, help='steps; 0: no validation (probe)')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto',
                    help='auto: CUDA when torch sees a GPU, else the CPU')
    add_run_args(ap)
    add_distill_args(ap)
    ap.add_argument('--val-rn', type=int, default=1,
                    help='1: select by the mean of val ret and rn mAP@all (rn on every 5th val sketch); 0: by ret alone '
                         '(validation several times cheaper on CPU)')
    ap.add_argument('--time-budget', type=float, default=0,
                    help='minutes of training steps (data loading excluded): the cosine schedule ends, and the run '
                         'stops, when they are spent or at --steps, whichever comes first (for a lent GPU\'s fixed time)')
    ap.add_argument('--init-heads', default='',
                    help="with --init: a run's OUT/last.pt whose training-only distillation projections (and class proxies) "
                         "to start from, so that a new schedule continuing that run does not relearn them (a warm restart)")
    ap.add_argument('--init', default='',
                    help='start from these weights (official .pth or sketchgpu .safetensors); a model of half the '
                         '--dim (with half the --heads and --ca-heads) or fewer --depth layers is grown into the config, '
                         'keeping its function (grow_)')
    ap.add_argument('--grow-noise', type=float, default=0.01,
                    help='with --init from a narrower model: noise added to the widened tensors, relative to each '
                         "one's std (breaks the symmetry of the duplicated channels)")
    ap.add_argument('--distill-attn', type=float, default=0.0,
                    help='weight (needs --teacher or --teacher-net): the CA attention of positive pairs, both directions, regressed '
                         '(KL) onto the teacher\'s cell-to-cell correspondence of the two views (softmax of the '
                         'cosines of their grid cells, --distill-attn-temp), SA tokens detached; so that the '
                         'cross-attention `explain` draws links sketch parts to the matching photo parts')
    ap.add_argument('--distill-attn-temp', type=float, default=0.1)
    ap.add_argument('--distill-mix', type=float, default=0.0,
                    help='weight (needs --teacher or --teacher-net): function matching off the training classes: '
                         '--mix-views CutMix views per modality and step (patch_cutmix: a box of patches from another '
                         'view of the batch) go through the SA encoder and take --distill-global, --distill-tokens and '
                         '--distill-rel (their own, weighted by this) against the teacher\'s map of the mixed view '
                         '(the two maps mixed with the box, or the live teacher run on it); sketches drawn from a '
                         'training photo take with --distill-cross the area-weighted mix of their two photos\' pooled '
                         'features. No class loss sees them')
    ap.add_argument('--mix-views', type=int, default=0, help='with --distill-mix: views per modality (default the batch size)')
    ap.add_argument('--edge-sketch', type=float, default=0.0,
                    help='weight (needs --teacher): pseudo-sketches, edge maps of the batch\'s augmented photo views '
                         '(edge_sketch), --edge-views per step, go through the SA encoder as sketches and take the '
                         'photo view\'s own teacher targets (--distill-global and --distill-tokens) and, with '
                         '--proxy-loss, its class; more sketch-like inputs of more photos than the 3-5 per class the '
                         'real sketches were drawn from')
    ap.add_argument('--edge-views', type=int, default=0, help='with --edge-sketch: views per step (default the batch size)')
    ap.add_argument('--stop-at', type=int, default=0,
                    help='end after this step (validated and checkpointed; the schedule still plans --steps), so that '
                         'a chain of --resume runs with different --steps is reproducible; 0 = run to --steps')
    ap.add_argument('--stem-graft', default='',
                    help='with --init: append the stem that tools/training/stem_fit.py fitted to an early teacher layer '
                         'to the conv stem (graft_stem_: block-diagonal, read by the tokens with zero weights at first, so '
                         'the model starts as --init); --stem must be the sum of the two stems\' widths')
    ap.add_argument('--teacher-stem', default='',
                    help='early-layer teacher cache for --distill-stem (tools/teacher/features.py --layer mixed2)')
    ap.add_argument('--distill-stem', type=float, default=0.0,
                    help='weight: 1 - cosine per cell of a 1x1 projection (training-only; from the graft\'s head with '
                         '--stem-graft) of the stem\'s stride-8 map onto the --teacher-stem map of the same augmented '
                         'view (StemTeacher)')
    ap.add_argument('--final-eval', action='store_true',
                    help='after training, measure the selected checkpoint on unseen21-256 (the only unseen read)')
    a = ap.parse_args()
    if a.stem_graft and not a.init:
        raise SystemExit('error: --stem-graft appends to the stem of the --init weights\n'
                         'hint: add --init WEIGHTS.pth (the run to start from)')
    if bool(a.distill_stem) != bool(a.teacher_stem):
        raise SystemExit('error: --distill-stem and --teacher-stem go together\n'
                         'hint: give both (--teacher-stem .cache/teacher/feat-inception_v3-mixed2-s128.npy) or neither')
    if a.init_heads and not a.init:
        raise SystemExit('error: --init-heads continues a run whose weights --init names\n'
                         'hint: add --init OUT/best.pth (or last.pth) of the run whose last.pt you gave')
    if a.distill_mix and not (a.teacher or a.teacher_net):
        raise SystemExit('error: --distill-mix needs a teacher\nhint: add --teacher .cache/teacher/feat-*.npy (or --teacher-net DIR)')
    if a.mix_views > 2 * a.batch:
        raise SystemExit(f'error: --mix-views {a.mix_views} is more than the {2 * a.batch} views of a modality per step\n'
                         f'hint: give at most 2 x --batch ({2 * a.batch})')
    if a.edge_sketch and not (a.teacher or a.teacher_net):
        raise SystemExit('error: --edge-sketch needs a teacher\nhint: add --teacher .cache/teacher/feat-*.npy (or --teacher-net DIR)')
    if a.edge_views > 2 * a.batch:
        raise SystemExit(f'error: --edge-views {a.edge_views} is more than the {2 * a.batch} photo views per step\n'
                         f'hint: give at most 2 x --batch ({2 * a.batch})')
    if a.distill_attn and not (a.teacher or a.teacher_net):
        raise SystemExit('error: --distill-attn needs a teacher\nhint: add --teacher .cache/teacher/feat-*.npy (or --teacher-net DIR)')

    out, log = start_run(a)
    cfg = build_config(a)
    train_cls, val_cls = ev.split_seen(a.val_classes, a.split_seed)
    print(f'config {json.dumps(cfg.to_json())}\ntrain classes {len(train_cls)}, val classes {val_cls}', flush=True)
    tr = ev.load_split(ev.ALL128, train_cls, a.size, cache_name=f'train{a.val_classes}s{a.split_seed}', purpose='train')
    va = ev.load_split(ev.ALL128, val_cls, a.size, cache_name=f'val{a.val_classes}s{a.split_seed}', purpose='select') if val_cls \
        else None
    print(f'data: train {len(tr["sketch"])} sketches + {len(tr["photo"])} photos'
          + (f', val {len(va["sketch"])} + {len(va["photo"])}' if va else '') + f' ({log.elapsed():.1f} s)',
          flush=True)
    sk_all = ev.to_input(tr['sketch'])
    im_all = ev.to_input(tr['photo'])

    dev = torch.device('cuda' if a.device == 'cuda' or (a.device == 'auto' and torch.cuda.is_available()) else 'cpu')
    model = init_weights_(zse_ref.Model(cfg), a.stem_init).to(dev)          # initialised on the CPU: same values
    for m in model.sa.modules():
        if isinstance(m, nn.Dropout):
            m.p = a.sa_dropout
    n_keys, n_params, n_used = zse_ref.check_state_dict(model)
    used_params = sum(v.numel() for k, v in model.state_dict().items() if not k.startswith(zse_ref.DEAD_PREFIX))
    print(f'model: {n_keys} keys, {n_params:,} params ({used_params:,} used at inference)', flush=True)
    ncls = int(tr['sketch_label'].max()) + 1
    proxies = nn.Parameter((torch.randn(ncls, cfg.dim, generator=torch.Generator().manual_seed(a.seed)) * 0.02).to(dev))
    if a.init:
        init_from_(model, a.init, a.grow_noise, a.seed, a.stem_graft)
    teacher = LiveTeacher(a, sk_all, im_all, dev) if a.teacher_net else Teacher(a, tr, dev) if a.teacher else None
    heads = nn.ModuleDict({'g': nn.Linear(cfg.dim, teacher.gdim), 't': nn.Linear(cfg.dim, teacher.dim)}).to(dev) \
        if teacher else nn.ModuleDict()                             # training-only projections, not in the checkpoint
    stem_teacher, stem_out = None, {}
    if a.distill_stem:
        stem_teacher = StemTeacher(a, tr, cfg.image_size // 8, dev)
        c3 = cfg.stem[2]
        heads['s'] = nn.Conv2d(c3, stem_teacher.dim, 1).to(dev)
        if a.stem_graft:                                            # the graft's head reads the grafted channels
            gh = load_ckpt(a.stem_graft)['head']
            with torch.no_grad():
                heads['s'].weight.zero_()
                heads['s'].weight[:, c3 - gh['weight'].shape[1]:] = gh['weight'].to(dev)
                heads['s'].bias.copy_(gh['bias'].to(dev))
        # the stride-8 map: the output of the stem's third ReLU, caught as the SA encoder runs
        model.sa.model.scale.seq[5].register_forward_hook(lambda m, i, o: stem_out.__setitem__('h8', o))
    groups = param_groups(model, a.wd)
    groups[1]['params'].append(proxies)                             # training-only, not in the checkpoint
    groups[0]['params'] += [p for n, p in heads.named_parameters() if n.endswith('weight')]
    groups[1]['params'] += [p for n, p in heads.named_parameters() if n.endswith('bias')]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999))
    sampler = TripletSampler(tr['sketch_label'], tr['photo_label'], a.seed, tr['sketch_files'], tr['photo_files'],
                             a.pair_frac)
    print(f'paired sketches (source photo in the set): {int((sampler.src >= 0).sum())} of {len(sampler.src)}', flush=True)
    gen = torch.Generator().manual_seed(a.seed)
    triplet = nn.TripletMarginLoss(margin=1.0, p=2)
    start, best, history, loop_before = 0, {'score': -1.0}, [], 0.0
    if a.resume and (out / 'last.pt').exists():
        st = load_ckpt(out / 'last.pt')
        model.load_state_dict(st['model'])
        opt.load_state_dict(st['opt'])
        sampler.rng.set_state(st['sampler'])
        gen.set_state(st['gen'])
        torch.set_rng_state(st['torch_rng'])
        start, best, log.offset = st['step'], st['best'], st['elapsed']
        # training-loop seconds already spent, for --time-budget's schedule (checkpoints before this field: the
        # elapsed time, which also counts the earlier runs' data loading, a minute or so)
        loop_before = st.get('loop_seconds', st['elapsed'])
        load_heads_(heads, proxies, st)
        print(f'resumed at step {start}', flush=True)
    elif a.init_heads:
        init_heads_(heads, proxies, a.init_heads)

    # rn on every 5th val sketch (5 per class) x all 250 val photos, to keep validation cheap on 2 cores
    va_sub = dict(va, sketch=va['sketch'][::5], sketch_label=va['sketch_label'][::5]) if va else None

    def validate(step):
        r = ev.evaluate(model, va, ('ret',), within=True)   # + sketch->sketch, photo->photo (weights/README.md, Diagnosis)
        if a.val_rn:
            r['rn'] = ev.evaluate(model, va_sub, ('rn',))['rn']
            r['rn_sketches'] = int(len(va_sub['sketch']))
            score = 0.5 * (r['ret']['map_all'] + r['rn']['map_all'])
        else:
            score = r['ret']['map_all']
        log({'step': step, 'val': r, 'score': score})
        return r, score

    def checkpoint(step):
        torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'sampler': sampler.rng.get_state(),
                    'gen': gen.get_state(), 'torch_rng': torch.get_rng_state(), 'step': step, 'best': best,
                    'proxies': proxies.detach().clone(), 'heads': heads.state_dict(),
                    'elapsed': log.elapsed(), 'loop_seconds': time.time() - t_loop, 'args': vars(a)}, out / 'last.pt.tmp')
        os.replace(out / 'last.pt.tmp', out / 'last.pt')

    model.train()
    b = a.batch
    target = torch.cat([torch.full((b,), 0.99), torch.full((b,), 0.01)]).to(dev)   # clamp(target, 0.01, 0.99)
    print(f'device: {dev}' + (f' ({torch.cuda.get_device_name(dev)})' if dev.type == 'cuda' else f', {a.threads} thread(s)'), flush=True)
    acc = {'loss': 0.0, 'tri': 0.0, 'mse': 0.0, 'ret': 0.0, 'inst': 0.0, 'proxy': 0.0, 'dg': 0.0, 'dt': 0.0, 'dr': 0.0,
               'dx': 0.0, 'da': 0.0, 'dm': 0.0, 'ds': 0.0, 'de': 0.0, 'n': 0}
    t_last = time.time()
    t_loop = t_last - loop_before            # a resumed run's --time-budget schedule goes on where it stopped
    for step in range(start, a.steps):
        spent = (time.time() - t_loop) / (60 * a.time_budget) if a.time_budget else None
        lr = lr_at(step, a, spent)
        for g in opt.param_groups:
            g['lr'] = lr
        i_sk, i_skn, i_im, i_imn = sampler.sample(b)
        sk, th_sk = augment(sk_all[np.concatenate([i_sk, i_skn])].to(dev), gen, sketch=True, p=a.aug_p, return_theta=True)
        im, th_im = augment(im_all[np.concatenate([i_im, i_imn])].to(dev), gen, sketch=False, p=a.aug_p, return_theta=True)
        nm = (a.mix_views or b) if a.distill_mix > 0 else 0
        views = [sk, im]
        if nm:                                                      # CutMix views, distillation only (--distill-mix)
            mix_sk, perm_sk, mask_sk = patch_cutmix(sk, gen, cfg.grid, nm)
            mix_im, perm_im, mask_im = patch_cutmix(im, gen, cfg.grid, nm)
            views += [mix_sk, mix_im]
        ne = min(a.edge_views or b, 2 * b) if a.edge_sketch > 0 else 0
        if ne:                                                      # pseudo-sketches of photo views (--edge-sketch)
            views.append(edge_sketch(im[:ne], gen))
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(a.bf16)):
            sa = model.sa(torch.cat(views))
        sa = sa.float()
        sa, sa_mix, sa_edge = sa[:4 * b], sa[4 * b:4 * b + 2 * nm], sa[4 * b + 2 * nm:]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16 >= 2):
            cls_fea, score = model(sa[:2 * b], sa[2 * b:])       # CA pairs sk[i] with im[i]: b pos, then b neg
        cls_fea, score = cls_fea.float(), score.float().view(-1)
        l_tri = triplet(cls_fea[0:b], cls_fea[2 * b:3 * b], cls_fea[3 * b:])
        l_mse = F.mse_loss(score, target)
        loss = a.tri_loss * l_tri + a.rn_loss * l_mse
        l_ret = torch.zeros(())
        if a.ret_loss > 0:
            cls = F.normalize(sa[:, 0], dim=1)
            y_sk = torch.from_numpy(tr['sketch_label'][np.concatenate([i_sk, i_skn])]).long().to(dev)
            y_im = torch.from_numpy(tr['photo_label'][np.concatenate([i_im, i_imn])]).long().to(dev)
            l_ret = cross_modal_supcon(cls[:2 * b], y_sk, cls[2 * b:], y_im, a.ret_temp)
            loss = loss + a.ret_loss * l_ret
        l_proxy = torch.zeros(())
        if a.proxy_loss > 0:
            cls = F.normalize(sa[:, 0], dim=1)
            y = torch.from_numpy(np.concatenate([tr['sketch_label'][np.concatenate([i_sk, i_skn])],
                                                 tr['photo_label'][np.concatenate([i_im, i_imn])]])).long().to(dev)
            l_proxy = F.cross_entropy(a.proxy_scale * cls @ F.normalize(proxies, dim=1).t(), y)
            loss = loss + a.proxy_loss * l_proxy
        l_inst = torch.zeros(())
        if a.inst_loss > 0:
            cls = F.normalize(sa[:, 0], dim=1)
            src_sk = torch.from_numpy(sampler.src[np.concatenate([i_sk, i_skn])]).to(dev)
            id_im = torch.from_numpy(np.concatenate([i_im, i_imn])).to(dev)
            l_inst = instance_nce(cls[:2 * b], src_sk, cls[2 * b:], id_im, a.ret_temp)
            loss = loss + a.inst_loss * l_inst
        l_dg = l_dt = l_dr = l_dx = l_da = l_dm = l_ds = l_de = torch.zeros(())
        if stem_teacher is not None:
            t8 = torch.cat([stem_teacher.targets('sketch', np.concatenate([i_sk, i_skn]), th_sk),
                            stem_teacher.targets('photo', np.concatenate([i_im, i_imn]), th_im)])
            l_ds = (1 - F.cosine_similarity(heads['s'](stem_out['h8'][:4 * b].float()), t8, dim=1)).mean()
            loss = loss + a.distill_stem * l_ds
        if teacher is not None:
            if isinstance(teacher, LiveTeacher):
                g, cells = teacher.targets(torch.cat([sk, im]), len(sk), cfg.grid)
                if nm:
                    g_mix, cells_mix = teacher.targets(torch.cat([mix_sk, mix_im]), nm, cfg.grid)
            else:
                t_sk = teacher.view_maps('sketch', np.concatenate([i_sk, i_skn]), th_sk)
                t_im = teacher.view_maps('photo', np.concatenate([i_im, i_imn]), th_im)
                (g_sk, c_sk), (g_im, c_im) = teacher.map_targets(t_sk, 'sketch', cfg.grid), \
                    teacher.map_targets(t_im, 'photo', cfg.grid)
                g, cells = torch.cat([g_sk, g_im]), torch.cat([c_sk, c_im])
                if nm:
                    (gm_sk, cm_sk), (gm_im, cm_im) = \
                        teacher.map_targets(mix_maps(t_sk, perm_sk, mask_sk), 'sketch', cfg.grid), \
                        teacher.map_targets(mix_maps(t_im, perm_im, mask_im), 'photo', cfg.grid)
                    g_mix, cells_mix = torch.cat([gm_sk, gm_im]), torch.cat([cm_sk, cm_im])
            if nm and a.distill_cross > 0:                          # mixed sketches of two paired sketches
                src = sampler.src[np.concatenate([i_sk, i_skn])]
                sa_, sb_ = src[:nm], src[perm_sk.numpy()]
                rows = np.where((sa_ >= 0) & (sb_ >= 0))[0]
                if len(rows):
                    lam = mask_sk.mean(dim=(1, 2, 3))[torch.from_numpy(rows).to(dev)][:, None]
                    raw = (1 - lam) * teacher.photo_pooled_raw(sa_[rows]) + lam * teacher.photo_pooled_raw(sb_[rows])
                    g_mix = g_mix.clone()
                    g_mix[torch.from_numpy(rows).to(dev)] = teacher.pool(raw, 'photo').to(g_mix.dtype)
            if nm:
                l_dm = a.distill_global * (1 - F.cosine_similarity(heads['g'](sa_mix[:, 0]), g_mix, dim=1)).mean() \
                    + a.distill_tokens * (1 - F.cosine_similarity(heads['t'](sa_mix[:, 1:]), cells_mix, dim=2)).mean() \
                    + a.distill_rel * relational_kl(sa_mix[:, 0], g_mix, a.distill_temp)
                loss = loss + a.distill_mix * l_dm
            if ne:                                                  # the photo view's own targets, sketch domain
                g_e, c_e = g[2 * b:2 * b + ne], cells[2 * b:2 * b + ne]
                l_de = a.distill_global * (1 - F.cosine_similarity(heads['g'](sa_edge[:, 0]), g_e, dim=1)).mean() \
                    + a.distill_tokens * (1 - F.cosine_similarity(heads['t'](sa_edge[:, 1:]), c_e, dim=2)).mean()
                if a.proxy_loss > 0:
                    y_e = torch.from_numpy(tr['photo_label'][np.concatenate([i_im, i_imn])[:ne]]).long().to(dev)
                    l_de = l_de + a.proxy_loss * F.cross_entropy(
                        a.proxy_scale * F.normalize(sa_edge[:, 0], dim=1) @ F.normalize(proxies, dim=1).t(), y_e)
                loss = loss + a.edge_sketch * l_de
            gs = heads['g'](sa[:, 0])
            if a.distill_cross > 0:
                g, own, l_dx = cross_targets(teacher, sampler.src[np.concatenate([i_sk, i_skn])], g, gs)
                loss = loss + a.distill_cross * l_dx
                l_dg = (1 - F.cosine_similarity(gs[own], g[own], dim=1)).mean()
            else:
                l_dg = (1 - F.cosine_similarity(gs, g, dim=1)).mean()
            l_dt = (1 - F.cosine_similarity(heads['t'](sa[:, 1:]), cells, dim=2)).mean()
            l_dr = relational_kl(sa[:, 0], g, a.distill_temp)
            loss = loss + a.distill_global * l_dg + a.distill_tokens * l_dt + a.distill_rel * l_dr
            if a.distill_attn > 0:                                  # positive pairs: sk[k] with im[k], k < b
                G = cfg.grid
                ink = F.avg_pool2d((sk[:b].mean(1, keepdim=True) < 0).float(), sk.shape[-1] // G).flatten(1)
                l_da = attention_kl(model, sa[:b], sa[2 * b:3 * b], cells[:b], cells[2 * b:3 * b], ink,
                                    a.distill_attn_temp)
                loss = loss + a.distill_attn * l_da
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip) if a.clip > 0 else torch.tensor(0.0)
        opt.step()
        acc['loss'] += loss.item()
        acc['tri'] += l_tri.item()
        acc['mse'] += l_mse.item()
        acc['ret'] += l_ret.item()
        acc['inst'] += float(l_inst)
        acc['proxy'] += float(l_proxy)
        acc['dg'] += float(l_dg)
        acc['dt'] += float(l_dt)
        acc['dr'] += float(l_dr)
        acc['dx'] += float(l_dx)
        acc['da'] += float(l_da)
        acc['dm'] += float(l_dm)
        acc['ds'] += float(l_ds)
        acc['de'] += float(l_de)
        acc['n'] += 1
        s1 = step + 1
        if s1 % a.log_every == 0 or s1 == a.steps:
            dt = time.time() - t_last
            t_last = time.time()
            n = acc['n']
            log({'step': s1, 'lr': lr, 'loss': acc['loss'] / n, 'tri': acc['tri'] / n, 'mse': acc['mse'] / n,
                 'ret': acc['ret'] / n, 'inst': acc['inst'] / n, 'proxy': acc['proxy'] / n,
                 'distill_global': acc['dg'] / n, 'distill_tokens': acc['dt'] / n, 'distill_rel': acc['dr'] / n,
                 'distill_cross': acc['dx'] / n, 'distill_attn': acc['da'] / n, 'distill_mix': acc['dm'] / n, 'distill_stem': acc['ds'] / n, 'edge_sketch': acc['de'] / n, 'grad_norm': float(gn), 'steps_per_s': n / dt})
            acc = {'loss': 0.0, 'tri': 0.0, 'mse': 0.0, 'ret': 0.0, 'inst': 0.0, 'proxy': 0.0, 'dg': 0.0, 'dt': 0.0, 'dr': 0.0,
               'dx': 0.0, 'da': 0.0, 'dm': 0.0, 'ds': 0.0, 'de': 0.0, 'n': 0}
        over = (a.max_minutes and (log.elapsed()) > 60 * a.max_minutes) or \
            (a.time_budget and time.time() - t_loop > 60 * a.time_budget)
        stop = a.stop_at and s1 >= a.stop_at
        if va is not None and a.val_every and (s1 % a.val_every == 0 or s1 == a.steps or over or stop):
            r, sc = validate(s1)
            if sc > best['score']:
                best = {'score': sc, 'step': s1, 'val': r}
                save_official(model, out / 'best.pth', s1, r['ret']['map_all'], r['ret']['precision_100'],
                              {'selected_by': 'mean of val ret/rn mAP@all' if a.val_rn else 'val ret mAP@all',
                               'val': r})
            checkpoint(s1)
            t_last = time.time()
        if over or stop:
            log({'step': s1, 'stopped': (f'--time-budget {a.time_budget} spent' if a.time_budget and time.time() - t_loop > 60 * a.time_budget
                                         else f'--max-minutes {a.max_minutes} reached') if over else f'--stop-at {a.stop_at}'})
            break

    elapsed = log.elapsed()
    save_official(model, out / 'last.pth', s1, 0.0, 0.0)
    final = out / f'{a.name}.pth'
    if va is not None and best.get('step'):
        ck = load_ckpt(out / 'best.pth')
        torch.save(ck, final)
        model.load_state_dict(ck['model'])
    else:
        torch.save(load_ckpt(out / 'last.pth'), final)
    summary = {'args': vars(a), 'config': cfg.to_json(), 'params': n_params, 'params_used': used_params,
               'train_classes': train_cls, 'val_classes': val_cls, 'train_seconds': round(elapsed, 1),
               'best': best, 'final_checkpoint': str(final), 'torch': torch.__version__}
    print(f'done: {a.steps} steps in {elapsed / 60:.1f} min; best {json.dumps(best)}', flush=True)
    if a.final_eval:
        model.eval()
        t0 = time.time()
        data = ev.load_split(ev.UNSEEN256, ev.unseen_classes(), a.size, cache_name='unseen21', purpose='final-eval')
        r = ev.evaluate(model, data, ('ret', 'rn'))
        r['seconds'] = round(time.time() - t0, 1)
        summary['unseen21'] = r
        log({'final_unseen21': r})
    (out / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')


if __name__ == '__main__':
    main()
