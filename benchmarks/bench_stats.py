"""Cost of the featuremap statistics: training with and without them, interleaved pairs.

For each network, builds fresh trainers on the same synthetic CIFAR-shaped data (32x32x3,
batch 50) and alternates runs without statistics (the taps traced with collection off, no
callback) and with them (collection on, `FeaturemapStatistics` recording a series every 10
steps), so that machine drift hits both sides alike. Prints the images/s of each pair, and
the ratio with/without as the median and the spread (min..max) over the pairs. Throughput
leaves out the first step of each run (tracing) and the evaluation.

    python benchmarks/bench_stats.py [--pairs 5] [--quick]
"""

import argparse
import contextlib
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nac import arch, data  # noqa: E402
from nac.stats import FeaturemapStatistics, collection_disabled  # noqa: E402
from nac.train import TrainConfig, Trainer  # noqa: E402

CASES = [("16/2-1-1/6", 60), ("32/3-1-1/6", 40), ("128/10-1-1-1/6", 6)]


def one_run(network, dataset, steps, with_stats):
    config = TrainConfig(
        steps=steps, batch_size=50, eval_every=0, bn_eval="moving", ema=True, log_every=steps
    )
    trainer = Trainer(network, 32, config)
    callbacks = [FeaturemapStatistics(trainer.model, 50, series_every=10)] if with_stats else []
    guard = contextlib.nullcontext() if with_stats else collection_disabled(trainer.model)
    with guard:
        result = trainer.train(dataset, callbacks=callbacks)
    return result.images_per_sec


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small nets only, 3 pairs")
    args = parser.parse_args()
    loaded = data.load(
        data.DataConfig(
            "synthetic", image_size=32, seed=0, synthetic_train_examples=2000, synthetic_test_examples=50
        )
    )
    cases = CASES[:2] if args.quick else CASES
    pairs = 3 if args.quick else args.pairs
    print(f"batch 50, 32x32x3 synthetic data, {pairs} interleaved pairs per network")
    for notation, steps in cases:
        network = arch.network_from_notation(notation)
        n_pairs = min(pairs, 3) if notation.startswith("128") else pairs
        ratios, rows = [], []
        start = time.time()
        for i in range(n_pairs):
            order = (False, True) if i % 2 == 0 else (True, False)
            speed = {flag: one_run(network, loaded, steps, flag) for flag in order}
            ratios.append(speed[True] / speed[False])
            rows.append(
                f"    pair {i + 1}: without {speed[False]:8.1f} img/s  with {speed[True]:8.1f} img/s  "
                f"ratio {ratios[-1]:.3f}"
            )
        print(f"{notation} ({steps} steps per run, {time.time() - start:.0f} s):")
        print("\n".join(rows))
        print(
            f"  with/without: median {statistics.median(ratios):.3f} (spread {min(ratios):.3f}..{max(ratios):.3f}); "
            f"slowdown {100 * (1 - statistics.median(ratios)):.1f}%"
        )


if __name__ == "__main__":
    main()
