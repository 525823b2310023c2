#!/usr/bin/python3
"""Generate the CAAN parity fixture test/fixtures/caan/tiny.* (deterministic, seeded; docs/caan.md).

    /usr/bin/python3 tools/make_caan_fixtures.py [--out test/fixtures/caan]

  tiny.weights.safetensors   every tensor as F16 (the token embedding alone is 49408 x 16), metadata
                             sketchgpu.model = caan and sketchgpu.config (the engine's config JSON)
  tiny.expected.safetensors  the float64 reference from those F16 weights, stored as F32; the inputs as F16
                             (multiples of 2^-8: exact), the token ids as I32
  tiny.expected.json         config, texts, tensor list and summary numbers for humans

The text tower is then checked again, from the files on disk, by an independent numpy float64 implementation
(explicit causal softmax per head, QuickGELU, argmax pooling); the image towers reuse zse_ref's modules, which
make_zse_fixtures.py checks the same way. The full-size state dict's tensor list is checked against
caan_ref.expected_shapes.
"""
import argparse
import copy
import json
import math
import os
import sys
import time
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caan_ref as C  # noqa: E402
import zse_ref as Z  # noqa: E402
from clip_tokenizer_ref import ClipTokenizer  # noqa: E402
from safetensors_min import save_file, load_file  # noqa: E402

VERSION = 1
SEED = 7701
TEXTS = ['a giraffe', 'long neck, spotted coat and small horns on its head',
         'a cat with whiskers, pointy ears and a long tail']


def saved_names(cfg, names_present):
    out = []
    for m in ('sketch', 'photo'):
        out += [f'{m}.input', f'{m}.tokens'] + [f'{m}.layer{i}' for i in range(cfg.image.depth)]
        out += [f'{m}.ln', f'{m}.proj', f'{m}.emb']
    out += ['text.ids', 'text.tokens'] + [f'text.layer{i}' for i in range(cfg.text.depth)]
    out += ['text.ln', 'text.eot', 'text.eot_features', 'text.emb']
    out += ['sim.sketch_photo', 'sim.text_photo', 'sim.text_sketch']
    out += ['pair.ca.sketch', 'pair.ca.photo', 'pair.anchors.sketch', 'pair.anchors.photo', 'pair.cos', 'rn.score']
    for m in ('photo', 'sketch'):
        out += [f'text_{m}.ca.image', f'text_{m}.ca.text', f'text_{m}.best', f'text_{m}.score']
    assert set(out) <= names_present, set(out) - names_present
    return out


def round_f16_(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().to(p.dtype))


# ------------------------------------------------------------------------------------------------------------------
# Independent numpy float64 text tower (reads the safetensors weights)
# ------------------------------------------------------------------------------------------------------------------
def np_ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def np_text(W, cfg, ids_row):
    tc = cfg.text
    L = len(ids_row)
    x = W['text.token_embedding.weight'][ids_row] + W['text.positional_embedding'][:L]
    dh = tc.width // tc.heads
    r = {'tokens': x}
    for l in range(tc.depth):
        p = f'text.transformer.resblocks.{l}.'
        h = np_ln(x, W[p + 'ln_1.weight'], W[p + 'ln_1.bias'])
        qkv = h @ W[p + 'attn.in_proj_weight'].T + W[p + 'attn.in_proj_bias']
        q, k, v = qkv[:, :tc.width], qkv[:, tc.width:2 * tc.width], qkv[:, 2 * tc.width:]
        o = np.zeros((L, tc.width))
        for hh in range(tc.heads):
            sl = slice(hh * dh, (hh + 1) * dh)
            for i in range(L):
                s = np.array([q[i, sl] @ k[j, sl] / math.sqrt(dh) for j in range(i + 1)])   # keys 0..i only
                e = np.exp(s - s.max())
                o[i, sl] = (e / e.sum()) @ v[:i + 1, sl]
        x = x + o @ W[p + 'attn.out_proj.weight'].T + W[p + 'attn.out_proj.bias']
        h = np_ln(x, W[p + 'ln_2.weight'], W[p + 'ln_2.bias'])
        u = h @ W[p + 'mlp.c_fc.weight'].T + W[p + 'mlp.c_fc.bias']
        u = u / (1 + np.exp(-1.702 * u))
        x = x + u @ W[p + 'mlp.c_proj.weight'].T + W[p + 'mlp.c_proj.bias']
        r[f'layer{l}'] = x
    x = np_ln(x, W['text.ln_final.weight'], W['text.ln_final.bias'])
    eot = int(np.argmax(ids_row))
    f = x[eot]
    e = f @ W['text.text_projection']
    r.update(ln=x, eot_features=f, emb=e / np.sqrt(e @ e))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test',
                                                  'fixtures', 'caan'))
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()

    n_full, p_full = C.check_state_dict(C.Caan(C.CaanConfig.full()))
    print(f'[full] {n_full} tensors, {p_full:,} params (state dict == expected_shapes)')

    cfg = C.CaanConfig.tiny()
    model = C.Caan(cfg).float().eval()
    C.check_state_dict(model)
    C.init_random_(model, SEED)
    round_f16_(model)
    rng = np.random.default_rng(SEED + 1)
    S = cfg.image.image_size
    sk = torch.from_numpy(Z.make_sketches(rng, 3, S)).double()
    im = torch.from_numpy(Z.make_photos(rng, 2, S)).double()
    tok = ClipTokenizer()
    ids = torch.tensor(tok.tokenize(TEXTS, cfg.text.context), dtype=torch.int64)

    # calibrate the sketch-photo RN on these pairs (zse_ref.calibrate_rn_), round to F16, recompute in float64
    out = copy.deepcopy(model).double().forward_all(sk, im, ids)
    gains = Z.calibrate_rn_(types.SimpleNamespace(rn=model.align.rn), out['pair.cos'].flatten(1))
    round_f16_(model)
    m64 = copy.deepcopy(model).double().eval()
    out = m64.forward_all(sk, im, ids)

    # the training losses run and are finite (not a fixture, a smoke check of loss_terms)
    lt = C.loss_terms(copy.deepcopy(model).double().train(), sk[:2], im[:2], im.flip(0)[:2], ids[:2])
    lt['total'].backward()
    assert all(torch.isfinite(v) for v in lt.values())

    names = saved_names(cfg, set(out))
    exp = {}
    for k in names:
        v = out[k].detach().numpy()
        if k in ('text.ids', 'text.eot'):
            exp[k] = v.astype(np.int32)
        else:
            exp[k] = v.astype(np.float16 if k.endswith('.input') else np.float32)
    base = os.path.join(a.out, 'tiny')
    weights = {k: v.detach().half().numpy() for k, v in model.state_dict().items()}
    save_file(weights, base + '.weights.safetensors', C.metadata(cfg))
    save_file(exp, base + '.expected.safetensors', {'sketchgpu.fixture': 'caan-tiny', 'sketchgpu.version': str(VERSION)})
    summary = {
        'fixture': 'caan-tiny', 'version': VERSION, 'seed': SEED, 'config': cfg.to_json(), 'texts': TEXTS,
        'text_lengths': [int(e) + 1 for e in out['text.eot']],
        'pair_order': 'sketch-photo p = s * n_photos + j; text-image p = t * n_images + j',
        'reference': 'float64 forward of tools/caan_ref.py from the F16 weights; inputs F16 (exact), ids I32',
        'rn_calibration_gains': gains,
        'tensors': {k: {'shape': list(exp[k].shape), 'dtype': str(exp[k].dtype)} for k in names},
        'rn.score': out['rn.score'].tolist(), 'sim.sketch_photo': out['sim.sketch_photo'].tolist(),
        'text_photo.score': out['text_photo.score'].tolist(),
        'loss_terms_smoke': {k: float(v) for k, v in lt.items()},
        'files': {},
    }

    # independent check of the text tower from the files on disk
    W = {k: v.astype(np.float64) for k, v in load_file(base + '.weights.safetensors')[0].items()}
    E, _ = load_file(base + '.expected.safetensors')
    worst = 0.0
    for i, row in enumerate(E['text.ids']):
        r = np_text(W, cfg, row.astype(np.int64))
        for key in ('tokens', 'layer0', f'layer{cfg.text.depth - 1}', 'ln', 'eot_features', 'emb'):
            ref = out[f'text.{key}'][i].numpy()
            worst = max(worst, float(np.abs(ref - r[key]).max()))
        assert int(E['text.eot'][i]) == int(np.argmax(row))
    assert worst < 1e-9, worst
    # and the production shortcut: with the causal mask the EOT feature does not depend on the padding after it
    L = int(E['text.eot'].max()) + 1
    short = m64.encode_text(ids[:, :L])[1]
    short_err = float((short - out['text.emb']).abs().max())
    assert short_err < 1e-12, short_err

    for suf in ('.weights.safetensors', '.expected.safetensors'):
        summary['files']['tiny' + suf] = os.path.getsize(base + suf)
    with open(base + '.expected.json', 'w') as f:
        f.write(json.dumps(summary, indent=1) + '\n')
    print(f'[tiny] written + verified in {time.time() - t0:.1f}s: text tower torch-vs-numpy {worst:.1e}; '
          f'ids cut to {L} tokens: emb diff {short_err:.1e}; rn.score {np.round(out["rn.score"].numpy(), 3).tolist()}; '
          f'files {summary["files"]}')


if __name__ == '__main__':
    main()
