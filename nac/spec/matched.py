"""Parameter-matched random baselines (pure Python, seeded).

The paper compares constructed and random networks "of approximately the same number of
parameters"; a random network with the same stages, layers and branch total as the reference
(`nac.spec.random_arch`) can still be much lighter or heavier, since its ops differ. With a
fraction F, `draw_matched` redraws until a network's trainable parameter count is within
F of the reference's: draw 0 uses the step's seed (the unmatched draw), draw k >= 1 the seed
`"<seed>/<k>"` (a draw that is no valid network, a layer with more branches than channels,
counts and is skipped), so the result depends only on the seed, F and the reference. After
`MAX_DRAWS` draws without a match it raises one line saying how close the best draw came.
"""

from __future__ import annotations

from collections.abc import Callable

from nac.spec import arch as arch_lib
from nac.spec import cost as cost_lib
from nac.spec.errors import ConfigError, SpecError

MAX_DRAWS = 2000


def draw_seed(seed: int, k: int):
    """The seed of draw `k` of a baseline whose step seed is `seed`."""
    return seed if k == 0 else f"{seed}/{k}"


def draw_matched(
    draw: Callable[[object], arch_lib.Network],
    seed: int,
    reference_params: int,
    fraction: float,
    name: str = "random baseline",
    max_draws: int = MAX_DRAWS,
) -> tuple[arch_lib.Network, int]:
    """The first draw within `fraction` of `reference_params`, and the number of draws made.

    Args:
      draw: seed -> a random network (`random_arch.random_like` bound to the reference).
      seed: the baseline's seed.
      reference_params: the reference network's trainable parameters.
      fraction: the allowed relative difference, e.g. 0.05.
      name: the baseline's name, for the error.
      max_draws: the bound on the draws.

    Raises:
      ConfigError: no draw came within `fraction` in `max_draws` draws.
    """
    best = None
    for k in range(max_draws):
        try:
            network = draw(draw_seed(seed, k))
        except SpecError:  # a layer drew more branches than its channels: not a network
            continue
        params = cost_lib.count_params(network)
        gap = (params - reference_params) / reference_params
        if abs(gap) <= fraction:
            return network, k + 1
        if best is None or abs(gap) < abs(best[1]):
            best = (params, gap)
    if best is None:
        raise ConfigError(
            f"--match_params={fraction}: none of {max_draws} draws of {name} is a valid network"
        )
    raise ConfigError(
        f"--match_params={fraction}: no draw of {name} came within {fraction * 100:g}% of the "
        f"reference's {reference_params:,} parameters in {max_draws} draws; the closest had "
        f"{best[0]:,} ({best[1]:+.1%}); raise --match_params or change --random_pool"
    )
