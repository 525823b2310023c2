#!/usr/bin/python3
"""Train the head of the ZSE-SBIR front variant (issue 20) on the teacher's cached maps; the front stays frozen.

The front variant (tools/reference/zse_ref.py ZseConfig.front, src/models/inception.ts) runs the ImageNet-trained
InceptionV3 that nsfwjs ships (MIT; batch norms folded, tools/teacher/front.py) to `mixed7` on the image resized to
299 px, and a 1x1 convolution makes the 17 x 17 tokens of a small ViT (SA), whose cls is the retrieval embedding; CA,
the anchor conv and the RN head follow as in ZSE-SBIR. The front is not trained, so its output for every training
image is the teacher cache tools/teacher/features.py made (bfloat16 autocast; the engine computes it in float32), and
training touches only the head: fast enough on 2 CPU cores.

Losses: the official ones (2 x TripletMarginLoss(margin 1) on the CA cls outputs, 4 x MSE of the RN score against
0.99 / 0.01; train_zse.py's TripletSampler groups) plus distillation: each SA cls, through a training-only linear
head, regressed by cosine onto the teacher's pooled map of that image, half-whitened on 256 directions fitted on the
training rows (train_zse.PooledTransform, run I's targets). Augmentation: horizontal flips of the maps.

Data: only the 94 training classes of the 104 seen ones (the cache holds the seen classes only; the 10 classes of
eval_zse.split_seen(10, 0) are validation); the unseen classes are never read. Model selection: the best validation
ret mAP@all (SA cls cosine, sketch -> photo), every --val-every steps.

    LD_LIBRARY_PATH=.cache/blas/root/usr/lib/x86_64-linux-gnu/openblas-pthread \\
      /usr/bin/python3 tools/training/train_front.py --out .cache/train-front --minutes 60

Outputs in --out: log.jsonl, best.pth (official checkpoint format with the front's weights and config), summary.json.
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent
sys.path[:0] = [str(TOOLS / 'training'), str(TOOLS / 'reference'), str(TOOLS / 'teacher')]
import eval_zse as ev  # noqa: E402
import zse_ref  # noqa: E402
from safetensors_min import load_file  # noqa: E402
from splits import check_purpose, unseen_classes  # noqa: E402
from train_zse import PooledTransform, TripletSampler  # noqa: E402


def load_cache(path, val_classes, seed):
    """The cached maps of the training and validation classes: {split: {mod: (maps f16 [N,C,g,g], labels)}}."""
    meta = json.load(open(path[:-4] + '.json'))
    arr = np.load(path, mmap_mode='r')
    train, val = ev.split_seen(val_classes, seed)
    cls_of = [f.split('/')[1] for f in meta['files']]
    assert not set(cls_of) & set(unseen_classes()), 'the teacher cache holds an unseen class'
    check_purpose(ev.ALL128, train, 'train')
    check_purpose(ev.ALL128, val, 'select')
    out = {}
    for split, classes in (('train', train), ('val', val)):
        out[split] = {}
        for mod in ('sketch', 'photo'):
            rows = [i for i, c in enumerate(cls_of) if c in set(classes) and meta['modality'][i] == mod]
            labels = np.array([classes.index(cls_of[i]) for i in rows])
            out[split][mod] = (torch.from_numpy(np.stack([arr[i] for i in rows])), labels, [meta['files'][i] for i in rows])
    return out, meta


def build_model(a, fmap_c):
    assert a.front_input == 299 and a.end == 'mixed7', 'the teacher cache is mixed7 at 299 px'
    side = 17
    cfg = zse_ref.ZseConfig(dim=a.dim, depth=a.depth, sa_heads=a.heads, mlp_dim=a.mlp, grid=side, ca_heads=a.ca_heads,
                            ca_ff=a.ca_ff, anchor_dim=a.anchor_dim, rn_hidden=tuple(a.rn_hidden), name='front',
                            front=f'inception_v3/{a.end}', front_input=a.front_input, front_div=1, input_size=a.size)
    model = zse_ref.Model(cfg)
    w, _ = load_file(a.front)
    front = {k[len('front.'):]: torch.from_numpy(v) for k, v in w.items() if k.startswith('front.')}
    missing = model.sa.model.front.convs.load_state_dict(front, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    model.sa.model.front.requires_grad_(False)
    g = torch.Generator().manual_seed(a.seed)
    for name, p in model.named_parameters():                    # --init vit: 0.02 normal; default: PyTorch's layers' own
        if not p.requires_grad or (a.init != 'vit' and not name.endswith(('pos_embedding', '.cls'))):
            continue
        if name.endswith(('pos_embedding', '.cls')) or p.dim() >= 2:
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        elif name.endswith('.bias'):
            nn.init.zeros_(p)
    assert fmap_c == zse_ref.FRONT_CHANNELS[a.end]
    return cfg, model


@torch.no_grad()
def analytic_init_(model, pooled):
    """Start the head as a pooler of whitened cells (--init analytic): proj = the first D principal directions of
    the training images' pooled maps (both modalities, centred on their joint mean), each scaled to unit variance;
    the first block's queries and keys small (near-uniform attention), its values and output the identity, so the
    cls leaves it as cls + the mean of the normalised tokens; every later residual branch (block outputs, MLP outputs)
    starts at zero. On validation this head, untrained, ranks as well as the teacher's whitened pooled map without its
    square root (0.21 against 0.23 with it, the numbers in weights/README.md)."""
    vit = model.sa.model
    d = vit.proj.weight.shape[0]
    mu = pooled.mean(0)
    _, sv, vt = torch.linalg.svd((pooled - mu).double(), full_matrices=False)
    w = (vt[:d] / sv[:d, None] * math.sqrt(len(pooled))).float()          # [D, C]: unit variance per direction
    vit.proj.weight.copy_(w[:, :, None, None])
    vit.proj.bias.copy_(-(w @ mu))
    vit.pos_embedding.mul_(0.1)
    eye = torch.eye(d)
    for i, layer in enumerate(vit.transformer.layers):
        blk = layer[0]
        qkv = blk.attention.to_qkv
        qkv.weight[:2 * d].mul_(0.1)
        qkv.bias.zero_()
        if i == 0:
            qkv.weight[2 * d:].copy_(eye)
            blk.attention.to_out[0].weight.copy_(eye)
        else:
            blk.attention.to_out[0].weight.zero_()
        blk.attention.to_out[0].bias.zero_()
        blk.mlp.net[3].weight.zero_()
        blk.mlp.net[3].bias.zero_()


@torch.no_grad()
def sa_of(model, maps, batch=64):
    return torch.cat([model.sa.model.forward_front(maps[i:i + batch].float()) for i in range(0, len(maps), batch)])


@torch.no_grad()
def validate(model, data, rn=False):
    was = model.training
    model.eval()
    (xs, ys, _), (xi, yi, _) = data['sketch'], data['photo']
    ss, si = sa_of(model, xs), sa_of(model, xi)
    same = (ys[:, None] == yi[None, :]).astype(np.int64)
    es, ei = F.normalize(ss[:, 0], dim=1), F.normalize(si[:, 0], dim=1)
    r = {'ret': ev.calculate((1.0 - es @ ei.t()).numpy(), same)}
    for mod, sa, y in (('sketch', ss, ys), ('photo', si, yi)):
        r[f'{mod}_{mod}'] = ev.within_metrics(sa[:, 0].numpy().astype(np.float64), y)['map_all']
    if rn:                                                      # the first `rn` sketches of each class against every photo
        keep = np.concatenate([np.where(ys == c)[0][:rn] for c in np.unique(ys)])
        r['rn'] = ev.calculate((-ev.rn_scores(model, ss[keep], si)).numpy(), same[keep])
        r['rn_sketches'] = int(len(keep))
    model.train(was)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(REPO / '.cache' / 'train-front'))
    ap.add_argument('--cache', default=str(REPO / '.cache' / 'teacher' / 'feat-inception_v3-mixed7-s128.npy'))
    ap.add_argument('--front', default=str(REPO / '.cache' / 'teacher' / 'front-mixed7.safetensors'),
                    help='the folded front (tools/teacher/front.py export)')
    ap.add_argument('--end', default='mixed7')
    ap.add_argument('--front-input', type=int, default=299)
    ap.add_argument('--size', type=int, default=128, help='the model input side (the engine preprocesses to it)')
    ap.add_argument('--dim', type=int, default=128)
    ap.add_argument('--depth', type=int, default=2)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--mlp', type=int, default=512)
    ap.add_argument('--ca-heads', type=int, default=4)
    ap.add_argument('--ca-ff', type=int, default=256)
    ap.add_argument('--anchor-dim', type=int, default=64)
    ap.add_argument('--rn-hidden', type=int, nargs=2, default=[128, 16])
    ap.add_argument('--batch', type=int, default=12, help='triplet groups per step (4 maps each)')
    ap.add_argument('--lr', type=float, default=3e-4)
    ap.add_argument('--wd', type=float, default=0.05)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--steps', type=int, default=3000)
    ap.add_argument('--minutes', type=float, default=0, help='stop after this long (the cosine schedule follows time)')
    ap.add_argument('--init', choices=['default', 'vit', 'analytic'], default='default',
                    help="how the head starts: PyTorch's own layer init (cls and positions 0.02 normal), 0.02 normal everywhere, or analytic_init_")
    ap.add_argument('--clip', type=float, default=5.0, help='gradient-norm clipping')
    ap.add_argument('--detach-head', type=int, default=1,
                    help='1: the official losses train CA and RN only (their gradients stop at the SA tokens), so the SA encoder, whose cls '
                         'ranks photos, follows the distillation alone (with both on the SA, the triplet and MSE gradients held the '
                         'distillation loss near 1 for 100 steps); 0: they reach the SA encoder too')
    ap.add_argument('--distill', type=float, default=1.0)
    ap.add_argument('--tri-loss', type=float, default=2.0)
    ap.add_argument('--rn-loss', type=float, default=4.0)
    ap.add_argument('--whiten', type=int, default=256)
    ap.add_argument('--val-every', type=int, default=250)
    ap.add_argument('--val-rn', type=int, default=5, help='after training: the RN ranking of the selected checkpoint on validation, '
                    'for this many sketches per class against every photo (0: not)')
    ap.add_argument('--val-classes', type=int, default=10)
    ap.add_argument('--split-seed', type=int, default=0)
    ap.add_argument('--seed', type=int, default=2026)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data, meta = load_cache(a.cache, a.val_classes, a.split_seed)
    tr, va = data['train'], data['val']
    cfg, model = build_model(a, tr['photo'][0].shape[1])
    pooled = {m: tr[m][0].float().mean((2, 3)) for m in ('sketch', 'photo')}
    wt = PooledTransform(pooled, a.whiten, torch.device('cpu'))
    targets = {m: F.normalize(wt(pooled[m], m), dim=1) for m in pooled}
    del pooled
    if a.init == 'analytic':
        analytic_init_(model, torch.cat([tr[m][0].float().mean((2, 3)) for m in ('sketch', 'photo')]))
    ghead = nn.Linear(a.dim, wt.dim)
    params = [p for p in model.parameters() if p.requires_grad] + list(ghead.parameters())
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.wd}, {'params': rest, 'weight_decay': 0.0}], lr=a.lr)
    sampler = TripletSampler(tr['sketch'][1], tr['photo'][1], a.seed)
    triplet = nn.TripletMarginLoss(margin=1.0, p=2)
    b = a.batch
    target = torch.cat([torch.full((b,), 0.99), torch.full((b,), 0.01)])
    gen = torch.Generator().manual_seed(a.seed + 1)
    log = open(out / 'log.jsonl', 'a')
    n_head = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f'loaded in {time.time() - t0:.0f} s; head {n_head:,} parameters, front {sum(p.numel() for p in model.sa.model.front.parameters()):,} (frozen)', flush=True)
    best = {'ret': -1.0}
    acc = {'loss': 0.0, 'distill': 0.0, 'tri': 0.0, 'mse': 0.0, 'n': 0}
    t_loop = time.time()
    model.train()
    model.sa.model.front.eval()
    for step in range(1, a.steps + 1):
        frac = min(1.0, (time.time() - t_loop) / (60 * a.minutes)) if a.minutes else step / a.steps
        lr = a.lr * min(1.0, step / a.warmup) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g['lr'] = lr
        i_sk, i_skn, i_im, i_imn = sampler.sample(b)
        isk, iim = np.concatenate([i_sk, i_skn]), np.concatenate([i_im, i_imn])
        maps = torch.cat([tr['sketch'][0][isk], tr['photo'][0][iim]]).float()
        flip = torch.rand(len(maps), generator=gen) < 0.5
        maps[flip] = maps[flip].flip(3)
        sa = model.sa.model.forward_front(maps)
        head_in = sa.detach() if a.detach_head else sa            # --detach-head: CA/RN learn on the SA tokens as they are
        cls_fea, score = model(head_in[:2 * b], head_in[2 * b:])
        l_tri = triplet(cls_fea[0:b], cls_fea[2 * b:3 * b], cls_fea[3 * b:])
        l_mse = F.mse_loss(score.view(-1), target)
        tgt = torch.cat([targets['sketch'][isk], targets['photo'][iim]])
        l_d = (1 - F.cosine_similarity(ghead(sa[:, 0]), tgt, dim=1)).mean()
        loss = a.distill * l_d + a.tri_loss * l_tri + a.rn_loss * l_mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        for k, v in (('loss', loss), ('distill', l_d), ('tri', l_tri), ('mse', l_mse)):
            acc[k] += float(v)
        acc['n'] += 1
        if step % 50 == 0:
            rec = {'step': step, 'lr': lr, **{k: round(acc[k] / acc['n'], 4) for k in ('loss', 'distill', 'tri', 'mse')},
                   'minutes': round((time.time() - t_loop) / 60, 1)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + '\n')
            acc = {k: 0.0 for k in acc}
        done = frac >= 1.0 or step == a.steps
        if step % a.val_every == 0 or done:
            r = validate(model, va)
            rec = {'step': step, 'val': r, 'minutes': round((time.time() - t_loop) / 60, 1)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + '\n')
            log.flush()
            if r['ret']['map_all'] > best['ret']:
                best = {'ret': r['ret']['map_all'], 'step': step, 'val': r}
                save(model, out / 'best.pth', step, r)
        if done:
            break
    # The selected checkpoint's RN on validation too (reported, not used for selection; CA over 290 tokens per pair is
    # slow on a CPU, so on a subset of the sketches).
    sel = torch.load(out / 'best.pth', map_location='cpu')
    model.load_state_dict(sel['model'])
    if a.val_rn:
        best['val_with_rn'] = validate(model, va, rn=a.val_rn)
    summary = {'best': best, 'args': vars(a), 'config': cfg.to_json(), 'steps': step,
               'minutes': round((time.time() - t_loop) / 60, 1), 'cache': {'file': a.cache, 'layer': meta['layer'], 'bf16': meta['bf16']}}
    (out / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')
    print(json.dumps({'best': best}), flush=True)


def save(model, path, step, r):
    sd = model.state_dict()
    ck = {'model': type(sd)((k, v.detach().float().contiguous().clone()) for k, v in sd.items()),
          'epoch': step, 'map_all': np.float64(r['ret']['map_all']), 'precision_100': np.float64(r['ret']['precision_100']),
          'config': {'sa_heads': model.cfg.sa_heads, 'ca_heads': model.cfg.ca_heads, **zse_ref.front_meta(model.cfg, '')}}
    torch.save(ck, str(path) + '.tmp')
    Path(str(path) + '.tmp').replace(path)


if __name__ == '__main__':
    main()
