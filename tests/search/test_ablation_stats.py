"""nac.search.ablation: tau with its interval, prune agreement and the ablation document."""

import numpy as np
import pytest

from nac.search import ablation
from nac.search.restructure import Policy
from nac.spec import arch as arch_lib

NET = arch_lib.network_from_notation("8/2-1/6")  # stage 0: 12 branches, stage 1: 6
POLICY = Policy(construction=(True, False), maxlayersperstage=(3, 3), envelopecell=arch_lib.envelope_cell(6))
IDS = [b.original for b in NET.branch_ids()]


def test_tau_of_a_concordant_criterion_is_one_with_a_degenerate_interval():
    deltas = np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2], [0.3, 0.3, 0.3]])
    rng = np.random.default_rng(0)
    out = ablation.tau_with_interval([1.0, 2.0, 3.0], deltas, ablation.bootstrap_means(deltas, rng, 50))
    assert out == {"value": 1.0, "ci": [1.0, 1.0]}
    reverse = ablation.tau_with_interval([3.0, 2.0, 1.0], deltas, ablation.bootstrap_means(deltas, rng, 50))
    assert reverse["value"] == -1.0
    flat = ablation.tau_with_interval([1.0, 1.0, 1.0], deltas, ablation.bootstrap_means(deltas, rng, 50))
    assert flat == {"value": None, "ci": None}


def test_bootstrap_interval_widens_with_image_noise():
    rng = np.random.default_rng(1)
    noisy = np.array([0.0, 0.01, 0.02])[:, None] + rng.normal(0, 0.2, (3, 200))
    boot = ablation.bootstrap_means(noisy, rng, 300)
    assert boot.shape == (300, 3)
    out = ablation.tau_with_interval([1.0, 2.0, 3.0], noisy, boot)
    lo, hi = out["ci"]
    assert lo < hi and lo <= 0.5


def test_prune_agreement_by_hand():
    oracle = {b: float(i) for i, b in enumerate(IDS)}  # network order = ascending utility
    # Stage 0 prunes min(6, 12 // 3) = 4: by the oracle Cell1/Branch1..4.
    assert ablation.prune_agreement(NET, oracle, oracle, POLICY) == [1.0, None]
    reverse = {b: -v for b, v in oracle.items()}  # prunes Cell2's four highest
    assert ablation.prune_agreement(NET, reverse, oracle, POLICY) == [0.0, None]
    half = dict(oracle)
    for b in ("Cell1/Branch3", "Cell1/Branch4"):
        half[b] = 100.0  # now Cell1/Branch1, 2, 5, 6 are pruned: 2 of 4 shared
    assert ablation.prune_agreement(NET, half, oracle, POLICY) == [0.5, None]


def test_random_values_are_seeded():
    from nac.search import criteria

    a = criteria.random_values(IDS, 7)
    assert a == criteria.random_values(IDS, 7) and a != criteria.random_values(IDS, 8)
    assert list(a) == IDS and all(0 <= v < 1 for v in a.values())


def test_ablation_document_by_hand():
    n = 4
    base = {"loss": np.full(n, 1.0), "correct": np.array([1, 1, 0, 0], bool)}
    ablated = {
        b: {"loss": np.full(n, 1.0 + 0.1 * i), "correct": np.array([1, 0, 0, 0], bool)}
        for i, b in enumerate(IDS)
    }
    criteria = {"l2": {b: float(i) for i, b in enumerate(IDS)}, "partial": {IDS[0]: 1.0}}
    doc = ablation.ablation_document(NET, base, ablated, criteria, POLICY, notes=["x"])
    assert doc["format"] == "nac-ablation/1" and doc["examples"] == n and doc["notes"] == ["x"]
    assert doc["base"] == {"loss": 1.0, "accuracy": 0.5}
    third = doc["branches"][IDS[3]]
    assert third["delta_loss"] == pytest.approx(0.3) and third["delta_accuracy"] == pytest.approx(-0.25)
    assert third["criteria"] == {"l2": 3.0}
    assert list(doc["branches"]) == IDS
    stage0, stage1 = doc["stages"]
    assert stage0["tau"]["l2"] == {"value": 1.0, "ci": [1.0, 1.0]}
    assert "partial" not in stage0["tau"] and "partial" not in stage0["prune_agreement"]
    assert stage0["prune_agreement"]["l2"] == 1.0 and stage1["prune_agreement"]["l2"] is None


def test_oracle_statistic_needs_held_out_images_and_no_stability_stop():
    from helpers import run_config

    from nac.spec.errors import ConfigError

    with pytest.raises(ConfigError, match="--statistic=oracle needs held-out training images"):
        run_config(run_dir="x", dataset="synthetic", statistic="oracle")
    with pytest.raises(ConfigError, match="--stats_stop_tau"):
        run_config(
            run_dir="x",
            dataset="synthetic",
            statistic="oracle",
            validation_examples=50,
            stats_stop_tau=0.9,
            stats_every=4,
        )
    assert (
        run_config(
            run_dir="x", dataset="synthetic", statistic="oracle", validation_examples=50
        ).statistic.statistic
        == "oracle"
    )
