"""One run of `nac.construct`: construct, oneshot or random, resumable.

Loop of a construction with N iterations: for i = 0 .. N-1, train network i from scratch for
the construction budget while collecting the featuremap statistic, evaluate, write
`RUN/iter_<i>/`, then restructure (`nac.restructure`, policy from `RUN/config.json`). The
result of the N-th restructure is trained for the final budget into `RUN/final/`. (The
original trained N + 1 short networks and discarded the last restructure; nac does not.)

Resume: a step whose directory exists finished and is never retrained or rewritten; the next
network is recomputed from its `network.json` and `stats.json` by the same pure function. An
interrupted step restarts from its beginning with the same seed (seeds are derived per step
from the run's seed). Staging leftovers of a killed process are discarded. SIGINT/SIGTERM stop
at a step boundary; the process exits with 128 + the signal number.

Faults (each one line on stderr; finished steps are kept): the run directory is locked by the
chief (`nac.run.lock`), so a second run on it is refused; a non-finite loss or statistic stops the
step with `Diverged` (exit 3) and nothing is written for it; a failed write (disk full, no
permission) stops with `WriteError` (exit 4) naming the path, leaving the step's staging
directory for the next start to discard; a corrupt data file met mid-epoch is a `DataError`
(exit 2); any other TensorFlow error while training is a `FailedError` (exit 1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import signal
import threading
import time

from nac.net.divergence import Diverged
from nac.run import stepcriteria
from nac.run.lock import RunLock, is_chief_from_env
from nac.run.runconfig import RunConfig, derive_seed
from nac.run.rundir import SUMMARY_STEP_FIELDS, RunDir
from nac.search import restructure as restructure_lib
from nac.search import statsio
from nac.spec import arch as arch_lib
from nac.spec import cost as cost_lib
from nac.spec.errors import FailedError, RunError, WriteError

log = logging.getLogger("nac")

SUMMARY = "summary.json"


def _steps_plan(config: RunConfig) -> list[str]:
    if config.mode == "construct":
        return [f"iter_{i}" for i in range(config.iterations)] + ["final"]
    if config.mode == "random":
        return [f"random_{j}" for j in range(config.num_random)]
    return ["final"]


def _adopt_saved(config: RunConfig, run_dir: RunDir) -> RunConfig:
    """Checks a resumed run's settings against the saved ones; fills in the saved seed."""
    if not run_dir.exists("run_config.json"):
        if config.seed is None:
            config = dataclasses.replace(config, seed=random.SystemRandom().randrange(2**31))
        return config
    value = run_dir.read_json("run_config.json")
    try:
        if not isinstance(value, dict):
            raise TypeError("not a JSON object")
        saved = RunConfig.from_dict(value)
        saved.initial_network()
    except (TypeError, ValueError, AttributeError, KeyError) as e:  # NacError is a ValueError
        raise RunError(
            f"{run_dir / 'run_config.json'} is not a run configuration this nac.construct wrote "
            f"({' '.join(str(e).split())[:200]}); use another --run_dir"
        ) from None
    if config.seed is None:
        config = dataclasses.replace(config, seed=saved.seed, deterministic=saved.deterministic)
    changed = config.differences(saved)
    if changed and not config.force:
        details = ", ".join(
            f"{k}: {getattr(saved, k, '?')!r} -> {getattr(config, k, '?')!r}"
            if k != "network"
            else "the starting network"
            for k in changed
        )
        raise RunError(
            f"--run_dir {run_dir.path} holds a run with other settings ({details}); "
            "use the same flags to resume, another --run_dir, or --force"
        )
    return config


class _Stop:
    """SIGINT/SIGTERM set a flag that the training loop checks at every step boundary."""

    def __init__(self):
        self.event = threading.Event()
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.event.is_set():  # a second signal stops at once
            raise KeyboardInterrupt
        self.signum = signum
        self.event.set()
        log.warning(
            "stopping at the next step boundary (signal %d); rerun the same command to resume", signum
        )

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class Runner:
    """Executes a `RunConfig` in its run directory."""

    def __init__(self, config: RunConfig, command: str = "", flags_text: str = "", stream=None):
        self.command = command
        self.flags_text = flags_text
        self.stream = stream
        self.config = config

    # -- set-up --------------------------------------------------------------------------------

    def _prepare(self):
        import keras
        import tensorflow as tf

        from nac.data import pipelines as data_lib
        from nac.training import distribute, runtime

        config = self.config
        with runtime.native_stderr_filtered():  # the cuInit error of a machine without a GPU
            runtime.configure_threads(config.intra_op_threads, config.inter_op_threads)
            self.strategy = distribute.make_strategy(config.strategy)
        self.chief = distribute.is_chief(self.strategy)
        self.steps_per_loop = config.resolved_steps_per_loop(bool(tf.config.list_physical_devices("GPU")))
        self.workers = distribute.num_workers(self.strategy)
        self.run_dir = RunDir(config.run_dir, writer=self.chief)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        self.data = data_lib.load(
            data_lib.DataConfig(
                dataset=config.dataset,
                data_dir=config.data_dir,
                image_size=config.resolved_image_size,
                downsample=config.downsample,
                augment=config.augment,
                cache=config.cache,
                seed=config.seed,
                validation_examples=config.validation_examples,
                label_offset=config.label_offset,
            )
        )
        info = self.data.info
        expected = config.facts
        if config.dataset != "synthetic" and info.train_examples != config.train_examples:
            log.info(
                "dataset has %d training examples (nac assumed %d for epoch budgets)",
                info.train_examples,
                config.train_examples,
            )
        if info.channels != expected.channels:
            raise RunError(
                f"--dataset {config.dataset}: loaded {info.channels} channels, expected {expected.channels}"
            )
        self.policy = config.policy()

    def _write_run_files(self):
        config = self.config
        if not self.run_dir.exists("run_config.json") or config.force:
            self.run_dir.write_json("run_config.json", config.to_dict())
            self.run_dir.write_json("config.json", config.original_config(), original_format=True)
            if self.chief:
                from nac.spec.jsonio import write_atomic

                write_atomic(
                    self.run_dir / "flags.txt",
                    f"# {self.command}\n{self.flags_text}" if self.flags_text else self.command + "\n",
                )

    # -- the plan ------------------------------------------------------------------------------

    def _step(self, name, network, seed, index, total, parent=None):
        """Trains step `name` unless it finished earlier; returns its driving statistics.

        `parent`: (step name, network, cell_map) of the iteration whose trained weights this
        step inherits (`--inherit_weights`), else None.
        """
        if self.run_dir.exists(name):
            saved = arch_lib.body_from_original(self.run_dir.read_json(f"{name}/network.json"))
            if saved != network.body:
                raise RunError(
                    f"{self.run_dir / name}/network.json is not the network this run computes "
                    "for that step; the directory holds another run (use another --run_dir)"
                )
            log.info("%s: done earlier, kept", name)
            return statsio.read_stats(self.run_dir / f"{name}/stats.json")
        stats = self.train_step(name, network, seed, index, total, parent)
        self.run_dir.write_json(SUMMARY, self.summary())
        return stats

    def execute(self):
        """Runs every step of the plan in order (finished steps are kept)."""
        config = self.config
        total = len(_steps_plan(config))
        if config.mode == "random":
            for j, (seed, network) in enumerate(config.random_networks()):
                self._step(f"random_{j}", network, seed, j, total)
            return
        network = config.initial_network()
        parent = None
        if config.mode == "construct":
            for i in range(config.iterations):
                name = f"iter_{i}"
                stats = self._step(name, network, derive_seed(config.seed, name), i, total, parent)
                trained = network
                network, report = restructure_lib.restructure_with_report(network, stats, self.policy)
                parent = (name, trained, report.cell_map) if config.inherit_weights else None
        if not config.inherit_final:
            parent = None
        self._step("final", network, derive_seed(config.seed, "final"), total - 1, total, parent)

    # -- one trained network ---------------------------------------------------------------------

    def _inherit(self, model, network, parent) -> dict:
        """Copies the parent iteration's saved weights into `model` (`nac.search.inherit`)."""
        from nac.search import inherit

        parent_name, parent_network, cell_map = parent
        path = self.run_dir / f"{parent_name}/{inherit.WEIGHTS_FILE}"
        if not os.path.exists(path):
            raise RunError(
                f"{path} is missing: --inherit_weights needs the previous iteration's weights; "
                "retrain it (remove that directory) or run without --inherit_weights"
            )
        import numpy as np

        with np.load(path) as saved:
            old = {k: saved[k] for k in saved.files}
        weights, report = inherit.inherit(
            parent_network,
            old,
            network,
            inherit.model_weights(model),
            cell_map,
            branch_order=self.config.branch_order,
        )
        with self.strategy.scope():
            inherit.assign(model, weights)
        return {
            "from": parent_name,
            "weights": "ema" if self.config.ema else "raw",
            "copied": len(report["copied"]),
            "identity_initialised": report["identity"],
            "fresh": report["fresh"],
        }

    def train_step(
        self, name: str, network: arch_lib.Network, seed: int, index: int, total: int, parent=None
    ):
        import keras

        from nac.net import export
        from nac.net.model import BuildOptions
        from nac.net.stats import FeaturemapStatistics
        from nac.training.monitor import ProgressLine, TensorBoardScalars
        from nac.training.train import Trainer

        c = self.config
        steps = c.construction_budget() if name.startswith("iter_") else c.final_budget()
        image_size = self.data.info.image_size
        cost = cost_lib.analyse(network, image_size)
        statistics = stepcriteria.recorded_statistics(c)
        log.info(
            "%s: training %s (%s parameters) for %d steps",
            name,
            network.notation(len(c.envelope_cell())),
            f"{cost.params:,}",
            steps,
        )
        keras.utils.set_random_seed(seed)
        options = BuildOptions(
            branch_order=c.branch_order,
            synchronized_bn=c.synchronized_bn,
            statistics=statistics,
            cell_impl=c.cell_impl,
        )
        with self.run_dir.staging(name) as out:
            trainer = Trainer(
                network,
                image_size,
                c.train_config(
                    max(1, steps), iteration=name.startswith("iter_"), steps_per_loop=self.steps_per_loop
                ),
                build_options=options,
                strategy=self.strategy,
            )
            inherited = None if parent is None else self._inherit(trainer.model, network, parent)
            computed = stepcriteria.at_start(c, trainer.model, self.data.reseeded(seed))
            stop = self._stability_stop(name, network)
            on_record = (
                None if stop is None else (lambda step, values: stop.update(step, values[c.statistic]))
            )
            stats_cb = FeaturemapStatistics(
                trainer.model, c.batch_size, statistics, c.stats_every, on_record=on_record
            )
            callbacks = [stats_cb] if steps else []  # no window: nothing to read
            if c.tensorboard:
                callbacks.append(
                    TensorBoardScalars(
                        os.path.join(out, "tensorboard"),
                        stats_cb,
                        every=trainer.config.log_every,  # a loop boundary
                        params=cost.params,
                    )
                )
            progress = None
            if c.progress and self.chief:
                progress = ProgressLine(f"[{name} {index + 1}/{total}]", stream=self.stream, log=log.info)
            with self._errors(name):
                if steps:
                    result = trainer.train(
                        self.data.reseeded(seed),
                        callbacks=callbacks,
                        should_stop=self._stop.event.is_set,
                        progress=progress,
                    )
                else:  # no training window (--construction_steps=0, a zero-cost criterion)
                    result = trainer.evaluate_untrained(self.data.reseeded(seed), callbacks)
            computed.update(stepcriteria.at_end(c, trainer.model, seed, self.data))
            from nac.spec.jsonio import write_json

            write_json(os.path.join(out, "network.json"), network.arch_json(), original_format=True)
            if steps:
                values = {**stats_cb.final, **computed}  # per-image values
                stats_cb.write(out, c.statistic, values, logged=stepcriteria.logged_statistics(c))
            final_stats = stepcriteria.write(out, c, values if steps else computed, bool(steps))
            metrics = self._metrics(name, network, cost, seed, steps, result)
            if stop is not None:
                metrics["stability_stop"] = stop.to_dict()
            if inherited is not None:
                metrics["inherited"] = inherited
            if c.inherit_weights and name.startswith("iter_"):
                # The evaluation (EMA, re-estimated BN) weights the next step inherits, kept
                # whatever --save_models says so that a resumed run inherits the same ones.
                import numpy as np

                from nac.search import inherit

                np.savez(os.path.join(out, inherit.WEIGHTS_FILE), **inherit.model_weights(result.model))
            write_json(os.path.join(out, "metrics.json"), metrics)
            if c.save_models and (c.save_iteration_models or not name.startswith("iter_")):
                path = os.path.join(out, "saved_model")
                try:
                    export.export_saved_model(
                        result.model, path, c.dataset, image_size, self.data.info.channels
                    )
                except Exception as e:  # TensorFlow's own file errors (tf.errors.OpError)
                    if isinstance(e, OSError) or type(e).__module__.startswith("tensorflow"):
                        raise WriteError(
                            f"cannot write {path}: {_first_line(e)}; free space (or fix the "
                            "permissions) and rerun the same command: finished steps are kept"
                        ) from None
                    raise
        keras.backend.clear_session()
        if result.stopped_early:
            log.info("%s: statistics stable, stopped at step %d of %d", name, result.steps, steps)
        log.info(
            "%s: test accuracy %.4f, %.0f images/s, %.0f s",
            name,
            metrics["test_accuracy"],
            metrics["images_per_sec"],
            metrics["wall_time_s"],
        )
        return final_stats

    @contextlib.contextmanager
    def _errors(self, name: str):
        """Turns divergence and TensorFlow errors met while training step `name` into one line."""
        import tensorflow as tf

        from nac.data import datasources

        try:
            yield
        except Diverged as e:
            e.step_name, e.learning_rate = name, self.config.learning_rate
            raise
        except tf.errors.OpError as e:
            if datasources.is_pipeline_error(e):
                raise datasources.pipeline_error(e, self.config.dataset, self.data.info.source) from None
            raise FailedError(f"{name}: TensorFlow failed while training: {_first_line(e)}") from None

    def _stability_stop(self, name, network):
        """The stability stop of a construction iteration (None: a fixed window)."""
        from nac.search.stopping import StabilityStop, decisive_stages

        rule = self.config.stop_rule()
        if not rule.enabled or not name.startswith("iter_"):
            return None
        policy = self.policy
        return StabilityStop(rule, decisive_stages(network, policy.construction, policy.maxlayersperstage))

    def _metrics(self, name, network, cost, seed, steps, result) -> dict:
        c = self.config
        final = result.final
        return {
            "name": name,
            "role": c.role() if name in ("final",) or name.startswith("random_") else "construction",
            "notation": network.notation(len(c.envelope_cell())),
            "network_fingerprint": network.fingerprint(),
            "dataset": c.dataset,
            "image_size": self.data.info.image_size,
            "trainable_params": cost.params,
            "flops_per_image": cost.flops_per_image,
            "flops_per_batch_50": cost.flops_per_batch,
            "flops_forward_per_image": cost.flops_forward_per_image,
            "flops_training_per_image": cost.flops_training_per_image,
            "steps": result.steps,
            "steps_planned": steps,
            "stopped_early": bool(result.stopped_early),
            "epochs": result.steps * c.batch_size / self.data.info.train_examples,
            "batch_size": c.batch_size,
            "seed": seed,
            "replicas": int(self.strategy.num_replicas_in_sync),
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

    # -- summary ---------------------------------------------------------------------------------

    def summary(self) -> dict:
        """What the paper's Table 1 needs, from the finished steps' metrics."""
        c = self.config
        plan = _steps_plan(c)
        done = {
            name: self.run_dir.read_json(f"{name}/metrics.json")
            for name in plan
            if self.run_dir.exists(f"{name}/metrics.json")
        }
        initial = c.initial_network()
        epochs_per_iteration = c.construction_budget() * c.batch_size / c.train_examples
        final_epochs = c.final_budget() * c.batch_size / c.train_examples
        # Steps finished by an older nac lack the newer fields (e.g. flops_training_per_image).
        rows = [{k: m[k] for k in SUMMARY_STEP_FIELDS if k in m} for m in done.values()]
        out = {
            "format": "nac-summary/1",
            "role": c.role(),
            "mode": c.mode,
            "dataset": c.dataset,
            "image_size": c.resolved_image_size,
            "seed": c.seed,
            "initial_notation": initial.notation(len(c.envelope_cell())),
            "iterations": c.iterations if c.mode == "construct" else 0,
            "steps": rows,
            "complete": all(name in done for name in plan),
            "wall_time_s": sum(m["wall_time_s"] for m in done.values()),
        }
        if c.mode == "construct":
            out["construction_epochs_per_iteration"] = epochs_per_iteration
            out["final_epochs"] = final_epochs
            # Steps actually trained (the stability stop may end iterations early); an
            # iteration not trained yet counts with its planned window.
            trained = [
                done[f"iter_{i}"]["steps"] if f"iter_{i}" in done else c.construction_budget()
                for i in range(c.iterations)
            ]
            out["construction_steps_planned"] = c.iterations * c.construction_budget()
            out["construction_steps"] = sum(trained)
            out["construction_cost_epochs_planned"] = c.iterations * epochs_per_iteration + final_epochs
            out["construction_cost_epochs"] = sum(trained) * c.batch_size / c.train_examples + final_epochs
            out["stats_stop_tau"] = c.stats_stop_tau
            out["inherit_weights"] = c.inherit_weights
            out["inherit_final"] = c.inherit_weights and c.inherit_final
            out["construction_cost_wall_time_s"] = out["wall_time_s"]
        if "final" in done:
            out["final"] = {
                k: v for k, v in done["final"].items() if k not in ("history", "loss_curve", "final")
            }
        return out

    # -- main --------------------------------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        run_dir = RunDir(config.run_dir, writer=False)  # read-only look before any write
        self._seed_shared = config.seed is not None or run_dir.exists("run_config.json")
        self.config = config = _adopt_saved(config, run_dir)
        plan = _steps_plan(config)
        if all(run_dir.exists(name) for name in plan) and run_dir.exists(SUMMARY):
            if run_dir.read_json(SUMMARY).get("complete"):
                log.info("run in %s is complete (%s); nothing to do", run_dir.path, ", ".join(plan))
                return 0
        # Only the chief writes the directory, so only the chief locks it (before TensorFlow loads).
        lock = RunLock(config.run_dir, self.command) if is_chief_from_env(config.strategy) else None
        if lock is not None:
            lock.acquire()
            if lock.took_over:
                log.info("took over the lock of process %s, which is gone", lock.took_over.get("pid"))
        try:
            return self._run_locked()
        except OSError as e:
            raise WriteError(
                f"{e.filename or config.run_dir}: {e.strerror or e}; free space (or fix the "
                "permissions) and rerun the same command: finished steps are kept"
            ) from None
        finally:
            if lock is not None:
                lock.release()

    def _run_locked(self) -> int:
        seed_shared = self._seed_shared
        self._prepare()
        if not seed_shared and self.workers > 1:
            raise RunError(
                "--seed: a multi-worker run needs an explicit --seed, the same on every worker "
                "(each worker would otherwise draw its own and build other networks)"
            )
        self._write_run_files()
        removed = self.run_dir.discard_leftovers()
        if removed:
            log.info("discarded leftovers of an interrupted run: %s", ", ".join(removed))
        from nac.training.train import TrainingInterrupted

        with _Stop() as self._stop:
            try:
                self.execute()
            except (TrainingInterrupted, KeyboardInterrupt):
                signum = self._stop.signum or signal.SIGINT
                log.warning("stopped; finished steps are kept, rerun the same command to resume")
                return 128 + int(signum)
        summary = self.summary()
        self.run_dir.write_json(SUMMARY, summary)
        final = summary.get("final")
        if final:
            log.info(
                "done: %s, test accuracy %.4f, %s parameters, in %.0f s",
                final["notation"],
                final["test_accuracy"],
                f"{final['trainable_params']:,}",
                summary["wall_time_s"],
            )
        else:
            log.info("done: %d steps in %.0f s", len(summary["steps"]), summary["wall_time_s"])
        return 0


def run(config: RunConfig, command: str = "", flags_text: str = "") -> int:
    """Runs `config`; returns the process exit code."""
    _configure_logging()
    start = time.time()
    code = Runner(config, command, flags_text).run()
    log.debug("run took %.1f s", time.time() - start)
    return code


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return " ".join(text.strip().splitlines()[0].split())[:300]


def _configure_logging():
    if logging.getLogger().handlers:  # under absl's app.run: its handler prints our records
        log.setLevel(logging.INFO)
        return
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
