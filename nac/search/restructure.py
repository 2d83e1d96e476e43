"""The restructure step of EnvelopeNet construction: `(network, stats, policy) -> network`.

Pure Python, no TensorFlow. It makes the decisions of the original code (`nac_alg.py`,
`construct_envelopenet_bystages`, configs v2.0) on the same statistics, and writes the same
architecture file.

Contract, per stage s (0-based; stages are split by wideners):

* The stage is *restructured* only if `construction[s]` is true and it has at most
  `maxlayersperstage[s]` layers (so a stage can reach `maxlayersperstage[s] + 1` layers).
  Otherwise its layers are copied unchanged: same branches, same keys, same `inputs`.
* Restructuring sorts the stage's branches by their featuremap statistic, ascending (prune
  the least active), or descending when `worstcase` (prune the most active). The sort is
  stable and starts from network order (`Network.branch_ids()`: body order, then sorted
  branch keys), so ties keep network order, in both directions.
* The sorted list is walked once. A branch is pruned unless it is the last branch left in its
  layer, counting the branches pruned so far (a branch that was skipped does not count). The
  walk stops once `max(1, min(maxfilterprune, floor(branches_in_stage * prune_fraction)))`
  branches are pruned (`prune_fraction` is the original's hard-coded 1/3; the original checks
  the limit only after a prune, hence the floor of 1). If no branch can be pruned (every
  layer has one branch) the step fails with `NothingToPruneError`.
* A full EnvelopeCell (every `(key, op)` of `envelopecell`) is appended at the stage's tail.
  No layer is ever removed and branch keys are never renumbered, so later body entries only
  move to higher indices.
* `outputs` is recomputed for *every* stage, restructured or not (the original calls
  `set_outputs` on each stage): `arch.stage_outputs(C, s, N, parameterlimits[s])`, with C the
  stem's base width and N the stage's new layer count. A parameter limit on a stage that ends
  with exactly two layers is a `RestructureError` (the original divides by zero there).
* Wideners are placed between stages. With `skip`, every layer gets `"inputs": "all"`.
  Without it, existing layers keep their `inputs` (the original copies layers verbatim) and
  the added cell has none.

Statistics are `{"Cell<k>/<BranchKey>": value}` on any scale (the order matters, not the
scale). They are checked strictly before anything is decided: a key that is not a branch of
the network, a value that is not a finite number, or a branch without a value in a stage that
is restructured is a `StatsError`. Branches of stages that are copied unchanged may lack a
value. The step is deterministic: equal inputs give equal outputs.

The command `python -m nac.restructure` (`nac.cli.restructure`) runs one step on files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from nac.spec import arch as arch_lib
from nac.spec.checks import is_int, lists_to_tuples
from nac.spec.config import OriginalConfig
from nac.spec.errors import NothingToPruneError, RestructureError, SpecError, StatsError

PROG = "nac.restructure"

RESTRUCTURED = "restructured"
FROZEN = "frozen"
FULL = "full"


@dataclasses.dataclass(frozen=True)
class Policy:
    """Every threshold of the restructure step (the config's `envelopenet` section).

    Attributes:
      construction: per stage, whether the stage is restructured at all.
      maxlayersperstage: per stage, the largest layer count that is still restructured.
      maxfilterprune: the most branches pruned per stage and step (the paper's maxrestructure).
      prune_fraction: at most `floor(branches_in_stage * prune_fraction)` branches are pruned
        per stage and step (but always at least one); the original's 1/3.
      worstcase: prune the branches with the *largest* statistic (the paper's worst case).
      envelopecell: the (key, op) pairs of the EnvelopeCell appended to each restructured stage.
      parameterlimits: per stage, the parameter-limiting `outputs` rule (default: all false).
      skip: give every layer `"inputs": "all"` (DenseNet-style skip connections).
    """

    construction: tuple[bool, ...]
    maxlayersperstage: tuple[int, ...]
    maxfilterprune: int = 6
    prune_fraction: float = 1.0 / 3.0
    worstcase: bool = False
    envelopecell: tuple[tuple[str, str], ...] = arch_lib.STANDARD_CELL
    parameterlimits: tuple[bool, ...] | None = None
    skip: bool = False

    def __post_init__(self):
        lists_to_tuples(self, ("construction", "maxlayersperstage", "envelopecell", "parameterlimits"))
        if isinstance(self.envelopecell, dict):
            object.__setattr__(self, "envelopecell", tuple(sorted(self.envelopecell.items())))
        elif isinstance(self.envelopecell, tuple):
            pairs = tuple(tuple(p) if isinstance(p, list) else p for p in self.envelopecell)
            object.__setattr__(self, "envelopecell", pairs)
        self._validate()

    def _validate(self):
        flags = "a tuple of booleans, one per stage"
        if not isinstance(self.construction, tuple) or not all(
            isinstance(v, bool) for v in self.construction
        ):
            raise RestructureError.got("policy.construction", self.construction, f"expected {flags}")
        if not isinstance(self.maxlayersperstage, tuple) or not all(
            is_int(v) and v >= 1 for v in self.maxlayersperstage
        ):
            raise RestructureError.got(
                "policy.maxlayersperstage",
                self.maxlayersperstage,
                "expected a tuple of integers >= 1, one per stage",
            )
        if self.parameterlimits is not None and (
            not isinstance(self.parameterlimits, tuple)
            or not all(isinstance(v, bool) for v in self.parameterlimits)
        ):
            raise RestructureError.got("policy.parameterlimits", self.parameterlimits, f"expected {flags}")
        if not is_int(self.maxfilterprune) or self.maxfilterprune < 1:
            raise RestructureError.got(
                "policy.maxfilterprune", self.maxfilterprune, "expected an integer >= 1"
            )
        fraction = self.prune_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise RestructureError.got(
                "policy.prune_fraction", fraction, "expected a number in (0, 1], e.g. 1/3"
            )
        if not isinstance(self.worstcase, bool):
            raise RestructureError.got("policy.worstcase", self.worstcase, "expected True or False")
        if not isinstance(self.skip, bool):
            raise RestructureError.got("policy.skip", self.skip, "expected True or False")
        cell = self.envelopecell
        if not isinstance(cell, tuple) or not cell:
            raise RestructureError.got(
                "policy.envelopecell", cell, 'expected (key, op) pairs such as (("Branch1", "1x1"),)'
            )
        try:
            for pair in cell:
                if not (isinstance(pair, tuple) and len(pair) == 2):
                    raise RestructureError.got(
                        "policy.envelopecell", pair, 'expected a (key, op) pair such as ("Branch1", "1x1")'
                    )
                arch_lib.branch_number(pair[0], "policy.envelopecell key")
                arch_lib.Op.parse(pair[1], f"policy.envelopecell.{pair[0]}")
        except SpecError as e:
            raise RestructureError(str(e)) from None
        keys = [key for key, _ in cell]
        if len(set(keys)) != len(keys):
            raise RestructureError.got("policy.envelopecell", keys, "expected distinct branch keys")

    @classmethod
    def from_config(cls, config: OriginalConfig) -> Policy:
        """The policy of an original v2.0 config's `envelopenet` section.

        Raises:
          RestructureError: the config has no `envelopenet` section.
        """
        e = config.envelopenet
        if e is None:
            raise RestructureError(
                f'config: no "envelopenet" section (parameters.algorithm is '
                f'"{config.parameters.algorithm}"); the restructure step needs a construction '
                'config with an "envelopenet" section, e.g. network.cons-exp-3.bc.json'
            )
        return cls(
            construction=tuple(e.construction),
            maxlayersperstage=tuple(e.maxlayersperstage),
            maxfilterprune=e.maxfilterprune,
            worstcase=e.worstcase,
            envelopecell=tuple(e.envelopecell),
            parameterlimits=tuple(e.parameterlimits),
            skip=e.skip,
        )

    def limits(self, num_stages: int) -> tuple[bool, ...]:
        """`parameterlimits`, or all false when it is not given."""
        if self.parameterlimits is None:
            return (False,) * num_stages
        return self.parameterlimits

    def check(self, network: arch_lib.Network):
        """Checks that every per-stage field has one value per stage of `network`.

        Raises:
          RestructureError: naming the field, its value and the fix.
        """
        n = network.num_stages
        fields = [("construction", self.construction), ("maxlayersperstage", self.maxlayersperstage)]
        if self.parameterlimits is not None:
            fields.append(("parameterlimits", self.parameterlimits))
        for name, value in fields:
            if len(value) != n:
                raise RestructureError(
                    f"policy.{name}: got {len(value)} values {list(value)} for a network of {n} "
                    f"stages ({n - 1} wideners); give exactly one per stage (a config's "
                    f"envelopenet.{name})"
                )

    def prune_limit(self, branches_in_stage: int) -> int:
        """How many branches a stage of `branches_in_stage` branches loses at most."""
        return max(1, min(self.maxfilterprune, int(self.prune_fraction * float(branches_in_stage))))


@dataclasses.dataclass(frozen=True)
class StageReport:
    """What the restructure step did to one stage.

    Attributes:
      stage: the stage index (0-based).
      action: `"restructured"`, `"frozen"` (construction is false) or `"full"` (the stage has
        more than `maxlayersperstage` layers).
      layers_before: the stage's layer count in the input network.
      layers_after: the stage's layer count in the output network.
      pruned: the pruned branches, as named in the *input* network, in pruning order.
      prune_limit: the most branches the stage could lose (0 unless restructured).
      added_cell: the 1-based body index of the appended EnvelopeCell in the *output*
        network, or None.
    """

    stage: int
    action: str
    layers_before: int
    layers_after: int
    pruned: tuple[arch_lib.BranchId, ...] = ()
    prune_limit: int = 0
    added_cell: int | None = None

    def describe(self) -> str:
        """One line for people, e.g. `stage 0: pruned 6 of at most 6 (...); added Cell11`."""
        if self.action == FROZEN:
            return f"stage {self.stage}: unchanged (construction is false)"
        if self.action == FULL:
            return f"stage {self.stage}: unchanged ({self.layers_before} layers, above its maximum)"
        names = ", ".join(b.original for b in self.pruned)
        return (
            f"stage {self.stage}: pruned {len(self.pruned)} of at most {self.prune_limit} "
            f"({names}); added Cell{self.added_cell}"
        )


@dataclasses.dataclass(frozen=True)
class RestructureReport:
    """What the restructure step did, for summaries and structure plots.

    Attributes:
      stages: one `StageReport` per stage.
      cell_map: `(old index, new index)` for every layer of the input network (1-based body
        indices, wideners counted): where each layer went in the output network.
    """

    stages: tuple[StageReport, ...]
    cell_map: tuple[tuple[int, int], ...]

    @property
    def pruned(self) -> tuple[arch_lib.BranchId, ...]:
        """Every pruned branch, as named in the input network."""
        return tuple(b for s in self.stages for b in s.pruned)

    @property
    def added_cells(self) -> tuple[int, ...]:
        """Body indices (in the output network) of the appended EnvelopeCells."""
        return tuple(s.added_cell for s in self.stages if s.added_cell is not None)

    def new_index(self, old_index: int) -> int:
        """The output network's body index of the input network's layer `old_index`."""
        for old, new in self.cell_map:
            if old == old_index:
                return new
        raise KeyError(old_index)

    def to_dict(self) -> dict:
        """A JSON-ready form."""
        return {
            "stages": [
                {
                    "stage": s.stage,
                    "action": s.action,
                    "layers_before": s.layers_before,
                    "layers_after": s.layers_after,
                    "pruned": [b.original for b in s.pruned],
                    "prune_limit": s.prune_limit,
                    "added_cell": s.added_cell,
                }
                for s in self.stages
            ],
            "cell_map": [list(pair) for pair in self.cell_map],
        }


def _check_stats(network: arch_lib.Network, stats: Mapping[str, float], active: set[int]) -> dict[str, float]:
    """Validates `stats` against `network`; returns `{branch id: value}` as floats."""
    if not isinstance(stats, Mapping):
        raise StatsError(
            f"stats: got {type(stats).__name__}; expected a mapping "
            '{"Cell<k>/Branch<N>": value} such as a parsed stats.json'
        )
    ids = network.branch_ids()
    known = {b.original for b in ids}
    values: dict[str, float] = {}
    for key, value in stats.items():
        name = key.original if isinstance(key, arch_lib.BranchId) else key
        if name not in known:
            raise StatsError(
                f"stats: {name!r} is not a branch of the architecture; pass the statistics "
                "of this architecture's training run (keys Cell<k>/Branch<N> of its layers)"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StatsError(f"stats: {name} has value {value!r}, not a number; give a finite number")
        if not math.isfinite(value):
            raise StatsError(f"stats: {name} has value {value}; give a finite number")
        values[name] = float(value)
    stage_of = {k: s for s, stage in enumerate(network.stages()) for k, _ in stage}
    for b in ids:
        if stage_of[b.cell] in active and b.original not in values:
            raise StatsError(
                f"stats: {b.original} has no value, but its stage {stage_of[b.cell]} is "
                "restructured; pass statistics for every branch of the trained architecture"
            )
    return values


def _select_pruned(stage, values, policy: Policy) -> tuple[list[arch_lib.BranchId], int]:
    """The branches of one stage to prune, in pruning order, and the stage's prune limit."""
    ids = [arch_lib.BranchId(k, key) for k, cell in stage for key, _ in cell.branches]
    order = sorted(ids, key=lambda b: values[b.original], reverse=policy.worstcase)
    limit = policy.prune_limit(len(ids))
    remaining = {k: cell.num_branches for k, cell in stage}
    pruned: list[arch_lib.BranchId] = []
    for branch in order:
        if len(pruned) >= limit:
            break
        if remaining[branch.cell] > 1:
            pruned.append(branch)
            remaining[branch.cell] -= 1
    return pruned, limit


def _stage_layers(s: int, stage, values, policy: Policy, restructured: bool):
    """A stage's layers after the step as (branches, skip inputs), the pruned branches and the
    prune limit: as they were, or (`restructured`) pruned with an EnvelopeCell appended."""
    cells = [(cell.branches, cell.inputs) for _, cell in stage]  # (branches, skip inputs)
    pruned: list[arch_lib.BranchId] = []
    limit = 0
    if restructured:
        pruned, limit = _select_pruned(stage, values, policy)
        if not pruned:
            raise NothingToPruneError(
                f"stage {s}: nothing to prune, every one of its {len(stage)} layers has a "
                f"single branch; set construction[{s}] to false or start from wider layers"
            )
        gone = set(pruned)
        cells = [
            (
                tuple((key, op) for key, op in cell.branches if arch_lib.BranchId(k, key) not in gone),
                cell.inputs,
            )
            for k, cell in stage
        ]
        cells.append((tuple(policy.envelopecell), None))
    return cells, pruned, limit


def restructure_with_report(
    network: arch_lib.Network, stats: Mapping[str, float], policy: Policy
) -> tuple[arch_lib.Network, RestructureReport]:
    """Applies one restructure step and says what it did (see the module docstring).

    Args:
      network: the trained architecture.
      stats: `{"Cell<k>/<BranchKey>": featuremap statistic}` of its training run.
      policy: the thresholds (`Policy.from_config` reads them from a v2.0 config).

    Returns:
      The restructured network (same stem, head and input channels) and a report.

    Raises:
      RestructureError: the policy does not fit the network, or a parameter limit meets a
        two-layer stage.
      NothingToPruneError: a stage to restructure has one branch in every layer.
      StatsError: the statistics do not match the network.
    """
    policy.check(network)
    stages = network.stages()
    active = {
        s
        for s, stage in enumerate(stages)
        if policy.construction[s] and len(stage) <= policy.maxlayersperstage[s]
    }
    values = _check_stats(network, stats, active)
    base_width = network.stem.base_width()
    limits = policy.limits(len(stages))

    body: list[arch_lib.Entry] = []
    reports: list[StageReport] = []
    cell_map: list[tuple[int, int]] = []
    for s, stage in enumerate(stages):
        if s:
            body.append(arch_lib.Widener())
        cells, pruned, limit = _stage_layers(s, stage, values, policy, s in active)
        try:
            outputs = arch_lib.stage_outputs(base_width, s, len(cells), limits[s])
        except SpecError:
            raise RestructureError(
                f"parameterlimits[{s}]: true is undefined for stage {s}, which has 2 layers "
                "after this step (the original divides by zero there); set it to false or "
                "use a stage that ends with 1 or 3+ layers"
            ) from None
        first = len(body) + 1
        for i, ((branches, cell_inputs), out) in enumerate(zip(cells, outputs)):
            inputs = "all" if policy.skip else cell_inputs
            body.append(arch_lib.Cell(branches, out, inputs))
            if i < len(stage):
                cell_map.append((stage[i][0], first + i))
        reports.append(
            StageReport(
                stage=s,
                action=RESTRUCTURED if s in active else (FULL if policy.construction[s] else FROZEN),
                layers_before=len(stage),
                layers_after=len(cells),
                pruned=tuple(pruned),
                prune_limit=limit,
                added_cell=first + len(stage) if s in active else None,
            )
        )
    try:
        new = arch_lib.Network(tuple(body), network.stem, network.head, network.input_channels)
    except SpecError as e:
        raise RestructureError(f"the restructured architecture is invalid: {e}") from None
    return new, RestructureReport(tuple(reports), tuple(cell_map))


def restructure(network: arch_lib.Network, stats: Mapping[str, float], policy: Policy) -> arch_lib.Network:
    """Applies one restructure step; `restructure_with_report` without the report."""
    return restructure_with_report(network, stats, policy)[0]
