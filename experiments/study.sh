#!/usr/bin/env bash
# The Fashion-MNIST study: does construction beat random and worst-case networks
# (question 1), and does the branch ranking settle before accuracy does (question 2)?
#
# Scale: Fashion-MNIST average-pooled to 14x14 (--downsample=2), EnvelopeNet ENVELOPE
# (12/3-1-1/6), ITERATIONS (2) construction iterations of CONSTRUCTION_STEPS (100) steps.
# Recipe, shared by every training of every role: SGD with momentum 0.9 from 0.1, the
# original's staircase decay x0.1 every DECAY_EPOCHS (1) epochs (0.1, 0.01, 0.001 over the 3
# epochs of a final training; a 100-step construction window stays at 0.1), batch 50, no
# augmentation. Every final network trains FINAL_STEPS (3600, 3 epochs) steps. A cosine
# schedule to 0 did not flatten every curve at any budget that fits: its last 20% anneals the
# learning rate to 0 and adds accuracy whatever the length, while the staircase's last 20%
# runs at 0.001 after 480 steps there (docs/study/README.md, "Why 3,600 steps and the
# staircase schedule").
# Roles:
#   envelope      the envelope itself (seed 1)
#   constructed   from each construction seed in SEEDS
#   worstcase     the worst case from the same seeds (prunes the strongest branches)
#   random        RANDOM_PER random nets per constructed net, matched to it (its --arch),
#                 drawn with its construction seed
#   stopinherit   constructions from the same seeds with the stability stop (tau 0.9,
#                 patience 3: the rule docs/savings.md recommends) and weight inheritance
#                 (--inherit_weights); their final networks train from scratch like every
#                 other role
# Evaluations: every EVAL_EVERY (720) steps of a final training and every
# CONSTRUCTION_EVAL_EVERY (20) steps of a construction iteration, each on all 10,000 test
# images (EVAL_EXAMPLES=0; N reads the first N images in the evaluations before the last): on
# 2,000 images one evaluation's sampling error is larger than the 0.5-point convergence test
# it decides. The statistic is recorded every 10 steps (question 2 compares
# ranking and accuracy per iteration).
# Then `nac.report` writes Table 1, Figures 2-4, stability and the study statistics to REPORT.
#
#   bash experiments/study.sh                     # the study: runs/study, report in docs/study
#   STUDY_SCALE=pilot bash experiments/study.sh   # the same design at a 10-minute scale:
#                                                 # 1 seed, 1 random net, short trainings
#                                                 # (runs/study_pilot, report in runs/study_pilot/report)
#
# Resumable: every run is a nac.construct run directory; rerunning the script skips finished
# runs (nac.construct returns at once for a complete run) and continues an interrupted one.
# Runs go through a pool of JOBS (default 2) processes, longest first, each job's output in
# $OUT/NAME.log. Environment: PYTHON (default python), NAC_DATA_DIR (default: Debian's
# dataset-fashion-mnist), STUDY_DIR and STUDY_REPORT (the output folders), ENVELOPE,
# ITERATIONS, EVAL_EXAMPLES, JOBS; at full scale FINAL_STEPS, EVAL_EVERY, DECAY_EPOCHS,
# CONSTRUCTION_STEPS and CONSTRUCTION_EVAL_EVERY override the budget (nac.construct refuses to
# resume a run with other values: use a new STUDY_DIR). Cost: docs/study/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${STUDY_SCALE:-full}
case "$SCALE" in
  full)
    SEEDS=(1 2 3); RANDOM_PER=2; FINAL_STEPS=${FINAL_STEPS:-3600}; EVAL_EVERY=${EVAL_EVERY:-720}
    CONSTRUCTION_STEPS=${CONSTRUCTION_STEPS:-100}; CONSTRUCTION_EVAL_EVERY=${CONSTRUCTION_EVAL_EVERY:-20}
    DECAY_EPOCHS=${DECAY_EPOCHS:-1}
    OUT=${STUDY_DIR:-runs/study}; REPORT=${STUDY_REPORT:-docs/study} ;;
  pilot)
    SEEDS=(1); RANDOM_PER=1; FINAL_STEPS=100; EVAL_EVERY=25; CONSTRUCTION_STEPS=50
    CONSTRUCTION_EVAL_EVERY=10; DECAY_EPOCHS=0.03  # decays after 36 and 72 of 100 steps
    OUT=${STUDY_DIR:-runs/study_pilot}; REPORT=${STUDY_REPORT:-runs/study_pilot/report} ;;
  *) echo "study.sh: STUDY_SCALE=$SCALE; expected full or pilot" >&2; exit 2 ;;
esac
PY=${PYTHON:-python}
DATA=()
[ -n "${NAC_DATA_DIR:-}" ] && DATA=(--data_dir="$NAC_DATA_DIR")

ENVELOPE=${ENVELOPE:-12/3-1-1/6}
ITERATIONS=${ITERATIONS:-2}
EVAL_EXAMPLES=${EVAL_EXAMPLES:-0}
COMMON=(--dataset=fashion_mnist "${DATA[@]}" --downsample=2 --image_size=14 --batch_size=50
        --augment=none --momentum=0.9 --lr_schedule=exponential --decay_epochs=$DECAY_EPOCHS
        --decay_rate=0.1 --learning_rate=0.1
        --final_steps=$FINAL_STEPS --eval_every=$EVAL_EVERY
        --construction_eval_every=$CONSTRUCTION_EVAL_EVERY --eval_examples=$EVAL_EXAMPLES --stats_every=10
        --nosave_models --notensorboard --noprogress)
CONSTRUCT=(--envelope=$ENVELOPE --iterations=$ITERATIONS --construction_steps=$CONSTRUCTION_STEPS)

run() {  # run NAME FLAGS...: one nac.construct run into $OUT/NAME (resumes or skips it)
  local name=$1; shift
  echo "== $name ($(date -u +%H:%M:%S))"
  $PY -m nac.construct "${COMMON[@]}" "$@" --run_dir="$OUT/$name"
}

# The runs as jobs for a pool of JOBS processes (default 2, one per core: nac uses one intra-op
# thread per process on a 2-core machine), longest first. A random role needs its constructed
# network, so each seed's constructed and random runs are one job.
jobs=()
for seed in "${SEEDS[@]}"; do jobs+=("chain $seed"); done
for seed in "${SEEDS[@]}"; do
  jobs+=("run worstcase_s$seed ${CONSTRUCT[*]} --seed=$seed --worstcase")
  jobs+=("run stopinherit_s$seed ${CONSTRUCT[*]} --seed=$seed --stats_stop_tau=0.9 --stats_stop_patience=3 --inherit_weights")
done
jobs+=("run envelope_s1 --mode=oneshot --envelope=$ENVELOPE --seed=1")

chain() {  # chain SEED: the constructed run, then the random networks matched to it
  local seed=$1
  run constructed_s$seed "${CONSTRUCT[@]}" --seed=$seed
  run random_s$seed --mode=random --arch="$OUT/constructed_s$seed/final/network.json" \
    --num_random=$RANDOM_PER --seed=$seed
}

JOBS=${JOBS:-2}
mkdir -p "$OUT"
start=$(date +%s)
failed=0
for job in "${jobs[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || failed=1; done
  name=${job#* }; name=${name%% *}; [ "${job%% *}" = chain ] && name=constructed_random_s$name
  ( $job ) > "$OUT/$name.log" 2>&1 &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
if [ "$failed" != 0 ]; then
  echo "study.sh: a run failed; see $OUT/*.log, then rerun this script to resume" >&2
  exit 1
fi
runs=("$OUT/envelope_s1")  # the run directories by role (a glob would also catch the NAME.log files)
for role in constructed worstcase random stopinherit; do
  for seed in "${SEEDS[@]}"; do runs+=("$OUT/${role}_s$seed"); done
done
$PY -m nac.report "${runs[@]}" --out "$REPORT"
echo "study ($SCALE) finished in $(( $(date +%s) - start )) s; report in $REPORT/report.md"
