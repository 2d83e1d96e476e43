"""A run rendered in the original's v2.0 schema (for `RUN/config.json`; pure Python).

`python -m nac.restructure --config RUN/config.json` replays the construction's decisions
from it.
"""

from __future__ import annotations

import os


def original_config(config) -> dict:
    """The run `config` (a `nac.run.runconfig.RunConfig`) in the original's v2.0 schema."""
    network = config.initial_network()
    lists = config.policy_lists()
    search, training = config.search, config.training
    algorithm = {"construct": "envelopenet", "oneshot": "deterministic", "random": "random"}[config.mode]
    parameters = {
        "archname": os.path.basename(os.path.normpath(config.run_dir)),
        "mode": "construct" if config.mode == "construct" else "oneshot",
        "algorithm": algorithm,
        "gpus": "[" + ",".join(map(str, range(training.original_gpus))) + "]"
        if training.original_gpus > 1
        else "[]",
        "steps": config.construction_budget() if config.mode == "construct" else config.final_budget(),
        "evalintval": config.eval_interval(),
        "batchsize": config.per_gpu_batch_size,
        "dataset": config.data.dataset,
        "iterations": {"construct": search.iterations, "random": search.num_random}.get(config.mode, 0),
        "image_size": config.resolved_image_size,
    }
    if config.data.data_dir:
        parameters["data_dir"] = config.data.data_dir
    out = {
        "parameters": parameters,
        "initcell": network.stem.to_original(),
        "classificationcell": network.head.to_original(),
        "envelopenet": {
            "stages": network.num_stages,
            "layersperstage": network.layers_per_stage(),
            "maxlayersperstage": list(lists["maxlayersperstage"]),
            "construction": list(lists["construction"]),
            "parameterlimits": list(lists["parameterlimits"]),
            "maxfilterprune": search.maxfilterprune,
            "envelopecell": dict(config.envelope_cell()),
            "skip": config.effective_skip(),
            "worstcase": search.worstcase,
        },
    }
    if config.mode != "construct" or search.arch is not None or search.config_network is not None:
        out["arch"] = network.arch_json()
    if config.mode == "random":
        out["random"] = {
            "stages": network.num_stages,
            "layersperstage": network.layers_per_stage(),
            "numblocksperstage": network.branches_per_stage(),
            "parameterlimits": list(lists["parameterlimits"]),
            "blocks": list(search.random_pool or [op for _, op in config.envelope_cell()]),
            "skip": out["envelopenet"]["skip"],
        }
    return out
