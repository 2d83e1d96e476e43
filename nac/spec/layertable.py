"""Every layer of a network's body with its operations, as rows and as a text table (pure Python).

`layer_rows(network)` lists the body in order: per layer its stage (1-based), the original's cell
number, its real width and its branch operations (in branch key order, the order the network
file and the statistics use), with its skip inputs when it has them. `format_layers` prints the
rows as a table with a widener line between stages (`nac.summary --layers`, TensorBoard's
architecture text).
"""

from __future__ import annotations

from nac.spec import arch as arch_lib


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
