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
import logging
import os
import random
import signal
import threading
import time

from nac.run import schema
from nac.run.lock import RunLock, is_chief_from_env
from nac.run.networks import matched_random_networks
from nac.run.original import original_config
from nac.run.plan import make_plan
from nac.run.runconfig import RunConfig
from nac.run.rundir import RunDir
from nac.run.step import train_step
from nac.search import restructure as restructure_lib
from nac.search import statsio
from nac.spec import arch as arch_lib
from nac.spec.errors import RunError, WriteError

log = logging.getLogger("nac")

SUMMARY = schema.SUMMARY


def _adopt_saved(config: RunConfig, run_dir: RunDir) -> RunConfig:
    """Checks a resumed run's settings against the saved ones; fills in the saved seed."""
    if not run_dir.exists("run_config.json"):
        if config.runtime.seed is None:
            config = config.replace(seed=random.SystemRandom().randrange(2**31))
        return config
    value = run_dir.read_json("run_config.json")
    try:
        if not isinstance(value, dict):
            raise TypeError("not a JSON object")
        saved = RunConfig.from_flat(value)
        saved.initial_network()
    except (TypeError, ValueError, AttributeError, KeyError) as e:  # NacError is a ValueError
        raise RunError(
            f"{run_dir / 'run_config.json'} is not a run configuration this nac.construct wrote "
            f"({' '.join(str(e).split())[:200]}); use another --run_dir"
        ) from None
    if config.runtime.seed is None:
        config = config.replace(seed=saved.runtime.seed, deterministic=saved.runtime.deterministic)
    changed = config.differences(saved)
    if changed and not config.output.force:
        details = ", ".join(
            f"{k}: {saved.to_flat(True).get(k, '?')!r} -> {config.to_flat(True).get(k, '?')!r}"
            if k not in ("network", "dataset_facts")
            else {"network": "the starting network"}.get(k, "the dataset's contents")
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


def _remove_if_empty(path: str) -> None:
    """Removes a run directory the run created that is still empty (it failed before writing,
    e.g. on an image TensorFlow cannot decode), so nothing is left behind."""
    if os.path.isdir(path) and not os.listdir(path):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def load_data(config: RunConfig):
    """The run's data (`nac.data.pipelines.load`), as every step of the run reads it."""
    from nac.data import pipelines as data_lib

    return data_lib.load(
        data_lib.DataConfig(
            dataset=config.data.dataset,
            data_dir=config.data.data_dir,
            image_size=config.resolved_image_size,
            downsample=config.data.downsample,
            augment=config.data.augment,
            cache=config.data.cache,
            seed=config.runtime.seed,
            validation_examples=config.data.validation_examples,
            label_offset=config.label_offset,
            train_split=config.data.train_split,
            test_split=config.data.test_split,
            validation_fraction=config.data.validation_fraction,
            facts=config.facts,
        )
    )


class Runner:
    """Executes a `RunConfig` in its run directory."""

    def __init__(self, config: RunConfig, command: str = "", flags_text: str = "", stream=None):
        self.command = command
        self.flags_text = flags_text
        self.stream = stream
        self.config = config
        self.overheads = []  # seconds per finished training outside its steps (run ETA)
        self.random_draws: dict[str, int] = {}  # random baseline -> its draws (--match_params)

    # -- set-up --------------------------------------------------------------------------------

    def _prepare(self):
        import keras
        import tensorflow as tf

        from nac.training import distribute, runtime

        config = self.config
        with runtime.native_stderr_filtered():  # the cuInit error of a machine without a GPU
            runtime.configure_threads(config.runtime.intra_op_threads, config.runtime.inter_op_threads)
            self.strategy = distribute.make_strategy(config.runtime.strategy)
        self.chief = distribute.is_chief(self.strategy)
        has_gpu = bool(tf.config.list_physical_devices("GPU"))
        self.steps_per_loop = config.resolved_steps_per_loop(has_gpu)
        from nac.run import drycheck

        for warning in drycheck.gpu_warnings(config, has_gpu):
            log.warning(warning)
        self.workers = distribute.num_workers(self.strategy)
        self.run_dir = RunDir(config.run_dir, writer=self.chief)
        if config.runtime.deterministic:
            tf.config.experimental.enable_op_determinism()
        if config.training.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        self.data = load_data(config)
        info = self.data.info
        expected = config.facts
        if config.data.dataset != "synthetic" and info.train_examples != config.train_examples:
            log.info(
                "dataset has %d training examples (nac assumed %d for epoch budgets)",
                info.train_examples,
                config.train_examples,
            )
        if info.channels != expected.channels:
            raise RunError(
                f"--dataset {config.data.dataset}: loaded {info.channels} channels, expected {expected.channels}"
            )
        self.policy = config.policy()

    def _write_run_files(self):
        config = self.config
        if not self.run_dir.exists("run_config.json") or config.output.force:
            self.run_dir.write_json("run_config.json", config.to_flat())
            self.run_dir.write_json("config.json", original_config(config), original_format=True)
            if self.chief:
                from nac.spec.jsonio import write_atomic

                write_atomic(
                    self.run_dir / "flags.txt",
                    f"# {self.command}\n{self.flags_text}" if self.flags_text else self.command + "\n",
                )

    # -- the plan ------------------------------------------------------------------------------

    def stop_requested(self) -> bool:
        """True once SIGINT/SIGTERM asked the run to stop at the next step boundary."""
        return self._stop.event.is_set()

    def _step(self, step, network, parent=None):
        """Trains `step` (a `PlanStep`) unless it finished earlier; returns its statistics.

        `parent`: (network, cell_map) of the step `step.parent` whose trained weights this
        step inherits (`--inherit_weights`), else None.
        """
        name = step.name
        if self.run_dir.exists(name):
            saved = arch_lib.body_from_original(self.run_dir.read_json(f"{name}/network.json"))
            if saved != network.body:
                raise RunError(
                    f"{self.run_dir / name}/network.json is not the network this run computes "
                    "for that step; the directory holds another run (use another --run_dir)"
                )
            log.info("%s: done earlier, kept", name)
            return statsio.read_stats(self.run_dir / f"{name}/stats.json")
        stats = train_step(self, step, network, parent)
        self.run_dir.write_json(SUMMARY, self.summary())
        return stats

    def execute(self):
        """Runs every step of the plan in order (finished steps are kept)."""
        config = self.config
        self.plan = plan = make_plan(config)
        self.total = len(plan)
        if config.mode == "random":
            for step, (_, network, draws) in zip(plan, matched_random_networks(config)):
                self.random_draws[step.name] = draws
                self._step(step, network)
            return
        network = config.initial_network()
        trained = {}  # iteration name -> (network, cell_map of its restructure)
        for step in plan:
            stats = self._step(step, network, trained.get(step.parent))
            if step.is_iteration:
                next_network, report = restructure_lib.restructure_with_report(network, stats, self.policy)
                trained[step.name] = (network, report.cell_map)
                network = next_network

    # -- summary ---------------------------------------------------------------------------------

    def summary(self) -> dict:
        """The run's `summary.json` (`nac.run.schema.summary_record`) from the finished steps."""
        plan = make_plan(self.config)
        done = {
            step.name: self.run_dir.read_json(f"{step.name}/metrics.json")
            for step in plan
            if self.run_dir.exists(f"{step.name}/metrics.json")
        }
        return schema.summary_record(self.config, plan, done)

    # -- main --------------------------------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        run_dir = RunDir(config.run_dir, writer=False)  # read-only look before any write
        self._seed_shared = config.runtime.seed is not None or run_dir.exists("run_config.json")
        self.config = config = _adopt_saved(config, run_dir)
        names = [step.name for step in make_plan(config)]
        if all(run_dir.exists(name) for name in names) and run_dir.exists(SUMMARY):
            if run_dir.read_json(SUMMARY).get("complete"):
                log.info("run in %s is complete (%s); nothing to do", run_dir.path, ", ".join(names))
                return 0
        # Only the chief writes the directory, so only the chief locks it (before TensorFlow loads).
        lock = RunLock(config.run_dir, self.command) if is_chief_from_env(config.runtime.strategy) else None
        created = not os.path.exists(config.run_dir)  # removed again if it stays empty (bad data)
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
                if created:
                    _remove_if_empty(config.run_dir)

    def _run_locked(self) -> int:
        seed_shared = self._seed_shared
        from nac.spec import confignotes

        config, training = self.config, self.config.training
        if config.search.config:  # what the original's file means for this run, said once
            for line in confignotes.file_notes(
                config.search.config, training.original_gpus, training.batch_size
            ):
                log.info(line)
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


def _configure_logging():
    from nac.run import logformat

    logformat.configure(log)
