"""The branch criteria: what can rank the branches of a stage for restructuring (pure Python).

A criterion maps every branch of a trained (or, for zero-cost criteria, freshly built)
network to a number; `nac.search.restructure` prunes the lowest. `--statistic=NAME` chooses
the criterion that drives construction (its values go into `stats.json` and `res.log`); the
recorded criteria are also written side by side into `criteria.json` every iteration.

The registry says, per criterion, where its values come from:

* `recorded` - accumulated by the featuremap taps during the training window (`l2`,
  `variance`, `taylor`): these need a window of at least one training step;
* `weights` - read from the branch's kernels at the window's end (`l1_kernel`);
* `seed` - drawn from the step's seed (`random`, the control);
* `zero_cost` - computed at the iteration's start from a few batches, without training
  (`snip`);
* `ablation` - measured by zeroing each branch after training on held-out training images
  (`oracle`; needs `--validation_examples`).

`refuses_zero_steps(name)` gives the one-line reason a criterion cannot drive a
construction with `--construction_steps=0` (no training window), or None.
`random_values(branches, seed)` is the `random` criterion itself, shared by the construction
and by any later analysis that must reproduce it from a step's seed.
"""

from __future__ import annotations

import dataclasses
import random as _random

# Where a criterion's values come from.
RECORDED = "recorded"
WEIGHTS = "weights"
SEED = "seed"
ZERO_COST = "zero_cost"
ABLATION = "ablation"

CRITERIA_FILE = "criteria.json"
CRITERIA_FORMAT = "nac-criteria/1"


@dataclasses.dataclass(frozen=True)
class Criterion:
    """One branch criterion.

    Attributes:
      name: the `--statistic` value.
      source: where the values come from (`recorded`, `weights`, `seed`, `zero_cost`,
        `ablation`).
      summary: one line saying what it is.
      log_tag: the `res.log` tag of its values (`MeanSSS:Cell1/Branch1:[v]` for `l2`).
      zero_steps: None when it can drive a construction with `--construction_steps=0`,
        else the reason it cannot.
      needs_validation: it needs held-out training images (`--validation_examples`).
    """

    name: str
    source: str
    summary: str
    log_tag: str
    zero_steps: str | None = None
    needs_validation: bool = False

    @property
    def recorded(self) -> bool:
        """Accumulated by the featuremap taps during the training window."""
        return self.source == RECORDED

    @property
    def needs_window(self) -> bool:
        """Its values need a training window (at least one training step)."""
        return self.zero_steps is not None


_NO_WINDOW = "it is accumulated over the training window, and --construction_steps=0 has none"

REGISTRY: dict[str, Criterion] = {
    c.name: c
    for c in (
        Criterion(
            "l2",
            RECORDED,
            "mean over the window's images of the per-image mean of the featuremap squared",
            "MeanSSS",
            _NO_WINDOW,
        ),
        Criterion(
            "variance",
            RECORDED,
            "mean over channels of each channel's variance over the window's images and positions",
            "Variance",
            _NO_WINDOW,
        ),
        Criterion(
            "taylor",
            RECORDED,
            "mean over the window's images of |sum over the featuremap of a * dL/da|",
            "Taylor",
            _NO_WINDOW,
        ),
        Criterion(
            "l1_kernel",
            WEIGHTS,
            "L1 norm of the branch's kernels at the window's end / their number of weights",
            "L1Kernel",
            "at initialisation it ranks kernel sizes (the initialiser's scale), not branches",
        ),
        Criterion("random", SEED, "seeded uniform values in [0, 1): the control", "Random"),
        Criterion(
            "snip",
            ZERO_COST,
            "mean over the branch's kernel weights of |w * dL/dw| at initialisation (a few batches)",
            "Snip",
        ),
        Criterion(
            "oracle",
            ABLATION,
            "loss increase on held-out training images when the branch's featuremap is zeroed",
            "Oracle",
            "it measures the trained network, and --construction_steps=0 trains none",
            needs_validation=True,
        ),
    )
}

NAMES = tuple(REGISTRY)
# Written into criteria.json every construction iteration.
RECORDED_NAMES = tuple(n for n, c in REGISTRY.items() if c.recorded)
# Compared against the oracle.
COMPARED_NAMES = ("l2", "variance", "taylor", "l1_kernel", "random")


def get(name: str, error=ValueError, where: str = "--statistic") -> Criterion:
    """The criterion called `name`; raises `error` with one line naming the choices."""
    if name not in REGISTRY:
        raise error(f"{where}: got {name!r}; expected one of {', '.join(NAMES)}")
    return REGISTRY[name]


def refuses_zero_steps(name: str) -> str | None:
    """Why `name` cannot drive a construction with no training window, or None."""
    return get(name).zero_steps


def taps_needed(name: str) -> tuple[str, ...]:
    """The tap accumulators (`l2`, `variance`, `taylor`) a run driven by `name` must keep:
    every recorded criterion, so that `criteria.json` holds them side by side."""
    get(name)
    return RECORDED_NAMES


def random_values(branches, seed: int) -> dict[str, float]:
    """The `random` criterion: `{branch: uniform [0, 1)}` in the given order, from `seed`."""
    rng = _random.Random(f"nac-random-criterion/{int(seed)}")
    return {b: rng.random() for b in branches}


def criteria_document(values: dict[str, dict[str, float]], driving: str, scale: str) -> dict:
    """The `criteria.json` object: `{"format", "driving", "scale", "criteria": {name:
    {branch_id: value}}}`, criteria in registry order."""
    ordered = {n: dict(values[n]) for n in NAMES if n in values}
    return {"format": CRITERIA_FORMAT, "driving": driving, "scale": scale, "criteria": ordered}
