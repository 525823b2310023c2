#!/usr/bin/env bash
# The test command (README: `npm test`). Installs what it needs (npm packages, a software Vulkan driver when
# no GPU adapter exists), runs every uvu suite in one process, and ends with "N passed, M failed".
# `--full` runs the opt-in full-size checks in test/full instead.
set -uo pipefail
cd "$(dirname "$0")/.."
# onnxruntime-node (dev dependency, the bench's ORT peer): skip its CUDA download, which fails offline.
export ONNXRUNTIME_NODE_INSTALL=skip
[ -d node_modules/uvu ] && [ -d node_modules/webgpu ] && [ -d node_modules/playwright-core ] || npm install --no-audit --no-fund || exit 1
bash tools/setup/ensure-vulkan.sh || exit 1
# The browser tests (test/browser) drive Debian's Chromium headless with WebGPU on SwiftShader. Without it they are
# reported as skipped (in the count below), never passed.
if [ "${1:-}" != "--full" ] && [ -z "${SKETCHGPU_SKIP_BROWSER:-}" ] && [ ! -x "${SKETCHGPU_CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium for the browser tests (apt-get install -y chromium)..."
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >/tmp/sketchgpu-apt-chromium.log 2>&1 \
      || echo "warning: apt-get install chromium failed (see /tmp/sketchgpu-apt-chromium.log): the browser tests will be skipped"
  else
    echo "warning: /usr/bin/chromium is missing, so the browser tests will be SKIPPED (counted below)."
    echo "         Install it with: sudo apt-get install -y chromium   (Debian/Ubuntu; or set SKETCHGPU_CHROMIUM=<path>)"
  fi
fi
# The training-honesty test (test/training.honesty.test.ts) runs tools/training/splits.py, which needs numpy in Debian's Python.
if [ "${1:-}" != "--full" ] && [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing python3-numpy for the training-honesty test (apt-get install -y python3-numpy)..."
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-numpy; } >/tmp/sketchgpu-apt-numpy.log 2>&1 \
      || echo "warning: apt-get install python3-numpy failed (see /tmp/sketchgpu-apt-numpy.log): two honesty tests will be skipped"
  else
    echo "warning: /usr/bin/python3 has no numpy, so two training-honesty tests will be SKIPPED (counted below)."
  fi
fi
node tools/build.mjs || exit 1
# Every temporary file of the run (the tests' mkdtemp folders, Chromium profiles, packed tarballs) goes under one
# scratch folder, removed when the run ends (also on Ctrl-C); SKETCHGPU_KEEP_TMP=1 keeps it to look at.
scratch=$(mktemp -d -t sketchgpu-test.XXXXXX) || exit 1
[ -n "${SKETCHGPU_KEEP_TMP:-}" ] && echo "temporary files kept in $scratch" || trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

if [ "${1:-}" = "--full" ]; then
  args=(test/full '\.test\.ts$')
else
  args=(test '\.test\.ts$' -i '^full/')
fi
log=$(mktemp)
node --import tsx --import ./test/hooks.mjs node_modules/uvu/bin.js "${args[@]}" 2>&1 \
  | grep --line-buffered -v 'artificially reduced from 1000000 to 16' | tee "$log"
rc=${PIPESTATUS[0]}
plain=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log")
total=$(echo "$plain" | sed -nE 's/^ *Total: *([0-9]+).*/\1/p' | tail -n1)
passed=$(echo "$plain" | sed -nE 's/^ *Passed: *([0-9]+).*/\1/p' | tail -n1)
skipped=$(echo "$plain" | sed -nE 's/^ *Skipped: *([0-9]+).*/\1/p' | tail -n1)
rm -f "$log"
if [ -z "$total" ]; then
  echo "0 passed, 1 failed"
  echo "(the test runner stopped before its summary: exit code $rc)" >&2
  exit 1
fi
# uvu's Total counts the tests that ran; skipped ones are only in Skipped.
failed=$(( total - passed ))
[ "$rc" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "${passed} passed, ${failed} failed, ${skipped:-0} skipped"
[ "$failed" = 0 ] && [ "$rc" = 0 ]
