"""JSON reading with precise error messages, and atomic file writes.

Every artefact nac writes goes through `write_atomic`: the bytes land in a temporary file in
the same directory, are flushed to disk, and are renamed over the target, so a crash leaves
either the old file or the new one, never a torn one.
"""

import json
import os
import tempfile

from nac.spec.errors import NacError


def load_json(path, error=NacError, what="JSON file"):
    """Reads a JSON file.

    Args:
      path: file to read.
      error: the `NacError` subclass to raise.
      what: words naming the file's role, used in messages.

    Returns:
      The decoded JSON value.

    Raises:
      error: the file is missing, unreadable or not valid JSON (with line and column).
    """
    return parse_json(read_text(path, error, what, "a JSON file"), path, error, what)


def read_text(path, error=NacError, what="file", expected="a file"):
    """Reads a UTF-8 text file; a missing, unreadable or undecodable file raises `error` with
    one line naming `what` and the path (`expected` says what to pass instead of a directory)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise error(f"{what} {path!r} does not exist; check the path") from None
    except IsADirectoryError:
        raise error(f"{what} {path!r} is a directory; pass {expected}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"cannot read {what} {path!r}: {e}") from None


def parse_json(text, path, error=NacError, what="JSON file"):
    """Decodes the JSON `text` read from `path`; invalid JSON raises `error` with line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(
            f"{what} {os.fspath(path)!r} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None


def dumps_original(value):
    """Serialises like the original code's `json.dump(..., indent=4, sort_keys=True)`."""
    return json.dumps(value, indent=4, sort_keys=True)


def write_atomic(path, data):
    """Writes `data` (str or bytes) to `path` atomically (temporary file, fsync, rename).

    Raises:
      OSError: the write failed (no space, no permission, quota); its `filename` is `path`
        (a failed `write` or `fsync` names no file by itself). The target is left as it was.
    """
    path = os.fspath(path)
    try:
        _write_atomic(path, data)
    except OSError as e:
        if e.filename:
            raise
        raise OSError(e.errno, e.strerror or str(e), path) from None


def _write_atomic(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".tmp-")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; artefacts are for sharing
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass  # the next run's start discards leftover temporary files
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, value, original_format=False):
    """Writes JSON atomically; `original_format` uses indent=4 and sorted keys."""
    text = dumps_original(value) if original_format else json.dumps(value, indent=2)
    write_atomic(path, text + "\n")
