"""Shows that the PyTorch port (keras_torch.py) feeds and runs the teacher exactly as nsfwjs does: the package's own
classifier (TensorFlow.js, tools/teacher/classify_tfjs.mjs) and the port give the same 5 class probabilities on a few
real images (seen-class Sketchy photos and sketches). Prints the max |difference| and exits 1 above --tol.

    /usr/bin/python3 tools/teacher/check.py [--model inception_v3] [--n 6]
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from keras_torch import INPUT_SIZE, load_teacher, preprocess  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'training'))
from splits import ALL128, check_purpose, files_of, seen_classes  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='inception_v3')
ap.add_argument('--n', type=int, default=6)
ap.add_argument('--feature', default='mixed7', help='intermediate layer compared too (spatial mean)')
ap.add_argument('--tol', type=float, default=1e-4, help='max |diff| of probabilities and max relative diff of the feature')
a = ap.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
check_purpose(ALL128, seen_classes(), 'cache')
files = [str(ALL128 / f) for f in files_of(ALL128, seen_classes(), 'photo')[::997][: a.n // 2]
         + files_of(ALL128, seen_classes(), 'sketch')[::997][: a.n - a.n // 2]]
imgs = np.stack([np.asarray(Image.open(f).convert('RGB')) for f in files])
n, h, w, _ = imgs.shape
tmp = os.path.join('.cache', 'teacher', 'check-input.bin')
with open(tmp, 'wb') as f:
    f.write(struct.pack('<III', n, h, w))
    f.write(imgs.astype(np.uint8).tobytes())
out = subprocess.check_output(['node', os.path.join(here, 'classify_tfjs.mjs'), a.model, tmp, a.feature], text=True)
js = json.loads(out.strip().splitlines()[-1])  # tfjs prints a banner first
net = load_teacher(a.model)
with torch.no_grad():
    r = net(preprocess(imgs, INPUT_SIZE[a.model]), outputs=[net.output_name, a.feature])
pt, ptf = r[net.output_name].double().numpy(), r[a.feature].double().mean(dim=(2, 3)).numpy()
jsp = np.array([o['probs'] for o in js])
jsf = np.array([o['feature'] for o in js])
d = float(np.abs(jsp - pt).max())
rel = float(np.abs(jsf - ptf).max() / np.abs(jsf).max())
cos = float(((jsf * ptf).sum(1) / np.linalg.norm(jsf, axis=1) / np.linalg.norm(ptf, axis=1)).min())
for f, p, q in zip(files, jsp, pt):
    print(os.path.relpath(f), 'nsfwjs', np.round(p, 6).tolist(), 'port', np.round(q, 6).tolist())
print(json.dumps({'model': a.model, 'images': n, 'probs_max_abs_diff': d, 'argmax_equal': bool((jsp.argmax(1) == pt.argmax(1)).all()),
                  'feature': a.feature, 'feature_max_rel_diff': rel, 'feature_min_cosine': cos}))
sys.exit(0 if d <= a.tol and rel <= a.tol else 1)
