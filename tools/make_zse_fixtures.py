#!/usr/bin/python3
"""Generate the ZSE-SBIR parity fixtures under test/fixtures/zse/ (deterministic, seeded).

    /usr/bin/python3 tools/make_zse_fixtures.py [--out test/fixtures/zse] [--only tiny64]

Per config <cfg> in (tiny64, tiny224):
  <cfg>.pth                   official checkpoint format (train.py), fp32, dead clone included, + our 'config' entry
  <cfg>.weights.safetensors   fp32, dead clone dropped, metadata sketchgpu.sa_heads / sketchgpu.ca_heads
  <cfg>.expected.safetensors  reference outputs computed in float64 from the fp32 weights/inputs, stored as fp32;
                              the inputs (*.input) are stored as F16, which holds them exactly (multiples of 2^-8)
  <cfg>.expected.json         config, tensor list and summary numbers for humans

Afterwards everything is re-checked through an independent numpy float64 implementation (explicit im2col convs,
per-head attention, a scalar loop for one head, the explicit §3.4 anchor formula, explicit cosine), reading the
files back from disk, and the full-size state_dict is checked against §4 (210 keys / 194 used / 102,180,632 params).
"""
import argparse
import copy
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zse_ref as Z  # noqa: E402
from safetensors_min import save_file, load_file  # noqa: E402

VERSION = 1
CONFIGS = {
    # name: (config, seed, n_sketches, n_photos)
    'tiny64': (Z.ZseConfig.tiny64(), 6401, 3, 2),
    'tiny224': (Z.ZseConfig.tiny224(), 22401, 2, 2),
}
SAVED = None  # filled per config: the list of saved names in the order of the brief


def saved_names(cfg):
    names = []
    for m in ('sketch', 'photo'):
        names += [f'{m}.input', f'{m}.patch', f'{m}.stem', f'{m}.tokens']
        names += [f'{m}.sa.layer{i}' for i in range(cfg.depth)]
        names += [f'{m}.sa', f'{m}.emb']
    names += ['ret.cosine', 'ret.distance', 'pair.ca.sketch', 'pair.ca.photo', 'pair.anchors.sketch',
              'pair.anchors.photo', 'pair.cos', 'rn.score']
    return names


# ------------------------------------------------------------------------------------------------------------------
# Independent numpy float64 implementation (reads the safetensors weights; shares no code with zse_ref's modules)
# ------------------------------------------------------------------------------------------------------------------
_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_conv(x, w, b, stride, pad):
    """x [C,H,W], w [O,C,kh,kw] -> [O,Ho,Wo] (im2col via sliding windows)."""
    kh, kw = w.shape[2:]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    y = np.einsum('chwij,ocij->ohw', win, w, optimize=True)
    return y if b is None else y + b[:, None, None]


def np_ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_ln_custom(x, a, b, eps=1e-6):
    n = x.shape[-1]
    mu = x.mean(-1, keepdims=True)
    std = np.sqrt(((x - mu) ** 2).sum(-1, keepdims=True) / (n - 1))
    return a * (x - mu) / (std + eps) + b


def np_softmax(s):
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def np_mha(q_in, k_in, v_in, wq, bq, wk, bk, wv, bv, wo, bo, heads, scale_after):
    """Per-head loop; q_in [Tq,D], k_in/v_in [Tk,D]. scale_after: multiply scores by dh^-0.5 (SA) vs divide by
    sqrt(dh) (CA) - numerically the same formula either way up to rounding."""
    d = q_in.shape[-1]
    dh = d // heads
    Q, K, V = q_in @ wq.T + bq, k_in @ wk.T + bk, v_in @ wv.T + bv
    outs = []
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        s = Q[:, sl] @ K[:, sl].T
        s = s * (dh ** -0.5) if scale_after else s / math.sqrt(dh)
        outs.append(np_softmax(s) @ V[:, sl])
    return np.concatenate(outs, -1) @ wo.T + bo


def scalar_head(q_in, k_in, v_in, wq, bq, wk, bk, wv, bv, h, heads):
    """Scalar triple-loop attention output (before the out projection) for one head h."""
    d = q_in.shape[-1]
    dh = d // heads
    rows = range(h * dh, (h + 1) * dh)

    def proj(x, w, b):
        return [[float(b[r]) + sum(float(w[r, c]) * float(x[t, c]) for c in range(d)) for r in rows]
                for t in range(x.shape[0])]
    Q, K, V = proj(q_in, wq, bq), proj(k_in, wk, bk), proj(v_in, wv, bv)
    out = []
    for i in range(len(Q)):
        s = [sum(Q[i][e] * K[j][e] for e in range(dh)) / math.sqrt(dh) for j in range(len(K))]
        m = max(s)
        ex = [math.exp(x - m) for x in s]
        z = sum(ex)
        out.append([sum(ex[j] / z * V[j][e] for j in range(len(K))) for e in range(dh)])
    return np.array(out)


def np_sa(W, cfg, img, log):
    """img [3,S,S] -> dict of SA intermediates for one image."""
    p = 'sa.model.'
    x1 = np_conv(img, W[p + 'embedding.weight'], W[p + 'embedding.bias'], 16, 0)
    h = img
    for i, (k, s, pd) in enumerate(((7, 2, 3), (3, 2, 1), (3, 2, 1), (3, 2, 1))):
        h = np_conv(h, W[p + f'scale.seq.{2 * i}.weight'], None, s, pd)
        if i < 3:
            h = np.maximum(h, 0)
    x2 = h
    G, D = cfg.grid, cfg.dim
    patch = x1.reshape(D, G * G).T            # token t = row*G + col
    stem = x2.reshape(D, G * G).T
    x = np.concatenate([W[p + 'cls'][0], (patch + stem) / 2], 0) + W[p + 'pos_embedding'][0]
    r = {'patch': patch, 'stem': stem, 'tokens': x}
    for L in range(cfg.depth):
        q = p + f'transformer.layers.{L}.0.'
        hN = np_ln(x, W[q + 'layer_norm_input.weight'], W[q + 'layer_norm_input.bias'])
        wqkv, bqkv = W[q + 'attention.to_qkv.weight'], W[q + 'attention.to_qkv.bias']
        args = []
        for j in range(3):
            args += [wqkv[j * D:(j + 1) * D], bqkv[j * D:(j + 1) * D]]
        a = np_mha(hN, hN, hN, *args, W[q + 'attention.to_out.0.weight'], W[q + 'attention.to_out.0.bias'],
                   cfg.sa_heads, True)
        if L == 0 and log is not None and cfg.grid <= 4:
            # scalar loop for head 1 of block 0 vs the vectorised per-head path
            h1 = scalar_head(hN, hN, hN, *args, 1, cfg.sa_heads)
            dh = D // cfg.sa_heads
            Qv = hN @ args[0].T + args[1]
            Kv = hN @ args[2].T + args[3]
            Vv = hN @ args[4].T + args[5]
            ref = np_softmax(Qv[:, dh:2 * dh] @ Kv[:, dh:2 * dh].T * dh ** -0.5) @ Vv[:, dh:2 * dh]
            log['sa_head1_scalar_vs_vec'] = max(log.get('sa_head1_scalar_vs_vec', 0), float(np.abs(h1 - ref).max()))
        x = x + a
        hN = np_ln(x, W[q + 'layer_norm_out.weight'], W[q + 'layer_norm_out.bias'])
        u = hN @ W[q + 'mlp.net.0.weight'].T + W[q + 'mlp.net.0.bias']
        u = 0.5 * u * (1 + _erf(u / math.sqrt(2)))
        x = x + u @ W[q + 'mlp.net.3.weight'].T + W[q + 'mlp.net.3.bias']
        r[f'sa.layer{L}'] = x
    r['sa'] = np_ln(x, W[p + 'transformer.encoder_norm.weight'], W[p + 'transformer.encoder_norm.bias'])
    c = r['sa'][0]
    r['emb'] = c / max(np.sqrt((c * c).sum()), 1e-12)
    return r


def np_ca_layer(W, pre, cfg, q, k, v, log=None):
    lin = [(W[pre + f'self_attn.linears.{i}.weight'], W[pre + f'self_attn.linears.{i}.bias']) for i in range(4)]
    a = np_mha(q, k, v, *lin[0], *lin[1], *lin[2], *lin[3], cfg.ca_heads, False)
    if log is not None and cfg.grid <= 4:
        dh = cfg.dim // cfg.ca_heads
        h1 = scalar_head(q, k, v, *lin[0], *lin[1], *lin[2], 1, cfg.ca_heads)
        Qv, Kv, Vv = q @ lin[0][0].T + lin[0][1], k @ lin[1][0].T + lin[1][1], v @ lin[2][0].T + lin[2][1]
        ref = np_softmax(Qv[:, dh:2 * dh] @ Kv[:, dh:2 * dh].T / math.sqrt(dh)) @ Vv[:, dh:2 * dh]
        log['ca_head1_scalar_vs_vec'] = max(log.get('ca_head1_scalar_vs_vec', 0), float(np.abs(h1 - ref).max()))
    x = np_ln_custom(v + a, W[pre + 'sublayer.0.norm.a'], W[pre + 'sublayer.0.norm.b'])
    f = np.maximum(x @ W[pre + 'feed_forward.w_1.weight'].T + W[pre + 'feed_forward.w_1.bias'], 0)
    f = f @ W[pre + 'feed_forward.w_2.weight'].T + W[pre + 'feed_forward.w_2.bias']
    return np_ln_custom(x + f, W[pre + 'sublayer.1.norm.a'], W[pre + 'sublayer.1.norm.b'])


def np_anchors(W, cfg, ca):
    """Explicit §3.4 formula: A[a=Y*G/2+X, o] = bias[o] + sum W[o,c,dy,dx] * buf[c*G^2 + (2Y+dy)*G + 2X+dx]."""
    G, D = cfg.grid, cfg.dim
    buf = ca[1:].reshape(-1)                  # row-major [G*G, D] without cls
    w, b = W['conv2d.weight'], W['conv2d.bias']
    ag = cfg.anchor_grid
    A = np.zeros((ag * ag, w.shape[0]))
    c = np.arange(D)
    for Y in range(ag):
        for X in range(ag):
            acc = b.copy()
            for dy in range(2):
                for dx in range(2):
                    acc = acc + w[:, :, dy, dx] @ buf[c * G * G + (2 * Y + dy) * G + 2 * X + dx]
            A[Y * ag + X] = acc
    return A


def np_forward(W, cfg, sk, im, log):
    out = {}
    per = {}
    for m, imgs in (('sketch', sk), ('photo', im)):
        rs = [np_sa(W, cfg, imgs[i], log) for i in range(imgs.shape[0])]
        per[m] = rs
        out[f'{m}.input'] = imgs
        for key in rs[0]:
            out[f'{m}.{key}'] = np.stack([r[key] for r in rs])
    es, ei = out['sketch.emb'], out['photo.emb']
    out['ret.cosine'] = es @ ei.T
    out['ret.distance'] = np.sqrt(((es[:, None, :] - ei[None, :, :] + 1e-6) ** 2).sum(-1))
    bs, bp = sk.shape[0], im.shape[0]
    keys = ('pair.ca.sketch', 'pair.ca.photo', 'pair.anchors.sketch', 'pair.anchors.photo', 'pair.cos')
    acc = {k: [] for k in keys}
    scores = np.zeros((bs, bp))
    for s in range(bs):
        for j in range(bp):
            xs, xi = out['sketch.sa'][s], out['photo.sa'][j]
            cs = np_ca_layer(W, 'ca.encoder.layer1.0.', cfg, xs, xi, xs, log)
            ci = np_ca_layer(W, 'ca.encoder.layer2.0.', cfg, xi, xs, xi)
            As, Ai = np_anchors(W, cfg, cs), np_anchors(W, cfg, ci)
            cos = np.zeros((As.shape[0], Ai.shape[0]))
            for a in range(As.shape[0]):
                for bb in range(Ai.shape[0]):
                    cos[a, bb] = (As[a] @ Ai[bb]) / np.sqrt(As[a] @ As[a]) / np.sqrt(Ai[bb] @ Ai[bb])
            cos = np.nan_to_num(cos, nan=0.0)
            h = cos.reshape(-1)
            h = np.maximum(h @ W['rn.rn.0.weight'].T + W['rn.rn.0.bias'], 0)
            h = np.maximum(h @ W['rn.rn.3.weight'].T + W['rn.rn.3.bias'], 0)
            z = h @ W['rn.rn.6.weight'].T + W['rn.rn.6.bias']
            scores[s, j] = 1 / (1 + np.exp(-z[0]))
            for k, v in zip(keys, (cs, ci, As, Ai, cos)):
                acc[k].append(v)
    for k in keys:
        out[k] = np.stack(acc[k])
    out['rn.score'] = scores
    return out


# ------------------------------------------------------------------------------------------------------------------
def build(name):
    cfg, seed, ns, npho = CONFIGS[name]
    model = Z.Model(cfg).float().eval()
    Z.init_random_(model, seed)
    rng = np.random.default_rng(seed + 1)
    sk = Z.make_sketches(rng, ns, cfg.image_size)
    im = Z.make_photos(rng, npho, cfg.image_size)
    sk_t, im_t = torch.from_numpy(sk), torch.from_numpy(im)

    # calibrate the last RN layer on these pairs (fp32 weights), then recompute everything in float64
    out = copy.deepcopy(model).double().eval().forward_all(sk_t.double(), im_t.double())
    gain = Z.calibrate_rn_(model, out['pair.cos'].flatten(1))
    m64 = copy.deepcopy(model).double().eval()
    out = m64.forward_all(sk_t.double(), im_t.double())

    # the official test-stage forward (model.py: cat -> ca -> raw view -> conv -> cosine -> rn) on the same pairs
    sk_temp = out['sketch.sa'].repeat_interleave(npho, 0)
    im_temp = out['photo.sa'].repeat(ns, 1, 1)
    with torch.no_grad():
        cls_fea, rn_scores = m64(sk_temp, im_temp, 'test')
    assert torch.equal(rn_scores.view(ns, npho), out['rn.score'])
    assert torch.equal(cls_fea[:ns * npho], out['pair.ca.sketch'][:, 0])

    # shape asserts
    T, D, A, C, G = cfg.tokens, cfg.dim, cfg.anchors, cfg.anchor_dim, cfg.grid
    P = ns * npho
    for m, n in (('sketch', ns), ('photo', npho)):
        assert out[f'{m}.patch'].shape == (n, G * G, D) and out[f'{m}.stem'].shape == (n, G * G, D)
        assert out[f'{m}.tokens'].shape == (n, T, D) and out[f'{m}.sa'].shape == (n, T, D)
        assert out[f'{m}.emb'].shape == (n, D)
    assert out['pair.ca.sketch'].shape == (P, T, D) and out['pair.anchors.sketch'].shape == (P, A, C)
    assert out['pair.cos'].shape == (P, A, A) and out['rn.score'].shape == (ns, npho)
    assert out['ret.cosine'].shape == (ns, npho) and out['ret.distance'].shape == (ns, npho)
    return cfg, seed, model, m64, sk, im, out, gain


def write(name, outdir):
    t0 = time.time()
    cfg, seed, model, m64, sk, im, out, gain = build(name)
    base = os.path.join(outdir, name)
    Z.save_official_pth(model, base + '.pth', extra_config=True)
    wt, wmeta = Z.weights_for_safetensors(model)
    save_file(wt, base + '.weights.safetensors', wmeta)
    names = saved_names(cfg)
    exp = {}
    for k in names:
        a = out[k].detach().numpy()
        exp[k] = a.astype(np.float16 if k.endswith('.input') else np.float32)
    meta = {'sketchgpu.fixture': name, 'sketchgpu.version': str(VERSION), 'sketchgpu.seed': str(seed),
            'sketchgpu.sa_heads': str(cfg.sa_heads), 'sketchgpu.ca_heads': str(cfg.ca_heads),
            'sketchgpu.note': 'float64 reference from the fp32 weights; *.input stored as F16 (exact)'}
    save_file(exp, base + '.expected.safetensors', meta)

    def rng_of(k):
        a = out[k].detach().numpy()
        return [float(a.min()), float(a.max())]
    summary = {
        'fixture': name, 'version': VERSION, 'seed': seed, 'config': cfg.to_json(),
        'n_sketches': int(sk.shape[0]), 'n_photos': int(im.shape[0]),
        'pair_order': 'p = s * n_photos + j',
        'inputs': '*.input are stored as F16; the values are multiples of 2^-8 in [-1, 1], so F16 holds the float32 '
                  'inputs exactly (this halves the file; read them as float32)',
        'reference': 'float64 forward of tools/zse_ref.py from the fp32 weights, rounded to float32',
        'rn_calibration_gains': gain,
        'tensors': {k: {'shape': list(exp[k].shape), 'dtype': str(exp[k].dtype)} for k in names},
        'rn.score': out['rn.score'].detach().numpy().tolist(),
        'rn.logit': out['rn.logit'].detach().numpy().tolist(),
        'ranges': {k: rng_of(k) for k in ('rn.score', 'pair.cos', 'ret.cosine', 'ret.distance', 'sketch.sa',
                                          'photo.sa', 'pair.ca.sketch', 'pair.anchors.sketch')},
        'files': {},
    }
    for suf in ('.pth', '.weights.safetensors', '.expected.safetensors'):
        summary['files'][name + suf] = os.path.getsize(base + suf)
    text = json.dumps(summary, indent=1)
    text = re.sub(r'\[\s*([-0-9.,e\s]*?)\s*\]', lambda m: '[' + ', '.join(x.strip() for x in m.group(1).split(',')) + ']',
                  text)                                          # short numeric lists on one line
    with open(base + '.expected.json', 'w') as f:
        f.write(text + '\n')
    print(f'[{name}] written in {time.time() - t0:.1f}s; rn.score {summary["ranges"]["rn.score"]}; '
          f'RN calibration gains {[round(g, 3) for g in gain]}')
    return cfg, out, base


def verify(name, cfg, out, base):
    """Independent check from the files on disk."""
    t0 = time.time()
    W32, wmeta = load_file(base + '.weights.safetensors')
    W = {k: v.astype(np.float64) for k, v in W32.items()}
    E, emeta = load_file(base + '.expected.safetensors')
    assert wmeta['sketchgpu.sa_heads'] == str(cfg.sa_heads) and wmeta['sketchgpu.ca_heads'] == str(cfg.ca_heads)
    assert sorted(W) == sorted(k for k in Z.expected_keys(cfg) if not k.startswith(Z.DEAD_PREFIX))
    # the .pth: official layout, same tensors, dead clone present and different from layer1/layer2
    ck = torch.load(base + '.pth', map_location='cpu')
    assert set(ck) == {'model', 'epoch', 'map_all', 'precision_100', 'config'}
    assert isinstance(ck['map_all'], np.float64) and ck['config'] == {'sa_heads': cfg.sa_heads,
                                                                     'ca_heads': cfg.ca_heads}
    assert list(ck['model'].keys()) == Z.expected_keys(cfg)
    for k, v in ck['model'].items():
        assert v.dtype == torch.float32
        if not k.startswith(Z.DEAD_PREFIX):
            assert np.array_equal(v.numpy(), W32[k]), k
    dead = ck['model']['ca.encoder.layers.0.self_attn.linears.0.weight'].numpy()
    assert not np.array_equal(dead, W32['ca.encoder.layer1.0.self_attn.linears.0.weight'])
    # stored values are the float32 rounding of the float64 results
    for k, v in E.items():
        ref = out[k].detach().numpy()
        assert v.shape == ref.shape, (k, v.shape, ref.shape)
        assert np.array_equal(v, ref.astype(v.dtype)), k
    assert np.array_equal(E['sketch.input'].astype(np.float64), out['sketch.input'].numpy())  # inputs exact in F16
    # independent numpy float64 forward from the files
    log = {}
    sk = E['sketch.input'].astype(np.float64)
    im = E['photo.input'].astype(np.float64)
    ref = np_forward(W, cfg, sk, im, log)
    worst = {}
    for k in E:
        a, b = out[k].detach().numpy(), ref[k]
        err = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
        worst[k] = err
        assert err < 1e-9, (k, err)
    # torch raw-view anchors == explicit formula (also via the module path on the CA outputs)
    a_mod = out['pair.anchors.sketch'].numpy()
    a_exp = np.stack([np_anchors(W, cfg, c) for c in out['pair.ca.sketch'].numpy()])
    anchor_err = float(np.abs(a_mod - a_exp).max())
    assert anchor_err < 1e-9
    # a proper NCHW permute would give something else (the quirk matters)
    g = cfg.grid
    wrong = torch.nn.functional.conv2d(out['pair.ca.sketch'][:, 1:].transpose(1, 2).reshape(-1, cfg.dim, g, g),
                                       torch.from_numpy(W['conv2d.weight']), torch.from_numpy(W['conv2d.bias']),
                                       stride=2)
    perm_diff = float(np.abs(wrong.flatten(2).transpose(1, 2).numpy() - a_mod).max())
    assert perm_diff > 1e-2
    print(f'[{name}] verified in {time.time() - t0:.1f}s: max rel err torch-vs-numpy {max(worst.values()):.2e}; '
          f'anchor formula {anchor_err:.1e}; permute-instead-of-view diff {perm_diff:.3f}'
          + ''.join(f'; {k} {v:.1e}' for k, v in log.items()))


def full_size_check():
    t0 = time.time()
    m = Z.Model(Z.ZseConfig.full())
    n_keys, n_params, n_used = Z.check_state_dict(m)
    assert (n_keys, n_used, n_params) == (210, 194, 102180632), (n_keys, n_used, n_params)
    sd = m.state_dict()
    used = sum(v.numel() for k, v in sd.items() if not k.startswith(Z.DEAD_PREFIX))
    sa = sum(v.numel() for k, v in sd.items() if k.startswith('sa.'))
    assert used == 98240536 and sa == 87946176
    # token / anchor shapes at full size (SA skipped: shapes only through the head on random tokens)
    with torch.no_grad():
        cfg = m.cfg
        x = torch.randn(2, cfg.tokens, cfg.dim)
        down = m.anchors_of(m.ca(x))
        assert down.shape == (2, 49, 512)
        x1 = m.sa.model.embedding(torch.zeros(1, 3, 224, 224))
        assert x1.shape == (1, 768, 14, 14) and cfg.tokens == 197
    print(f'[full] state_dict: {n_keys} keys ({n_used} used), {n_params:,} params ({used:,} used, SA {sa:,}); '
          f'anchors {tuple(down.shape)} ({time.time() - t0:.1f}s)')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test',
                                                  'fixtures', 'zse'))
    ap.add_argument('--only', choices=sorted(CONFIGS), action='append')
    ap.add_argument('--no-verify', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(a.out, exist_ok=True)
    full_size_check()
    for name in a.only or ['tiny64', 'tiny224']:
        cfg, out, base = write(name, a.out)
        if not a.no_verify:
            verify(name, cfg, out, base)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print(f'fixtures total: {total / 1e6:.3f} MB in {os.path.normpath(a.out)}')


if __name__ == '__main__':
    main()
