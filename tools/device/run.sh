#!/usr/bin/env bash
# The GPU checks, as one prepared command on a machine lent through the device tool (tools/device/pack.sh packs
# what it needs; without the pack, or where Node exists, it runs from the sources: here, on lavapipe, a dry run). Writes everything under $OUT (or out/device):
#   info.json      the adapter sketchgpu sees and its features
#   tests.log      the kernel, ZSE-SBIR parity and autotune tests on that adapter (CAAN's need the CLIP vocabulary
#                  from ../shared, which does not travel)
#   bench.jsonl    npm run bench --json, one line per section (ViT-B/16 on hardware: kernels incl. every GEMM variant, SA batch 1/32/128,
#                  CA+RN pairs/s, index and query), with the PyTorch peer where python3 has torch
#   autotune.json  the GEMM kernel picks the autotuner measured
#   serve.json     npm run bench:serve: the search server over HTTP under 1 and 16 clients, max batch 1 against 16
#                  (serve-vitb.json: the same with ViT-B/16, random weights)
# SKETCHGPU_DEVICE_STEPS (default "info tests bench serve") picks steps; SKETCHGPU_BENCH_ARGS adds bench options.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out/device}"
mkdir -p "$OUT"
if [ -f .node/pack.tar.xz ] && { ! command -v node >/dev/null || [ -n "${SKETCHGPU_DEVICE_CARRIED:-}" ]; }; then   # the device machine: carried Node, bundles, loader
  mkdir -p /tmp/sg && xz -dc .node/pack.tar.xz | tar -xf - -C /tmp/sg
  export PATH="/tmp/sg:$PATH" NODE_PATH=/tmp/sg/node_modules
  ln -sfn /tmp/sg/node_modules node_modules
  tar -xf /tmp/sg/bundles.tar
  if [ -f .ort/ort.tar.xz ]; then xz -dc .ort/ort.tar.xz | tar -xf - -C /tmp/sg; fi
  for f in .gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
  ldconfig 2>/dev/null || true
  nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$nv" ] && export VK_DRIVER_FILES="$nv"
fi
export SKETCHGPU_AUTOTUNE_FILE="$OUT/autotune.json" XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# The PyTorch peer: the python3 on PATH when it has torch (CUDA on the GPU machine), else Debian's.
command -v python3 >/dev/null && python3 -c 'import torch' 2>/dev/null && export SKETCHGPU_PYTHON="${SKETCHGPU_PYTHON:-$(command -v python3)}"
node --version || { echo "no node: run tools/device/pack.sh here and carry .node"; exit 1; }
steps="${SKETCHGPU_DEVICE_STEPS:-info tests bench serve}"
rc=0
for s in $steps; do
  echo "== $s ($(date -u +%T))"
  case "$s" in
    info)  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv > "$OUT/nvidia-smi.csv" 2>&1
           cli=bin/sketchgpu.js; [ -f bin/sketchgpu.device.mjs ] && cli=bin/sketchgpu.device.mjs
           node "$cli" info --json | tee "$OUT/info.json" || rc=1 ;;
    tests) # the bundles from tools/device/pack.sh where they are, else the TypeScript sources through tsx
           : > "$OUT/tests.log"
           if ls test/*.test.device.mjs >/dev/null 2>&1; then
             for f in test/*.test.device.mjs; do timeout "${SKETCHGPU_STEP_TIMEOUT:-300}" node "$f" >> "$OUT/tests.log" 2>&1 || rc=1; done
           else
             node --import tsx --import ./test/hooks.mjs node_modules/uvu/bin.js test \
               '(kernel\..*|model\.zse\.parity|graph\..*)\.test\.ts$' > "$OUT/tests.log" 2>&1 || rc=1
           fi
           grep -aE "Total|Passed|Skipped|FAIL" "$OUT/tests.log" | sed 's/\x1b\[[0-9;]*m//g' | head -40 ;;
    bench) bench=(node --import tsx --import ./test/hooks.mjs bench/run.ts)
           [ -f bench/run.device.mjs ] && bench=(node bench/run.device.mjs)
           # One process per section, each appending its JSON line, so a run cut short keeps what finished:
           # e2e with the peers first, then the kernels, then host cost and the cost model.
           : > "$OUT/bench.jsonl"; : > "$OUT/bench.err"
           for sec in ${SKETCHGPU_BENCH_SECTIONS:-e2e kernels host,cost}; do
             echo "   bench --only $sec ($(date -u +%T))"
             # shellcheck disable=SC2086
             timeout "${SKETCHGPU_STEP_TIMEOUT:-300}" "${bench[@]}" --json --only "$sec" ${SKETCHGPU_BENCH_ARGS:-} >> "$OUT/bench.jsonl" 2>> "$OUT/bench.err" || rc=1
           done
           tail -c 600 "$OUT/bench.jsonl"; echo ;;
    serve) serve=(node --import tsx --import ./test/hooks.mjs bench/serve.ts)
           [ -f bench/serve.device.mjs ] && serve=(node bench/serve.device.mjs)
           # The shipped small model, then ViT-B/16 (random weights): the full-size model's server throughput.
           timeout "${SKETCHGPU_STEP_TIMEOUT:-300}" "${serve[@]}" --out "$OUT/serve.json" > "$OUT/serve.log" 2>&1 || rc=1
           tail -n 12 "$OUT/serve.log"
           timeout "${SKETCHGPU_STEP_TIMEOUT:-300}" "${serve[@]}" --model vitb --queries 128 --out "$OUT/serve-vitb.json" > "$OUT/serve-vitb.log" 2>&1 || rc=1
           tail -n 12 "$OUT/serve-vitb.log" ;;
    *) echo "unknown step $s"; rc=1 ;;
  esac
done
echo "== done ($(date -u +%T)), rc $rc"
exit $rc
