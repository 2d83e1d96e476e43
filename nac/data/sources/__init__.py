"""The TensorFlow half of the dataset sources: loaders that read a source's splits.

`nac.spec.datasets` resolves a `--dataset` value to `DatasetFacts` (pure Python); the loader
registered here under the facts' `kind` reads the data into memory as uint8 images
`[N, raw_size, raw_size, channels]` and int32 labels, which `nac.data.pipelines` then treats
as it treats the built-in array sets (augmentation, `--downsample`, validation carving,
evaluation). A new source registers its loader with `register_loader(kind, loader)`; a
loader takes `(facts, config)` (config: the `nac.data.pipelines.DataConfig`) and returns
`LoadedSplits`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class LoadedSplits:
    """A source's data in memory.

    Attributes:
      train: (uint8 images [N, S, S, C], int32 labels [N]) trained on.
      test: The same for the test split.
      source: Where it came from, for logs and records ("tfds:NAME (DIR)", "folder:PATH").
    """

    train: Split
    test: Split
    source: str


Loader = Callable[..., LoadedSplits]
_LOADERS: dict[str, Loader] = {}


def register_loader(kind: str, loader: Loader) -> None:
    """Registers the loader of the sources whose facts have `kind`."""
    _LOADERS[kind] = loader


def loader(kind: str) -> Loader:
    """The loader registered for `kind` (the standard ones are registered on first use)."""
    if not _LOADERS.get("tfds"):
        from nac.data.sources import arrays, folder, tfds

        _LOADERS.setdefault("tfds", tfds.load)
        _LOADERS.setdefault("folder", folder.load)
        _LOADERS.setdefault("arrays", arrays.load)
    return _LOADERS[kind]
