"""Writes the teacher's weights up to one layer (default mixed7, what the distillation reads) as float16 safetensors
beside its topology, so the teacher travels small (InceptionV3 to mixed7: ~9 M of its 24 M parameters, ~18 MB) to a
GPU machine that runs it live (tools/training/train_zse.py --teacher-net DIR). float16 rounding of the dequantised 8-bit weights
moves the mixed7 map by ~1e-3 relative (printed); a teacher's target needs no more.

    /usr/bin/python3 tools/teacher/trim.py --out .trainpack/teacher
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
from keras_torch import INPUT_SIZE, load_teacher  # noqa: E402
from safetensors_min import load_file, save_file  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument('--model', default='inception_v3')
ap.add_argument('--layer', default='mixed7')
ap.add_argument('--cache', default='.cache/teacher')
ap.add_argument('--out', required=True)
a = ap.parse_args()

top_path = os.path.join(a.cache, f'{a.model}.topology.json')
topology = json.load(open(top_path))
layers = topology['model_config']['config']['layers']
names = [l['name'] for l in layers]
if a.layer not in names:
    raise SystemExit(f'error: {a.model} has no layer {a.layer}')
keep = set(names[:names.index(a.layer) + 1])
tensors, _ = load_file(os.path.join(a.cache, f'{a.model}.safetensors'))
sub = {k: v.astype(np.float16) for k, v in tensors.items() if k.split('/')[0] in keep}
os.makedirs(a.out, exist_ok=True)
save_file(sub, os.path.join(a.out, f'{a.model}.safetensors'), {'trimmed_at': a.layer})
shutil.copy(top_path, os.path.join(a.out, f'{a.model}.topology.json'))
n = sum(v.size for v in sub.values())
# How much the float16 rounding moves the layer's output, on random input.
x = torch.rand(2, 3, INPUT_SIZE[a.model], INPUT_SIZE[a.model], generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    ref = load_teacher(a.model, a.cache)(x, outputs=[a.layer])[a.layer]
    got = load_teacher(a.model, a.out)(x, outputs=[a.layer])[a.layer]
rel = float((got - ref).norm() / ref.norm())
print(json.dumps({'layer': a.layer, 'tensors': len(sub), 'params': int(n), 'bytes': os.path.getsize(os.path.join(a.out, f'{a.model}.safetensors')),
                  'f16_rel_error': rel}))
