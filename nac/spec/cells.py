"""The body's types of the architecture spec: ops, branch ids, layers of cells, wideners.

Also the rules that generate a body (the stage-width rule, `envelope_body`, `assemble_body`)
and the original's `network.json` list form. `nac.spec.arch` holds the contract with the paper
and re-exports every public name here.
"""

from __future__ import annotations

import dataclasses
import math
import re

from nac.spec.checks import is_int, lists_to_tuples
from nac.spec.errors import SpecError

# The EnvelopeCell of the paper and of every shipped config.
STANDARD_CELL = (
    ("Branch1", "1x1"),
    ("Branch2", "3x3"),
    ("Branch3", "3x3sep"),
    ("Branch4", "5x5"),
    ("Branch5", "5x5sep"),
    ("Branch6", "7x7sep"),
)

_OP_RE = re.compile(r"^([0-9]+)x([0-9]+)(sep)?$")
_BRANCH_RE = re.compile(r"^Branch([0-9]+)$")
_BRANCH_ID_RE = re.compile(r"^Cell([0-9]+)/(Branch[0-9]+)$")


def require_int(where: str, value, minimum: int = 1) -> int:
    """Returns `value` if it is an integer >= `minimum`, else raises `SpecError` naming `where`."""
    if not is_int(value) or value < minimum:
        raise SpecError.got(where, value, f"expected an integer >= {minimum}")
    return value


@dataclasses.dataclass(frozen=True)
class Op:
    """A branch operator: a K x K convolution, regular or depthwise separable."""

    kernel: int
    separable: bool

    @classmethod
    def parse(cls, text, where: str = "op") -> Op:
        """Parses `KxK` or `KxKsep` (K odd, K >= 1)."""
        match = _OP_RE.match(text) if isinstance(text, str) else None
        if not match or match.group(1) != match.group(2) or int(match.group(1)) % 2 == 0:
            raise SpecError.got(where, text, 'expected "KxK" or "KxKsep" with K odd, e.g. "3x3" or "5x5sep"')
        return cls(int(match.group(1)), bool(match.group(3)))

    def __str__(self) -> str:
        return f"{self.kernel}x{self.kernel}{'sep' if self.separable else ''}"


def branch_number(key: str, where: str = "branch key") -> int:
    """Returns N of a branch key `Branch<N>`."""
    match = _BRANCH_RE.match(key) if isinstance(key, str) else None
    if not match:
        raise SpecError.got(where, key, 'expected a branch key "Branch<N>", e.g. "Branch3"')
    return int(match.group(1))


@dataclasses.dataclass(frozen=True)
class BranchId:
    """Names one branch: body entry `cell` (1-based, wideners counted) and its key."""

    cell: int
    key: str

    @property
    def original(self) -> str:
        """The original's name, e.g. `Cell12/Branch3`."""
        return f"Cell{self.cell}/{self.key}"

    @property
    def keras(self) -> str:
        """A Keras-safe name, e.g. `cell12_branch3`."""
        return f"cell{self.cell}_{self.key.lower()}"

    @classmethod
    def parse(cls, text: str, where: str = "branch id") -> BranchId:
        match = _BRANCH_ID_RE.match(text) if isinstance(text, str) else None
        if not match:
            raise SpecError.got(where, text, 'expected "Cell<k>/Branch<N>", e.g. "Cell12/Branch3"')
        return cls(int(match.group(1)), match.group(2))

    def __str__(self) -> str:
        return self.original


@dataclasses.dataclass(frozen=True)
class Cell:
    """A layer of cells: branches (key, op) in sorted key order, `outputs`, skip `inputs`.

    `inputs` is None (no skip), "all", or a tuple of tensor indices (see the module doc).
    """

    branches: tuple[tuple[str, str], ...]
    outputs: int
    inputs: None | str | tuple[int, ...] = None

    def __post_init__(self):
        object.__setattr__(self, "branches", tuple(sorted(tuple(b) for b in self.branches)))
        lists_to_tuples(self, ("inputs",))
        # The cell validates its branches once and keeps them parsed (not a field: equality,
        # hashing and the JSON forms stay the op strings).
        parsed = []
        for key, op in self.branches:
            branch_number(key, "cell branch key")
            parsed.append((key, Op.parse(op, f"cell branch {key}")))
        object.__setattr__(self, "_branch_ops", tuple(parsed))

    def branch_ops(self) -> tuple[tuple[str, Op], ...]:
        """(key, `Op`) of every branch, in sorted key order."""
        return self._branch_ops

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    @property
    def branch_width(self) -> int:
        """Channels each branch outputs: `outputs // branches`."""
        return self.outputs // len(self.branches)

    @property
    def width(self) -> int:
        """The layer's real output width: `branches * (outputs // branches)`."""
        return self.branch_width * len(self.branches)

    def ops(self) -> tuple[Op, ...]:
        return tuple(op for _, op in self._branch_ops)

    def to_original(self) -> dict:
        entry = {"filters": dict(self.branches), "outputs": self.outputs}
        if self.inputs is not None:
            entry["inputs"] = self.inputs if isinstance(self.inputs, str) else list(self.inputs)
        return entry


@dataclasses.dataclass(frozen=True)
class Widener:
    """Halves height and width and adds `channelwidth` channels (see `nac.net.model`)."""

    def to_original(self) -> dict:
        return {"widener": {}}


Entry = Cell | Widener


def _parse_cell(entry: dict, where: str) -> Cell:
    unknown = set(entry) - {"filters", "outputs", "inputs"}
    if unknown:
        raise SpecError.got(
            f"{where}.{sorted(unknown)[0]}",
            entry[sorted(unknown)[0]],
            'a layer takes only "filters", "outputs" and "inputs"',
        )
    if "filters" not in entry:
        raise SpecError.got(where, entry, 'a layer needs "filters", e.g. {"Branch1": "1x1"}')
    filters = entry["filters"]
    if not isinstance(filters, dict):
        raise SpecError.got(f"{where}.filters", filters, 'expected an object such as {"Branch1": "1x1"}')
    if "outputs" not in entry:
        raise SpecError.got(where, entry, 'a layer needs "outputs", an integer channel count')
    branches = []
    for key, op in filters.items():
        branch_number(key, f"{where}.filters key")
        Op.parse(op, f"{where}.filters.{key}")
        branches.append((key, op))
    return Cell(tuple(branches), entry["outputs"], entry.get("inputs"))


def body_from_original(value, where: str = "arch") -> tuple[Entry, ...]:
    """Reads the original's `network.json` list into body entries (validated by `Network`)."""
    if not isinstance(value, list):
        raise SpecError.got(
            where,
            value if not isinstance(value, dict) else "{...}",
            "expected a JSON list of layers and wideners",
        )
    body = []
    for i, entry in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise SpecError.got(here, entry, 'expected {"filters": ..., "outputs": ...} or {"widener": {}}')
        if "widener" in entry:
            if set(entry) != {"widener"}:
                extra = sorted(set(entry) - {"widener"})[0]
                raise SpecError.got(f"{here}.{extra}", entry[extra], "a widener takes no other keys")
            body.append(Widener())
        else:
            body.append(_parse_cell(entry, here))
    return tuple(body)


def body_to_original(body) -> list:
    """Writes body entries as the original's `network.json` list."""
    return [entry.to_original() for entry in body]


def body_stages(body) -> list[list[tuple[int, Cell]]]:
    """Per stage of a body, its (1-based body index, Cell) pairs; wideners split stages."""
    stages: list[list[tuple[int, Cell]]] = [[]]
    for k, entry in enumerate(body, start=1):
        if isinstance(entry, Widener):
            stages.append([])
        else:
            stages[-1].append((k, entry))
    return stages


def stage_outputs(base_width: int, stage: int, num_layers: int, parameter_limit: bool) -> list[int]:
    """`outputs` of each layer of stage `stage` (0-based), as the original generates them.

    W = 2**stage * base_width. Without a parameter limit every layer gets W. With one, the last
    layer gets W and the others `int(W / (N - 2) * (sqrt(N - 1) - 1))`, N = `num_layers`.

    Raises:
      SpecError: a parameter limit on a stage of exactly two layers (the original divides by
        zero there).
    """
    width = 2**stage * base_width
    if not parameter_limit:
        return [width] * num_layers
    if num_layers == 2:
        raise SpecError(
            f"parameterlimits[{stage}]: true is undefined for a stage of 2 layers (the original "
            "divides by zero there); set it to false or use a stage with 1 or 3+ layers"
        )
    other = int(width / (num_layers - 2) * (math.sqrt(num_layers - 1) - 1))
    return [other] * (num_layers - 1) + [width]


def envelope_body(
    layers_per_stage, cell=STANDARD_CELL, base_width: int = 128, parameter_limits=None, skip: bool = False
) -> tuple[Entry, ...]:
    """Generates an EnvelopeNet body: full EnvelopeCells, wideners between stages."""
    stages = [[tuple(cell)] * n for n in layers_per_stage]
    return assemble_body(stages, base_width, parameter_limits, skip)


def assemble_body(stages, base_width: int, parameter_limits=None, skip: bool = False):
    """Joins per-stage layers with wideners into cells, with `outputs` from the stage-width rule.

    Args:
      stages: a list per stage of layers, each its branches `((key, op), ...)`.
      base_width: C of the stage-width rule (`Stem.base_width()`).
      parameter_limits: a bool per stage (default all False).
      skip: set `inputs: "all"` on every cell (DenseNet-style skip connections).

    Returns:
      The body tuple.
    """
    limits = list(parameter_limits) if parameter_limits is not None else [False] * len(stages)
    body: list[Entry] = []
    for s, cells in enumerate(stages):
        if s:
            body.append(Widener())
        outputs = stage_outputs(base_width, s, len(cells), limits[s])
        for branches, out in zip(cells, outputs):
            body.append(Cell(tuple(branches), out, "all" if skip else None))
    return tuple(body)
