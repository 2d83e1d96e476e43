"""The branch criteria of one trained step: what the taps record, what is computed around the
training window, and the files (`stats.json`, `res.log`, `criteria.json`).

Every trained step records `l2`, `variance` and `taylor` in the featuremap taps (`taylor` not
under mixed precision, where the loss scale would enter the gradients) and writes them side by
side into `criteria.json`; the driving criterion (`--statistic`) goes into `stats.json` and,
after the MeanSSS lines as ever, into `res.log` under its tag (`nac.search.criteria`). A
criterion that is not recorded is computed at the window's start (`snip`, from
`SNIP_BATCHES` training batches without augmentation) or end (`l1_kernel` from the kernels,
`random` from the step's seed) and is added to `criteria.json` too.

Scale: every file holds global batch size x the per-image value (the scale `stats.json`
always had), for every criterion alike: one constant factor, so no ranking changes.
"""

from __future__ import annotations

import os

from nac.search import criteria as criteria_lib
from nac.search import statsio
from nac.spec.jsonio import write_json

SNIP_BATCHES = 4
SCALE = "global_batch_size x per-image value (the original's scale; rankings unchanged)"


def recorded_statistics(config) -> tuple[str, ...]:
    """The statistics the featuremap taps of a step of this run accumulate."""
    names = criteria_lib.RECORDED_NAMES
    return tuple(n for n in names if not (n == "taylor" and config.training.mixed_precision))


def logged_statistics(config) -> tuple[str, ...]:
    """What `res.log` and `stats_series.json` hold: MeanSSS, and the driving criterion."""
    statistic = config.statistic.statistic
    return ("l2",) if statistic == "l2" else ("l2", statistic)


def at_start(config, model, data) -> dict[str, dict[str, float]]:
    """The criteria computed before the window: `{"snip": ...}` when it drives, else `{}`."""
    if config.statistic.statistic != "snip":
        return {}
    from nac.net import criteria as net_criteria

    batches = data.train(config.training.batch_size, augment=False).take(SNIP_BATCHES)
    return {"snip": net_criteria.snip(model, batches)}


def at_end(config, model, seed: int, data=None, records=None) -> dict[str, dict[str, float]]:
    """The criteria read after the window: `l1_kernel` and `random` (cheap: always), and
    `oracle` when it drives (`nac.run.ablate.oracle_values`: the loss increase on the
    `--validation_examples` held-out training images when a branch's featuremap is zeroed,
    the evaluation weights as at the window's end). `records`, when given, receives the
    oracle's record for `metrics.json` (`{"oracle": {"examples", "base_loss", ...}}`)."""
    from nac.net import criteria as net_criteria
    from nac.net import model as model_lib

    branches = list(model_lib.taps(model))
    out = {
        "l1_kernel": net_criteria.l1_kernel(model),
        "random": criteria_lib.random_values(branches, seed),
    }
    if config.statistic.statistic == "oracle":
        from nac.run import ablate as ablate_lib

        record = ablate_lib.oracle_values(model, data, config)
        out["oracle"] = record.pop("values")
        if records is not None:
            records["oracle"] = record
    return out


def write(directory, config, values, trained: bool = True) -> dict[str, float]:
    """Writes `criteria.json` (`{"format", "driving", "scale", "batch_size", "criteria":
    {name: {branch_id: value}}}`) from per-image `values`, and, for a step without training
    window (`trained=False`, `--construction_steps=0`), `stats.json` and `res.log` of the
    driving criterion alone. Returns the driving criterion's values on the files' scale."""
    directory = os.fspath(directory)
    batch, statistic = config.training.batch_size, config.statistic.statistic
    scaled = statsio.to_original_scale(values, batch)
    doc = criteria_lib.criteria_document(scaled, statistic, SCALE)
    doc["batch_size"] = batch
    write_json(os.path.join(directory, criteria_lib.CRITERIA_FILE), doc)
    if not trained:
        statsio.write_stats(directory, {statistic: scaled[statistic]}, statistic)
    return dict(scaled[statistic])
