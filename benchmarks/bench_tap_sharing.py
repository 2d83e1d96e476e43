"""Cost of recording the criteria in the training step alone: `l2` only, against `l2`,
`variance` and `taylor` computed once per cell (the default) and computed by every tap from
its own channels (`FeaturemapTap.compute_alone`, what a tap loaded from a config does).

One process, three models of the same network with the same initial weights, each a traced
`tf.function` step (forward, backward, SGD update) on one fixed synthetic batch (32x32x3,
batch 50); blocks of 10 steps interleaved between the three, timed in process CPU time (all
threads), which other processes on a shared machine disturb less than wall time. Prints the
median milliseconds per step of each and the ratios to `l2` only (above 1: recording costs).

    python -u benchmarks/bench_tap_sharing.py [--only 32/3-1-1/6] [--blocks 6]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from nac.net import model as model_lib  # noqa: E402
from nac.net.ops import FeaturemapTap  # noqa: E402
from nac.search.criteria import RECORDED_NAMES  # noqa: E402
from nac.spec import arch  # noqa: E402

NETWORKS = ("16/2-1-1/6", "32/3-1-1/6")
STEPS_PER_BLOCK = 10


def training_step(network, statistics, alone=False):
    keras.utils.set_random_seed(1)
    model = model_lib.build_model(network, 32, model_lib.BuildOptions(statistics=statistics))
    if alone:
        for layer in model.layers:
            if isinstance(layer, FeaturemapTap):
                layer.compute_alone()
    optimizer = keras.optimizers.SGD(0.01)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=True), tf.float32)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    return step


def measure(notation, blocks):
    network = arch.network_from_notation(notation)
    steps = {
        "l2 only": training_step(network, ("l2",)),
        "per cell": training_step(network, RECORDED_NAMES),
        "per tap": training_step(network, RECORDED_NAMES, alone=True),
    }
    x = tf.random.stateless_normal((50, 32, 32, 3), seed=(1, 2))
    y = tf.zeros((50,), tf.int32)
    for step in steps.values():
        step(x, y)  # traces
    times = {name: [] for name in steps}
    for _ in range(blocks):
        for name, step in steps.items():
            start = time.process_time()
            for _ in range(STEPS_PER_BLOCK):
                step(x, y)
            times[name].append((time.process_time() - start) / STEPS_PER_BLOCK * 1000)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"{notation} ({blocks} interleaved blocks of {STEPS_PER_BLOCK} steps, CPU ms per step):")
    for name, t in times.items():
        ratio = medians[name] / medians["l2 only"]
        spread = f"{min(t):.1f}..{max(t):.1f}"
        print(f"  {name:9s} median {medians[name]:7.1f} ms (spread {spread})  x{ratio:.3f} of l2 only")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="one network, e.g. 32/3-1-1/6 (default: " + ", ".join(NETWORKS) + ")")
    parser.add_argument("--blocks", type=int, default=6, help="interleaved blocks per model (default 6)")
    args = parser.parse_args()
    if args.blocks < 1:
        parser.error(f"--blocks={args.blocks}: needs at least 1")
    for notation in (args.only,) if args.only else NETWORKS:
        measure(notation, args.blocks)


if __name__ == "__main__":
    main()
