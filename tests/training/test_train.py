"""Tests of nac.training.train: the custom training loop, EMA, BN evaluation modes, interruption.

Tiny networks at 8x8 on the synthetic data set; each training run traces its own model,
so the runs are shared through module-scoped fixtures.
"""

import dataclasses
import logging
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import arrays, run_config, synthetic_data

from nac.net.model import taps
from nac.net.stats import FeaturemapStatistics
from nac.run.original import original_config
from nac.spec import arch
from nac.spec.errors import ConfigError, RunError
from nac.training import distribute
from nac.training import train as T

IMAGE = 8
BATCH = 32


@pytest.fixture(scope="module")
def data():
    return synthetic_data(IMAGE, 256, 100)


def _bn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _tap_values(model):
    return {branch: [float(v.numpy()) for v in tap.accumulators()] for branch, tap in taps(model).items()}


def _seed_states(model):
    return [
        layer.seed_generator.state.numpy().tolist()
        for layer in model.layers
        if isinstance(layer, keras.layers.Dropout)
    ]


class Recorder(keras.callbacks.Callback):
    """Records weights, logs, tap accumulators and BN statistics around every hook."""

    def __init__(self):
        super().__init__()
        self.events, self.raw, self.batch_logs, self.test_logs = [], [], [], []
        self.begin = []
        self.at_batch_end, self.at_test_end = {}, []

    def _snapshot(self):
        return {
            "taps": _tap_values(self.model),
            "seeds": _seed_states(self.model),
            "bn": [
                v.numpy().copy()
                for layer in _bn_layers(self.model)
                for v in (layer.moving_mean, layer.moving_variance)
            ],
        }

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")
        self.initial = [v.numpy().copy() for v in self.model.trainable_weights]

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))
        self.begin.append([v.numpy().copy() for v in self.model.trainable_weights])

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch))
        self.raw.append([v.numpy().copy() for v in self.model.trainable_weights])
        self.batch_logs.append(dict(logs))
        self.at_batch_end[batch] = self._snapshot()

    def on_test_end(self, logs=None):
        self.events.append("test_end")
        self.test_logs.append(dict(logs))
        self.at_test_end.append(self._snapshot())

    def on_train_end(self, logs=None):
        self.events.append("train_end")
        self.final_logs = dict(logs)


# --------------------------------------------------------------------------------------
# Pure functions and configuration.


def test_ema_decay_formula():
    assert T.ema_decay(0) == pytest.approx(0.1)
    assert T.ema_decay(1) == pytest.approx(2 / 11)
    assert T.ema_decay(90) == pytest.approx(0.91)
    assert T.ema_decay(10**6) == 0.9999
    assert float(T.ema_decay(tf.constant(1, tf.int64))) == pytest.approx(2 / 11)
    assert float(T.ema_decay(tf.constant(10**6))) == pytest.approx(0.9999)


@pytest.mark.parametrize("schedule", T.LR_SCHEDULES)
def test_lr_schedules_match_keras(schedule):
    config = T.TrainConfig(steps=1000, batch_size=50, lr_schedule=schedule, decay_epochs=2.0)
    keras_schedule = T.learning_rate_schedule(config, train_examples=10000)  # 400 steps/decay
    for step in (0, 1, 399, 400, 401, 799, 800, 999, 1000):
        expected = T.learning_rate_at(config, step, 10000)
        got = keras_schedule if isinstance(keras_schedule, float) else float(keras_schedule(step))
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-8), step


def test_lr_schedule_values():
    exponential = T.TrainConfig(steps=10, decay_epochs=2.0, decay_rate=0.5)
    assert [T.learning_rate_at(exponential, s, 100) for s in (0, 3, 4, 7, 8)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025]
    )  # 2 epochs of 100 at batch 50: 4 steps
    original = T.TrainConfig(steps=10)  # x0.1 every 350 epochs: 350,000 steps on CIFAR-10
    assert T.learning_rate_at(original, 349_999, 50_000) == pytest.approx(0.1)
    assert T.learning_rate_at(original, 350_000, 50_000) == pytest.approx(0.01)
    cosine = T.TrainConfig(steps=100, lr_schedule="cosine")
    assert [T.learning_rate_at(cosine, s, 100) for s in (0, 50, 100)] == pytest.approx(
        [0.1, 0.05, 0.0], abs=1e-12
    )
    constant = T.TrainConfig(steps=100, lr_schedule="constant", learning_rate=0.3)
    assert T.learning_rate_at(constant, 10**6, 100) == 0.3


def test_eval_steps():
    assert T.TrainConfig(steps=40, eval_every=15).eval_steps() == (15, 30, 40)
    assert T.TrainConfig(steps=30, eval_every=15).eval_steps() == (15, 30)
    assert T.TrainConfig(steps=30).eval_steps() == (30,)
    assert T.TrainConfig(steps=3, eval_every=10).eval_steps() == (3,)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"steps": 5, "batch_size": 0}, "batch_size"),
        ({"steps": 5, "eval_every": -1}, "eval_every"),
        ({"steps": 5, "eval_batch_size": 0}, "eval_batch_size"),
        ({"steps": 5, "learning_rate": 0}, "learning_rate"),
        ({"steps": 5, "lr_schedule": "step"}, "lr_schedule"),
        ({"steps": 5, "decay_epochs": 0}, "decay_epochs"),
        ({"steps": 5, "decay_rate": 1.5}, "decay_rate"),
        ({"steps": 5, "momentum": 1.0}, "momentum"),
        ({"steps": 5, "weight_decay": -1e-4}, "weight_decay"),
        ({"steps": 5, "bn_eval": "train"}, "bn_eval"),
        ({"steps": 5, "bn_recalibration_examples": 0}, "bn_recalibration_examples"),
        ({"steps": 5, "ema": 1}, "ema"),
        ({"steps": 5, "jit_compile": "yes"}, "jit_compile"),
        ({"steps": 5, "log_every": 0}, "log_every"),
    ],
)
def test_train_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as e:
        T.TrainConfig(**kwargs)
    message = str(e.value)
    assert f"TrainConfig.{field}: got {kwargs[field]!r}; expected" in message
    assert "\n" not in message


# --------------------------------------------------------------------------------------
# One device: a full run with the defaults (EMA, recalibrated BN).

SMOKE = T.TrainConfig(
    steps=45,
    batch_size=BATCH,
    eval_every=15,
    log_every=10,
    lr_schedule="constant",
    bn_recalibration_examples=100,
)


@pytest.fixture(scope="module")
def smoke(data):
    # 45 steps on 100 test images: the accuracy depends on the draw (0.23-0.61 over seeds
    # 0-2 and both cell forms); seed 2 leaves room above the threshold for both.
    keras.utils.set_random_seed(2)
    trainer = T.Trainer(
        arch.network_from_notation("8/1-1/6"), IMAGE, SMOKE, strategy=distribute.make_strategy("one_device")
    )
    recorder, progress = Recorder(), []
    result = trainer.train(data, callbacks=[recorder], progress=progress.append)
    return trainer, result, recorder, progress


def test_smoke_learns(smoke):
    _, result, _, _ = smoke
    losses = [loss for _, loss in result.loss_curve]
    assert losses[-1] < losses[0] - 0.15
    assert result.final["test_accuracy"] > 0.3  # chance: 0.1
    assert result.images_trained == SMOKE.steps * BATCH
    assert result.images_per_sec > 0 and result.train_time_s > 0 and result.eval_time_s > 0
    assert result.wall_time_s >= result.train_time_s + result.eval_time_s


def test_smoke_history_and_hooks(smoke, data):
    trainer, result, recorder, progress = smoke
    assert [h["step"] for h in result.history] == [15, 30, 45]
    assert result.final == result.history[-1]
    assert all(h["test_examples"] == data.info.test_examples for h in result.history)
    assert [step for step, _ in result.loss_curve] == [10, 20, 30, 40, 45]
    assert [p["step"] for p in progress] == [10, 20, 30, 40, 45]
    assert progress[-1]["eta_s"] == 0 and progress[0]["steps"] == 45
    assert trainer.train_step_traces == 1
    # Hook order: begin, (batch_begin, batch_end)*, test_end after steps 15, 30 and 45, end.
    assert recorder.events[0] == "train_begin" and recorder.events[-1] == "train_end"
    assert recorder.events[1:3] == [("batch_begin", 0), ("batch_end", 0)]
    test_positions = [i for i, e in enumerate(recorder.events) if e == "test_end"]
    assert [recorder.events[i - 1] for i in test_positions] == [
        ("batch_end", 14),
        ("batch_end", 29),
        ("batch_end", 44),
    ]
    assert [logs["step"] for logs in recorder.test_logs] == [15, 30, 45]
    assert recorder.final_logs["test_accuracy"] == result.final["test_accuracy"]
    logs = recorder.batch_logs[3]
    assert set(logs) == {"loss", "accuracy", "lr", "images_per_sec"}
    assert logs["lr"] == 0.1 and 0 <= logs["accuracy"] <= 1
    # The loss curve holds window means of the per-step losses.
    assert result.loss_curve[0][1] == pytest.approx(
        np.mean([logs["loss"] for logs in recorder.batch_logs[:10]]), rel=1e-6
    )


def test_smoke_evaluates_ema_weights(smoke):
    """The final model holds the EMA of the raw weights (computed here by hand)."""
    trainer, result, recorder, _ = smoke
    shadow = [w.astype(np.float64) for w in recorder.initial]
    for t, raw in enumerate(recorder.raw, start=1):
        decay = T.ema_decay(t)
        shadow = [s - (s - w) * (1.0 - decay) for s, w in zip(shadow, raw)]
    final = [v.numpy() for v in result.model.trainable_weights]
    for got, expected in zip(final, shadow):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for got, ema in zip(final, trainer.ema_variables):
        np.testing.assert_array_equal(got, ema.numpy())
    largest = max(np.abs(got - last).max() for got, last in zip(final, recorder.raw[-1]))
    assert largest > 1e-3  # the EMA lags the raw weights
    # Training resumes from the raw weights after each evaluation.
    for step in range(1, SMOKE.steps):
        for begin, end in zip(recorder.begin[step], recorder.raw[step - 1]):
            np.testing.assert_array_equal(begin, end)


def test_smoke_accuracy_is_exact(smoke, data):
    """The reported accuracy is that of the returned model on every test image."""
    _, result, _, _ = smoke
    images, labels = arrays(data.evaluation("test", 64))  # batches of 64 and 36
    logits = result.model(images, training=False).numpy()
    assert np.mean(np.argmax(logits, -1) == labels) == result.final["test_accuracy"]
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits).numpy()
    assert np.mean(losses) == pytest.approx(result.final["test_loss"], rel=1e-5)


def test_recalibration_sets_population_statistics(smoke, data):
    """The first BN layer's moving statistics are its input's mean and variance over the
    recalibration images (whole batches of the unaugmented training stream)."""
    _, result, _, _ = smoke
    batches = math.ceil(SMOKE.bn_recalibration_examples / BATCH)
    images, _ = arrays(data.train(BATCH, augment=False).take(batches))
    assert len(images) == 128
    bn = _bn_layers(result.model)[0]
    probe = keras.Model(result.model.inputs[0], bn.input)
    x = probe(images, training=False).numpy().astype(np.float64)
    np.testing.assert_allclose(bn.moving_mean.numpy(), x.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), x.var(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_evaluation_leaves_taps_and_dropout_stream_alone(smoke):
    _, result, recorder, _ = smoke
    for index, step in enumerate((15, 30, 45)):
        before, after = recorder.at_batch_end[step - 1], recorder.at_test_end[index]
        assert after["taps"] == before["taps"]
        assert after["seeds"] == before["seeds"]
    images = [values[1] for values in _tap_values(result.model).values()]
    assert images == [float(SMOKE.steps * BATCH)] * len(images)


# --------------------------------------------------------------------------------------
# Other options, one device.

OPTIONS = T.TrainConfig(
    validation=True,
    top5=True,
    steps=4,
    batch_size=BATCH,
    eval_every=2,
    log_every=2,
    ema=False,
    bn_eval="batch_stats",
    momentum=0.9,
    weight_decay=1e-3,
    lr_schedule="cosine",
    learning_rate=0.05,
)


def _options_run(data):
    keras.utils.set_random_seed(1)
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, OPTIONS)
    recorder = Recorder()
    return trainer.train(data, callbacks=[recorder]), recorder


@pytest.fixture(scope="module")
def validation_data():
    return synthetic_data(IMAGE, 256, 100, validation_examples=40)


@pytest.fixture(scope="module")
def options_runs(validation_data):
    return _options_run(validation_data), _options_run(validation_data)


def test_batch_stats_leaves_moving_statistics_alone(options_runs):
    (result, recorder), _ = options_runs
    for index, step in enumerate((2, 4)):
        before, after = recorder.at_batch_end[step - 1], recorder.at_test_end[index]
        for b, a in zip(before["bn"], after["bn"]):
            np.testing.assert_array_equal(a, b)
        assert after["taps"] == before["taps"]
        assert after["seeds"] == before["seeds"]
    # ema=False: the raw weights are evaluated and returned.
    for got, raw in zip(result.model.trainable_weights, recorder.raw[-1]):
        np.testing.assert_array_equal(got.numpy(), raw)


def test_batch_stats_normalises_with_each_batch(options_runs, validation_data):
    data = validation_data
    (result, _), _ = options_runs
    model = result.model
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    images, labels = arrays(data.evaluation("test", BATCH))
    # The model in training mode with dropout and tap collection off, batch by batch as
    # the evaluation batches the test set (32, 32, 32, 4).
    correct, loss = 0, 0.0
    rates = [layer.rate for layer in dropouts]
    bn_state = [
        v.numpy().copy() for layer in _bn_layers(model) for v in (layer.moving_mean, layer.moving_variance)
    ]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        for tap in taps(model).values():
            tap.collect = False
        for start in range(0, len(labels), BATCH):
            logits = model(images[start : start + BATCH], training=True).numpy()
            correct += int(np.sum(np.argmax(logits, -1) == labels[start : start + BATCH]))
            loss += float(
                np.sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels[start : start + BATCH], logits))
            )
    finally:
        for layer, rate in zip(dropouts, rates):
            layer.rate = rate
        for tap in taps(model).values():
            tap.collect = True
        for v, value in zip(
            [v for layer in _bn_layers(model) for v in (layer.moving_mean, layer.moving_variance)], bn_state
        ):
            v.assign(value)
    assert correct / len(labels) == result.final["test_accuracy"]
    assert loss / len(labels) == pytest.approx(result.final["test_loss"], rel=1e-5)


def test_options_logs(options_runs, validation_data):
    (result, recorder), _ = options_runs
    lrs = [logs["lr"] for logs in recorder.batch_logs]
    train_examples = validation_data.info.train_examples
    assert train_examples == 216
    assert lrs == pytest.approx([T.learning_rate_at(OPTIONS, s, train_examples) for s in range(4)])
    assert lrs[0] == pytest.approx(0.05) and lrs[-1] < lrs[0]
    assert all(logs["regularization_loss"] > 0 for logs in recorder.batch_logs)
    assert [h["step"] for h in result.history] == [2, 4]
    for h in result.history:
        assert (h["test_examples"], h["validation_examples"]) == (100, 40)
        assert 0 <= h["validation_accuracy"] <= h["validation_top5"] <= 1
        assert h["test_accuracy"] <= h["test_top5"] and np.isfinite(h["validation_loss"])


def test_repeatable_with_a_seed(options_runs):
    (first, first_recorder), (second, second_recorder) = options_runs
    assert [logs["loss"] for logs in first_recorder.batch_logs] == [
        logs["loss"] for logs in second_recorder.batch_logs
    ]
    for a, b in zip(first.model.weights, second.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert first.history[-1]["test_loss"] == second.history[-1]["test_loss"]


def test_should_stop_interrupts_at_a_step_boundary(data):
    keras.utils.set_random_seed(0)
    trainer = T.Trainer(
        arch.network_from_notation("4/1/2"), IMAGE, T.TrainConfig(steps=10, batch_size=BATCH, eval_every=1)
    )
    recorder, calls = Recorder(), []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(T.TrainingInterrupted) as e:
        trainer.train(data, callbacks=[recorder], should_stop=should_stop)
    assert e.value.step == 3
    assert recorder.events[-2:] == [("batch_end", 2), "test_end"]  # no train_end
    assert [logs["step"] for logs in recorder.test_logs] == [1, 2, 3]
    with pytest.raises(RunError, match="trained already"):
        trainer.train(data)


def test_stop_before_the_first_step(data):
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, T.TrainConfig(steps=5))
    with pytest.raises(T.TrainingInterrupted) as e:
        trainer.train(data, should_stop=lambda: True)
    assert e.value.step == 0 and trainer.train_step_traces == 0


def test_callback_stop_training_ends_early(data):
    class StopAfterTwo(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    result = T.train(
        arch.network_from_notation("4/1/2"),
        IMAGE,
        data,
        T.TrainConfig(steps=10, batch_size=BATCH, bn_eval="moving"),
        callbacks=[StopAfterTwo()],
    )
    assert result.stopped_early and result.steps == 2
    assert [h["step"] for h in result.history] == [2] and result.loss_curve[-1][0] == 2


def test_one_trainer_per_iteration_is_no_retracing_warning(data):
    """A construction builds one trainer and one statistics callback per iteration; each
    traces its functions once (nac.net.tracing). From the fifth trainer of a process on,
    TensorFlow warned "N out of the last N calls ... triggered tf.function retracing" (the
    paper's 5 iterations and the final network), because it keys the warning by the method's
    code object that all trainers share."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    config = T.TrainConfig(steps=2, batch_size=BATCH, lr_schedule="constant", bn_recalibration_examples=BATCH)
    try:
        for _ in range(6):
            trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, config)
            trainer.train(data, callbacks=[FeaturemapStatistics(trainer.model, BATCH)])
    finally:
        logger.removeHandler(handler)
    assert not [r.getMessage() for r in records if "retracing" in r.getMessage()]


def test_data_must_fit_the_model(data):
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE + 4, T.TrainConfig(steps=1))
    with pytest.raises(RunError, match="images"):
        trainer.train(data)
    trainer = T.Trainer(arch.network_from_notation("4/1/2", num_classes=5), IMAGE, T.TrainConfig(steps=1))
    with pytest.raises(RunError, match="classes"):
        trainer.train(data)


def test_mixed_precision(data):
    keras.utils.set_random_seed(0)
    policy = keras.config.dtype_policy().name
    trainer = T.Trainer(
        arch.network_from_notation("4/1/2"),
        IMAGE,
        T.TrainConfig(steps=2, batch_size=BATCH, mixed_precision=True, bn_recalibration_examples=BATCH),
    )
    assert keras.config.dtype_policy().name == policy  # the global policy is restored
    conv = trainer.model.get_layer("cell1_branch1_conv")
    assert conv.compute_dtype == "float16" and conv.variable_dtype == "float32"
    assert trainer.model.outputs[0].dtype == "float32"
    result = trainer.train(data)
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(result.final["test_loss"]) and result.images_trained == 2 * BATCH
    assert all(v.dtype == "float32" for v in result.model.trainable_weights)


def test_jit_compile(data):
    keras.utils.set_random_seed(0)
    config = T.TrainConfig(steps=2, batch_size=BATCH, jit_compile=True, bn_recalibration_examples=BATCH)
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, config)
    result = trainer.train(data)
    assert trainer.train_step_traces == 1 and np.isfinite(result.final["test_loss"])
    assert [values[1] for values in _tap_values(result.model).values()] == [2.0 * BATCH] * 2


# --------------------------------------------------------------------------------------
# Several steps per device call.


def test_steps_per_loop_gives_the_same_run(data):
    """With the same seed, 7 steps per call (loops cut at records, logs and evaluations)
    give the statistic series, losses, evaluations and the next architecture of 1 per call."""
    from nac.search import restructure
    from nac.spec.config import OriginalConfig

    network = arch.network_from_notation("8/2-1/6")
    runs = {}
    for per_loop in (1, 7):
        config = T.TrainConfig(
            steps=24, batch_size=BATCH, eval_every=12, log_every=6, steps_per_loop=per_loop, record_every=4
        )
        assert config.loop_ends() == {4, 6, 8, 12, 16, 18, 20, 24}
        keras.utils.set_random_seed(11)
        trainer = T.Trainer(network, IMAGE, config)
        stats = FeaturemapStatistics(trainer.model, BATCH, series_every=4)
        recorder = Recorder()
        result = trainer.train(data.reseeded(5), callbacks=[stats, recorder])
        ends = [e[1] + 1 for e in recorder.events if isinstance(e, tuple) and e[0] == "batch_end"]
        runs[per_loop] = (result, stats, ends, trainer.train_step_traces)
        keras.backend.clear_session()
    (one, stats_one, ends_one, _), (loop, stats_loop, ends_loop, traces) = runs[1], runs[7]
    assert ends_one == list(range(1, 25))
    assert ends_loop == [4, 6, 8, 12, 16, 18, 20, 24] and traces == 1
    assert stats_loop.series["steps"] == stats_one.series["steps"] == [4, 8, 12, 16, 20, 24]
    for branch, values in stats_one.series["values"].items():
        np.testing.assert_allclose(stats_loop.series["values"][branch], values, rtol=1e-5)
    assert [s for s, _ in loop.loss_curve] == [s for s, _ in one.loss_curve] == [6, 12, 18, 24]
    np.testing.assert_allclose([v for _, v in loop.loss_curve], [v for _, v in one.loss_curve], rtol=1e-5)
    assert [h["step"] for h in loop.history] == [12, 24]
    assert [h["test_accuracy"] for h in loop.history] == [h["test_accuracy"] for h in one.history]
    assert loop.images_trained == one.images_trained == 24 * BATCH
    policy = restructure.Policy.from_config(OriginalConfig.from_original(_policy_config(network)))
    nxt = [restructure.restructure(network, s.scaled(s.final)["l2"], policy) for s in (stats_one, stats_loop)]
    assert nxt[0] == nxt[1]


def _policy_config(network):

    return original_config(run_config(run_dir="r", dataset="synthetic", envelope="8/2-1/6"))


def test_eval_examples_shortens_every_evaluation_but_the_last(validation_data):
    """--eval_examples: the evaluations before the last read the first N images of each split
    (whole evaluation batches); the last one, the reported result, reads every image."""
    config = dataclasses.replace(OPTIONS, eval_examples=20, eval_batch_size=16, eval_every=1, steps=3)
    keras.utils.set_random_seed(1)
    trainer = T.Trainer(arch.network_from_notation("4/1/2"), IMAGE, config)
    result = trainer.train(validation_data)
    examples = [(h["test_examples"], h["validation_examples"]) for h in result.history]
    assert examples == [(32, 32), (32, 32), (100, 40)]  # ceil(20 / 16) = 2 batches of 16
    assert result.final["test_examples"] == 100
    # The last evaluation also reads its first 32 images' accuracy (the curve's images); the
    # model keeps the evaluation weights after it, so recompute that accuracy by hand.
    assert [("test_subset_accuracy" in h) for h in result.history] == [False, False, True]
    assert result.final["test_subset_examples"] == 32 and result.final["validation_subset_examples"] == 32
    correct = 0
    with T._no_dropout_no_taps(trainer.model):
        for images, labels in validation_data.evaluation("test", 16).take(2):
            predicted = np.argmax(trainer.model(images, training=False).numpy(), -1)
            correct += int(np.sum(predicted == labels.numpy()))
    assert result.final["test_subset_accuracy"] == pytest.approx(correct / 32)
    with pytest.raises(ConfigError, match="eval_examples: got -1"):
        T.TrainConfig(steps=1, eval_examples=-1)
