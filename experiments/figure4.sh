#!/usr/bin/env bash
# The paper's Figure 4: repeated constructions from one EnvelopeNet (as the original's
# multiple_trials), each with its own seed, then the width profile of the constructed
# networks (mean and standard deviation of the branches per layer) by nac.report.
#
#   bash experiments/figure4.sh [nac.construct flags...]
#
# Environment: FLAGFILE (default experiments/envelope_a_construct.flags: Envelope A on
# CIFAR-10, the paper's figure), SEEDS (default 5: seeds 1..5), OUT (default runs/figure4),
# PYTHON (default python). Extra arguments go to every nac.construct run, e.g.
# --final_steps=1 when only the widths are wanted (Figure 4 needs the constructed network,
# not its training). Resumable: rerunning continues the runs and redoes the report.
# Output: OUT/construct_s<seed>/ (one run directory per seed) and OUT/report/ with
# figure4_widths.png/.svg/.pdf and report.json's "figure4" (the widths per layer).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
FLAGFILE=${FLAGFILE:-experiments/envelope_a_construct.flags}
SEEDS=${SEEDS:-5}
OUT=${OUT:-runs/figure4}
runs=()
for seed in $(seq 1 "$SEEDS"); do
  run_dir="$OUT/construct_s$seed"
  $PY -m nac.construct --flagfile="$FLAGFILE" --seed="$seed" --run_dir="$run_dir" "$@"
  runs+=("$run_dir")
done
$PY -m nac.report "${runs[@]}" --out "$OUT/report"
echo "Figure 4: $OUT/report/figure4_widths.png"
