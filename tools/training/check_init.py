"""Self-check of the two ways a training run starts from weights of another shape (test/training.init.test.ts runs
it where /usr/bin/python3 has torch; prints one JSON line and exits 0, or fails an assertion):

- train_zse.fit_to_grid_ (`--init` with another `--size`): the cls row is kept, the patch rows of the position
  embedding are resized bicubically (a constant grid stays constant; a 4 -> 6 resize keeps a linear ramp monotone),
  the RN tensors whose width depends on the anchor count start fresh, everything else loads unchanged, and a width
  mismatch is refused;
- train_caan.init_towers_from_zse_ (`--init-towers`): both CAAN image towers then embed an image exactly as the ZSE
  file's SA encoder does (cls token after the final LayerNorm; proj = identity).
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / 'reference')]
import zse_ref  # noqa: E402
import caan_ref  # noqa: E402
import train_zse  # noqa: E402
import train_caan  # noqa: E402
from safetensors_min import save_file  # noqa: E402


def check_grid():
    torch.manual_seed(0)
    small = zse_ref.ZseConfig.tiny64()                                # grid 4: 16 patch rows, 4 anchors
    big = zse_ref.ZseConfig(**{**small.__dict__, 'grid': 6, 'rn_hidden': (27, 9)})   # grid 6: 36 rows, 9 anchors
    src = train_zse.init_weights_(zse_ref.Model(small), 'full')
    dst = train_zse.init_weights_(zse_ref.Model(big), 'full')
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    pe = sd['sa.model.pos_embedding']
    ramp = torch.arange(4, dtype=torch.float32).view(1, 4, 1).expand(4, 4, 1)          # x coordinate of each cell
    pe[0, 1:, 0] = ramp.reshape(16)                                   # channel 0: a left-to-right ramp
    pe[0, 1:, 1] = 0.25                                               # channel 1: constant
    own = {k: v.clone() for k, v in dst.state_dict().items()}
    out = train_zse.fit_to_grid_(dst, sd, 'check')
    res = dst.load_state_dict(out, strict=False)
    assert not res.unexpected_keys and not [k for k in res.missing_keys if not k.startswith(zse_ref.DEAD_PREFIX)], res
    got = dst.state_dict()['sa.model.pos_embedding']
    assert got.shape == (1, 37, small.dim), got.shape
    assert torch.equal(got[0, 0], pe[0, 0]), 'the cls row must be kept'
    assert torch.allclose(got[0, 1:, 1], torch.full((36,), 0.25), atol=1e-6), 'a constant grid must stay constant'
    rows = got[0, 1:, 0].view(6, 6)
    assert torch.all(rows[:, 1:] >= rows[:, :-1] - 1e-6), 'a ramp must stay monotone'
    assert torch.allclose(rows, rows[:1].expand(6, 6)), 'a ramp along x must not vary along y'
    fresh = [k for k in own if k.startswith('rn.') and own[k].shape != sd[k].shape]
    now = dst.state_dict()
    assert fresh and all(torch.equal(now[k], own[k]) for k in fresh), fresh
    same = [k for k in sd if k in own and sd[k].shape == own[k].shape and k != 'sa.model.pos_embedding']
    assert all(torch.equal(now[k], sd[k]) for k in same), 'tensors that fit must load unchanged'
    assert train_zse.fit_to_grid_(src, sd, 'check') is sd, 'the same grid must leave the weights alone'
    wide = zse_ref.Model(zse_ref.ZseConfig(**{**big.__dict__, 'dim': 32, 'sa_heads': 4}))
    try:
        train_zse.fit_to_grid_(wide, sd, 'check')
        raise AssertionError('a width mismatch must be refused')
    except SystemExit as e:
        assert 'position embedding' in str(e), e
    return {'grid': '4 -> 6', 'fresh_rn_tensors': len(fresh), 'kept': len(same)}


@torch.no_grad()
def check_towers():
    torch.manual_seed(1)
    cc = caan_ref.CaanConfig.tiny()
    ic = cc.image
    zc = zse_ref.ZseConfig(dim=ic.width, depth=ic.depth, sa_heads=ic.heads, mlp_dim=ic.mlp, grid=ic.grid,
                           stem=tuple(ic.stem), ca_heads=4, ca_ff=48, anchor_dim=16, rn_hidden=(27, 9), name='check')
    zse = train_zse.init_weights_(zse_ref.Model(zc), 'full').eval()
    for p in zse.parameters():                                        # not the init's zero biases / unit norms
        p.add_(0.02 * torch.randn_like(p))
    caan = caan_ref.Caan(cc).eval()
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / 'zse.safetensors')
        save_file({k: v.numpy() for k, v in zse.state_dict().items()}, path)
        train_caan.init_towers_from_zse_(caan, path)
    x = torch.rand(3, 3, zc.image_size, zc.image_size) * 2 - 1
    want = zse_cls(zse, x)
    for tower in (caan.sketch, caan.photo):
        got = tower(x)[:, 0]
        err = (got - want).abs().max().item()
        assert err < 1e-5, err
    bad = caan_ref.Caan(caan_ref.CaanConfig.demo())
    try:
        with tempfile.TemporaryDirectory() as d:
            path = str(Path(d) / 'zse.safetensors')
            save_file({k: v.numpy() for k, v in zse.state_dict().items()}, path)
            train_caan.init_towers_from_zse_(bad, path)
        raise AssertionError('a ZSE file of another width must be refused')
    except SystemExit as e:
        assert 'does not fit' in str(e), e
    return {'towers': 'sketch, photo', 'max_abs_diff': err}


def zse_cls(model, x):
    """The ZSE retrieval embedding before normalisation: the SA cls token."""
    return model.sa(x)[:, 0]


if __name__ == '__main__':
    print(json.dumps({'fit_to_grid': check_grid(), 'init_towers': check_towers()}))
