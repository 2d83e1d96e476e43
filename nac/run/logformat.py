"""How nac's log lines look: short lines when the output is not a terminal.

On a terminal nac's records go through absl's handler as before. Piped to a file or another
program, each line is `HH:MM:SS message` (warnings and errors: `HH:MM:SS warning: message`),
without absl's level letter, date, thread id and source line, so that a log reads as the run's
story and diffs between runs show what changed.
"""

from __future__ import annotations

import logging
import sys


class ShortFormatter(logging.Formatter):
    """`HH:MM:SS message`; records at WARNING and above carry their level in lower case."""

    def __init__(self):
        super().__init__("%(asctime)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            clock, _, message = text.partition(" ")
            text = f"{clock} {record.levelname.lower()}: {message}"
        return text


def is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def configure(log: logging.Logger, stream=None) -> None:
    """Sends `log`'s records (INFO and above) to `stream` (stderr) in the short format when
    `stream` is not a terminal or no other handler (absl's) would print them."""
    stream = stream or sys.stderr
    log.setLevel(logging.INFO)
    if logging.getLogger().handlers and is_terminal(stream):
        return  # absl's handler prints our records, as on every terminal
    if any(getattr(h, "nac_short", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ShortFormatter())
    handler.nac_short = True
    log.addHandler(handler)
    log.propagate = False
