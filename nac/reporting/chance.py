"""What chance gives: the restructure rule driven by random statistics (pure Python).

Two controls for `nac.report`, both without training:

* Figure 4's width profile of restructuring the same envelope with *random* statistics: from
  a run's first network, `iterations` restructure steps (the run's own policy) each fed
  seeded uniform values per branch, `DRAWS` seeds; per layer (stage, position) the mean and
  standard deviation of the final network's branch count. Constructions whose profile sits
  inside the random band show no structure beyond what the rule itself imposes.
* The pruning agreement between seeds at iteration 0 (where every seed of a setting
  restructures the same network): the mean, over pairs of seeds, of the number of branches
  both prune in a stage, against the same mean for pairs of random-statistics draws through
  the rule (so the rule's constraints, e.g. never pruning a layer's last branch, are in the
  chance level too).

Runs are grouped by setting (`setting_of`: criterion, fixed window or stability stop,
inherited weights, worst case), never pooled across settings.
"""

from __future__ import annotations

import itertools
import math
import random as _random

from nac.search import restructure as restructure_lib
from nac.spec import arch as arch_lib
from nac.spec.errors import NacError

DRAWS = 200


def setting_of(run) -> str:
    """The settings that change what a construction computes besides its seed, in words."""
    rc = run.run_config
    parts = [f"statistic {rc.get('statistic', 'l2')}"]
    parts.append("stability stop" if rc.get("stats_stop_tau") else "fixed window")
    if rc.get("inherit_weights"):
        parts.append("inherited weights")
    if rc.get("worstcase"):
        parts.append("worst case")
    return ", ".join(parts)


def _policy_and_start(run):
    """(policy, first network, iterations) of a constructed run, or None."""
    steps = run.iteration_steps()
    if run.config is None or not steps or steps[0][1].network_list is None:
        return None
    try:
        policy = restructure_lib.Policy.from_config(run.config)
        network = run.config.network(steps[0][1].body())
    except NacError:
        return None
    return policy, network, len(steps)


def random_values(network, rng) -> dict[str, float]:
    return {b.original: rng.random() for b in network.branch_ids()}


def random_final_widths(network, policy, iterations: int, seed) -> list[list[int]]:
    """Branches per layer, per stage, after `iterations` random-statistics restructures."""
    rng = _random.Random(f"nac-chance/{seed}")
    for _ in range(iterations):
        network = restructure_lib.restructure(network, random_values(network, rng), policy)
    return [[c.num_branches for _, c in stage] for stage in arch_lib.body_stages(network.body)]


def random_profile(run, draws: int = DRAWS) -> list[list[dict]] | None:
    """Per stage, per layer: `{"mean", "std"}` of the random-statistics branch counts."""
    start = _policy_and_start(run)
    if start is None:
        return None
    policy, network, iterations = start
    try:
        samples = [random_final_widths(network, policy, iterations, d) for d in range(draws)]
    except NacError:
        return None
    out = []
    for s in range(len(samples[0])):
        layers = []
        for pos in range(max(len(w[s]) for w in samples)):
            vals = [w[s][pos] for w in samples if pos < len(w[s])]
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
            layers.append({"mean": mean, "std": std})
        out.append(layers)
    return out


def _mean_pairwise_overlap(pruned: list[list[set]]) -> list[float]:
    """Per stage, the mean over pairs of the size of the intersection of the pruned sets."""
    pairs = list(itertools.combinations(pruned, 2))
    return [sum(len(a[s] & b[s]) for a, b in pairs) / len(pairs) for s in range(len(pruned[0]))]


def pruning_agreement(runs, draws: int = DRAWS) -> list[dict]:
    """Seeds' agreement at iteration 0 against chance, per (setting, initial network)."""
    groups: dict[tuple, list] = {}
    for run in runs:
        start = _policy_and_start(run)
        step = run.steps.get("iter_0")
        if run.role != "constructed" or start is None or step is None or step.stats is None:
            continue
        policy, network, _ = start
        groups.setdefault((setting_of(run), network.fingerprint()), []).append(
            (run, policy, network, step.stats)
        )
    out = []
    for (setting, _), members in sorted(groups.items(), key=lambda kv: kv[0]):
        if len(members) < 2:
            continue
        _, policy, network, _ = members[0]
        try:
            seeds = [
                [
                    {b.original for b in s.pruned}
                    for s in restructure_lib.restructure_with_report(network, st, policy)[1].stages
                ]
                for _, _, _, st in members
            ]
            rng = _random.Random("nac-chance/agreement")
            chance = [
                [
                    {b.original for b in s.pruned}
                    for s in restructure_lib.restructure_with_report(
                        network, random_values(network, rng), policy
                    )[1].stages
                ]
                for _ in range(draws)
            ]
        except NacError:
            continue
        observed, expected = _mean_pairwise_overlap(seeds), _mean_pairwise_overlap(chance)
        out.append(
            {
                "setting": setting,
                "runs": [r.label for r, _, _, _ in members],
                "stages": [
                    {"stage": s, "pruned": len(seeds[0][s]), "shared": observed[s], "chance": expected[s]}
                    for s in range(len(observed))
                ],
            }
        )
    return out


def agreement_markdown(rows: list[dict]) -> str:
    lines = [
        "| setting | runs | stage | pruned | shared by two seeds (mean) | by chance |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        for s in row["stages"]:
            if s["pruned"]:
                lines.append(
                    f"| {row['setting']} | {len(row['runs'])} | {s['stage']} | {s['pruned']} | "
                    f"{s['shared']:.2f} | {s['chance']:.2f} |"
                )
    return "\n".join(lines) + "\n"


def widths_by_setting(runs, notes: list[str], width_profiles) -> list[dict]:
    """Figure 4's profiles (`width_profiles(runs, notes)`) per setting, each with the
    random-statistics profile of its first run beside it (`chance`, None if not computable)."""
    by_setting: dict[str, list] = {}
    for run in runs:
        by_setting.setdefault(setting_of(run), []).append(run)
    out = []
    for setting, group in sorted(by_setting.items()):
        for w in width_profiles(group, notes):
            first = next(r for r in group if r.label == w["runs"][0])
            w["setting"] = setting
            w["chance"] = random_profile(first)
            if w["chance"] is None:
                notes.append(
                    f"Figure 4 {w['runs'][0]}: no config.json or iteration 0; no random-statistics profile"
                )
            out.append(w)
    return out


def agreement_section(out, runs) -> list[dict]:
    """The report's "Pruning agreement between seeds" subsection; returns its JSON."""
    rows = pruning_agreement(runs)
    out.md += ["### Pruning agreement between seeds (iteration 0) against chance", ""]
    if not rows:
        out.md += ["*No setting with two or more seeds of the same first network.*", ""]
    else:
        out.md += [agreement_markdown(rows)]
    return rows
