"""Training one step of a run's plan into its directory (`train_step`).

A step builds its network's `Trainer`, inherits the parent step's weights when the plan says
so (`inherit_parent`), trains it with the featuremap statistic (and the stability stop of a
construction iteration), and writes its artefacts into the staging directory that
`nac.run.rundir.RunDir.staging` renames into place (`write_artefacts`). Its progress line
shows the whole run's ETA (`progress_line`, from `nac.run.stepinfo`); TensorBoard gets the
step's hyperparameters and architecture; a slow evaluation or export says so in the log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time

from nac.net.divergence import Diverged
from nac.run import schema, stepcriteria, stepinfo
from nac.spec import cost as cost_lib
from nac.spec import networkfile
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


def _callbacks(runner, step, network, trainer, stats_cb, out, cost):
    """The step's Keras callbacks (statistic, TensorBoard, slow-evaluation notice) and its
    progress line (None off the chief or with --noprogress)."""
    from nac.training.monitor import TensorBoardScalars
    from nac.training.notices import EvaluationNotice

    c = runner.config
    callbacks = [stats_cb] if step.budget else []  # no window: nothing to read
    if c.output.tensorboard:
        callbacks.append(
            TensorBoardScalars(
                os.path.join(out, "tensorboard"),
                stats_cb,
                every=trainer.config.log_every,  # a loop boundary
                params=cost.params,
                hparams=stepinfo.hparams(c, step, network),
                architecture=stepinfo.architecture_text(network, len(c.envelope_cell()), cost.params),
                trial_id=f"{os.path.basename(os.path.abspath(c.run_dir))}/{step.name}",
            )
        )
    callbacks.append(EvaluationNotice(step.name, log.info, c.training.bn_eval == "recalibrate"))
    progress = progress_line(runner, step) if c.output.progress and runner.chief else None
    return callbacks, progress


def build_options(config):
    """The Keras builder's options of every network of the run (`nac.net.model.BuildOptions`)."""
    from nac.net.model import BuildOptions

    statistics = stepcriteria.recorded_statistics(config)
    return BuildOptions(
        branch_order=config.statistic.branch_order,
        synchronized_bn=config.training.synchronized_bn,
        statistics=statistics,
        cell_impl=config.statistic.cell_impl,
    )


def progress_line(runner, step):
    """The step's progress line, with the whole run's ETA from the steps still to come."""
    from nac.training.monitor import ProgressLine

    plan = runner.plan
    return ProgressLine(
        f"[{step.name} {plan.index(step) + 1}/{len(plan)}]",
        stream=runner.stream,
        log=log.info,
        later_steps=stepinfo.later_steps(plan, step),
        batch_size=runner.config.training.batch_size,
        later_fixed_s=stepinfo.later_fixed_s(plan, step, runner.overheads),
    )


def train_step(runner, step, network, parent=None):
    """Trains `step` (a `PlanStep`) of `network` into `RUN/<step.name>/`.

    `parent`: (network, cell_map) of the step `step.parent` whose weights it inherits, or
    None. Returns the step's driving statistics (branch name -> value).
    """
    import keras

    from nac.net.stats import FeaturemapStatistics
    from nac.training.train import Trainer

    c = runner.config
    image_size = runner.data.info.image_size
    cost = cost_lib.analyse(network, image_size)
    statistic = c.statistic.statistic
    options = build_options(c)
    statistics = options.statistics
    notation = network.notation(len(c.envelope_cell()))
    log.info(
        "%s: training %s (%s parameters) for %d steps", step.name, notation, f"{cost.params:,}", step.budget
    )
    keras.utils.set_random_seed(step.seed)
    started = time.perf_counter()
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
        callbacks, progress = _callbacks(runner, step, network, trainer, stats_cb, out, cost)
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
    runner.overheads.append(time.perf_counter() - started - result.train_time_s)
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
    from nac.training.notices import SlowNotice

    c = runner.config
    write_json(os.path.join(out, "network.json"), network.arch_json(), original_format=True)
    # --- api ---: the self-contained network file (stem, body, head, input, classes)
    write_json(
        os.path.join(out, networkfile.FILE),
        networkfile.record(network, runner.data.info.image_size, _changed_options(c)),
    )
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
            with SlowNotice(f"{step.name}: exporting the SavedModel", log.info):
                export.export_saved_model(
                    result.model,
                    path,
                    c.data.dataset,
                    info.image_size,
                    info.channels,
                    class_names=info.class_names,
                )
            path = os.path.join(out, export.KERAS_FILE)  # --- api ---: Keras reloads it
            export.save_keras(result.model, path)
        except Exception as e:  # TensorFlow's own file errors (tf.errors.OpError)
            if isinstance(e, OSError) or type(e).__module__.startswith("tensorflow"):
                raise WriteError(
                    f"cannot write {path}: {first_line(e)}; free space (or fix the "
                    "permissions) and rerun the same command: finished steps are kept"
                ) from None
            raise
    return driving


def _changed_options(config) -> dict:
    """The builder's options of the run that differ from `BuildOptions`' defaults."""
    from nac.net.model import BuildOptions

    default = BuildOptions()
    options = dataclasses.asdict(build_options(config))
    return {k: v for k, v in options.items() if v != getattr(default, k)}


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
