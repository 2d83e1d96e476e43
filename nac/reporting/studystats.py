"""Statistics of the study (experiments/study.sh): do constructed networks beat the others, and
does the branch ranking settle before accuracy does?

Pure Python and NumPy, no TensorFlow. Inputs are plain dicts built by `nac.report` from run
directories; one per trained network (`StudyNet`):

* per group (dataset, role, variant; the variant tells constructions with the stability stop or
  weight inheritance apart from plain ones): n, mean and sample std (ddof 1) of test error (%)
  and of trainable parameters;
* per comparison (constructed minus random, minus worst case, minus envelope; test error in
  points, negative: the constructed networks err less): the mean difference and a 95% percentile
  bootstrap confidence interval (seeded, `RESAMPLES` resamples). *Paired* where the design pairs
  networks: worst case and constructed by construction seed (difference per seed), random nets
  by the constructed network they were drawn to match (constructed minus the mean of its random
  nets); *unpaired* (each group resampled on its own) always, for comparison;
* per constructed network, how many random networks have a higher test error (the paper: 9
  of 10);
* per construction iteration, the step from which the branch ranking is stable (from
  `nac.search.stability`) against the step from which test accuracy has converged
  (`converged_step`: the first evaluation after which accuracy gains less than
  `CONVERGED_POINTS` to the end);
* per trained network, a convergence check: the test accuracy gained over the last
  `LAST_FRACTION` of training; flattened when < `CONVERGED_POINTS`.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np


def natural_key(value) -> tuple:
    """Sort key that orders numbers inside text by value ("25 steps" before "100 steps")."""
    parts = value if isinstance(value, tuple) else (value,)
    return tuple(
        tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(p)) if t)
        for p in parts
    )


RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
CONVERGED_POINTS = 0.5  # accuracy points (percent)
LAST_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class StudyNet:
    """One trained network of the study."""

    id: str  # "run:step"
    role: str
    dataset: str
    test_error_pct: float
    params: int
    seed: int | None = None  # the run's seed (the construction seed for construction runs)
    variant: str = ""  # "" or e.g. "stability stop, inherited weights"
    match: str | None = None  # random nets: the id of the constructed net they were drawn for
    history: tuple = ()  # ((step, test_accuracy in [0, 1]), ...)
    steps: int | None = None  # steps trained
    examples: tuple = ()  # test images of each history entry (--eval_examples); () unknown
    # The last evaluation's accuracy on the images of the shortened ones, (accuracy, images)
    # (metrics.json's test_subset_accuracy / test_subset_examples); None for older runs.
    end_on_subset: tuple | None = None

    @property
    def group(self) -> str:
        return self.role + (f" ({self.variant})" if self.variant else "")


def mean_std(values) -> tuple[float, float]:
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def group_summary(nets: list[StudyNet]) -> list[dict]:
    """Per (dataset, role, variant): n, mean ± std of test error (%) and parameters."""
    groups: dict[tuple, list[StudyNet]] = {}
    for n in nets:
        groups.setdefault((n.dataset, n.group), []).append(n)
    out = []
    for (dataset, group), members in sorted(groups.items(), key=lambda kv: natural_key(kv[0])):
        err = mean_std([m.test_error_pct for m in members])
        par = mean_std([m.params for m in members])
        out.append(
            {
                "dataset": dataset,
                "group": group,
                "role": members[0].role,
                "variant": members[0].variant,
                "n": len(members),
                "test_error_pct": {
                    "mean": err[0],
                    "std": err[1],
                    "values": [m.test_error_pct for m in members],
                },
                "params": {"mean": par[0], "std": par[1], "values": [m.params for m in members]},
                "members": [m.id for m in members],
            }
        )
    return out


def _percentile_ci(samples, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_mean_ci(values, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED, level: float = LEVEL):
    """(mean, low, high): percentile bootstrap CI of the mean of `values` (e.g. paired differences)."""
    a = np.asarray(values, np.float64)
    if len(a) == 0:
        raise ValueError("bootstrap_mean_ci: no values")
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1)
    return (float(a.mean()), *_percentile_ci(means, level))


def bootstrap_diff_ci(a, b, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED, level: float = LEVEL):
    """(mean(a) - mean(b), low, high): unpaired percentile bootstrap, each sample resampled alone."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("bootstrap_diff_ci: an empty sample")
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, len(a), size=(resamples, len(a)))].mean(axis=1)
    mb = b[rng.integers(0, len(b), size=(resamples, len(b)))].mean(axis=1)
    return (float(a.mean() - b.mean()), *_percentile_ci(ma - mb, level))


def paired_differences(constructed: list[StudyNet], other: list[StudyNet], by: str) -> list[dict]:
    """Per constructed net, its error minus its partner's (by="seed": the other net with its seed;
    by="match": the mean of the other nets drawn to match it). Unpartnered nets are left out."""
    out = []
    for c in constructed:
        if by == "seed":
            partners = [o for o in other if c.seed is not None and o.seed == c.seed]
        else:
            partners = [o for o in other if o.match == c.id]
        if partners:
            ref = float(np.mean([o.test_error_pct for o in partners]))
            out.append(
                {"constructed": c.id, "partners": [o.id for o in partners], "diff": c.test_error_pct - ref}
            )
    return out


def compare(constructed: list[StudyNet], other: list[StudyNet], pair_by: str | None, **kw) -> dict:
    """Constructed minus `other` in test error points: unpaired and (when `pair_by`) paired CIs."""
    mean, lo, hi = bootstrap_diff_ci(
        [c.test_error_pct for c in constructed], [o.test_error_pct for o in other], **kw
    )
    out = {
        "n_constructed": len(constructed),
        "n_other": len(other),
        "unpaired": {"diff": mean, "ci_low": lo, "ci_high": hi},
        "paired": None,
    }
    if pair_by:
        pairs = paired_differences(constructed, other, pair_by)
        if pairs:
            mean, lo, hi = bootstrap_mean_ci([p["diff"] for p in pairs], **kw)
            out["paired"] = {"by": pair_by, "n_pairs": len(pairs), "diff": mean, "ci_low": lo, "ci_high": hi}
            out["paired"]["pairs"] = pairs
    return out


def beats(constructed: list[StudyNet], random: list[StudyNet]) -> list[dict]:
    """Per constructed net: how many random nets have a strictly higher test error (ties apart)."""
    return [
        {
            "net": c.id,
            "test_error_pct": c.test_error_pct,
            "beats": sum(r.test_error_pct > c.test_error_pct for r in random),
            "ties": sum(r.test_error_pct == c.test_error_pct for r in random),
            "of": len(random),
        }
        for c in constructed
    ]


def converged_step(steps, accuracy, points: float = CONVERGED_POINTS):
    """The first evaluation step from which accuracy (in [0, 1]) gains less than `points` (percent)
    up to the last evaluation, at that and every later evaluation; None without evaluations."""
    if not len(steps):
        return None
    end = accuracy[-1]
    start = None
    for s, a in zip(steps, accuracy):
        if 100.0 * (end - a) < points:
            if start is None:
                start = s
        else:
            start = None
    return start


def convergence_check(
    steps,
    accuracy,
    total_steps=None,
    fraction: float = LAST_FRACTION,
    points: float = CONVERGED_POINTS,
    examples=(),
    end_on_subset=None,
) -> dict:
    """Accuracy gained over the last `fraction` of training: final accuracy minus the accuracy of
    the last evaluation at or before (1 - fraction) x total steps. `flattened` is None when no
    evaluation lies there (too few evaluations to tell).

    With `examples` (test images per evaluation) showing that the earlier evaluations read a
    subset (`--eval_examples`) and the last one the whole test set, the two differ by the
    subset's sampling error as well as by training. Then `same_images_gain_points` is the gain
    on the same images and `flattened` is decided by it: to the end of training when the last
    evaluation also reported its accuracy on those images (`end_on_subset`, runs since this
    was added), else to the last evaluation that read them (`same_images_to_step`; it leaves
    out the steps after it, but compares like with like).
    """
    total = total_steps if total_steps is not None else (steps[-1] if len(steps) else 0)
    cut = (1.0 - fraction) * total
    before = [i for i, s in enumerate(steps) if s <= cut]
    if not len(steps) or not before:
        return {"from_step": None, "gain_points": None, "flattened": None}
    i = before[-1]
    gain = 100.0 * (accuracy[-1] - accuracy[i])
    out = {"from_step": steps[i], "gain_points": gain, "flattened": gain < points}
    if len(examples) == len(steps) and examples[i] != examples[-1]:
        same = [j for j in range(i + 1, len(steps)) if examples[j] == examples[i]]
        end = None  # (step, accuracy) of the curve's end on the same images
        if end_on_subset is not None and end_on_subset[1] == examples[i]:
            end = (steps[-1], end_on_subset[0])
        elif same:
            end = (steps[same[-1]], accuracy[same[-1]])
        if end is not None:
            same_gain = 100.0 * (end[1] - accuracy[i])
            out.update(
                same_images_to_step=end[0],
                same_images_gain_points=same_gain,
                same_images=examples[i],
                flattened=same_gain < points,
            )
    return out


def convergence_table(nets: list[StudyNet], **kw) -> list[dict]:
    out = []
    for n in nets:
        steps = [s for s, _ in n.history]
        acc = [a for _, a in n.history]
        check = convergence_check(
            steps, acc, n.steps, examples=n.examples, end_on_subset=n.end_on_subset, **kw
        )
        out.append({"net": n.id, "group": n.group, "steps": n.steps, "evaluations": len(steps), **check})
    return out


def stability_vs_convergence(stability_runs: list[dict], histories: dict) -> list[dict]:
    """Per iteration of `nac.search.stability.stability` results: the stable step against the converged
    step of that iteration's accuracy curve (`histories[(run, step name)] = ((step, acc), ...)`)."""
    out = []
    for r in stability_runs:
        for it in r["iterations"]:
            history = histories.get((r["run"], it["step"])) or ()
            steps = [s for s, _ in history]
            conv = converged_step(steps, [a for _, a in history])
            out.append(
                {
                    "run": r["run"],
                    "iteration": it["iteration"],
                    "steps": it["iteration_steps"],
                    "evaluations": len(steps),
                    "stable_step": it["stable_step"],
                    "converged_step": conv,
                    # Converged only at the last evaluation: accuracy was still rising at the end.
                    "converged_at_end": None if conv is None or len(steps) < 2 else conv == steps[-1],
                    "stable_before_converged": (
                        None
                        if it["stable_step"] is None or conv is None or len(steps) < 2
                        else it["stable_step"] < conv
                    ),
                }
            )
    return out


def study(nets: list[StudyNet], stability_runs=(), histories=None, **kw) -> dict:
    """Everything above for report.json's "study" section."""
    comparisons, beaten = [], []
    for dataset in sorted({n.dataset for n in nets}):
        of = [n for n in nets if n.dataset == dataset]
        constructed_groups = sorted({n.group for n in of if n.role == "constructed"})
        random = [n for n in of if n.role == "random"]
        for group in constructed_groups:
            cons = [n for n in of if n.group == group]
            for other_role, pair_by in (("random", "match"), ("worst_case", "seed"), ("envelope", None)):
                other = [n for n in of if n.role == other_role and not n.variant]
                if other:
                    entry = compare(cons, other, pair_by, **kw)
                    comparisons.append(
                        {"dataset": dataset, "constructed": group, "other": other_role, **entry}
                    )
        plain = [n for n in of if n.group == "constructed"]
        for group in constructed_groups:  # each other setting against l2, paired by seed
            if group != "constructed" and plain:
                cons = [n for n in of if n.group == group]
                entry = compare(cons, plain, "seed", **kw)
                comparisons.append(
                    {"dataset": dataset, "constructed": group, "other": "constructed", **entry}
                )
        for group in constructed_groups:
            for b in beats([n for n in of if n.group == group], random) if random else []:
                beaten.append({"dataset": dataset, "group": group, **b})
    return {
        "resamples": kw.get("resamples", RESAMPLES),
        "bootstrap_seed": kw.get("seed", BOOTSTRAP_SEED),
        "level": kw.get("level", LEVEL),
        "converged_points": CONVERGED_POINTS,
        "last_fraction": LAST_FRACTION,
        "groups": group_summary(nets),
        "comparisons": comparisons,
        "beats_random": beaten,
        "convergence": convergence_table(nets),
        "stability_vs_convergence": stability_vs_convergence(list(stability_runs), histories or {}),
    }


def _num(v, fmt="{:.2f}") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def study_markdown(s: dict) -> str:
    """The study section of report.md from report.json's "study" dict (`study`)."""
    lines = _groups_markdown(s) + _comparisons_markdown(s) + _beats_markdown(s)
    lines += _convergence_markdown(s) + _stability_vs_convergence_markdown(s)
    return "\n".join(lines) + "\n"


def _groups_markdown(s: dict) -> list[str]:
    """The per-role table."""
    lines = ["### Per role", "", "| Dataset | Role | n | Test error (%) | Params |", "|---|---|---|---|---|"]
    for g in s["groups"]:
        e, p = g["test_error_pct"], g["params"]
        lines.append(
            f"| {g['dataset']} | {g['group']} | {g['n']} | {e['mean']:.2f} ± {e['std']:.2f} | "
            f"{p['mean']:,.0f} ± {p['std']:,.0f} |"
        )
    return lines + ["", "Mean ± sample standard deviation (0 for one network)."]


def _comparisons_markdown(s: dict) -> list[str]:
    """Constructed minus the other roles, with bootstrap intervals."""
    pct = int(round(100 * s["level"]))
    lines = [
        "",
        "### Constructed minus other roles (test error, points)",
        "",
        f"Negative: the constructed networks err less. {pct}% percentile bootstrap intervals of the mean "
        f"difference ({s['resamples']:,} resamples, seed {s['bootstrap_seed']}); paired by construction "
        "seed (worst case; a construction setting against plain constructions, Other = constructed) or by the constructed network a random net was drawn to match (random: "
        "constructed minus the mean of its random nets); unpaired: each group resampled on its own.",
        "",
        "| Dataset | Constructed | Other | n | Paired diff [CI] | Unpaired diff [CI] |",
        "|---|---|---|---|---|---|",
    ]
    for c in s["comparisons"]:
        u = c["unpaired"]
        p = c["paired"]
        paired = (
            "n/a"
            if p is None
            else f"{p['diff']:+.2f} [{p['ci_low']:+.2f}, {p['ci_high']:+.2f}] ({p['n_pairs']} pair{'s' if p['n_pairs'] != 1 else ''})"
        )
        lines.append(
            f"| {c['dataset']} | {c['constructed']} | {c['other']} | {c['n_constructed']} vs {c['n_other']} | "
            f"{paired} | {u['diff']:+.2f} [{u['ci_low']:+.2f}, {u['ci_high']:+.2f}] |"
        )
    if not s["comparisons"]:
        lines.append("| | | | | *no constructed network with a comparison group* | |")
    return lines


def _beats_markdown(s: dict) -> list[str]:
    """The random networks each constructed network beats."""
    lines = ["", "### Random networks each constructed network beats", ""]
    if s["beats_random"]:
        lines += ["| Network | Test error (%) | Beats | Ties |", "|---|---|---|---|"]
        for b in s["beats_random"]:
            lines.append(
                f"| {b['net']} | {b['test_error_pct']:.2f} | {b['beats']} of {b['of']} | {b['ties']} |"
            )
    else:
        lines.append("*No constructed and random networks of one dataset.*")
    return lines


def _convergence_markdown(s: dict) -> list[str]:
    """The convergence of every training."""
    lines = [
        "",
        "### Convergence of the trainings",
        "",
        f"Test accuracy gained over the last {100 * s['last_fraction']:.0f}% of each training (from the last "
        f"evaluation at or before {100 * (1 - s['last_fraction']):.0f}% of the steps); flattened when < "
        f"{s['converged_points']:g} points. n/a: no evaluation that early (set --eval_every). When the "
        "earlier evaluations read a subset of the test images (--eval_examples) and the last one all "
        "of them, the same-images gain (from that evaluation to the end of training on the same "
        "subset, which the last evaluation also reports; in runs made before it did, to the last "
        "evaluation that read the subset) decides instead: it compares like with like.",
        "",
        "| Network | Group | Steps | Evaluations | From step | Gain (points) | Same-images gain | Flattened |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in s["convergence"]:
        flat = "n/a" if c["flattened"] is None else ("yes" if c["flattened"] else "**no**")
        same = "n/a"
        if c.get("same_images_gain_points") is not None:
            same = f"{c['same_images_gain_points']:.2f} (to step {c['same_images_to_step']}, {c['same_images']:,} images)"
        lines.append(
            f"| {c['net']} | {c['group']} | {_num(c['steps'], '{}')} | {c['evaluations']} | {_num(c['from_step'], '{}')} | "
            f"{_num(c['gain_points'])} | {same} | {flat} |"
        )
    return lines


def _stability_vs_convergence_markdown(s: dict) -> list[str]:
    """Question 2: ranking stable vs accuracy converged."""
    lines = [
        "",
        "### Question 2: ranking stable vs accuracy converged, per construction iteration",
        "",
        f"Stable from: as in the stability section. Converged from: the first evaluation after which test "
        f"accuracy gains less than {s['converged_points']:g} points to the end of the iteration (needs "
        "evaluations within iterations: --construction_eval_every or --eval_every < --construction_steps).",
        "",
        "| Run | Iteration | Steps | Evaluations | Stable from step | Converged from step | Stable first |",
        "|---|---|---|---|---|---|---|",
    ]
    for q in s["stability_vs_convergence"]:
        first = (
            "n/a"
            if q["stable_before_converged"] is None
            else ("yes" if q["stable_before_converged"] else "no")
        )
        lines.append(
            f"| {q['run']} | {q['iteration']} | {q['steps']} | {q['evaluations']} | "
            f"{_num(q['stable_step'], '{}')} | {_num(q['converged_step'], '{}')}"
            f"{' (the end: still rising)' if q.get('converged_at_end') else ''} | {first} |"
        )
    if not s["stability_vs_convergence"]:
        lines.append("| *no construction iteration with a stability result* | | | | | | |")
    return lines
