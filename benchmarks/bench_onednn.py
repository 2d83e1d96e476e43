"""nac's training speed with TensorFlow's oneDNN kernels on, against off and TF's own choice.

`nac.training.runtime.enable_onednn()` sets `TF_ENABLE_ONEDNN_OPTS=1` on x86-64 (TensorFlow turns
oneDNN on by itself only on CPUs with AVX-512 neural-network features). TensorFlow reads the
variable once, at import, so every run is a fresh process (`bench_train.py --one nac`: nac's
trainer as the driver runs it, its automatic threads, the per-cell form, taps and EMA, the
first, tracing, step left out); the three settings alternate in order from round to round.
Prints each round's images/s and the median (min..max) over rounds of on / off and
on / unset.

    PYTHONPATH=. python -u benchmarks/bench_onednn.py [--rounds 3] [--steps 40] [--datasets synthetic,fashion_mnist]
"""

import argparse
import os
import statistics
import subprocess
import sys

from nac.training.runtime import ONEDNN_ENV  # nac.training.runtime does not import TensorFlow

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = {"on": "1", "off": "0", "unset": None}


def run(setting, dataset, steps):
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_ENV}
    if SETTINGS[setting] is not None:
        env[ONEDNN_ENV] = SETTINGS[setting]
    # --threads=1,2 (nac's automatic choice on 2 cores, set here for any machine) rather
    # than "nac", which would also call enable_onednn() and turn "unset" into "on".
    command = [sys.executable, os.path.join(HERE, "bench_train.py"), "--one", "nac"]
    command += ["--datasets", dataset, "--steps", str(steps), "--threads", "1,2"]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--datasets", default="synthetic,fashion_mnist")
    args = parser.parse_args()
    print(
        f"nac 16/3-1-1/6, 28x28, batch 50, {args.steps} steps per run, {args.rounds} rounds, fresh process per run"
    )
    for dataset in args.datasets.split(","):
        speeds = {s: [] for s in SETTINGS}
        for r in range(args.rounds):
            order = list(SETTINGS) if r % 2 == 0 else list(SETTINGS)[::-1]
            for setting in order:
                speeds[setting].append(run(setting, dataset, args.steps))
            print(
                f"{dataset} round {r + 1}: " + ", ".join(f"{s} {speeds[s][-1]:.0f} img/s" for s in SETTINGS)
            )
        for other in ("off", "unset"):
            ratios = [a / b for a, b in zip(speeds["on"], speeds[other])]
            print(
                f"{dataset}: on / {other} = {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}; medians "
                f"{statistics.median(speeds['on']):.0f} vs {statistics.median(speeds[other]):.0f} img/s)"
            )


if __name__ == "__main__":
    main()
