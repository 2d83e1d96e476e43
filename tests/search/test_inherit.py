"""Weight inheritance: what is copied after a restructure, and that inherited networks compute
what the trained one did (tiny networks, random weights, inference mode)."""

import numpy as np
import pytest

from nac.net import weights as net_weights
from nac.net.model import build_model
from nac.search import inherit
from nac.search import restructure as restructure_lib
from nac.spec import arch

SIZE = 8


def restructured(notation, skip, pruned):
    """(old network, new network, cell_map); `pruned` branches get the lowest statistic."""
    network = arch.network_from_notation(notation, "conv1x1", skip, 3, 10)
    stats = {
        b.original: (0.0 if b.original in pruned else 1.0 + i) for i, b in enumerate(network.branch_ids())
    }
    stages = network.num_stages
    policy = restructure_lib.Policy(
        construction=(True,) * stages,
        maxlayersperstage=(9,) * stages,
        maxfilterprune=1,
        envelopecell=arch.envelope_cell(3),
        skip=skip,
    )
    new, report = restructure_lib.restructure_with_report(network, stats, policy)
    assert sorted(b.original for b in report.pruned) == sorted(pruned)
    return network, new, report.cell_map


def random_weights(model, pruned, seed=0):
    """Random values everywhere; pruned branches output exactly 0 at inference (beta -100)."""
    rng = np.random.default_rng(seed)
    out = {}
    for path, value in net_weights.model_weights(model).items():
        if path.endswith("moving_variance"):
            out[path] = rng.uniform(0.5, 1.5, value.shape)
        elif path.endswith("moving_mean") or path.endswith("beta"):
            out[path] = rng.normal(0, 0.5, value.shape)
        else:
            out[path] = rng.normal(0, 0.3, value.shape)
    for branch in pruned:
        cell, key = branch.split("/")
        out[f"{cell.lower()}_{key.lower()}_bn/beta"][:] = -100.0
    net_weights.assign(model, out)
    return net_weights.model_weights(model)


@pytest.mark.parametrize("skip", [False, True])
def test_inherited_network_computes_what_the_trained_one_did(skip):
    pruned = ["Cell1/Branch2", "Cell4/Branch1"]  # stage 0 loses a 3x3, stage 1 a 1x1
    old_net, new_net, cell_map = restructured("8/2-1/3", skip, pruned)
    old_model = build_model(old_net, SIZE)
    old = random_weights(old_model, pruned)
    images = np.random.default_rng(1).normal(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)
    expected = old_model(images, training=False).numpy()

    new_model = build_model(new_net, SIZE)
    fresh = net_weights.model_weights(new_model)
    weights, report = inherit.inherit(old_net, old, new_net, fresh, cell_map)
    net_weights.assign(new_model, weights)
    np.testing.assert_allclose(new_model(images, training=False).numpy(), expected, rtol=2e-4, atol=2e-4)
    assert sorted(report["identity"]) == sorted(
        [arch.BranchId(k, key).keras for k in (3, 6) for key, _ in new_net.body[k - 1].branches]
        + (["cell3_skip_conv", "cell6_skip_conv"] if skip else [])
    )

    # The appended cells left random: the inherited layers behind them see other inputs.
    weights, report = inherit.inherit(old_net, old, new_net, fresh, cell_map, appended="fresh")
    net_weights.assign(new_model, weights)
    assert not np.allclose(new_model(images, training=False).numpy(), expected, atol=1e-2)
    assert report["identity"] == []


def test_kept_branches_are_copied_by_branch_id_with_their_batch_norm():
    pruned = ["Cell1/Branch2", "Cell4/Branch1"]
    old_net, new_net, cell_map = restructured("8/2-1/3", False, pruned)
    assert dict(cell_map) == {1: 1, 2: 2, 4: 5}  # stage 1's layer moves from 4 to 5
    old = random_weights(build_model(old_net, SIZE), pruned)
    fresh = net_weights.model_weights(build_model(new_net, SIZE))
    new, report = inherit.inherit(old_net, old, new_net, fresh, cell_map)
    # Cell1 (8 outputs): 3 branches of 2 channels -> 2 branches (Branch1, Branch3) of 4.
    for key in ("branch1", "branch3"):
        for v in ("beta", "moving_mean", "moving_variance"):
            np.testing.assert_array_equal(new[f"cell1_{key}_bn/{v}"][:2], old[f"cell1_{key}_bn/{v}"])
            np.testing.assert_array_equal(new[f"cell1_{key}_bn/{v}"][2:], fresh[f"cell1_{key}_bn/{v}"][2:])
    np.testing.assert_array_equal(new["cell1_branch1_conv/kernel"][..., :2], old["cell1_branch1_conv/kernel"])
    np.testing.assert_array_equal(
        new["cell1_branch1_conv/kernel"][..., 2:], fresh["cell1_branch1_conv/kernel"][..., 2:]
    )
    # Cell2 reads Cell1: old input channels [B1: 0-1, B2: 2-3, B3: 4-5], new [B1: 0-3, B3: 4-7].
    old_k, new_k = old["cell2_branch2_conv/kernel"], new["cell2_branch2_conv/kernel"]
    np.testing.assert_array_equal(new_k[:, :, [0, 1, 4, 5], :], old_k[:, :, [0, 1, 4, 5], :])
    assert not new_k[:, :, [2, 3, 6, 7], :].any()  # rows of the new channels: zero
    dw_old, dw_new = old["cell2_branch3_conv/depthwise_kernel"], new["cell2_branch3_conv/depthwise_kernel"]
    np.testing.assert_array_equal(dw_new[:, :, [0, 1, 4, 5]], dw_old[:, :, [0, 1, 4, 5]])
    # Stage 1: old Cell4 is new Cell5, matched by branch key; the widener moved from 3 to 4.
    np.testing.assert_array_equal(
        new["cell5_branch3_bn/beta"][: len(old["cell4_branch3_bn/beta"])], old["cell4_branch3_bn/beta"]
    )
    np.testing.assert_array_equal(new["widener4_conv/bias"], old["widener3_conv/bias"])
    np.testing.assert_array_equal(
        new["stem_layer0_branch0_conv/kernel"], old["stem_layer0_branch0_conv/kernel"]
    )
    assert "cell3_branch1_conv/kernel" not in report["copied"]  # the appended cell is new
    with_fresh_rows, _ = inherit.inherit(old_net, old, new_net, fresh, cell_map, new_inputs="fresh")
    np.testing.assert_array_equal(
        with_fresh_rows["cell2_branch2_conv/kernel"][:, :, [2, 3, 6, 7]],
        fresh["cell2_branch2_conv/kernel"][:, :, [2, 3, 6, 7]],
    )


def test_relu_gaussian_moments():
    rng = np.random.default_rng(0)
    for beta in (-1.0, 0.0, 0.7):
        sample = np.maximum(rng.normal(beta, 1.0, 400_000), 0)
        mean, sd = inherit._relu_gaussian(beta)
        assert mean == pytest.approx(sample.mean(), abs=5e-3) and sd == pytest.approx(sample.std(), abs=5e-3)


def test_saved_weights_do_not_depend_on_the_cell_form():
    """A per-cell batch norm is read as its branches' slices and written back from them, so a
    weights file of either form inherits into either form."""
    from nac.net.model import BuildOptions, transfer_weights

    network = arch.network_from_notation("6/2-1/3", "conv1x1", False, 3, 10)
    per_branch = build_model(network, SIZE, BuildOptions(cell_impl="per_branch"))
    per_cell = build_model(network, SIZE, BuildOptions(cell_impl="per_cell"))
    weights = random_weights(per_branch, [])
    transfer_weights(per_branch, per_cell)
    read = net_weights.model_weights(per_cell)
    assert sorted(read) == sorted(weights) and "cell1_branch2_bn/beta" in read and "cell1_bn/beta" not in read
    for path, value in weights.items():
        np.testing.assert_array_equal(read[path], value, err_msg=path)
    other = build_model(network, SIZE, BuildOptions(cell_impl="per_cell"))
    net_weights.assign(other, weights)
    np.testing.assert_array_equal(
        other.get_layer("cell1_bn").beta.numpy(), per_cell.get_layer("cell1_bn").beta.numpy()
    )
