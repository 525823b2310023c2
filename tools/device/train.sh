#!/usr/bin/env bash
# Training on a GPU machine lent through the device tool (issue 20): two tools/training/train_zse.py runs side by side on the
# one GPU, each with the teacher live on every augmented view (--teacher-net) and a wall-clock budget
# (--time-budget; the cosine schedule ends when it is spent). Needs .trainpack/ (tools/device/pack-train.sh: the 104
# seen classes only, the split lists, the trimmed teacher). Validation = the 10 held-out seen classes, as on the CPU.
# Writes under $OUT: A.log, B.log (JSON lines), A-best.pth, B-best.pth (the checkpoints each run selected), gpu.txt.
#   run(command="SKETCHGPU_TRAIN_MINUTES=4 bash tools/device/train.sh", carry=[".trainpack"], timeout_s=...)
#   Both start from the shipped weights (weights/README.md) with the shipped run's losses (run I: --teacher-whiten 256,
#   --distill-cross 1, --distill-attn 1, the proxy loss), now with exact live-teacher targets and 64-item batches, and
#   differ in one thing, the student's capacity (the CPU runs showed it underfits its teacher even on training photos,
#   and the first GPU run, 2026-12-04, that more steps at this size do not lift validation): A keeps the shipped size
#   (width 128), B is the same weights grown to twice the width (train_zse.py grow_: 256 wide, 8 SA and 8 CA heads, MLP
#   1024, CA feed-forward 512; the SA and CA outputs start as A's, ~10.8 MB in float16, within the demo budget since
#   the CAAN file's compact token table).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out/device-train}"
mkdir -p "$OUT"
[ -d .trainpack/teacher ] || { echo "error: .trainpack is missing"; echo "hint: bash tools/device/pack-train.sh, then carry .trainpack"; exit 2; }
export SKETCHGPU_SHARED="$PWD/.trainpack" PYTHONUNBUFFERED=1
py="${SKETCHGPU_TRAIN_PYTHON:-python3}"
min="${SKETCHGPU_TRAIN_MINUTES:-4}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
common=(--teacher-net .trainpack/teacher --teacher-whiten 256 --distill-global 1 --distill-tokens 1 --distill-rel 1
        --distill-cross 1 --distill-attn 1 --proxy-loss 1 --pair-frac 0.5 --stem-init full --val-rn 0 --size 128
        --device cuda --threads 4 --log-every 50 --val-every 200 --steps 100000 --time-budget "$min"
        --init weights/zse-sketchy104-small.safetensors --batch 64 --lr 3e-4 --warmup 100)
echo "== train ($(date -u +%T)), $min min each"
"$py" tools/training/train_zse.py --out .cache/gpuA "${common[@]}" > "$OUT/A.log" 2>&1 &
"$py" tools/training/train_zse.py --out .cache/gpuB "${common[@]}" \
  --dim 256 --heads 8 --mlp 1024 --ca-heads 8 --ca-ff 512 > "$OUT/B.log" 2>&1 &
wait
for r in A B; do
  cp ".cache/gpu$r/best.pth" "$OUT/$r-best.pth" 2>/dev/null || echo "run $r: no best.pth"
  echo "-- $r"; grep -E '"val"|stopped|done:|Error|error' "$OUT/$r.log" | tail -4 | cut -c1-300
done
echo "== done ($(date -u +%T))"
