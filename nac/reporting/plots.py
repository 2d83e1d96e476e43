"""Figures of `nac.report`, drawn with matplotlib's Agg backend (no display, no TensorFlow).

Each function takes the plain data `nac.report` computed and returns a matplotlib Figure;
`save` writes it as PNG and SVG. Branch ops keep one colour in every figure.
"""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from nac.spec import arch as arch_lib  # noqa: E402
from nac.spec.jsonio import write_atomic  # noqa: E402

plt.rcParams["svg.hashsalt"] = "nac"  # stable SVG ids

_OP_COLOURS = {
    "1x1": "#1f77b4",
    "3x3": "#ff7f0e",
    "3x3sep": "#2ca02c",
    "5x5": "#d62728",
    "5x5sep": "#9467bd",
    "7x7sep": "#8c564b",
}
_EXTRA = ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78")
_ROLE_COLOURS = {
    "constructed": "#1f77b4",
    "envelope": "#2ca02c",
    "worst_case": "#d62728",
    "random": "#7f7f7f",
    "oneshot": "#9467bd",
}


def op_colour(op: str) -> str:
    if op in _OP_COLOURS:
        return _OP_COLOURS[op]
    return _EXTRA[sum(map(ord, op)) % len(_EXTRA)]


def op_label(op: str) -> str:
    """`3x3sep` -> `3x3 separable conv`, `5x5` -> `5x5 conv`."""
    return f"{op[:-3]} separable conv" if op.endswith("sep") else f"{op} conv"


def save(fig, out_dir: str, stem: str) -> list[str]:
    """Writes `stem.png` and `stem.svg` into `out_dir` (atomically); closes the figure."""
    names = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(
            buf, format=ext, dpi=120, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None
        )
        write_atomic(os.path.join(out_dir, f"{stem}.{ext}"), buf.getvalue())
        names.append(f"{stem}.{ext}")
    plt.close(fig)
    return names


def _grid(n: int, max_cols: int = 4):
    cols = min(max_cols, n)
    rows = (n + cols - 1) // cols
    return rows, cols


def figure2(data: dict):
    """The running per-image statistic of every branch, one panel per layer."""
    layers = data["layers"]
    rows, cols = _grid(len(layers))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows + 1.0), squeeze=False)
    ops_seen = {}
    for ax, layer in zip(axes.flat, layers):
        seen_here = {}
        for b in layer["branches"]:
            op = b["op"]
            style = ("-", "--", ":", "-.")[seen_here.get(op, 0) % 4]
            seen_here[op] = seen_here.get(op, 0) + 1
            (line,) = ax.plot(data["steps"], b["values"], style, color=op_colour(op), marker=".", lw=1.5)
            ops_seen.setdefault(op, line)
        ax.set_title(f"Cell{layer['cell']} (stage {layer['stage']}, layer {layer['layer'] + 1})", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(layers) :]:
        ax.set_visible(False)
    for i, ax in enumerate(axes.flat[: len(layers)]):
        if i + cols >= len(layers):  # the lowest panel of its column
            ax.set_xlabel(data.get("x_label", "training step"))
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{data['metric']} per image\n(mean squared activation)", fontsize=8)
    order = [op for op in _OP_COLOURS if op in ops_seen] + sorted(
        op for op in ops_seen if op not in _OP_COLOURS
    )
    fig.legend(
        [ops_seen[op] for op in order],
        [op_label(op) for op in order],
        loc="lower center",
        ncol=min(6, len(order)),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        f"Running featuremap statistic per branch: {data['run']}, {data['step']} "
        f"({data['notation']}, {data['dataset']})\n"
        f"stats_series ÷ batch size {data['batch_size']} = squared l2 norm per image, "
        "normalised by featuremap size",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.93))
    return fig


def figure3(curves: list[dict]):
    """Test accuracy against steps, mean ± std band per role; one panel per dataset."""
    datasets = sorted({c["dataset"] for c in curves})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for c in (c for c in curves if c["dataset"] == dataset):
            colour = _ROLE_COLOURS.get(c["role"], "black")
            mean = [100 * v for v in c["mean"]]
            style = "--s" if c.get("origin") == "original" else ":^" if c.get("variant") else "-o"
            ax.plot(c["steps"], mean, style, color=colour, ms=3, lw=1.8, label=c["label"])
            if len(c["members"]) > 1:
                lo = [100 * (m - s) for m, s in zip(c["mean"], c["std"])]
                hi = [100 * (m + s) for m, s in zip(c["mean"], c["std"])]
                ax.fill_between(c["steps"], lo, hi, color=colour, alpha=0.2, lw=0)
        ax.set_title(f"{dataset}: test accuracy of the final trainings (mean ± std)", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure4(widths: list[dict]):
    """Mean ± std branches per layer across constructions; stages separated by wideners."""
    fig, axes = plt.subplots(
        len(widths),
        1,
        figsize=(max(6.0, 0.45 * max(sum(map(len, w["stages"])) for w in widths) + 2.5), 3.6 * len(widths)),
        squeeze=False,
    )
    for ax, w in zip(axes[:, 0], widths):
        x = 0
        ticks, labels = [], []
        for s, layers in enumerate(w["stages"]):
            if s:
                ax.axvline(x - 0.5, color="black", ls="--", lw=1)
                ax.text(
                    x - 0.5,
                    1.01,
                    "widener",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    transform=ax.get_xaxis_transform(),
                )
            xs = list(range(x, x + len(layers)))
            ax.bar(
                xs,
                [layer["mean"] for layer in layers],
                yerr=[layer["std"] for layer in layers],
                color=f"C{s % 10}",
                alpha=0.75,
                capsize=3,
                label=f"stage {s}",
            )
            chance = w.get("chance")  # --- ablation ---: random statistics through the rule
            if chance and s < len(chance):
                cx = [xi for xi, _ in zip(xs, chance[s])]
                ax.errorbar(
                    cx,
                    [c["mean"] for c in chance[s][: len(cx)]],
                    yerr=[c["std"] for c in chance[s][: len(cx)]],
                    fmt="D",
                    color="black",
                    ms=4,
                    capsize=4,
                    label="random statistics" if s == 0 else None,
                )
            for xi, layer in zip(xs, layers):
                if layer["n"] < len(w["runs"]):
                    ax.text(
                        xi,
                        layer["mean"] + layer["std"],
                        f"n={layer['n']}",
                        ha="center",
                        va="bottom",
                        fontsize=6,
                    )
            ticks += xs
            labels += [str(i + 1) for i in range(len(layers))]
            x += len(layers)
        ax.set_xticks(ticks, labels, fontsize=8)
        ax.set_xlabel("layer (position within its stage, network order)")
        ax.set_ylabel("branches per layer")
        ax.set_title(
            f"{w['dataset']}{', ' + w['setting'] if w.get('setting') else ''}: width of "
            f"constructed networks from {w['initial_notation']} "
            f"(mean ± std over {len(w['runs'])} run{'s' if len(w['runs']) > 1 else ''})",
            fontsize=10,
            pad=14,
        )
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def architecture(run_label: str, entry: dict):
    """One iteration's network: a column of branch boxes per layer, pruned branches hatched
    red, the appended EnvelopeCell of each restructured stage in green."""

    report = entry["report"]
    pruned = {b.original for b in report.pruned} if report is not None else set()
    added = {}
    if report is not None:
        added = {s.stage: s for s in report.stages if s.added_cell is not None}
    columns = []  # (stage, title, [(label, op, state)], added?)
    for s, stage in enumerate(arch_lib.body_stages(entry["body"])):
        for k, cell in stage:
            boxes = [
                (key, op, "pruned" if arch_lib.BranchId(k, key).original in pruned else "kept")
                for key, op in cell.branches
            ]
            columns.append((s, f"Cell{k}", boxes, False))
        if s in added:
            cell = [(key, op, "added") for key, op in entry["envelopecell"]]
            columns.append((s, f"added\n(Cell{added[s].added_cell} next)", cell, True))
    depth = max(len(c[2]) for c in columns)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.05 * len(columns) + 1.5), 0.42 * depth + 2.2))
    prev_stage = 0
    for x, (s, title, boxes, is_added) in enumerate(columns):
        if s != prev_stage:
            ax.axvline(x - 0.5, color="black", ls="--", lw=1)
            ax.text(x - 0.5, depth + 0.15, "widener", ha="center", va="bottom", fontsize=7)
            prev_stage = s
        for y, (_key, op, state) in enumerate(boxes):
            face = op_colour(op)
            kwargs = {"facecolor": face, "alpha": 0.35, "edgecolor": "black", "lw": 0.8}
            if state == "pruned":
                kwargs = {"facecolor": "white", "edgecolor": "red", "hatch": "////", "lw": 1.6}
            elif state == "added":
                kwargs = {"facecolor": "#c7f0c7", "edgecolor": "green", "lw": 1.8}
            ax.add_patch(Rectangle((x - 0.45, depth - y - 1 + 0.05), 0.9, 0.9, **kwargs))
            ax.text(
                x,
                depth - y - 0.55,
                op.replace("sep", "\nsep") if len(op) > 4 else op,
                ha="center",
                va="center",
                fontsize=7,
                color="darkred" if state == "pruned" else "black",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6} if state == "pruned" else None,
            )
        ax.text(x, -0.15, title, ha="center", va="top", fontsize=7, color="green" if is_added else "black")
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-0.9, depth + 0.6)
    ax.axis("off")
    nxt = entry.get("next_notation")
    title = f"{run_label}, iteration {entry['iteration']}: {entry['notation']}"
    if nxt:
        title += f" → {nxt}"
    if report is None:
        title += "\n(pruning not recomputed: no stats.json or config.json)"
    elif entry.get("matches_next") is False:
        title += "\n(warning: recomputed network differs from the next step's network.json)"
    ax.set_title(title, fontsize=10)
    handles = [
        Patch(facecolor="white", edgecolor="red", hatch="////", label="pruned this iteration"),
        Patch(facecolor="#c7f0c7", edgecolor="green", label="EnvelopeCell added"),
    ]
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8, frameon=False
    )
    fig.tight_layout()
    return fig


def stability(results: list[dict], threshold: float):
    """Kendall tau-b of the ranking at each recorded step vs. the end of the iteration."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in results:
        for it in r["iterations"]:
            ax.plot(
                it["recorded_steps"],
                it["tau"],
                "-o",
                ms=3,
                label=f"{r['run']} iter {it['iteration']} ({it['notation']})",
            )
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:g}")
    lowest = min([threshold] + [t for r in results for it in r["iterations"] for t in it["tau"] if t == t])
    ax.set_ylim(max(-1.05, lowest - 0.1), 1.03)
    ax.set_xlabel("training step within the iteration")
    ax.set_ylabel("Kendall tau-b vs. final ranking")
    ax.set_title(
        "Featuremap stability: branch ranking vs. the end-of-iteration ranking\n"
        "(per stage, weighted by branch count)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
