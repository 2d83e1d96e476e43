"""Flags given together that the run would silently ignore (pure Python).

Only flags given explicitly count (`present`); an original config's own values are not flags
and stay accepted whatever mode the config runs in. Refused, each in one line naming both
flags and the fix:

- `--arch` or `--config` (a network of its own) together with `--envelope`: the file wins;
- construction flags (`--iterations`, the construction budget, the per-stage policy lists,
  `--worstcase`, the stability stop, weight inheritance) outside `--mode=construct`, where
  nothing is restructured (`--construction_eval_every`, an evaluation setting, stays
  accepted: study scripts pass one evaluation schedule to every role);
- random-baseline flags (`--num_random`, `--random_pool`) outside `--mode=random`.

`ignored_flags(config)` names the flags a run does not use, so that `RUN/flags.txt` (every
flag with its value, replayable as a flagfile) leaves them out and replays without conflict.
"""

from __future__ import annotations

from nac.spec.errors import ConfigError

CONSTRUCTION_FLAGS = (
    "iterations",
    "construction_steps",
    "construction_epochs",
    "maxlayersperstage",
    "maxfilterprune",
    "construction",
    "parameterlimits",
    "worstcase",
    "stats_stop_tau",
    "stats_stop_patience",
    "stats_stop_min_steps",
    "inherit_weights",
    "inherit_final",
)
RANDOM_FLAGS = ("num_random", "random_pool")


def check(config, present: set) -> None:
    """Raises `ConfigError` when explicit flags of `config` (a `RunConfig`) contradict each other."""
    search = config.search
    if "envelope" in present:
        for other in ("arch", "config"):
            if other in present and (other == "arch" or search.config_network is not None):
                raise ConfigError(
                    f"--envelope and --{other} both given: the network comes from "
                    f"--{other}={getattr(search, other)} and --envelope would be ignored; drop one"
                )
    if config.mode != "construct":
        given = [flag for flag in CONSTRUCTION_FLAGS if flag in present]
        if given:
            raise ConfigError(
                f"--{given[0]} with --mode={config.mode}: only a construction uses it (nothing "
                f"is restructured in {config.mode} mode); drop --{given[0]} or use --mode=construct"
            )
    if config.mode != "random":
        given = [flag for flag in RANDOM_FLAGS if flag in present]
        if given:
            raise ConfigError(
                f"--{given[0]} with --mode={config.mode}: only --mode=random trains random "
                f"baselines; drop --{given[0]} or use --mode=random"
            )


def ignored_flags(config) -> frozenset:
    """The flags `config` does not read (its mode's and its network's unused ones)."""
    ignored = set()
    if config.mode != "construct":
        ignored.update(CONSTRUCTION_FLAGS)
    if config.mode != "random":
        ignored.update(RANDOM_FLAGS)
    if config.search.arch is not None or config.search.config_network is not None:
        ignored.add("envelope")
    return frozenset(ignored)
