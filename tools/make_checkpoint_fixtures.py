#!/usr/bin/python3
"""Writes the small PyTorch-checkpoint and .npy fixtures of test/fixtures/ckpt/ (under 1 MB in all).

Run with a Python that has torch and numpy (on the dev box: /usr/bin/python3, torch 1.13 CPU):

    /usr/bin/python3 tools/make_checkpoint_fixtures.py

Everything is seeded: with the same torch and numpy, re-running rewrites identical files, except legacy.pth, whose
storages the legacy format names by memory address. Other torch versions may lay the zips out differently, which is
fine: the tests compare values, never checkpoint bytes. What the tensors must read as is written beside them:
zse_tiny.expected.json (sums per key) serves every zse_tiny_* variant, which all hold the same values
(zse_tiny_fp16.pth holds torch's .half() of them); views.expected.json, npy.expected.json, and half_cases.f16.npy
(torch's .half() of half_cases.f32.npy) the rest. Files that must be refused need no values.

The tiny ZSE-SBIR model mirrors the module tree of the official code (../shared/docs/zse-sbir.md §3, §4), so
state_dict() yields the reference key names in the reference order, including the dead `ca.encoder.layers.0.*`
clone (§11 quirk 16), at these dimensions:
    dim 8, depth 2, SA heads 4, MLP 16, grid 2 (5 tokens, 32 px), stem 4/4/8, CA heads 2, CA ff 12,
    anchorDim 4, anchorGrid 1, RN 1 -> 3 -> 2 -> 1.
dim 8 keeps every checkpoint near 100 KB (the 16x16 patch conv alone is dim*768 floats). The head counts are not
the reference's 12/8 (they must divide dim), so loading the official-format fixture needs explicit heads, exactly
as a real checkpoint with non-default heads would.
"""
import collections
import io
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.serialization

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'ckpt')

DIM, DEPTH, MLP, GRID = 8, 2, 16, 2
STEM = (4, 4, 8)
CA_FF, ANCHOR_DIM = 12, 4
ANCHORS = (GRID // 2) ** 2
RN_HIDDEN = (3, 2)
SA_HEADS, CA_HEADS = 4, 2


# ---- the module tree of the official code, at tiny size (names only matter) -----------------------------------
class MultiHeadDotProductAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.to_qkv = nn.Linear(d, 3 * d)
        self.to_out = nn.Sequential(nn.Linear(d, d), nn.Dropout(0.1))


class FeedForward(nn.Module):
    def __init__(self, d, m):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, m), nn.GELU(), nn.Dropout(0.1), nn.Linear(m, d), nn.Dropout(0.1))


class Encoder1DBlock(nn.Module):
    def __init__(self, d, m):
        super().__init__()
        self.layer_norm_input = nn.LayerNorm(d)
        self.attention = MultiHeadDotProductAttention(d)
        self.layer_norm_out = nn.LayerNorm(d)
        self.mlp = FeedForward(d, m)


class Encoder(nn.Module):
    def __init__(self, d, depth, m):
        super().__init__()
        self.layers = nn.ModuleList([nn.ModuleList([Encoder1DBlock(d, m)]) for _ in range(depth)])
        self.encoder_norm = nn.LayerNorm(d)


class ScaleEmbedding(nn.Module):
    def __init__(self, d, stem):
        super().__init__()
        c0, c1, c2 = stem
        self.seq = nn.Sequential(
            nn.Conv2d(3, c0, 7, 2, 3, bias=False), nn.ReLU(),
            nn.Conv2d(c0, c1, 3, 2, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, 2, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c2, d, 3, 2, 1, bias=False))


class ViTPatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1 + GRID * GRID, DIM))
        self.cls = nn.Parameter(torch.zeros(1, 1, DIM))
        self.embedding = nn.Conv2d(3, DIM, 16, 16)
        self.scale = ScaleEmbedding(DIM, STEM)
        self.transformer = Encoder(DIM, DEPTH, MLP)


class SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = ViTPatch()


class CALayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a = nn.Parameter(torch.ones(d))
        self.b = nn.Parameter(torch.zeros(d))


class SublayerConnection(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = CALayerNorm(d)


class MultiHeadedAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(d, d) for _ in range(4)])


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.w_1 = nn.Linear(d, ff)
        self.w_2 = nn.Linear(ff, d)


class EncoderLayer(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.self_attn = MultiHeadedAttention(d)
        self.feed_forward = PositionwiseFeedForward(d, ff)
        self.sublayer = nn.ModuleList([SublayerConnection(d) for _ in range(2)])


class CAEncoder(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        # `layers` is the clone the official forward never calls (§3.3).
        self.layers = nn.ModuleList([EncoderLayer(d, ff)])
        self.layer1 = nn.ModuleList([EncoderLayer(d, ff)])
        self.layer2 = nn.ModuleList([EncoderLayer(d, ff)])


class CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = CAEncoder(DIM, CA_FF)


class RelationNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        h0, h1 = RN_HIDDEN
        self.rn = nn.Sequential(nn.Linear(ANCHORS * ANCHORS, h0), nn.ReLU(), nn.Dropout(0.1),
                                nn.Linear(h0, h1), nn.ReLU(), nn.Dropout(0.1), nn.Linear(h1, 1))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.sa = SelfAttention()
        self.ca = CrossAttention()
        self.rn = RelationNetwork()
        self.conv2d = nn.Conv2d(DIM, ANCHOR_DIM, 2, 2)


def tiny_state_dict():
    torch.manual_seed(2021)
    model = Model()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        # Default inits leave LayerNorm at exactly 1/0; random values everywhere make every key distinguishable.
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.state_dict()


# ---- expected values --------------------------------------------------------------------------------------------
def checksums(t):
    """sum and index-weighted sum in float64 of the C-order values: the weights (i % 7 + 1) catch permutations."""
    v = t.detach().reshape(-1).to(torch.float64).numpy()
    w = (np.arange(v.size) % 7 + 1).astype(np.float64)
    return {'shape': list(t.shape), 'dtype': str(t.dtype).replace('torch.', ''),
            'sum': float(v.sum()), 'wsum': float((v * w).sum())}


def write_json(name, obj):
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write('\n')


def save_with_location(obj, path, location):
    """torch.save, but every storage's persistent id says `location` (e.g. 'cuda:0').

    This box has no GPU, so CUDA tensors cannot be created. torch.save's persistent_id asks the module-level
    `location_tag(storage)` for the location string it writes into ('storage', type, key, location, numel);
    swapping that function makes the archive byte-for-byte what torch.save writes for CUDA tensors (it copies them
    to the CPU before writing data/<key> anyway), without a hand-made pickler that could drift from torch's.
    """
    original = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: location
    try:
        torch.save(obj, path)
    finally:
        torch.serialization.location_tag = original


# ---- ZSE-SBIR checkpoints ---------------------------------------------------------------------------------------
def make_zse():
    sd = tiny_state_dict()
    meta = {'epoch': 3, 'map_all': 0.5, 'precision_100': 0.6}
    # The official train.py/save_checkpoint format (§9): numpy float64 scalars next to the state dict.
    torch.save({'model': sd, 'epoch': 3, 'map_all': np.float64(0.5), 'precision_100': np.float64(0.6)},
               os.path.join(OUT, 'zse_tiny.pth'))
    write_json('zse_tiny.expected.json', {
        'config': {'dim': DIM, 'depth': DEPTH, 'saHeads': SA_HEADS, 'mlpDim': MLP, 'grid': GRID,
                   'imageSize': 16 * GRID, 'stemChannels': list(STEM), 'caHeads': CA_HEADS, 'caFF': CA_FF,
                   'anchorDim': ANCHOR_DIM, 'anchorGrid': GRID // 2, 'rnHidden': list(RN_HIDDEN), 'hasHead': True},
        'checkpoint': meta,
        'keys': list(sd.keys()),
        'tensors': {k: checksums(v) for k, v in sd.items()},
    })

    # fp16 as the reference test.py runs it (model.half()), saved as a bare state dict through a file object, so
    # the archive folder is 'archive/' rather than the file's stem. Its values are torch's own .half() rounding.
    half = collections.OrderedDict((k, v.half()) for k, v in sd.items())
    buf = io.BytesIO()
    torch.save(half, buf)
    with open(os.path.join(OUT, 'zse_tiny_fp16.pth'), 'wb') as f:
        f.write(buf.getvalue())

    # DataParallel training on a GPU: every key gains 'module.', every storage says cuda:0; plus a config dict
    # carrying the head counts, under 'state_dict' rather than 'model'.
    dp = collections.OrderedDict(('module.' + k, v) for k, v in sd.items())
    save_with_location({'state_dict': dp, 'config': {'sa_heads': SA_HEADS, 'ca_heads': CA_HEADS}, 'epoch': 9},
                       os.path.join(OUT, 'zse_tiny_dp_cuda.pth'), 'cuda:0')

    missing = collections.OrderedDict(sd)
    del missing['ca.encoder.layer2.0.feed_forward.w_2.bias']
    del missing['rn.rn.6.weight']
    del missing['sa.model.transformer.layers.1.0.mlp.net.3.weight']
    torch.save({'model': missing}, os.path.join(OUT, 'zse_tiny_missing.pth'))

    bad = collections.OrderedDict(sd)
    bad['conv2d.bias'] = torch.zeros(ANCHOR_DIM + 1)
    bad['sa.model.transformer.layers.0.0.attention.to_qkv.weight'] = torch.zeros(3 * DIM, DIM + 2)
    bad['sa.model.mlp_head.weight'] = torch.zeros(10, DIM)  # ViT classifier head, which ZSE-SBIR does not have
    torch.save({'model': bad}, os.path.join(OUT, 'zse_tiny_misshaped.pth'))


# ---- loader mechanics: views, shared storages, dtypes, Python and numpy values ---------------------------------
def make_views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    shared = torch.arange(10, dtype=torch.float32) + 100
    tensors = {
        'base': base,
        'transposed': base.t(),                       # strides (1, 6)
        'slice': base[1:3, 2:5],                      # storage_offset 8, strides (6, 1)
        'row': base[2],                               # storage_offset 12, contiguous
        'every_other_col': base[:, ::2],              # strides (6, 2)
        'permuted3d': torch.arange(24, dtype=torch.float32).reshape(2, 3, 4).permute(2, 0, 1),
        'expanded': torch.arange(3, dtype=torch.float32).expand(2, 3),  # stride 0
        'shared_a': shared[:4],                       # two tensors, one storage
        'shared_b': shared[4:].view(2, 3),
        'scalar': torch.tensor(3.5),
        'empty': torch.zeros(0, 3),
        'f64': torch.tensor([1.5, -2.25], dtype=torch.float64),
        'f16': torch.tensor([1.0, -0.33325, 65504.0, 6e-8], dtype=torch.float16),
        'bf16': torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16),
        'i64': torch.tensor([-(2 ** 40), 7], dtype=torch.int64),
        'i32': torch.tensor([-5, 2 ** 30], dtype=torch.int32),
        'i16': torch.tensor([-300, 300], dtype=torch.int16),
        'i8': torch.tensor([-128, 127], dtype=torch.int8),
        'u8': torch.tensor([0, 255], dtype=torch.uint8),
        'bool': torch.tensor([True, False, True]),
        'param': nn.Parameter(torch.tensor([0.25, 0.75])),
    }
    obj = {
        'tensors': tensors,
        'py': {'int': -7, 'big': 2 ** 70, 'neg_big': -(2 ** 65), 'float': 0.1, 'str': 'ümlaut ✓', 'bytes': b'\x00\xffab',
               'none': None, 'true': True, 'false': False, 'list': [1, [2, 3]], 'tuple': (1, 'a'), 'set': {3},
               'int_keys': {1: 'one', 2: 'two'}},
        'np': {'f64': np.float64(0.5), 'f32': np.float32(1.25), 'i64': np.int64(-3), 'i32': np.int32(9),
               'bool': np.bool_(True), 'f16': np.float16(0.5),
               'array': np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
               'fortran': np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))},
        'torch': {'device': torch.device('cuda', 0), 'cpu': torch.device('cpu'), 'dtype': torch.float16,
                  'size': torch.Size([2, 3])},
    }
    expected = {k: {'shape': list(v.shape), 'dtype': str(v.dtype).replace('torch.', ''),
                    'values': v.detach().reshape(-1).tolist() if v.dtype != torch.bfloat16
                    else v.detach().float().reshape(-1).tolist()}
                for k, v in tensors.items()}
    expected['f16']['bits'] = tensors['f16'].view(torch.int16).reshape(-1).tolist()
    write_json('views.expected.json', expected)
    torch.save(obj, os.path.join(OUT, 'views.pth'))  # protocol 2, torch's default
    # Protocol 4 exercises FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL and BINBYTES.
    torch.save(obj, os.path.join(OUT, 'views_p4.pth'), pickle_protocol=4)


# ---- files that must be refused ---------------------------------------------------------------------------------
class Evil:
    """Stands in for a booby-trapped checkpoint: unpickling this with pickle.load would run a shell command."""

    def __reduce__(self):
        return (os.system, ('echo sketchgpu-fixture-would-have-run-this',))


def make_refused():
    # torch.save pickles os.system under its real module name, 'posix.system' on Linux.
    torch.save({'model': {'w': torch.ones(2)}, 'payload': Evil()}, os.path.join(OUT, 'malicious.pth'))
    torch.save({'model': {'w': torch.ones(2)}}, os.path.join(OUT, 'legacy.pth'), _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), os.path.join(OUT, 'torchscript.pt'))


# ---- npy: numpy's own writer, to read and to compare our writer's bytes with ----------------------------------
def make_npy():
    rng = np.random.default_rng(5)
    arrays = {
        'f4': rng.standard_normal((2, 3)).astype('<f4'),
        'f8': rng.standard_normal(4).astype('<f8'),
        'f2': rng.standard_normal((3, 1, 2)).astype('<f2'),
        'i8': np.array([-(2 ** 62), -1, 5], dtype='<i8'),
        'i4': np.arange(-3, 3, dtype='<i4').reshape(2, 3),
        'i2': np.array([-2, 7], dtype='<i2'),
        'i1': np.array([-128, 0, 127], dtype='i1'),
        'u1': np.array([[0, 128, 255]], dtype='u1'),
        'b1': np.array([True, False, False, True]),
        'scalar_f4': np.array(2.5, dtype='<f4'),
        'empty_f4': np.zeros((0, 3), dtype='<f4'),
        'long_shape': np.zeros((1,) * 12 + (2,), dtype='<f4'),
    }
    expected = {}
    for name, a in arrays.items():
        np.save(os.path.join(OUT, f'npy_{name}.npy'), a)
        expected[name] = {'shape': list(a.shape), 'values': a.reshape(-1).tolist()}
    write_json('npy.expected.json', expected)

    f4 = arrays['f4']
    for version in ((2, 0), (3, 0)):
        with open(os.path.join(OUT, f'npy_f4_v{version[0]}.npy'), 'wb') as f:
            np.lib.format.write_array(f, f4, version=version)
    # Files the reader must refuse, each with a clear BAD_NPY.
    np.save(os.path.join(OUT, 'npy_bad_fortran.npy'), np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
    np.save(os.path.join(OUT, 'npy_bad_bigendian.npy'), np.arange(3, dtype='>f4'))
    np.save(os.path.join(OUT, 'npy_bad_object.npy'), np.array([{'a': 1}, None], dtype=object), allow_pickle=True)
    np.save(os.path.join(OUT, 'npy_bad_structured.npy'), np.zeros(2, dtype=[('x', '<f4'), ('y', '<i4')]))
    np.save(os.path.join(OUT, 'npy_bad_u2.npy'), np.arange(3, dtype='<u2'))
    with open(os.path.join(OUT, 'npy_f4.npy'), 'rb') as f:
        whole = f.read()
    with open(os.path.join(OUT, 'npy_bad_truncated.npy'), 'wb') as f:
        f.write(whole[:-5])

    # fp16 rounding cases: torch's .half() is the reference for our f32 -> f16 (round to nearest, ties to even).
    cases = np.array([
        0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 65504.0, 65519.0, 65520.0, 1e6, -1e6, 2 ** -14, 2 ** -24, 2 ** -25,
        2 ** -25 * 1.0000001, 3 * 2 ** -26, 5.96e-8, 6.1e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20,
        2049.0, 2051.0, 4097.0, -2049.0, np.inf, -np.inf, np.nan, 1e-10, 3.14159265,
    ], dtype='<f4')
    cases = np.concatenate([cases, np.random.default_rng(11).standard_normal(226).astype('<f4') * 4])
    np.save(os.path.join(OUT, 'half_cases.f32.npy'), cases)
    np.save(os.path.join(OUT, 'half_cases.f16.npy'), torch.from_numpy(cases).half().numpy())


def main():
    os.makedirs(OUT, exist_ok=True)
    make_zse()
    make_views()
    make_refused()
    make_npy()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}')
    if total > 1_000_000:
        sys.exit('fixtures exceed 1 MB: shrink them')


if __name__ == '__main__':
    main()
