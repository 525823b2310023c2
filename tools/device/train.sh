#!/usr/bin/env bash
# Training on a GPU machine lent through the device tool (issue 20): two tools/training/train_zse.py runs side by side on the
# one GPU, each with the teacher live on every augmented view (--teacher-net) and a wall-clock budget
# (--time-budget; the cosine schedule ends when it is spent). Needs .trainpack/ (tools/device/pack-train.sh: the 104
# seen classes only, the split lists, the trimmed teacher). Validation = the 10 held-out seen classes, as on the CPU.
# Writes under $OUT: A.log, B.log (JSON lines), A-best.pth, B-best.pth (the checkpoints each run selected), gpu.txt.
#   run(command="SKETCHGPU_TRAIN_MINUTES=4 bash tools/device/train.sh", carry=[".trainpack"], timeout_s=...)
#   Both start from the shipped weights (run G, which learned with --distill-cross and --distill-attn on the CPU;
#   weights/README.md) with the same batch, schedule and --distill-attn, so they differ in one thing: A keeps
#   --distill-cross 1 (sketches regressed onto the teacher feature of their source photo), B is the control without
#   it, now with exact live-teacher targets and 64-item batches. (The first GPU run, 2026-12-04, compared run E
#   trained on against a from-scratch run: from scratch was worse, 0.154 vs 0.165.)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out/device-train}"
mkdir -p "$OUT"
[ -d .trainpack/teacher ] || { echo "error: .trainpack is missing"; echo "hint: bash tools/device/pack-train.sh, then carry .trainpack"; exit 2; }
export SKETCHGPU_SHARED="$PWD/.trainpack" PYTHONUNBUFFERED=1
py="${SKETCHGPU_TRAIN_PYTHON:-python3}"
min="${SKETCHGPU_TRAIN_MINUTES:-4}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
common=(--teacher-net .trainpack/teacher --distill-global 1 --distill-tokens 1 --distill-rel 1 --proxy-loss 1
        --pair-frac 0.5 --stem-init full --val-rn 0 --device cuda --threads 4 --log-every 50 --val-every 200
        --steps 100000 --time-budget "$min" --distill-attn 1)
echo "== train ($(date -u +%T)), $min min each"
"$py" tools/training/train_zse.py --out .cache/gpuA --init weights/zse-sketchy104-small.safetensors "${common[@]}" \
  --batch 64 --lr 3e-4 --warmup 100 --distill-cross 1 > "$OUT/A.log" 2>&1 &
"$py" tools/training/train_zse.py --out .cache/gpuB --init weights/zse-sketchy104-small.safetensors "${common[@]}" \
  --batch 64 --lr 3e-4 --warmup 100 > "$OUT/B.log" 2>&1 &
wait
for r in A B; do
  cp ".cache/gpu$r/best.pth" "$OUT/$r-best.pth" 2>/dev/null || echo "run $r: no best.pth"
  echo "-- $r"; grep -E '"val"|stopped|done:|Error|error' "$OUT/$r.log" | tail -4 | cut -c1-300
done
echo "== done ($(date -u +%T))"
