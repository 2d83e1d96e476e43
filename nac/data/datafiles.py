"""Readers of the datasets' own on-disk formats, in NumPy (no TensorFlow).

- CIFAR-10 binary: ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``,
  records of 1 label byte + 3072 pixel bytes in CHW order; as the extracted folder
  ``cifar-10-batches-bin/`` or the archive ``cifar-10-binary.tar.gz``.
- CIFAR-10 Python: pickled dicts with ``b"data"`` (uint8 [N, 3072], CHW) and ``b"labels"``,
  in ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``. Only numpy arrays are unpickled,
  never arbitrary objects.
- IDX ((Fashion-)MNIST): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, gzipped or not.

`read_cifar10(roots)` and `read_idx_files(name, directories)` return ``((train, test), source)``
with uint8 images [N, H, W, C] and int32 labels, or None when none of the places holds the
files (the caller then tries tensorflow-datasets). Files that are present but incomplete,
truncated or corrupt raise `DataError` with one line naming the file and the fix.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import typing
import zlib

import numpy as np

from nac.spec.errors import DataError

Split = tuple[np.ndarray, np.ndarray]

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

# CIFAR-10: the binary and the Python versions, as folders or archives.

_CIFAR_RECORD = 1 + 32 * 32 * 3
_CIFAR_BIN_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_PY_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FIX = (
    f"download {CIFAR10_URL} on a connected machine and pass --data_dir=DIR holding it "
    "(or its extracted cifar-10-batches-bin/)"
)


def downsample(images: np.ndarray, factor: int, name: str = "images") -> np.ndarray:
    """Average-pools uint8 images (N, H, W[, C]) by `factor` in both dimensions, rounding half
    up, back to uint8. H and W must be multiples of `factor`."""
    n, h, w = images.shape[:3]
    if h % factor or w % factor:
        raise DataError(f"{name}: downsample={factor} does not divide its {h}x{w} images; use a divisor")
    rest = images.shape[3:]
    blocks = images.reshape(n, h // factor, factor, w // factor, factor, *rest)
    total = blocks.sum(axis=(2, 4), dtype=np.uint32)
    area = factor * factor
    return ((total + area // 2) // area).astype(np.uint8)


def _chw_to_hwc(pixels: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _parse_cifar_bin(data: bytes, where: str) -> Split:
    if not data or len(data) % _CIFAR_RECORD:
        raise DataError(
            f"cifar10: {where} holds {len(data)} bytes, not a whole number of "
            f"{_CIFAR_RECORD}-byte records (1 label + 3072 pixels); it is truncated or "
            f"corrupt: {CIFAR10_FIX}"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0].astype(np.int32)
    _check_labels(labels, 10, "cifar10", where)
    return _chw_to_hwc(records[:, 1:]), labels


def _check_labels(labels: np.ndarray, num_classes: int, name: str, where: str) -> None:
    if labels.size and int(labels.max()) >= num_classes:
        raise DataError(
            f"{name}: {where} has label {int(labels.max())}, outside 0..{num_classes - 1}; "
            "the file is corrupt or from another dataset"
        )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR-10 Python batches and nothing else (no arbitrary code)."""

    _ALLOWED: typing.ClassVar[frozenset] = frozenset(
        {
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
            ("copyreg", "_reconstructor"),
            ("builtins", "object"),
        }
    )

    def find_class(self, module, name):
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _parse_cifar_pickle(data: bytes, where: str) -> Split:
    try:
        batch = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
        pixels = batch.get(b"data", batch.get("data"))
        labels = batch.get(b"labels", batch.get("labels"))
        pixels = np.asarray(pixels)
        labels = np.asarray(labels, dtype=np.int64)
    except Exception as error:
        raise DataError(
            f"cifar10: {where} is not a CIFAR-10 Python batch ({error}); it is corrupt: {CIFAR10_FIX}"
        ) from error
    if (
        pixels.dtype != np.uint8
        or pixels.ndim != 2
        or pixels.shape[1] != 3072
        or labels.shape != (pixels.shape[0],)
    ):
        raise DataError(
            f"cifar10: {where} holds data {pixels.dtype}{list(pixels.shape)} and "
            f"{labels.size} labels, expected uint8 [N, 3072] and N labels; it is corrupt: "
            f"{CIFAR10_FIX}"
        )
    _check_labels(labels, 10, "cifar10", where)
    return _chw_to_hwc(pixels), labels.astype(np.int32)


def _join(parts: list[Split]) -> Split:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class _CifarLayout(typing.NamedTuple):
    folder: str  # the extracted archive's folder
    archive: str
    train: tuple
    test: str
    parse: typing.Callable[[bytes, str], Split]


def _cifar_from_dir(directory: str, layout: _CifarLayout) -> tuple[Split, Split]:
    train, test, parse = layout.train, layout.test, layout.parse
    missing = [f for f in (*train, test) if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise DataError(f"cifar10: {directory} lacks {', '.join(missing)}; it is incomplete: {CIFAR10_FIX}")

    def read(filename):
        path = os.path.join(directory, filename)
        with open(path, "rb") as file:
            return parse(file.read(), path)

    return _join([read(f) for f in train]), read(test)


def _cifar_from_tar(path: str, layout: _CifarLayout) -> tuple[Split, Split]:
    train, test, parse = layout.train, layout.test, layout.parse
    wanted = {*train, test}
    contents = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                base = os.path.basename(member.name)
                if member.isfile() and base in wanted and base not in contents:
                    contents[base] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataError(
            f"cifar10: cannot read {path} ({error}); the archive is truncated or "
            f"corrupt: delete it and {CIFAR10_FIX}"
        ) from error
    missing = [f for f in (*train, test) if f not in contents]
    if missing:
        raise DataError(
            f"cifar10: {path} lacks {', '.join(missing)}; it is not the CIFAR-10 archive: {CIFAR10_FIX}"
        )
    parts = [parse(contents[f], f"{path}:{f}") for f in train]
    return _join(parts), parse(contents[test], f"{path}:{test}")


_CIFAR_LAYOUTS = (
    _CifarLayout(
        "cifar-10-batches-bin", "cifar-10-binary.tar.gz", _CIFAR_BIN_TRAIN, "test_batch.bin", _parse_cifar_bin
    ),
    _CifarLayout(
        "cifar-10-batches-py", "cifar-10-python.tar.gz", _CIFAR_PY_TRAIN, "test_batch", _parse_cifar_pickle
    ),
)


def read_cifar10(roots) -> tuple[tuple[Split, Split], str] | None:
    """CIFAR-10 from the first of `roots` holding it in any of the four layouts, else None.

    In each root, for the binary version and then the Python version: the extracted folder
    (``cifar-10-batches-bin/``, ``cifar-10-batches-py/``) or the batch files in the root
    itself; then the archives ``cifar-10-binary.tar.gz`` and ``cifar-10-python.tar.gz``.
    """
    for root in roots:
        for layout in _CIFAR_LAYOUTS:
            directory = os.path.join(root, layout.folder)
            if os.path.isdir(directory):
                return _cifar_from_dir(directory, layout), directory
            if any(os.path.isfile(os.path.join(root, f)) for f in (*layout.train, layout.test)):
                return _cifar_from_dir(root, layout), root
        archives = [(os.path.join(root, layout.archive), layout) for layout in _CIFAR_LAYOUTS]
        for path, layout in archives:
            if os.path.isfile(path):
                return _cifar_from_tar(path, layout), path
    return None


# IDX files ((Fashion-)MNIST).

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_IMAGES, _IDX_LABELS = 2051, 2049


def idx_fix(name: str) -> str:
    files = ", ".join(f + ".gz" for f in IDX_FILES)
    if name == "fashion_mnist":
        return (
            "install them with `sudo apt-get install dataset-fashion-mnist` or pass "
            f"--data_dir=DIR holding {files} "
            "(from https://github.com/zalandoresearch/fashion-mnist)"
        )
    return f"pass --data_dir=DIR holding {files} (from https://storage.googleapis.com/cvdf-datasets/mnist/)"


def _find_idx(directory: str, base: str) -> str | None:
    for candidate in (base + ".gz", base, base.replace("-idx", ".idx")):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _read_idx(path: str, magic: int, name: str) -> np.ndarray:
    kind = "images" if magic == _IDX_IMAGES else "labels"
    fix = idx_fix(name)
    try:
        with open(path, "rb") as file:
            data = file.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{name}: cannot read {path} ({error}); the file is truncated or corrupt: replace it: {fix}"
        ) from error
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        raise DataError(
            f"{name}: {path} has IDX magic number {found}, expected {magic} ({kind}); "
            f"it is corrupt or not an IDX {kind} file: {fix}"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: {path} has a truncated IDX header: {fix}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_dims = 3 if kind == "images" else 1
    if ndim != expected_dims or (kind == "images" and dims[1:] != (28, 28)):
        raise DataError(
            f"{name}: {path} holds {kind} of shape {list(dims)}, expected "
            f"{'[N, 28, 28]' if kind == 'images' else '[N]'}: {fix}"
        )
    size = int(np.prod(dims))
    if len(data) - header != size:
        raise DataError(
            f"{name}: {path} header says {dims[0]} {kind} ({size} bytes) but the file "
            f"holds {len(data) - header} bytes; it is truncated or corrupt: {fix}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def read_idx_files(name: str, directories) -> tuple[tuple[Split, Split], str] | None:
    """The four IDX files of `name` from the first of `directories` holding any, else None.

    Images come back as [N, 28, 28, 1].
    """
    for directory in directories:
        paths = [_find_idx(directory, base) for base in IDX_FILES]
        if not any(paths):
            continue
        missing = [f"{b}.gz" for b, p in zip(IDX_FILES, paths) if p is None]
        if missing:
            raise DataError(
                f"{name}: {directory} has some IDX files but lacks {', '.join(missing)}: {idx_fix(name)}"
            )
        splits = []
        for images_path, labels_path in (paths[:2], paths[2:]):
            images = _read_idx(images_path, _IDX_IMAGES, name)
            labels = _read_idx(labels_path, _IDX_LABELS, name).astype(np.int32)
            if len(images) != len(labels):
                raise DataError(
                    f"{name}: {images_path} holds {len(images)} images but "
                    f"{labels_path} holds {len(labels)} labels; one is corrupt: "
                    f"{idx_fix(name)}"
                )
            _check_labels(labels, 10, name, labels_path)
            splits.append((images[..., None], labels))
        return (splits[0], splits[1]), directory
    return None
