"""One worker of the two-process MultiWorkerMirroredStrategy test (tests/training/test_distribute.py).

Usage: python tests/mw_worker.py OUT_DIR STOP_AFTER, with TF_CONFIG set by the test. It
trains a tiny network on synthetic data, then trains a second one that worker 0 alone asks
to stop after STOP_AFTER steps, and writes OUT_DIR/worker<i>.json and .npz. It does not
split the CPU into logical devices: it is a fresh process and never loads conftest.py.
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from nac.training import distribute  # noqa: E402

STEPS = 6
BATCH = 16  # global: 8 per worker


def main(out_dir: str, stop_after: int) -> None:
    strategy = distribute.make_strategy("auto")  # before any tensor exists
    import keras
    import numpy as np

    from nac.data.pipelines import DataConfig, load
    from nac.net import model as model_lib
    from nac.net.stats import FeaturemapStatistics
    from nac.spec import arch
    from nac.training import train

    task_type, task_id = distribute.task(strategy)
    keras.utils.set_random_seed(0)
    data = load(
        DataConfig(
            dataset="synthetic",
            image_size=8,
            seed=0,
            synthetic_train_examples=128,
            synthetic_test_examples=37,
        )
    )
    network = arch.network_from_notation("4/1/2")
    config = train.TrainConfig(
        steps=STEPS,
        batch_size=BATCH,
        eval_every=3,
        log_every=2,
        lr_schedule="constant",
        bn_recalibration_examples=20,
    )
    images_seen = []

    class TapReader(keras.callbacks.Callback):
        """Reads an on-read SUM accumulator (an all-reduce across workers) at every step."""

        def on_train_batch_end(self, batch, logs=None):
            tap = next(iter(model_lib.taps(self.model).values()))
            images_seen.append(float(tap.images.numpy()))

    trainer = train.Trainer(network, 8, config, strategy=strategy)
    statistics = FeaturemapStatistics(trainer.model, BATCH, ("l2",))
    result = trainer.train(data, callbacks=[TapReader(), statistics])
    statistics_images = [float(t["images"]) for t in statistics.totals().values()]
    weights = {f"w{i}": v.numpy() for i, v in enumerate(result.model.weights)}
    np.savez(os.path.join(out_dir, f"worker{task_id}.npz"), **weights)

    calls = [0]

    def should_stop():
        calls[0] += 1
        return task_id == 0 and calls[0] > stop_after

    interrupted = None
    try:
        train.Trainer(network, 8, config, strategy=strategy).train(data, should_stop=should_stop)
    except train.TrainingInterrupted as e:
        interrupted = e.step

    report = {
        "task": [task_type, task_id],
        "chief": distribute.is_chief(strategy),
        "replicas": distribute.num_replicas(strategy),
        "workers": distribute.num_workers(strategy),
        "steps": result.steps,
        "images_trained": result.images_trained,
        "images_seen_by_tap": images_seen,
        "history": result.history,
        "loss_curve": result.loss_curve,
        "traces": trainer.train_step_traces,
        "interrupted_at": interrupted,
        "statistics": statistics.final["l2"],
        "statistics_images": statistics_images,
    }
    with open(os.path.join(out_dir, f"worker{task_id}.json"), "w") as f:
        json.dump(report, f, default=float)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
