"""The study that decides: the mechanism measured directly, then construction against controls.

Part 1, the mechanism. Seeds x points of a training window of the envelope ENVELOPE: each
point is its own `--mode=oneshot` run of the envelope for S steps from the seed's
initialisation (the same batches and the same learning rate over the common prefix: a run of
25 steps is the first 25 steps of the run of 100, and its criteria are those accumulated over
those 25 steps, as a window ending there would have them), plus one run of the final
recipe's length. Every run drives `--statistic=snip`, which changes nothing in training but
adds the zero-cost criterion, computed at the start, to `criteria.json` beside l2, variance
and taylor (recorded) and l1_kernel and random (computed at the end). Then `nac.ablate` on
each run's final step: one-branch ablations on the held-out validation images, and per stage
each criterion's Kendall tau-b against the oracle. `nac.report` pools them over seeds.

Part 2, construction against its controls, paired by seed: one-iteration constructions of the
envelope with the l2 statistic, the random criterion, the oracle and the best other criterion
of part 1 (the highest mean tau over seeds and stages at the construction window's length,
among variance, taylor, l1_kernel and snip; chosen when part 1 is done, written to
OUT/best_criterion.json); one random network per l2 construction drawn within 5% of its
parameters (`--match_params=0.05`); and RETRAINS retrainings, other seeds, of the seed-1 l2
network (`--mode=oneshot --arch`), the pure training noise.

One recipe for every training: SGD with momentum 0.9 from 0.1, staircase x0.1 every
DECAY_STEPS steps (the original's schedule), batch 50, no augmentation, skip inputs
(`--skip`), 2,000 training images held out for the oracle in every role (the same training
set everywhere), the statistic recorded every 5 steps, finals of FINAL_STEPS steps; every
evaluation of the full scale reads all 10,000 test images, so the convergence test (the gain
over the last 20% of a final) carries no subset sampling error (the pilot's evaluations read
the first 2,000 before the last). Design, power and cost: docs/study/README.md.

    python experiments/study.py                 # runs/study, report in docs/study
    python experiments/study.py --scale=pilot   # the same design in about 10 minutes
    python experiments/study.py --dry_run       # the plan and the power, nothing run

Resumable: every run is a `nac.construct` run directory; rerunning skips finished runs and
ablations and continues an interrupted run. Two processes at a time by default (`--jobs`),
each job's output in OUT/NAME.log.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from nac.reporting import power  # noqa: E402  (NumPy only: no TensorFlow in this process)

ENVELOPE = "24/3-1-1/6"  # 4, 8 and 16 channels per branch in stages 0, 1 and 2
BATCH = 50
VALIDATION = 2000
TRAIN_EXAMPLES = 60_000 - VALIDATION
CANDIDATES = ("variance", "taylor", "l1_kernel", "snip")  # for "the best other criterion"
# The noise the design is planned with, measured before it ran: the standard deviation of the
# paired differences of test error (points) between roles of the last study, docs/study.
PLANNED_SD = 0.9


@dataclasses.dataclass(frozen=True)
class Scale:
    seeds: tuple
    windows: tuple  # points of the construction window (steps) ablated in part 1
    final_steps: int
    eval_every: int
    window_eval_every: int
    decay_steps: int
    retrains: int
    ablate_examples: int  # validation images per ablation (0: all VALIDATION)
    eval_examples: int  # test images of the evaluations before the last (0: all)
    out: str
    report: str

    @property
    def construction_steps(self) -> int:
        return self.windows[-1]


SCALES = {
    "full": Scale(
        (1, 2, 3, 4, 5, 6, 7, 8), (25, 50, 100), 1200, 240, 25, 400, 3, 0, 0, "runs/study", "docs/study"
    ),
    "pilot": Scale(
        (1, 2), (10, 20, 40), 120, 40, 10, 40, 1, 500, 2000, "runs/study_pilot", "runs/study_pilot/report"
    ),
}


@dataclasses.dataclass
class Job:
    name: str
    commands: list  # argument lists run one after the other
    after: tuple = ()  # names of jobs that must finish first
    ready: object = None  # optional callable returning extra commands once `after` is done


def decay_epochs(steps: int) -> str:
    """--decay_epochs for a decay every `steps` steps, rounded down so the decay lands on it."""
    return f"{math.floor(steps * BATCH / TRAIN_EXAMPLES * 1e10) / 1e10:.10f}"


def common_flags(s: Scale, data_dir: str | None) -> list[str]:
    flags = [
        "--dataset=fashion_mnist",
        "--downsample=2",
        "--image_size=14",
        f"--batch_size={BATCH}",
        "--augment=none",
        "--momentum=0.9",
        "--learning_rate=0.1",
        "--lr_schedule=exponential",
        "--decay_rate=0.1",
        f"--decay_epochs={decay_epochs(s.decay_steps)}",
        "--skip",
        f"--validation_examples={VALIDATION}",
        "--stats_every=5",
        f"--eval_examples={s.eval_examples}",
        "--nosave_models",
        "--notensorboard",
        "--noprogress",
    ]
    return flags + ([f"--data_dir={data_dir}"] if data_dir else [])


def construct(py, common, out, name, *flags) -> list[str]:
    return [py, "-m", "nac.construct", *common, *flags, f"--run_dir={os.path.join(out, name)}"]


def ablate(py, out, name, step, s: Scale) -> list[str]:
    return [
        py,
        "-m",
        "nac.ablate",
        os.path.join(out, name, step),
        "--split=validation",
        f"--examples={s.ablate_examples}",
    ]


def part1_jobs(s: Scale, py, common) -> list[Job]:
    jobs = []
    for seed in s.seeds:
        for steps in (*s.windows, s.final_steps):
            name = f"mech_s{seed}_{steps}"
            every = s.eval_every if steps == s.final_steps else min(s.window_eval_every, steps)
            run = construct(
                py, common, s.out, name, "--mode=oneshot", f"--envelope={ENVELOPE}", "--statistic=snip",
                f"--final_steps={steps}", f"--eval_every={every}", f"--seed={seed}",
            )  # fmt: skip
            jobs.append(Job(name, [run, ablate(py, s.out, name, "final", s)]))
    return sorted(jobs, key=lambda j: -int(j.name.rsplit("_", 1)[1]))  # the long runs first


def best_criterion(s: Scale) -> dict:
    """Part 1's best criterion other than l2, random and the oracle: the highest mean tau over
    seeds and stages at the construction window's length (`mech_s*_{window}` ablations)."""
    taus: dict[str, list[float]] = {c: [] for c in CANDIDATES}
    for seed in s.seeds:
        path = os.path.join(s.out, f"mech_s{seed}_{s.construction_steps}", "final", "ablation.json")
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        for stage in doc["stages"]:
            for c in CANDIDATES:
                value = stage["tau"].get(c, {}).get("value")
                if value is not None:
                    taus[c].append(float(value))
    means = {c: sum(v) / len(v) for c, v in taus.items() if v}
    if not means:
        raise SystemExit(f"study: no tau of {', '.join(CANDIDATES)} in the part 1 ablations under {s.out}")
    best = max(means, key=means.get)
    return {"criterion": best, "mean_tau": means, "window": s.construction_steps}


def part2_jobs(s: Scale, py, common) -> list[Job]:
    window = [f"--envelope={ENVELOPE}", "--iterations=1", f"--construction_steps={s.construction_steps}"]
    window += [f"--construction_eval_every={s.window_eval_every}", f"--final_steps={s.final_steps}"]
    window += [f"--eval_every={s.eval_every}"]
    final = [f"--final_steps={s.final_steps}", f"--eval_every={s.eval_every}"]
    jobs = []
    for crit in ("l2", "oracle", "random"):
        for seed in s.seeds:
            name = f"construct_{crit}_s{seed}"
            run = construct(py, common, s.out, name, *window, f"--statistic={crit}", f"--seed={seed}")
            jobs.append(Job(name, [run]))
    for seed in s.seeds:
        arch = os.path.join(s.out, f"construct_l2_s{seed}", "final", "network.json")
        flags = ["--mode=random", f"--arch={arch}", "--num_random=1", "--match_params=0.05", *final]
        run = construct(py, common, s.out, f"matched_s{seed}", *flags, f"--seed={seed}")
        jobs.append(Job(f"matched_s{seed}", [run], after=(f"construct_l2_s{seed}",)))
    arch = os.path.join(s.out, "construct_l2_s1", "final", "network.json")
    for k in range(1, s.retrains + 1):
        flags = ["--mode=oneshot", f"--arch={arch}", *final, f"--seed={100 + k}"]
        jobs.append(
            Job(
                f"retrain_r{k}",
                [construct(py, common, s.out, f"retrain_r{k}", *flags)],
                after=("construct_l2_s1",),
            )
        )
    part1 = tuple(f"mech_s{k}_{n}" for k in s.seeds for n in (*s.windows, s.final_steps))
    for seed in s.seeds:

        def best_run(seed=seed):
            name = f"construct_best_s{seed}"
            return [construct(py, common, s.out, name, *window, f"--statistic={chosen(s)}", f"--seed={seed}")]

        jobs.append(Job(f"construct_best_s{seed}", [], after=part1, ready=best_run))
    return jobs


def chosen(s: Scale) -> str:
    """The best other criterion, chosen once and kept in OUT/best_criterion.json."""
    path = os.path.join(s.out, "best_criterion.json")
    if not os.path.exists(path):
        doc = best_criterion(s)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    with open(path, encoding="utf-8") as f:
        return json.load(f)["criterion"]


def design(s: Scale) -> dict:
    """The power of part 2's paired comparisons, planned from PLANNED_SD before running."""
    n = len(s.seeds)
    return {
        "planned_sd_points": PLANNED_SD,
        "pairs": n,
        "min_detectable_difference_points": round(power.min_detectable_difference(PLANNED_SD, n), 2),
        "pairs_for_0.5_points": power.pairs_needed(0.5, PLANNED_SD),
        "pairs_for_1_point": power.pairs_needed(1.0, PLANNED_SD),
        "power": 0.8,
        "alpha": 0.05,
    }


def run_pool(jobs: list[Job], jobs_at_once: int, out: str, log=print) -> list[str]:
    """Runs the jobs, at most `jobs_at_once` at a time, each after its `after` jobs, in the
    order given; returns the names of the jobs that failed (their dependants are not run)."""
    pending = list(jobs)
    running: dict[str, tuple] = {}
    done, failed = set(), []
    while pending or running:
        for job in list(pending):
            if len(running) >= jobs_at_once:
                break
            if any(a in failed for a in job.after):
                pending.remove(job)
                failed.append(job.name)
                log(f"study: {job.name} not run: it needs {', '.join(job.after)}")
                continue
            if all(a in done for a in job.after):
                pending.remove(job)
                commands = [c for c in job.commands + (job.ready() if job.ready else []) if not _ablated(c)]
                running[job.name] = (_start(job.name, commands, out), time.time())
                log(f"study: {job.name} started ({time.strftime('%H:%M:%S')})")
        time.sleep(0.2)
        for name, (proc, started) in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                ok = proc.returncode == 0
                (done.add(name) if ok else failed.append(name))
                status = "done" if ok else f"FAILED (exit {proc.returncode}; see {out}/{name}.log)"
                log(f"study: {name} {status} in {time.time() - started:.0f} s; {len(pending)} waiting")
    return failed


def _ablated(command: list) -> bool:
    """Whether `command` is an `nac.ablate STEP_DIR` whose STEP_DIR/ablation.json exists (a
    rerun keeps it; the constructions are rerun, since nac.construct itself resumes or skips
    a finished run and refuses changed flags)."""
    if "nac.ablate" not in command:
        return False
    step = command[command.index("nac.ablate") + 1]
    return os.path.isfile(os.path.join(step, "ablation.json"))


def _start(name: str, commands: list, out: str):
    """One job: its commands one after the other in a shell, output in OUT/NAME.log."""
    script = " && ".join(" ".join(shlex.quote(a) for a in c) for c in commands) or "true"
    log = open(os.path.join(out, f"{name}.log"), "ab")
    return subprocess.Popen(["bash", "-c", script], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def run_dirs(s: Scale) -> list[str]:
    names = [f"mech_s{k}_{n}" for k in s.seeds for n in (*s.windows, s.final_steps)]
    for crit in ("l2", "random", "oracle", "best"):
        names += [f"construct_{crit}_s{k}" for k in s.seeds]
    names += [f"matched_s{k}" for k in s.seeds] + [f"retrain_r{k}" for k in range(1, s.retrains + 1)]
    return [os.path.join(s.out, n) for n in names]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (default 2)")
    parser.add_argument("--out", help="run directories (default runs/study, runs/study_pilot)")
    parser.add_argument("--report", help="report folder (default docs/study, OUT/report)")
    parser.add_argument("--data_dir", default=os.environ.get("NAC_DATA_DIR"), help="Fashion-MNIST files")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs nac")
    parser.add_argument("--dry_run", action="store_true", help="print the plan and the power; run nothing")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs={args.jobs}: needs at least 1")
    s = SCALES[args.scale]
    s = dataclasses.replace(
        s,
        out=args.out or s.out,
        report=args.report or (os.path.join(args.out, "report") if args.out else s.report),
    )
    common = common_flags(s, args.data_dir)
    jobs = part1_jobs(s, args.python, common) + part2_jobs(s, args.python, common)
    plan = design(s)
    print(f"study ({args.scale}): {len(jobs)} jobs into {s.out}, report into {s.report}")
    print(
        f"power, planned from a paired SD of {PLANNED_SD} points: {plan['pairs']} pairs detect "
        f"{plan['min_detectable_difference_points']} points at 80% power (two-sided paired t, 5%); "
        f"0.5 points needs {plan['pairs_for_0.5_points']} pairs, 1 point {plan['pairs_for_1_point']}"
    )
    if args.dry_run:
        for job in jobs:
            after = (
                f" (after {', '.join(job.after) if len(job.after) < 3 else 'part 1'})" if job.after else ""
            )
            what = " | ".join(" ".join(a for a in c[1:] if a not in common) for c in job.commands)
            print(f"  {job.name}{after}: {what or 'the best criterion of part 1, chosen when it is done'}")
        return 0
    os.makedirs(s.out, exist_ok=True)
    with open(os.path.join(s.out, "design.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"scale": args.scale, **dataclasses.asdict(s), "envelope": ENVELOPE, "power": plan}, f, indent=1
        )
    start = time.time()
    failed = run_pool(jobs, args.jobs, s.out)
    if failed:
        print(f"study: {len(failed)} job(s) failed: {', '.join(failed)}; rerun to resume", file=sys.stderr)
        return 1
    # PNG only: the study's report has 32+ per-step figures, and docs/study is in the repository.
    report = [args.python, "-m", "nac.report", *run_dirs(s), "--out", s.report, "--formats=png"]
    code = subprocess.call(report, cwd=ROOT)
    print(f"study ({args.scale}) finished in {time.time() - start:.0f} s; report in {s.report}/report.md")
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `--dry_run | head`: the reader left; no traceback, as nac's commands
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
