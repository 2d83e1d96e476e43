"""Checks of a run configuration that need several sections: the branch criterion and the
parameter-matched random baselines (called by `RunConfig` while it validates itself)."""

from __future__ import annotations

from nac.search import criteria as criteria_lib
from nac.spec.errors import ConfigError


def check_criteria(config) -> None:
    """The branch criterion (`--statistic`, `nac.search.criteria`): a construction without
    training window only with a criterion that needs none; the oracle's held-out images;
    the stability stop only on a recorded criterion."""
    statistic = config.statistic.statistic
    criterion = criteria_lib.get(statistic, ConfigError)
    if criterion.needs_validation and config.data.validation_examples == 0:
        raise ConfigError(
            f"--statistic={statistic} needs held-out training images; give "
            "--validation_examples=N (for example 2000)"
        )
    if config.mode != "construct":
        return
    if config.training.construction_steps == 0 and criterion.zero_steps:
        zero_ok = ", ".join(n for n, c in criteria_lib.REGISTRY.items() if not c.zero_steps)
        raise ConfigError(
            f"--construction_steps=0 with --statistic={statistic}: {criterion.zero_steps}; "
            f"use --statistic={zero_ok.replace(', ', ' or ')} or --construction_steps >= 1"
        )
    if statistic == "taylor" and config.training.mixed_precision:
        raise ConfigError.got(
            "--statistic",
            statistic,
            "taylor needs the loss gradient, which --mixed_precision scales; use --nomixed_precision",
        )
    tau = config.search.stats_stop_tau
    if tau > 0 and not criterion.recorded:
        raise ConfigError.got(
            "--stats_stop_tau",
            tau,
            f"the stop watches a recorded criterion ({', '.join(criteria_lib.RECORDED_NAMES)}), "
            f"not {statistic}; use --stats_stop_tau=0",
        )


def check_matching(config) -> None:
    """Parameter-matched random baselines (`--match_params`)."""
    search = config.search
    f = search.match_params
    if f and config.mode != "random":
        raise ConfigError.got("--match_params", f, "is for --mode=random; drop it or use --mode=random")
    if f and search.config_random is not None and search.random_pool is None:
        raise ConfigError.got(
            "--match_params", f, "matches --arch baselines, not a --config random generator; drop one"
        )
    if f:
        from nac.run.networks import matched_random_networks

        matched_random_networks(config)  # a bound that cannot be met fails here, before training
