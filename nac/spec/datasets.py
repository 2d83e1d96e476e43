"""Dataset sources: what nac knows about a `--dataset` value before TensorFlow loads.

A `--dataset` value names a source and, after a prefix, what to read from it:

- a built-in name (`cifar10`, `fashion_mnist`, `mnist`, `imagenet2012`, `synthetic`; the
  facts typed in `nac.spec.choices.DATASETS`);
- `tfds:NAME` or `tfds:NAME/CONFIG`: a prepared tensorflow-datasets image classification
  set, its facts read from its `dataset_info.json` (`nac.spec.tfds_info`);
- `folder:PATH`: images in `PATH/train/<class>/*` and `PATH/test/<class>/*`
  (`nac.spec.imagefolder`);
- `arrays:<sha256>`: in-memory arrays given to `nac.construct_network` (`nac.spec.arrays`;
  a command line cannot name them). They come as two splits, so the split flags are refused.

A source is two halves registered under one name. Here (pure Python) a resolver maps the text
after the prefix and a `DataRequest` (the run's data settings) to `DatasetFacts`: classes,
channels, image size, examples per split, class names, where the data is, and the `details`
its loader needs; it raises `ConfigError` with one line for anything wrong. In `nac.data.sources`
(TensorFlow) a loader registered under the facts' `kind` reads the splits into memory. Another
source registers both halves the same way:

    datasets.register("name", resolve_name)             # pure Python: facts
    sources.register_loader("name", load_name)          # TensorFlow: the splits

A source without named splits (`named_splits=False`, as the arrays) refuses `--train_split`,
`--test_split` and `--validation_fraction`, as the built-in sets do.

Validation, `--dry_run` and the epoch budgets use the facts; nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

from nac.spec.choices import DATASET_ALIASES, DATASETS, DatasetFacts
from nac.spec.errors import ConfigError

# The default split names of a source with named splits (tfds, folder).
TRAIN_SPLIT = "train"
TEST_SPLIT = "test"


@dataclasses.dataclass(frozen=True)
class DataRequest:
    """The run's settings a source's facts depend on.

    Attributes:
      data_dir: `--data_dir` (for tfds: where prepared datasets are looked for first).
      train_split: `--train_split`, the split trained on.
      test_split: `--test_split`, the split evaluated on.
      validation_fraction: `--validation_fraction`: without a test split, this fraction of
        the training split (drawn with the seed) becomes the test split; 0 refuses.
      seed: `--seed` (None: 0 for the held-out draw, so that it is the same on resume).
      image_size: `--image_size` (None: the source's default).
      downsample: `--downsample`: sources that resize (folders, tfds sets of other than
        square images) resize to `image_size * downsample`, which the pipelines then pool.
    """

    data_dir: str | None = None
    train_split: str = TRAIN_SPLIT
    test_split: str = TEST_SPLIT
    validation_fraction: float = 0.0
    seed: int | None = None
    image_size: int | None = None
    downsample: int = 1


def resized_raw_size(request: DataRequest, default: int) -> int:
    """The stored size of a source that resizes its images (`DataRequest.downsample`)."""
    factor = max(1, request.downsample) if isinstance(request.downsample, int) else 1
    if request.image_size:
        return request.image_size * factor
    return max(factor, default - default % factor)


Resolver = Callable[[str, DataRequest], DatasetFacts]
_RESOLVERS: dict[str, Resolver] = {}
_WITHOUT_SPLITS: set[str] = set()  # prefixes whose sources have no named splits


def register(prefix: str, resolver: Resolver, named_splits: bool = True) -> None:
    """Registers the source `prefix:` (e.g. "tfds"): `resolver(rest, request)` gives its facts.

    `named_splits=False`: its data comes as a training and a test split, so the split flags
    are refused for it.
    """
    _RESOLVERS[prefix] = resolver
    if named_splits:
        _WITHOUT_SPLITS.discard(prefix)
    else:
        _WITHOUT_SPLITS.add(prefix)


def prefixes() -> tuple[str, ...]:
    """The registered source prefixes."""
    _register_standard()
    return tuple(_RESOLVERS)


def split_value(value: str) -> tuple[str | None, str]:
    """(prefix, rest) of a `--dataset` value; (None, name) for a built-in name."""
    _register_standard()
    if isinstance(value, str) and ":" in value:
        prefix, rest = value.split(":", 1)
        if prefix in _RESOLVERS:
            return prefix, rest
    return None, value


def has_named_splits(value: str) -> bool:
    """True for a value whose source has named splits (tfds:, folder:); False for a built-in
    name or a source registered with `named_splits=False` (arrays:)."""
    prefix, _ = split_value(value)
    return prefix is not None and prefix not in _WITHOUT_SPLITS


def canonical(value: str) -> str:
    """The recorded form of a `--dataset` value (built-in aliases replaced)."""
    return DATASET_ALIASES.get(value, value)


def is_known(value: str) -> bool:
    """True for a built-in name or a value with a registered prefix (not checked further)."""
    prefix, rest = split_value(value)
    return prefix is not None or canonical(rest) in DATASETS


def usage() -> str:
    """The accepted forms, for error messages and help."""
    return f"expected one of {', '.join(DATASETS)}, tfds:NAME[/CONFIG] or folder:PATH"


def resolve(value: str, request: DataRequest | None = None) -> DatasetFacts:
    """The facts of the dataset a `--dataset` value names (pure Python, no TensorFlow).

    Args:
      value: The `--dataset` value.
      request: The run's data settings (defaults when None).

    Returns:
      Its `DatasetFacts`.

    Raises:
      ConfigError: Unknown name or prefix, data not found or not usable (one line).
    """
    request = request or DataRequest()
    prefix, rest = split_value(value)
    if prefix is None:
        name = canonical(rest)
        if name not in DATASETS:
            raise ConfigError.got("--dataset", value, usage())
        return DATASETS[name]
    if not rest:
        raise ConfigError.got("--dataset", value, f"name what to read after {prefix}:; {usage()}")
    return _RESOLVERS[prefix](rest, request)


# -- helpers shared by the sources -----------------------------------------------------------

_REQUEST_KEYS = ("train_split", "test_split", "validation_fraction", "seed", "image_size", "downsample")


def request_details(request: DataRequest) -> tuple[tuple[str, str], ...]:
    """The request as `DatasetFacts.details` entries, so that a loader reads what was resolved."""
    return tuple((f"request.{k}", repr(getattr(request, k))) for k in _REQUEST_KEYS)


def request_of(facts: DatasetFacts, data_dir: str | None = None) -> DataRequest:
    """The `DataRequest` whose facts these are (from `request_details`)."""
    import ast

    values = {k: ast.literal_eval(facts.detail(f"request.{k}", "None")) for k in _REQUEST_KEYS}
    values = {k: v for k, v in values.items() if v is not None or k in ("seed", "image_size")}
    values["downsample"] = values.get("downsample") or 1
    return DataRequest(data_dir=data_dir, **values)


def held_out_count(total: int, fraction: float) -> int:
    """Examples of a split of `total` that `fraction` holds out (at least 1, at most total - 1)."""
    return min(total - 1, max(1, math.floor(total * fraction + 0.5)))


def held_out_indices(total: int, fraction: float, seed: int | None) -> tuple[list[int], list[int]]:
    """(kept, held out) example indices of a seeded draw of `fraction` of `total` examples.

    Pure Python (`random.Random(seed)`), so the facts and the loader agree on the counts and
    a resumed run holds out the same examples.
    """
    order = list(range(total))
    random.Random(0 if seed is None else seed).shuffle(order)
    held = sorted(order[: held_out_count(total, fraction)])
    held_set = set(held)
    return [i for i in range(total) if i not in held_set], held


def check_fraction(fraction) -> None:
    """`--validation_fraction` must be in [0, 1)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ConfigError.got(
            "--validation_fraction", fraction, "expected a number in [0, 1), e.g. 0.2 (0: use the test split)"
        )


def missing_test_split(where: str, test_split: str, splits, train_split: str = TRAIN_SPLIT) -> ConfigError:
    """The one line for a source without the requested test split."""
    have = ", ".join(splits) or "none"
    if test_split == train_split:
        return ConfigError(
            f"--test_split: {test_split!r} is also the training split of {where}; give another "
            "split, or --validation_fraction=0.2 to hold out part of it as the test split"
        )
    return ConfigError(
        f"--test_split: {where} has no split {test_split!r} (splits: {have}); give --test_split=NAME, "
        "or --validation_fraction=0.2 to hold out part of the training split as the test split"
    )


_STANDARD: list[bool] = []


def _register_standard() -> None:
    """Registers the tfds, folder and arrays sources once (imported late: they import this
    module)."""
    if _STANDARD:
        return
    _STANDARD.append(True)
    from nac.spec import arrays, imagefolder, tfds_info

    _RESOLVERS.setdefault("tfds", tfds_info.resolve)
    _RESOLVERS.setdefault("folder", imagefolder.resolve)
    if arrays.PREFIX not in _RESOLVERS:
        register(arrays.PREFIX, arrays.resolve, named_splits=False)
