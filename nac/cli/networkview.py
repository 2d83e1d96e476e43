"""`nac.summary --layers` and `--plot`: every layer's operations, and the picture of one network.

`layer_rows` and `format_layers` (from `nac.spec.layertable`) list the body's layers with their
operations; `plot_network` draws the network as `nac.report` draws an iteration
(`nac.reporting.plots.architecture`), without pruned or added branches, into PNG, SVG or PDF
by the file's extension.
"""

from __future__ import annotations

import os

from nac.spec import arch as arch_lib
from nac.spec.errors import NacError
from nac.spec.layertable import format_layers, layer_rows  # noqa: F401 (nac.summary's)

PLOT_FORMATS = ("png", "svg", "pdf")


def check_plot_path(path: str) -> str:
    """The format of `--plot PATH` (its extension), or a one-line error."""
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in PLOT_FORMATS:
        raise NacError(f"--plot: got {path!r}; the file name must end in .png, .svg or .pdf (the format)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise NacError(f"--plot: {parent} does not exist; create it or write the picture elsewhere")
    return ext


def plot_network(network: arch_lib.Network, notation: str, label: str, path: str) -> None:
    """Draws `network` into `path` (PNG, SVG or PDF by its extension; imports matplotlib)."""
    from nac.reporting import plots

    entry = {"report": None, "body": network.body, "envelopecell": (), "iteration": 0, "notation": notation}
    fig = plots.architecture(label, entry, title=f"{label}: {notation}")
    plots.save_as(fig, path)
