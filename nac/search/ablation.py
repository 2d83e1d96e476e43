"""The oracle of branch utility and how the criteria compare with it (pure Python and NumPy).

`nac.ablate` (`nac.cli.ablate`) zeroes one branch's featuremap at a time in a trained step
(`nac.net.ablation`) and measures the loss and accuracy. This module holds what needs no
TensorFlow:

* the evaluation weights every step keeps (`EVAL_WEIGHTS_FILE`, `eval_weights.npz`: every
  model variable by Keras path in the per-branch form of `nac.net.weights.model_weights`,
  the EMA weights with the re-estimated batch-norm statistics, i.e. the model that was
  evaluated; the taps' accumulators are left out). About 4 bytes per parameter plus the
  batch-norm statistics;
* the criteria a step directory holds (`recorded_criteria`): its `criteria.json`
  (`nac.search.criteria`: l2, variance, taylor, l1_kernel, random and the driving one) when
  present, else `l2` / `variance` from `res.log` (and the driving one from `stats.json`);
  the caller adds `l1_kernel` (`nac.net.criteria`) and `random`
  (`nac.search.criteria.random_values`) where a step lacks them;
* Kendall tau-b of each criterion against `delta_loss` within a stage, with a percentile
  bootstrap interval over images (images resampled with replacement, every branch's
  per-image loss change averaged over the same resample; the criterion values are fixed);
* `prune_agreement`: of the branches the restructure rule (`nac.search.restructure`, the
  run's policy) prunes in a stage by a criterion, the fraction it also prunes by the oracle
  (`delta_loss` as the statistic: the least harmful to remove go first); None where the rule
  prunes nothing in that stage (frozen, full, or only one branch per layer);
* the `nac-ablation/1` document.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from nac.search import criteria as criteria_lib
from nac.search import restructure as restructure_lib
from nac.search import statsio
from nac.search.stability import kendall_tau_b
from nac.spec.errors import NacError

FORMAT = "nac-ablation/1"
ABLATION_FILE = "ablation.json"
EVAL_WEIGHTS_FILE = "eval_weights.npz"
BOOTSTRAP_SAMPLES = 1000


def load_evaluation_weights(directory) -> dict:
    """`{variable path: array}` of a step's evaluation weights (`eval_weights.npz`, or the
    `weights.npz` an inheriting iteration writes, which holds the same)."""
    from nac.search import inherit  # the weights file's name; no Keras

    for name in (EVAL_WEIGHTS_FILE, inherit.WEIGHTS_FILE):
        path = os.path.join(os.fspath(directory), name)
        if os.path.exists(path):
            with np.load(path) as saved:
                return {k: saved[k] for k in saved.files}
    raise NacError(
        f"{directory}: no {EVAL_WEIGHTS_FILE}; the step was trained by an older nac that did "
        "not keep its evaluation weights: retrain it (remove the directory and rerun)"
    )


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def recorded_criteria(step_dir, driving: str) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The recorded criteria of a step directory and notes on what it lacks.

    `criteria.json` (`nac.search.criteria`: `{"criteria": {name: {branch: value}}}`, every
    criterion the step recorded or computed) when present; else `res.log`'s `l2` and
    `variance` lines, and `stats.json` as the `driving` criterion.
    """
    step_dir = os.fspath(step_dir)
    out: dict[str, dict[str, float]] = {}
    path = os.path.join(step_dir, criteria_lib.CRITERIA_FILE)
    if os.path.exists(path):
        for name, values in _read_json(path).get("criteria", {}).items():
            out[name] = {b: float(v) for b, v in values.items()}
    log = os.path.join(step_dir, "res.log")
    if os.path.exists(log):
        text = open(log, encoding="utf-8").read()
        for name in statsio.LOG_TAGS:
            if name not in out and f"{statsio.LOG_TAGS[name]}:" in text:
                out[name] = statsio.parse_res_log(text, name, log)
    stats = os.path.join(step_dir, "stats.json")
    if driving not in out and os.path.exists(stats):
        out[driving] = statsio.read_stats(stats)
    notes = [
        f"{name}: not recorded in this step (no criteria.json value); left out of tau"
        for name in criteria_lib.RECORDED_NAMES
        if name not in out
    ]
    return out, notes


def bootstrap_means(deltas, rng, samples: int = BOOTSTRAP_SAMPLES) -> np.ndarray:
    """[samples, B] means of `deltas` ([B, N] per-image values) over images resampled with
    replacement, the same resample for every branch."""
    deltas = np.asarray(deltas, np.float64)
    n = deltas.shape[1]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=samples)
    return counts @ deltas.T / n


def tau_with_interval(criterion, deltas, boot_means) -> dict:
    """Kendall tau-b of `criterion` ([B]) against the mean of `deltas` ([B, N] per-image loss
    changes) and its 95% percentile bootstrap interval over images (`boot_means`, from
    `bootstrap_means`).

    Returns:
      `{"value": tau, "ci": [lo, hi]}`; None values where the ranking is all ties.
    """
    criterion = np.asarray(criterion, np.float64)
    value = kendall_tau_b(criterion, np.asarray(deltas, np.float64).mean(axis=1))
    if math.isnan(value):
        return {"value": None, "ci": None}
    draws = [t for t in (kendall_tau_b(criterion, m) for m in boot_means) if not math.isnan(t)]
    ci = [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] if draws else None
    return {"value": float(value), "ci": ci}


def pruned_by_stage(network, values: dict[str, float], policy) -> list[set[str]]:
    """Per stage, the branches the restructure rule prunes when `values` is the statistic
    (empty where it prunes nothing or cannot run on this network)."""
    stages = network.stages()
    try:
        _, report = restructure_lib.restructure_with_report(network, values, policy)
    except NacError:
        return [set() for _ in stages]
    return [{b.original for b in s.pruned} for s in report.stages]


def prune_agreement(network, criterion: dict[str, float], oracle: dict[str, float], policy) -> list:
    """Per stage: |pruned by criterion and by oracle| / |pruned by criterion|, None if none."""
    by_criterion = pruned_by_stage(network, criterion, policy)
    by_oracle = pruned_by_stage(network, oracle, policy)
    return [len(c & o) / len(c) if c else None for c, o in zip(by_criterion, by_oracle, strict=True)]


def ablation_document(network, base, ablated, criteria, policy, seed: int = 0, notes=()) -> dict:
    """The `nac-ablation/1` object.

    Args:
      network: the step's `Network` (its branch ids key everything).
      base: `{"loss": [N], "correct": [N]}` per image of the unablated network.
      ablated: `{branch: {"loss": [N], "correct": [N]}}` per image with that branch zeroed.
      criteria: `{name: {branch: value}}` (criteria lacking a branch of a stage are left out
        of that stage's tau).
      policy: the run's restructure `Policy` (for `prune_agreement`).
      seed: the bootstrap's seed.
      notes: lines saying what was left out, kept in the document.
    """
    base_loss = np.asarray(base["loss"], np.float64)
    base_out = {"loss": float(base_loss.mean()), "accuracy": float(np.mean(base["correct"]))}
    branches, deltas = {}, {}
    for branch in (b.original for b in network.branch_ids()):
        loss = np.asarray(ablated[branch]["loss"], np.float64)
        deltas[branch] = loss - base_loss
        accuracy = float(np.mean(ablated[branch]["correct"]))
        branches[branch] = {
            "loss": float(loss.mean()),
            "accuracy": accuracy,
            "delta_loss": float(loss.mean() - base_out["loss"]),
            "delta_accuracy": accuracy - base_out["accuracy"],
            "criteria": {n: float(v[branch]) for n, v in criteria.items() if branch in v},
        }
    oracle = {b: v["delta_loss"] for b, v in branches.items()}
    rng = np.random.default_rng(seed)
    agreement = {n: prune_agreement(network, v, oracle, policy) for n, v in criteria.items()}
    stages = []
    for s, stage in enumerate(network.stages()):
        ids = [f"Cell{k}/{key}" for k, cell in stage for key, _ in cell.branches]
        tau = {}
        matrix = np.stack([deltas[b] for b in ids])
        boot = bootstrap_means(matrix, rng)
        for name, values in criteria.items():
            if all(b in values for b in ids):
                tau[name] = tau_with_interval([values[b] for b in ids], matrix, boot)
        stages.append(
            {
                "stage": s,
                "branches": ids,
                "tau": tau,
                "prune_agreement": {
                    n: a[s] for n, a in agreement.items() if all(b in criteria[n] for b in ids)
                },
            }
        )
    return {
        "format": FORMAT,
        "examples": int(base_loss.size),
        "base": base_out,
        "branches": branches,
        "stages": stages,
        "notes": list(notes),
    }
