"""Random baseline networks, the paper's comparison nets (pure Python, seeded).

A random network has given layers per stage and a given number of branches (blocks) per
stage. As in the original generator, every layer first gets one block drawn from the op pool,
then each remaining block of the stage goes to a layer drawn at random; keys are `Branch0`,
`Branch1`, ... in order of arrival, and an op may repeat within a layer. The paper describes
random nets built from "the same operators" as the EnvelopeCell, which is nac's default pool;
the original's configs used {3x3, 3x3sep, 5x5, 5x5sep, 7x7, 7x7sep}, honoured when a config's
`blocks` list is given.
"""

from __future__ import annotations

import random as _random

from nac.spec import arch as arch_lib
from nac.spec.errors import SpecError


def _check_pool(pool):
    if not pool:
        raise SpecError("random op pool: got []; give at least one op such as 3x3")
    for i, op in enumerate(pool):
        arch_lib.Op.parse(op, f"random op pool[{i}]")
    return list(pool)


def random_stage_branches(num_layers: int, num_blocks: int, pool, rng) -> list[tuple[tuple[str, str], ...]]:
    """Draws the layers of one stage: each its branches `((key, op), ...)`."""
    if num_blocks < num_layers:
        raise SpecError(
            f"random stage: got {num_blocks} blocks for {num_layers} layers; "
            "every layer needs at least one block"
        )
    layers = [[rng.choice(pool)] for _ in range(num_layers)]
    for _ in range(num_blocks - num_layers):
        layers[rng.randrange(num_layers)].append(rng.choice(pool))
    return [tuple((f"Branch{i}", op) for i, op in enumerate(ops)) for ops in layers]


def random_body(
    layers_per_stage,
    blocks_per_stage,
    pool,
    base_width: int,
    seed=None,
    parameter_limits=None,
    skip: bool = False,
) -> tuple:
    """A random body with the stage-width rule for `outputs` (the original's generator)."""
    pool = _check_pool(pool)
    rng = _random.Random(seed)
    stages = [random_stage_branches(n, b, pool, rng) for n, b in zip(layers_per_stage, blocks_per_stage)]
    return arch_lib.assemble_body(stages, base_width, parameter_limits, skip)


def random_like(network: arch_lib.Network, seed=None, pool=None) -> arch_lib.Network:
    """A random network matched to `network`: the same layers and the same number of branches
    per stage (at least one per layer), each layer keeping `outputs` and skip `inputs`.

    Args:
      network: the network to match (usually a constructed one).
      seed: seed of the draw; the same seed gives the same network.
      pool: ops to draw from; default: the EnvelopeCell's ops (the paper's "same operators").
    """
    pool = _check_pool(pool if pool is not None else [op for _, op in arch_lib.STANDARD_CELL])
    rng = _random.Random(seed)
    body = []
    for stage_index, stage in enumerate(network.stages()):
        if stage_index:
            body.append(arch_lib.Widener())
        blocks = sum(cell.num_branches for _, cell in stage)
        drawn = random_stage_branches(len(stage), blocks, pool, rng)
        for (_, cell), branches in zip(stage, drawn):
            if cell.outputs < len(branches):
                raise SpecError(
                    f"random baseline: a layer drew {len(branches)} branches but its outputs "
                    f"is {cell.outputs}; use a wider network"
                )
            body.append(arch_lib.Cell(branches, cell.outputs, cell.inputs))
    return arch_lib.Network(tuple(body), network.stem, network.head, network.input_channels)
