"""The facts of a prepared tensorflow-datasets set, read from its files with plain json.

`--dataset=tfds:NAME` or `tfds:NAME/CONFIG` is looked for in `--data_dir`, then in
tensorflow-datasets' own folder (`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`), as
`DIR/NAME[/CONFIG]/VERSION/` (the highest version holding a `dataset_info.json`; without a
CONFIG, the default config named in `DIR/NAME/.config/metadata.json`, else the only one).
From that folder:

- the features (`features.json`, or the `features` of `dataset_info.json`): the image is the
  supervised input (`supervisedKeys`) or the `Image` feature (the one named `image` first),
  the label the supervised output or the `ClassLabel` feature (`label` first); its shape
  gives the channels and the image size, its `numClasses` the classes;
- the splits (`dataset_info.json`): examples from `shardLengths` (their sum) or
  `statistics.numExamples`;
- the class names: `<label>.labels.txt` beside them, when there.

No TensorFlow is imported: validation and `--dry_run` read these before it loads.
"""

from __future__ import annotations

import json
import os
import re

from nac.spec import datasets
from nac.spec.choices import DatasetFacts
from nac.spec.errors import ConfigError

IMAGE_CLASS = "Image"
LABEL_CLASS = "ClassLabel"
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def default_dir() -> str:
    """tensorflow-datasets' own folder: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def search_dirs(data_dir: str | None) -> list[str]:
    """Where prepared datasets are looked for, in order."""
    dirs = [os.fspath(data_dir)] if data_dir else []
    if default_dir() not in dirs:
        dirs.append(default_dir())
    return dirs


def _read_json(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--dataset: cannot read {what} {path} ({e}); prepare the dataset again") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--dataset: {path} is not a tfds {what}; prepare the dataset again")
    return value


def _versions(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    names = [n for n in os.listdir(folder) if _VERSION.match(n)]
    names = [n for n in names if os.path.isfile(os.path.join(folder, n, "dataset_info.json"))]
    return sorted(names, key=lambda n: tuple(int(p) for p in n.split(".")))


def find_prepared(name: str, data_dir: str | None) -> str:
    """The version folder of a prepared `NAME[/CONFIG]`.

    Raises:
      ConfigError: Not found; the line names every folder looked in.
    """
    base, _, config = name.partition("/")
    looked = []
    for directory in search_dirs(data_dir):
        root = os.path.join(directory, base)
        candidates = [os.path.join(root, config)] if config else [root]
        if not config and os.path.isdir(root):
            default = None
            meta = os.path.join(root, ".config", "metadata.json")
            if os.path.isfile(meta):
                default = _read_json(meta, "metadata").get("default_config_name")
            configs = sorted(c for c in os.listdir(root) if _versions(os.path.join(root, c)))
            if default:
                candidates.append(os.path.join(root, default))
            elif len(configs) == 1:
                candidates.append(os.path.join(root, configs[0]))
        for folder in candidates:
            versions = _versions(folder)
            if versions:
                return os.path.join(folder, versions[-1])
        looked.append(os.path.join(root, config) if config else root)
    raise ConfigError(
        f"--dataset=tfds:{name}: no prepared tensorflow-datasets set in {', '.join(looked)}; "
        f"prepare it there (e.g. `tfds build {base}` or tfds.dataset_builders.store_as_tfds_dataset) "
        "or give --data_dir=DIR holding NAME/[CONFIG/]VERSION/dataset_info.json"
    )


def _features(folder: str, info: dict) -> dict:
    path = os.path.join(folder, "features.json")
    features = _read_json(path, "features file") if os.path.isfile(path) else info.get("features", {})
    return features.get("featuresDict", {}).get("features", {})


def _kind(feature: dict) -> str:
    return str(feature.get("pythonClassName", "")).rsplit(".", 1)[-1]


def _supervised(info: dict) -> tuple[str | None, str | None]:
    keys = info.get("supervisedKeys") or {}
    items = keys.get("tuple", {}).get("items")
    if items and len(items) >= 2:
        return items[0].get("featureKey"), items[1].get("featureKey")
    return keys.get("input"), keys.get("output")


def _pick(features: dict, preferred: str | None, kind: str, name: str) -> str | None:
    if preferred in features and _kind(features[preferred]) == kind:
        return preferred
    of_kind = [k for k, v in features.items() if _kind(v) == kind]
    return name if name in of_kind else (of_kind[0] if of_kind else None)


def split_sizes(info: dict) -> dict[str, int]:
    """Examples per split of a `dataset_info.json`."""
    out = {}
    for split in info.get("splits", []):
        lengths = split.get("shardLengths")
        if lengths:
            out[split["name"]] = sum(int(n) for n in lengths)
        else:
            out[split["name"]] = int(split.get("statistics", {}).get("numExamples", 0))
    return out


def resolve(name: str, request: datasets.DataRequest) -> DatasetFacts:
    """The facts of `tfds:NAME[/CONFIG]` (the `tfds` source's resolver)."""
    folder = find_prepared(name, request.data_dir)
    info = _read_json(os.path.join(folder, "dataset_info.json"), "dataset info")
    features = _features(folder, info)
    image_key, label_key = _supervised(info)
    image_key = _pick(features, image_key, IMAGE_CLASS, "image")
    label_key = _pick(features, label_key, LABEL_CLASS, "label")
    if image_key is None or label_key is None:
        have = ", ".join(f"{k} ({_kind(v)})" for k, v in features.items()) or "none"
        raise ConfigError(
            f"--dataset=tfds:{name}: nac needs an Image and a ClassLabel feature; {folder} has {have}; "
            "use an image classification dataset"
        )
    dims = [int(d) for d in features[image_key].get("image", {}).get("shape", {}).get("dimensions", [])]
    if len(dims) != 3:
        raise ConfigError(
            f"--dataset=tfds:{name}: image feature {image_key!r} has shape {dims}; nac needs [H, W, C]"
        )
    height, width, channels = dims
    channels = channels if channels in (1, 3) else 3
    fixed = height > 0 and width > 0
    if not fixed and request.image_size is None:
        raise ConfigError(
            f"--dataset=tfds:{name}: its images vary in size; give --image_size=S (they are resized to S x S)"
        )
    # Square images are kept as stored (cropped like the built-in sets); others are resized.
    square = fixed and height == width
    raw_size = height if square else datasets.resized_raw_size(request, min(height, width))
    image_size = request.image_size or (raw_size if square else raw_size // max(1, request.downsample))
    classes = int(features[label_key].get("classLabel", {}).get("numClasses", 0))
    names_path = os.path.join(folder, f"{label_key}.labels.txt")
    class_names = None
    if os.path.isfile(names_path):
        with open(names_path, encoding="utf-8") as f:
            class_names = tuple(line.strip() for line in f if line.strip())
        classes = classes or len(class_names)
    if classes < 2:
        raise ConfigError(
            f"--dataset=tfds:{name}: label feature {label_key!r} has {classes} classes; nac needs >= 2"
        )
    sizes = split_sizes(info)
    train, test = _split_counts(f"tfds:{name} ({folder})", sizes, request)
    return DatasetFacts(
        channels=channels,
        num_classes=classes,
        image_size=image_size,
        train_examples=train,
        raw_size=raw_size,
        kind="tfds",
        test_examples=test,
        class_names=class_names,
        location=folder,
        splits=tuple(sizes.items()),
        details=(
            ("image_key", image_key),
            ("label_key", label_key),
            ("train_split", request.train_split),
            ("test_split", request.test_split if request.test_split in sizes else ""),
            ("stored", f"{height}x{width}x{dims[2]}"),
            *datasets.request_details(request),
        ),
    )


def _split_counts(where: str, sizes: dict[str, int], request: datasets.DataRequest) -> tuple[int, int]:
    if request.train_split not in sizes:
        raise ConfigError(
            f"--train_split: {where} has no split {request.train_split!r} (splits: "
            f"{', '.join(sizes) or 'none'}); give --train_split=NAME"
        )
    total = sizes[request.train_split]
    if request.test_split in sizes and request.test_split != request.train_split:
        return total, sizes[request.test_split]
    if not request.validation_fraction:
        raise datasets.missing_test_split(where, request.test_split, sizes, request.train_split)
    if total < 2:
        raise ConfigError(f"--validation_fraction: {where}'s {request.train_split} split has {total} example")
    held = datasets.held_out_count(total, request.validation_fraction)
    return total - held, held
