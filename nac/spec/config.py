"""The original code's v2.0 configuration files, as frozen dataclasses (no TensorFlow).

Top-level keys: `parameters`, `envelopenet` or `random`, `initcell`, `classificationcell`,
and `arch` (a fixed architecture, `algorithm: deterministic`). Keys the original never read
(`maxwideners`, `minwidenerintval`, `k`, an `initcell` copied inside `envelopenet`, `size` in
head blocks) are accepted and ignored. Every shipped config loads unchanged; errors name the
field, the value and what is allowed (`ConfigError`).
"""

from __future__ import annotations

import dataclasses

from nac.spec import arch as arch_lib
from nac.spec import choices
from nac.spec.checks import is_int
from nac.spec.errors import ConfigError, SpecError
from nac.spec.jsonio import load_json

MODES = ("construct", "oneshot")
ALGORITHMS = ("envelopenet", "random", "deterministic")
# The original's `parameters.dataset`: nac's datasets and their aliases (imagenet).
DATASETS = (*choices.DATASETS, *choices.DATASET_ALIASES)


def _get(section: dict, key: str, where: str, check, allowed: str, default=dataclasses.MISSING):
    if key not in section:
        if default is not dataclasses.MISSING:
            return default
        raise ConfigError.got(f"{where}.{key}", None, f"missing; expected {allowed}")
    value = section[key]
    if not check(value):
        raise ConfigError.got(f"{where}.{key}", value, f"expected {allowed}")
    return value


def _pos_int(v):
    return is_int(v) and v >= 1


def _nonneg_int(v):
    return is_int(v) and v >= 0


def _bool_list(n):
    return lambda v: isinstance(v, list) and len(v) == n and all(isinstance(x, bool) for x in v)


def _int_list(n, minimum=1):
    return lambda v: isinstance(v, list) and len(v) == n and all(is_int(x) and x >= minimum for x in v)


@dataclasses.dataclass(frozen=True)
class Parameters:
    """The `parameters` section."""

    archname: str
    mode: str
    algorithm: str
    gpus: str
    steps: int
    evalintval: int
    batchsize: int
    dataset: str
    iterations: int
    image_size: int
    data_dir: str | None = None

    @classmethod
    def from_original(cls, d, where="parameters") -> Parameters:
        if not isinstance(d, dict):
            raise ConfigError.got(where, d, "expected an object")
        text = lambda v: isinstance(v, str)  # noqa: E731
        return cls(
            archname=_get(d, "archname", where, text, "a string", "nac"),
            mode=_get(d, "mode", where, lambda v: v in MODES, " or ".join(MODES), "construct"),
            algorithm=_get(d, "algorithm", where, lambda v: v in ALGORITHMS, ", ".join(ALGORITHMS)),
            gpus=str(
                _get(d, "gpus", where, lambda v: isinstance(v, (str, list)), 'a string like "[0,1]"', "[]")
            ),
            # 0: construction iterations without training (a zero-cost criterion drives them)
            steps=_get(d, "steps", where, _nonneg_int, "an integer >= 0"),
            evalintval=_get(d, "evalintval", where, _pos_int, "a positive integer"),
            batchsize=_get(d, "batchsize", where, _pos_int, "a positive integer"),
            dataset=_get(d, "dataset", where, lambda v: v in DATASETS, ", ".join(DATASETS)),
            iterations=_get(d, "iterations", where, lambda v: is_int(v) and v >= 0, "an integer >= 0"),
            image_size=_get(d, "image_size", where, _pos_int, "a positive integer"),
            data_dir=_get(d, "data_dir", where, lambda v: v is None or isinstance(v, str), "a path", None),
        )

    def to_original(self) -> dict:
        out = dataclasses.asdict(self)
        if out["data_dir"] is None:
            del out["data_dir"]
        return out


@dataclasses.dataclass(frozen=True)
class _StagedSection:
    """A section describing a network of `stages` stages, `layersperstage` layers each."""

    stages: int
    layersperstage: tuple[int, ...]

    @staticmethod
    def _stages(d, where: str) -> int:
        """Checks that the section `d` is an object and reads its `stages`."""
        if not isinstance(d, dict):
            raise ConfigError.got(where, d, "expected an object")
        return _get(d, "stages", where, _pos_int, "a positive integer")

    def to_original(self) -> dict:
        """The section as the original's JSON object, in field order, tuples as lists."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclasses.dataclass(frozen=True)
class EnvelopeParams(_StagedSection):
    """The `envelopenet` section: the EnvelopeNet and the construction policy."""

    maxlayersperstage: tuple[int, ...]
    construction: tuple[bool, ...]
    parameterlimits: tuple[bool, ...]
    maxfilterprune: int
    envelopecell: tuple[tuple[str, str], ...]
    skip: bool = False
    worstcase: bool = False

    @classmethod
    def from_original(cls, d, where="envelopenet") -> EnvelopeParams:
        n = cls._stages(d, where)
        per_stage = f"a list of {n} positive integers (one per stage)"
        flags = f"a list of {n} booleans (one per stage)"
        cell = _get(
            d,
            "envelopecell",
            where,
            lambda v: isinstance(v, dict) and v,
            'an object such as {"Branch1": "1x1", "Branch2": "3x3"}',
        )
        try:
            for key, op in cell.items():
                arch_lib.branch_number(key, f"{where}.envelopecell key")
                arch_lib.Op.parse(op, f"{where}.envelopecell.{key}")
        except SpecError as e:
            raise ConfigError(str(e)) from None
        return cls(
            stages=n,
            layersperstage=tuple(_get(d, "layersperstage", where, _int_list(n), per_stage)),
            maxlayersperstage=tuple(_get(d, "maxlayersperstage", where, _int_list(n), per_stage)),
            construction=tuple(_get(d, "construction", where, _bool_list(n), flags, [True] * n)),
            parameterlimits=tuple(_get(d, "parameterlimits", where, _bool_list(n), flags, [False] * n)),
            maxfilterprune=_get(d, "maxfilterprune", where, _pos_int, "a positive integer", 6),
            envelopecell=tuple(sorted(cell.items())),
            skip=_get(d, "skip", where, lambda v: isinstance(v, bool), "true or false", False),
            worstcase=_get(d, "worstcase", where, lambda v: isinstance(v, bool), "true or false", False),
        )

    def to_original(self) -> dict:
        return {**super().to_original(), "envelopecell": dict(self.envelopecell)}


@dataclasses.dataclass(frozen=True)
class RandomParams(_StagedSection):
    """The `random` section: random networks with given layers and blocks per stage."""

    numblocksperstage: tuple[int, ...]
    parameterlimits: tuple[bool, ...]
    blocks: tuple[str, ...]
    skip: bool = False

    @classmethod
    def from_original(cls, d, where="random") -> RandomParams:
        n = cls._stages(d, where)
        layers = _get(d, "layersperstage", where, _int_list(n), f"a list of {n} positive integers")
        blocks_per_stage = _get(
            d, "numblocksperstage", where, _int_list(n), f"a list of {n} positive integers"
        )
        for s, (nl, nb) in enumerate(zip(layers, blocks_per_stage)):
            if nb < nl:
                raise ConfigError.got(
                    f"{where}.numblocksperstage[{s}]",
                    nb,
                    f"expected at least one block per layer (>= layersperstage[{s}] = {nl})",
                )
        blocks = _get(
            d, "blocks", where, lambda v: isinstance(v, list) and v, 'a list of ops such as ["3x3", "5x5sep"]'
        )
        try:
            for i, op in enumerate(blocks):
                arch_lib.Op.parse(op, f"{where}.blocks[{i}]")
        except SpecError as e:
            raise ConfigError(str(e)) from None
        return cls(
            stages=n,
            layersperstage=tuple(layers),
            numblocksperstage=tuple(blocks_per_stage),
            parameterlimits=tuple(
                _get(d, "parameterlimits", where, _bool_list(n), f"a list of {n} booleans", [False] * n)
            ),
            blocks=tuple(blocks),
            skip=_get(d, "skip", where, lambda v: isinstance(v, bool), "true or false", False),
        )


@dataclasses.dataclass(frozen=True)
class OriginalConfig:
    """A whole v2.0 configuration file."""

    parameters: Parameters
    stem: arch_lib.Stem
    head: arch_lib.Head
    envelopenet: EnvelopeParams | None = None
    random: RandomParams | None = None
    arch: tuple | None = None

    @classmethod
    def from_original(cls, d, where: str = "config") -> OriginalConfig:
        """Reads and validates a decoded config object."""
        if not isinstance(d, dict):
            raise ConfigError.got(where, d, 'expected a JSON object with a "parameters" section')
        if "parameters" not in d:
            raise ConfigError.got(
                f"{where}.parameters", None, 'missing; every config needs a "parameters" section'
            )
        params = Parameters.from_original(d["parameters"])
        for key in ("initcell", "classificationcell"):
            if key not in d:
                raise ConfigError.got(f"{where}.{key}", None, f'missing; every config needs "{key}"')
        try:
            stem = arch_lib.Stem.from_original(d["initcell"])
            head = arch_lib.Head.from_original(d["classificationcell"])
            body = arch_lib.body_from_original(d["arch"]) if "arch" in d else None
        except SpecError as e:
            raise ConfigError(str(e)) from None
        envelope = EnvelopeParams.from_original(d["envelopenet"]) if "envelopenet" in d else None
        random = RandomParams.from_original(d["random"]) if "random" in d else None
        config = cls(params, stem, head, envelope, random, body)
        config._check_algorithm()
        return config

    def _check_algorithm(self):
        algorithm = self.parameters.algorithm
        need = {
            "envelopenet": ("envelopenet", self.envelopenet),
            "random": ("random", self.random),
            "deterministic": ("arch", self.arch),
        }[algorithm]
        if need[1] is None:
            raise ConfigError.got(
                f"config.{need[0]}",
                None,
                f'missing; parameters.algorithm "{algorithm}" needs a "{need[0]}" section',
            )
        self.initial_network()  # validates the arch (or the generated one) as a Network
        if self.envelopenet is not None and self.arch is not None:
            stages = 1 + sum(isinstance(e, arch_lib.Widener) for e in self.arch)
            if stages != self.envelopenet.stages:
                raise ConfigError.got(
                    "config.arch",
                    f"{stages} stages ({stages - 1} wideners)",
                    f"envelopenet.stages is {self.envelopenet.stages}; use {self.envelopenet.stages - 1} wideners",
                )

    @classmethod
    def load(cls, path) -> OriginalConfig:
        """Loads a config file; every error is a `ConfigError` naming the file."""
        data = load_json(path, ConfigError, "config file")
        try:
            return cls.from_original(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_original(self) -> dict:
        out = {
            "parameters": self.parameters.to_original(),
            "initcell": self.stem.to_original(),
            "classificationcell": self.head.to_original(),
        }
        if self.envelopenet is not None:
            out["envelopenet"] = self.envelopenet.to_original()
        if self.random is not None:
            out["random"] = self.random.to_original()
        if self.arch is not None:
            out["arch"] = arch_lib.body_to_original(self.arch)
        return out

    def network(self, body, input_channels: int = 3) -> arch_lib.Network:
        """A `Network` of this config's stem and head around `body`."""
        try:
            return arch_lib.Network(tuple(body), self.stem, self.head, input_channels)
        except SpecError as e:
            raise ConfigError(str(e)) from None

    def initial_network(self, input_channels: int = 3, seed: int | None = 0) -> arch_lib.Network:
        """The network a run of this config starts from.

        `deterministic`: the `arch`. `envelopenet`: the EnvelopeNet of `layersperstage` (or the
        `arch` if one is given). `random`: a random instance drawn with `seed`.
        """
        from nac.spec import random_arch

        algorithm = self.parameters.algorithm
        try:
            if self.arch is not None and algorithm != "random":
                body = self.arch
            elif algorithm == "envelopenet":
                e = self.envelopenet
                body = arch_lib.envelope_body(
                    e.layersperstage, e.envelopecell, self.stem.base_width(), e.parameterlimits, e.skip
                )
            else:
                r = self.random
                body = random_arch.random_body(
                    r.layersperstage,
                    r.numblocksperstage,
                    r.blocks,
                    self.stem.base_width(),
                    seed=seed,
                    parameter_limits=r.parameterlimits,
                    skip=r.skip,
                )
            return arch_lib.Network(tuple(body), self.stem, self.head, input_channels)
        except SpecError as e:
            raise ConfigError(str(e)) from None


def network_file_kind(data) -> str:
    """What a decoded network file holds: "config" (an original v2.0 config with a "parameters"
    section), "network" (nac's network JSON) or "list" (an original `network.json` list)."""
    if isinstance(data, dict) and "parameters" in data:
        return "config"
    if isinstance(data, dict) and data.get("format") == arch_lib.NETWORK_FORMAT:
        return "network"
    return "list"
