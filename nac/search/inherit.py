"""Weight inheritance between construction iterations (`--inherit_weights`).

The next network starts from the previous iteration's trained weights wherever the restructure
step kept a layer; only what is new gets initialised. The mapping works on weight arrays keyed
by Keras variable path (`cell3_branch2_conv/kernel`, ...; the names `nac.net.model` gives),
so this module is NumPy only; `nac.net.weights` holds the thin Keras adapters
(`model_weights`, `assign`).

What is copied (old -> new):

* stem: every variable, as is (its shapes never change).
* wideners: the s-th widener's conv kernel and bias (matched by stage: body indices move).
* kept layers: matched through the restructure report's `cell_map` (old body index -> new);
  every kept branch by its key (`Branch<N>`, never renumbered): conv kernel (or depthwise and
  pointwise kernels), batch-norm beta, moving mean and moving variance; a skip layer's 1x1
  conv kernel and bias.
* head: every dense kernel and bias.

Channels. Every channel of every tensor carries a *label*: where it came from in the old
network (`("stem", c)`, `("widener", s, j)`, `("skip", k, j)`, `("branch", "Cell<k>/Branch<N>",
i)`), or None for a channel the old network did not have. A kernel's input rows are copied
from the old row with the same label (input channels matched to the branches that produced
them; pruned branches' rows disappear); its output columns `i < old width` are copied (a
kept branch keeps its old output channels first). Then:

* new OUTPUT channels (a kept branch widens from `W // n_old` to `W // n_new` channels) keep
  the fresh initialisation of the newly built model (Glorot kernel columns, beta 0, moving
  mean 0 / variance 1);
* input rows with no old counterpart (they read a new channel) are set to zero
  (`new_inputs="zero"`, the default), so every inherited layer computes what it computed
  before: a function-preserving widening like Net2Net's, without Net2Net's replicated units
  (which need noise to break their symmetry); `new_inputs="fresh"` keeps the fresh rows.
* the appended EnvelopeCell at a stage's tail (`appended="identity"`, the default): each of
  its branches copies its slice of the input channels (conv kernel = identity on channel j,
  depthwise kernels a centred 1, the skip conv identity on the layer's input), and its batch
  norm is set so that `relu(bn(x)) = x / s_j`: beta `mu_j / s_j`, moving mean `mu_j`, moving
  variance `s_j**2 - eps`, where `mu_j` and `s_j` are the mean and standard deviation of
  `relu(z)`, `z ~ N(beta_prev_j, 1)` (the input channel j is `relu(bn(.))` of the previous
  layer, whose batch norm has beta `beta_prev_j` and unit variance). Downstream rows that read
  these channels are multiplied by `s_j`, so the widener or head behind the new cell sees
  what it saw before. Channels beyond the input width stay fresh. `appended="fresh"` leaves
  the cell as built (random), which makes the inherited widener / head inputs new too. The
  identity assumes `branch_order="conv_bn_relu"` (the original's); with `conv_relu_bn` the
  cell is left fresh.

The function is preserved exactly for the kept layers' surviving inputs; pruning removes
inputs, which is the change construction makes on purpose.
"""

from __future__ import annotations

import math

import numpy as np

from nac.spec import arch as arch_lib

APPENDED_MODES = ("identity", "fresh")
NEW_INPUT_MODES = ("zero", "fresh")
WEIGHTS_FILE = "weights.npz"


def _relu_gaussian(beta: float) -> tuple[float, float]:
    """Mean and standard deviation of relu(z), z ~ N(beta, 1)."""
    pdf = math.exp(-0.5 * beta * beta) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    mean = beta * cdf + pdf
    second = (beta * beta + 1) * cdf + beta * pdf
    return mean, math.sqrt(max(second - mean * mean, 1e-12))


def _skip_sources(k: int, cell: arch_lib.Cell) -> list[int]:
    return list(range(k - 1)) if cell.inputs == "all" else list(cell.inputs)


def _old_labels(network: arch_lib.Network, stem_width: int) -> tuple[list[list], dict]:
    """Labels of every tensor of the old network (index 0 = stem output, k = body entry k),
    and of each layer's branch input (its skip conv's output when it has skip inputs)."""
    tensors = [[("stem", c) for c in range(stem_width)]]
    branch_inputs = {}
    stage = 0
    for k, entry in enumerate(network.body, start=1):
        x = tensors[k - 1]
        if isinstance(entry, arch_lib.Widener):
            width = stem_width * 2**stage
            tensors.append(x + [("widener", stage, j) for j in range(width)])
            stage += 1
            continue
        branch_inputs[k] = x if entry.inputs is None else [("skip", k, j) for j in range(len(x))]
        labels = []
        for key, _ in entry.branches:
            branch = arch_lib.BranchId(k, key).original
            labels += [("branch", branch, i) for i in range(entry.branch_width)]
        tensors.append(labels)
    return tensors, branch_inputs


def _skip_input_labels(tensors, k, cell):
    labels = list(tensors[k - 1])
    for i in _skip_sources(k, cell):
        labels += tensors[i]
    return labels


class _Copier:
    def __init__(self, old, new, new_inputs):
        self.old = old
        self.out = {p: np.array(v, copy=True) for p, v in new.items()}
        self.new_inputs = new_inputs
        self.copied: list[str] = []
        self.identity: list[str] = []
        self.fresh: list[str] = []

    def rows(self, new_labels, old_labels):
        """(new row, old row, factor) for matched channels; the unmatched new rows."""
        # A label can occur several times in one input (a skip layer reads a tensor both
        # directly and through a widener's pool; an identity-initialised cell repeats its
        # input): the n-th new occurrence takes the n-th old row, extra new ones are unmatched.
        where: dict = {}
        for i, label in enumerate(old_labels):
            where.setdefault(label, []).append(i)
        matched, unmatched = [], []
        for i, (label, scale) in enumerate(new_labels):
            if label is not None and where.get(label):
                matched.append((i, where[label].pop(0), 1.0 / scale))
            else:
                unmatched.append(i)
        return matched, unmatched

    def matrix(self, path, new_labels, old_labels, axis_in, axis_out, old_path=None):
        """Copies a kernel: rows by label along `axis_in`, the first old columns along `axis_out`."""
        old = self.old[old_path or path]
        new = self.out[path]
        matched, unmatched = self.rows(new_labels, old_labels)
        outs = min(old.shape[axis_out], new.shape[axis_out]) if axis_out is not None else None
        for i, j, factor in matched:
            src = np.take(old, j, axis=axis_in)
            dst_index = [slice(None)] * new.ndim
            dst_index[axis_in] = i
            if outs is not None:
                out_axis = axis_out - (1 if axis_out > axis_in else 0)
                src_index = [slice(None)] * src.ndim
                src_index[out_axis] = slice(0, outs)
                src = src[tuple(src_index)]
                dst_index[axis_out] = slice(0, outs)
            new[tuple(dst_index)] = src * factor
        if self.new_inputs == "zero":
            for i in unmatched:
                index = [slice(None)] * new.ndim
                index[axis_in] = i
                if outs is not None:
                    index[axis_out] = slice(0, outs)  # the new output columns stay fresh
                new[tuple(index)] = 0.0
        self.copied.append(path)

    def depthwise(self, path, new_labels, old_labels, old_path):
        old = self.old[old_path]
        new = self.out[path]
        matched, _ = self.rows(new_labels, old_labels)
        for i, j, _ in matched:  # per channel; the scale is compensated in the pointwise rows
            new[:, :, i, :] = old[:, :, j, :]
        self.copied.append(path)

    def vector(self, path, old_path=None):
        old = self.old[old_path or path]
        new = self.out[path]
        n = min(len(old), len(new))
        new[:n] = old[:n]
        self.copied.append(path)

    def whole(self, path, old_path=None):
        old = self.old[old_path or path]
        if old.shape != self.out[path].shape:
            raise ValueError(f"inherit: {path} has shape {self.out[path].shape}, the old {old.shape}")
        self.out[path] = np.array(old, copy=True)
        self.copied.append(path)


def inherit(
    old_network: arch_lib.Network,
    old_weights: dict,
    new_network: arch_lib.Network,
    new_weights: dict,
    cell_map,
    *,
    appended: str = "identity",
    new_inputs: str = "zero",
    branch_order: str = "conv_bn_relu",
    bn_epsilon: float = 1e-3,
):
    """The new network's weights with the old network's copied in (see the module docstring).

    Args:
      old_network, old_weights: the trained network and `{variable path: array}`.
      new_network, new_weights: the restructured network and its freshly initialised arrays.
      cell_map: `(old body index, new body index)` of every kept layer (the restructure
        report's `cell_map`); None when the body is the same network's (identity map).
      appended, new_inputs: the initialisations (`APPENDED_MODES`, `NEW_INPUT_MODES`).

    Returns:
      (`{variable path: array}` for every variable of `new_weights`, a report dict:
      `copied` paths, `identity` and `fresh` layers).
    """
    if appended not in APPENDED_MODES:
        raise ValueError(f"appended: got {appended!r}; expected one of {APPENDED_MODES}")
    if new_inputs not in NEW_INPUT_MODES:
        raise ValueError(f"new_inputs: got {new_inputs!r}; expected one of {NEW_INPUT_MODES}")
    if branch_order != "conv_bn_relu":
        appended = "fresh"
    if cell_map is None:
        cell_map = [(k, k) for k, _ in old_network.cells()]
    old_of = {new: old for old, new in cell_map}
    stem_width = old_network.stem.out_channels(old_network.input_channels)
    old = _OldNetwork(old_network, stem_width)
    c = _Copier(old_weights, new_weights, new_inputs)

    for path in new_weights:  # the stem
        if path.startswith("stem_"):
            c.whole(path)
    # Every tensor: a list of (label, scale) and the producing batch norm's beta (or None).
    tensors = [[(("stem", ch), 1.0) for ch in range(stem_width)]]
    betas = [[None] * stem_width]
    stage = 0
    for k, entry in enumerate(new_network.body, start=1):
        x, xb = tensors[k - 1], betas[k - 1]
        if isinstance(entry, arch_lib.Widener):
            labels, out_betas = _inherit_widener(c, old, k, stage, x, xb)
            stage += 1
        else:
            ko = old_of.get(k)
            if entry.inputs is not None:
                x, xb = _inherit_skip(c, old, k, ko, entry, tensors, x, xb, appended)
            if ko is not None:
                labels, out_betas = _inherit_kept_branches(c, old, k, ko, entry, x)
            else:
                labels, out_betas = _init_appended_branches(c, k, entry, x, xb, appended, bn_epsilon)
        tensors.append(labels)
        betas.append(out_betas)

    dense = [p for p in new_weights if p.startswith("head_") and p.endswith("/kernel")]
    for i, path in enumerate(dense):
        if i == 0:
            c.matrix(path, tensors[-1], old.tensors[-1], 0, 1)
        else:
            c.whole(path)
        c.vector(path.replace("/kernel", "/bias"))
    return c.out, {"copied": c.copied, "identity": c.identity, "fresh": c.fresh}


class _OldNetwork:
    """The old network with its tensors' channel labels (`_old_labels`) and widener indices."""

    def __init__(self, network: arch_lib.Network, stem_width: int):
        self.network = network
        self.stem_width = stem_width
        self.tensors, self.branch_inputs = _old_labels(network, stem_width)
        self.wideners = [k for k, e in enumerate(network.body, start=1) if isinstance(e, arch_lib.Widener)]


def _inherit_widener(c, old, k, stage, x, xb):
    """Copies the stage's widener (matched by stage); the labels and betas of its output."""
    ko = old.wideners[stage]
    name, old_name = f"widener{k}_conv", f"widener{ko}_conv"
    c.matrix(f"{name}/kernel", x, old.tensors[ko - 1], 2, 3, f"{old_name}/kernel")
    c.vector(f"{name}/bias", f"{old_name}/bias")
    width = old.stem_width * 2**stage
    return x + [(("widener", stage, j), 1.0) for j in range(width)], xb + [None] * width


def _inherit_skip(c, old, k, ko, entry, tensors, x, xb, appended):
    """Copies (kept layer) or initialises (appended) a layer's skip conv; the labels and betas
    of the branches' input."""
    skip_in = _skip_input_labels(tensors, k, entry)
    path = f"cell{k}_skip_conv"
    if ko is not None:
        old_cell = old.network.body[ko - 1]
        old_in = _skip_input_labels(old.tensors, ko, old_cell)
        c.matrix(f"{path}/kernel", skip_in, old_in, 2, 3, f"cell{ko}_skip_conv/kernel")
        c.vector(f"{path}/bias", f"cell{ko}_skip_conv/bias")
        old_width = len(old.tensors[ko - 1])
        x = [(("skip", ko, j), 1.0) if j < old_width else (None, 1.0) for j in range(len(x))]
        xb = [None] * len(x)
    elif appended == "identity":
        kernel = np.zeros_like(c.out[f"{path}/kernel"])
        for j in range(len(x)):
            kernel[0, 0, j, j] = 1.0
        c.out[f"{path}/kernel"] = kernel
        c.out[f"{path}/bias"] = np.zeros_like(c.out[f"{path}/bias"])
        c.identity.append(path)
    else:
        x = [(None, 1.0)] * len(x)
        xb = [None] * len(x)
        c.fresh.append(path)
    return x, xb


def _inherit_kept_branches(c, old, k, ko, entry, x):
    """Copies a kept layer's branches by key; the labels and betas of its output."""
    labels, out_betas = [], []
    old_cell = old.network.body[ko - 1]
    old_keys = dict(old_cell.branches)
    old_in = old.branch_inputs[ko]
    for key, op in entry.branch_ops():
        if key not in old_keys:
            raise ValueError(f"inherit: Cell{k}/{key} has no branch {key} in the old Cell{ko}")
        new_id, old_id = arch_lib.BranchId(k, key), arch_lib.BranchId(ko, key)
        n, o = new_id.keras, old_id.keras
        if op.separable:
            c.depthwise(f"{n}_conv/depthwise_kernel", x, old_in, f"{o}_conv/depthwise_kernel")
            c.matrix(f"{n}_conv/pointwise_kernel", x, old_in, 2, 3, f"{o}_conv/pointwise_kernel")
        else:
            c.matrix(f"{n}_conv/kernel", x, old_in, 2, 3, f"{o}_conv/kernel")
        for v in ("beta", "moving_mean", "moving_variance"):
            c.vector(f"{n}_bn/{v}", f"{o}_bn/{v}")
        old_width = old_cell.branch_width
        labels += [
            (("branch", old_id.original, i), 1.0) if i < old_width else (None, 1.0)
            for i in range(entry.branch_width)
        ]
        out_betas += [float(b) for b in c.out[f"{n}_bn/beta"]]
    return labels, out_betas


def _init_appended_branches(c, k, entry, x, xb, appended, bn_epsilon):
    """Initialises an appended EnvelopeCell's branches (identity or fresh); the labels and
    betas of its output."""
    labels, out_betas = [], []
    w = entry.branch_width
    for b, (key, op) in enumerate(entry.branch_ops()):
        n = arch_lib.BranchId(k, key).keras
        if appended != "identity":
            labels += [(None, 1.0)] * w
            out_betas += [0.0] * w
            c.fresh.append(n)
            continue
        separable = op.separable
        kernel_path = f"{n}_conv/pointwise_kernel" if separable else f"{n}_conv/kernel"
        kernel = c.out[kernel_path]
        if separable:
            depth = np.zeros_like(c.out[f"{n}_conv/depthwise_kernel"])
            depth[depth.shape[0] // 2, depth.shape[1] // 2, :, :] = 1.0
            c.out[f"{n}_conv/depthwise_kernel"] = depth
        centre = (kernel.shape[0] // 2, kernel.shape[1] // 2)
        beta = c.out[f"{n}_bn/beta"]
        mean = c.out[f"{n}_bn/moving_mean"]
        var = c.out[f"{n}_bn/moving_variance"]
        for i in range(w):
            j = b * w + i
            if j >= len(x):
                labels.append((None, 1.0))
                out_betas.append(float(beta[i]))
                continue
            kernel[:, :, :, i] = 0.0
            kernel[centre[0], centre[1], j, i] = 1.0
            mu, sd = _relu_gaussian(xb[j] if xb[j] is not None else 0.0)
            s = math.sqrt(sd * sd + bn_epsilon)
            beta[i], mean[i], var[i] = mu / s, mu, sd * sd
            label, scale = x[j]
            labels.append((label, scale / s))
            out_betas.append(float(beta[i]))
        c.identity.append(n)
    return labels, out_betas
