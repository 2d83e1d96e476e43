"""Input pipeline throughput next to training throughput on this machine.

Measures images/s of the training input pipeline alone (augmented batches of 50, iterated
after a warm-up) and of training a small EnvelopeNet (16/2-1-1/6) on the same data, for
Fashion-MNIST (Debian's files) and for CIFAR-format data (a CIFAR-10 binary file of random
images written to a temporary directory: the format and sizes of the real one), and prints
the ratio. The target is a pipeline at least 5x faster than training.

    python benchmarks/bench_data.py
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from nac.data import pipelines as data  # noqa: E402
from nac.spec import arch  # noqa: E402
from nac.training.train import TrainConfig, Trainer  # noqa: E402


def write_cifar_binary(directory, records=10_000, seed=0):
    rng = np.random.default_rng(seed)
    folder = os.path.join(directory, "cifar-10-batches-bin")
    os.makedirs(folder)
    for name, n in [(f"data_batch_{i}.bin", records // 5) for i in range(1, 6)] + [("test_batch.bin", 1000)]:
        labels = rng.integers(0, 10, (n, 1), dtype=np.uint8)
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        np.concatenate([labels, pixels], axis=1).tofile(os.path.join(folder, name))
    return directory


def pipeline_speed(loaded, batches=300, warmup=20):
    it = iter(loaded.train(50))
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * 50 / (time.perf_counter() - start)


def training_speed(loaded, steps=60):
    network = arch.network_from_notation("16/2-1-1/6", input_channels=loaded.info.channels)
    config = TrainConfig(steps=steps, batch_size=50, eval_every=0, bn_eval="moving", log_every=steps)
    return Trainer(network, loaded.info.image_size, config).train(loaded).images_per_sec


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = [
            ("fashion_mnist", data.DataConfig("fashion_mnist", seed=0)),
            ("cifar10 (binary format)", data.DataConfig("cifar10", data_dir=write_cifar_binary(tmp), seed=0)),
        ]
        for label, config in sources:
            try:
                loaded = data.load(config)
            except data.DataError as e:
                print(f"{label}: skipped ({e})")
                continue
            pipe, train = pipeline_speed(loaded), training_speed(loaded)
            rows.append((label, loaded.info.image_size, pipe, train))
    print(f"{'data':26} {'size':>4} {'pipeline img/s':>15} {'training img/s':>15} {'ratio':>7}")
    for label, size, pipe, train in rows:
        print(f"{label:26} {size:>4} {pipe:>15,.0f} {train:>15,.0f} {pipe / train:>7.1f}")


if __name__ == "__main__":
    main()
