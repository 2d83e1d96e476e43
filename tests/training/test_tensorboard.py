"""TensorBoard: the featuremap curves at every record, the HParams session, the architecture text."""

import pytest

from nac.training import monitor

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402


class _Statistics:
    """What TensorBoardScalars reads of `nac.net.stats.FeaturemapStatistics`."""

    statistics = ("l2",)

    def __init__(self, series_every):
        self.series_every = series_every
        self.steps, self.values = [], []
        self.final = None

    def record(self, step, value):
        self.steps.append(step)
        self.values.append(value)

    @property
    def series(self):
        return {"steps": list(self.steps), "values": {"Cell1/Branch0": list(self.values)}}

    def scaled(self, values):
        return {"l2": {branch: 50 * v for branch, v in values["l2"].items()}}


def _tags(log_dir):
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def test_featuremap_curves_are_written_at_every_record_not_only_at_the_end(tmp_path):
    stats = _Statistics(series_every=4)
    callback = monitor.TensorBoardScalars(
        str(tmp_path),
        stats,
        every=4,
        hparams={"notation": "8/2-1/6", "learning_rate": 0.1, "steps": 8, "role": "constructed"},
        architecture="**8/2-1/6**",
        trial_id="run/iter_0",
    )
    callback.on_train_begin()
    for batch in range(8):
        if (batch + 1) % 4 == 0:
            stats.record(batch + 1, 0.1 * (batch + 1))
        callback.on_train_batch_end(batch, {"loss": 1.0})
        if batch == 3:  # the first record is on disk while training goes on
            callback.writer.flush()
            acc = _tags(tmp_path)
            assert [e.step for e in acc.Tensors("featuremap/Cell1/Branch0")] == [4]
    callback.on_train_end()
    acc = _tags(tmp_path)
    assert [e.step for e in acc.Tensors("featuremap/Cell1/Branch0")] == [4, 8]  # each once
    assert "_hparams_/session_start_info" in acc.Tags()["tensors"]
    start = acc.Tensors("_hparams_/session_start_info")[0]
    assert start is not None
    text = acc.Tensors("network/architecture")[0].tensor_proto.string_val[0].decode()
    assert text == "**8/2-1/6**"


def test_a_window_without_records_still_gets_its_final_statistic(tmp_path):
    stats = _Statistics(series_every=100)
    callback = monitor.TensorBoardScalars(str(tmp_path), stats, every=4)
    callback.on_train_begin()
    for batch in range(6):
        callback.on_train_batch_end(batch, {"loss": 1.0})
    stats.final = {"l2": {"Cell1/Branch0": 0.02}}
    callback.on_train_end()
    events = _tags(tmp_path).Tensors("featuremap/Cell1/Branch0")
    assert [e.step for e in events] == [6]
    import tensorflow as tf

    assert float(tf.make_ndarray(events[0].tensor_proto)) == pytest.approx(1.0)  # 50 x 0.02


def test_the_runs_steps_carry_their_hyperparameters_and_architecture(finished_run):
    acc = _tags(finished_run / "iter_1" / "tensorboard")
    assert {"_hparams_/session_start_info", "network/architecture"} <= set(acc.Tags()["tensors"])
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    from tensorboard.plugins.hparams import plugin_data_pb2

    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {k: v.ListFields()[0][1] for k, v in info.hparams.items()}
    assert hparams["step"] == "iter_1" and hparams["role"] == "construction"
    assert hparams["steps"] == 12 and hparams["seed"] > 0 and hparams["learning_rate"] == pytest.approx(0.1)
    assert {"notation", "lr_schedule", "statistic", "dataset", "batch_size"} <= set(hparams)
    text = acc.Tensors("network/architecture")[0].tensor_proto.string_val[0].decode()
    assert text.startswith(f"**{hparams['notation']}**") and "Cell1" in text
