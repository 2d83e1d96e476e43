"""Keras adapters of weight inheritance: a model's weights as `{variable path: array}` and back.

The mapping rule itself is `nac.search.inherit` (NumPy only); these read and write the arrays
it maps, in the per-branch form whatever the model's `cell_impl`.
"""

from __future__ import annotations

import numpy as np

from nac.spec import arch as arch_lib


def _is_tap(variable) -> bool:
    return "_tap/" in variable.path


_BN_VARIABLES = ("beta", "moving_mean", "moving_variance")


def _cell_bn_paths(network: arch_lib.Network):
    """Per layer of cells and batch-norm variable: (the per-cell path, the branch width, the
    per-branch paths in channel order)."""
    for k, cell in network.cells():
        branches = [arch_lib.BranchId(k, key).keras for key, _ in cell.branches]
        for var in _BN_VARIABLES:
            yield f"cell{k}_bn/{var}", cell.branch_width, [f"{b}_bn/{var}" for b in branches]


def model_weights(model) -> dict:
    """`{variable path: NumPy array}` of every variable but the featuremap taps' accumulators,
    in the per-branch form whatever the model's `cell_impl`: a per-cell batch norm
    (`cell3_bn/beta`) is given as its branches' channel slices (`cell3_branch2_bn/beta`, ...),
    so saved weights and `inherit` do not depend on how the cell was built.

    Reads each variable once; under MultiWorkerMirroredStrategy every worker must call it at
    the same point (the taps' on-read accumulators are left out, so no collective is needed
    for them).
    """
    weights = {v.path: np.asarray(v.numpy()) for v in model.weights if not _is_tap(v)}
    for per_cell, width, per_branch in _cell_bn_paths(model.network):
        if per_cell in weights:
            values = weights.pop(per_cell)
            for j, path in enumerate(per_branch):
                weights[path] = values[j * width : (j + 1) * width]
    return weights


def assign(model, weights: dict):
    """Assigns `weights` (`{variable path: array}`, per-branch form) to the model's variables
    of those paths; a per-cell batch norm takes its branches' slices concatenated."""
    weights = dict(weights)
    for per_cell, _, per_branch in _cell_bn_paths(model.network):
        if per_cell not in weights and all(p in weights for p in per_branch):
            weights[per_cell] = np.concatenate([weights[p] for p in per_branch])
    for v in model.weights:
        if v.path in weights:
            v.assign(weights[v.path].astype(v.dtype))
