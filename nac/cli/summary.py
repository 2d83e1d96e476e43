"""`python -m nac.summary ARG`: layers, parameters and FLOPs of an EnvelopeNet.

ARG is an existing file or else a notation string:
  * an original v2.0 config (`{"parameters": ...}`): its initial network (the EnvelopeNet, the
    fixed `arch`, or for `algorithm: random` a random instance drawn with --seed);
  * an original `network.json` list (stem and head from the options below);
  * nac's own network JSON (`{"format": "nac-network/1", ...}`);
  * a notation `C/n1-n2-.../M`, e.g. `128/10-1-1-1/6`.
Parameters are counted from the spec in pure Python. FLOPs are 2 x multiply-adds of
convolutions and dense layers in two counts (see `nac.spec.cost`): forward, and training (adding
each convolution's input and filter gradients and the dense layers' gradients, no depthwise
gradients: what the paper's profiler counted for its net B and ImageNet rows), per image and
per batch of the paper's (the config's batchsize; else 64 with the imagenet stem, else 50).
Input is validated before TensorFlow is imported (only --build imports it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from nac.cli import common as cli
from nac.run.schema import cost_fields
from nac.spec import arch as arch_lib
from nac.spec import cost as cost_lib
from nac.spec.config import OriginalConfig, network_file_kind
from nac.spec.errors import NacError, SpecError
from nac.spec.jsonio import load_json

PROG = "nac.summary"
DEFAULT_IMAGE_SIZE = {"conv1x1": 28, "conv3x3": 26, "imagenet": 299}


def make_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(PROG, __doc__)
    p.add_argument("arg", metavar="ARG", help="config file, network.json, nac network JSON, or notation")
    p.add_argument(
        "--image_size",
        type=int,
        help="input height and width (default: the config's "
        "image_size; else 28 for conv1x1, 26 for conv3x3, 299 for imagenet)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--build",
        action="store_true",
        help="also build the Keras model and report built_params (imports TensorFlow)",
    )
    p.add_argument(
        "--stem",
        choices=sorted(DEFAULT_IMAGE_SIZE),
        help="stem for notations and bare network.json lists (default conv1x1: 1x1 conv "
        "to C plus LRN, net A; conv3x3: net B; imagenet: the original's ImageNet stem, "
        "three layers of parallel stride-2 3x3/5x5/7x7 convs of 32, 64 and 96 filters, "
        "fixed whatever C, with head keep 0.7)",
    )
    p.add_argument(
        "--stem_width",
        type=int,
        help="C for a bare network.json list (default: outputs of its first stage's "
        "last layer; the imagenet stem is fixed and takes none)",
    )
    p.add_argument(
        "--skip",
        action="store_true",
        help='notation only: DenseNet-style skip inputs ("inputs": "all") on every cell',
    )
    p.add_argument("--input_channels", type=int, default=None, help="image channels (default 3)")
    p.add_argument(
        "--num_classes",
        type=int,
        default=None,
        help="classes for notations and network.json lists (default 10; 1001 with --stem imagenet)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of a random instance (algorithm: random)")
    p.add_argument(
        "--flops_batch",
        type=int,
        default=None,
        help="images per batch of the per-batch FLOPs (default: the config's batchsize; else 64 "
        "with --stem imagenet, else 50: the paper's Table 1)",
    )
    return p


def resolve(args) -> tuple[arch_lib.Network, int, int | None]:
    """Returns (network, image_size, EnvelopeCell size or None) for the parsed arguments, and
    sets `args.flops_batch` when not given."""
    channels = 3 if args.input_channels is None else args.input_channels
    default_classes = arch_lib.IMAGENET_CLASSES if args.stem == "imagenet" else 10
    classes = default_classes if args.num_classes is None else args.num_classes
    if args.stem == "imagenet" and args.stem_width is not None:
        raise SpecError("--stem_width: the imagenet stem is the original's, fixed; drop --stem_width")
    image_size = args.image_size
    cell_size = None
    if os.path.exists(args.arg):
        data = load_json(args.arg, SpecError, "file")
        kind = network_file_kind(data)
        if kind == "config":
            for flag in ("stem", "stem_width"):
                if getattr(args, flag) is not None:
                    raise SpecError(
                        f"--{flag}: {args.arg} is a config, whose initcell gives the stem; drop --{flag}"
                    )
            if args.skip:
                raise SpecError(f"--skip: {args.arg} is a config, which sets skip itself; drop --skip")
            config = OriginalConfig.load(args.arg)
            network = config.initial_network(channels, seed=args.seed)
            if args.num_classes is not None:
                network = arch_lib.Network(
                    network.body, network.stem, network.head.with_num_classes(classes), channels
                )
            if config.envelopenet is not None:
                cell_size = len(config.envelopenet.envelopecell)
            image_size = image_size or config.parameters.image_size
            args.flops_batch = args.flops_batch or config.parameters.batchsize
        elif kind == "network":
            try:
                network = arch_lib.Network.from_dict(data)
            except SpecError as e:
                raise SpecError(f"{args.arg}: {e}") from None
            image_size = image_size or 32
        else:
            try:
                body = arch_lib.body_from_original(data)
            except SpecError as e:
                raise SpecError(f"{args.arg}: {e}") from None
            if args.skip:
                raise SpecError("--skip: a network.json list carries its own skip inputs; drop --skip")
            stem_name = args.stem or "conv1x1"
            network = arch_lib.Network(
                body,
                arch_lib.stem_for_body(body, stem_name, args.stem_width),
                arch_lib.head_for_stem(stem_name, classes),
                channels,
            )
            image_size = image_size or DEFAULT_IMAGE_SIZE[stem_name]
    else:
        if args.stem_width is not None:
            raise SpecError("--stem_width: a notation gives C itself; drop --stem_width")
        if "/" not in args.arg:
            raise SpecError(
                f"ARG: got {args.arg!r}; not an existing file and not a notation "
                "C/n1-n2-.../M such as 128/10-1-1-1/6"
            )
        stem_name = args.stem or "conv1x1"
        network = arch_lib.network_from_notation(args.arg, stem_name, args.skip, channels, classes)
        cell_size = arch_lib.parse_notation(args.arg)[2]
        image_size = image_size or DEFAULT_IMAGE_SIZE[stem_name]
    args.flops_batch = args.flops_batch or cost_lib.paper_batch(
        "imagenet" if args.stem == "imagenet" else None
    )
    return network, image_size, cell_size


def summarise(
    network: arch_lib.Network, image_size: int, cell_size: int | None, flops_batch: int = 50
) -> dict:
    """The summary as a JSON-ready dict."""
    cost = cost_lib.analyse(network, image_size)
    return {
        "notation": network.notation(cell_size),
        "image_size": image_size,
        "input_channels": network.input_channels,
        "num_classes": network.num_classes,
        "stem_channels": network.stem.out_channels(network.input_channels),
        **cost_fields(cost),
        "flops_batch": flops_batch,
        "flops_forward_per_batch": flops_batch * cost.flops_forward_per_image,
        "flops_training_per_batch": flops_batch * cost.flops_training_per_image,
        "stages": cost_lib.stage_summary(network, image_size),
        "fingerprint": network.fingerprint(),
    }


def format_text(summary: dict) -> str:
    lines = [
        f"EnvelopeNet {summary['notation']}  (input {summary['image_size']}x"
        f"{summary['image_size']}x{summary['input_channels']}, {summary['num_classes']} classes, "
        f"stem {summary['stem_channels']} channels)"
    ]
    lines.append(
        f"{'stage':>5} {'layers':>6} {'branches':>8} {'channels':>8} {'size':>5} {'params':>12}  branches per layer"
    )
    for row in summary["stages"]:
        lines.append(
            f"{row['stage']:>5} {row['layers']:>6} {sum(row['branches']):>8} {row['channels']:>8} "
            f"{row['size']:>5} {row['params']:>12,}  {'-'.join(map(str, row['branches']))}"
        )
    lines.append(f"trainable parameters: {summary['trainable_params']:,}")
    lines.append(
        f"FLOPs per image: forward {summary['flops_forward_per_image'] / 1e9:.3f} G, training "
        f"{summary['flops_training_per_image'] / 1e9:.3f} G; per batch of {summary['flops_batch']}: "
        f"forward {summary['flops_forward_per_batch'] / 1e9:.1f} G, training "
        f"{summary['flops_training_per_batch'] / 1e9:.1f} G"
    )
    if "built_params" in summary:
        lines.append(f"built Keras model: {summary['built_params']:,} trainable parameters")
    return "\n".join(lines)


def built_params(network: arch_lib.Network, image_size: int) -> int:
    """Builds the Keras model and counts its trainable parameters (imports TensorFlow)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from nac.net import model as model_lib

    model = model_lib.build_model(network, image_size)
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))


def main(argv) -> int:
    args = make_parser().parse_args(argv)
    for flag in ("image_size", "input_channels", "num_classes", "stem_width", "flops_batch"):
        value = getattr(args, flag)
        if value is not None and value < (2 if flag == "num_classes" else 1):
            raise NacError(f"--{flag}: got {value}; expected a positive integer")
    network, image_size, cell_size = resolve(args)
    summary = summarise(network, image_size, cell_size, args.flops_batch)
    if args.build:
        summary["built_params"] = built_params(network, image_size)
    print(json.dumps(summary, indent=2) if args.json else format_text(summary))
    if args.build and summary["built_params"] != summary["trainable_params"]:
        print(
            f"{PROG}: error: built model has {summary['built_params']} trainable parameters, "
            f"the spec {summary['trainable_params']}",
            file=sys.stderr,
        )
        return 1
    return 0


run = cli.console_script(PROG, main)


if __name__ == "__main__":
    run()
