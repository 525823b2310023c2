#!/usr/bin/env bash
# The test command (README: `npm test`). Installs what it needs (npm packages, a software Vulkan driver when
# no GPU adapter exists), runs every uvu suite in one process, and ends with "N passed, M failed".
# `--full` runs the opt-in full-size checks in test/full instead.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/uvu ] && [ -d node_modules/webgpu ] || npm install --no-audit --no-fund || exit 1
bash tools/ensure-vulkan.sh || exit 1
node tools/build.mjs || exit 1
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
failed=$(( total - passed - ${skipped:-0} ))
[ "$rc" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "${passed} passed, ${failed} failed, ${skipped:-0} skipped"
[ "$failed" = 0 ] && [ "$rc" = 0 ]
