"""`nac.summary --layers` and `--plot`: every layer's operations, and the picture of one network.

`layer_rows(network)` lists the body in order: per layer its stage, cell number, width and
branch operations (in branch key order, the order the network file and the statistics use),
with the skip inputs when the layer has them; wideners between stages. `plot_network` draws
the network as `nac.report` draws an iteration (`nac.reporting.plots.architecture`), without
pruned or added branches, into PNG, SVG or PDF by the file's extension.
"""

from __future__ import annotations

import os

from nac.spec import arch as arch_lib
from nac.spec.errors import NacError

PLOT_FORMATS = ("png", "svg", "pdf")


def layer_rows(network: arch_lib.Network) -> list[dict]:
    """One dict per body layer: stage (1-based), cell (the original's CellN), outputs, ops, inputs."""
    rows = []
    for s, stage in enumerate(network.stages()):
        for k, cell in stage:
            row = {
                "stage": s + 1,
                "cell": k,
                "outputs": cell.width,
                "ops": [op for _, op in cell.branches],
            }
            if cell.inputs is not None:
                row["inputs"] = cell.inputs if isinstance(cell.inputs, str) else list(cell.inputs)
            rows.append(row)
    return rows


def format_layers(rows: list[dict]) -> str:
    lines = [f"{'stage':>5} {'layer':>6} {'width':>6}  operations"]
    previous = None
    for row in rows:
        if previous is not None and row["stage"] != previous:
            lines.append(
                f"{'':>5} {'':>6} {'':>6}  widener (halves the size: 2x2 max pool + stride-2 3x3 conv)"
            )
        previous = row["stage"]
        text = " ".join(row["ops"])
        if "inputs" in row:
            inputs = row["inputs"]
            text += f"  (inputs: {inputs if isinstance(inputs, str) else ','.join(map(str, inputs))})"
        lines.append(f"{row['stage']:>5} {'Cell' + str(row['cell']):>6} {row['outputs']:>6}  {text}")
    return "\n".join(lines)


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
