#!/usr/bin/python3
"""Data loading, the engine's preprocessing, and the ZSE-SBIR retrieval metrics (../shared/docs/zse-sbir.md §5, §6).

Run with Debian's /usr/bin/python3 (torch 1.13 CPU, numpy, Pillow, OpenCV). Used by tools/training/train_zse.py; also a CLI:

    /usr/bin/python3 tools/training/eval_zse.py CKPT.pth --split unseen21 [--modes ret,rn] [--json out.json]
    /usr/bin/python3 tools/training/eval_zse.py --chance --split unseen21          # chance level of the four metrics

- Preprocessing is the reference's (§5), at the model's input size S = 16 * grid: photos
  `Image.open(p).resize((S, S)).convert('RGB')` (Pillow's default bicubic, antialiased); sketches `cv2.imread`,
  BGR->RGB, whitespace crop (ink = R+G+B <= 300, margin 10/9 px), `cv2.resize` INTER_LINEAR by ratio, white square
  padding. Then (x/255 - 0.5)/0.5. These are the functions sketchgpu's TypeScript preprocessing reproduces.
  `--prescale` (a diagnostic, not the engine's path) first brings larger images to S the way all125-128 was made.
- Metrics exactly as utils/ap.py `calculate` (§6.2): ranking by np.argsort (default quicksort) of the distance
  (ret: 1 - cosine of the L2-normalised SA cls embeddings, which ranks as the reference's pairwise_distance;
  rn: -score), VOC-interpolated AP over the full ranking (mAP@all) and the top 200 (P = min(200, #relevant)),
  and precision_eval (mean of rel[:min(K, #relevant)]) for K = 100, 200; nanmean over queries.
- rn mode runs CA + anchor conv + cosine + RN for every sketch x photo pair, with the per-image CA projections
  cached (checked against zse_ref.Model.pair_all by `--selftest`).
- The unseen split (`unseen21`: ../shared/data/sketchy/unseen21-256) must only be read for final measurements.
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent
sys.path[:0] = [str(TOOLS / 'training'), str(TOOLS / 'reference')]
import zse_ref  # noqa: E402

SHARED = Path(os.environ.get('SKETCHGPU_SHARED', REPO.parent / 'shared')) / 'data'
ALL128 = SHARED / 'sketchy' / 'all125-128'
UNSEEN256 = SHARED / 'sketchy' / 'unseen21-256'
UNSEEN_LIST = SHARED / 'splits' / 'test_class_sketchy21.txt'
CACHE = REPO / '.cache' / 'train'


# ----------------------------------------------------------------------------------------------------------------
# Classes and splits
# ----------------------------------------------------------------------------------------------------------------
# The split lives in tools/training/splits.py (numpy only; the honesty test runs it); re-exported here for the tools' use.
from splits import check_purpose, seen_classes, split_seen, unseen_classes  # noqa: E402,F401


# ----------------------------------------------------------------------------------------------------------------
# Reference preprocessing (ZSE-SBIR data_utils/utils.py, MIT), size as a parameter -> uint8 HWC
# ----------------------------------------------------------------------------------------------------------------
def _remove_white_space_image(img_np, padding):
    h, w, c = img_np.shape
    s = np.sum(img_np, axis=2)
    Y, X = np.where(s <= 300)
    ymin, ymax, xmin, xmax = np.min(Y), np.max(Y), np.min(X), np.max(X)
    return img_np[max(0, ymin - padding):min(h, ymax + padding), max(0, xmin - padding):min(w, xmax + padding), :]


def _resize_image_by_ratio(img_np, size):
    import cv2
    h, w = img_np.shape[:2]
    ratio = h / w
    if h > w:
        return cv2.resize(img_np, (int(size / ratio), size,))
    return cv2.resize(img_np, (size, int(size * ratio),))


def _make_img_square(img_np):
    h, w, c = img_np.shape
    if h > w:
        d1 = (h - w) // 2
        d2 = (h - w) - d1
        w1 = np.ones((h, d1, c), dtype=img_np.dtype) * np.max(img_np)
        w2 = np.ones((h, d2, c), dtype=img_np.dtype) * np.max(img_np)
        return np.hstack([w1, img_np, w2])
    d1 = (w - h) // 2
    d2 = (w - h) - d1
    w1 = np.ones((d1, w, c), dtype=img_np.dtype) * np.max(img_np)
    w2 = np.ones((d2, w, c), dtype=img_np.dtype) * np.max(img_np)
    return np.vstack([w1, img_np, w2])


def prescale_size(w, h, size):
    """The size `prescale` brings a w x h image to: longest side `size`, aspect kept (None: not larger than size)."""
    if max(w, h) <= size:
        return None
    return (max(1, round(w * size / max(w, h))), max(1, round(h * size / max(w, h))))


def prescale_pil(im, size):
    """--prescale on a PIL image: Pillow's antialiased bilinear resize to longest side `size` when it is larger (the
    form of all125-128, the demo weights' training images, made so from the 256 px originals); else unchanged."""
    from PIL import Image
    ps = prescale_size(im.width, im.height, size)
    return im.resize(ps, Image.BILINEAR) if ps else im


def sketch_uint8(path, size, prescale=False):
    import cv2
    img = cv2.imread(str(path))
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if prescale:
        from PIL import Image
        img = np.asarray(prescale_pil(Image.fromarray(img), size))
    img = _remove_white_space_image(img, 10)
    img = _resize_image_by_ratio(img, size)
    img = _make_img_square(img)
    assert img.dtype == np.uint8 and img.shape == (size, size, 3), img.shape
    return np.ascontiguousarray(img)


def photo_uint8(path, size, prescale=False):
    from PIL import Image
    im = Image.open(path)
    if prescale:
        im = prescale_pil(im, size)
    a = np.asarray(im.resize((size, size)).convert('RGB'))
    assert a.dtype == np.uint8 and a.shape == (size, size, 3)
    return a


def to_input(u8):
    """uint8 [N,H,W,3] (or [H,W,3]) -> float32 [N,3,H,W] in [-1,1], as ToTensor + Normalize(0.5, 0.5)."""
    t = torch.from_numpy(np.ascontiguousarray(u8))
    if t.dim() == 3:
        t = t[None]
    return (t.permute(0, 3, 1, 2).float().div(255) - 0.5) / 0.5


def load_split(root, classes, size, cache_name=None, *, purpose, prescale=False):
    """{'sketch','photo': uint8 [N,S,S,3], 'sketch_label','photo_label': int64 [N], 'sketch_files','photo_files'}.
    Files in sorted order per class, classes in the given order; cached as .npz under .cache/train/.
    purpose: 'train', 'select', 'cache' or 'final-eval'; only 'final-eval' may read an unseen class (splits.py).
    prescale: images larger than `size` first get Pillow's antialiased bilinear resize (longest side `size`)."""
    check_purpose(root, classes, purpose)
    if cache_name and prescale:
        cache_name += '-prescale'
    if cache_name:
        cp = CACHE / f'data-{cache_name}-{size}.npz'
        if cp.exists():
            z = np.load(cp, allow_pickle=False)
            out = {k: z[k] for k in z.files}
            if list(out['classes']) == list(classes):
                return out
    out = {'classes': np.array(classes)}
    for mod, fn in (('sketch', sketch_uint8), ('photo', photo_uint8)):
        imgs, labels, files = [], [], []
        for ci, c in enumerate(classes):
            for p in sorted((Path(root) / mod / c).iterdir()):
                imgs.append(fn(p, size, prescale))
                labels.append(ci)
                files.append(f'{mod}/{c}/{p.name}')
        out[mod] = np.stack(imgs)
        out[f'{mod}_label'] = np.array(labels, dtype=np.int64)
        out[f'{mod}_files'] = np.array(files)
    if cache_name:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cp.with_name(f'{cp.name}.{os.getpid()}.tmp')     # atomic: concurrent runs may share the cache
        with open(tmp, 'wb') as f:
            np.savez(f, **out)
        os.replace(tmp, cp)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Metrics (utils/ap.py)
# ----------------------------------------------------------------------------------------------------------------
def voc_ap(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def voc_ap_fast(rec, prec):
    """voc_ap with the envelope as a reversed cumulative max (same result)."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def voc_eval(rel, top=None):
    P = np.sum(rel)
    if top is not None:
        rel = rel[:top]
        P = np.min([top, P])
    tp = np.cumsum(rel)
    fp = np.cumsum(1 - rel)
    with np.errstate(invalid='ignore', divide='ignore'):
        rec = tp / float(P)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return voc_ap_fast(rec, prec)


def precision_eval(rel, k):
    n = int(min(k, np.sum(rel)))
    return np.mean(rel[:n]) if n > 0 else np.nan


def query_metrics(distance, class_same):
    """The four metrics of §6.2 per query (arrays [Nq]) from a [Nq, Ng] distance matrix (ascending = better) and
    0/1 relevance."""
    arg = distance.argsort()                       # default quicksort, as the reference
    rel = np.take_along_axis(class_same, arg, axis=1)
    res = {'map_all': [], 'map_200': [], 'precision_100': [], 'precision_200': []}
    for r in rel:
        res['map_all'].append(voc_eval(r))
        res['map_200'].append(voc_eval(r, 200))
        res['precision_100'].append(precision_eval(r, 100))
        res['precision_200'].append(precision_eval(r, 200))
    return {k: np.array(v, dtype=np.float64) for k, v in res.items()}


def calculate(distance, class_same):
    """The four metrics of §6.2: the means over queries of query_metrics."""
    return {k: float(np.nanmean(v)) for k, v in query_metrics(distance, class_same).items()}


def within_metrics(feat, labels):
    """Retrieval inside one modality (a diagnostic: does an encoder keep the classes apart on its own?): each image
    queries all the others of its modality by cosine of the L2-normalised rows of `feat` [N, D] (numpy); itself is
    left out. mAP@all (VOC, as `calculate`) and P@10, means over queries."""
    f = feat / np.linalg.norm(feat, axis=1, keepdims=True)
    dist = 1.0 - f @ f.T
    np.fill_diagonal(dist, np.inf)                 # sorted last, then dropped
    same = (labels[:, None] == labels[None, :]).astype(np.int64)
    arg = dist.argsort()[:, :-1]
    rel = np.take_along_axis(same, arg, axis=1)
    return {'map_all': float(np.mean([voc_eval(r) for r in rel])), 'precision_10': float(np.mean(rel[:, :10]))}


def chance_metrics(sk_label, im_label, draws=200, seed=0):
    """Expected metrics of a uniformly random ranking: mean (and std) over `draws` random permutations per query."""
    class_same = (sk_label[:, None] == im_label[None, :]).astype(np.int64)
    rng = np.random.RandomState(seed)
    acc = []
    for _ in range(draws):
        acc.append(calculate(rng.rand(*class_same.shape), class_same))
    return {k: float(np.mean([a[k] for a in acc])) for k in acc[0]} | \
        {k + '_std_over_draws': float(np.std([a[k] for a in acc])) for k in acc[0]}


# ----------------------------------------------------------------------------------------------------------------
# Model evaluation
# ----------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def sa_features(model, u8, batch=64):
    """SA outputs [N,T,D] (float32, on the model's device) of uint8 images."""
    dev = next(model.parameters()).device
    outs = []
    for i in range(0, len(u8), batch):
        outs.append(model.sa(to_input(u8[i:i + batch]).to(dev)).float())
    return torch.cat(outs)


def _mha_cached(mha, q, k, v):
    """CA attention with the projected q [Nq?..], k, v already computed, [B,T,D] each -> [B,T,D] (before linears.3)."""
    b, t, d = q.shape
    h, dk = mha.h, mha.d_k
    q = q.view(b, t, h, dk).transpose(1, 2)
    k = k.view(b, -1, h, dk).transpose(1, 2)
    v = v.view(b, -1, h, dk).transpose(1, 2)
    s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(dk)
    x = torch.matmul(F.softmax(s, dim=-1), v)
    return mha.linears[3](x.transpose(1, 2).reshape(b, t, h * dk))


def _layer_rest(layer, v_in, attn_out):
    x = layer.sublayer[0].norm(v_in + attn_out)
    return layer.sublayer[1].norm(x + layer.feed_forward(x))


@torch.no_grad()
def rn_scores(model, sa_sk, sa_im, chunk_pairs=2048):
    """RN score [Ns, Np] for every pair, identical to Model.pair_all's rn.score (eval mode)."""
    l1 = model.ca.encoder.layer1[0]            # sketch side: q=sk, k=im, v=sk
    l2 = model.ca.encoder.layer2[0]            # photo side:  q=im, k=sk, v=im
    lin1, lin2 = l1.self_attn.linears, l2.self_attn.linears
    q1, v1, k2 = lin1[0](sa_sk), lin1[2](sa_sk), lin2[1](sa_sk)     # per sketch
    k1, q2, v2 = lin1[1](sa_im), lin2[0](sa_im), lin2[2](sa_im)     # per photo
    ns, np_ = sa_sk.size(0), sa_im.size(0)
    dev = sa_sk.device
    out = torch.empty(ns, np_, device=dev)
    per = max(1, chunk_pairs // np_)
    jj = torch.arange(np_, device=dev)
    for s0 in range(0, ns, per):
        ss = torch.arange(s0, min(ns, s0 + per), device=dev)
        si = ss.repeat_interleave(np_)
        ji = jj.repeat(len(ss))
        a1 = _mha_cached(l1.self_attn, q1[si], k1[ji], v1[si])
        ca_sk = _layer_rest(l1, sa_sk[si], a1)
        a2 = _mha_cached(l2.self_attn, q2[ji], k2[si], v2[ji])
        ca_im = _layer_rest(l2, sa_im[ji], a2)
        down = model.anchors_of(torch.cat((ca_sk, ca_im)))
        p = len(si)
        cos = zse_ref.cos_similar(down[:p], down[p:]).view(p, -1)
        out[ss] = model.rn(cos).view(len(ss), np_).float()
    return out


@torch.no_grad()
def evaluate(model, data, modes=('ret', 'rn'), log=None, within=False):
    """Metrics of `model` on a split from load_split: {'ret': {...}, 'rn': {...}, 'n_sketch', 'n_photo', timings};
    `within` adds sketch->sketch and photo->photo retrieval by the SA cls (within_metrics)."""
    was = model.training
    model.eval()
    t0 = time.time()
    sa_sk = sa_features(model, data['sketch'])
    sa_im = sa_features(model, data['photo'])
    class_same = (data['sketch_label'][:, None] == data['photo_label'][None, :]).astype(np.int64)
    res = {'n_sketch': int(len(sa_sk)), 'n_photo': int(len(sa_im)), 'sa_seconds': round(time.time() - t0, 1)}
    if 'ret' in modes:
        es = F.normalize(sa_sk[:, 0], p=2, dim=1, eps=1e-12)
        ei = F.normalize(sa_im[:, 0], p=2, dim=1, eps=1e-12)
        res['ret'] = calculate((1.0 - es @ ei.t()).cpu().numpy(), class_same)
    if within:
        for mod, sa in (('sketch', sa_sk), ('photo', sa_im)):
            res[f'{mod}_{mod}'] = within_metrics(sa[:, 0].cpu().numpy().astype(np.float64), data[f'{mod}_label'])
    if 'rn' in modes:
        t1 = time.time()
        sc = rn_scores(model, sa_sk, sa_im)
        res['rn'] = calculate((-sc).cpu().numpy(), class_same)
        res['rn_seconds'] = round(time.time() - t1, 1)
    model.train(was)
    return res


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------
def config_from_state_dict(sd, sa_heads, ca_heads, name='loaded', front=None):
    """ZseConfig read off the shapes (the same inference the TypeScript engine makes). A front variant (its
    sa.model.front.* tensors) needs `front` = {'front', 'front_input', 'image_size'} from the file's config/metadata."""
    dim = sd['sa.model.cls'].shape[-1]
    tokens = sd['sa.model.pos_embedding'].shape[1]
    grid = int(round(math.sqrt(tokens - 1)))
    depth = len({k.split('.')[4] for k in sd if k.startswith('sa.model.transformer.layers.')})
    if 'sa.model.front.convs.conv2d_1.weight' in sd:
        if not front or not front.get('front'):
            raise SystemExit('error: front-variant weights without their front config\nhint: write them with tools/training/ship_front.py')
        extra = dict(stem=(), front=str(front['front']), front_input=int(front['front_input']), input_size=int(front['image_size']),
                     front_div=32 // sd['sa.model.front.convs.conv2d_1.weight'].shape[0])
    else:
        extra = dict(stem=tuple(sd[f'sa.model.scale.seq.{i}.weight'].shape[0] for i in (0, 2, 4)))
    return zse_ref.ZseConfig(
        dim=dim, depth=depth, sa_heads=sa_heads,
        mlp_dim=sd['sa.model.transformer.layers.0.0.mlp.net.0.weight'].shape[0], grid=grid, ca_heads=ca_heads,
        ca_ff=sd['ca.encoder.layer1.0.feed_forward.w_1.weight'].shape[0], anchor_dim=sd['conv2d.weight'].shape[0],
        rn_hidden=(sd['rn.rn.0.weight'].shape[0], sd['rn.rn.3.weight'].shape[0]), name=name, **extra)


def model_from_state_dict(sd, sa_heads, ca_heads, front=None):
    """The reference model (eval mode) of a state dict, its shapes read off the tensors and its head counts given.
    The dead `ca.encoder.layers.0.*` clone (zse_ref.DEAD_PREFIX: never used by the forward, dropped from sketchgpu
    files) may be missing; the model keeps its own initial values there."""
    model = zse_ref.Model(config_from_state_dict(sd, sa_heads, ca_heads, front=front))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith(zse_ref.DEAD_PREFIX)]
    if missing or unexpected:
        raise SystemExit(f'error: the weights do not fit the model read off their shapes: missing {missing[:4]}, '
                         f'unexpected {unexpected[:4]}\nhint: pass an official-layout .pth or a sketchgpu ZSE .safetensors')
    return model.eval()


def load_pth(path):
    """An official-layout .pth ({'model': state_dict, 'config': {...}}) or a sketchgpu ZSE .safetensors (float16 read
    as float32, head counts from its metadata) -> (model, checkpoint dict)."""
    if str(path).endswith('.safetensors'):
        from safetensors_min import load_file
        tensors, meta = load_file(path)
        quant = [k for k in tensors if k.endswith('.weight_q')]   # a quantised front (tools/training/ship_front.py)
        if quant:
            sys.path.insert(0, str(TOOLS / 'teacher'))
            from front import dequantize
        for k in quant:
            base = k[:-len('_q')]                                      # <name>.weight
            tensors[base] = dequantize(tensors, base[:-len('.weight')])
            for suffix in ('_q', '_scale', '_min'):
                del tensors[base + suffix]
        sd = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
        cfg_d = {'sa_heads': int(meta.get('sketchgpu.sa_heads', 12)), 'ca_heads': int(meta.get('sketchgpu.ca_heads', 8)),
                 **{k: meta[f'sketchgpu.{k}'] for k in ('front', 'front_input', 'image_size') if f'sketchgpu.{k}' in meta}}
        return model_from_state_dict(sd, cfg_d['sa_heads'], cfg_d['ca_heads'], front=cfg_d), {'model': sd, 'config': cfg_d}
    ck = torch.load(path, map_location='cpu')
    cfg_d = ck.get('config', {})
    return model_from_state_dict(ck['model'], int(cfg_d.get('sa_heads', 12)), int(cfg_d.get('ca_heads', 8)), front=cfg_d), ck


@torch.no_grad()
def selftest():
    """rn_scores == Model.pair_all on a small random model (float64)."""
    torch.manual_seed(0)
    cfg = zse_ref.ZseConfig(dim=32, depth=1, sa_heads=4, mlp_dim=48, grid=8, stem=(4, 8, 16), ca_heads=4, ca_ff=40,
                            anchor_dim=8, rn_hidden=(16, 4), name='t')
    m = zse_ref.init_random_(zse_ref.Model(cfg), 3).double().eval()
    sk, im = torch.randn(3, cfg.tokens, 32).double(), torch.randn(5, cfg.tokens, 32).double()
    ref = m.pair_all(sk, im)['rn.score']
    got = rn_scores(m, sk, im, chunk_pairs=7)
    err = (ref - got.double()).abs().max().item()
    # metric sanity: a perfect ranking gives 1.0 everywhere
    lab = np.repeat(np.arange(4), 30)
    cs = (lab[:, None] == lab[None, :]).astype(np.int64)
    perfect = calculate(1.0 - cs.astype(np.float64), cs)
    print(f'selftest: rn_scores max |diff| vs pair_all {err:.2e}; perfect ranking -> {perfect}')
    assert err < 1e-6 and all(abs(v - 1.0) < 1e-12 for v in perfect.values())
    # --prescale: a 256 px file is first Pillow-bilinear-resized to 128 (as all125-128 was made), then the reference
    # pipeline; a file at or below the size is untouched; the aspect is kept
    import tempfile
    from PIL import Image
    assert prescale_size(256, 256, 128) == (128, 128) and prescale_size(300, 150, 128) == (128, 64)
    assert prescale_size(128, 128, 128) is None and prescale_size(100, 60, 128) is None
    rng = np.random.default_rng(0)
    big = np.full((256, 256, 3), 255, np.uint8)
    big[60:200, 90:94] = 0
    big[100:104, 40:220] = rng.integers(0, 60, (4, 180, 3))
    with tempfile.TemporaryDirectory() as d:
        Image.fromarray(big).save(f'{d}/big.png')
        small = np.asarray(Image.fromarray(big).resize((128, 128), Image.BILINEAR))
        Image.fromarray(small).save(f'{d}/small.png')
        Image.fromarray(big).save(f'{d}/big.jpg', quality=95)
        Image.open(f'{d}/big.jpg').resize((128, 128), Image.BILINEAR).save(f'{d}/small.bmp')
        same_sk = np.array_equal(sketch_uint8(f'{d}/big.png', 128, True), sketch_uint8(f'{d}/small.png', 128))
        same_ph = np.array_equal(photo_uint8(f'{d}/big.jpg', 128, True), photo_uint8(f'{d}/small.bmp', 128))
        untouched = np.array_equal(sketch_uint8(f'{d}/small.png', 128, True), sketch_uint8(f'{d}/small.png', 128))
        differs = not np.array_equal(sketch_uint8(f'{d}/big.png', 128, True), sketch_uint8(f'{d}/big.png', 128))
    print(f'selftest: prescale sketch == bilinear-128 file: {same_sk}; photo: {same_ph}; 128 px untouched: '
          f'{untouched}; differs from the reference path at 256 px: {differs}')
    assert same_sk and same_ph and untouched and differs
    # within_metrics (--within): each query ranks the others of its modality, itself left out; checked against the
    # same ranking built query by query with the query deleted, and on perfectly clustered features
    feat = rng.normal(size=(23, 5))
    lab = rng.integers(0, 4, 23)
    got = within_metrics(feat, lab)
    fn = feat / np.linalg.norm(feat, axis=1, keepdims=True)
    aps, p10 = [], []
    for q in range(23):
        keep = np.arange(23) != q
        order = np.argsort(1.0 - fn[keep] @ fn[q])
        rel = (lab[keep][order] == lab[q]).astype(np.int64)
        aps.append(voc_eval(rel))
        p10.append(rel[:10].mean())
    brute = {'map_all': float(np.mean(aps)), 'precision_10': float(np.mean(p10))}
    onehot = np.eye(4)[np.repeat(np.arange(4), 12)] + 0.01 * rng.normal(size=(48, 4))
    perfect_w = within_metrics(onehot, np.repeat(np.arange(4), 12))
    print(f'selftest: within_metrics {got} == query-by-query {brute}; perfect clusters -> {perfect_w}')
    assert all(abs(got[k] - brute[k]) < 1e-12 for k in got) and all(abs(v - 1.0) < 1e-12 for v in perfect_w.values())
    # load_pth reads a sketchgpu .safetensors (float16, dead clone dropped, heads in the metadata) as the same model
    from safetensors_min import save_file
    m4 = zse_ref.init_random_(zse_ref.Model(cfg), 5).eval()
    half = {k: v.detach().half().numpy() for k, v in m4.state_dict().items() if not k.startswith(zse_ref.DEAD_PREFIX)}
    x = torch.randn(2, 3, cfg.image_size, cfg.image_size)
    with tempfile.TemporaryDirectory() as d:
        save_file(half, f'{d}/w.safetensors', {'sketchgpu.sa_heads': '4', 'sketchgpu.ca_heads': '4'})
        back, _ = load_pth(f'{d}/w.safetensors')
        m4.load_state_dict({k: v.half().float() for k, v in m4.state_dict().items()})
        st_diff = (back.sa(x) - m4.sa(x)).abs().max().item()
    print(f'selftest: a .safetensors through load_pth: {back.cfg.sa_heads} SA heads, SA max |diff| vs the float16-rounded model {st_diff:.1e}')
    assert back.cfg.sa_heads == 4 and st_diff < 1e-5


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('checkpoint', nargs='?', help='official-format .pth ({"model": state_dict, "config": ...}) or a '
                                                  'sketchgpu ZSE .safetensors')
    ap.add_argument('--split', choices=['unseen21', 'val', 'train'], default='unseen21',
                    help='train: the 94 training classes (a diagnostic of fit, with --within)')
    ap.add_argument('--val-classes', type=int, default=10, help='for --split val: as in training')
    ap.add_argument('--split-seed', type=int, default=0, help='for --split val: as in training')
    ap.add_argument('--modes', default='ret,rn')
    ap.add_argument('--chance', action='store_true', help='chance level of the split (no model)')
    ap.add_argument('--size', type=int, default=None, help='input size for --chance (no effect on the numbers)')
    ap.add_argument('--json', help='write the result here')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--prescale', action='store_true',
                    help='bring images larger than the model input to it first (Pillow bilinear, antialiased), the form '
                         'the demo weights were trained on (all125-128 is that resize of the 256 px originals)')
    ap.add_argument('--within', action='store_true',
                    help='also sketch->sketch and photo->photo retrieval by the SA cls (a diagnostic of each encoder)')
    ap.add_argument('--selftest', action='store_true')
    ap.add_argument('--embed', nargs='+', metavar='IMAGE',
                    help='print the L2-normalised SA cls embeddings of these images (float32), like `sketchgpu embed`')
    ap.add_argument('--modality', choices=['sketch', 'photo'], default='sketch', help='for --embed')
    ap.add_argument('--compare', metavar='JSON',
                    help='for --embed: `sketchgpu embed --json` output to compare with (cosine per image)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.selftest:
        selftest()
        return
    if a.embed:
        model, _ = load_pth(a.checkpoint)
        size = model.cfg.image_size
        fn = sketch_uint8 if a.modality == 'sketch' else photo_uint8
        u8 = np.stack([fn(p, size, a.prescale) for p in a.embed])
        with torch.no_grad():
            emb = F.normalize(model.sa(to_input(u8))[:, 0], p=2, dim=1, eps=1e-12)
        res = {'embeddings': emb.tolist()}
        if a.compare:
            eng = torch.tensor(json.loads(Path(a.compare).read_text())['embeddings'], dtype=torch.float32)
            cos = (F.normalize(eng, dim=1) * emb).sum(1)
            res = {'images': a.embed, 'cosine_engine_vs_torch': cos.tolist(),
                   'max_abs_diff': float((eng - emb).abs().max())}
        print(json.dumps(res))
        return
    if a.chance:
        if a.split == 'unseen21':
            classes = unseen_classes()
            sl = np.concatenate([np.full(len(list((UNSEEN256 / 'sketch' / c).iterdir())), i) for i, c in
                                 enumerate(classes)])
            pl = np.concatenate([np.full(len(list((UNSEEN256 / 'photo' / c).iterdir())), i) for i, c in
                                 enumerate(classes)])
        else:
            train, val = split_seen(a.val_classes, a.split_seed)
            cls = train if a.split == 'train' else val
            sl = np.repeat(np.arange(len(cls)), 25)
            pl = np.repeat(np.arange(len(cls)), 25)
        res = {'split': a.split, 'n_sketch': int(len(sl)), 'n_photo': int(len(pl)), 'draws': 200,
               'chance': chance_metrics(sl, pl)}
    else:
        model, ck = load_pth(a.checkpoint)
        size = model.cfg.image_size
        if a.split == 'unseen21':
            data = load_split(UNSEEN256, unseen_classes(), size, 'unseen21', purpose='final-eval', prescale=a.prescale)
        elif a.split == 'train':
            train, _ = split_seen(a.val_classes, a.split_seed)
            data = load_split(ALL128, train, size, cache_name=f'train{a.val_classes}s{a.split_seed}', purpose='train', prescale=a.prescale)
        else:
            _, val = split_seen(a.val_classes, a.split_seed)
            vc = f'val{a.val_classes}s{a.split_seed}'
            data = load_split(ALL128, val, size, cache_name=vc, purpose='select', prescale=a.prescale)
        res = {'split': a.split, 'checkpoint': str(a.checkpoint), 'config': model.cfg.to_json(), 'prescale': a.prescale}
        res.update(evaluate(model, data, tuple(a.modes.split(',')), within=a.within))
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + '\n')


if __name__ == '__main__':
    main()
