#!/usr/bin/python3
"""Generator for the opt-in full-size CAAN parity check (CaanConfig.full(): ViT-B/16 towers at 224 px, CLIP ViT-B's
text tower, 254,878,620 params). Nothing here is committed.

    /usr/bin/python3 tools/caan_full_parity.py --out DIR [--n 2] [--seed S] [--force]

Writes into DIR:
  caan-full-random.safetensors  seeded random weights (caan_ref.init_random_, sketch-photo RN calibrated on these
                                pairs), every tensor F32, metadata sketchgpu.model = caan + sketchgpu.config, ~1.02 GB
  expected.safetensors          the float64 reference from exactly those F32 weights, stored F32:
                                  sketch.input / photo.input [n,3,224,224] (image-like, multiples of 2^-8)
                                  sketch.proj / photo.proj [n,197,512] (projected tower tokens), sketch.emb, photo.emb
                                  [n,512], sim.sketch_photo [n,n]
                                  text.ids [2,77] (I32, tools/clip_tokenizer_ref.py), text.eot (I32),
                                  text.eot_features [2,512], text.emb [2,512], sim.text_photo, sim.text_sketch
                                  pair.anchors.sketch [n*n,49,512], pair.cos [n*n,49,49], rn.score [n,n] (p = s*n + j)
                                  text_photo.best / text_sketch.best [2*n,49] (each anchor's best word, p = t*n + j),
                                  text_photo.score / text_sketch.score [2,n] (local text-image alignment scores)
                                metadata: the stamp and the texts (JSON)
  stamp.json                    {version, seed, n}; when it and both files exist and match, nothing is regenerated.

Images run concurrently in threads (Debian's torch uses the single-threaded reference BLAS). ~2 cores: see
tools/README.md for timings. --preset tiny|demo runs the same plumbing on a small config (smoke test only; the
engine test wants full).
"""
import argparse
import json
import os
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caan_ref as C  # noqa: E402
import zse_ref as Z  # noqa: E402
from clip_tokenizer_ref import ClipTokenizer  # noqa: E402
from safetensors_min import save_file, load_file  # noqa: E402
import full_parity  # noqa: E402

VERSION = 2
DEFAULT_SEED = 2024
TEXTS = ['a giraffe',
         'a tall animal with a very long neck, a spotted coat, small horns on its head and long thin legs']
FILES = ('caan-full-random.safetensors', 'expected.safetensors')


def stamp_of(seed, n, preset):
    s = {'version': VERSION, 'seed': seed, 'n': n}
    if preset != 'full':
        s['preset'] = preset
    return s


def up_to_date(out, stamp):
    return full_parity.up_to_date(out, stamp, FILES)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True)
    ap.add_argument('--n', type=int, default=2, help='sketches and photos each (n*n pairs)')
    ap.add_argument('--seed', type=int, default=DEFAULT_SEED)
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='images run concurrently')
    ap.add_argument('--preset', default='full', choices=('full', 'demo', 'tiny'))
    ap.add_argument('--force', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(1)
    stamp = stamp_of(a.seed, a.n, a.preset)
    os.makedirs(a.out, exist_ok=True)
    if not a.force and up_to_date(a.out, stamp):
        print(f'caan_full_parity: {a.out} is up to date ({stamp}); nothing to do')
        return
    t0 = time.time()
    sp = os.path.join(a.out, 'stamp.json')
    if os.path.exists(sp):
        os.remove(sp)                                # invalidate while regenerating

    cfg = getattr(C.CaanConfig, a.preset)()
    n = a.n
    with torch.no_grad():
        model = C.Caan(cfg).float().eval()
        n_keys, n_params = C.check_state_dict(model)
        if a.preset == 'full':
            assert (n_keys, n_params) == (569, 254878620), (n_keys, n_params)
        C.init_random_(model, a.seed)                # values drawn in float64, stored float32
        model.double()                               # fp32 values are exact in float64
        t_init = time.time()
        print(f'[caan-full] model built + random init: {n_keys} tensors, {n_params:,} params '
              f'({t_init - t0:.1f}s)', flush=True)

        rng = np.random.default_rng(a.seed + 1)
        S = cfg.image.image_size
        sk = Z.make_sketches(rng, n, S).astype(np.float32)
        im = Z.make_photos(rng, n, S).astype(np.float32)
        ids = torch.tensor(ClipTokenizer().tokenize(TEXTS, cfg.text.context), dtype=torch.int64)

        pool = ThreadPoolExecutor(max_workers=max(1, a.threads))
        jobs = [('sketch', model.sketch, sk[i:i + 1]) for i in range(n)] + \
               [('photo', model.photo, im[i:i + 1]) for i in range(n)]

        def enc_one(j):
            m, tower, x = j
            t1 = time.time()
            tok, emb = model.encode_image(tower, torch.from_numpy(x).double())
            print(f'[caan-full] {m} tower, one image: {time.time() - t1:.1f}s', flush=True)
            return tok, emb
        text_job = pool.submit(lambda: model.text(ids))                # [Nt, L, width] after ln_final, EOT index
        res = list(pool.map(enc_one, jobs))
        x, eot = text_job.result()
        feat = x[torch.arange(x.size(0)), eot]                         # as Caan.encode_text
        t_emb = C.normalize(feat @ model.text.text_projection)
        tok = {'sketch': torch.cat([r[0] for r in res[:n]]), 'photo': torch.cat([r[0] for r in res[n:]])}
        emb = {'sketch': torch.cat([r[1] for r in res[:n]]), 'photo': torch.cat([r[1] for r in res[n:]])}
        t_towers = time.time()

        def pair_one(s):                                               # pairs s*n .. s*n+n-1
            return model.align.image_pair(tok['sketch'][s:s + 1].expand(n, -1, -1), tok['photo'])
        parts = list(pool.map(pair_one, range(n)))
        pr = {k: torch.cat([p[k] for p in parts]) for k in ('anchors.sketch', 'cos')}
        gains = Z.calibrate_rn_(types.SimpleNamespace(rn=model.align.rn), pr['cos'].flatten(1))
        for p in model.align.rn.parameters():                          # calibrate_rn_ rounds to f32 already
            assert torch.equal(p, p.float().double())
        score = model.align.rn(pr['cos'].flatten(1))[:, 0].view(n, n)  # only the RN changed
        t_pairs = time.time()
        print(f'[caan-full] towers + text {t_towers - t_init:.1f}s; CA+RN for {n * n} pairs '
              f'{t_pairs - t_towers:.1f}s; RN gains {[round(g, 3) for g in gains]}', flush=True)
        # text-image local alignment, every text x image pair of each side (the reference's key mask on padding)
        ttok = x @ model.text.text_projection                          # [Nt, L, E], as Caan.encode_text
        valid = torch.arange(ids.size(1))[None, :] <= eot[:, None]
        nt = ids.size(0)

        def text_one(job):
            which, m, t = job
            return model.align.text_pair(tok[m], ttok[t:t + 1].expand(n, -1, -1), valid[t:t + 1].expand(n, -1), which)
        text_jobs = [(w, m, t) for w, m in (('im', 'photo'), ('sk', 'sketch')) for t in range(nt)]
        text_res = list(pool.map(text_one, text_jobs))
        local = {}
        for m in ('photo', 'sketch'):
            parts = [r for (w, mm, t), r in zip(text_jobs, text_res) if mm == m]
            local[f'text_{m}.best'] = torch.cat([r['best'] for r in parts])
            local[f'text_{m}.score'] = torch.stack([r['score'] for r in parts])
        print(f'[caan-full] text-image alignment for {len(text_jobs) * n} pairs {time.time() - t_pairs:.1f}s', flush=True)

        exp = {
            'sketch.input': sk, 'photo.input': im,
            'sketch.proj': tok['sketch'], 'photo.proj': tok['photo'],
            'sketch.emb': emb['sketch'], 'photo.emb': emb['photo'],
            'sim.sketch_photo': emb['sketch'] @ emb['photo'].t(),
            'text.eot_features': feat, 'text.emb': t_emb,
            'sim.text_photo': t_emb @ emb['photo'].t(), 'sim.text_sketch': t_emb @ emb['sketch'].t(),
            'pair.anchors.sketch': pr['anchors.sketch'], 'pair.cos': pr['cos'], 'rn.score': score, **local,
        }
        exp = {k: (v if isinstance(v, np.ndarray) else v.numpy()).astype(np.float32) for k, v in exp.items()}
        exp['text.ids'] = ids.numpy().astype(np.int32)
        exp['text.eot'] = eot.numpy().astype(np.int32)

        weights = {k: v.float().numpy() for k, v in model.state_dict().items()}
        tmp = os.path.join(a.out, FILES[0] + '.tmp')
        save_file(weights, tmp, C.metadata(cfg))
        os.replace(tmp, os.path.join(a.out, FILES[0]))
        del weights
        meta = {'sketchgpu.stamp': json.dumps(stamp, sort_keys=True), 'sketchgpu.n': str(n),
                'sketchgpu.texts': json.dumps(TEXTS), 'sketchgpu.pair_order': 'p = s * n + j',
                'sketchgpu.reference': 'float64 forward of tools/caan_ref.py from the F32 weights'}
        save_file(exp, os.path.join(a.out, FILES[1]), meta)
        with open(sp, 'w') as f:
            json.dump(stamp, f)
    print(f'[caan-full] text_photo.score {np.round(exp["text_photo.score"].astype(float), 4).ravel().tolist()}; '
          f'text_sketch.score {np.round(exp["text_sketch.score"].astype(float), 4).ravel().tolist()}')
    print(f'[caan-full] text lengths {[int(e) + 1 for e in eot]}; rn.score {np.round(exp["rn.score"].astype(float), 4).ravel().tolist()}; '
          f'sim.sketch_photo {np.round(exp["sim.sketch_photo"].astype(float), 4).ravel().tolist()}')
    print(f'[caan-full] done in {time.time() - t0:.1f}s -> {a.out} '
          f'(weights {os.path.getsize(os.path.join(a.out, FILES[0])) / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
