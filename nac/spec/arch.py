"""The EnvelopeNet architecture spec: immutable, validated, pure Python (no TensorFlow).

Contract with the paper and the original code (`CiscoAI/envelopenets`, configs v2.0):

* A network is a stem, a body and a head. The body is a sequence of *layers of cells* and
  *wideners*; wideners split the body into *stages*. The paper's notation `C/n1-n2-.../M`
  gives the stem's output width C, the layers per stage n_i and the EnvelopeCell size M.
* A layer of cells (`Cell`) is an EnvelopeCell or what pruning left of it: branches keyed
  `Branch<N>` (any N >= 0, never renumbered; an op may repeat, as in random nets), each an op
  `KxK` (regular convolution) or `KxKsep` (depthwise K x K followed by a 1 x 1 pointwise
  convolution), K odd. Branches run on the same input and are concatenated in sorted key order
  (Python string order, as the original's `sorted()`); each outputs `outputs // branches`
  channels, so the layer's real width is `branches * (outputs // branches)`.
* `outputs` in an architecture file is authoritative. When nac *generates* a body (from the
  notation, from a config, or in the restructure step) it sets `outputs` per stage s from
  `W = 2**s * C_base` (`stage_outputs`), C_base being the `outputs` of the last stem branch
  that has one (128 for net A, 192 for net B, 96 for the ImageNet stem; a notation's C
  for bodies generated from a notation).
* Skip connections (`inputs`): tensors are numbered 0 = stem output and i = output of body
  entry i (1-based, wideners counted). Before the cell at entry k, whose normal input is
  x = tensor k-1, `"all"` concatenates x with tensors 0..k-2, and a list concatenates x with
  the listed tensors; a list may not point at entry k or later.
* Branch ids: `Cell<k>/<BranchKey>` as the original logs them (k = 1-based body index, wideners
  counted: net A has Cell1..Cell10, widener 11, Cell12, ...), and a Keras-safe form
  `cell<k>_branch<N>` (Keras layer names may not contain "/").

The original's JSON formats are read and written unchanged: `network.json` (a list of
`{"filters": {...}, "outputs": N, "inputs": ...}` and `{"widener": {}}`), and the `initcell`
and `classificationcell` blocks of its configs (see `nac.spec.config` for whole config files).
Every invalid input raises `SpecError` with one line naming the field, the value and what is
allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator

from nac.spec.cells import (  # noqa: F401 (re-exported: the spec's public names)
    STANDARD_CELL,
    BranchId,
    Cell,
    Entry,
    Op,
    Widener,
    assemble_body,
    body_from_original,
    body_stages,
    body_to_original,
    branch_number,
    envelope_body,
    require_int,
    stage_outputs,
)
from nac.spec.checks import is_int
from nac.spec.errors import SpecError
from nac.spec.stemhead import (  # noqa: F401 (re-exported: the spec's public names)
    IMAGENET_CLASSES,
    IMAGENET_KEEP_PROB,
    IMAGENET_STEM_WIDTHS,
    LRN_ALPHA,
    LRN_BETA,
    LRN_BIAS,
    LRN_DEPTH_RADIUS,
    Head,
    HeadBlock,
    Stem,
    StemBlock,
)

_NOTATION_RE = re.compile(r"^\s*([0-9]+)\s*/\s*([0-9]+(?:\s*-\s*[0-9]+)*)\s*/\s*([0-9]+)\s*$")

# The "format" of nac's network JSON (`Network.to_dict`).
NETWORK_FORMAT = "nac-network/1"


@dataclasses.dataclass(frozen=True)
class Network:
    """A whole EnvelopeNet: stem, body (cells and wideners) and head. Validated on creation."""

    body: tuple[Entry, ...]
    stem: Stem = dataclasses.field(default_factory=Stem.conv1x1)
    head: Head = dataclasses.field(default_factory=Head.default)
    input_channels: int = 3

    def __post_init__(self):
        object.__setattr__(self, "body", tuple(self.body))
        self._validate()

    def _validate(self):
        require_int("input_channels", self.input_channels)
        if not self.body:
            raise SpecError.got("arch", [], "an architecture needs at least one layer")
        for k, entry in enumerate(self.body, start=1):
            where = f"arch[{k - 1}]"
            if isinstance(entry, Widener):
                if k == 1 or k == len(self.body) or isinstance(self.body[k - 2], Widener):
                    raise SpecError.got(
                        where, entry.to_original(), "a widener must sit between two layers (no empty stage)"
                    )
                continue
            if not isinstance(entry, Cell):
                raise SpecError.got(where, str(entry), "expected a layer (Cell) or a Widener")
            if not entry.branches:
                raise SpecError.got(f"{where}.filters", {}, "a layer needs at least one branch")
            for key, op in entry.branches:
                branch_number(key, f"{where}.filters key")
                Op.parse(op, f"{where}.filters.{key}")
            if not is_int(entry.outputs) or entry.outputs < len(entry.branches):
                raise SpecError.got(
                    f"{where}.outputs",
                    entry.outputs,
                    f"expected an integer >= the layer's {len(entry.branches)} branches",
                )
            inputs = entry.inputs
            if inputs is None or inputs == "all":
                continue
            if not isinstance(inputs, tuple) or not all(is_int(i) for i in inputs):
                raise SpecError.got(f"{where}.inputs", inputs, 'expected "all" or a list of tensor indices')
            for i in inputs:
                if not 0 <= i <= k - 1:
                    raise SpecError.got(
                        f"{where}.inputs",
                        list(inputs),
                        f"indices must point back: 0 (stem) .. {k - 1} (entry {k - 1}) for entry {k}",
                    )

    # -- structure -------------------------------------------------------------------------

    def stages(self) -> list[list[tuple[int, Cell]]]:
        """Per stage, the (1-based body index, Cell) pairs."""
        return body_stages(self.body)

    @property
    def num_stages(self) -> int:
        return 1 + sum(isinstance(e, Widener) for e in self.body)

    def cells(self) -> Iterator[tuple[int, Cell]]:
        """(1-based body index, Cell) for every layer of cells, in network order."""
        for k, entry in enumerate(self.body, start=1):
            if isinstance(entry, Cell):
                yield k, entry

    def branch_ids(self) -> list[BranchId]:
        """Every branch in network order (the original's log order)."""
        return [BranchId(k, key) for k, cell in self.cells() for key, _ in cell.branches]

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def layers_per_stage(self) -> list[int]:
        return [len(stage) for stage in self.stages()]

    def branches_per_stage(self) -> list[int]:
        return [sum(c.num_branches for _, c in stage) for stage in self.stages()]

    def distinct_ops(self) -> int:
        return len({op for _, cell in self.cells() for _, op in cell.branches})

    def notation(self, cell_size: int | None = None) -> str:
        """The paper's `C/n1-n2-.../M`: C the stem's real output width, M the EnvelopeCell
        size (`cell_size`, else the number of distinct ops in the body)."""
        m = cell_size if cell_size is not None else self.distinct_ops()
        c = self.stem.out_channels(self.input_channels)
        return f"{c}/{'-'.join(map(str, self.layers_per_stage()))}/{m}"

    # -- serialisation ---------------------------------------------------------------------

    def arch_json(self) -> list:
        """The body as the original's `network.json` list."""
        return body_to_original(self.body)

    def to_dict(self) -> dict:
        """nac's self-contained form: the original's arch, initcell and classificationcell."""
        return {
            "format": NETWORK_FORMAT,
            "input_channels": self.input_channels,
            "initcell": self.stem.to_original(),
            "classificationcell": self.head.to_original(),
            "arch": self.arch_json(),
        }

    @classmethod
    def from_dict(cls, value, where: str = "network") -> Network:
        if not isinstance(value, dict) or value.get("format") != NETWORK_FORMAT:
            raise SpecError.got(where, "...", 'expected an object with "format": "nac-network/1"')
        return cls(
            body_from_original(value.get("arch"), f"{where}.arch"),
            Stem.from_original(value.get("initcell"), f"{where}.initcell"),
            Head.from_original(value.get("classificationcell"), f"{where}.classificationcell"),
            value.get("input_channels", 3),
        )

    def fingerprint(self) -> str:
        """A stable hash of the whole spec (sha256 of its canonical JSON)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def stem_for_body(body, name: str = "conv1x1", width: int | None = None) -> Stem:
    """The stem preset `name` for a bare `network.json` body, which does not record its stem.

    C is `width` if given, else the `outputs` of the first stage's last layer (W of stage 0
    in the stage-width rule, i.e. the stem's width). The ImageNet stem is fixed (no C).
    """
    if name == "imagenet":
        return Stem.imagenet()
    if width is None:
        first = next((i for i, e in enumerate(body) if isinstance(e, Widener)), len(body))
        width = body[first - 1].outputs if first else 128
    return Stem.preset(name, width)


def head_for_stem(name: str, num_classes: int) -> Head:
    """The default head of a stem preset: keep 0.8 (net A's), or the original ImageNet
    config's keep 0.7 for the `imagenet` stem."""
    return Head.default(num_classes, IMAGENET_KEEP_PROB if name == "imagenet" else 0.8)


def parse_notation(text: str) -> tuple[int, tuple[int, ...], int]:
    """Parses `C/n1-n2-.../M` into (C, (n1, n2, ...), M)."""
    match = _NOTATION_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise SpecError.got("notation", text, 'expected "C/n1-n2-.../M", e.g. "128/10-1-1-1/6"')
    c = int(match.group(1))
    layers = tuple(int(n) for n in match.group(2).split("-"))
    m = int(match.group(3))
    if c < 1 or m < 1 or min(layers) < 1:
        raise SpecError.got("notation", text, "C, every n_i and M must be >= 1")
    return c, layers, m


def envelope_cell(m: int) -> tuple[tuple[str, str], ...]:
    """The first `m` ops of the paper's EnvelopeCell (1x1, 3x3, 3x3sep, 5x5, 5x5sep, 7x7sep)."""
    if not 1 <= m <= len(STANDARD_CELL):
        raise SpecError.got("notation M", m, f"expected 1..{len(STANDARD_CELL)} (the EnvelopeCell's ops)")
    return STANDARD_CELL[:m]


def network_from_notation(
    text: str, stem: str = "conv1x1", skip: bool = False, input_channels: int = 3, num_classes: int = 10
) -> Network:
    """Builds the EnvelopeNet `C/n1-n2-.../M` with a stem preset and its default head.

    `outputs` follow the stage-width rule W = 2**s * C. For the conv stems C is also the
    stem's width; the ImageNet stem is the original's, fixed (288 channels) whatever C.
    """
    c, layers, m = parse_notation(text)
    stem_spec = Stem.preset(stem, c)
    body = envelope_body(layers, envelope_cell(m), c, skip=skip)
    return Network(body, stem_spec, head_for_stem(stem, num_classes), input_channels)
