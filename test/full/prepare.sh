#!/usr/bin/env bash
# Generates the full-size parity fixtures ahead of time (test/full/zse.full.test.ts also does this when they are
# missing): ViT-B/16 random weights as an official-format .pth (~409 MB), inputs and the float64 reference, into
# .cache/zse-full (git-ignored; nothing is redone while its stamp matches). ~2 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "$PY cannot import torch and numpy; install them with: apt-get install python3-torch python3-numpy" >&2
  exit 1
fi
exec "$PY" tools/fixtures/full_parity.py --out .cache/zse-full "$@"
