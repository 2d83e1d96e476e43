"""The schemas of the run directory's records (pure Python, no TensorFlow).

One definition of each record nac writes and `nac.report` reads: the cost fields of a network
(`cost_fields`, also written by `nac.summary` and by the original's results reader), a step's
`metrics.json` (`metrics_record`) and the run's `summary.json` (`summary_record`). The files
and their layout are `nac.run.rundir`'s; the statistic files are `nac.search.statsio`'s.
"""

from __future__ import annotations

SUMMARY = "summary.json"
SUMMARY_FORMAT = "nac-summary/1"

# The per-step numbers `summary.json` lists (from each step's `metrics.json`); Table 1's input.
SUMMARY_STEP_FIELDS = (
    "name",
    "notation",
    "trainable_params",
    "flops_per_image",
    "flops_per_batch_50",
    "flops_forward_per_image",
    "flops_training_per_image",
    "steps",
    "epochs",
    "test_accuracy",
    "test_error",
    "wall_time_s",
    "images_per_sec",
)


def cost_fields(cost) -> dict:
    """A network's parameters and FLOPs (`nac.spec.cost.analyse`), as every record names them."""
    return {
        "trainable_params": cost.params,
        "flops_per_image": cost.flops_per_image,
        "flops_per_batch_50": cost.flops_per_batch,
        "flops_forward_per_image": cost.flops_forward_per_image,
        "flops_training_per_image": cost.flops_training_per_image,
    }


def metrics_record(config, step, network, cost, result, image_size, train_examples, replicas) -> dict:
    """A trained step's `metrics.json` (without the optional `stability_stop`, `inherited`).

    `config`: the run's `RunConfig`; `step`: its `PlanStep`; `result`: the `TrainResult`.
    """
    final = result.final
    return {
        "name": step.name,
        "role": "construction" if step.is_iteration else config.role(),
        "notation": network.notation(len(config.envelope_cell())),
        "network_fingerprint": network.fingerprint(),
        "dataset": config.data.dataset,
        "image_size": image_size,
        **cost_fields(cost),
        "steps": result.steps,
        "steps_planned": step.budget,
        "stopped_early": bool(result.stopped_early),
        "epochs": result.steps * config.training.batch_size / train_examples,
        "batch_size": config.training.batch_size,
        "seed": step.seed,
        "replicas": int(replicas),
        "history": list(result.history),
        "loss_curve": [list(p) for p in result.loss_curve],
        "test_accuracy": final["test_accuracy"],
        "test_error": 1.0 - final["test_accuracy"],
        "final": final,
        "images_per_sec": result.images_per_sec,
        "train_time_s": result.train_time_s,
        "eval_time_s": result.eval_time_s,
        "wall_time_s": result.wall_time_s,
    }


def summary_record(config, plan, done: dict) -> dict:
    """The run's `summary.json`: what the paper's Table 1 needs, from the finished steps.

    `plan`: the run's `PlanStep`s; `done`: step name -> its `metrics.json`, finished steps only.
    """
    c, search = config, config.search
    batch, examples = c.training.batch_size, c.train_examples
    epochs_per_iteration = c.construction_budget() * batch / examples
    final_epochs = c.final_budget() * batch / examples
    # Steps finished by an older nac lack the newer fields (e.g. flops_training_per_image).
    rows = [{k: m[k] for k in SUMMARY_STEP_FIELDS if k in m} for m in done.values()]
    out = {
        "format": SUMMARY_FORMAT,
        "role": c.role(),
        "mode": c.mode,
        "dataset": c.data.dataset,
        "image_size": c.resolved_image_size,
        "seed": c.runtime.seed,
        "initial_notation": c.initial_network().notation(len(c.envelope_cell())),
        "iterations": search.iterations if c.mode == "construct" else 0,
        "steps": rows,
        "complete": all(step.name in done for step in plan),
        "wall_time_s": sum(m["wall_time_s"] for m in done.values()),
    }
    if c.mode == "construct":
        out["construction_epochs_per_iteration"] = epochs_per_iteration
        out["final_epochs"] = final_epochs
        # Steps actually trained (the stability stop may end iterations early); an
        # iteration not trained yet counts with its planned window.
        trained = [done[s.name]["steps"] if s.name in done else s.budget for s in plan if s.is_iteration]
        out["construction_steps_planned"] = search.iterations * c.construction_budget()
        out["construction_steps"] = sum(trained)
        out["construction_cost_epochs_planned"] = search.iterations * epochs_per_iteration + final_epochs
        out["construction_cost_epochs"] = sum(trained) * batch / examples + final_epochs
        out["stats_stop_tau"] = search.stats_stop_tau
        out["inherit_weights"] = search.inherit_weights
        out["inherit_final"] = search.inherit_weights and search.inherit_final
        out["construction_cost_wall_time_s"] = out["wall_time_s"]
    if "final" in done:
        out["final"] = {k: v for k, v in done["final"].items() if k not in ("history", "loss_curve", "final")}
    return out
