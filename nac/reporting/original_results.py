"""Reading the original's results folders as runs, so `nac.report` puts them beside nac's.

The original (`CiscoAI/envelopenets`) writes, per construction iteration, a folder
`results/<archname>` (iteration 0) and `results/<archname>-<k>` (iteration k) holding
`network.json` (the architecture trained, the original's list format), `res.log` (the
`MeanSSS:Cell<k>/Branch<N>:[value]` lines its training printed, TensorFlow prefixes and other
lines included) and TensorFlow event files whose scalar `Precision @ 1` is the test accuracy.

`load_original(path, config_path)` reads one archname's folders into a `nac.run.rundir.Run`
(`origin="original"`):

* the folders become steps `iter_0 .. iter_{n-2}` and, for the last one, `final` (the
  architecture of the last restructuring, which the original's long run trained), so the
  lineage and the replay check work as for nac's runs; a single folder is a one-shot run
  (`final` only);
* `stats.json`: the last `MeanSSS` value per branch of `res.log`; the series of Figure 2 and
  the stability analysis: the n-th value of every branch is "round" n (`res.log` has no step
  numbers);
* `metrics.json`: parameters and FLOPs counted by `nac.spec.cost` from `network.json` with the
  config's stem, head and image size; `history` from the `Precision @ 1` events (step, value);
* the config (`--original_config`) gives the stem, head, image size, batch size, dataset,
  role and the restructure policy of the replay check. Without it nac assumes net A's stem
  (a 1x1 conv as wide as the first stage), a 10-class head, CIFAR-10 at 28x28 and batch 50,
  and skips the replay check, both with a note.

Only reading event files imports TensorFlow (`tf.data.TFRecordDataset` and the `Event`
protocol buffer), and only when a folder has one.
"""

from __future__ import annotations

import glob
import os
import re

from nac.run.runconfig import ORIGINAL_EPOCH_IMAGES
from nac.run.rundir import Run, Step
from nac.run.schema import cost_fields
from nac.search import statsio
from nac.spec import arch as arch_lib
from nac.spec import cost as cost_lib
from nac.spec.choices import DATASETS
from nac.spec.config import OriginalConfig
from nac.spec.errors import NacError, RunError
from nac.spec.jsonio import load_json

ACCURACY_TAG = "Precision @ 1"
EVENT_GLOB = "events.out.tfevents.*"
_SUFFIX_RE = re.compile(r"^(.*)-([0-9]+)$")
_LINE_RE = re.compile(r"MeanSSS:(Cell[0-9]+/Branch[0-9]+):\[([^\]]*)\]\s*$")


def archname_folders(path: str) -> dict[str, list[tuple[int, str]]]:
    """{archname: [(iteration, folder), ...]} of a results folder, or of one archname folder.

    A folder `X-<k>` is iteration k of `X` when `X` is a folder too; every other folder
    holding a `network.json` is iteration 0 of its own archname.
    """
    path = os.path.normpath(path)
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.exists(path) else "is not a directory"
        raise RunError(f"--original {path!r} {what}; pass the original's results folder")
    if os.path.isfile(os.path.join(path, "network.json")):  # one archname's folder was given
        parent, name = os.path.split(path)
        match = _SUFFIX_RE.match(name)
        base = match.group(1) if match and os.path.isdir(os.path.join(parent, match.group(1))) else name
        return {base: _iterations(parent or ".", base)}
    names = sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n, "network.json")))
    bases = [n for n in names if not (_SUFFIX_RE.match(n) and _SUFFIX_RE.match(n).group(1) in names)]
    if not bases:
        raise RunError(
            f"--original {path!r}: no <archname>/network.json inside; pass the original's results folder"
        )
    return {base: _iterations(path, base) for base in bases}


def _iterations(parent: str, base: str) -> list[tuple[int, str]]:
    out = [(0, os.path.join(parent, base))]
    for name in os.listdir(parent):
        match = _SUFFIX_RE.match(name)
        if match and match.group(1) == base and os.path.isfile(os.path.join(parent, name, "network.json")):
            out.append((int(match.group(2)), os.path.join(parent, name)))
    return sorted(out)


def res_log_series(text: str, source: str) -> tuple[dict[str, float], dict[str, list[float]]]:
    """(last value per branch, values per branch in log order) of the MeanSSS lines."""
    stats = statsio.parse_res_log(text, "l2", source)
    series: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = _LINE_RE.search(line)
        if match:
            series.setdefault(match.group(1), []).append(float(match.group(2)))
    return stats, series


def accuracy_events(folder: str) -> list[tuple[int, float, float]]:
    """(step, test accuracy, wall time) of every `Precision @ 1` scalar in `folder`'s event
    files (searched recursively), sorted by step; the last write of a step wins."""
    files = sorted(glob.glob(os.path.join(folder, "**", EVENT_GLOB), recursive=True))
    if not files:
        return []
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf  # only for reading the original's event files
    from tensorflow.core.util import event_pb2

    points: dict[int, tuple[float, float]] = {}
    for path in files:
        try:
            for record in tf.data.TFRecordDataset(path):
                event = event_pb2.Event.FromString(record.numpy())
                for value in event.summary.value:
                    if value.tag != ACCURACY_TAG:
                        continue
                    if value.HasField("simple_value"):
                        number = float(value.simple_value)
                    else:
                        number = float(tf.make_ndarray(value.tensor))
                    points[int(event.step)] = (number, float(event.wall_time))
        except tf.errors.DataLossError as e:
            raise RunError(f"{path}: a truncated or corrupt event file ({e.message})") from None
    return [(step, acc, wall) for step, (acc, wall) in sorted(points.items())]


def _role(config: OriginalConfig | None, iterations: int) -> str:
    if config is None:
        return "constructed" if iterations else "oneshot"
    algorithm = config.parameters.algorithm
    if algorithm == "random":
        return "random"
    if algorithm == "envelopenet" and config.parameters.mode == "construct":
        return "worst_case" if config.envelopenet.worstcase else "constructed"
    return "constructed" if iterations else "oneshot"


def load_original(path: str, config_path: str | None = None, label: str | None = None) -> list[Run]:
    """Reads the original's results folder `path` into one `Run` per archname.

    Raises:
      RunError: not a results folder, or a file in it cannot be read.
    """
    config = None
    if config_path is not None:
        try:
            config = OriginalConfig.load(config_path)
        except NacError as e:
            raise RunError(f"--original_config: {e}") from None
    runs = []
    for archname, folders in archname_folders(path).items():
        runs.append(_load_archname(archname, folders, config, label))
    return runs


def _load_step(name, folder, config, image_size, batch, train_examples, notes) -> Step:
    """One network folder of the original's results as a step: its network.json, cost and
    accuracy events (a note when it has none)."""
    raw = load_json(os.path.join(folder, "network.json"), RunError, "network.json")
    try:
        body = arch_lib.body_from_original(raw, f"{folder}/network.json")
        if config is not None:
            network = config.network(body)
        else:
            network = arch_lib.Network(body, arch_lib.stem_for_body(body), arch_lib.Head.default(10))
        cost = cost_lib.analyse(network, image_size)
    except NacError as e:
        raise RunError(f"{folder}/network.json: {e}") from None
    events = accuracy_events(folder)
    history = [{"step": s, "test_accuracy": a} for s, a, _ in events]
    walls = [w for _, _, w in events]
    accuracy = history[-1]["test_accuracy"] if history else float("nan")
    if not history:
        notes.append(f"{os.path.basename(folder)}: no '{ACCURACY_TAG}' events; no test accuracy")
    last_step = history[-1]["step"] if history else 0
    row = {
        "name": name,
        "notation": network.notation(
            len(config.envelopenet.envelopecell) if config and config.envelopenet else None
        ),
        **cost_fields(cost),
        "steps": last_step,
        "epochs": last_step * batch / train_examples,
        "test_accuracy": accuracy,
        "test_error": 1.0 - accuracy,
        "wall_time_s": (walls[-1] - walls[0]) if walls else 0.0,
    }
    return Step(name, folder, {**row, "history": history, "original_folder": folder}, row, network_list=raw)


def _read_res_log(step: Step, folder, name, batch, notes) -> None:
    """Attaches a folder's res.log statistics and series to `step` (a note when a
    construction iteration has none)."""
    log = os.path.join(folder, "res.log")
    if os.path.isfile(log):
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                stats, series = res_log_series(f.read(), log)
        except NacError as e:
            raise RunError(str(e)) from None
        step.stats = stats
        rounds = min(len(v) for v in series.values())
        step.series = {
            "format": "nac-stats-series/1",
            "metric": "l2",
            "batch_size": batch,
            "steps": list(range(1, rounds + 1)),
            "values": {b: v[:rounds] for b, v in series.items()},
            "x": "res.log round",
        }
    elif name != "final":
        notes.append(f"{os.path.basename(folder)}: no res.log; no statistics")


def _load_archname(archname, folders, config, label) -> Run:
    p = config.parameters if config is not None else None
    dataset = {"imagenet": "imagenet2012"}.get(p.dataset, p.dataset) if p else "cifar10"
    image_size = p.image_size if p else 28
    batch = p.batchsize if p else 50
    facts = DATASETS.get(dataset)
    train_examples = facts.train_examples if facts else ORIGINAL_EPOCH_IMAGES
    notes = []
    if config is None:
        notes.append(
            "no --original_config: net A's stem, 10 classes, cifar10 at 28x28 and batch 50 "
            "assumed; the replay check was skipped"
        )
    iterations = len(folders) - 1
    steps = {}
    role = _role(config, iterations)
    for position, (_, folder) in enumerate(folders):
        name = "final" if position == len(folders) - 1 else f"iter_{position}"
        if role == "random":  # one random network per folder
            name = f"random_{position}"
        step = _load_step(name, folder, config, image_size, batch, train_examples, notes)
        _read_res_log(step, folder, name, batch, notes)
        steps[name] = step
    run = Run(
        path=os.path.dirname(folders[0][1]) or ".",
        role=role,
        mode="construct" if iterations else "oneshot",
        dataset=dataset,
        seed=None,
        iterations=iterations,
        summary=None,
        config=config,
        steps=steps,
        notes=notes,
    )
    run.label = label or f"original:{archname}"
    run.origin = "original"
    return run
