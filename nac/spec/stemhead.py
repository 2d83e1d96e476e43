"""The stem and head of the architecture spec: the original's `initcell` and
`classificationcell` blocks, read and written unchanged (see `nac.spec.arch`)."""

from __future__ import annotations

import dataclasses

from nac.spec.cells import require_int
from nac.spec.checks import is_int
from nac.spec.errors import SpecError

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
                    require_int(f"{here}.stride", stride)
                    blocks.append(
                        (
                            branch_key,
                            StemBlock(
                                kind,
                                _kernel_size(block, here),
                                require_int(f"{here}.outputs", block.get("outputs")),
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
        require_int("stem width C", width)
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
                        HeadBlock(kind, outputs=require_int(f"{here}.outputs", block.get("outputs"))),
                    )
                )
            elif kind == "fc-final":
                layers.append(
                    (
                        layer_key,
                        HeadBlock(
                            kind,
                            outputs=require_int(f"{here}.outputs", block.get("outputs")),
                            inputs=require_int(f"{here}.inputs", block.get("inputs", 192)),
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
        require_int("num_classes", num_classes, 2)
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
        require_int("num_classes", num_classes, 2)
        last_key, last = self.layers[-1]
        return Head(self.layers[:-1] + ((last_key, dataclasses.replace(last, outputs=num_classes)),))
