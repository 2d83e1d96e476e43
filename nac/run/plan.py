"""The plan of a run: its steps, in order (pure Python, no TensorFlow).

A construction trains iterations `iter_0 .. iter_<N-1>` and then `final`; a random run trains
`random_0 .. random_<M-1>`; oneshot and envelope runs train `final` alone. Each `PlanStep`
carries its kind, its index, its seed (derived from the run's seed and its name), its budget
in training steps, and the step whose trained weights it inherits (`--inherit_weights`).
"""

from __future__ import annotations

import dataclasses

from nac.run.networks import derive_seed

ITERATION, FINAL, RANDOM = "iter", "final", "random"


@dataclasses.dataclass(frozen=True)
class PlanStep:
    """One trained network of a run.

    Attributes:
      kind: `iter` (a construction iteration), `final` or `random` (a random baseline).
      index: The iteration or baseline number; for `final`, its position in the plan.
      seed: The step's seed (`nac.run.networks.derive_seed`).
      budget: Planned training steps.
      parent: The name of the step whose trained weights this one inherits, or None.
    """

    kind: str
    index: int
    seed: int
    budget: int
    parent: str | None = None

    @property
    def name(self) -> str:
        """The step's directory name: `iter_<i>`, `final`, `random_<j>`."""
        return FINAL if self.kind == FINAL else f"{self.kind}_{self.index}"

    @property
    def is_iteration(self) -> bool:
        return self.kind == ITERATION


def make_plan(config) -> list[PlanStep]:
    """The steps of the run `config` (a `nac.run.runconfig.RunConfig`), in order."""
    seed = config.runtime.seed
    if config.mode == "random":
        budget = config.final_budget()
        return [
            PlanStep(RANDOM, j, derive_seed(seed or 0, f"{RANDOM}_{j}"), budget)
            for j in range(config.search.num_random)
        ]
    steps = []
    if config.mode == "construct":
        inherit = config.search.inherit_weights
        for i in range(config.search.iterations):
            parent = f"{ITERATION}_{i - 1}" if inherit and i > 0 else None
            steps.append(
                PlanStep(
                    ITERATION, i, derive_seed(seed, f"{ITERATION}_{i}"), config.construction_budget(), parent
                )
            )
    parent = steps[-1].name if steps and config.search.inherit_final else None
    steps.append(PlanStep(FINAL, len(steps), derive_seed(seed, FINAL), config.final_budget(), parent))
    return steps
