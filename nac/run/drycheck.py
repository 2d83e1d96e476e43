"""What `--dry_run` checks beyond the flags, without TensorFlow: the data and the machine.

`data_line(config)` says where the run will read its dataset, by the same search order as
`nac.data.datasources` (local files first, then a prepared tensorflow-datasets directory),
looking only at which files exist. Missing data is a warning, not an error: a flagfile for
data this machine lacks must still dry-run, and the run itself fails fast with the same
places named. `gpu_warnings(config)` warns about GPU-only options (`--mixed_precision`,
`--jit_compile`) on a machine where no NVIDIA GPU is visible.
"""

from __future__ import annotations

import glob
import os

from nac.data.datafiles import DEBIAN_FASHION_MNIST, IDX_FILES

_CIFAR_NAMES = (
    "cifar-10-batches-bin",
    "cifar-10-batches-py",
    "cifar-10-binary.tar.gz",
    "cifar-10-python.tar.gz",
    "data_batch_1.bin",
    "data_batch_1",
)
_IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
_TFDS_NAMES = {"cifar10": "cifar10", "fashion_mnist": "fashion_mnist", "mnist": "mnist"}


def _tfds_dir(data_dir: str | None) -> str:
    if data_dir:
        return data_dir
    return os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def _idx_dirs(name: str, data_dir: str | None) -> list[str]:
    dirs = []
    if data_dir:
        dirs += [data_dir, os.path.join(data_dir, name)]
        if "_" in name:
            dirs.append(os.path.join(data_dir, name.replace("_", "-")))
    if name == "fashion_mnist":
        dirs.append(DEBIAN_FASHION_MNIST)
    return dirs


def _has_idx(directory: str) -> bool:
    return any(
        os.path.isfile(os.path.join(directory, base + ext)) for base in IDX_FILES for ext in (".gz", "")
    )


def locate(dataset: str, data_dir: str | None) -> tuple[str | None, list[str]]:
    """(where the data is, or None; the places looked at), checking names only."""
    if dataset == "synthetic":
        return "generated in memory", []
    if dataset == "imagenet2012":
        root = _tfds_dir(data_dir)
        if os.path.isdir(os.path.join(root, "imagenet2012")):
            return f"prepared tensorflow-datasets in {os.path.join(root, 'imagenet2012')}", [root]
        for d in (root, os.path.join(root, "downloads", "manual")):
            if all(os.path.isfile(os.path.join(d, f)) for f in _IMAGENET_TARS):
                return f"the two ILSVRC2012 tar files in {d} (prepared on the first run)", [root]
        return None, [root, os.path.join(root, "downloads", "manual")]
    if dataset == "cifar10":
        base = data_dir or _tfds_dir(None)
        places = ([data_dir] if data_dir else []) + [os.path.join(base, "downloads", "manual")]
        for place in places:
            for name in _CIFAR_NAMES:
                if os.path.exists(os.path.join(place, name)):
                    return f"files in {os.path.join(place, name)}", places
    else:
        places = _idx_dirs(dataset, data_dir)
        for place in places:
            if _has_idx(place):
                return f"IDX files in {place}", places
    tfds = os.path.join(_tfds_dir(data_dir), _TFDS_NAMES[dataset])
    if os.path.isdir(tfds):
        return f"prepared tensorflow-datasets in {tfds}", places + [tfds]
    return None, places + [tfds]


def data_lines(config) -> tuple[list[str], list[str]]:
    """(plan lines, warning lines) about the run's data."""
    if not config.data.builtin:
        return [], []  # a source's facts were found while validating; --dry_run prints them
    warnings = []
    dataset, data_dir = config.data.dataset, config.data.data_dir
    found, looked = locate(dataset, data_dir)
    if data_dir and not os.path.isdir(data_dir):
        warnings.append(
            f"--data_dir={data_dir} does not exist"
            + ("; the run reads the data from elsewhere (see the data line)" if found else "")
        )
    if found is not None:
        return [f"data: {dataset}, {found}"], warnings
    warnings.append(
        f"--dataset={dataset}: not found on this machine (looked in {', '.join(looked)}); "
        "the run needs it there, or online access for tensorflow-datasets (see README, Data)"
    )
    return [f"data: {dataset} not found locally"], warnings


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible to this process (device files, CUDA_VISIBLE_DEVICES)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*") or glob.glob("/proc/driver/nvidia/gpus/*"))


def gpu_warnings(config, has_gpu: bool | None = None) -> list[str]:
    """Warnings for GPU-only options on a machine without a GPU."""
    has_gpu = gpu_visible() if has_gpu is None else has_gpu
    if has_gpu:
        return []
    given = [flag for flag in ("mixed_precision", "jit_compile") if getattr(config.training, flag)]
    return [
        f"--{flag} is for GPUs and no GPU is visible here: "
        + ("float16 on a CPU is slower" if flag == "mixed_precision" else "XLA on a CPU is slower")
        + f" (--no{flag} to turn it off)"
        for flag in given
    ]
