#!/usr/bin/python3
"""The teacher's front (InceptionV3 up to a `mixed` block) in the engine's weight layout, and its parity fixture.

The engine runs the front as src/models/inception.ts builds it: every Keras `conv2d_bn` as one convolution with
bias and ReLU, the batch norm folded in (Keras's BatchNormalization here has no scale: y = (x - mean) ·
rsqrt(var + eps) + beta, so weight · rsqrt(var + eps) and beta - mean · rsqrt(var + eps)). Names:
`<prefix>.conv2d_<k>.weight` [Co, Ci, KH, KW] and `.bias` [Co], Keras's numbering.

    # the real front (nsfwjs's InceptionV3, exported by tools/teacher/export.mjs), folded, to mixed7:
    /usr/bin/python3 tools/teacher/front.py export --end mixed7 --out .cache/teacher/front-mixed7.safetensors
    # the tiny parity fixture of the test suite (the real topology, every channel count / 16, random weights):
    /usr/bin/python3 tools/teacher/front.py fixture --out test/fixtures/inception
    # the engine against the real teacher on real images (opt-in test, test/full/inception.full.test.ts) reads:
    /usr/bin/python3 tools/teacher/front.py reference --end mixed7 --out .cache/teacher/front-mixed7.reference.safetensors

The reference of both fixtures is tools/teacher/keras_torch.py (the PyTorch reading of the Keras topology, checked
against nsfwjs's own classifier by tools/teacher/check.py), in float64 here.
"""
import argparse
import copy
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'reference'))
from keras_torch import KerasNet  # noqa: E402
from safetensors_min import load_file, save_file  # noqa: E402

BLOCKS = [f'mixed{i}' for i in range(8)]


def layers_to(topology, end):
    """The layer list up to and including `end` (Keras order)."""
    out = []
    for layer in topology['model_config']['config']['layers']:
        out.append(layer)
        if layer['name'] == end:
            return out
    raise SystemExit(f'error: no layer {end} in the topology')


def fold(topology, weights, end, prefix):
    """{name: float32 array} of the folded convolutions up to `end`."""
    layers = layers_to(topology, end)
    by_input = {}
    for layer in layers:
        for inb in (layer['inbound_nodes'][0] if layer['inbound_nodes'] else []):
            by_input.setdefault(inb[0], []).append(layer)
    out = {}
    for layer in layers:
        if layer['class_name'] != 'Conv2D':
            continue
        n, c = layer['name'], layer['config']
        assert not c['use_bias'] and c['activation'] == 'linear', n
        (bn,) = by_input[n]
        assert bn['class_name'] == 'BatchNormalization' and not bn['config']['scale'] and bn['config']['center'], n
        (act,) = by_input[bn['name']]
        assert act['class_name'] == 'Activation' and act['config']['activation'] == 'relu', n
        k = np.asarray(weights[f'{n}/kernel'], np.float64)            # [kh, kw, in, out]
        mean = np.asarray(weights[f'{bn["name"]}/moving_mean'], np.float64)
        var = np.asarray(weights[f'{bn["name"]}/moving_variance'], np.float64)
        beta = np.asarray(weights[f'{bn["name"]}/beta'], np.float64)
        inv = 1.0 / np.sqrt(var + bn['config']['epsilon'])
        w = k.transpose(3, 2, 0, 1) * inv[:, None, None, None]        # [out, in, kh, kw]
        idx = int(n.split('_')[1])
        out[f'{prefix}.conv2d_{idx}.weight'] = w.astype(np.float32)
        out[f'{prefix}.conv2d_{idx}.bias'] = (beta - mean * inv).astype(np.float32)
    return out


def quantized(topology, weights, quant, end, prefix):
    """The folded front with each kernel kept as the package's own uint8 values: nsfwjs stores every tensor as
    uint8 q with a per-tensor (min, scale), and the folded kernel is rsqrt(var + eps)[co] * (q * scale + min), so per
    output channel it is q * s[co] + m[co] with s = rsqrt(var + eps) * scale and m = rsqrt(var + eps) * min. Written as
    `.weight_q` (U8), `.weight_scale` and `.weight_min` (F32 [Co]) and `.bias` (F32 [Co]): a quarter of the float32
    size; the engine (src/io/quantized.ts) and dequantize() below compute the kernel as float32(float32(q * s) + m)."""
    layers = layers_to(topology, end)
    folded = fold(topology, weights, end, prefix)
    out = {}
    for layer in layers:
        if layer['class_name'] != 'Conv2D':
            continue
        n = layer['name']
        k = np.asarray(weights[f'{n}/kernel'], np.float64)
        mn, sc = quant[f'{n}/kernel']
        q = np.round((k - mn) / sc)
        assert q.min() >= 0 and q.max() <= 255 and np.array_equal(np.float32(q * sc + mn), weights[f'{n}/kernel']), n
        idx = int(n.split('_')[1])
        name = f'{prefix}.conv2d_{idx}'
        w = folded.pop(f'{name}.weight')
        bn = next(l for l in layers if l['inbound_nodes'] and l['inbound_nodes'][0][0][0] == n)
        var = np.asarray(weights[f'{bn["name"]}/moving_variance'], np.float64)
        inv = 1.0 / np.sqrt(var + bn['config']['epsilon'])
        out[f'{name}.weight_q'] = q.transpose(3, 2, 0, 1).astype(np.uint8)
        out[f'{name}.weight_scale'] = (inv * sc).astype(np.float32)
        out[f'{name}.weight_min'] = (inv * mn).astype(np.float32)
        out[f'{name}.bias'] = folded.pop(f'{name}.bias')
        err = np.abs(dequantize(out, name) - w).max() / max(np.abs(w).max(), 1e-30)
        assert err < 1e-6, (n, err)
    assert not folded
    return out


def dequantize(tensors, name):
    """The float32 kernel of a quantised front convolution, as the engine computes it."""
    q = tensors[f'{name}.weight_q'].astype(np.float32)
    s = tensors[f'{name}.weight_scale'][:, None, None, None]
    m = tensors[f'{name}.weight_min'][:, None, None, None]
    return (q * s).astype(np.float32) + m


def reference(topology, weights, x, end):
    """keras_torch's map at `end` for x [B,3,S,S] in [0,1], in float64."""
    net = KerasNet(topology, weights).double()
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float64), outputs=[end])[end].numpy()


def tiny_topology(topology, div):
    t = copy.deepcopy(topology)
    for layer in t['model_config']['config']['layers']:
        if layer['class_name'] == 'Conv2D':
            assert layer['config']['filters'] % div == 0
            layer['config']['filters'] //= div
    return t


def random_weights(topology, end, seed):
    """Weights of every layer up to `end` for a topology, with plausible batch-norm statistics."""
    rng = np.random.RandomState(seed)
    chans, w = {}, {}
    for layer in layers_to(topology, end):
        n, c, cls = layer['name'], layer['config'], layer['class_name']
        ins = [i[0] for i in layer['inbound_nodes'][0]] if layer['inbound_nodes'] else []
        if cls == 'InputLayer':
            chans[n] = 3
        elif cls == 'Conv2D':
            ci, co = chans[ins[0]], c['filters']
            kh, kw = c['kernel_size']
            w[f'{n}/kernel'] = (rng.standard_normal((kh, kw, ci, co)) * np.sqrt(2.0 / (kh * kw * ci))).astype(np.float32)
            chans[n] = co
        elif cls == 'BatchNormalization':
            co = chans[ins[0]]
            w[f'{n}/moving_mean'] = (rng.standard_normal(co) * 0.2).astype(np.float32)
            w[f'{n}/moving_variance'] = rng.uniform(0.5, 2.0, co).astype(np.float32)
            w[f'{n}/beta'] = (rng.standard_normal(co) * 0.1).astype(np.float32)
            chans[n] = co
        elif cls == 'Concatenate':
            chans[n] = sum(chans[i] for i in ins)
        else:
            chans[n] = chans[ins[0]]
    return w


def load_teacher_files(cache, with_quant=False):
    topo = json.load(open(os.path.join(cache, 'inception_v3.topology.json')))
    w, meta = load_file(os.path.join(cache, 'inception_v3.safetensors'))
    if not with_quant:
        return topo, w
    if 'quantization' not in meta:
        raise SystemExit('error: the teacher export has no quantization metadata\nhint: export it again: node tools/teacher/export.mjs --model inception_v3')
    return topo, w, json.loads(meta['quantization'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('what', choices=['export', 'fixture', 'reference'])
    ap.add_argument('--end', default='mixed7', choices=BLOCKS)
    ap.add_argument('--prefix', default='front')
    ap.add_argument('--cache', default='.cache/teacher')
    ap.add_argument('--out', required=True)
    ap.add_argument('--quantized', action='store_true', help='export: the kernels as the package\'s uint8 values (quantized())')
    a = ap.parse_args()
    if a.what == 'export':
        if a.quantized:
            topo, w, quant = load_teacher_files(a.cache, with_quant=True)
            tensors = quantized(topo, w, quant, a.end, a.prefix)
        else:
            topo, w = load_teacher_files(a.cache)
            tensors = fold(topo, w, a.end, a.prefix)
        save_file(tensors, a.out, {'sketchgpu.front': f'inception_v3/{a.end}', 'sketchgpu.source': 'nsfwjs@4.4.0 InceptionV3 (MIT), batch norms folded'
                                   + (', kernels as its uint8 values with per-channel scale and min' if a.quantized else '')})
        print(f'wrote {a.out}: {len(tensors)} tensors, {sum(v.nbytes for v in tensors.values()):,} bytes')
    elif a.what == 'reference':
        # Two real images (a sample sketch and a sample photo), as the teacher cache feeds them: 128 px engine
        # preprocessing is not involved here; the front's own input at 299 px, bilinear align_corners from 256 px.
        topo, w = load_teacher_files(a.cache)
        from PIL import Image
        root = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'web', 'sample')
        files = [os.path.join(root, 'sketch', 'giraffe', sorted(os.listdir(os.path.join(root, 'sketch', 'giraffe')))[0]),
                 os.path.join(root, 'photo', 'giraffe', sorted(os.listdir(os.path.join(root, 'photo', 'giraffe')))[0])]
        x = np.stack([np.asarray(Image.open(f).convert('RGB').resize((299, 299), Image.BILINEAR), np.float32) / 255.0 for f in files]).transpose(0, 3, 1, 2)
        y = reference(topo, w, x, a.end)
        save_file({'input': x.astype(np.float32), 'output': y.astype(np.float32), **fold(topo, w, a.end, a.prefix)}, a.out,
                  {'files': json.dumps([os.path.relpath(f, root) for f in files]), 'end': a.end})
        print(f'wrote {a.out}: output {y.shape}, |y| max {np.abs(y).max():.3f}')
    else:
        topo, _ = load_teacher_files(a.cache)
        os.makedirs(a.out, exist_ok=True)
        tiny = tiny_topology(topo, 16)
        w = random_weights(tiny, 'mixed7', 7501)
        rng = np.random.RandomState(7502)
        meta = {'width_divisor': 16, 'cases': []}
        tensors = fold(tiny, w, 'mixed7', a.prefix)
        for name, side, batch in (('s75', 75, 2), ('s83', 83, 1)):
            # Inputs on a 2^-8 grid in [0, 1] (exact in float32 and binary16), like an 8-bit image / 255.
            x = (rng.randint(0, 256, size=(batch, 3, side, side)) / 256.0).astype(np.float32)
            tensors[f'{name}.input'] = x
            for end in ('mixed2', 'mixed3', 'mixed7'):
                tensors[f'{name}.{end}'] = reference(tiny, w, x, end).astype(np.float32)
            meta['cases'].append({'name': name, 'side': side, 'batch': batch, 'ends': ['mixed2', 'mixed3', 'mixed7']})
        # zse_ref.InceptionFront (the network written out, as the engine's builder is) = keras_torch on the topology.
        import zse_ref
        net = zse_ref.InceptionFront('mixed7', 16).double()
        net.load_state_dict({k.replace(f'{a.prefix}.', 'convs.'): torch.from_numpy(v).double() for k, v in tensors.items() if k.startswith(f'{a.prefix}.')})
        for case in meta['cases']:
            with torch.no_grad():
                got = net(torch.from_numpy(tensors[f"{case['name']}.input"]).double()).numpy()
            err = np.abs(got - tensors[f"{case['name']}.mixed7"]).max()
            assert err < 1e-5, err
            print(f"zse_ref.InceptionFront = keras_torch at {case['side']} px: max |diff| {err:.1e}")
        save_file(tensors, os.path.join(a.out, 'tiny16.safetensors'), {'sketchgpu.fixture': json.dumps(meta)})
        json.dump(meta, open(os.path.join(a.out, 'tiny16.json'), 'w'), indent=1)
        print(f'wrote {a.out}/tiny16.safetensors ({sum(v.size for v in tensors.values())} values)')


if __name__ == '__main__':
    main()
