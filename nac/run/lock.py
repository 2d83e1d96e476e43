"""The run-directory lock: one `nac.construct` writes a run directory at a time (no TensorFlow).

`RUN/.nac.run.lock` holds the holder's process id, host name, process start time (the kernel's
start tick of the process, so a reused pid is not mistaken for the holder) and the time and
command it started with. The file is created atomically with its content (written to a
temporary file, then hard-linked to the lock name, which fails if the name exists).

A second run on the same directory is refused with one line naming the holder. A lock whose
holder is gone (same host, no such process, a zombie, or another process under the same
pid) is stale: it is taken over. A lock held on another host cannot be checked; the message
says to delete the file if that process is gone.

In a multi-worker run only the chief takes the lock: the workers share the directory by
design (they write nothing into it). `is_chief_from_env` decides that from `TF_CONFIG`
before TensorFlow loads, by the same rule as `nac.training.distribute.is_chief`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

from nac.spec.errors import RunError

LOCK_NAME = ".nac.run.lock"
FORMAT = "nac-lock/1"


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
        return int(fields[19])  # field 22 of stat; fields[0] is field 3 (the state)
    except (OSError, ValueError, IndexError):
        return None


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True if process `pid` runs on this host (and, if given, started at `start_ticks`)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if _state(pid) in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    if start_ticks is not None:
        now = _start_ticks(pid)
        if now is not None and now != start_ticks:
            return False  # the pid was reused by another process
    return True


def is_chief_from_env(strategy: str, environ=None) -> bool:
    """Whether this process writes the run directory (takes the lock).

    Only a multi-worker run has non-chief processes: `strategy` is `multi_worker`, or `auto`
    with `TF_CONFIG` naming several tasks. Then the `chief` task writes, or worker 0 when the
    cluster has no chief job. An unreadable `TF_CONFIG` counts as chief (the strategy reports
    the error when it is created).
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text or strategy not in ("auto", "multi_worker"):
        return True
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config.get("task") or {}
        tasks = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    except (ValueError, TypeError, KeyError, AttributeError):
        return True
    if strategy == "auto" and tasks <= 1:
        return True
    kind = task.get("type") if isinstance(task, dict) else None
    if kind is None or kind == "chief":
        return True
    return kind == "worker" and task.get("index") == 0 and "chief" not in cluster


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = (
        time.strftime(" since %Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
        if isinstance(started, (int, float))
        else ""
    )
    return f"process {holder.get('pid')} on host {holder.get('hostname')!r}{when}"


class RunLock:
    """`RUN/.nac.run.lock`, taken by `acquire` and given back by `release` (or `with`)."""

    def __init__(self, run_dir, command: str = ""):
        self.run_dir = os.path.abspath(os.fspath(run_dir))
        self.path = os.path.join(self.run_dir, LOCK_NAME)
        self.command = command
        self.held = False
        self.took_over: dict | None = None

    def _mine(self) -> dict:
        return {
            "format": FORMAT,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "start_ticks": _start_ticks(os.getpid()),
            "started": time.time(),
            "command": self.command,
        }

    def _read(self) -> dict | None:
        """The holder's record; None if the file vanished; {} if it is not a lock record."""
        return self._read_file(self.path)

    @staticmethod
    def _read_file(path) -> dict | None:
        try:
            with open(path, encoding="utf-8") as f:
                value = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def _stale(self, holder: dict) -> bool:
        if holder.get("format") != FORMAT or not isinstance(holder.get("pid"), int):
            return True  # not a record nac wrote (its content is written before it appears)
        if holder.get("hostname") != socket.gethostname():
            return False  # cannot check a process on another host
        return not process_alive(holder["pid"], holder.get("start_ticks"))

    def acquire(self):
        """Takes the lock.

        Raises:
          RunError: another live process holds it, or the directory cannot be written.
        """
        if os.path.exists(self.run_dir) and not os.path.isdir(self.run_dir):
            raise RunError(f"--run_dir {self.run_dir} is a file; pass a directory")
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            tmp = f"{self.path}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self._mine(), f)
        except OSError as e:
            raise RunError(
                f"--run_dir: cannot write {e.filename or self.run_dir}: {e.strerror or e}; "
                "check the path, its permissions and the free space"
            ) from None
        try:
            for _ in range(5):
                try:
                    self._create(tmp)
                    self.held = True
                    return self
                except FileExistsError:
                    pass
                holder = self._read()
                if holder is None:
                    continue  # released meanwhile
                if not self._stale(holder):
                    other_host = holder.get("hostname") != socket.gethostname()
                    raise RunError(
                        f"--run_dir {self.run_dir} is in use by {_describe(holder)}"
                        + (
                            f"; if that process is gone, delete {self.path}"
                            if other_host
                            else "; wait for it to finish or stop it, or use another --run_dir"
                        )
                    )
                # Stale: move it aside under a unique name, so that of two processes taking
                # over at once only one removes it; then retry the link.
                aside = f"{self.path}.stale-{os.getpid()}"
                try:
                    os.rename(self.path, aside)
                except FileNotFoundError:
                    continue
                if self._read_file(aside) != holder:  # another process took over first
                    with contextlib.suppress(OSError):
                        os.link(aside, self.path)
                else:
                    self.took_over = holder
                with contextlib.suppress(OSError):
                    os.unlink(aside)
            raise RunError(f"--run_dir {self.run_dir}: could not take {self.path}; retry")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _create(self, tmp: str):
        """Creates the lock file with its content; FileExistsError if it exists."""
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: exclusive create, then write
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f, open(tmp, encoding="utf-8") as src:
                f.write(src.read())

    def release(self):
        """Removes the lock file if this process still holds it."""
        if not self.held:
            return
        self.held = False
        holder = self._read()
        if holder and holder.get("pid") == os.getpid() and holder.get("hostname") == socket.gethostname():
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
