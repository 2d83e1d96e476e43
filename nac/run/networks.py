"""The networks of a run, resolved from its configuration (pure Python, no TensorFlow).

`resolve_network` gives the network a run starts from (construct, oneshot) or that its random
baselines match: an `--arch` file (`load_network_file`), the network of an original config,
or the EnvelopeNet of `--envelope`. `random_networks` draws the random baselines from the
run's seed (`derive_seed`); `matched_random_networks` redraws each until its parameter count
matches the reference's (`--match_params`).
"""

from __future__ import annotations

import hashlib

from nac.spec import arch as arch_lib
from nac.spec import random_arch
from nac.spec.config import OriginalConfig, network_file_kind
from nac.spec.errors import ConfigError, NacError, SpecError
from nac.spec.jsonio import load_json


def derive_seed(seed: int, tag: str) -> int:
    """A stable 31-bit seed for one step of a run (`iter_0`, `final`, `random_3`, ...)."""
    digest = hashlib.sha256(f"{seed}:{tag}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def load_network_file(path: str, stem: str, channels: int, num_classes: int) -> arch_lib.Network:
    """Reads a network from an original `network.json` list, nac's network JSON, or an
    original config's fixed `arch` / initial network."""
    data = load_json(path, ConfigError, "--arch file")
    kind = network_file_kind(data)
    if kind == "network":
        return arch_lib.Network.from_dict(data)
    if kind == "config":
        try:
            return OriginalConfig.from_original(data).initial_network(channels)
        except NacError as e:
            raise ConfigError(f"{path}: {e}") from None
    try:
        body = arch_lib.body_from_original(data)
    except SpecError as e:
        raise ConfigError(f"{path}: {e}") from None
    return arch_lib.Network(
        body, arch_lib.stem_for_body(body, stem), arch_lib.head_for_stem(stem, num_classes), channels
    )


def resolve_network(config) -> arch_lib.Network:
    """The starting network of `config` (a `nac.run.runconfig.RunConfig`), checked."""
    facts, search = config.facts, config.search
    # The original's ImageNet stem comes with its 1001-class head (slim's background class).
    stem_classes = facts.num_classes
    if search.stem == "imagenet" and config.data.dataset == "imagenet2012":
        stem_classes = arch_lib.IMAGENET_CLASSES
    try:
        if search.arch is not None:
            network = load_network_file(search.arch, search.stem, facts.channels, stem_classes)
        elif search.config_network is not None:
            network = arch_lib.Network.from_dict(search.config_network)
        else:
            network = arch_lib.network_from_notation(
                search.envelope, search.stem, search.skip, facts.channels, stem_classes
            )
            c = arch_lib.parse_notation(search.envelope)[0]
            if config.mode == "construct" and c != network.stem.base_width():
                raise ConfigError(
                    f"--envelope: got C = {c} with --stem={search.stem}; the restructure step "
                    f"sets widths from the stem's last conv ({network.stem.base_width()}, the "
                    f"original's rule), so construct with C = {network.stem.base_width()}"
                )
    except SpecError as e:
        raise ConfigError(str(e).replace("notation:", "--envelope:", 1)) from None
    classes = network.num_classes
    if not (config.data.dataset == "imagenet2012" and classes == 1001):
        classes = facts.num_classes
    try:
        return arch_lib.Network(
            network.body, network.stem, network.head.with_num_classes(classes), facts.channels
        )
    except SpecError as e:
        raise ConfigError(str(e)) from None


def random_networks(config) -> list[tuple[int, arch_lib.Network]]:
    """(seed, network) of each random baseline of `config`, drawn from the run's seed."""
    return [(seed, network) for seed, network, _ in matched_random_networks(config)]


def matched_random_networks(config) -> list[tuple[int, arch_lib.Network, int]]:
    """(seed, network, draws) of each random baseline of `config`: with `--match_params`,
    redrawn until within that fraction of the reference's parameters (`nac.spec.matched`)."""
    from nac.spec import cost as cost_lib
    from nac.spec import matched

    search = config.search
    if not search.match_params:
        return [(seed, network, 1) for seed, network in _random_draws(config)]
    base = config.initial_network()
    reference = cost_lib.count_params(base)
    pool = list(search.random_pool) if search.random_pool else [op for _, op in config.envelope_cell()]
    out = []
    for j in range(search.num_random):
        seed = derive_seed(config.runtime.seed or 0, f"random_{j}")
        network, draws = matched.draw_matched(
            lambda s: random_arch.random_like(base, s, pool),
            seed,
            reference,
            search.match_params,
            f"random_{j}",
        )
        out.append((seed, network, draws))
    return out


def _random_draws(config) -> list[tuple[int, arch_lib.Network]]:
    """(seed, network) of each random baseline, one draw each."""
    base = config.initial_network()
    search = config.search
    out = []
    for j in range(search.num_random):
        seed = derive_seed(config.runtime.seed or 0, f"random_{j}")
        if search.config_random is not None and search.random_pool is None:
            r = search.config_random  # the original's generator, with the config's blocks
            body = random_arch.random_body(
                r.layersperstage,
                r.numblocksperstage,
                r.blocks,
                base.stem.base_width(),
                seed,
                r.parameterlimits,
                r.skip,
            )
            network = arch_lib.Network(body, base.stem, base.head, base.input_channels)
        else:
            pool = (
                list(search.random_pool) if search.random_pool else [op for _, op in config.envelope_cell()]
            )
            network = random_arch.random_like(base, seed, pool)
        out.append((seed, network))
    return out
