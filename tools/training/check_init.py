"""Self-check of the two ways a training run starts from weights of another shape (test/training.init.test.ts runs
it where /usr/bin/python3 has torch; prints one JSON line and exits 0, or fails an assertion):

- train_zse.fit_to_grid_ (`--init` with another `--size`): the cls row is kept, the patch rows of the position
  embedding are resized bicubically (a constant grid stays constant; a 4 -> 6 resize keeps a linear ramp monotone),
  the RN tensors whose width depends on the anchor count start fresh, everything else loads unchanged, and a width
  mismatch is refused;
- train_caan.init_towers_from_zse_ (`--init-towers`): both CAAN image towers then embed an image exactly as the ZSE
  file's SA encoder does (cls token after the final LayerNorm; proj = identity);
- train_zse.PooledTransform (`--teacher-whiten`, how the pooled teacher targets are formed): K = 0 subtracts each
  modality's mean and nothing else; K > 0 gives K-wide targets whose training rows (signed square root, centred) come
  out with orthogonal columns of squared norm = the singular values (half-way whitened), and rows of either modality
  are centred by their own mean;
- train_zse.grow_ (`--init` from a model of half the width or fewer layers): the SA outputs are the small model's
  duplicated, the RN scores close to its own, the copies differ once noise is added, and other widths are refused;
- train_zse.init_heads_ (`--init-heads`, a warm restart): the distillation projections and proxies come back exactly
  from a last.pt, and a file without them is refused;
- train_zse.patch_cutmix / mix_maps (`--distill-mix`): CutMix views of whole patches and their mixed teacher maps;
- train_zse.graft_stem_ (`--stem-graft`): the grafted model's SA outputs are the original's (zero read weights), its
  stride-8 map holds the original stem's channels then the graft's own map, and a wrong --stem is refused.
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


def check_whiten():
    g = torch.Generator().manual_seed(2)
    mix = torch.randn(24, 24, generator=g)
    pooled = {'sketch': torch.randn(300, 24, generator=g) @ mix + 3.0,    # correlated channels, different means
              'photo': torch.randn(200, 24, generator=g) @ mix - 1.0}
    cpu = torch.device('cpu')
    t0 = train_zse.PooledTransform(pooled, 0, cpu)
    plain = max(float((t0(v, m) - (v - v.mean(0))).abs().max()) for m, v in pooled.items())
    assert t0.dim == 24 and plain < 1e-5, plain
    t = train_zse.PooledTransform(pooled, 8, cpu)
    assert t.dim == 8 and t.w.shape == (24, 8)
    out = {m: t(v, m) for m, v in pooled.items()}
    centred = max(float(o.mean(0).abs().max()) for o in out.values())
    z = torch.cat([t.ssqrt(v.double()) - t.ssqrt(v.double()).mean(0) for v in pooled.values()])
    sv = torch.linalg.svdvals(z)[:8]
    gram = torch.cat(list(out.values())).double().t() @ torch.cat(list(out.values())).double()
    diag_err = float(((gram.diagonal() - sv) / sv).abs().max())
    off = float((gram - torch.diag(gram.diagonal())).abs().max() / sv[0])
    assert centred < 1e-4 and diag_err < 1e-4 and off < 1e-4, (centred, diag_err, off)
    return {'dim': t.dim, 'k0_max_diff': plain, 'centred': centred, 'diag_rel_err': diag_err, 'offdiag_rel': off}


@torch.no_grad()
def check_grow():
    """train_zse.grow_: twice the width (and MLP / CA feed-forward widths, heads) plus two appended SA layers, no
    noise: the SA outputs and the CA layer's outputs are the small model's, duplicated (exact up to float32 rounding;
    the anchor convolution's input, a raw view of the CA tokens, is laid out differently at another width, so the
    RN path is not kept and relearns); with noise the copies differ; a 3x width is refused."""
    torch.manual_seed(3)
    import eval_zse
    small = zse_ref.ZseConfig(dim=16, depth=2, sa_heads=2, mlp_dim=32, grid=4, stem=(4, 8, 12), ca_heads=2, ca_ff=24,
                              anchor_dim=8, rn_hidden=(8, 4), name='small')
    big = zse_ref.ZseConfig(**{**small.__dict__, 'dim': 32, 'depth': 4, 'sa_heads': 4, 'mlp_dim': 64, 'ca_heads': 4,
                               'ca_ff': 48, 'name': 'big'})
    src = train_zse.init_weights_(zse_ref.Model(small), 'full').eval()
    for p in src.parameters():                                        # not the init's zero biases / unit norms
        p.add_(0.05 * torch.randn_like(p))
    dst = train_zse.init_weights_(zse_ref.Model(big), 'full').eval()
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    dst.load_state_dict(train_zse.grow_(dst, sd, 'check', (2, 2), noise=0.0))
    x = torch.rand(4, 3, small.image_size, small.image_size) * 2 - 1
    a, b = src.sa(x), dst.sa(x)
    sa_err = max(float((b[..., :16] - a).abs().max()), float((b[..., 16:] - a).abs().max()))
    assert sa_err < 1e-5, sa_err
    def ca(model, sk, im):                   # the CA layer's sketch-side output (eval_zse.rn_scores' first half)
        l1 = model.ca.encoder.layer1[0]
        lin = l1.self_attn.linears
        return eval_zse._layer_rest(l1, sk, eval_zse._mha_cached(l1.self_attn, lin[0](sk), lin[1](im), lin[2](sk)))
    cs, cb = ca(src, a[:2], a[2:]), ca(dst, b[:2], b[2:])
    ca_err = max(float((cb[..., :16] - cs).abs().max()), float((cb[..., 16:] - cs).abs().max()))
    assert ca_err < 1e-4, ca_err             # float32 sums in another order; the CA norm's eps (1e-6) scaled by c
    noisy = train_zse.init_weights_(zse_ref.Model(big), 'full').eval()
    noisy.load_state_dict(train_zse.grow_(noisy, sd, 'check', (2, 2), noise=0.01))
    c = noisy.sa(x)
    copies = float((c[..., :16] - c[..., 16:]).abs().max())
    assert copies > 1e-4, 'noise must make the two copies differ'
    wide3 = zse_ref.Model(zse_ref.ZseConfig(**{**big.__dict__, 'dim': 48, 'sa_heads': 6}))
    try:
        train_zse.grow_(wide3, sd, 'check', (2, 2))
        raise AssertionError('a 3x width must be refused')
    except SystemExit as e:
        assert 'cannot grow' in str(e), e
    return {'width': '16 -> 32', 'depth': '2 -> 4', 'sa_max_abs_diff': sa_err, 'ca_max_abs_diff': ca_err,
            'noisy_copy_diff': copies}


@torch.no_grad()
def check_token_table():
    """caan_ref.prune_token_table / expand_token_table (the compact token table of CAAN files, which
    train_caan.load_engine_weights reads): a round trip keeps the stored rows, zeros the others, and texts made of
    stored ids embed exactly as with the whole table."""
    torch.manual_seed(4)
    cc = caan_ref.CaanConfig.tiny()
    m = caan_ref.Caan(cc).eval()
    for p in m.parameters():
        p.add_(0.02 * torch.randn_like(p))
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407, 0], [49406, 2368, 267, 1538, 49407, 0, 0, 0]])
    keep = sorted(set(ids.flatten().tolist()) | {5, 77})
    full = {k: v.numpy() for k, v in m.state_dict().items()}
    back = caan_ref.expand_token_table(caan_ref.prune_token_table(full, keep), cc.text.vocab)
    table = back[caan_ref.TOKEN_TABLE]
    rest = np.setdiff1d(np.arange(cc.text.vocab), keep)
    assert np.array_equal(table[keep], full[caan_ref.TOKEN_TABLE][keep]) and not table[rest].any()
    m2 = caan_ref.Caan(cc).eval()
    m2.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
    err = float((m2.encode_text(ids)[1] - m.encode_text(ids)[1]).abs().max())
    assert err == 0.0, err
    return {'kept': len(keep), 'zero_rows': int(rest.size), 'text_max_abs_diff': err}


def check_init_heads():
    """train_zse.init_heads_ restores the training-only projections and proxies of a --resume state."""
    torch.manual_seed(5)
    src = torch.nn.ModuleDict({'g': torch.nn.Linear(8, 6), 't': torch.nn.Linear(8, 5)})
    dst = torch.nn.ModuleDict({'g': torch.nn.Linear(8, 6), 't': torch.nn.Linear(8, 5)})
    proxies, got = torch.randn(3, 8), torch.zeros(3, 8)
    with tempfile.TemporaryDirectory() as d:
        torch.save({'heads': src.state_dict(), 'proxies': proxies, 'model': {}}, Path(d) / 'last.pt')
        train_zse.init_heads_(dst, got, Path(d) / 'last.pt')
        torch.save({'model': {}}, Path(d) / 'bare.pt')
        try:
            train_zse.init_heads_(dst, got, Path(d) / 'bare.pt')
            refused = False
        except SystemExit:
            refused = True
    diff = max(float((src[k].weight - dst[k].weight).abs().max()) for k in ('g', 't'))
    assert diff == 0.0 and torch.equal(got, proxies) and refused, (diff, refused)
    return {'max_abs_diff': diff, 'refused_bare': refused}


def check_cutmix():
    """train_zse.patch_cutmix / mix_maps (--distill-mix) at the real geometry (128 px, 8 x 8 patches, a 17 x 17 map):
    each view is its own picture outside one box of whole patches and its partner (another row) inside; the box is a
    proper sub-rectangle; a map mixed by the box's area-pooled mask gives each pooled feature the right share of the
    partner, within what pooling a 128 px box onto 17 cells blurs."""
    gen = torch.Generator().manual_seed(3)
    N, n, S, G = 12, 10, 128, 8
    x = torch.randn(N, 3, S, S)
    views, perm, mask = train_zse.patch_cutmix(x, gen, G, n)
    assert views.shape == (n, 3, S, S) and mask.shape == (n, 1, S, S)
    assert bool((perm != torch.arange(n)).all()), 'a view must take its box from another row'
    P = S // G
    cells = mask[:, 0, ::P, ::P]
    assert torch.equal(mask[:, 0], cells.repeat_interleave(P, 1).repeat_interleave(P, 2)), 'whole patches only'
    area = cells.sum(dim=(1, 2))
    rows, cols = (cells.sum(2) > 0).sum(1), (cells.sum(1) > 0).sum(1)
    assert bool(((area == rows * cols) & (rows >= 1) & (rows < G) & (cols >= 1) & (cols < G)).all()), 'one proper box'
    own, other = views * (1 - mask), x[perm] * mask
    assert torch.equal(views * (1 - mask), x[:n] * (1 - mask)) and torch.equal(views * mask, other), 'exact paste'
    # maps constant per row: the mixed map's mean is (1 - l) a_k + l a_perm with l the pooled mask's mean
    a = torch.randn(N, 5)
    t = a[:, :, None, None].expand(N, 5, 17, 17).contiguous()
    mixed = train_zse.mix_maps(t, perm, mask).mean(dim=(2, 3))
    lam_px = mask.mean(dim=(1, 2, 3))
    lam = torch.nn.functional.adaptive_avg_pool2d(mask, 17).mean(dim=(1, 2, 3))
    want = (1 - lam)[:, None] * a[:n] + lam[:, None] * a[perm]
    err = float((mixed - want).abs().max())
    assert err < 1e-5, err
    full = train_zse.mix_maps(t, perm, torch.ones_like(mask))
    assert torch.equal(full, t[perm]), 'a full box gives the partner\'s map'
    blur = float((lam - lam_px).abs().max())
    assert blur < 0.05, blur                          # the 17 cells' windows overlap the box's edges by < 1 cell
    return {'views': n, 'max_abs_diff': err, 'area_blur': blur, 'mean_box_patches': float(area.mean())}


@torch.no_grad()
def check_edge():
    """train_zse.edge_sketch (--edge-sketch) at 128 px: white background (+1) where a picture is flat, ink (-1) on a
    drawn square's outline and nowhere far from it, the three channels equal, values in [-1, 1], a sparse page (under a
    fifth inked), and a flat picture gives a blank page, not a page of ink."""
    gen = torch.Generator().manual_seed(7)
    S = 128
    x = torch.full((4, 3, S, S), 0.4)
    x[:3, :, 40:90, 30:100] = -0.8                                  # a dark box on a light ground; row 3 stays flat
    e = train_zse.edge_sketch(x, gen)
    assert e.shape == x.shape and float(e.min()) >= -1 and float(e.max()) <= 1
    assert torch.equal(e[:, 0], e[:, 1]) and torch.equal(e[:, 0], e[:, 2])
    ink = (e[:, 0] < 0).float()
    outline = torch.zeros(S, S, dtype=torch.bool)
    outline[36:94, 26:104] = True
    outline[44:86, 34:96] = False                                   # a 4 px band either side of the box's edge
    share = ink[:3].mean(dim=(1, 2))
    on_edge = float(ink[:3][:, outline].mean())
    off_edge = float(ink[:3][:, ~outline].max())
    assert on_edge > 0.3 and off_edge == 0.0, (on_edge, off_edge)
    assert bool((share < 0.2).all()), share
    assert float(ink[3].max()) == 0.0 and float(e[3].min()) == 1.0, 'a flat picture must stay blank'
    return {'on_edge': on_edge, 'off_edge': off_edge, 'max_share': float(share.max()), 'flat_blank': True}


@torch.no_grad()
def check_graft():
    torch.manual_seed(5)
    small = zse_ref.ZseConfig(dim=16, depth=1, sa_heads=2, mlp_dim=32, grid=4, stem=(4, 8, 12), ca_heads=2, ca_ff=24,
                              anchor_dim=8, rn_hidden=(8, 4), name='small')
    big = zse_ref.ZseConfig(**{**small.__dict__, 'stem': (7, 13, 18), 'name': 'big'})
    src = train_zse.init_weights_(zse_ref.Model(small), 'full').eval()
    graft = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 7, 2, 3, bias=False), torch.nn.ReLU(),
                                torch.nn.Conv2d(3, 5, 3, 2, 1, bias=False), torch.nn.ReLU(),
                                torch.nn.Conv2d(5, 6, 3, 2, 1, bias=False), torch.nn.ReLU())
    dst = zse_ref.Model(big).eval()
    x = torch.rand(3, 3, small.image_size, small.image_size) * 2 - 1
    with tempfile.TemporaryDirectory() as d:
        torch.save({'stem': graft.state_dict(), 'head': {}, 'layer': 'check'}, f'{d}/g.pt')
        dst.load_state_dict(train_zse.graft_stem_(dst, dict(src.state_dict()), f'{d}/g.pt'))
        wrong = zse_ref.Model(zse_ref.ZseConfig(**{**big.__dict__, 'stem': (7, 13, 20)}))
        try:
            train_zse.graft_stem_(wrong, dict(src.state_dict()), f'{d}/g.pt')
            raise AssertionError('a --stem that is not the sum must be refused')
        except SystemExit as e:
            assert '--stem 7 13 18' in str(e), e
    sa_err = float((dst.sa(x) - src.sa(x)).abs().max())
    assert sa_err < 1e-6, sa_err                                       # the same sums plus exact zeros
    h8 = dst.sa.model.scale.seq[:6](x)
    own = float((h8[:, :12] - src.sa.model.scale.seq[:6](x)).abs().max())
    grafted = float((h8[:, 12:] - graft(x)).abs().max())
    assert own < 1e-6 and grafted < 1e-6, (own, grafted)
    assert float(graft(x).abs().max()) > 1e-3, 'the grafted map must not be trivially zero'
    return {'stem': '(4, 8, 12) + (3, 5, 6)', 'sa_max_abs_diff': sa_err, 'own_map_diff': own, 'grafted_map_diff': grafted}


if __name__ == '__main__':
    print(json.dumps({'fit_to_grid': check_grid(), 'init_towers': check_towers(), 'whiten': check_whiten(),
                      'grow': check_grow(), 'token_table': check_token_table(),
                      'init_heads': check_init_heads(), 'cutmix': check_cutmix(), 'graft': check_graft(),
                      'edge': check_edge()}))
