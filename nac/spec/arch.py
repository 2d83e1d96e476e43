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
import math
import re
from collections.abc import Iterator

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
_NOTATION_RE = re.compile(r"^\s*([0-9]+)\s*/\s*([0-9]+(?:\s*-\s*[0-9]+)*)\s*/\s*([0-9]+)\s*$")
_BRANCH_ID_RE = re.compile(r"^Cell([0-9]+)/(Branch[0-9]+)$")

# Local response normalisation of the original stem (tf.nn.lrn arguments).
LRN_DEPTH_RADIUS = 4
LRN_BIAS = 1.0
LRN_ALPHA = 0.001 / 9.0
LRN_BETA = 0.75

# Filters per branch of the three layers of the original's ImageNet stem
# (`configs/v2.0/longruns/network.imgnet-1.json`), and its head's dropout keep probability.
IMAGENET_STEM_WIDTHS = (32, 64, 96)
IMAGENET_KEEP_PROB = 0.7
IMAGENET_CLASSES = 1001


def _require_int(where: str, value, minimum: int = 1) -> int:
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


# ---------------------------------------------------------------------------------------
# Stem and head (the original's `initcell` and `classificationcell`)

_STEM_KINDS = ("conv2d", "max_pool", "lrn", "dropout")
_HEAD_KINDS = ("reduce_mean", "flatten", "dropout", "fc", "fc-final")


@dataclasses.dataclass(frozen=True)
class StemBlock:
    """One stem branch: conv2d (bias + ReLU), max_pool (stride 2), lrn or dropout."""

    kind: str
    kernel_size: tuple[int, int] | None = None
    outputs: int | None = None
    stride: int = 1
    keep_prob: float | None = None

    def to_original(self) -> dict:
        out = {"block": self.kind}
        if self.kernel_size is not None:
            out["kernel_size"] = list(self.kernel_size)
        if self.outputs is not None:
            out["outputs"] = self.outputs
        if self.kind == "conv2d" and self.stride != 1:
            out["stride"] = self.stride
        if self.keep_prob is not None:
            out["keep_prob"] = self.keep_prob
        return out


def _sorted_layers(value, where, what):
    if not isinstance(value, dict) or not value:
        raise SpecError.got(
            where,
            value,
            f'expected a non-empty object {{"Layer0": {{"Branch0": {{"block": ...}}}}}} ({what})',
        )
    layers = []
    for layer_key in sorted(value):
        branches = value[layer_key]
        if not isinstance(branches, dict) or not branches:
            raise SpecError.got(
                f"{where}.{layer_key}", branches, 'expected a non-empty object {"Branch0": {"block": ...}}'
            )
        for branch_key in branches:
            if not isinstance(branches[branch_key], dict):
                raise SpecError.got(
                    f"{where}.{layer_key}.{branch_key}", branches[branch_key], 'expected {"block": ...}'
                )
        layers.append((layer_key, tuple((k, branches[k]) for k in sorted(branches))))
    return layers


def _kernel_size(block, where):
    ks = block.get("kernel_size")
    if is_int(ks):
        ks = [ks, ks]
    if not (isinstance(ks, list) and len(ks) == 2 and all(is_int(k) and k >= 1 for k in ks)):
        raise SpecError.got(f"{where}.kernel_size", ks, "expected [height, width] of positive integers")
    return (ks[0], ks[1])


def _keep_prob(block, where):
    kp = block.get("keep_prob")
    if isinstance(kp, bool) or not isinstance(kp, (int, float)) or not 0 < kp <= 1:
        raise SpecError.got(f"{where}.keep_prob", kp, "expected a number in (0, 1]")
    return float(kp)


@dataclasses.dataclass(frozen=True)
class Stem:
    """The initial cell: layers (in sorted key order) of parallel branches, concatenated."""

    layers: tuple[tuple[str, tuple[tuple[str, StemBlock], ...]], ...]

    @classmethod
    def from_original(cls, value, where: str = "initcell") -> Stem:
        layers = []
        for layer_key, branches in _sorted_layers(value, where, "the stem"):
            blocks = []
            for branch_key, block in branches:
                here = f"{where}.{layer_key}.{branch_key}"
                kind = block.get("block")
                if kind not in _STEM_KINDS:
                    raise SpecError.got(f"{here}.block", kind, f"stem blocks are {', '.join(_STEM_KINDS)}")
                if kind == "conv2d":
                    stride = block.get("stride", 1)
                    _require_int(f"{here}.stride", stride)
                    blocks.append(
                        (
                            branch_key,
                            StemBlock(
                                kind,
                                _kernel_size(block, here),
                                _require_int(f"{here}.outputs", block.get("outputs")),
                                stride,
                            ),
                        )
                    )
                elif kind == "max_pool":
                    blocks.append((branch_key, StemBlock(kind, _kernel_size(block, here))))
                elif kind == "dropout":
                    blocks.append((branch_key, StemBlock(kind, keep_prob=_keep_prob(block, here))))
                else:
                    blocks.append((branch_key, StemBlock(kind)))
            layers.append((layer_key, tuple(blocks)))
        return cls(tuple(layers))

    def to_original(self) -> dict:
        return {lk: {bk: b.to_original() for bk, b in bs} for lk, bs in self.layers}

    @classmethod
    def conv1x1(cls, width: int = 128) -> Stem:
        """Net A's stem: 1x1 conv to `width` (bias + ReLU), then LRN."""
        return cls._single_conv(1, width)

    @classmethod
    def conv3x3(cls, width: int = 192) -> Stem:
        """Net B's stem: 3x3 conv to `width` (bias + ReLU), then LRN."""
        return cls._single_conv(3, width)

    @classmethod
    def _single_conv(cls, k, width):
        _require_int("stem width C", width)
        return cls.from_original(
            {
                "Layer0": {"Branch0": {"block": "conv2d", "kernel_size": [k, k], "outputs": width}},
                "Layer2": {"Branch0": {"block": "lrn"}},
            }
        )

    @classmethod
    def imagenet(cls) -> Stem:
        """The original's ImageNet stem (`network.imgnet-1.json`), fixed: three layers of
        parallel stride-2 3x3, 5x5 and 7x7 convolutions (bias + ReLU) with 32, 64 and 96
        filters per branch (96, 192 and 288 channels), no LRN."""
        return cls.from_original(
            {
                f"Layer{i}": {
                    f"Branch{j}": {"block": "conv2d", "kernel_size": [k, k], "stride": 2, "outputs": width}
                    for j, k in enumerate((3, 5, 7))
                }
                for i, width in enumerate(IMAGENET_STEM_WIDTHS)
            }
        )

    @classmethod
    def preset(cls, name: str, width: int | None = None) -> Stem:
        """`conv1x1` or `conv3x3` with output width C = `width`, or the fixed `imagenet` stem
        (which ignores `width`)."""
        presets = {"conv1x1": cls.conv1x1, "conv3x3": cls.conv3x3}
        if name == "imagenet":
            return cls.imagenet()
        if name not in presets:
            raise SpecError.got("stem", name, f"expected one of {', '.join([*presets, 'imagenet'])}")
        return presets[name](width) if width is not None else presets[name]()

    def base_width(self) -> int:
        """C of the stage-width rule: `outputs` of the last stem branch that has one."""
        widths = [b.outputs for _, bs in self.layers for _, b in bs if b.outputs is not None]
        if not widths:
            raise SpecError('initcell: no stem block has "outputs"; add a conv2d block')
        return widths[-1]

    def out_channels(self, in_channels: int) -> int:
        """The stem's real output channel count for `in_channels` input channels."""
        channels = in_channels
        for _, blocks in self.layers:
            channels = sum(b.outputs if b.kind == "conv2d" else channels for _, b in blocks)
        return channels


@dataclasses.dataclass(frozen=True)
class HeadBlock:
    """One classification-cell block."""

    kind: str
    keep_prob: float | None = None
    outputs: int | None = None
    inputs: int | None = None

    def to_original(self) -> dict:
        out = {"block": self.kind}
        for name in ("keep_prob", "outputs", "inputs"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclasses.dataclass(frozen=True)
class Head:
    """The classification cell, one block per layer in sorted layer-key order; the last is
    `fc-final` (logits; its `inputs` sets the init std 1/inputs, as in the original)."""

    layers: tuple[tuple[str, HeadBlock], ...]

    @classmethod
    def from_original(cls, value, where: str = "classificationcell") -> Head:
        layers = []
        for layer_key, branches in _sorted_layers(value, where, "the head"):
            if len(branches) != 1:
                raise SpecError.got(
                    f"{where}.{layer_key}",
                    sorted(k for k, _ in branches),
                    "a head layer has exactly one branch",
                )
            branch_key, block = branches[0]
            here = f"{where}.{layer_key}.{branch_key}"
            kind = block.get("block")
            if kind not in _HEAD_KINDS:
                raise SpecError.got(f"{here}.block", kind, f"head blocks are {', '.join(_HEAD_KINDS)}")
            if kind == "dropout":
                layers.append((layer_key, HeadBlock(kind, keep_prob=_keep_prob(block, here))))
            elif kind == "fc":
                layers.append(
                    (
                        layer_key,
                        HeadBlock(kind, outputs=_require_int(f"{here}.outputs", block.get("outputs"))),
                    )
                )
            elif kind == "fc-final":
                layers.append(
                    (
                        layer_key,
                        HeadBlock(
                            kind,
                            outputs=_require_int(f"{here}.outputs", block.get("outputs")),
                            inputs=_require_int(f"{here}.inputs", block.get("inputs", 192)),
                        ),
                    )
                )
            else:
                layers.append((layer_key, HeadBlock(kind)))
        kinds = [b.kind for _, b in layers]
        if kinds.count("fc-final") != 1 or kinds[-1] != "fc-final":
            raise SpecError.got(where, kinds, 'the head must end with exactly one "fc-final" block')
        if "reduce_mean" not in kinds:
            raise SpecError.got(where, kinds, 'the head needs a "reduce_mean" (global average pool) block')
        return cls(tuple(layers))

    @classmethod
    def default(cls, num_classes: int = 10, keep_prob: float = 0.8, init_inputs: int = 192):
        """The shipped configs' head: global average pool, dropout, dense to the classes."""
        _require_int("num_classes", num_classes, 2)
        return cls.from_original(
            {
                "Layer0": {"Branch0": {"block": "reduce_mean"}},
                "Layer1": {"Branch0": {"block": "flatten"}},
                "Layer2": {"Branch0": {"block": "dropout", "keep_prob": keep_prob}},
                "Layer3": {"Branch0": {"block": "fc-final", "inputs": init_inputs, "outputs": num_classes}},
            }
        )

    def to_original(self) -> dict:
        return {lk: {"Branch0": b.to_original()} for lk, b in self.layers}

    @property
    def num_classes(self) -> int:
        return self.layers[-1][1].outputs

    def with_num_classes(self, num_classes: int) -> Head:
        _require_int("num_classes", num_classes, 2)
        last_key, last = self.layers[-1]
        return Head(self.layers[:-1] + ((last_key, dataclasses.replace(last, outputs=num_classes)),))


# ---------------------------------------------------------------------------------------
# The whole network


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
        _require_int("input_channels", self.input_channels)
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
