"""Figures of `nac.report`, drawn with matplotlib's Agg backend (no display, no TensorFlow).

Each function takes the plain data `nac.report` computed and returns a matplotlib Figure;
`save` writes it as PNG, SVG and PDF. Branch ops keep one colour in every figure.
"""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from nac.reporting.sections import FIGURE_FORMATS  # noqa: E402
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
BAND_ALPHA = 0.08
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


# Reproducible files: no creation date in SVG and PDF.
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}


def _write(fig, path: str) -> None:
    """Writes `fig` to `path` (atomically) in the format its extension names."""
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    buf = io.BytesIO()
    fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight", metadata=_METADATA.get(ext))
    write_atomic(path, buf.getvalue())


def save(fig, out_dir: str, stem: str, formats=FIGURE_FORMATS) -> list[str]:
    """Writes `stem.<ext>` for each of `formats` (default png, svg and pdf) into `out_dir`;
    closes the figure; returns the file names."""
    names = [f"{stem}.{ext}" for ext in formats]
    for name in names:
        _write(fig, os.path.join(out_dir, name))
    plt.close(fig)
    return names


def save_as(fig, path: str) -> None:
    """Writes `fig` to `path` in the format its extension names (png, svg, pdf); closes it."""
    _write(fig, path)
    plt.close(fig)


def _grid(n: int, max_cols: int = 5):
    """(rows, cols) for `n` panels with the fewest empty slots (ties: more columns)."""
    if n <= max_cols:
        return 1, max(1, n)
    cols = min(range(2, max_cols + 1), key=lambda c: (-(-n // c) * c - n, -c))
    return -(-n // cols), cols


_LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _legend_outside(ax, **kwargs):
    """The legend right of the axes, clear of the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


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
    spare = list(axes.flat[len(layers) :])
    for ax in spare:
        fig.delaxes(ax)  # no empty panels: the legend takes the first free slot
    for i, ax in enumerate(axes.flat[: len(layers)]):
        if i + cols >= len(layers):  # the lowest panel of its column
            ax.set_xlabel(data.get("x_label", "training step"))
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{data['metric']} per image\n(mean squared activation)", fontsize=8)
    order = [op for op in _OP_COLOURS if op in ops_seen] + sorted(
        op for op in ops_seen if op not in _OP_COLOURS
    )
    handles, labels = [ops_seen[op] for op in order], [op_label(op) for op in order]
    fig.suptitle(
        f"Running featuremap statistic of individual filters at different layers vs. training "
        f"steps: {data['run']}, {data['step']} ({data['notation']}, {data['dataset']})\n"
        "the squared ℓ2 norm per image, normalised by the featuremap size",
        fontsize=10,
    )
    if spare:
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        slot = spare[0].get_position()
        fig.legend(
            handles,
            labels,
            loc="center",
            bbox_to_anchor=(slot.x0, slot.y0, slot.width, slot.height),
            fontsize=8,
            frameon=False,
            title="branch operation",
            title_fontsize=8,
        )
    else:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(order)), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 0.93))
    return fig


def figure3(curves: list[dict]):
    """Test accuracy against steps, mean ± std band per role; one panel per dataset."""
    datasets = sorted({c["dataset"] for c in curves})
    fig, axes = plt.subplots(1, len(datasets), figsize=(9.0 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        variants = []  # a role's variants get colours of their own, as in the stability figure
        for c in (c for c in curves if c["dataset"] == dataset):
            colour = _ROLE_COLOURS.get(c["role"], "black")
            if c.get("variant"):
                variants += [] if c["variant"] in variants else [c["variant"]]
                colour = _VARIANT_COLOURS[variants.index(c["variant"]) % len(_VARIANT_COLOURS)]
            mean = [100 * v for v in c["mean"]]
            style = "--s" if c.get("origin") == "original" else ":^" if c.get("variant") else "-o"
            ax.plot(c["steps"], mean, style, color=colour, ms=3, lw=1.8, label=c["label"], zorder=3)
            if len(c["members"]) > 1:
                # A light band with thin edges of its role's colour: overlapping bands stay
                # apart (the edges), and the mean lines stay on top.
                lo = [100 * (m - s) for m, s in zip(c["mean"], c["std"])]
                hi = [100 * (m + s) for m, s in zip(c["mean"], c["std"])]
                ax.fill_between(c["steps"], lo, hi, color=colour, alpha=BAND_ALPHA, lw=0, zorder=1)
                edge_style = "--" if c.get("origin") == "original" else ":" if c.get("variant") else "-"
                for edge in (lo, hi):
                    ax.plot(c["steps"], edge, edge_style, color=colour, lw=0.7, alpha=0.7, zorder=2)
        ax.set_title(
            f"Accuracy vs. training steps on {dataset}: mean ± standard deviation of each role's networks",
            fontsize=10,
        )
        ax.set_xlabel("training step")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        _legend_outside(ax, fontsize=8)
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
            f"Average width of a layer with standard deviations at different depths: "
            f"{len(w['runs'])} construction{'s' if len(w['runs']) > 1 else ''} from the same "
            f"{w['initial_notation']} EnvelopeNet ({w['dataset']}"
            f"{', ' + w['setting'] if w.get('setting') else ''})",
            fontsize=10,
            pad=14,
        )
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def architecture(run_label: str, entry: dict, title: str | None = None):
    """One iteration's network: a column of branch boxes per layer, pruned branches hatched
    red, the appended EnvelopeCell of each restructured stage in green. `title` replaces the
    iteration's title (one network file drawn alone: no pruning to show, no legend)."""
    heading = title

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
    if heading is not None:
        ax.set_title(heading, fontsize=10)
        fig.tight_layout()
        return fig
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


# Colours of a role's further variants (e.g. constructions with the stability stop).
_VARIANT_COLOURS = ("#17becf", "#ff7f0e", "#bcbd22", "#e377c2", "#8c564b")


def _group_and_seed(run: str) -> tuple[str, int | None]:
    """`constructed_s2` -> (`constructed`, 2); a label without `_s<N>` is its own group."""
    head, sep, tail = run.rpartition("_s")
    return (head, int(tail)) if sep and tail.isdigit() else (run, None)


def _series_colours(results: list[dict]) -> dict:
    """One colour per group of runs (label without its seed): a role's first group has the
    role's colour, its further groups (variants) colours of their own."""
    colours, used = {}, 0
    roles_seen = set()
    for r in results:
        group = _group_and_seed(r["run"])[0]
        if group in colours:
            continue
        role = r.get("role")
        if role in _ROLE_COLOURS and role not in roles_seen:
            colours[group] = _ROLE_COLOURS[role]
        else:
            colours[group] = _VARIANT_COLOURS[used % len(_VARIANT_COLOURS)]
            used += 1
        roles_seen.add(role)
    return colours


def stability(results: list[dict], threshold: float):
    """Kendall tau-b of the ranking at each recorded step vs. the end of the iteration."""
    fig, ax = plt.subplots(figsize=(10, 4.8))
    colours, seeds = _series_colours(results), {}
    for r in results:
        group, seed = _group_and_seed(r["run"])
        group_runs = seeds.setdefault(group, [])
        if r["run"] not in group_runs:
            group_runs.append(r["run"])
        index = seed - 1 if seed else group_runs.index(r["run"])
        style = _LINE_STYLES[index % len(_LINE_STYLES)]
        for it in r["iterations"]:
            ax.plot(
                it["recorded_steps"],
                it["tau"],
                linestyle=style,
                marker=_MARKERS[it["iteration"] % len(_MARKERS)],
                color=colours[_group_and_seed(r["run"])[0]],
                ms=3.5,
                lw=1.2,
                label=f"{r['run']} iter {it['iteration']} ({it['notation']})",
            )
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:g}")
    lowest = min([threshold] + [t for r in results for it in r["iterations"] for t in it["tau"] if t == t])
    ax.set_ylim(max(-1.05, lowest - 0.1), 1.03)
    ax.set_xlabel("training step within the iteration")
    ax.set_ylabel("Kendall tau-b vs. final ranking")
    ax.set_title(
        "Featuremap stability: Kendall tau-b between the branch ranking at each step and at the "
        "end of the iteration\n(per stage, weighted by branches; colour: role or variant, line: "
        "seed, marker: iteration)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    _legend_outside(ax, fontsize=7, ncol=1 if len(ax.lines) <= 20 else 2)
    fig.tight_layout()
    return fig
