#!/usr/bin/env bash
# One-shot GPU check of nac (at most about 8 minutes on one GPU). NOT YET RUN ON A GPU.
#
#   bash benchmarks/gpu_check.sh OUT_DIR            # on a machine with a GPU
#   bash benchmarks/gpu_check.sh OUT_DIR --dry_run  # everything tiny, on the CPU (the tests)
#
# Writes OUT_DIR/results.json and OUT_DIR/results.md (and the parts: facts.json, tests.json,
# tests.log, throughput.json, construction.json, construction/):
#  1. the device tests (tests/training/test_distribute.py, tests/net/test_stats.py) on the GPU, with the
#     one physical GPU split into two logical GPUs (NAC_TEST_LOGICAL_GPUS=2, see
#     tests/conftest.py): MirroredStrategy over two GPUs, and the two-replica statistic equal
#     to one device's as in the CPU tests;
#  2. Envelope A (128/10-1-1-1/6, 28x28, batch 50) images/s in float32, mixed_float16 and XLA
#     (benchmarks/gpu_check.py);
#  3. a short Fashion-MNIST construction: the quickstart (synthetic data in the dry run).
# Set PYTHON to the interpreter (default: python3). Run from the repository root.
set -u
OUT=${1:?usage: gpu_check.sh OUT_DIR [--dry_run]}
DRY=${2:-}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
DRY_FLAG=""
[ "$DRY" = "--dry_run" ] && DRY_FLAG="--dry_run"

"$PY" "$HERE/gpu_check.py" facts "$OUT" > "$OUT/facts.log" 2>&1

# 1. Device tests (the dry run only checks that they are collected).
if [ -n "$DRY_FLAG" ]; then
  TEST_CMD=("$PY" -m pytest -q --collect-only tests/training/test_distribute.py tests/net/test_stats.py)
else
  TEST_CMD=(env NAC_TEST_LOGICAL_GPUS=2 "$PY" -m pytest -q tests/training/test_distribute.py tests/net/test_stats.py)
fi
"${TEST_CMD[@]}" > "$OUT/tests.log" 2>&1
CODE=$?
SUMMARY=$(tail -n 1 "$OUT/tests.log" | tr -d '"\\')
printf '{"command": "%s", "exit_code": %d, "summary": "%s", "dry_run": %s}\n' \
  "${TEST_CMD[*]}" "$CODE" "$SUMMARY" "$([ -n "$DRY_FLAG" ] && echo true || echo false)" > "$OUT/tests.json"

# 2. Throughput, one process per variant.
"$PY" "$HERE/gpu_check.py" throughput "$OUT" $DRY_FLAG > "$OUT/throughput.log" 2>&1

# 3. A short construction.
if [ -n "$DRY_FLAG" ]; then
  FLAGS=(--dataset=synthetic --envelope=8/1-1/6 --iterations=1 --construction_steps=3 --final_steps=3 --eval_every=3 --stats_every=3 --nosave_models)
else
  FLAGS=(--flagfile=experiments/quickstart.flags)
fi
rm -rf "$OUT/construction"
"$PY" -m nac.construct "${FLAGS[@]}" --run_dir="$OUT/construction" --seed=0 --noprogress > "$OUT/construction.log" 2>&1
printf '{"exit_code": %d, "flags": "%s"}\n' "$?" "${FLAGS[*]}" > "$OUT/construction.json"

"$PY" "$HERE/gpu_check.py" report "$OUT"
cat "$OUT/results.md"
