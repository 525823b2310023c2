#!/usr/bin/env bash
# Packs what tools/device/train.sh needs on a GPU machine into .trainpack/ (git-ignored; carry it): the 104 SEEN
# classes of ../shared/data/sketchy/all125-128 as they are (the unseen 21 are not copied, so nothing on that machine can
# read them), the split lists, and the teacher trimmed to mixed7 in float16 (tools/teacher/trim.py, ~18 MB). With the
# tracked tree a call may send 64 MiB: the 8.4 MB CAAN demo weights, which training does not read, are moved aside for
# the call (weights/README.md, "GPU run").
set -euo pipefail
cd "$(dirname "$0")/../.."
src=../shared/data
[ -d "$src/sketchy/all125-128" ] || { echo "error: $src/sketchy/all125-128 is missing"; exit 2; }
rm -rf .trainpack && mkdir -p .trainpack/data/sketchy/all125-128/photo .trainpack/data/sketchy/all125-128/sketch
cp -r "$src/splits" .trainpack/data/
/usr/bin/python3 - "$src" <<'PY'
import os, shutil, sys
sys.path.insert(0, 'tools/training')
from splits import seen_classes
src = sys.argv[1]
for c in seen_classes():
    for m in ('photo', 'sketch'):
        shutil.copytree(f'{src}/sketchy/all125-128/{m}/{c}', f'.trainpack/data/sketchy/all125-128/{m}/{c}')
print(f'{len(seen_classes())} seen classes copied')
PY
[ -f .cache/teacher/inception_v3.safetensors ] || node tools/teacher/export.mjs
/usr/bin/python3 tools/teacher/trim.py --out .trainpack/teacher
du -sh .trainpack
