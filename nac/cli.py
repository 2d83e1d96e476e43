"""Shared command-line plumbing (no TensorFlow, no absl).

`run_main(main, argv)` calls `main(argv)` and turns every user error (`NacError`) into one
line on stderr and exit status 2, so that a mistake never shows a traceback.
"""

import sys

from nac.errors import NacError

EXIT_USAGE = 2


def fail(prog: str, message: str) -> "NoReturn":  # noqa: F821
    """Prints `prog: error: message` on one line to stderr and exits with status 2."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def run_main(prog: str, main, argv=None) -> int:
    """Runs `main(argv)`; a `NacError` becomes one stderr line and exit code 2."""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except NacError as e:
        fail(prog, str(e))
    return 0 if code is None else code
