"""Construction savings on Fashion-MNIST: fixed windows vs the stability stop vs stop + inheritance.

For every seed, three constructions with the same seed and budgets:

  fixed     the paper's fixed windows (--stats_stop_tau=0);
  stop      the stability stop (--stats_stop_tau=T --stats_stop_patience=P);
  inherit   the stop and weight inheritance (--inherit_weights; the final network from scratch).

Then, from the run directories (no TensorFlow):

* construction steps trained (summary.json) and the saving against the fixed windows;
* decision agreement of the stop alone: every iteration of the FIXED run is replayed, i.e. the
  stop rule runs over its `stats_series.json` (with the same seed the stopped iteration has
  trained exactly what the fixed one had at that step), and the restructure step is applied
  to the statistic at the step where the stop fires; the pruned branches are compared with
  the end-of-window decision (`stats.json`). Reported per iteration (identical or not) and
  per pruned branch. As a check, the stop run's first iteration must stop at the replayed step
  with the replayed statistic;
* the final networks' test accuracy (same final budget, trained from scratch).

Usage (defaults: a scale a loaded 2-core CPU finishes in minutes; the full measurement is
`--seeds 1 2 3 --construction_steps 300 --final_steps 1200`):

  python experiments/savings.py --out runs/savings [--seeds 1 2 3] [--tau 0.9] [--patience 3]
  python experiments/savings.py --out runs/savings --analyse_only   # tables from finished runs
  python experiments/savings.py --out runs/study_savings --study runs/study   # the study's runs

`--study DIR` reads `experiments/study.sh`'s runs instead of its own: `constructed_sK` are the
fixed windows, `stopinherit_sK` the stop with inheritance (the stop rule is read from their
`run_config.json`); the study has no stop-only run, so the check of the stop against the replay
uses the first iteration of `stopinherit_sK` (inheritance starts at the second). Every analysis
also replays the fixed windows under a grid of rules (tau x patience) to show the trade-off.

Writes `OUT/savings.json` and `OUT/savings.md`. Runs are resumable (rerun the same command).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from nac.search import restructure as restructure_lib
from nac.search import stopping
from nac.spec import arch as arch_lib
from nac.spec.config import OriginalConfig

VARIANTS = ("fixed", "stop", "inherit")


def _parser():
    p = argparse.ArgumentParser(prog="experiments/savings.py", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="directory for the runs and the tables")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--tau", type=float, default=0.9)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--envelope", default="16/3-1-1/6")
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--construction_steps", type=int, default=100)
    p.add_argument("--stats_every", type=int, default=10)
    p.add_argument("--final_steps", type=int, default=400)
    p.add_argument("--data_dir", default=None)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--analyse_only", action="store_true", help="only read finished runs")
    p.add_argument("--study", default=None, help="analyse experiments/study.sh's run directory instead")
    return p


# The study's run names for the variants (it has no stop-only construction).
STUDY_NAMES = {"fixed": "constructed", "stop": "stopinherit", "inherit": "stopinherit"}
GRID_TAUS = (0.8, 0.9, 0.95, 1.0)
GRID_PATIENCES = (2, 3, 5)


def run_dir(args, variant, seed):
    if getattr(args, "study", None):
        return os.path.join(args.study, f"{STUDY_NAMES[variant]}_s{seed}")
    return os.path.join(args.out, f"{variant}_s{seed}")


def flags(args, variant, seed):
    out = [
        "--dataset=fashion_mnist",
        "--image_size=28",
        "--batch_size=50",
        f"--envelope={args.envelope}",
        f"--iterations={args.iterations}",
        f"--construction_steps={args.construction_steps}",
        f"--stats_every={args.stats_every}",
        f"--final_steps={args.final_steps}",
        f"--eval_every={args.final_steps}",
        f"--seed={seed}",
        "--nosave_models",
        "--notensorboard",
        "--noprogress",
        f"--run_dir={run_dir(args, variant, seed)}",
    ]
    if args.data_dir:
        out.append(f"--data_dir={args.data_dir}")
    if variant in ("stop", "inherit"):
        out += [f"--stats_stop_tau={args.tau}", f"--stats_stop_patience={args.patience}"]
    if variant == "inherit":
        out.append("--inherit_weights")
    return out


def _load(path):
    with open(path) as f:
        return json.load(f)


def load_iterations(fixed_dir) -> list[dict]:
    """What the replay needs of every iteration of a fixed-window run, read once: the network's
    decisive stages, the recorded series, the window, the policy and the end-of-window pruning."""
    config = _load(os.path.join(fixed_dir, "config.json"))
    policy = restructure_lib.Policy.from_config(OriginalConfig.from_original(config))
    run_config = _load(os.path.join(fixed_dir, "run_config.json"))
    out = []
    i = 0
    while os.path.isdir(os.path.join(fixed_dir, f"iter_{i}")):
        step = os.path.join(fixed_dir, f"iter_{i}")
        network = _network(run_config, arch_lib.body_from_original(_load(os.path.join(step, "network.json"))))
        metrics = _load(os.path.join(step, "metrics.json"))
        _, end_report = restructure_lib.restructure_with_report(
            network, _load(os.path.join(step, "stats.json")), policy
        )
        out.append(
            {
                "iteration": i,
                "network": network,
                "policy": policy,
                "series": _load(os.path.join(step, "stats_series.json")),
                "window": metrics["steps_planned"] if "steps_planned" in metrics else metrics["steps"],
                "stages": stopping.decisive_stages(network, policy.construction, policy.maxlayersperstage),
                "pruned_end": sorted(b.original for b in end_report.pruned),
            }
        )
        i += 1
    return out


def replay(iterations, tau, patience) -> list[dict]:
    """Every loaded iteration (`load_iterations`) replayed under the stop rule (tau, patience):
    where the stop fires and its pruning decision there."""
    out = []
    for it in iterations:
        series, window = it["series"], it["window"]
        rule = stopping.StopRule(tau, patience, stopping.default_min_steps(window))
        stop_step, record = stopping.replay(rule, it["stages"], series["steps"], series["values"])
        entry = {
            "iteration": it["iteration"],
            "window": window,
            "stop_step": stop_step,
            "tau": record.to_dict()["tau"],
            "pruned_end": it["pruned_end"],
        }
        if stop_step is not None:
            at_stop = stopping.values_at(series["steps"], series["values"], stop_step)
            _, stop_report = restructure_lib.restructure_with_report(it["network"], at_stop, it["policy"])
            entry["pruned_stop"] = sorted(b.original for b in stop_report.pruned)
            entry["stats_at_stop"] = at_stop
        else:
            entry["pruned_stop"] = entry["pruned_end"]  # no stop: the fixed window's decision
        entry["identical"] = entry["pruned_stop"] == entry["pruned_end"]
        entry["branches_agreeing"] = len(set(entry["pruned_stop"]) & set(entry["pruned_end"]))
        out.append(entry)
    return out


def replay_run(fixed_dir, rule_args) -> list[dict]:
    """Every iteration of a fixed-window run: where the stop fires and its decision there."""
    return replay(load_iterations(fixed_dir), rule_args.tau, rule_args.patience)


def replay_totals(entries) -> dict:
    """Replayed iterations summed: stops, steps, identical decisions, agreeing pruned branches."""
    return {
        "iterations": len(entries),
        "iterations_identical": sum(e["identical"] for e in entries),
        "pruned_branches": sum(len(e["pruned_end"]) for e in entries),
        "pruned_branches_agreeing": sum(e["branches_agreeing"] for e in entries),
        "stopped_iterations": sum(e["stop_step"] is not None for e in entries),
        "replayed_steps": sum(e["stop_step"] or e["window"] for e in entries),
        "window_steps": sum(e["window"] for e in entries),
    }


def _network(run_config: dict, body) -> arch_lib.Network:
    from nac.run.runconfig import RunConfig

    base = RunConfig.from_flat(run_config).initial_network()
    return arch_lib.Network(body, base.stem, base.head, base.input_channels)


def _first_run_config(args, variant) -> dict | None:
    for seed in args.seeds:
        path = os.path.join(run_dir(args, variant, seed), "run_config.json")
        if os.path.exists(path):
            return _load(path)
    return None


def _study_rule(args) -> None:
    """In study mode, the settings are the study's: the stop rule of its stopinherit runs, the
    budgets of its fixed-window (constructed) runs."""
    stop = _first_run_config(args, "inherit")
    if stop is not None:
        args.tau, args.patience = stop["stats_stop_tau"], stop["stats_stop_patience"]
    fixed = _first_run_config(args, "fixed")
    if fixed is not None:
        for name in ("envelope", "iterations", "construction_steps", "stats_every", "final_steps"):
            setattr(args, name, fixed[name])


def grid(args, rows) -> list[dict]:
    """The fixed windows replayed under every rule of the grid: steps saved, decisions kept."""
    loaded = [it for r in rows if "replay" in r for it in load_iterations(run_dir(args, "fixed", r["seed"]))]
    if not loaded:
        return []
    out = []
    for tau in GRID_TAUS:
        for patience in GRID_PATIENCES:
            t = replay_totals(replay(loaded, tau, patience))
            out.append(
                {
                    "tau": tau,
                    "patience": patience,
                    "iterations": t["iterations"],
                    "identical": t["iterations_identical"],
                    "pruned_branches": t["pruned_branches"],
                    "pruned_branches_agreeing": t["pruned_branches_agreeing"],
                    "steps_saved_fraction": 1 - t["replayed_steps"] / t["window_steps"],
                }
            )
    return out


def analyse(args) -> dict:
    if args.study:
        _study_rule(args)
        args.variants = ["fixed", "inherit"]
    rows = []
    for seed in args.seeds:
        row = {"seed": seed}
        for variant in args.variants:
            d = run_dir(args, variant, seed)
            path = os.path.join(d, "summary.json")
            if not os.path.exists(path) or not _load(path).get("complete"):
                continue
            s = _load(path)
            row[variant] = {
                "construction_steps": s["construction_steps"] if "construction_steps" in s else None,
                "construction_steps_planned": s.get("construction_steps_planned"),
                "final_test_accuracy": s["final"]["test_accuracy"],
                "final_notation": s["final"]["notation"],
                "iteration_steps": [r["steps"] for r in s["steps"] if r["name"].startswith("iter_")],
            }
        fixed = run_dir(args, "fixed", seed)
        if os.path.exists(os.path.join(fixed, "summary.json")):
            row["replay"] = replay_run(fixed, args)
            stop_dir = run_dir(args, "stop" if "stop" in args.variants or args.study else "inherit", seed)
            first = os.path.join(stop_dir, "iter_0", "metrics.json")
            if os.path.exists(first) and row["replay"]:
                m = _load(first)
                replayed = row["replay"][0]
                same_step = m["steps"] == (replayed["stop_step"] or replayed["window"])
                same_stats = True
                if replayed["stop_step"] is not None:
                    stats = _load(os.path.join(stop_dir, "iter_0", "stats.json"))
                    same_stats = all(
                        np.isclose(stats[b], v, rtol=1e-6) for b, v in replayed["stats_at_stop"].items()
                    )
                row["stop_run_matches_replay"] = bool(same_step and same_stats)
        rows.append(row)
    return {"settings": vars(args), "seeds": rows, "totals": _totals(rows, args), "grid": grid(args, rows)}


def _totals(rows, args) -> dict:
    out = {}
    for variant in args.variants:
        done = [r[variant] for r in rows if variant in r]
        if not done:
            continue
        trained = sum(v["construction_steps"] for v in done)
        planned = sum(v["construction_steps_planned"] for v in done)
        acc = [v["final_test_accuracy"] for v in done]
        out[variant] = {
            "runs": len(done),
            "construction_steps": trained,
            "construction_steps_planned": planned,
            "steps_saved_fraction": 1 - trained / planned if planned else None,
            "final_accuracy_mean": float(np.mean(acc)),
            "final_accuracy_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
            "final_accuracies": acc,
        }
    replays = [e for r in rows for e in r.get("replay", [])]
    if replays:
        out["replay"] = replay_totals(replays)
    return out


def markdown(result) -> str:
    t = result["totals"]
    s = result["settings"]
    lines = [
        f"Fashion-MNIST, {s['envelope']}, {s['iterations']} iterations of {s['construction_steps']} steps, "
        f"statistic recorded every {s['stats_every']} steps, final {s['final_steps']} steps; stop at "
        f"tau >= {s['tau']} for {s['patience']} records; seeds {s['seeds']}.",
        "",
        "| Variant | Runs | Construction steps | Planned | Saved | Final test accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        if variant not in t:
            continue
        v = t[variant]
        saved = "" if v["steps_saved_fraction"] is None else f"{100 * v['steps_saved_fraction']:.0f}%"
        lines.append(
            f"| {variant} | {v['runs']} | {v['construction_steps']} | {v['construction_steps_planned']} | "
            f"{saved} | {v['final_accuracy_mean']:.4f} ± {v['final_accuracy_std']:.4f} |"
        )
    r = t.get("replay")
    if r:
        lines += [
            "",
            f"Replay of the fixed-window iterations: the stop fires in {r['stopped_iterations']} of "
            f"{r['iterations']} iterations, at {r['replayed_steps']} of {r['window_steps']} steps "
            f"({100 * (1 - r['replayed_steps'] / r['window_steps']):.0f}% saved); decisions identical in "
            f"{r['iterations_identical']} of {r['iterations']} iterations, "
            f"{r['pruned_branches_agreeing']} of {r['pruned_branches']} pruned branches the same.",
        ]
    if result.get("grid"):
        lines += [
            "",
            "The fixed windows replayed under other rules (no training; the steps a stop would save and "
            "the iterations whose pruning decision stays the end-of-window one):",
            "",
            "| tau | patience | Steps saved | Iterations with identical decisions | Pruned branches identical |",
            "|---|---|---|---|---|",
        ]
        for g in result["grid"]:
            share = g["pruned_branches_agreeing"] / g["pruned_branches"] if g["pruned_branches"] else 1.0
            lines.append(
                f"| {g['tau']} | {g['patience']} | {100 * g['steps_saved_fraction']:.0f}% | "
                f"{g['identical']} of {g['iterations']} | {g['pruned_branches_agreeing']} of "
                f"{g['pruned_branches']} ({100 * share:.0f}%) |"
            )
    lines += [
        "",
        "| Seed | Iteration | Window | Stop at | Identical | Pruned at the end | Pruned at the stop |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["seeds"]:
        for e in row.get("replay", []):
            lines.append(
                f"| {row['seed']} | {e['iteration']} | {e['window']} | {e['stop_step'] or 'never'} | "
                f"{'yes' if e['identical'] else 'no'} | {', '.join(e['pruned_end'])} | {', '.join(e['pruned_stop'])} |"
            )
        if "stop_run_matches_replay" in row:
            lines.append(
                f"| {row['seed']} | check | | | stop run's iter_0 = replay: {row['stop_run_matches_replay']} | | |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if not args.analyse_only and not args.study:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        # Every fixed-window run first: their replays are the decision measurement.
        for variant in args.variants:
            for seed in args.seeds:
                cmd = [sys.executable, "-m", "nac.construct", *flags(args, variant, seed)]
                print(" ".join(cmd), flush=True)
                code = subprocess.run(cmd, env=env).returncode
                if code:
                    print(f"{variant} seed {seed}: exit {code}", file=sys.stderr)
                    return code
    result = analyse(args)
    with open(os.path.join(args.out, "savings.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    text = markdown(result)
    with open(os.path.join(args.out, "savings.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
