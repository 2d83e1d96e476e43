"""Keras functional builder: a `Network` spec in, a Keras model out.

Semantics (the original code's, which reproduce the paper's parameter counts exactly):

* branch: convolution without bias (regular, or depthwise K x K + pointwise 1 x 1 with depth
  multiplier 1 and nothing between), batch norm with beta only (epsilon 1e-3, momentum 0.999),
  ReLU, featuremap tap, dropout (rate 0.2, training only). `BuildOptions.branch_order` can
  put the ReLU before the batch norm, as the paper's text says.
* a layer of cells concatenates its branches in sorted key order; each has
  `outputs // branches` channels.
* cell implementation (`BuildOptions.cell_impl`): ``per_cell`` (default) concatenates the
  branch convolutions first and runs ONE batch norm (beta only), ReLU and dropout over the
  cell's channels; ``per_branch`` gives every branch its own Keras batch norm, ReLU, tap and
  dropout layers and concatenates at the end. The two compute the same function: batch norm
  normalises each channel with that channel's own batch (or moving) statistics and its own
  beta, so one batch norm over the concatenation IS per-channel batch norm of each branch,
  whatever the branches' widths (the beta of branch j is the slice of the cell's beta at
  branch j's channels); ReLU and dropout act per element. Trainable parameters are the
  same. Only the random dropout masks differ (one draw over the cell instead of one per
  branch: the same distribution, another stream). ``per_cell`` runs far fewer ops per step
  (BUILD_NOTES.md, "Speed and output"). Weight names differ: per branch
  `cell12_branch3_bn/beta`, per cell `cell12_bn/beta` (the branches' betas concatenated in
  sorted key order), so checkpoints of one form do not load into the other;
  `network.json` and the SavedModel's signature are the same.
* featuremap taps: per branch, after the ReLU and before the dropout; in the per-cell form
  one tap per branch is chained on the cell's post-ReLU tensor and reads its branch's
  channel slice, so every branch's statistic is the same as in the per-branch form.
* stem: conv2d blocks with bias + ReLU and no batch norm, LRN, max pool (stride 2), dropout.
* widener: concat(max pool 2x2 stride 2, conv 3x3 stride 2 with `channelwidth` filters, bias +
  ReLU); `channelwidth` starts at the stem's output width and doubles after each widener.
* skip inputs: extra tensors max-pooled 2x2 stride 2 until their height matches, concatenated
  after the cell's normal input, then a 1x1 conv (bias + ReLU) back to its width.
* head: global average pool, flatten, dropout, dense layers; the logits layer is initialised
  truncated-normal with std 1 / `inputs`, an `fc` layer Glorot-uniform (Xavier), zero biases. Convolutions are Glorot-uniform with
  zero bias. No weight decay in the model.

Layer names come from the spec (`cell12_branch3_conv`, `widener11_conv`, ...) and never
contain "/". The returned model carries its spec as `model.network` and the options as
`model.build_options`; `taps(model)` maps each branch id to its `FeaturemapTap`.
"""

from __future__ import annotations

import contextlib
import dataclasses

import keras
import numpy as np

from nac.net.ops import FeaturemapTap, LocalResponseNormalization
from nac.spec import arch as arch_lib
from nac.spec.checks import statistics_in_order
from nac.spec.choices import BRANCH_ORDERS, CELL_IMPLS
from nac.spec.errors import SpecError


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """How branches are built. Defaults reproduce the original code.

    Attributes:
      branch_order: `conv_bn_relu` (the original code) or `conv_relu_bn` (the paper's text).
      branch_dropout: dropout rate after each branch (the original's keep 0.8).
      bn_momentum, bn_epsilon: batch norm constants (the original's 0.999 and 1e-3).
      synchronized_bn: batch statistics over all replicas (multi-GPU option).
      statistics: what the featuremap taps accumulate: `l2` and optionally `variance`.
      cell_impl: `per_cell` (one batch norm, ReLU and dropout over a cell's concatenated
        branch convolutions; the default, faster) or `per_branch` (Keras layers per
        branch); the same function (see the module docstring).
    """

    branch_order: str = "conv_bn_relu"
    branch_dropout: float = 0.2
    bn_momentum: float = 0.999
    bn_epsilon: float = 1e-3
    synchronized_bn: bool = False
    statistics: tuple[str, ...] = ("l2",)
    cell_impl: str = "per_cell"

    def __post_init__(self):
        if self.cell_impl not in CELL_IMPLS:
            raise SpecError(f"cell_impl: got {self.cell_impl!r}; expected one of {CELL_IMPLS}")
        if self.branch_order not in BRANCH_ORDERS:
            raise SpecError(f"branch_order: got {self.branch_order!r}; expected one of {BRANCH_ORDERS}")
        if not 0 <= self.branch_dropout < 1:
            raise SpecError(f"branch_dropout: got {self.branch_dropout}; expected a rate in [0, 1)")
        statistics_in_order(self.statistics, SpecError, empty_ok=True)
        object.__setattr__(self, "statistics", tuple(self.statistics))


def apply_stem(x, stem: arch_lib.Stem):
    """Applies the stem's layers; parallel branches of a layer are concatenated."""
    for layer_key, blocks in stem.layers:
        outs = []
        for branch_key, block in blocks:
            name = f"stem_{layer_key.lower()}_{branch_key.lower()}"
            if block.kind == "conv2d":
                y = keras.layers.Conv2D(
                    block.outputs,
                    block.kernel_size,
                    strides=block.stride,
                    padding="same",
                    activation="relu",
                    name=f"{name}_conv",
                )(x)
            elif block.kind == "max_pool":
                y = keras.layers.MaxPooling2D(
                    block.kernel_size, strides=2, padding="same", name=f"{name}_pool"
                )(x)
            elif block.kind == "lrn":
                y = LocalResponseNormalization(name=f"{name}_lrn")(x)
            else:
                y = keras.layers.Dropout(1.0 - block.keep_prob, name=f"{name}_dropout")(x)
            outs.append(y)
        x = _concat(outs, f"stem_{layer_key.lower()}_concat")
    return x


def _concat(tensors, name):
    if len(tensors) == 1:
        return tensors[0]
    return keras.layers.Concatenate(axis=-1, name=name)(tensors)


def _branch_conv(op: arch_lib.Op, filters: int, name: str):
    if op.separable:
        return keras.layers.SeparableConv2D(
            filters, op.kernel, padding="same", use_bias=False, depth_multiplier=1, name=f"{name}_conv"
        )
    return keras.layers.Conv2D(filters, op.kernel, padding="same", use_bias=False, name=f"{name}_conv")


def _bn_relu(y, name: str, options: BuildOptions):
    """Batch norm (beta only) and ReLU in `options.branch_order`."""
    bn = keras.layers.BatchNormalization(
        momentum=options.bn_momentum,
        epsilon=options.bn_epsilon,
        scale=False,
        center=True,
        synchronized=options.synchronized_bn,
        name=f"{name}_bn",
    )
    relu = keras.layers.ReLU(name=f"{name}_relu")
    return relu(bn(y)) if options.branch_order == "conv_bn_relu" else bn(relu(y))


def apply_branch(x, op: arch_lib.Op, filters: int, branch: arch_lib.BranchId, options: BuildOptions):
    """One branch: conv (no bias), batch norm (beta only), ReLU, featuremap tap, dropout."""
    name = branch.keras
    y = _bn_relu(_branch_conv(op, filters, name)(x), name, options)
    y = FeaturemapTap(branch.original, options.statistics, name=f"{name}_tap")(y)
    if options.branch_dropout:
        y = keras.layers.Dropout(options.branch_dropout, name=f"{name}_dropout")(y)
    return y


def apply_skip(x, k: int, cell: arch_lib.Cell, tensors):
    """Concatenates skip inputs (max-pooled to x's size) after x, then a 1x1 conv back."""
    extra = range(k - 1) if cell.inputs == "all" else cell.inputs
    parts = [x]
    height = x.shape[1]
    for i in extra:
        t = tensors[i]
        step = 0
        while t.shape[1] > height:
            step += 1
            t = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"cell{k}_skip_t{i}_pool{step}")(
                t
            )
        if t.shape[1] != height:
            raise SpecError(f"arch[{k - 1}].inputs: tensor {i} cannot be pooled to height {height}")
        parts.append(t)
    y = _concat(parts, f"cell{k}_skip_concat")
    return keras.layers.Conv2D(x.shape[-1], 1, padding="same", activation="relu", name=f"cell{k}_skip_conv")(
        y
    )


def apply_cell(x, k: int, cell: arch_lib.Cell, options: BuildOptions):
    """A layer of cells: its branches on the same input, concatenated in sorted key order."""
    if options.cell_impl == "per_cell":
        return apply_cell_per_cell(x, k, cell, options)
    outs = [
        apply_branch(x, op, cell.branch_width, arch_lib.BranchId(k, key), options)
        for key, op in cell.branch_ops()
    ]
    return _concat(outs, f"cell{k}_concat")


def apply_cell_per_cell(x, k: int, cell: arch_lib.Cell, options: BuildOptions):
    """The per-cell form: branch convolutions, concatenated, then one batch norm, ReLU and
    dropout over the cell; one tap per branch reads its channel slice of the post-ReLU tensor."""
    width = cell.branch_width
    convs = [_branch_conv(op, width, arch_lib.BranchId(k, key).keras)(x) for key, op in cell.branch_ops()]
    y = _bn_relu(_concat(convs, f"cell{k}_concat"), f"cell{k}", options)
    taps_of_cell = []
    for j, (key, _) in enumerate(cell.branches):
        branch = arch_lib.BranchId(k, key)
        channels = (j * width, (j + 1) * width)
        taps_of_cell.append(
            FeaturemapTap(branch.original, options.statistics, channels=channels, name=f"{branch.keras}_tap")
        )
    taps_of_cell[0].share_cell(taps_of_cell)
    for tap in taps_of_cell:
        y = tap(y)
    if options.branch_dropout:
        y = keras.layers.Dropout(options.branch_dropout, name=f"cell{k}_dropout")(y)
    return y


def apply_widener(x, k: int, channel_width: int):
    """concat(max pool 2x2/2, conv 3x3/2 with `channel_width` filters + bias + ReLU)."""
    pool = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"widener{k}_pool")(x)
    conv = keras.layers.Conv2D(
        channel_width, 3, strides=2, padding="same", activation="relu", name=f"widener{k}_conv"
    )(x)
    return keras.layers.Concatenate(axis=-1, name=f"widener{k}_concat")([pool, conv])


def apply_head(x, head: arch_lib.Head):
    """Global average pool, flatten, dropout and dense layers; returns float32 logits."""
    for layer_key, block in head.layers:
        name = f"head_{layer_key.lower()}"
        if block.kind == "reduce_mean":
            x = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
        elif block.kind == "flatten":
            x = keras.layers.Flatten(name=f"{name}_flatten")(x)
        elif block.kind == "dropout":
            x = keras.layers.Dropout(1.0 - block.keep_prob, name=f"{name}_dropout")(x)
        else:
            init_inputs = block.inputs if block.inputs else x.shape[-1]
            final = block.kind == "fc-final"
            # fc-final: truncated normal, std 1/inputs; fc: Xavier (Glorot uniform), as the original.
            init = (
                keras.initializers.TruncatedNormal(stddev=1.0 / init_inputs)
                if final
                else keras.initializers.GlorotUniform()
            )
            x = keras.layers.Dense(
                block.outputs,
                activation=None if final else "relu",
                kernel_initializer=init,
                bias_initializer="zeros",
                dtype="float32" if final else None,
                name=f"{name}_{'logits' if final else 'fc'}",
            )(x)
    return x


def build_model(
    network: arch_lib.Network,
    image_size: int,
    options: BuildOptions = BuildOptions(),
    name: str = "envelopenet",
) -> keras.Model:
    """Builds the Keras functional model of `network` for `image_size` square inputs.

    The input is the preprocessed image batch [N, image_size, image_size, input_channels];
    the output is logits [N, num_classes].
    """
    inputs = keras.Input((image_size, image_size, network.input_channels), name="images")
    x = apply_stem(inputs, network.stem)
    tensors = [x]
    channel_width = x.shape[-1]
    for k, entry in enumerate(network.body, start=1):
        if isinstance(entry, arch_lib.Widener):
            x = apply_widener(x, k, channel_width)
            channel_width *= 2
        else:
            if entry.inputs is not None:
                x = apply_skip(x, k, entry, tensors)
            x = apply_cell(x, k, entry, options)
        tensors.append(x)
    logits = apply_head(x, network.head)
    model = keras.Model(inputs, logits, name=name)
    model.network = network
    model.build_options = options
    model.image_size = image_size
    return model


def _cell_bn_layers(model: keras.Model, network: arch_lib.Network):
    """Per layer of cells: (the per-cell BN layer or None, the per-branch BN layers or None)."""
    names = {layer.name for layer in model.layers}
    out = []
    for k, cell in network.cells():
        per_cell = model.get_layer(f"cell{k}_bn") if f"cell{k}_bn" in names else None
        keys = [arch_lib.BranchId(k, key).keras + "_bn" for key, _ in cell.branches]
        per_branch = [model.get_layer(n) for n in keys] if all(n in names for n in keys) else None
        out.append((per_cell, per_branch))
    return out


def transfer_weights(source: keras.Model, target: keras.Model):
    """Copies every weight of `source` into `target`, two builds of the same network that may
    use different `cell_impl`s: layers of the same name copy as they are; a per-cell batch
    norm takes its branches' batch norms concatenated (beta, moving mean and variance), and
    per-branch batch norms take their slices of a per-cell one. Featuremap accumulators copy
    by branch.

    Raises:
      SpecError: The two models are not builds of the same network.
    """
    network = source.network
    if network.fingerprint() != target.network.fingerprint():
        raise SpecError("transfer_weights: the models are builds of different networks")
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        twin = by_name.get(layer.name)
        if twin is not None and not isinstance(layer, keras.layers.BatchNormalization):
            for w, v in zip(layer.weights, twin.weights, strict=True):
                w.assign(v)
    for (src_cell, src_branches), (dst_cell, dst_branches) in zip(
        _cell_bn_layers(source, network), _cell_bn_layers(target, network), strict=True
    ):
        if src_cell is not None:
            values = [w.numpy() for w in src_cell.weights]
        else:
            values = [
                np.concatenate(ws) for ws in zip(*[[w.numpy() for w in b.weights] for b in src_branches])
            ]
        if dst_cell is not None:
            for w, v in zip(dst_cell.weights, values, strict=True):
                w.assign(v)
        else:
            start = 0
            for bn in dst_branches:
                width = bn.weights[0].shape[-1]
                for w, v in zip(bn.weights, values, strict=True):
                    w.assign(v[start : start + width])
                start += width


def taps(model: keras.Model) -> dict[str, FeaturemapTap]:
    """The featuremap taps of `model`, keyed by branch id (`Cell<k>/<BranchKey>`), in network order."""
    return {layer.branch: layer for layer in model.layers if isinstance(layer, FeaturemapTap)}


@contextlib.contextmanager
def collection_disabled(model: keras.Model):
    """Turns the featuremap taps of `model` off (`tap.collect = False`) inside the block.

    Use it around code that *traces* (or eagerly runs) batch-norm re-estimation or other
    training-mode passes that must not count. `collect` is read at trace time: functions
    traced inside the block never collect, functions traced before it keep collecting.
    The previous flags are restored on exit.
    """
    tap_layers = list(taps(model).values())
    previous = [tap.collect for tap in tap_layers]
    for tap in tap_layers:
        tap.collect = False
    try:
        yield
    finally:
        for tap, flag in zip(tap_layers, previous, strict=True):
            tap.collect = flag


def branch_outputs_model(model: keras.Model) -> keras.Model:
    """A model returning {branch id: tapped featuremap} for the same inputs and weights."""
    outputs = {branch: tap.featuremap(tap.output) for branch, tap in taps(model).items()}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_branches")
