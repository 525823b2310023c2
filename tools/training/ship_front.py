#!/usr/bin/python3
"""Write a trained front-variant checkpoint (tools/training/train_front.py best.pth) as the demo's safetensors file:
the head in float16 (as `sketchgpu convert --fp16` writes it), the InceptionV3 front as the package's own uint8 values
with per-channel scale and min (tools/teacher/front.py quantized(); the engine expands them on load,
src/io/quantized.ts), and the metadata the engine reads (heads, the front, its input side, the image side).

    /usr/bin/python3 tools/training/ship_front.py .cache/train-front-a/best.pth --out weights/zse-sketchy104-small.safetensors

Checks before writing: the checkpoint's front equals the folded teacher (tools/teacher/front.py export) that the head
was trained on, and the quantised front it ships expands to that front within 1e-6 (relative, per tensor).
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

TOOLS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TOOLS / 'reference'), str(TOOLS / 'teacher')]
import zse_ref  # noqa: E402
from front import dequantize  # noqa: E402
from safetensors_min import load_file, save_file  # noqa: E402

FRONT = 'sa.model.front.convs.'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('checkpoint')
    ap.add_argument('--out', required=True)
    ap.add_argument('--front-q', default='.cache/teacher/front-mixed7-q.safetensors', help='tools/teacher/front.py export --quantized')
    ap.add_argument('--source', default='', help='what to name as the source in the metadata (default: the checkpoint path)')
    a = ap.parse_args()
    ck = torch.load(a.checkpoint, map_location='cpu')
    sd, cfg = ck['model'], ck['config']
    q, _ = load_file(a.front_q)
    out = {}
    n_front = 0
    for k, v in sd.items():
        if k.startswith(zse_ref.DEAD_PREFIX):
            continue
        if k.startswith(FRONT):
            name = 'front.' + k[len(FRONT):]
            base = name.rsplit('.', 1)[0]
            if k.endswith('.weight'):
                deq = dequantize(q, base)
                err = float(np.abs(deq - v.numpy()).max() / max(float(v.abs().max()), 1e-30))
                assert err < 1e-6, (k, err)
                for suffix in ('weight_q', 'weight_scale', 'weight_min'):
                    out[f'{FRONT}{base[len("front."):]}.{suffix}'] = q[f'{base}.{suffix}']
                n_front += 1
            else:
                assert np.array_equal(q[name], v.numpy()), k
                out[k] = q[name]
            continue
        out[k] = v.numpy().astype(np.float16)
    assert n_front == zse_ref.FRONT_CONVS[cfg['front'].split('/')[1]], n_front
    heads_cfg = {'sa_heads': cfg['sa_heads'], 'ca_heads': cfg['ca_heads']}
    meta = {
        'format': 'pt', 'sketchgpu.model': 'zse-sbir',
        'sketchgpu.sa_heads': str(cfg['sa_heads']), 'sketchgpu.ca_heads': str(cfg['ca_heads']),
        'sketchgpu.front': cfg['front'], 'sketchgpu.front_input': str(cfg['front_input']), 'sketchgpu.image_size': str(cfg['image_size']),
        'sketchgpu.source': a.source or os.path.basename(a.checkpoint),
        'sketchgpu.checkpoint': json.dumps({'epoch': int(ck['epoch']), 'map_all': float(ck['map_all']), 'precision_100': float(ck['precision_100']), 'config': heads_cfg}),
        'sketchgpu.front_source': 'nsfwjs@4.4.0 InceptionV3 (MIT; ImageNet-trained), to mixed7, batch norms folded, kernels as its uint8 values',
    }
    save_file(out, a.out, meta)
    size = os.path.getsize(a.out)
    print(f'wrote {a.out}: {len(out)} tensors ({n_front} quantised front convolutions), {size:,} bytes')


if __name__ == '__main__':
    main()
