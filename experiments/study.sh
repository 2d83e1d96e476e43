#!/usr/bin/env bash
# The Fashion-MNIST study (issue 15): does construction beat random and worst-case networks
# (question 1), and does the branch ranking settle before accuracy does (question 2)?
#
# Scale: Fashion-MNIST average-pooled to 14x14 (--downsample=2), EnvelopeNet ENVELOPE
# (12/3-1-1/6), ITERATIONS (2) construction iterations. Roles, every final network trained with
# the same recipe and budget (SGD momentum 0.9, cosine schedule from 0.05, batch 50, no
# augmentation, FINAL_STEPS steps, evaluated every EVAL_EVERY steps on the first 1,000 test
# images and at the end on all 10,000):
#   envelope      the envelope itself (seed 1)
#   constructed   from each construction seed in SEEDS
#   worstcase     the worst case from the same seeds (prunes the strongest branches)
#   random        RANDOM_PER random nets per constructed net, matched to it (its --arch),
#                 drawn with its construction seed
#   stopinherit   constructions from the same seeds with the stability stop
#                 (--stats_stop_tau=1.0: the ranking unchanged for 3 records in a row, the
#                 rule issue 14's first measurement recommends) and weight inheritance
#                 (--inherit_weights); their final networks train from scratch like every
#                 other role
# Construction iterations run CONSTRUCTION_STEPS steps, recording the statistic every 10
# steps and evaluating every EVAL_EVERY steps (question 2 compares the two per iteration).
# Then `nac.report` writes Table 1, Figures 2-4, stability and the study statistics to REPORT.
#
#   bash experiments/study.sh                     # the study: runs/study, report in docs/study
#   STUDY_SCALE=pilot bash experiments/study.sh   # the same design at a 10-minute scale:
#                                                 # 1 seed, 1 random net, short trainings
#                                                 # (runs/study_pilot, report in runs/study_pilot/report)
#
# Resumable: every run is a nac.construct run directory; rerunning the script skips finished
# runs (nac.construct returns at once for a complete run) and continues an interrupted one.
# Environment: PYTHON (default python), NAC_DATA_DIR (default: Debian's dataset-fashion-mnist),
# STUDY_DIR and STUDY_REPORT (override the output folders); ENVELOPE and ITERATIONS; at full
# scale FINAL_STEPS (300), EVAL_EVERY (50) and CONSTRUCTION_STEPS (100) override the budget (nac.construct refuses to
# resume a run with other values: use a new STUDY_DIR). Cost arithmetic: BUILD_NOTES.md,
# "The study (issue 15)".
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${STUDY_SCALE:-full}
case "$SCALE" in
  full)
    SEEDS=(1 2 3); RANDOM_PER=2; FINAL_STEPS=${FINAL_STEPS:-300}; EVAL_EVERY=${EVAL_EVERY:-50}
    CONSTRUCTION_STEPS=${CONSTRUCTION_STEPS:-100}
    OUT=${STUDY_DIR:-runs/study}; REPORT=${STUDY_REPORT:-docs/study} ;;
  pilot)
    SEEDS=(1); RANDOM_PER=1; FINAL_STEPS=100; EVAL_EVERY=25; CONSTRUCTION_STEPS=50
    OUT=${STUDY_DIR:-runs/study_pilot}; REPORT=${STUDY_REPORT:-runs/study_pilot/report} ;;
  *) echo "study.sh: STUDY_SCALE=$SCALE; expected full or pilot" >&2; exit 2 ;;
esac
PY=${PYTHON:-python}
DATA=()
[ -n "${NAC_DATA_DIR:-}" ] && DATA=(--data_dir="$NAC_DATA_DIR")

ENVELOPE=${ENVELOPE:-12/3-1-1/6}
ITERATIONS=${ITERATIONS:-2}
COMMON=(--dataset=fashion_mnist "${DATA[@]}" --downsample=2 --image_size=14 --batch_size=50
        --augment=none --momentum=0.9 --lr_schedule=cosine --learning_rate=0.05
        --final_steps=$FINAL_STEPS --eval_every=$EVAL_EVERY --eval_examples=1000 --stats_every=10
        --nosave_models --notensorboard --noprogress)
CONSTRUCT=(--envelope=$ENVELOPE --iterations=$ITERATIONS --construction_steps=$CONSTRUCTION_STEPS)

run() {  # run NAME FLAGS...: one nac.construct run into $OUT/NAME (resumes or skips it)
  local name=$1; shift
  echo "== $name ($(date -u +%H:%M:%S))"
  $PY -m nac.construct "${COMMON[@]}" "$@" --run_dir="$OUT/$name"
}

start=$(date +%s)
run envelope_s1 --mode=oneshot --envelope=$ENVELOPE --seed=1
for seed in "${SEEDS[@]}"; do
  run constructed_s$seed "${CONSTRUCT[@]}" --seed=$seed
  run worstcase_s$seed "${CONSTRUCT[@]}" --seed=$seed --worstcase
  run random_s$seed --mode=random --arch="$OUT/constructed_s$seed/final/network.json" \
    --num_random=$RANDOM_PER --seed=$seed
  run stopinherit_s$seed "${CONSTRUCT[@]}" --seed=$seed --stats_stop_tau=1.0 --inherit_weights
done
$PY -m nac.report "$OUT"/envelope_s1 "$OUT"/constructed_s* "$OUT"/worstcase_s* "$OUT"/random_s* \
  "$OUT"/stopinherit_s* --out "$REPORT"
echo "study ($SCALE) finished in $(( $(date +%s) - start )) s; report in $REPORT/report.md"
