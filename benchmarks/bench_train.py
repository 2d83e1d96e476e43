"""nac's training speed against a plain Keras `model.fit` of the same network, interleaved.

For each data set (synthetic 28x28x3 and Fashion-MNIST 28x28x1; batch 50, network
16/3-1-1/6), every round trains fresh models on the same augmented training stream:

* ``nac``: `nac.training.train.Trainer` as the driver runs it (default `cell_impl`, featuremap taps
  collecting, EMA), speed = its `images_per_sec` (training steps only, the first, tracing,
  step left out);
* ``keras``: the same network built with Keras' own batch norm, ReLU and dropout per branch
  (`cell_impl="per_branch"`, taps switched off: plain Keras layers) and trained with
  `model.compile(SGD, sparse cross-entropy, accuracy)` + `model.fit`, speed over the batches
  after the first;
* with ``--per_branch``, also nac's loop with the per-branch layers.

Sides alternate in order from round to round, so machine drift hits them alike; the script
prints each round's images/s and the median (min..max) over rounds of each ratio to Keras.
TensorFlow's thread pools are fixed at process start: `--threads=default` leaves TF's
defaults, `--threads=1,2` sets intra-op 1 and inter-op 2 (what nac chooses on a 2-core CPU,
see `nac.training.runtime`) for every side, `--threads=nac` applies nac's automatic choice.
`--threads=shipped` compares each side as a user gets it: every run is a fresh process, nac's
with nac's automatic thread choice and oneDNN setting (`nac.training.runtime.configure_threads()` and
`enable_onednn()`, what the driver does), Keras' with TensorFlow's defaults (what `model.fit`
does unless the user changes them); the
rounds still interleave the two sides, and a run's speed excludes process start-up, data
loading and the first (tracing) step, as in the other modes.

`--onednn=on|off` sets `TF_ENABLE_ONEDNN_OPTS` for every side (both sides then differ only in
the graph and the loop); `auto` (the default) applies `nac.training.runtime.enable_onednn()` to both
sides in one process, and to nac's side only with `--threads=shipped`.

    python -u benchmarks/bench_train.py [--rounds 5] [--steps 40] [--threads default|nac|shipped|1,2]
        [--onednn auto|on|off]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NOTATION = "16/3-1-1/6"
BATCH = 50
SIZE = 28


class _SmallEval:
    """The data with a one-batch test set: evaluation is not timed, so keep it short."""

    def __init__(self, data):
        self.info = data.info
        self._data = data

    def train(self, *args, **kwargs):
        return self._data.train(*args, **kwargs)

    def evaluation(self, split, batch):
        return self._data.evaluation(split, batch).take(1)


def nac_speed(network, data, steps, cell_impl):
    from nac.net.model import BuildOptions
    from nac.net.stats import FeaturemapStatistics
    from nac.training.train import TrainConfig, Trainer

    config = TrainConfig(steps=steps, batch_size=BATCH, bn_eval="moving", log_every=steps)
    trainer = Trainer(network, SIZE, config, build_options=BuildOptions(cell_impl=cell_impl))
    stats = FeaturemapStatistics(trainer.model, BATCH, series_every=10)
    return trainer.train(_SmallEval(data), callbacks=[stats]).images_per_sec


def keras_speed(network, data, steps):
    import keras

    from nac.net.model import BuildOptions, build_model
    from nac.net.stats import collection_disabled

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    model = build_model(network, SIZE, BuildOptions(cell_impl="per_branch"))
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )
    timer = Timer()
    with collection_disabled(model):  # the taps are identities: a plain Keras network
        model.fit(data.train(BATCH), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    return (steps - 1) * BATCH / (timer.end - timer.start)


def one_run(side, dataset, steps, threads):
    """Trains one side once in this process (thread pools set first) and returns its images/s."""
    from nac.training import runtime

    if threads == "nac":
        runtime.enable_onednn()
        runtime.configure_threads()
    elif "," in threads:  # INTRA,INTER, the oneDNN variable as the environment has it
        runtime.configure_threads(*(int(v) for v in threads.split(",")))
    import keras

    loaded, network = _data_and_network(dataset)
    speed = side_speed(side, network, loaded, steps)
    keras.backend.clear_session()
    return speed


def side_speed(side, network, data, steps):
    """Images/s of one side (`nac`, `nac_per_branch` or `keras`) trained in this process."""
    if side == "keras":
        return keras_speed(network, data, steps)
    return nac_speed(network, data, steps, "per_branch" if side == "nac_per_branch" else "per_cell")


def _data_and_network(dataset):
    from nac.data import pipelines as data
    from nac.spec import arch

    channels = 3 if dataset == "synthetic" else 1
    loaded = data.load(
        data.DataConfig(
            dataset, image_size=SIZE, seed=0, synthetic_train_examples=2000, synthetic_test_examples=50
        )
    )
    return loaded, arch.network_from_notation(NOTATION, input_channels=channels)


def _subprocess_speed(side, dataset, steps, onednn):
    """One run of `side` in a fresh process: nac's sides with nac's threads and oneDNN setting,
    Keras' with TF's defaults (with `onednn` auto; on/off is in the environment for both)."""
    import subprocess
    import sys

    from nac.training import runtime

    threads = "default" if side == "keras" else "nac"
    env = dict(os.environ)
    if side == "keras" and onednn == "auto":
        env.pop(runtime.ONEDNN_ENV, None)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--one",
            side,
            "--datasets",
            dataset,
            "--steps",
            str(steps),
            "--threads",
            threads,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--threads", default="nac", help="default | nac | shipped | INTRA,INTER")
    parser.add_argument("--per_branch", action="store_true", help="also nac's loop with per-branch layers")
    parser.add_argument("--datasets", default="synthetic,fashion_mnist")
    parser.add_argument("--onednn", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one run of this side, prints images/s
    args = parser.parse_args()
    if args.one:
        print(one_run(args.one, args.datasets, args.steps, args.threads))
        return

    from nac.training import runtime

    if args.onednn != "auto":
        os.environ[runtime.ONEDNN_ENV] = "1" if args.onednn == "on" else "0"
    shipped = args.threads == "shipped"  # the parent then never imports TensorFlow
    if not shipped:
        runtime.enable_onednn()  # before TensorFlow loads; both sides share the process
    if shipped:
        threads = None
    elif args.threads == "nac":
        threads = runtime.configure_threads()
    elif args.threads == "default":
        threads = (0, 0)
    else:
        intra, inter = (int(v) for v in args.threads.split(","))
        threads = runtime.configure_threads(intra, inter)

    sides = ["nac", "keras"] + (["nac_per_branch"] if args.per_branch else [])
    print(
        f"{NOTATION}, {SIZE}x{SIZE}, batch {BATCH}, {args.steps} steps per run, {args.rounds} rounds; "
        + (
            "each run a fresh process, nac with its automatic threads, Keras with TF's defaults"
            if shipped
            else f"threads intra/inter {threads[0] or 'TF default'}/{threads[1] or 'TF default'}"
        )
        + f"; {runtime.ONEDNN_ENV}="
        + (
            os.environ.get(runtime.ONEDNN_ENV, "unset")
            if not shipped or args.onednn != "auto"
            else "set by enable_onednn() for nac, unset for Keras"
        )
    )
    for dataset in args.datasets.split(","):
        if not shipped:
            loaded, network = _data_and_network(dataset)
        speeds = {side: [] for side in sides}
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            for side in order:
                if shipped:
                    speed = _subprocess_speed(side, dataset, args.steps, args.onednn)
                else:
                    speed = side_speed(side, network, loaded, args.steps)
                speeds[side].append(speed)
                if not shipped:
                    import keras

                    keras.backend.clear_session()
            print(f"{dataset} round {r + 1}: " + ", ".join(f"{s} {speeds[s][-1]:.0f} img/s" for s in sides))
        for side in sides:
            if side == "keras":
                continue
            ratios = [a / b for a, b in zip(speeds[side], speeds["keras"])]
            print(
                f"{dataset}: {side} / keras = {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}; medians {statistics.median(speeds[side]):.0f} "
                f"vs {statistics.median(speeds['keras']):.0f} img/s)"
            )


if __name__ == "__main__":
    main()
