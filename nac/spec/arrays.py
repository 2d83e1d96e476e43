"""In-memory arrays as a dataset: checks, fingerprint and facts (NumPy, no TensorFlow).

`nac.construct_network(train, test, ...)` trains on caller-given arrays: images
`[N, H, W, C]` or `[N, H, W]` (one channel) on the 0-255 scale, square (H == W), any real or
integer dtype, and integer labels `[N]` in `[0, classes)`; classes are inferred from the
labels (their maximum + 1 over both splits) unless given. `ArraySource` checks them once,
stores them as uint8 images and int32 labels (values are rounded to the nearest integer)
and computes a fingerprint: the sha256 of both splits' shapes and bytes and the class count.

The run names the source `--dataset=arrays:<fingerprint>` (`dataset_value`), so that the
run's records name the data and a resume with other arrays is told apart; the arrays live in
this process's registry (`register`), from which `resolve` gives the run's `DatasetFacts`
and `splits` the loader's arrays. Every problem is a `DataError` with one line.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from nac.spec.choices import DatasetFacts
from nac.spec.errors import ConfigError, DataError

PREFIX = "arrays"
Split = tuple[np.ndarray, np.ndarray]


def _images(x, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise DataError(
            f"{where} images: shape {tuple(x.shape)}; expected [N, H, W, C] or [N, H, W] with N >= 1"
        )
    if x.shape[1] != x.shape[2]:
        raise DataError(
            f"{where} images: {x.shape[1]}x{x.shape[2]} is not square; resize or crop them to S x S"
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)) or x.dtype == bool:
        raise DataError(f"{where} images: dtype {x.dtype}; expected pixels as numbers on the 0-255 scale")
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise DataError(f"{where} images: non-finite pixel values; expected numbers on the 0-255 scale")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 255:
        raise DataError(
            f"{where} images: values in [{low:g}, {high:g}]; expected the 0-255 scale "
            "(multiply [0, 1] images by 255)"
        )
    return x if x.dtype == np.uint8 else np.rint(x).astype(np.uint8)


def _labels(y, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{where} labels: shape {tuple(y.shape)}; expected [{n}], one per image")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.equal(np.mod(y, 1), 0)):
            raise DataError(f"{where} labels: dtype {y.dtype}; expected integer class indices 0, 1, ...")
    return y.astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySource:
    """Checked in-memory splits.

    Attributes:
      train: (uint8 images [N, S, S, C], int32 labels [N]).
      test: The same for the test split.
      num_classes: Classes the network outputs.
      fingerprint: sha256 (hex) of the splits and the class count.
    """

    train: Split
    test: Split
    num_classes: int
    fingerprint: str

    @classmethod
    def from_arrays(cls, train, test, num_classes: int | None = None) -> ArraySource:
        """Checks `(x, y)` pairs; see the module docstring.

        Raises:
          DataError: Bad shapes, dtypes, pixel range or labels (one line).
        """
        splits = {}
        for where, pair in (("train", train), ("test", test)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise DataError(f"{where}: expected an (images, labels) pair or a tf.data.Dataset")
            x = _images(pair[0], where)
            splits[where] = (x, _labels(pair[1], x.shape[0], where))
        (tx, ty), (vx, vy) = splits["train"], splits["test"]
        if tx.shape[1:] != vx.shape[1:]:
            raise DataError(
                f"test images: shape {tuple(vx.shape[1:])} per image, the training images "
                f"{tuple(tx.shape[1:])}; give both splits the same image shape"
            )
        low = int(min(ty.min(), vy.min()))
        high = int(max(ty.max(), vy.max()))
        if num_classes is None:
            num_classes = max(2, high + 1)
        elif isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise DataError(f"num_classes: got {num_classes!r}; expected an integer >= 2")
        if low < 0 or high >= num_classes:
            raise DataError(
                f"labels: values in [{low}, {high}], outside [0, {num_classes}); give class indices "
                f"0 .. {num_classes - 1}" + ("" if low < 0 else f" or num_classes >= {high + 1}")
            )
        digest = hashlib.sha256(f"classes={num_classes};".encode())
        out = {}
        for where in ("train", "test"):
            x, y = splits[where]
            y = y.astype(np.int32)
            x = np.ascontiguousarray(x)
            digest.update(f"{where}:{x.shape}:{y.shape};".encode())
            digest.update(x.tobytes())
            digest.update(y.astype("<i4").tobytes())
            out[where] = (x, y)
        return cls(out["train"], out["test"], num_classes, digest.hexdigest())

    @property
    def channels(self) -> int:
        return int(self.train[0].shape[-1])

    @property
    def image_size(self) -> int:
        return int(self.train[0].shape[1])

    def facts(self) -> DatasetFacts:
        """The dataset's facts (the network's default input is the stored size)."""
        train, test = int(self.train[1].shape[0]), int(self.test[1].shape[0])
        return DatasetFacts(
            self.channels,
            self.num_classes,
            self.image_size,
            train,
            raw_size=self.image_size,
            kind=PREFIX,
            test_examples=test,
            location="in memory",
            splits=(("train", train), ("test", test)),
        )


_REGISTRY: dict[str, ArraySource] = {}


def register(source: ArraySource) -> str:
    """Keeps `source` in this process; returns its `--dataset` value `arrays:<fingerprint>`."""
    _REGISTRY[source.fingerprint] = source
    return dataset_value(source.fingerprint)


def unregister(dataset: str) -> None:
    """Lets the process forget the arrays of `arrays:<fingerprint>` (after their run)."""
    _REGISTRY.pop(dataset.split(":", 1)[1], None)


def dataset_value(fingerprint: str) -> str:
    return f"{PREFIX}:{fingerprint}"


def is_arrays(dataset) -> bool:
    """True for a `--dataset` value naming in-memory arrays."""
    return isinstance(dataset, str) and dataset.startswith(PREFIX + ":")


def source_of(dataset: str) -> ArraySource:
    """The registered arrays of `arrays:<fingerprint>`.

    Raises:
      ConfigError: No such arrays in this process (a command line cannot name them).
    """
    fingerprint = dataset.split(":", 1)[1]
    if fingerprint not in _REGISTRY:
        raise ConfigError.got(
            "--dataset",
            dataset,
            "in-memory arrays exist only inside nac.construct_network(train, test, run_dir); "
            "pass the arrays there",
        )
    return _REGISTRY[fingerprint]


def resolve(rest: str, request=None) -> DatasetFacts:
    """The facts of `arrays:<rest>`: the resolver of `nac.spec.datasets`' `arrays` source.

    Raises:
      ConfigError: No such arrays in this process, or a `--data_dir` given (one line).
    """
    facts = source_of(dataset_value(rest)).facts()
    if request is not None and request.data_dir is not None:
        raise ConfigError.got(
            "--data_dir", request.data_dir, "in-memory arrays are read from memory; drop data_dir"
        )
    return facts
