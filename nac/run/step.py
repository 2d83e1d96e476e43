"""Training one step of a run's plan into its directory (`train_step`).

A step builds its network's `Trainer`, inherits the parent step's weights when the plan says
so (`inherit_parent`), trains it with the featuremap statistic (and the stability stop of a
construction iteration), and writes its artefacts into the staging directory that
`nac.run.rundir.RunDir.staging` renames into place (`write_artefacts`).
"""

from __future__ import annotations

import contextlib
import logging
import os

from nac.net.divergence import Diverged
from nac.run import schema, stepcriteria
from nac.spec import cost as cost_lib
from nac.spec.errors import FailedError, RunError, WriteError

log = logging.getLogger("nac")


def inherit_parent(runner, model, network, step, parent_network, cell_map) -> dict:
    """Copies the parent step's saved weights into `model` (`nac.search.inherit`).

    Returns the `inherited` record of the step's `metrics.json`.
    """
    import numpy as np

    from nac.net import weights as net_weights
    from nac.search import inherit

    path = runner.run_dir / f"{step.parent}/{inherit.WEIGHTS_FILE}"
    if not os.path.exists(path):
        raise RunError(
            f"{path} is missing: --inherit_weights needs the previous iteration's weights; "
            "retrain it (remove that directory) or run without --inherit_weights"
        )
    with np.load(path) as saved:
        old = {k: saved[k] for k in saved.files}
    weights, report = inherit.inherit(
        parent_network,
        old,
        network,
        net_weights.model_weights(model),
        cell_map,
        branch_order=runner.config.statistic.branch_order,
    )
    with runner.strategy.scope():
        net_weights.assign(model, weights)
    return {
        "from": step.parent,
        "weights": "ema" if runner.config.training.ema else "raw",
        "copied": len(report["copied"]),
        "identity_initialised": report["identity"],
        "fresh": report["fresh"],
    }


def stability_stop(runner, step, network):
    """The stability stop of a construction iteration (None: a fixed window)."""
    from nac.search.stopping import StabilityStop, decisive_stages

    rule = runner.config.stop_rule()
    if not rule.enabled or not step.is_iteration:
        return None
    policy = runner.policy
    return StabilityStop(rule, decisive_stages(network, policy.construction, policy.maxlayersperstage))


def _callbacks(runner, step, trainer, stats_cb, out, cost):
    from nac.training.monitor import ProgressLine, TensorBoardScalars

    callbacks = [stats_cb] if step.budget else []  # no window: nothing to read
    if runner.config.output.tensorboard:
        callbacks.append(
            TensorBoardScalars(
                os.path.join(out, "tensorboard"),
                stats_cb,
                every=trainer.config.log_every,  # a loop boundary
                params=cost.params,
            )
        )
    progress = None
    if runner.config.output.progress and runner.chief:
        label = f"[{step.name} {step.index + 1}/{runner.total}]"
        progress = ProgressLine(label, stream=runner.stream, log=log.info)
    return callbacks, progress


def train_step(runner, step, network, parent=None):
    """Trains `step` (a `PlanStep`) of `network` into `RUN/<step.name>/`.

    `parent`: (network, cell_map) of the step `step.parent` whose weights it inherits, or
    None. Returns the step's driving statistics (branch name -> value).
    """
    import keras

    from nac.net.model import BuildOptions
    from nac.net.stats import FeaturemapStatistics
    from nac.training.train import Trainer

    c = runner.config
    image_size = runner.data.info.image_size
    cost = cost_lib.analyse(network, image_size)
    statistic = c.statistic.statistic
    statistics = stepcriteria.recorded_statistics(c)
    notation = network.notation(len(c.envelope_cell()))
    log.info(
        "%s: training %s (%s parameters) for %d steps", step.name, notation, f"{cost.params:,}", step.budget
    )
    keras.utils.set_random_seed(step.seed)
    options = BuildOptions(
        branch_order=c.statistic.branch_order,
        synchronized_bn=c.training.synchronized_bn,
        statistics=statistics,
        cell_impl=c.statistic.cell_impl,
    )
    with runner.run_dir.staging(step.name) as out:
        recipe = c.train_config(
            max(1, step.budget), iteration=step.is_iteration, steps_per_loop=runner.steps_per_loop
        )
        trainer = Trainer(network, image_size, recipe, build_options=options, strategy=runner.strategy)
        inherited = None if parent is None else inherit_parent(runner, trainer.model, network, step, *parent)
        computed = stepcriteria.at_start(c, trainer.model, runner.data.reseeded(step.seed))
        stop = stability_stop(runner, step, network)
        on_record = None if stop is None else (lambda at, values: stop.update(at, values[statistic]))
        stats_cb = FeaturemapStatistics(
            trainer.model, c.training.batch_size, statistics, c.statistic.stats_every, on_record=on_record
        )
        callbacks, progress = _callbacks(runner, step, trainer, stats_cb, out, cost)
        records = {}  # the oracle's record (`stepcriteria.at_end`)
        with training_errors(runner, step.name):
            if step.budget:
                result = trainer.train(
                    runner.data.reseeded(step.seed),
                    callbacks=callbacks,
                    should_stop=runner.stop_requested,
                    progress=progress,
                )
            else:  # no training window (--construction_steps=0, a zero-cost criterion)
                result = trainer.evaluate_untrained(runner.data.reseeded(step.seed), callbacks)
            computed.update(stepcriteria.at_end(c, trainer.model, step.seed, runner.data, records))
        metrics = schema.metrics_record(
            c,
            step,
            network,
            cost,
            result,
            image_size,
            runner.data.info.train_examples,
            runner.strategy.num_replicas_in_sync,
        )
        _add_records(runner, step, metrics, stop, inherited, records.get("oracle"))
        final_stats = write_artefacts(runner, step, out, network, stats_cb, metrics, result, computed)
    keras.backend.clear_session()
    if result.stopped_early:
        log.info("%s: statistics stable, stopped at step %d of %d", step.name, result.steps, step.budget)
    log.info(
        "%s: test accuracy %.4f, %.0f images/s, %.0f s",
        step.name,
        metrics["test_accuracy"],
        metrics["images_per_sec"],
        metrics["wall_time_s"],
    )
    return final_stats


def _add_records(runner, step, metrics, stop, inherited, oracle):
    """The optional records of a step's `metrics.json`: the stability stop, the inherited
    weights, the oracle, and the draws of a parameter-matched random baseline."""
    if stop is not None:
        metrics["stability_stop"] = stop.to_dict()
    if inherited is not None:
        metrics["inherited"] = inherited
    if oracle is not None:
        metrics["oracle"] = oracle
    match = runner.config.search.match_params
    if match and step.name in runner.random_draws:
        metrics["random_draws"] = runner.random_draws[step.name]
        metrics["match_params"] = match


def write_artefacts(runner, step, out, network, stats_cb, metrics, result, computed) -> dict:
    """Writes a trained step's files into its staging directory `out`; returns the driving
    criterion's values (`stats.json`'s).

    `computed`: the per-image criteria the taps do not record (`nac.run.stepcriteria`).
    """
    from nac.net import ablation as ablation_lib
    from nac.net import export
    from nac.spec.jsonio import write_json

    c = runner.config
    write_json(os.path.join(out, "network.json"), network.arch_json(), original_format=True)
    if step.budget:
        values = {**stats_cb.final, **computed}  # per-image values
        stats_cb.write(out, c.statistic.statistic, values, logged=stepcriteria.logged_statistics(c))
    driving = stepcriteria.write(out, c, values if step.budget else computed, bool(step.budget))
    if c.search.inherit_weights and step.is_iteration:
        # The evaluation (EMA, re-estimated BN) weights the next step inherits, kept
        # whatever --save_models says so that a resumed run inherits the same ones.
        import numpy as np

        from nac.net import weights as net_weights
        from nac.search import inherit

        np.savez(os.path.join(out, inherit.WEIGHTS_FILE), **net_weights.model_weights(result.model))
    # The evaluation weights `nac.ablate` needs, whatever --save_models says.
    ablation_lib.save_evaluation_weights(out, result.model)
    write_json(os.path.join(out, "metrics.json"), metrics)
    if c.output.save_models and (c.output.save_iteration_models or not step.is_iteration):
        path = os.path.join(out, "saved_model")
        info = runner.data.info
        try:
            export.export_saved_model(result.model, path, c.data.dataset, info.image_size, info.channels)
        except Exception as e:  # TensorFlow's own file errors (tf.errors.OpError)
            if isinstance(e, OSError) or type(e).__module__.startswith("tensorflow"):
                raise WriteError(
                    f"cannot write {path}: {first_line(e)}; free space (or fix the "
                    "permissions) and rerun the same command: finished steps are kept"
                ) from None
            raise
    return driving


@contextlib.contextmanager
def training_errors(runner, name: str):
    """Turns divergence and TensorFlow errors met while training step `name` into one line."""
    import tensorflow as tf

    from nac.data import datasources

    try:
        yield
    except Diverged as e:
        e.step_name, e.learning_rate = name, runner.config.training.learning_rate
        raise
    except tf.errors.OpError as e:
        if datasources.is_pipeline_error(e):
            raise datasources.pipeline_error(e, runner.config.data.dataset, runner.data.info.source) from None
        raise FailedError(f"{name}: TensorFlow failed while training: {first_line(e)}") from None


def first_line(error: BaseException) -> str:
    """The first line of an error's message, at most 300 characters."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return " ".join(text.strip().splitlines()[0].split())[:300]
