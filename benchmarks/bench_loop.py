"""Per-step host overhead: steps/s at 1 and at 20 training steps per device call, interleaved.

A network so small that compute is negligible (6/1-1/6 at 8x8, batch 50, synthetic data),
trained by `nac.training.train.Trainer` with `steps_per_loop` 1 and 20 alternately; speed = its
`images_per_sec` (the first, tracing, call left out) / 50. The CPU stand-in for the time a
GPU idles between steps while the host calls the step function and reads its results.

    python -u benchmarks/bench_loop.py [--rounds 5] [--steps 400]
"""

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()

    from nac.training import runtime

    threads = runtime.configure_threads()
    import keras

    from nac.data import pipelines as data
    from nac.net.stats import FeaturemapStatistics
    from nac.spec import arch
    from nac.training.train import TrainConfig, Trainer

    loaded = data.load(data.DataConfig("synthetic", image_size=8, seed=0, synthetic_test_examples=50))
    network = arch.network_from_notation("6/1-1/6")
    speeds = {1: [], 20: []}
    print(f"6/1-1/6 at 8x8, batch 50, {args.steps} steps per run, threads {threads}")
    for r in range(args.rounds):
        for per_loop in (1, 20) if r % 2 == 0 else (20, 1):
            config = TrainConfig(
                steps=args.steps,
                batch_size=50,
                bn_eval="moving",
                log_every=100,
                steps_per_loop=per_loop,
                record_every=100,
            )
            trainer = Trainer(network, 8, config)
            stats = FeaturemapStatistics(trainer.model, 50, series_every=100)
            speeds[per_loop].append(trainer.train(loaded, callbacks=[stats]).images_per_sec / 50)
            keras.backend.clear_session()
        print(f"round {r + 1}: 1/loop {speeds[1][-1]:.0f} steps/s, 20/loop {speeds[20][-1]:.0f} steps/s")
    ratios = [b / a for a, b in zip(speeds[1], speeds[20])]
    print(
        f"steps/s median: 1 per loop {statistics.median(speeds[1]):.0f}, 20 per loop "
        f"{statistics.median(speeds[20]):.0f}; ratio 20/1 median {statistics.median(ratios):.2f} "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
