"""Ablating a trained step of a run directory (what `python -m nac.ablate` does).

`prepare(step_dir)` reads and checks everything without TensorFlow (the step's network, the
run's configuration, the evaluation weights' presence); `ablate_step(...)` loads the data,
rebuilds the step's model with its evaluation weights, zeroes each branch in turn on the
same images and returns the `nac-ablation/1` document (`nac.search.ablation`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from nac.run.runconfig import RunConfig
from nac.run.runner import load_data
from nac.search import ablation as ablation_lib
from nac.search import criteria as criteria_lib
from nac.search import inherit
from nac.spec import arch as arch_lib
from nac.spec.errors import NacError, RunError

SPLITS = ("test", "train", "validation")


@dataclasses.dataclass(frozen=True)
class StepToAblate:
    """A trained step and its run's settings."""

    step_dir: str
    config: RunConfig
    network: arch_lib.Network
    metrics: dict


def _read(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise RunError(
            f"{path}: cannot read the {what}: {e.strerror or e}; give a trained step directory"
        ) from None
    except json.JSONDecodeError as e:
        raise RunError(f"{path}: the {what} is not JSON ({e.msg})") from None


def prepare(step_dir: str) -> StepToAblate:
    """Reads a step directory (`RUN/iter_K`, `RUN/final`, `RUN/random_J`) and its run's
    `run_config.json`; raises a one-line `NacError` for anything missing."""
    step_dir = os.path.normpath(os.fspath(step_dir))
    if not os.path.isdir(step_dir):
        raise RunError(
            f"STEP_DIR: {step_dir!r} is not a directory; give a trained step (RUN/iter_0, RUN/final)"
        )
    rc = _read(os.path.join(os.path.dirname(step_dir), "run_config.json"), "run configuration")
    config = RunConfig.from_flat(rc)
    body = arch_lib.body_from_original(_read(os.path.join(step_dir, "network.json"), "network"))
    network = dataclasses.replace(config.initial_network(), body=body)
    metrics = _read(os.path.join(step_dir, "metrics.json"), "step metrics")
    if not any(
        os.path.exists(os.path.join(step_dir, f))
        for f in (ablation_lib.EVAL_WEIGHTS_FILE, inherit.WEIGHTS_FILE)
    ):
        ablation_lib.load_evaluation_weights(step_dir)  # raises the one-line error
    return StepToAblate(step_dir, config, network, metrics)


def _batches(data, split: str, examples: int | None, batch_size: int) -> list:
    """The first `examples` images of `split` (all with None), evaluation preprocessing."""
    out, seen = [], 0
    for images, labels in data.evaluation(split, batch_size):
        if examples is not None and seen + int(labels.shape[0]) > examples:
            keep = examples - seen
            images, labels = images[:keep], labels[:keep]
        if int(labels.shape[0]):
            out.append((images, labels))
        seen += int(labels.shape[0])
        if examples is not None and seen >= examples:
            break
    return out


def step_model(step: StepToAblate, image_size: int):
    """The step's model with its evaluation weights."""
    from nac.net.ablation import load_step_model
    from nac.net.model import BuildOptions

    c = step.config
    options = BuildOptions(branch_order=c.statistic.branch_order, cell_impl=c.statistic.cell_impl)
    return load_step_model(
        step.network, image_size, options, ablation_lib.load_evaluation_weights(step.step_dir)
    )


def criteria_of(step: StepToAblate, model) -> tuple[dict, list[str]]:
    """Every criterion the step holds or implies: its `criteria.json` (`nac.run.stepcriteria`),
    else what `res.log` and `stats.json` hold, with `l1_kernel` from the evaluation weights and
    `random` from the step's seed when the step did not record them (`nac.search.ablation`)."""
    from nac.net import criteria as net_criteria

    values, notes = ablation_lib.recorded_criteria(step.step_dir, step.config.statistic.statistic)
    if "l1_kernel" not in values:
        values["l1_kernel"] = net_criteria.l1_kernel(model)
    if "random" not in values:
        branches = [b.original for b in step.network.branch_ids()]
        values["random"] = criteria_lib.random_values(branches, int(step.metrics.get("seed", 0)))
    return values, notes


def ablate_step(step: StepToAblate, split: str, examples: int | None, log=print, data=None) -> dict:
    """Zeroes each branch of the step in turn; returns the `nac-ablation/1` document."""
    from nac.net.ablation import Ablator

    t0 = time.perf_counter()
    data = data or load_data(step.config)
    if split == "validation" and not data.info.validation_examples:
        raise NacError(
            "--split=validation: the run has no validation split (it ran with --validation_examples=0)"
        )
    batches = _batches(data, split, examples, step.config.training.batch_size)
    model = step_model(step, data.info.image_size)
    ablator = Ablator(model, batch_stats=step.config.training.bn_eval == "batch_stats")
    base, ablated = ablator.all_branches(batches)
    criteria, notes = criteria_of(step, model)
    doc = ablation_lib.ablation_document(
        step.network, base, ablated, criteria, step.config.policy(), seed=0, notes=notes
    )
    doc.update(
        {
            "step": os.path.basename(step.step_dir),
            "split": split,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    )
    log(
        f"{doc['step']}: {doc['examples']} {split} images, {len(ablated)} branches, "
        f"base loss {doc['base']['loss']:.4f} accuracy {doc['base']['accuracy']:.4f}, {doc['seconds']:.1f} s"
    )
    return doc


def oracle_values(model, data, config) -> dict:
    """The `oracle` criterion of a trained construction step: `delta_loss` of every branch on
    all held-out training images (the validation split), the same images for every branch.

    Returns:
      `{"values": {branch: delta_loss}, "examples", "base_loss", "base_accuracy", "seconds"}`.
    """
    from nac.net import weights as net_weights
    from nac.net.ablation import Ablator, load_step_model
    from nac.net.model import BuildOptions

    t0 = time.perf_counter()
    options = BuildOptions(branch_order=config.statistic.branch_order, cell_impl=config.statistic.cell_impl)
    # A copy off the training strategy, with the evaluation weights (EMA, re-estimated BN).
    fresh = load_step_model(model.network, data.info.image_size, options, net_weights.model_weights(model))
    batches = _batches(data, "validation", None, config.training.batch_size)
    base, ablated = Ablator(fresh, batch_stats=config.training.bn_eval == "batch_stats").all_branches(batches)
    base_loss = float(base["loss"].mean())
    return {
        "values": {b: float(r["loss"].mean()) - base_loss for b, r in ablated.items()},
        "examples": int(base["loss"].size),
        "base_loss": base_loss,
        "base_accuracy": float(base["correct"].mean()),
        "seconds": round(time.perf_counter() - t0, 3),
    }
