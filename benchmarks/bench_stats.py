"""Cost of the featuremap statistics: training with and without them, interleaved pairs.

For each network, builds fresh trainers on the same synthetic CIFAR-shaped data (32x32x3,
batch 50) and alternates runs without statistics (the taps traced with collection off, no
callback) and with them (collection on, `FeaturemapStatistics` reading the accumulators every
`block` steps, more often than the driver's default of every 100), so that machine drift hits
both sides alike. A run's speed is 50 x block / the median wall time of its blocks of `block`
consecutive steps (the first block, which traces, is dropped); each block holds exactly one
statistics read, and the median resists the other processes of a shared 2-core machine. The
same is computed from the process's CPU time (all its threads), which other processes on a
loaded machine disturb less than the wall time.
Prints each pair's images/s and the ratio with/without as the median and the spread
(min..max) over the pairs.

`--criteria` compares the recorded branch criteria instead: "without" records only `l2` (the
default construction before criteria), "with" records `l2`, `variance` and `taylor` in the
same training step (`nac.search.criteria.RECORDED_NAMES`, what every construction step now
records), reading all of them every `block` steps.

    python -u benchmarks/bench_stats.py [--pairs 7] [--quick] [--criteria] [--only NOTATION]
"""

import argparse
import contextlib
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from nac.data import pipelines as data  # noqa: E402
from nac.net.model import BuildOptions  # noqa: E402
from nac.net.stats import FeaturemapStatistics, collection_disabled  # noqa: E402
from nac.search.criteria import RECORDED_NAMES  # noqa: E402
from nac.spec import arch  # noqa: E402
from nac.training.train import TrainConfig, Trainer  # noqa: E402

# (notation, steps per block, blocks per run)
CASES = [("16/2-1-1/6", 10, 9), ("32/3-1-1/6", 10, 7), ("128/10-1-1-1/6", 2, 4)]


class BlockTimer(keras.callbacks.Callback):
    """Start times of each block of `block` consecutive steps (callbacks included)."""

    def __init__(self, block):
        super().__init__()
        self.block, self.marks = block, []

    def on_train_batch_begin(self, batch, logs=None):
        if batch % self.block == 0:
            self.marks.append((time.perf_counter(), time.process_time()))


def one_run(network, dataset, block, blocks, with_stats, criteria=False):
    steps = block * blocks
    config = TrainConfig(steps=steps, batch_size=50, eval_every=0, bn_eval="moving", log_every=steps)
    recorded = RECORDED_NAMES if criteria and with_stats else ("l2",)
    trainer = Trainer(network, 32, config, build_options=BuildOptions(statistics=recorded))
    timer = BlockTimer(block)
    # The statistics callback runs before the timer, so a block's time includes its read.
    on = with_stats or criteria
    callbacks = [FeaturemapStatistics(trainer.model, 50, recorded, series_every=block)] if on else []
    guard = contextlib.nullcontext() if on else collection_disabled(trainer.model)
    with guard:
        trainer.train(dataset, callbacks=callbacks + [timer])
    pairs = list(zip(timer.marks[1:], timer.marks[2:]))  # drop the tracing block
    wall = statistics.median(b[0] - a[0] for a, b in pairs)
    cpu = statistics.median(b[1] - a[1] for a, b in pairs)
    return 50 * block / wall, 50 * block / cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small nets only, 3 pairs")
    parser.add_argument("--criteria", action="store_true", help="l2 only vs l2, variance and taylor recorded")
    parser.add_argument("--only", help="one network of the list, e.g. 32/3-1-1/6")
    args = parser.parse_args()
    loaded = data.load(
        data.DataConfig(
            "synthetic", image_size=32, seed=0, synthetic_train_examples=2000, synthetic_test_examples=50
        )
    )
    cases = CASES[:2] if args.quick else CASES
    if args.only:
        cases = [case for case in CASES if case[0] == args.only]
    pairs = 3 if args.quick else args.pairs
    print(f"batch 50, 32x32x3 synthetic data, {pairs} interleaved pairs per network (3 for 128/10-1-1-1/6)")
    if args.criteria:
        print(f"without: l2 recorded; with: {', '.join(RECORDED_NAMES)} recorded")
    for notation, block, blocks in cases:
        network = arch.network_from_notation(notation)
        n_pairs = min(pairs, 3) if notation.startswith("128") else pairs
        ratios, cpu_ratios, rows = [], [], []
        start = time.time()
        for i in range(n_pairs):
            order = (False, True) if i % 2 == 0 else (True, False)
            speed = {flag: one_run(network, loaded, block, blocks, flag, args.criteria) for flag in order}
            ratios.append(speed[True][0] / speed[False][0])
            cpu_ratios.append(speed[True][1] / speed[False][1])
            rows.append(
                f"    pair {i + 1}: without {speed[False][0]:8.1f} img/s  with {speed[True][0]:8.1f} img/s  "
                f"ratio {ratios[-1]:.3f}  (per CPU second: {speed[False][1]:.1f} vs {speed[True][1]:.1f}, "
                f"ratio {cpu_ratios[-1]:.3f})"
            )
        print(f"{notation} ({blocks} blocks of {block} steps per run, {time.time() - start:.0f} s):")
        print("\n".join(rows))
        for label, r in (("wall time", ratios), ("process CPU time", cpu_ratios)):
            print(
                f"  with/without ({label}): median {statistics.median(r):.3f} "
                f"(spread {min(r):.3f}..{max(r):.3f}); slowdown {100 * (1 - statistics.median(r)):.1f}%"
            )


if __name__ == "__main__":
    main()
