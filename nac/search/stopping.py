"""The stability stop of a construction iteration (pure Python, no TensorFlow).

The paper's claim is that branch rankings settle long before accuracy converges. With
`--stats_stop_tau=T` an iteration ends as soon as its rankings have been stable for a while:

* At every statistic record (every `--stats_every` steps) the per-stage ranking of the
  branches by their running statistic is compared with the ranking at the PREVIOUS record:
  Kendall's tau-b per stage (`nac.search.stability.kendall_tau_b`), averaged over stages weighted by
  branch count (`nac.search.stability.weighted_tau`). Stages with fewer than two branches, and
  stages whose ranking is all ties at either record (tau undefined), are left out; a record
  where no stage is left has tau NaN. The first record has no tau (nothing to compare).
* A tau >= T (NaN never is) extends a run of consecutive stable records; anything else
  resets it to 0. The iteration stops at the first record where the run has reached
  `patience` records AND at least `min_steps` steps were trained. So the earliest stop is at
  record `patience + 1`.
* Only the stages that the restructure step will change are compared (the caller passes
  them): a frozen or full stage's ranking decides nothing.

The rule is a pure function of the recorded series, so it can be replayed from a
`stats_series.json` (`replay`). In training it sees the all-reduced statistic, which is the
same on every replica and worker, so every worker stops at the same record; with `--seed`
a resumed iteration retrains the same series and stops at the same step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from nac.search.stability import kendall_tau_b, weighted_tau
from nac.spec import arch as arch_lib


@dataclasses.dataclass(frozen=True)
class StopRule:
    """When an iteration's statistics count as stable.

    Attributes:
      tau: the threshold T in (0, 1]; 0 switches the stop off (the fixed window).
      patience: consecutive records with tau >= T needed to stop (>= 1).
      min_steps: no stop before this many steps of the window.
    """

    tau: float = 0.0
    patience: int = 3
    min_steps: int = 0

    def __post_init__(self):
        if not (isinstance(self.tau, (int, float)) and not isinstance(self.tau, bool) and 0 <= self.tau <= 1):
            raise ValueError(f"StopRule.tau: got {self.tau!r}; expected a number in [0, 1] (0: off)")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"StopRule.patience: got {self.patience!r}; expected an integer >= 1")
        if isinstance(self.min_steps, bool) or not isinstance(self.min_steps, int) or self.min_steps < 0:
            raise ValueError(f"StopRule.min_steps: got {self.min_steps!r}; expected an integer >= 0")

    @property
    def enabled(self) -> bool:
        return self.tau > 0


def ranking_tau(stages: Sequence[Sequence[str]], previous: Mapping[str, float], current: Mapping[str, float]):
    """Kendall's tau-b of `current` against `previous`, per stage, weighted by branch count."""
    per_stage = []
    for ids in stages:
        if len(ids) < 2:
            continue
        per_stage.append((len(ids), kendall_tau_b([current[b] for b in ids], [previous[b] for b in ids])))
    return weighted_tau(per_stage)


class StabilityStop:
    """Feeds on the records of one window and says when to stop.

    Args:
      rule: the `StopRule`.
      stages: per stage, the branch ids (`Cell<k>/Branch<N>`) whose ranking counts.

    Attributes:
      steps, taus: the records seen and tau at each (None at the first record).
      stop_step: the step at which `update` first returned True, else None.
    """

    def __init__(self, rule: StopRule, stages: Sequence[Sequence[str]]):
        self.rule = rule
        self.stages = [list(ids) for ids in stages]
        self.steps: list[int] = []
        self.taus: list[float | None] = []
        self.stop_step: int | None = None
        self._previous: dict[str, float] | None = None
        self._run = 0

    def update(self, step: int, values: Mapping[str, float]) -> bool:
        """Takes the running statistic `{branch: value}` after `step` steps; True: stop here."""
        current = {b: float(values[b]) for ids in self.stages for b in ids}
        tau = None if self._previous is None else ranking_tau(self.stages, self._previous, current)
        self._previous = current
        self.steps.append(int(step))
        self.taus.append(tau)
        if tau is not None and not math.isnan(tau) and tau >= self.rule.tau:
            self._run += 1
        else:
            self._run = 0
        stop = (
            self.rule.enabled
            and self.stop_step is None
            and self._run >= self.rule.patience
            and step >= self.rule.min_steps
        )
        if stop:
            self.stop_step = int(step)
        return stop

    def to_dict(self) -> dict:
        """The record for `metrics.json` (NaN taus as None, JSON has no NaN)."""
        return {
            "tau_threshold": self.rule.tau,
            "patience": self.rule.patience,
            "min_steps": self.rule.min_steps,
            "steps": list(self.steps),
            "tau": [None if t is None or math.isnan(t) else t for t in self.taus],
            "stop_step": self.stop_step,
        }


def replay(rule: StopRule, stages, steps: Sequence[int], series: Mapping[str, Sequence[float]]):
    """Where `rule` would have stopped a recorded series: (stop step or None, StabilityStop).

    `series` is `{branch: [value per record]}` (a `stats_series.json`'s `values`).
    """
    stop = StabilityStop(rule, stages)
    for t, step in enumerate(steps):
        if stop.update(step, {b: series[b][t] for ids in stop.stages for b in ids}):
            break
    return stop.stop_step, stop


def values_at(steps: Sequence[int], series: Mapping[str, Sequence[float]], step: int) -> dict[str, float]:
    """The recorded `{branch: value}` at `step` (a replayed decision's statistic)."""
    t = list(steps).index(step)
    return {b: vs[t] for b, vs in series.items()}


def decisive_stages(network, construction, maxlayersperstage) -> list[list[str]]:
    """Per stage the restructure step will change, its branch ids (the rankings that count).

    A stage is restructured when `construction[s]` and it has at most `maxlayersperstage[s]`
    layers (`nac.restructure`); `network` is a `nac.spec.arch.Network`.
    """
    return [
        [arch_lib.BranchId(k, key).original for k, cell in stage for key, _ in cell.branches]
        for s, stage in enumerate(network.stages())
        if construction[s] and len(stage) <= maxlayersperstage[s]
    ]


def default_min_steps(window: int) -> int:
    """The default `--stats_stop_min_steps`: a quarter of the window, rounded up."""
    return math.ceil(window / 4)
