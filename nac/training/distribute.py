"""Creation of `tf.distribute` strategies: the only module that makes one.

Names (`STRATEGIES`):

* ``auto``: MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several tasks in its
  cluster; else MirroredStrategy over all visible GPUs when there are several; else one
  device: ``/gpu:0`` if there is a GPU, ``/cpu:0`` otherwise.
* ``one_device``: OneDeviceStrategy on ``/gpu:0`` if there is a GPU, else ``/cpu:0``.
* ``mirrored``: MirroredStrategy over all GPUs; without a GPU, over all logical CPU
  devices (the tests split the CPU in two, which gives two replicas).
* ``multi_worker``: MultiWorkerMirroredStrategy configured from ``TF_CONFIG``, which must
  hold a JSON object ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type":
  "worker", "index": i}}`` (a ``chief`` job is allowed too).

Create the strategy once, early: MultiWorkerMirroredStrategy configures TensorFlow's
collective runtime and must exist before any tensor or model is created; every worker of a
cluster must run the same program and make the same calls in the same order.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from nac.spec.choices import STRATEGIES
from nac.spec.errors import ConfigError


def cluster_from_env(environ=None) -> dict | None:
    """Parses and checks ``TF_CONFIG``.

    Args:
      environ: Mapping to read instead of ``os.environ`` (tests).

    Returns:
      The parsed object, or None when ``TF_CONFIG`` is unset or empty.

    Raises:
      ConfigError: ``TF_CONFIG`` is not JSON or does not describe a cluster and a task in it.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"TF_CONFIG: not valid JSON ({e.msg} at char {e.pos}); "
            'expected {"cluster": {"worker": [...]}, "task": {...}}'
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ConfigError(
            'TF_CONFIG: no "cluster" object; expected '
            '{"cluster": {"worker": ["host:port", ...]}, "task": {...}}'
        )
    cluster = config["cluster"]
    for job, addresses in cluster.items():
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and ":" in a for a in addresses)
        ):
            raise ConfigError(
                f'TF_CONFIG: cluster.{job}={addresses!r}; expected a non-empty list of "host:port" strings'
            )
    if "worker" not in cluster and "chief" not in cluster:
        raise ConfigError(
            f'TF_CONFIG: cluster has jobs {sorted(cluster)}; expected a "worker" job (and optionally "chief")'
        )
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ConfigError(
            f'TF_CONFIG: task={task!r}; expected {{"type": one of {sorted(cluster)}, "index": i}}'
        )
    index = task.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[task["type"]]):
        raise ConfigError(
            f"TF_CONFIG: task.index={index!r}; expected an integer in [0, {len(cluster[task['type']])})"
        )
    return config


def _num_tasks(config: dict | None) -> int:
    if config is None:
        return 0
    return len(config["cluster"].get("worker", [])) + len(config["cluster"].get("chief", []))


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Creates the distribution strategy named `name` (see the module docstring).

    Args:
      name: One of `STRATEGIES`.

    Returns:
      The strategy. Build models and optimizers inside its `scope()`.

    Raises:
      ConfigError: Unknown name, or a missing or invalid ``TF_CONFIG`` for ``multi_worker``.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"strategy: got {name!r}; expected one of {', '.join(STRATEGIES)}")
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        if _num_tasks(cluster_from_env()) > 1:
            name = "multi_worker"
        elif len(gpus) > 1:
            name = "mirrored"
        else:
            name = "one_device"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        # Without GPUs, MirroredStrategy() would pick CPU:0 alone; name the logical CPUs.
        return tf.distribute.MirroredStrategy(
            devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    config = cluster_from_env()
    if config is None:
        raise ConfigError(
            "strategy: multi_worker needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}} on each worker'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def task(strategy: tf.distribute.Strategy) -> tuple[str | None, int]:
    """(task type, task index) of this process; (None, 0) for single-process strategies."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's artefacts.

    True for single-process strategies, for the ``chief`` task, and for worker 0 of a
    cluster without a ``chief`` job.
    """
    task_type, task_id = task(strategy)
    if task_type is None or task_type == "chief":
        return True
    resolver = strategy.cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def num_replicas(strategy: tf.distribute.Strategy) -> int:
    """Replicas that share each global batch (over all workers)."""
    return int(strategy.num_replicas_in_sync)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Processes taking part in training (1 unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return 1
    spec = resolver.cluster_spec().as_dict()
    return len(spec.get("worker", [])) + len(spec.get("chief", []))


def distribute_dataset(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """`dataset` as the strategy's replicas read it.

    A single-process strategy with one CPU replica reads `dataset` itself: there is no device
    to fetch to and no batch to split, and `experimental_distribute_dataset` would wrap it in a
    multi-device iterator whose own autotuned per-device pipeline outlives a long training
    (deleting it after a long training waits for tf.data's optimisation thread; BUILD_NOTES,
    "Speed and output"; docs/quickstart.md). Every other strategy (GPUs,
    several replicas or workers) gets `strategy.experimental_distribute_dataset`.
    """
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default (no) strategy: it reads the dataset itself
        return strategy.experimental_distribute_dataset(dataset)
    if (
        num_workers(strategy) == 1
        and len(devices) == 1
        and tf.DeviceSpec.from_string(devices[0]).device_type == "CPU"
    ):
        return dataset
    return strategy.experimental_distribute_dataset(dataset)
