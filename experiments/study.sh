#!/usr/bin/env bash
# The Fashion-MNIST study: the paper's three questions at a scale a 2-core CPU can run.
#
# Constructs from the EnvelopeNet 16/3-1-1/6 at 28x28 (3 iterations of 100 steps), then trains,
# each for the same final budget (400 steps of 50 images, a third of an epoch):
#   the constructed network  (2 construction seeds)
#   the worst case           (2 construction seeds; prunes the strongest branches)
#   the envelope itself      (2 seeds)
#   3 random networks with the layers and branches per stage of the first constructed one
# and writes the report (Table 1, Figures 2-4, featuremap stability) to docs/study/.
# Data: Debian's dataset-fashion-mnist (or --data_dir via NAC_DATA_DIR). About 45-50 minutes
# on a 2-core CPU. Resumable: rerun the script and finished runs are kept, an interrupted one
# continues (see README, "Resume").
#
#   bash experiments/study.sh            # runs in runs/study, report in docs/study
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${STUDY_DIR:-runs/study}
REPORT=${STUDY_REPORT:-docs/study}
PY=${PYTHON:-python}
DATA=()
[ -n "${NAC_DATA_DIR:-}" ] && DATA=(--data_dir="$NAC_DATA_DIR")

COMMON=(--dataset=fashion_mnist "${DATA[@]}" --image_size=28 --batch_size=50 --stats_every=10
        --final_steps=400 --eval_every=100 --nosave_models --notensorboard --noprogress)
CONSTRUCT=(--envelope=16/3-1-1/6 --iterations=3 --construction_steps=100)

start=$(date +%s)
for seed in 1 2; do
  $PY -m nac.construct "${COMMON[@]}" "${CONSTRUCT[@]}" --seed=$seed --run_dir="$OUT/constructed_s$seed"
  $PY -m nac.construct "${COMMON[@]}" "${CONSTRUCT[@]}" --seed=$seed --worstcase --run_dir="$OUT/worstcase_s$seed"
  $PY -m nac.construct "${COMMON[@]}" --mode=oneshot --envelope=16/3-1-1/6 --seed=$seed --run_dir="$OUT/envelope_s$seed"
done
$PY -m nac.construct "${COMMON[@]}" --mode=random --arch="$OUT/constructed_s1/final/network.json" \
  --num_random=3 --seed=1 --run_dir="$OUT/random"
$PY -m nac.report "$OUT"/constructed_s* "$OUT"/worstcase_s* "$OUT"/envelope_s* "$OUT/random" --out "$REPORT"
echo "study finished in $(( $(date +%s) - start )) s; report in $REPORT/report.md"
