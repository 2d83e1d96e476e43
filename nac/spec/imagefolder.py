"""The facts of an image folder, found by listing it and reading image headers (pure Python).

`--dataset=folder:PATH` reads the layout of `keras.utils.image_dataset_from_directory`:
`PATH/train/<class>/*` and `PATH/test/<class>/*`, one subfolder per class (class names and
label order: the training subfolders' names, sorted). Images are PNG or JPEG files
(`.png`, `.jpg`, `.jpeg`, any case); other files and hidden entries are ignored. Without a
`test` folder, `--validation_fraction` of the training images (drawn with the seed) is the
test split. Each image's header (PNG IHDR, JPEG SOF) gives its size and channels before
TensorFlow loads: the set has 1 channel if every image is greyscale, else 3 (alpha is
dropped); the images are resized to `--image_size` (default: the smaller side of the first
training image) when loaded.
"""

from __future__ import annotations

import dataclasses
import os
import struct

from nac.spec import datasets
from nac.spec.choices import DatasetFacts
from nac.spec.errors import ConfigError

EXTENSIONS = (".png", ".jpg", ".jpeg")
_PNG = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> channels as stored (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says."""

    format: str  # "png" or "jpeg"
    height: int
    width: int
    channels: int  # as stored (1 grey, 2 grey+alpha, 3 colour, 4 RGBA/CMYK)


def unreadable(path: str, why: str) -> ConfigError:
    """The one line for an image nac cannot read."""
    return ConfigError(f"--dataset=folder: cannot read image {path} ({why}); replace or remove the file")


def _jpeg_header(f, path: str) -> ImageHeader:
    f.seek(2)
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise unreadable(path, "no JPEG frame header")
        code = marker[1]
        if code == 0xFF:  # fill byte
            f.seek(-1, os.SEEK_CUR)
            continue
        if code in (0x01, *range(0xD0, 0xD8)):
            continue
        length = f.read(2)
        if len(length) < 2:
            raise unreadable(path, "truncated JPEG header")
        (size,) = struct.unpack(">H", length)
        if code in _SOF:
            frame = f.read(6)
            if len(frame) < 6:
                raise unreadable(path, "truncated JPEG frame header")
            _, height, width, channels = struct.unpack(">BHHB", frame)
            return ImageHeader("jpeg", height, width, channels)
        f.seek(size - 2, os.SEEK_CUR)


def read_header(path: str) -> ImageHeader:
    """The header of a PNG or JPEG file.

    Raises:
      ConfigError: Not a PNG or JPEG, truncated, or without a size (names the file).
    """
    try:
        with open(path, "rb") as f:
            start = f.read(33)
            if start.startswith(_PNG):
                if len(start) < 33 or start[12:16] != b"IHDR":
                    raise unreadable(path, "truncated PNG header")
                width, height, _, colour = struct.unpack(">IIBB", start[16:26])
                if colour not in _PNG_CHANNELS:
                    raise unreadable(path, f"PNG colour type {colour}")
                header = ImageHeader("png", height, width, _PNG_CHANNELS[colour])
            elif start.startswith(b"\xff\xd8"):
                header = _jpeg_header(f, path)
            else:
                raise unreadable(path, "not a PNG or JPEG file")
    except OSError as e:
        raise unreadable(path, e.strerror or str(e)) from None
    if header.height < 1 or header.width < 1:
        raise unreadable(path, f"size {header.height}x{header.width}")
    return header


def _listing(folder: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(folder) if not n.startswith("."))
    except OSError as e:
        raise ConfigError(f"--dataset=folder: cannot list {folder} ({e.strerror or e})") from None


def scan_split(folder: str, class_names: list[str] | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """(class names, [(file, label)]) of one split folder `folder/<class>/*`.

    Args:
      folder: The split's folder.
      class_names: The training split's classes (a test split's subfolders must be among
        them); None: this folder's subfolders are the classes.

    Raises:
      ConfigError: No class subfolders, a class folder without images, an unknown class.
    """
    subfolders = [n for n in _listing(folder) if os.path.isdir(os.path.join(folder, n))]
    if not subfolders:
        raise ConfigError(
            f"--dataset=folder: {folder} has no class subfolders; put each class's images in "
            f"{folder}/<class>/ (the layout of keras.utils.image_dataset_from_directory)"
        )
    names = class_names if class_names is not None else subfolders
    unknown = [n for n in subfolders if n not in names]
    if unknown:
        raise ConfigError(
            f"--dataset=folder: {folder} has class folders {', '.join(unknown)} that the training "
            f"folder lacks (its classes: {', '.join(names)}); use the same class folders"
        )
    files = []
    for name in subfolders:
        class_dir = os.path.join(folder, name)
        images = [n for n in _listing(class_dir) if n.lower().endswith(EXTENSIONS)]
        images = [n for n in images if os.path.isfile(os.path.join(class_dir, n))]
        if not images:
            raise ConfigError(
                f"--dataset=folder: class folder {class_dir} holds no images ({', '.join(EXTENSIONS)}); "
                "add images or remove the folder"
            )
        files += [(os.path.join(class_dir, n), names.index(name)) for n in images]
    return list(names), files


@dataclasses.dataclass(frozen=True)
class FolderContents:
    """The files of an image folder (what its loader reads)."""

    root: str
    class_names: tuple[str, ...]
    train: tuple[tuple[str, int], ...]
    test: tuple[tuple[str, int], ...]
    channels: int
    first_size: tuple[int, int]
    held_out: bool  # the test split was drawn from the training folder


def scan(root: str, request: datasets.DataRequest) -> FolderContents:
    """Lists `root/train` and `root/test` (or holds out part of train) and reads every header."""
    root = os.path.abspath(os.path.expanduser(root))
    train_dir = os.path.join(root, request.train_split)
    test_dir = os.path.join(root, request.test_split)
    if not os.path.isdir(train_dir):
        raise ConfigError(
            f"--dataset=folder:{root}: no training folder {train_dir}; put the images in "
            f"{root}/{request.train_split}/<class>/ (or name it with --train_split)"
        )
    class_names, train = scan_split(train_dir)
    held_out = not (os.path.isdir(test_dir) and request.test_split != request.train_split)
    if not held_out:
        _, test = scan_split(test_dir, class_names)
    else:
        splits = [n for n in _listing(root) if os.path.isdir(os.path.join(root, n))]
        if not request.validation_fraction:
            raise datasets.missing_test_split(
                f"folder:{root}", request.test_split, splits, request.train_split
            )
        if len(train) < 2:
            raise ConfigError(
                f"--validation_fraction: {train_dir} has {len(train)} image; nothing to hold out"
            )
        kept, held = datasets.held_out_indices(len(train), request.validation_fraction, request.seed)
        train, test = [train[i] for i in kept], [train[i] for i in held]
    channels = 1
    first = None
    for path, _ in train + test:
        header = read_header(path)
        first = first or (header.height, header.width)
        if header.channels > 2:
            channels = 3
    return FolderContents(root, tuple(class_names), tuple(train), tuple(test), channels, first, held_out)


def resolve(path: str, request: datasets.DataRequest) -> DatasetFacts:
    """The facts of `folder:PATH` (the `folder` source's resolver)."""
    contents = scan(path, request)
    if len(contents.class_names) < 2:
        raise ConfigError(
            f"--dataset=folder:{contents.root}: one class ({contents.class_names[0]}); nac needs >= 2 class folders"
        )
    raw_size = datasets.resized_raw_size(request, min(contents.first_size))
    image_size = request.image_size or raw_size // max(1, request.downsample)
    return DatasetFacts(
        channels=contents.channels,
        num_classes=len(contents.class_names),
        image_size=image_size,
        train_examples=len(contents.train),
        raw_size=raw_size,
        kind="folder",
        test_examples=len(contents.test),
        class_names=contents.class_names,
        location=contents.root,
        splits=tuple(
            (name, len(files))
            for name, files in ((request.train_split, contents.train), (request.test_split, contents.test))
        ),
        details=(
            ("test_split", "" if contents.held_out else request.test_split),
            *datasets.request_details(request),
        ),
    )
