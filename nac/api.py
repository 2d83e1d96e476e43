"""nac from Python: build a network's Keras model, construct a network on your arrays, load one.

    import nac
    model = nac.build_model("16/1-1-1/6", (32, 32, 3), 10)        # a keras.Model (logits)
    result = nac.construct_network((x, y), (x_test, y_test), "runs/mine",
                                   envelope="16/1-1-1/6", iterations=3)
    result.model, result.network, result.history, result.summary, result.run_dir
    model = nac.load_model("runs/mine/final")                      # trainable keras.Model

Every Keras model here takes the network's input: float32 images `[N, S, S, C]` already
preprocessed as nac evaluates (`preprocess`: central crop to S, per-image standardisation)
and returns float32 logits. The step's `saved_model/` takes 0-255 pixels instead and
preprocesses inside.

`construct_network` runs what `python -m nac.construct` runs (the settings are its flags by
name, the run directory, artefacts and resume are the same) on in-memory arrays; see
`nac.spec.arrays` for what the arrays may be. A resume with other arrays is refused (the run
records their fingerprint). Every input error is a `nac.spec.errors.NacError` (a
`ValueError`) with one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os

from nac.spec import arrays as arrays_lib
from nac.spec import networkfile
from nac.spec.errors import ConfigError, RunError, SpecError

__all__ = ["ConstructionResult", "build_model", "construct_network", "load_model", "preprocess"]

# Settings construct_network sets itself, and the command line's flags that are not settings.
_OWN = ("dataset", "data_dir", "run_dir", "config_network", "config_random", "envelopecell")
_NETWORK_OPTIONS = ("stem", "skip", "seed", "name")


def _start_tensorflow():
    """What the command line does before TensorFlow's first import (a no-op once imported)."""
    from nac.training import runtime

    runtime.enable_onednn()
    runtime.quiet_tensorflow(0)


def build_model(network, input_shape=None, num_classes: int | None = None, **options):
    """The Keras model of an EnvelopeNet.

    Args:
      network: A notation `C/n1-n2-.../M`, a network file (nac's `nac_network.json` or
        network JSON, an original config or `network.json` list) or a
        `nac.spec.arch.Network`.
      input_shape: (S, S, C) or (S, S); None: the file's, else `nac.summary`'s default
        (28 x 28 x 3 for the conv1x1 stem).
      num_classes: Classes of the logits; None: the file's, else 10.
      **options: `stem` (conv1x1, conv3x3, imagenet), `skip`, `seed` (of a random config's
        instance), `name` (the model's), and the builder's `nac.net.model.BuildOptions`
        fields (`branch_order`, `branch_dropout`, `bn_momentum`, `bn_epsilon`,
        `synchronized_bn`, `statistics`, `cell_impl`). A `nac_network.json` brings the
        options its run used. With none, the model is what `nac.summary` counts.

    Returns:
      A `keras.Model` from preprocessed images to logits, with `model.network` (the spec).

    Raises:
      SpecError: A bad network, shape, class count or option (one line).
    """
    net_args = {k: options.pop(k) for k in _NETWORK_OPTIONS[:3] if k in options}
    name = options.pop("name", "envelopenet")
    network_spec, image_size = networkfile.resolve(network, input_shape, num_classes, **net_args)
    _start_tensorflow()
    from nac.net.model import BuildOptions
    from nac.net.model import build_model as build

    fields = {f.name for f in dataclasses.fields(BuildOptions)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise SpecError.got(
            "build_model option",
            unknown[0],
            f"expected one of {', '.join(sorted(fields | set(_NETWORK_OPTIONS)))}",
        )
    stored = {k: v for k, v in networkfile.stored_options(network).items() if k in fields}
    return build(network_spec, image_size, BuildOptions(**{**stored, **options}), name=name)


def preprocess(pixels, image_size: int | None = None):
    """nac's evaluation preprocessing of 0-255 pixels `[N, H, W, C]` (central crop to
    `image_size`, default H; per-image standardisation): the input of nac's Keras models."""
    _start_tensorflow()
    import tensorflow as tf

    from nac.data import preprocess as preprocess_lib

    pixels = tf.convert_to_tensor(pixels)
    if pixels.shape.rank == 3:
        pixels = pixels[..., None]
    size = image_size or int(pixels.shape[1])
    return tf.image.per_image_standardization(preprocess_lib.central_crop(tf.cast(pixels, tf.float32), size))


def load_model(step_dir):
    """The trained network of a step (`RUN/final`, `RUN/iter_0`, ...) as a trainable
    `keras.Model` (its `model.keras`, with `model.network` from `nac_network.json`).

    Raises:
      RunError: The step has no `model.keras` (one line with the fix).
    """
    path = os.path.join(os.fspath(step_dir), "model.keras")
    if not os.path.isfile(path):
        raise RunError(
            f"{path} is missing: nac writes it for every exported step (the final and random "
            "networks; --save_iteration_models adds the iterations, --nosave_models writes none)"
        )
    _start_tensorflow()
    import keras

    from nac.net import ops  # noqa: F401  (registers nac's layers, as nac.layers does)

    model = keras.models.load_model(path)
    spec_path = os.path.join(os.fspath(step_dir), networkfile.FILE)
    if os.path.isfile(spec_path):
        model.network, _ = networkfile.resolve(spec_path)
    return model


@dataclasses.dataclass(frozen=True)
class ConstructionResult:
    """What `construct_network` returns.

    Attributes:
      run_dir: The run directory.
      step: The step the other attributes describe: `final` (construct and oneshot modes)
        or, in random mode, the random network with the best test accuracy (`random_<j>`).
      network: That step's network (`nac.spec.arch.Network`).
      model: Its trained `keras.Model` (evaluation weights; `load_model`), None when the run
        saved no models (`save_models=False`).
      history: Its training's evaluations, as in its `metrics.json` (`history`).
      metrics: Its whole `metrics.json`.
      summary: The run's `summary.json`.
    """

    run_dir: str
    step: str
    network: object
    model: object
    history: list
    metrics: dict
    summary: dict


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _check_settings(settings: dict) -> None:
    from nac.run.runconfig import SECTION_OF

    fields = {"mode", *SECTION_OF} - set(_OWN)
    for name in settings:
        if name in _OWN:
            raise ConfigError.got(
                name, settings[name], "construct_network sets it itself (the arrays, run_dir); drop it"
            )
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=1)
            hint = f"did you mean {close[0]}?" if close else "expected a flag of nac.construct by name"
            raise ConfigError.got("construct_network setting", name, hint)


def _check_resume(run_dir: str, dataset: str, force: bool) -> None:
    """A run directory holding a run on other arrays is refused (before anything loads)."""
    path = os.path.join(run_dir, "run_config.json")
    if force or not os.path.isfile(path):
        return
    try:
        saved = _read_json(path).get("dataset")
    except (OSError, ValueError, AttributeError):
        return  # the runner reports an unreadable run_config.json
    if saved != dataset:
        what = f"other arrays (sha256 {saved[7:23]}...)" if arrays_lib.is_arrays(saved) else repr(saved)
        raise RunError(
            f"run_dir {run_dir} holds a run on {what}, not these arrays (sha256 {dataset[7:23]}...); "
            "pass the same arrays to resume, another run_dir, or force=True"
        )


def _as_arrays(split, where: str):
    if type(split).__module__.startswith("tensorflow"):
        _start_tensorflow()
        from nac.data import arrays as arrays_data

        return arrays_data.from_dataset(split, where)
    return split


def construct_network(train, test, run_dir, *, num_classes: int | None = None, **settings):
    """Constructs an EnvelopeNet on in-memory data, as `python -m nac.construct` would.

    Args:
      train: (images, labels) NumPy arrays (images `[N, H, W, C]` or `[N, H, W]`, 0-255,
        square; integer labels) or a finite `tf.data.Dataset` of (image, label), batched or
        not (read into memory).
      test: The same for the test split (the evaluations and the reported accuracy).
      run_dir: The run directory (resumed when it holds this run).
      num_classes: Classes of the network; None: the labels' maximum + 1.
      **settings: `nac.construct`'s flags by name (`mode`, `envelope`, `iterations`,
        `construction_steps`, `final_steps`, `seed`, `augment`, `image_size`, ...).

    Returns:
      A `ConstructionResult`.

    Raises:
      NacError: Bad arrays or settings, a run directory holding another run (one line);
        the runner's errors (`Diverged`, `WriteError`, ...) as the command line has them.
      KeyboardInterrupt: Stopped by SIGINT/SIGTERM (finished steps are kept).
    """
    source = arrays_lib.ArraySource.from_arrays(
        _as_arrays(train, "train"), _as_arrays(test, "test"), num_classes
    )
    _check_settings(settings)
    run_dir = os.fspath(run_dir)
    dataset = arrays_lib.register(source)
    try:
        _run(run_dir, dataset, settings)
    finally:
        arrays_lib.unregister(dataset)
    return result_of(run_dir)


def _run(run_dir: str, dataset: str, settings: dict) -> None:
    """Runs the construction on the registered arrays `dataset` (see `construct_network`)."""
    _check_resume(run_dir, dataset, bool(settings.get("force")))
    from nac.run.runconfig import from_flags

    values = {"run_dir": run_dir, "dataset": dataset, **settings}
    values.setdefault("deterministic", values.get("seed") is not None)  # as the command line
    config = from_flags(values, set(values))
    _start_tensorflow()
    from nac.run import runner

    shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
    code = runner.run(
        config, f"nac.construct_network(train, test, {run_dir!r}{', ' if shown else ''}{shown})"
    )
    if code in (130, 143):
        raise KeyboardInterrupt(f"stopped; finished steps in {run_dir} are kept, call again to resume")
    if code:
        raise RunError(f"construct_network: the run in {run_dir} ended with exit code {code}")


def result_of(run_dir) -> ConstructionResult:
    """The `ConstructionResult` of a finished run directory."""
    run_dir = os.fspath(run_dir)
    summary = _read_json(os.path.join(run_dir, "summary.json"))
    if summary.get("mode") == "random":
        steps = [row["name"] for row in summary["steps"]]
        metrics = [_read_json(os.path.join(run_dir, s, "metrics.json")) for s in steps]
        best = max(range(len(steps)), key=lambda j: metrics[j]["test_accuracy"])
        step, chosen = steps[best], metrics[best]
    else:
        step = "final"
        chosen = _read_json(os.path.join(run_dir, step, "metrics.json"))
    step_dir = os.path.join(run_dir, step)
    network, _ = networkfile.resolve(os.path.join(step_dir, networkfile.FILE))
    has_model = os.path.isfile(os.path.join(step_dir, "model.keras"))
    return ConstructionResult(
        run_dir=run_dir,
        step=step,
        network=network,
        model=load_model(step_dir) if has_model else None,
        history=chosen["history"],
        metrics=chosen,
        summary=summary,
    )
