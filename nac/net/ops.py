"""Custom Keras layers of EnvelopeNets: local response normalisation and the featuremap tap.

`FeaturemapTap` is an identity layer placed on each branch (after the ReLU by default). In
training mode it accumulates the branch's featuremap statistics into non-trainable variables
created with `synchronization="on_read"` and `aggregation="sum"`: every replica adds to its own
copy, and a read in cross-replica context (a callback) returns the exact sum over replicas.
(Keras' usual on-write `add_weight(aggregation="sum")` over-counts under MirroredStrategy; see
BUILD_NOTES.md, "Statistics under distribution".) The variables are not trainable, never
reach the optimizer and are not counted as parameters. Sums are kept in float64 so that long
windows do not lose precision.

A tap may watch a channel slice of its input (`channels=(start, stop)`): a cell built with
one batch norm, ReLU and dropout over its concatenated branches (`BuildOptions.cell_impl=
"per_cell"`) chains one tap per branch on the cell's tensor, each accumulating its branch's
channels and passing the whole tensor through unchanged.

Accumulators (per tap):
  `l2_sum`  sum over images of the per-image mean over H, W, C of x**2;
  `images`  number of images seen;
  and with the variance statistic, per channel, `channel_sum` and `channel_sq_sum` of x and
  x**2 over images and positions, and `positions` (images x H x W);
  and with the taylor criterion, `taylor_sum`: the sum over images of |sum over H, W, C of
  x * g|, g the gradient of the training loss with respect to the tap's output, accumulated
  in the backward pass (the tap is an identity with its own gradient function, which passes
  the gradient through unchanged). The training loss is a mean over the global batch, so g
  is 1 / global batch times the image's own loss gradient (`nac.net.stats` rescales).

Shared computation in a cell. The taps chained on one cell's tensor see the same featuremap
and, in the backward pass, the same gradient, so `variance` and `taylor` are computed once
for the whole cell by its first tap (`share_cell`, called by the model builder): one
reduction of the cell's tensor per accumulator, then a slice of the small per-channel (or
per-image, per-channel) result per branch, added into each tap's own accumulators. Slicing
every branch's channels out of the large tensor (what a lone tap does) costs several times
more on CPU (`docs/criteria.md`, "What recording the criteria costs"). `l2` stays per tap
(its summation order, and so its values, unchanged). The sharing is a build-time link, not
part of the layer config: a tap loaded from a config computes its own values, the same up to
float32 summation order.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nac.spec import arch as arch_lib
from nac.spec.checks import statistics_in_order


@keras.saving.register_keras_serializable(package="nac")
class LocalResponseNormalization(keras.layers.Layer):
    """`tf.nn.local_response_normalization` with the original stem's constants."""

    def __init__(
        self,
        depth_radius=arch_lib.LRN_DEPTH_RADIUS,
        bias=arch_lib.LRN_BIAS,
        alpha=arch_lib.LRN_ALPHA,
        beta=arch_lib.LRN_BETA,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta

    def call(self, x):
        y = tf.nn.local_response_normalization(
            tf.cast(x, tf.float32), self.depth_radius, self.bias, self.alpha, self.beta
        )
        return tf.cast(y, x.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def _accumulator(shape, name):
    return keras.Variable(
        tf.zeros(shape, tf.float64),
        dtype="float64",
        trainable=False,
        name=name,
        aggregation="sum",
        synchronization="on_read",
        autocast=False,
    )


class _CellLink:
    """A plain holder (not tracked by Keras) of the taps of one cell, the computing one first;
    shared by them, or None for a tap that computes alone."""

    def __init__(self, members=None):
        self.members = members


@keras.saving.register_keras_serializable(package="nac")
class FeaturemapTap(keras.layers.Layer):
    """Identity layer that accumulates a branch's featuremap statistics in training mode.

    Args:
      branch: the branch id in the original's form, e.g. `Cell12/Branch3`.
      statistics: which accumulators to keep: `l2` (always) and optionally `variance`.
      channels: None (the whole input is the branch's featuremap) or `(start, stop)`: the
        branch's channels within the input, which passes through whole.

    The Python attribute `collect` (default True) is read when the calling function is traced:
    functions traced with `collect = False` (for example batch-norm re-estimation passes, which
    run in training mode) leave the accumulators alone.
    """

    def __init__(self, branch: str, statistics=("l2",), channels=None, **kwargs):
        super().__init__(**kwargs)
        self.branch = branch
        self.channels = None if channels is None else (int(channels[0]), int(channels[1]))
        requested = statistics_in_order(statistics, empty_ok=True)  # checks the names
        self.statistics = statistics_in_order(("l2", *requested))  # l2 always, in order
        self.collect = True
        # Build-time links between the taps of one cell, held outside Keras' attribute
        # tracking (a layer assigned to a layer's attribute would become its sublayer)
        self._link = _CellLink()

    def build(self, input_shape):
        channels = input_shape[-1] if self.channels is None else self.channels[1] - self.channels[0]
        self.l2_sum = _accumulator((), "l2_sum")
        self.images = _accumulator((), "images")
        if "variance" in self.statistics:
            self.channel_sum = _accumulator((channels,), "channel_sum")
            self.channel_sq_sum = _accumulator((channels,), "channel_sq_sum")
            self.positions = _accumulator((), "positions")
        if "taylor" in self.statistics:
            self.taylor_sum = _accumulator((), "taylor_sum")

    def accumulators(self):
        """The accumulator variables of this tap."""
        out = [self.l2_sum, self.images]
        if "variance" in self.statistics:
            out += [self.channel_sum, self.channel_sq_sum, self.positions]
        if "taylor" in self.statistics:
            out.append(self.taylor_sum)
        return out

    def share_cell(self, members):
        """Makes this tap compute `variance` and `taylor` for `members` (the taps chained on
        the same cell tensor, this one first, each with its `channels`)."""
        if (
            any(m.channels is None or m.statistics != self.statistics for m in members)
            or members[0] is not self
        ):
            raise ValueError("share_cell: members must be channel taps of one cell, this tap first")
        link = _CellLink(tuple(members))
        for member in members:
            member._link = link

    def compute_alone(self):
        """Cuts this tap's link to its cell: it computes its own `variance` and `taylor` from its
        channels, as a tap loaded from a config does (for comparisons; call it on every tap of
        the cell before the model is traced)."""
        self._link = _CellLink()

    # Methods, not properties: Keras' saving walks every attribute and property of a layer and
    # would store the linked taps' variables under this tap's path (a loaded model, whose taps
    # are not linked, then finds them missing); `_link` itself is not a Keras object.
    def cell_members(self):
        """The taps this one computes `variance` and `taylor` for (itself first), or None."""
        members = self._link.members
        return members if members and members[0] is self else None

    def computed_by(self):
        """The tap that computes this one's `variance` and `taylor`, or None."""
        members = self._link.members
        return members[0] if members and members[0] is not self else None

    def _members(self):
        return self.cell_members() or [self]

    def _record_l2(self, x32):
        squares = tf.square(x32)
        self.images.assign_add(tf.cast(tf.shape(x32)[0], tf.float64))
        # l2 as the per-image mean first (the original's order of summation), whatever
        # else is recorded, so that its values do not depend on the other statistics
        per_image = tf.reduce_mean(squares, axis=[1, 2, 3])
        self.l2_sum.assign_add(tf.cast(tf.reduce_sum(per_image), tf.float64))

    def _record_variance(self, x):
        """Per-channel sums for this tap, or for every member when it computes for a cell."""
        x32 = tf.cast(self.featuremap(x) if self.cell_members() is None else x, tf.float32)
        sums = tf.cast(tf.reduce_sum(x32, axis=[0, 1, 2]), tf.float64)
        sq_sums = tf.cast(tf.reduce_sum(tf.square(x32), axis=[0, 1, 2]), tf.float64)
        shape = tf.shape(x32)
        positions = tf.cast(shape[0] * shape[1] * shape[2], tf.float64)
        for member in self._members():
            start, stop = (None, None) if self.cell_members() is None else member.channels
            member.channel_sum.assign_add(sums[start:stop])
            member.channel_sq_sum.assign_add(sq_sums[start:stop])
            member.positions.assign_add(positions)

    def _taylor_identity(self, x):
        """The identity whose gradient function adds |sum(a * dL/da)| per image to `taylor_sum`
        (of this tap, or of every member when it computes for a cell)."""

        @tf.custom_gradient
        def identity(inputs):
            def grad(upstream):
                if self.cell_members() is None:
                    a, g = self.featuremap(inputs), self.featuremap(upstream)
                    products = tf.cast(a, tf.float32) * tf.cast(g, tf.float32)
                    per_image = tf.abs(tf.reduce_sum(products, axis=[1, 2, 3]))
                    self.taylor_sum.assign_add(tf.cast(tf.reduce_sum(per_image), tf.float64))
                    return upstream
                products = tf.cast(inputs, tf.float32) * tf.cast(upstream, tf.float32)
                per_channel = tf.reduce_sum(products, axis=[1, 2])  # images x channels
                for member in self.cell_members():
                    start, stop = member.channels
                    per_image = tf.abs(tf.reduce_sum(per_channel[:, start:stop], axis=1))
                    member.taylor_sum.assign_add(tf.cast(tf.reduce_sum(per_image), tf.float64))
                return upstream

            return tf.identity(inputs), grad

        return identity(x)

    def call(self, x, training=None):
        if not (training and self.collect):
            return x
        self._record_l2(tf.cast(self.featuremap(x), tf.float32))
        if self.computed_by() is not None:
            return x  # the cell's first tap records variance and taylor for this one
        if "variance" in self.statistics:
            self._record_variance(x)
        if "taylor" in self.statistics:
            return self._taylor_identity(x)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "branch": self.branch,
            "statistics": list(self.statistics),
            "channels": None if self.channels is None else list(self.channels),
        }

    def featuremap(self, x):
        """The branch's featuremap within this tap's input `x` (a tensor or a KerasTensor)."""
        return x if self.channels is None else x[..., self.channels[0] : self.channels[1]]
