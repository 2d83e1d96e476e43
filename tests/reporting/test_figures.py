"""The figures' layout: no empty panels, distinct series, legends clear of the data, PDF too."""

import pytest

from nac.reporting import plots


def _figure2_data(layers: int) -> dict:
    ops = ("1x1", "3x3", "3x3sep", "5x5", "5x5sep", "7x7sep")
    return {
        "run": "constructed_s1",
        "step": "iter_0",
        "notation": "12/3-1-1/6",
        "dataset": "fashion_mnist",
        "metric": "l2",
        "batch_size": 50,
        "steps": [10, 20, 30],
        "layers": [
            {
                "cell": k + 1,
                "stage": 0,
                "layer": k,
                "branches": [{"op": op, "values": [0.1 * i, 0.2, 0.3]} for i, op in enumerate(ops)],
            }
            for k in range(layers)
        ],
    }


@pytest.mark.parametrize("layers", [1, 5, 7])
def test_figure2_has_no_empty_panels(layers):
    fig = plots.figure2(_figure2_data(layers))
    assert len(fig.axes) == layers and all(ax.lines for ax in fig.axes)
    assert "stats_series" not in fig._suptitle.get_text() and "squared ℓ2 norm" in fig._suptitle.get_text()
    assert len(fig.legends) == 1
    plots.plt.close(fig)


def _stability_runs():
    runs = []
    for group, role in (
        ("constructed", "constructed"),
        ("worstcase", "worst_case"),
        ("stopinherit", "constructed"),
    ):
        for seed in (1, 2, 3):
            iterations = [
                {
                    "iteration": i,
                    "notation": "12/3-1-1/6",
                    "recorded_steps": [10, 50, 100],
                    "tau": [0.5, 0.9, 1.0],
                }
                for i in (0, 1)
            ]
            runs.append({"run": f"{group}_s{seed}", "role": role, "iterations": iterations})
    return runs


def _outside(fig, ax, legend):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_stability_series_are_distinct_and_the_legend_is_outside():
    fig = plots.stability(_stability_runs(), 0.9)
    ax = fig.axes[0]
    series = [line for line in ax.lines if not line.get_label().startswith("threshold")]
    assert len(series) == 18
    looks = {(line.get_color(), str(line.get_linestyle()), line.get_marker()) for line in series}
    assert len(looks) == 18
    colours = {}
    for line in series:  # one colour per group of runs (role or variant), whatever the seed
        colours.setdefault(line.get_label().split("_s")[0], set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values()) and len(set.union(*colours.values())) == 3
    assert _outside(fig, ax, ax.get_legend())
    plots.plt.close(fig)


def test_figure3_bands_are_light_and_the_legend_is_outside():
    curves = [
        {
            "dataset": "fashion_mnist",
            "role": role,
            "variant": variant,
            "origin": "nac",
            "label": f"{role} {variant}",
            "members": ["a", "b"],
            "steps": [1, 2, 3],
            "mean": [0.5, 0.6, 0.7],
            "std": [0.05, 0.05, 0.05],
        }
        for role, variant in (
            ("constructed", ""),
            ("constructed", "stop"),
            ("random", ""),
            ("worst_case", ""),
        )
    ]
    fig = plots.figure3(curves)
    ax = fig.axes[0]
    assert ax.collections and all(band.get_alpha() <= 0.1 for band in ax.collections)
    means = [line for line in ax.lines if not line.get_label().startswith("_")]
    assert len({line.get_color() for line in means}) == 4  # the variant has its own colour
    assert _outside(fig, ax, ax.get_legend())
    plots.plt.close(fig)


def test_figures_are_written_as_png_svg_and_pdf(tmp_path):
    names = plots.save(plots.figure2(_figure2_data(2)), str(tmp_path), "f")
    assert names == ["f.png", "f.svg", "f.pdf"]
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")
