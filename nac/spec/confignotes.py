"""What nac does with an original v2.0 config's keys that do not map to a setting (pure Python).

An original config runs as it is (`nac.run.runconfig.from_flags`), but some of its keys
change nothing in nac, and one, `gpus`, changes what the original trained:

- `parameters.gpus`: the original's `batchsize` was per GPU, so a config listing N GPUs
  trained N x batchsize images per step. nac trains `batchsize` as the global batch, as
  before, unless `--original_gpus=N` asks for the original's N x batchsize; `notes` says
  which of the two a run does, in one line.
- Keys the original code never read, listed once each with the reason: `parameters.k`,
  `envelopenet.maxwideners`, `envelopenet.minwidenerintval`, an `initcell` copied inside
  `envelopenet`, and `size` in head (`classificationcell`) blocks.
"""

from __future__ import annotations

import re

from nac.spec.errors import ConfigError
from nac.spec.jsonio import load_json

_IGNORED = {
    ("parameters", "k"): "the original code never reads it",
    (
        "envelopenet",
        "maxwideners",
    ): "the original code never reads it (wideners stay where the envelope has them)",
    (
        "envelopenet",
        "minwidenerintval",
    ): "the original code never reads it (wideners stay where the envelope has them)",
    ("envelopenet", "initcell"): "a copy the original code never reads; the top-level initcell is the stem",
}


def gpu_count(gpus) -> int:
    """The number of GPUs a config's `gpus` lists (`"[0,1,2,3]"`, `[0, 1]`, `"[]"`)."""
    if isinstance(gpus, list):
        return len(gpus)
    return len(re.findall(r"\d+", str(gpus)))


def gpus_note(parameters: dict, original_gpus: int, batch_size: int) -> str:
    """One line: what the original trained per step and what this run trains."""
    n = gpu_count(parameters.get("gpus", "[]"))
    per_gpu = parameters.get("batchsize")
    if n <= 1:
        return (
            f"config: gpus {parameters.get('gpus', '[]')}: the original trained on one device, "
            f"{per_gpu} images per step; this run trains {batch_size}"
        )
    original = f"the original trained {n} x {per_gpu} = {n * per_gpu} images per step"
    if original_gpus == n:
        return f"config: gpus {parameters['gpus']}: {original}; this run does too (--original_gpus={n})"
    return (
        f"config: gpus {parameters['gpus']}: {original}; this run trains {batch_size} "
        f"(--original_gpus={n} reproduces the original's)"
    )


def ignored_keys(raw: dict) -> list[str]:
    """One line per key of `raw` (an original config) that nac, like the original, ignores."""
    lines = []
    for (section, key), reason in _IGNORED.items():
        if isinstance(raw.get(section), dict) and key in raw[section]:
            lines.append(f"config: {section}.{key} ignored: {reason}")
    head = raw.get("classificationcell")
    if isinstance(head, dict):
        sized = sorted(
            f"{layer}.{branch}"
            for layer, branches in head.items()
            if isinstance(branches, dict)
            for branch, block in branches.items()
            if isinstance(block, dict) and "size" in block
        )
        if sized:
            lines.append(
                f"config: classificationcell size ignored ({', '.join(sized)}): the original code "
                "never reads it (the head's shapes follow from the network)"
            )
    return lines


def notes(raw: dict, original_gpus: int, batch_size: int) -> list[str]:
    """The lines a run logs once about its original config."""
    parameters = raw.get("parameters") if isinstance(raw.get("parameters"), dict) else {}
    return [gpus_note(parameters, original_gpus, batch_size), *ignored_keys(raw)]


def file_notes(path: str, original_gpus: int, batch_size: int) -> list[str]:
    """`notes` of the original config file at `path`."""
    raw = load_json(path, ConfigError, "config file")
    return notes(raw, original_gpus, batch_size) if isinstance(raw, dict) else []
