"""The self-contained network file and the networks `nac.build_model` accepts (pure Python).

`nac_network.json`, written beside every step's `network.json`, is nac's network JSON
(`"format": "nac-network/1"`: stem, body and head in the original's blocks, input channels)
plus the input it was trained on: `image_size`, `input_shape` ([S, S, C]) and `num_classes`.
`build_options` holds the Keras builder's options the run used where they differ from the
defaults (branch order, cell form, statistics). `Network.from_dict` reads it like any nac
network JSON (the extra keys are ignored there); `nac.build_model(path)` rebuilds the same
Keras model from it, input size and options included.

`resolve` turns what a caller may pass as a network into a `Network` and an image size, with
the defaults of `nac.summary`: a notation gets the `conv1x1` stem and the default head, an
image size of 28 (26 for `conv3x3`, 299 for `imagenet`), 3 channels and 10 classes unless
given; a file is anything `nac.summary` reads (an original v2.0 config, nac's network JSON,
this file, an original `network.json` list); a `Network` is used as it is. Given channels or
classes replace the network's own (its stem's first convolution and its logits layer).
"""

from __future__ import annotations

import os

from nac.spec import arch as arch_lib
from nac.spec.config import OriginalConfig, network_file_kind
from nac.spec.errors import SpecError
from nac.spec.jsonio import load_json

FILE = "nac_network.json"
DEFAULT_IMAGE_SIZE = {"conv1x1": 28, "conv3x3": 26, "imagenet": 299}


def record(network: arch_lib.Network, image_size: int, build_options: dict | None = None) -> dict:
    """The self-contained file's content: nac's network JSON, the trained input and the
    Keras builder's options (`nac.net.model.BuildOptions` fields) that differ from its defaults."""
    out = {
        **network.to_dict(),
        "image_size": int(image_size),
        "input_shape": [int(image_size), int(image_size), network.input_channels],
        "num_classes": network.num_classes,
    }
    if build_options:
        out["build_options"] = dict(build_options)
    return out


def stored_options(path) -> dict:
    """The `build_options` a network file records ({} for any other file or value)."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        return {}
    data = load_json(os.fspath(path), SpecError, "network file")
    options = data.get("build_options") if isinstance(data, dict) else None
    return dict(options) if isinstance(options, dict) else {}


def _input(input_shape) -> tuple[int | None, int | None]:
    """(image size, channels) of an `input_shape` (S, S, C) or (S, S); (None, None) for None."""
    if input_shape is None:
        return None, None
    shape = tuple(input_shape)
    if len(shape) not in (2, 3) or not all(isinstance(v, int) and v >= 1 for v in shape):
        raise SpecError.got(
            "input_shape", input_shape, "expected (height, width, channels), e.g. (32, 32, 3)"
        )
    if shape[0] != shape[1]:
        raise SpecError.got(
            "input_shape", input_shape, "EnvelopeNets take square images; resize or crop them to S x S"
        )
    return shape[0], shape[2] if len(shape) == 3 else 1


def _with(network: arch_lib.Network, channels, classes) -> arch_lib.Network:
    head = network.head if classes is None else network.head.with_num_classes(classes)
    channels = network.input_channels if channels is None else channels
    return arch_lib.Network(network.body, network.stem, head, channels)


def _from_file(path: str, stem: str | None, channels: int, classes: int, seed: int):
    """(network, stored image size or None) of a network file."""
    data = load_json(path, SpecError, "network file")
    kind = network_file_kind(data)
    if kind == "config":
        config = OriginalConfig.load(path)
        return config.initial_network(channels, seed=seed), config.parameters.image_size
    if kind == "network":
        try:
            network = arch_lib.Network.from_dict(data)
        except SpecError as e:
            raise SpecError(f"{path}: {e}") from None
        size = data.get("image_size")
        return network, size if isinstance(size, int) and size >= 1 else None
    try:
        body = arch_lib.body_from_original(data)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from None
    name = stem or "conv1x1"
    return (
        arch_lib.Network(
            body, arch_lib.stem_for_body(body, name), arch_lib.head_for_stem(name, classes), channels
        ),
        DEFAULT_IMAGE_SIZE[name],
    )


def resolve(
    network,
    input_shape=None,
    num_classes: int | None = None,
    *,
    stem: str | None = None,
    skip: bool = False,
    seed: int = 0,
) -> tuple[arch_lib.Network, int]:
    """The `Network` and square input size `network` (a notation, a file path or a `Network`)
    stands for; see the module docstring for the defaults.

    Raises:
      SpecError: A bad notation, file, shape or class count (one line).
    """
    image_size, channels = _input(input_shape)
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
        raise SpecError.got("num_classes", num_classes, "expected an integer >= 2")
    if stem is not None and stem not in DEFAULT_IMAGE_SIZE:
        raise SpecError.got("stem", stem, f"expected one of {', '.join(DEFAULT_IMAGE_SIZE)}")
    if isinstance(network, arch_lib.Network):
        net, size = _with(network, channels, num_classes), None
    elif isinstance(network, (str, os.PathLike)) and os.path.exists(network):
        default_classes = arch_lib.IMAGENET_CLASSES if stem == "imagenet" else 10
        net, size = _from_file(os.fspath(network), stem, channels or 3, num_classes or default_classes, seed)
        net = _with(net, channels, num_classes)
    elif isinstance(network, str) and "/" in network and not network.endswith(".json"):
        name = stem or "conv1x1"
        default_classes = arch_lib.IMAGENET_CLASSES if name == "imagenet" else 10
        net = arch_lib.network_from_notation(
            network, name, skip, channels or 3, num_classes or default_classes
        )
        size = DEFAULT_IMAGE_SIZE[name]
    else:
        raise SpecError.got(
            "network",
            network if isinstance(network, (str, os.PathLike)) else type(network).__name__,
            "expected a notation C/n1-n2-.../M such as 16/1-1-1/6, an existing network file, "
            "or a nac.spec.arch.Network",
        )
    image_size = image_size or size or DEFAULT_IMAGE_SIZE.get(stem or "conv1x1")
    return net, image_size
