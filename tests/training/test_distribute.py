"""Tests of nac.training.distribute and of nac.training.train under MirroredStrategy (two logical CPUs, split
in conftest.py) and MultiWorkerMirroredStrategy (two worker processes on loopback)."""

import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import arrays, synthetic_data

from nac.net.divergence import Diverged
from nac.net.model import BuildOptions, taps
from nac.net.stats import FeaturemapStatistics
from nac.spec import arch
from nac.spec.errors import ConfigError
from nac.training import distribute
from nac.training import train as T

IMAGE = 8
BATCH = 32
WORKER = pathlib.Path(__file__).parents[1] / "mw_worker.py"


# --------------------------------------------------------------------------------------
# Strategy creation.


def test_one_device(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name in ("one_device", "auto"):  # no GPU, no TF_CONFIG
        strategy = distribute.make_strategy(name)
        assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
        assert strategy.extended.worker_devices[0].endswith("CPU:0")
        assert distribute.num_replicas(strategy) == 1
        assert distribute.is_chief(strategy) and distribute.num_workers(strategy) == 1
        assert distribute.task(strategy) == (None, 0)


def test_auto_with_a_one_worker_cluster_is_one_device(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}),
    )
    assert isinstance(distribute.make_strategy("auto"), tf.distribute.OneDeviceStrategy)


def test_mirrored_uses_the_logical_cpus():
    strategy = distribute.make_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert distribute.num_replicas(strategy) == 2
    assert [d[-5:] for d in strategy.extended.worker_devices] == ["CPU:0", "CPU:1"]
    assert distribute.is_chief(strategy) and distribute.num_workers(strategy) == 1
    assert distribute.is_chief(tf.distribute.get_strategy())


def test_one_cpu_replica_reads_the_dataset_itself():
    """No multi-device iterator for one CPU replica (its autotuned per-device pipeline stalled
    the deletion after a long training); several replicas get the strategy's own."""
    dataset = tf.data.Dataset.range(4).batch(2)
    assert distribute.distribute_dataset(distribute.make_strategy("one_device"), dataset) is dataset
    mirrored = distribute.distribute_dataset(distribute.make_strategy("mirrored"), dataset)
    assert isinstance(mirrored, tf.distribute.DistributedDataset)


def test_bad_strategy_name():
    with pytest.raises(ConfigError, match=r"^strategy: got 'tpu'; expected one of auto, "):
        distribute.make_strategy("tpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="multi_worker needs TF_CONFIG"):
        distribute.make_strategy("multi_worker")


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ('["worker"]', 'no "cluster" object'),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
        ('{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', '"worker" job'),
        ('{"cluster": {"worker": ["a:1"]}}', "task=None"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator"}}', "task="),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            r"task.index=2; expected an integer in \[0, 2\)",
        ),
    ],
)
def test_bad_tf_config(text, match):
    with pytest.raises(ConfigError, match=match) as e:
        distribute.cluster_from_env({"TF_CONFIG": text})
    assert "\n" not in str(e.value) and str(e.value).startswith("TF_CONFIG: ")


def test_tf_config_parsed():
    assert distribute.cluster_from_env({}) is None
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief"}}
    assert distribute.cluster_from_env({"TF_CONFIG": json.dumps(config)}) == config


# --------------------------------------------------------------------------------------
# MirroredStrategy: two replicas in this process.


@pytest.fixture(scope="module")
def data():
    # 37 test images in evaluation batches of 16: 16, 16 and a partial 5 (3 + 2 per replica).
    return synthetic_data(IMAGE, 256, 37)


def _components(variable):
    value = variable.value if isinstance(variable, keras.Variable) else variable
    return [v.numpy() for v in value.values]


MIRRORED = T.TrainConfig(
    steps=6,
    batch_size=BATCH,
    eval_every=3,
    eval_batch_size=16,
    log_every=3,
    lr_schedule="constant",
    bn_recalibration_examples=64,
)


@pytest.fixture(scope="module")
def mirrored(data):
    keras.utils.set_random_seed(0)
    trainer = T.Trainer(
        arch.network_from_notation("8/1-1/6"), IMAGE, MIRRORED, strategy=distribute.make_strategy("mirrored")
    )
    statistics = FeaturemapStatistics(trainer.model, BATCH, ("l2",), series_every=3)
    return trainer, trainer.train(data, callbacks=[statistics]), statistics


def test_mirrored_training_splits_the_global_batch(mirrored):
    trainer, result, _ = mirrored
    assert trainer.replicas == 2 and trainer.train_step_traces == 1
    assert result.images_trained == MIRRORED.steps * BATCH
    for tap in taps(result.model).values():
        # Each replica saw half of every global batch; a cross-replica read sums them.
        assert [float(v) for v in _components(tap.images)] == [96.0, 96.0]
        assert float(tap.images.numpy()) == 192.0
    for variable in result.model.trainable_weights + trainer.ema_variables:
        first, second = _components(variable)
        np.testing.assert_array_equal(first, second)


def test_mirrored_accuracy_is_exact_with_a_partial_batch(mirrored, data):
    _, result, _ = mirrored
    assert [(h["step"], h["test_examples"]) for h in result.history] == [(3, 37), (6, 37)]
    images, labels = arrays(data.evaluation("test", 100))
    logits = result.model(images, training=False).numpy()  # outside the strategy
    assert np.sum(np.argmax(logits, -1) == labels) == round(result.final["test_accuracy"] * 37)
    assert np.mean(np.argmax(logits, -1) == labels) == result.final["test_accuracy"]
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits).numpy()
    assert np.mean(losses) == pytest.approx(result.final["test_loss"], rel=1e-5)


def test_mirrored_recalibration_is_exact(mirrored, data):
    _, result, _ = mirrored
    images, _ = arrays(data.train(BATCH, augment=False).take(2))
    bn = next(layer for layer in result.model.layers if isinstance(layer, keras.layers.BatchNormalization))
    x = keras.Model(result.model.inputs[0], bn.input)(images).numpy().astype(np.float64)
    for mean in _components(bn.moving_mean):
        np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    for variance in _components(bn.moving_variance):
        np.testing.assert_allclose(variance, x.var(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_mirrored_featuremap_statistics(mirrored):
    _, result, statistics = mirrored
    branches = list(taps(result.model))
    assert list(statistics.final["l2"]) == branches
    assert all(np.isfinite(v) and v > 0 for v in statistics.final["l2"].values())
    assert statistics.series["steps"] == [3, 6]
    assert [float(t["images"]) for t in statistics.totals().values()] == [192.0] * len(branches)


def test_mirrored_moving_statistics_are_averaged(data):
    """Keras' BN moving statistics (aggregation "none") drift apart per replica; the
    evaluation averages them, so every replica evaluates with the same values."""
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            bn = next(
                layer for layer in self.model.layers if isinstance(layer, keras.layers.BatchNormalization)
            )
            seen.append(_components(bn.moving_mean))

    keras.utils.set_random_seed(0)
    config = dataclasses.replace(MIRRORED, steps=2, eval_every=0, bn_eval="moving")
    result = T.train(
        arch.network_from_notation("4/1/2"),
        IMAGE,
        data,
        config,
        strategy=distribute.make_strategy("mirrored"),
        callbacks=[Spy()],
    )
    first, second = seen[-1]
    assert np.abs(first - second).max() > 1e-7  # the replicas' copies differ in training
    bn = next(layer for layer in result.model.layers if isinstance(layer, keras.layers.BatchNormalization))
    final = _components(bn.moving_mean)
    np.testing.assert_array_equal(final[0], final[1])
    np.testing.assert_allclose(final[0], (first + second) / 2, rtol=1e-6)
    images, labels = arrays(data.evaluation("test", 100))
    logits = result.model(images, training=False).numpy()
    assert np.mean(np.argmax(logits, -1) == labels) == result.final["test_accuracy"]


def test_two_replicas_match_one_device(data):
    """With synchronised BN and no dropout, 2 replicas take the same steps as one device:
    the loss is summed over each replica's half and divided by the GLOBAL batch."""
    network = arch.network_from_notation("4/1/2")
    network = arch.Network(network.body, network.stem, arch.Head.default(10, keep_prob=1.0))
    options = BuildOptions(branch_dropout=0.0, synchronized_bn=True)
    config = dataclasses.replace(
        MIRRORED, steps=3, eval_every=0, ema=False, bn_eval="moving", momentum=0.9, weight_decay=1e-3
    )
    runs = []
    initial = None
    for strategy in (distribute.make_strategy("one_device"), distribute.make_strategy("mirrored")):
        trainer = T.Trainer(network, IMAGE, config, build_options=options, strategy=strategy)
        if initial is None:
            initial = trainer.model.get_weights()
        trainer.model.set_weights(initial)

        class Losses(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.losses = []

            def on_train_batch_end(self, batch, logs=None):
                self.losses.append((logs["loss"], logs["regularization_loss"]))

        losses = Losses()
        runs.append((trainer.train(data, callbacks=[losses]), losses.losses))
    (single, single_losses), (double, double_losses) = runs
    np.testing.assert_allclose(double_losses, single_losses, rtol=1e-5)
    for a, b in zip(single.model.trainable_weights, double.model.trainable_weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6)


def test_mirrored_xla_and_mixed_precision(data):
    """The GPU configuration (XLA forward/backward, float16, loss scaling) on 2 replicas."""
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(MIRRORED, steps=2, eval_every=0, jit_compile=True, mixed_precision=True)
    trainer = T.Trainer(
        arch.network_from_notation("4/1/2"), IMAGE, config, strategy=distribute.make_strategy("mirrored")
    )
    result = trainer.train(data)
    assert trainer.train_step_traces == 1 and np.isfinite(result.final["test_loss"])
    assert result.images_trained == 2 * BATCH
    for variable in result.model.trainable_weights:
        first, second = _components(variable)
        np.testing.assert_array_equal(first, second)


class HalfInfiniteData:
    """Contract-following data whose training batches are finite in their first half only:
    under 2 replicas, replica 1 alone gets non-finite gradients."""

    info = types.SimpleNamespace(
        name="half_inf",
        num_classes=10,
        channels=3,
        image_size=IMAGE,
        train_examples=64,
        validation_examples=0,
        test_examples=8,
    )

    def train(self, global_batch_size, *, augment=True):
        images = np.random.RandomState(0).randn(global_batch_size, IMAGE, IMAGE, 3).astype(np.float32)
        images[global_batch_size // 2 :] = np.inf
        labels = np.arange(global_batch_size, dtype=np.int32) % 10
        return tf.data.Dataset.from_tensors((images, labels)).repeat()

    def evaluation(self, split, global_batch_size):
        images = np.zeros((8, IMAGE, IMAGE, 3), np.float32)
        return tf.data.Dataset.from_tensor_slices((images, np.zeros(8, np.int32))).batch(global_batch_size)


def test_loss_scaling_skips_the_step_on_every_replica():
    """Keras' LossScaleOptimizer decides from the first replica's local gradients; the loop
    makes all replicas agree, so a non-finite gradient on replica 1 skips the step for all."""
    config = T.TrainConfig(
        steps=1, batch_size=BATCH, ema=False, bn_eval="moving", mixed_precision=True, lr_schedule="constant"
    )
    trainer = T.Trainer(
        arch.network_from_notation("4/1/2"), IMAGE, config, strategy=distribute.make_strategy("mirrored")
    )
    initial = [v.numpy() for v in trainer.model.trainable_weights]
    # The skipped step still ran its forward pass in training mode, so the batch norms' moving
    # statistics took the infinite half of the batch: evaluating with them is non-finite, which
    # the loop reports as divergence (the weights themselves were left alone).
    with pytest.raises(Diverged, match="evaluation test loss"):
        trainer.train(HalfInfiniteData())
    for before, variable in zip(initial, trainer.model.trainable_weights):
        for component in _components(variable):
            np.testing.assert_array_equal(component, before)
    scale = trainer.optimizer.dynamic_scale.numpy()
    assert scale == trainer.optimizer.initial_scale / 2


def test_batch_must_divide_among_replicas():
    with pytest.raises(ConfigError, match="multiple of the 2 replicas"):
        T.Trainer(
            arch.network_from_notation("4/1/2"),
            IMAGE,
            T.TrainConfig(steps=1, batch_size=33),
            strategy=distribute.make_strategy("mirrored"),
        )


# --------------------------------------------------------------------------------------
# MultiWorkerMirroredStrategy: two processes.


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def multi_worker(tmp_path_factory):
    out = tmp_path_factory.mktemp("multi_worker")
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            ),
        )
        env["PYTHONPATH"] = str(WORKER.parents[1])
        log = open(out / f"worker{index}.log", "w")
        procs.append(
            (
                subprocess.Popen(
                    [sys.executable, str(WORKER), str(out), "2"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    try:
        codes = [proc.wait(timeout=240) for proc, _ in procs]
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    logs = [(out / f"worker{i}.log").read_text()[-3000:] for i in range(2)]
    assert codes == [0, 0], logs
    reports = [json.loads((out / f"worker{i}.json").read_text()) for i in range(2)]
    weights = [dict(np.load(out / f"worker{i}.npz")) for i in range(2)]
    return reports, weights


def test_multi_worker_counts_are_global(multi_worker):
    reports, _ = multi_worker
    for index, report in enumerate(reports):
        assert report["task"] == ["worker", index]
        assert report["chief"] == (index == 0)
        assert (report["replicas"], report["workers"]) == (2, 2)
        assert report["steps"] == 6 and report["traces"] == 1
        assert report["images_trained"] == 6 * 16
        assert report["images_seen_by_tap"] == [16.0 * (s + 1) for s in range(6)]
        assert [(h["step"], h["test_examples"]) for h in report["history"]] == [(3, 37), (6, 37)]
    strip = [[{k: v for k, v in h.items() if k != "wall_time"} for h in r["history"]] for r in reports]
    assert strip[0] == strip[1]
    assert reports[0]["loss_curve"] == reports[1]["loss_curve"]


def test_multi_worker_weights_identical(multi_worker):
    _, (first, second) = multi_worker
    assert first.keys() == second.keys() and len(first) > 10
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_multi_worker_stop_is_agreed(multi_worker):
    """Only worker 0 asked to stop (before its third step); both stopped after that step."""
    reports, _ = multi_worker
    assert [r["interrupted_at"] for r in reports] == [3, 3]


def test_multi_worker_featuremap_statistics(multi_worker):
    reports, _ = multi_worker
    first, second = (r["statistics"] for r in reports)
    assert first == second and len(first) == 2
    assert all(np.isfinite(v) and v > 0 for v in first.values())
    assert [r["statistics_images"] for r in reports] == [[96.0, 96.0]] * 2
