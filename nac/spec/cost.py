"""Shapes, trainable parameters and FLOPs of a `Network`, counted in pure Python.

Counts follow the original's layers exactly (see `nac.net.model`): branch convolutions have no
bias and are followed by a beta-only batch norm (one trainable value per channel); stem,
widener and skip convolutions and dense layers have biases. Padding is SAME throughout, so a
stride-2 op maps H to ceil(H / 2).

Two FLOP counts per image, both 2 x multiply-adds of convolutions and dense layers (batch
norm, ReLU, pooling, LRN, bias adds and other element-wise ops are not counted):

* forward (`flops_forward_per_image`): one forward pass. The paper's Table 1 rows of net A
  and the random nets are this count for a batch of 50 (Envelope A at 28 x 28: 2.48 GFLOP
  per image, 124B per batch).
* training (`flops_training_per_image`): what the paper's profiler (tf.profiler `float_ops`
  of the original's training graph) counted for its net B and ImageNet rows: every
  convolution's forward, its input gradient (except for convolutions reading the image,
  whose input needs no gradient) and its filter gradient, each as many multiply-adds as the
  forward; the dense layers' forward and both gradients likewise; the depthwise halves of
  separable convolutions forward only (the profiler has no count for their gradients).
"""

from __future__ import annotations

import dataclasses
import math

from nac.spec import arch as arch_lib
from nac.spec.errors import SpecError

PAPER_FLOPS_BATCH = 50  # Table 1 reports FLOPs per batch of 50 images (64 on ImageNet)
PAPER_FLOPS_BATCH_IMAGENET = 64


def paper_batch(dataset: str | None) -> int:
    """The batch Table 1 counts FLOPs for: the original's batch size (64 on ImageNet, else 50)."""
    return PAPER_FLOPS_BATCH_IMAGENET if dataset in ("imagenet", "imagenet2012") else PAPER_FLOPS_BATCH


@dataclasses.dataclass(frozen=True)
class Part:
    """One piece of the network: its name, kind, parameters, multiply-adds, output shape."""

    name: str
    kind: str  # stem | skip | cell | widener | head
    stage: int | None
    params: int
    macs: int
    shape: tuple[int, int, int]  # height, width, channels of the output
    backward_macs: int = 0  # multiply-adds of the gradient ops the training count includes


@dataclasses.dataclass(frozen=True)
class Cost:
    parts: tuple[Part, ...]

    @property
    def params(self) -> int:
        return sum(p.params for p in self.parts)

    @property
    def flops_forward_per_image(self) -> int:
        return 2 * sum(p.macs for p in self.parts)

    @property
    def flops_training_per_image(self) -> int:
        return 2 * sum(p.macs + p.backward_macs for p in self.parts)

    @property
    def flops_per_image(self) -> int:
        """The forward count (the name older artefacts use)."""
        return self.flops_forward_per_image

    @property
    def flops_per_batch(self) -> int:
        """The forward count for a batch of 50 (Table 1's CIFAR-10 batch)."""
        return PAPER_FLOPS_BATCH * self.flops_per_image


def _half(n: int) -> int:
    return math.ceil(n / 2)


def branch_cost(op: arch_lib.Op, cin: int, cout: int, positions: int) -> tuple[int, int]:
    """(params, macs) of one branch: conv without bias (+ beta-only batch norm)."""
    k2 = op.kernel * op.kernel
    weights = k2 * cin + cin * cout if op.separable else k2 * cin * cout
    return weights + cout, weights * positions


def branch_backward_macs(op: arch_lib.Op, cin: int, cout: int, positions: int) -> int:
    """Multiply-adds of a branch's counted gradients: input and filter gradient of the
    regular (or pointwise) convolution; none for a depthwise convolution."""
    dense = (cin * cout if op.separable else op.kernel * op.kernel * cin * cout) * positions
    return 2 * dense


def _conv_backward(macs: int, input_grad: bool) -> int:
    """Filter gradient, plus the input gradient unless the input is the image."""
    return macs * (2 if input_grad else 1)


def _stem(network, image_size, parts):
    h = w = image_size
    c = network.input_channels
    from_image = True  # the input is (a pooling or normalisation of) the image: no gradient
    for layer_key, blocks in network.stem.layers:
        shapes, params, macs, backward = [], 0, 0, 0
        for _, block in blocks:
            if block.kind == "conv2d":
                oh, ow = math.ceil(h / block.stride), math.ceil(w / block.stride)
                kh, kw = block.kernel_size
                params += kh * kw * c * block.outputs + block.outputs
                conv_macs = oh * ow * kh * kw * c * block.outputs
                macs += conv_macs
                backward += _conv_backward(conv_macs, not from_image)
                shapes.append((oh, ow, block.outputs))
            elif block.kind == "max_pool":
                shapes.append((_half(h), _half(w), c))
            else:
                shapes.append((h, w, c))
        if len({s[:2] for s in shapes}) != 1:
            raise SpecError(
                f"initcell.{layer_key}: its branches give different sizes {sorted({s[:2] for s in shapes})}; "
                "parallel stem branches need the same stride"
            )
        h, w = shapes[0][:2]
        c = sum(s[2] for s in shapes)
        from_image = from_image and not any(b.kind == "conv2d" for _, b in blocks)
        parts.append(Part(f"stem_{layer_key.lower()}", "stem", None, params, macs, (h, w, c), backward))
    if h < 1:
        raise SpecError(f"image_size: got {image_size}; the stem leaves no pixels")
    return (h, w, c), from_image


def analyse(network: arch_lib.Network, image_size: int) -> Cost:
    """Walks the network on `image_size` x `image_size` inputs.

    Raises:
      SpecError: a skip input cannot be pooled to its cell's size, or stem branches disagree.
    """
    if not isinstance(image_size, int) or image_size < 1:
        raise SpecError(f"image_size: got {image_size!r}; expected a positive integer")
    parts: list[Part] = []
    stem_out, from_image = _stem(network, image_size, parts)
    tensors = [stem_out]
    channel_width = tensors[0][2]
    stage = 0
    for k, entry in enumerate(network.body, start=1):
        h, w, c = tensors[k - 1]
        if isinstance(entry, arch_lib.Widener):
            oh, ow = _half(h), _half(w)
            params = 9 * c * channel_width + channel_width
            macs = oh * ow * 9 * c * channel_width
            parts.append(
                Part(
                    f"widener{k}",
                    "widener",
                    stage,
                    params,
                    macs,
                    (oh, ow, c + channel_width),
                    _conv_backward(macs, True),
                )
            )
            tensors.append((oh, ow, c + channel_width))
            channel_width *= 2
            stage += 1
            continue
        if entry.inputs is not None:
            extra = range(k - 1) if entry.inputs == "all" else entry.inputs
            cin = c
            for i in extra:
                eh = tensors[i][0]
                while eh > h:
                    eh = _half(eh)
                if eh != h:
                    raise SpecError(
                        f"arch[{k - 1}].inputs: tensor {i} ({tensors[i][0]}x{tensors[i][1]}) cannot "
                        f"be max-pooled to the cell's {h}x{w}; skip inputs must be earlier, larger tensors"
                    )
                cin += tensors[i][2]
            macs = h * w * cin * c
            parts.append(
                Part(f"cell{k}_skip", "skip", stage, cin * c + c, macs, (h, w, c), _conv_backward(macs, True))
            )
            from_image = False
        bw = entry.branch_width
        params = macs = backward = 0
        for op in entry.ops():
            p, m = branch_cost(op, c, bw, h * w)
            params += p
            macs += m
            backward += branch_backward_macs(op, c, bw, h * w)
            if from_image:  # no stem convolution: this cell reads the image, no input gradient
                backward -= (c * bw if op.separable else op.kernel**2 * c * bw) * h * w
        from_image = False
        parts.append(Part(f"cell{k}", "cell", stage, params, macs, (h, w, entry.width), backward))
        tensors.append((h, w, entry.width))
    c = tensors[-1][2]
    for layer_key, block in network.head.layers:
        if block.kind in ("fc", "fc-final"):
            parts.append(
                Part(
                    f"head_{layer_key.lower()}",
                    "head",
                    None,
                    c * block.outputs + block.outputs,
                    c * block.outputs,
                    (1, 1, block.outputs),
                    2 * c * block.outputs,  # input and weight gradients
                )
            )
            c = block.outputs
    return Cost(tuple(parts))


def count_params(network: arch_lib.Network, image_size: int = 32) -> int:
    """Trainable parameters (independent of `image_size`)."""
    return analyse(network, image_size).params


def stage_summary(network: arch_lib.Network, image_size: int) -> list[dict]:
    """Per stage: layers, branches per layer, output channels, height, params."""
    cost = analyse(network, image_size)
    rows = []
    for s, stage in enumerate(network.stages()):
        cell_parts = [p for p in cost.parts if p.stage == s and p.kind in ("cell", "skip")]
        last = [p for p in cost.parts if p.stage == s and p.kind == "cell"][-1]
        rows.append(
            {
                "stage": s + 1,
                "layers": len(stage),
                "branches": [cell.num_branches for _, cell in stage],
                "channels": last.shape[2],
                "size": last.shape[0],
                "params": sum(p.params for p in cell_parts),
            }
        )
    return rows
