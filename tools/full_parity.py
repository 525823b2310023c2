#!/usr/bin/python3
"""Generator for the opt-in full-size (ViT-B/16, 224 px, heads 12/8) parity check. Nothing here is committed.

    /usr/bin/python3 tools/full_parity.py --out DIR [--n 2] [--seed S] [--force]

Writes into DIR:
  zse-full-random.pth     seeded random weights in the official checkpoint format (train.py's dict, fp32, dead
                          ca.encoder.layers.0 clone included, numpy-float64 metadata, no 'config' entry), ~409 MB
  inputs.npy              float32 [2n,3,224,224]: n sketches then n photos, image-like, values multiples of 2^-8
  expected.safetensors    float64 reference from the fp32 weights/inputs, stored fp32: sketch.emb [n,768],
                          photo.emb [n,768], ret.cosine [n,n], ret.distance [n,n], rn.score [n,n] (pair s*n+j)
  stamp.json              {version, seed, n}; when it and all files exist and match, nothing is regenerated.

Weights are initialised like the tiny fixtures (zse_ref.init_random_: fan-in scaled, LN params and cls/pos
randomised; RN MLP calibrated on these pairs so the scores spread). ~2 cores: see tools/README.md for timings.
"""
import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zse_ref as Z  # noqa: E402
from safetensors_min import save_file, load_file  # noqa: E402

VERSION = 1
DEFAULT_SEED = 2021  # options.py's default seed, for flavour
FILES = ('zse-full-random.pth', 'inputs.npy', 'expected.safetensors')


def stamp_of(seed, n):
    return {'version': VERSION, 'seed': seed, 'n': n}


def up_to_date(out, stamp, files=FILES):
    """True when out holds `files`, stamp.json equal to `stamp`, and expected.safetensors stamped the same
    (tools/caan_full_parity.py uses it too)."""
    p = os.path.join(out, 'stamp.json')
    if not all(os.path.exists(os.path.join(out, f)) for f in tuple(files) + ('stamp.json',)):
        return False
    try:
        with open(p) as f:
            if json.load(f) != stamp:
                return False
        _, meta = load_file(os.path.join(out, 'expected.safetensors'))
        return meta.get('sketchgpu.stamp') == json.dumps(stamp, sort_keys=True)
    except Exception:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--n', type=int, default=2, help='sketches and photos each (n*n pairs)')
    ap.add_argument('--seed', type=int, default=DEFAULT_SEED)
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='images run concurrently')
    ap.add_argument('--force', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(1)                         # parallelism comes from the thread pool below
    stamp = stamp_of(a.seed, a.n)
    os.makedirs(a.out, exist_ok=True)
    if not a.force and up_to_date(a.out, stamp):
        print(f'full_parity: {a.out} is up to date ({stamp}); nothing to do')
        return
    t0 = time.time()
    sp = os.path.join(a.out, 'stamp.json')
    if os.path.exists(sp):
        os.remove(sp)                                # invalidate while regenerating

    cfg = Z.ZseConfig.full()
    with torch.no_grad():
        model = Z.Model(cfg).float().eval()
        n_keys, n_params, n_used = Z.check_state_dict(model)
        assert (n_keys, n_used, n_params) == (210, 194, 102180632), (n_keys, n_used, n_params)
        Z.init_random_(model, a.seed)
        t_init = time.time()
        print(f'[full] model built + random init: {n_keys} keys ({n_used} used), {n_params:,} params '
              f'({t_init - t0:.1f}s)', flush=True)

        rng = np.random.default_rng(a.seed + 1)
        sk = Z.make_sketches(rng, a.n, cfg.image_size)
        im = Z.make_photos(rng, a.n, cfg.image_size)

        model.double()                               # fp32 values are exact in float64
        # Debian's torch uses the single-threaded reference BLAS: run independent images / sketches in threads
        # (torch releases the GIL inside ops) instead of relying on intra-op parallelism.
        pool = ThreadPoolExecutor(max_workers=max(1, a.threads))
        imgs = np.concatenate([sk, im])

        def sa_one(i):
            t1 = time.time()
            r = model.sa(torch.from_numpy(imgs[i:i + 1]).double())
            print(f'[full] SA image {i}: {time.time() - t1:.1f}s', flush=True)
            return r
        sa_all = torch.cat(list(pool.map(sa_one, range(imgs.shape[0]))))
        sa = {'sketch': sa_all[:a.n], 'photo': sa_all[a.n:]}
        assert sa_all.shape == (2 * a.n, cfg.tokens, cfg.dim)
        t_sa = time.time()

        def pairs_of(s):                             # pairs s*n .. s*n+n-1
            return model.pair_all(sa['sketch'][s:s + 1], sa['photo'])
        parts = list(pool.map(pairs_of, range(a.n)))
        pairs = {k: torch.cat([p[k] for p in parts]) for k in ('pair.cos', 'pair.anchors.sketch', 'ret.distance')}
        pairs['ret.distance'] = pairs['ret.distance'].view(a.n, a.n)
        gains = Z.calibrate_rn_(model, pairs['pair.cos'].flatten(1))
        pairs['rn.score'] = model.rn(pairs['pair.cos'].flatten(1)).view(a.n, a.n)   # only the RN changed
        assert pairs['pair.anchors.sketch'].shape == (a.n * a.n, 49, 512)
        assert pairs['pair.cos'].shape == (a.n * a.n, 49, 49)
        t_pairs = time.time()
        print(f'[full] SA {t_sa - t_init:.1f}s; CA+RN for {a.n * a.n} pairs {t_pairs - t_sa:.1f}s; '
              f'RN gains {[round(g, 3) for g in gains]}', flush=True)

        emb_sk = torch.nn.functional.normalize(sa['sketch'][:, 0], p=2, dim=1, eps=1e-12)
        emb_im = torch.nn.functional.normalize(sa['photo'][:, 0], p=2, dim=1, eps=1e-12)
        exp = {
            'sketch.emb': emb_sk, 'photo.emb': emb_im, 'ret.cosine': emb_sk @ emb_im.t(),
            'ret.distance': pairs['ret.distance'], 'rn.score': pairs['rn.score'],
        }
        exp = {k: v.numpy().astype(np.float32) for k, v in exp.items()}

        model.float()
        tmp = os.path.join(a.out, FILES[0] + '.tmp')
        Z.save_official_pth(model, tmp, extra_config=False)
        os.replace(tmp, os.path.join(a.out, FILES[0]))
        np.save(os.path.join(a.out, 'inputs.npy'), np.concatenate([sk, im]).astype(np.float32))
        meta = {'sketchgpu.stamp': json.dumps(stamp, sort_keys=True), 'sketchgpu.n': str(a.n),
                'sketchgpu.pair_order': 'p = s * n + j', 'sketchgpu.inputs': 'inputs.npy: n sketches then n photos'}
        save_file(exp, os.path.join(a.out, 'expected.safetensors'), meta)
        with open(sp, 'w') as f:
            json.dump(stamp, f)
    sc = exp['rn.score']
    print(f'[full] rn.score {sc.ravel().round(4).tolist()}  ret.cosine {exp["ret.cosine"].ravel().round(4).tolist()}')
    print(f'[full] done in {time.time() - t0:.1f}s -> {a.out} '
          f'(pth {os.path.getsize(os.path.join(a.out, FILES[0])) / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
