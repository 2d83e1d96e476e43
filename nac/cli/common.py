"""Shared command-line plumbing (no TensorFlow, no absl).

`run_main(main, argv)` calls `main(argv)` and turns every user error (`NacError`) into one
line on stderr and the error's exit status (2 for bad input; `nac.construct` also uses 3 for
divergence and 4 for a failed write), so that a mistake never shows a traceback. Output into a
pipe that closed early (`nac.summary ... | head`) ends quietly with 141 (128 + SIGPIPE), as
other Unix tools do.
"""

import argparse
import os
import sys

from nac.spec.errors import NacError

EXIT_USAGE = 2
EXIT_CLOSED_PIPE = 128 + 13  # SIGPIPE


def fail(prog: str, message: str, code: int = EXIT_USAGE) -> "NoReturn":  # noqa: F821
    """Prints `prog: error: message` on one line to stderr and exits with `code` (default 2)."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(code)


def closed_pipe_exit() -> "NoReturn":  # noqa: F821
    """Exits quietly with 141 after a write into a closed pipe (the reader, e.g. `head`, is
    done): stdout is pointed at /dev/null so that the interpreter's final flush cannot raise
    again (the recipe of Python's `signal` documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(EXIT_CLOSED_PIPE)


def run_main(prog: str, main, argv=None) -> int:
    """Runs `main(argv)`; a `NacError` becomes one stderr line and its exit code (2 for input),
    a closed output pipe exit code 141 without a traceback."""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
    except NacError as e:
        fail(prog, str(e), e.exit_code)
    except BrokenPipeError:
        closed_pipe_exit()
    return 0 if code is None else code


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr with exit status 2.

    Args:
      prog: the module, e.g. `nac.summary` (shown as `python -m nac.summary`).
      doc: the module docstring: its first paragraph is the description, the rest the epilog.
    """

    def __init__(self, prog: str, doc: str):
        first, _, rest = doc.strip().partition("\n\n")
        super().__init__(
            prog=f"python -m {prog}",
            description=first,
            epilog=rest or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self.nac_prog = prog

    def error(self, message):
        fail(self.nac_prog, message)


def console_script(prog: str, main):
    """The console entry point `run(argv=None)` of the tool `prog`: runs `main` and exits with
    its code, user errors as one line and status 2."""

    def run(argv=None):
        sys.exit(run_main(prog, main, argv))

    run.__doc__ = f"Console entry point (`python -m {prog}`)."
    return run
