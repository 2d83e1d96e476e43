"""The training loop of `nac.training.train.Trainer`: device calls, callbacks, evaluations.

`run_training` drives the loop: before every loop of up to `steps_per_loop` steps it checks
`should_stop`, runs the loop in one device call, reads its summed results, checks them for
divergence, calls the callbacks and `progress`, and evaluates at the evaluation steps.
`TrainLog` accumulates what the loop records and becomes the `TrainResult`.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from nac.net import divergence
from nac.training import distribute
from nac.training.recipe import learning_rate_at


class TrainingInterrupted(Exception):
    """Training stopped at a step boundary because `should_stop()` returned True.

    Attributes:
      step: Steps completed before stopping.
    """

    def __init__(self, step: int):
        super().__init__(f"training interrupted after {step} steps")
        self.step = step


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What one training run produced.

    Attributes:
      model: The trained model with the evaluation weights in place (EMA weights and, with
        ``recalibrate``, the re-estimated BN statistics), ready for export.
      steps: Steps trained.
      history: One dict per evaluation: `step`, `test_accuracy`, `test_loss`,
        (`test_top5`), (`validation_accuracy`, `validation_loss`, `validation_top5`),
        `wall_time` (seconds since training began).
      loss_curve: (step, mean training loss over the steps since the previous entry) every
        `log_every` steps and at the last step.
      images_per_sec: Training throughput, excluding evaluations, callbacks and the first
        (tracing) step.
      train_time_s: Seconds spent in training steps (first step included).
      eval_time_s: Seconds spent in evaluations (BN re-estimation included).
      wall_time_s: Seconds from the start of `train` to its end.
      images_trained: Training images consumed over all replicas (reduced in the graph).
      final: The last evaluation (the last `history` entry).
      stopped_early: A callback set `model.stop_training`.
    """

    model: keras.Model
    steps: int
    history: tuple[dict, ...]
    loss_curve: tuple[tuple[int, float], ...]
    images_per_sec: float
    train_time_s: float
    eval_time_s: float
    wall_time_s: float
    images_trained: int
    final: dict
    stopped_early: bool = False


@dataclasses.dataclass
class TrainLog:
    """What one training accumulates: evaluations, the loss curve, timings."""

    steps: int = 0
    history: list = dataclasses.field(default_factory=list)
    loss_curve: list = dataclasses.field(default_factory=list)
    step_times: list = dataclasses.field(default_factory=list)
    eval_time: float = 0.0
    images_trained: int = 0
    window: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))  # loss, correct, count
    stopped_early: bool = False

    def log_window(self, step, config, lr, images_per_sec, progress) -> None:
        """Closes a loss-curve window at `step` and reports it to `progress`."""
        mean_loss = float(self.window[0] / self.window[2])
        self.loss_curve.append((step, mean_loss))
        if progress is not None:
            progress(
                {
                    "step": step,
                    "steps": config.steps,
                    "loss": mean_loss,
                    "accuracy": float(self.window[1] / self.window[2]),
                    "lr": lr,
                    "images_per_sec": images_per_sec,
                    "eta_s": (config.steps - step) * config.batch_size / images_per_sec
                    if images_per_sec
                    else None,
                }
            )
        self.window[:] = 0

    def result(self, model, batch_size: int, start: float) -> TrainResult:
        """The `TrainResult` of the finished loop (started at `start`, `time.perf_counter`)."""
        return TrainResult(
            model=model,
            steps=self.steps,
            history=tuple(self.history),
            loss_curve=tuple(self.loss_curve),
            images_per_sec=_throughput(self.step_times, batch_size),
            train_time_s=sum(t for _, t in self.step_times),
            eval_time_s=self.eval_time,
            wall_time_s=time.perf_counter() - start,
            images_trained=self.images_trained,
            final=dict(self.history[-1]),
            stopped_early=self.stopped_early,
        )


def run_training(trainer, iterator, evaluation, callback_list, train_examples, should_stop, progress, start):
    """Trains `trainer.config.steps` steps from `iterator`; returns the `TrainLog`.

    Raises:
      TrainingInterrupted: `should_stop()` returned True (on any worker).
    """
    config = trainer.config
    multi_worker = distribute.num_workers(trainer.strategy) > 1
    eval_at = set(config.eval_steps())
    run = TrainLog()
    loop_ends = config.loop_ends()
    loss_watch = divergence.LossWatch(config.mixed_precision)
    callback_list.on_train_begin()
    while run.steps < config.steps:
        step = run.steps
        local_stop = bool(should_stop()) if should_stop is not None else False
        if local_stop and not multi_worker:
            raise TrainingInterrupted(step)
        n = config.loop_length(step, loop_ends)
        callback_list.on_train_batch_begin(step)
        t0 = time.perf_counter()
        # The one place where the host reads a loop's results: the sums over its n
        # steps of the cross-entropy, correct predictions, examples and regularisation,
        # and the summed stop flags. Statistic records, evaluations and interruption
        # checks below all fall on loop boundaries (`TrainConfig.loop_ends`).
        ce_sum, correct, count, reg, stops = (float(x) for x in trainer._run_loop(iterator, local_stop, n))
        loss_watch.check(step + n, ce_sum, reg)
        run.step_times.append((n, time.perf_counter() - t0))
        index, step = step + n - 1, step + n
        run.steps = step
        run.images_trained += int(round(count))
        run.window += (ce_sum, correct, count)
        lr = learning_rate_at(config, index, train_examples)
        logs = {
            "loss": ce_sum / count,
            "accuracy": correct / count,
            "lr": lr,
            "images_per_sec": _throughput(run.step_times, config.batch_size),
        }
        if config.weight_decay:
            logs["regularization_loss"] = reg / n / trainer.replicas
        if stops > 0:
            raise TrainingInterrupted(step)
        callback_list.on_train_batch_end(index, logs)
        if trainer.model.stop_training and step < config.steps:
            run.stopped_early = True
            eval_at.add(step)
        if step % config.log_every == 0 or step == config.steps or run.stopped_early:
            run.log_window(step, config, lr, logs["images_per_sec"], progress)
        if step in eval_at:
            final = step == config.steps or run.stopped_early
            trainer._evaluate_at(step, final, evaluation, callback_list, run, start)
        if run.stopped_early:
            break
    return run


def _throughput(step_times: list[tuple[int, float]], batch_size: int) -> float:
    """Images per second from (steps, seconds) per device call, leaving out the first
    (tracing) call when there are others."""
    times = step_times[1:] if len(step_times) > 1 else step_times
    total = sum(t for _, t in times)
    return sum(n for n, _ in times) * batch_size / total if total > 0 else 0.0
