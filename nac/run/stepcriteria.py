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
from nac.spec.errors import RunError
from nac.spec.jsonio import write_json

SNIP_BATCHES = 4
SCALE = "global_batch_size x per-image value (the original's scale; rankings unchanged)"


def recorded_statistics(config) -> tuple[str, ...]:
    """The statistics the featuremap taps of a step of this run accumulate."""
    names = criteria_lib.RECORDED_NAMES
    return tuple(n for n in names if not (n == "taylor" and config.mixed_precision))


def logged_statistics(config) -> tuple[str, ...]:
    """What `res.log` and `stats_series.json` hold: MeanSSS, and the driving criterion."""
    return ("l2",) if config.statistic == "l2" else ("l2", config.statistic)


def at_start(config, model, data) -> dict[str, dict[str, float]]:
    """The criteria computed before the window: `{"snip": ...}` when it drives, else `{}`."""
    if config.statistic != "snip":
        return {}
    from nac.net import criteria as net_criteria

    batches = data.train(config.batch_size, augment=False).take(SNIP_BATCHES)
    return {"snip": net_criteria.snip(model, batches)}


def at_end(config, model, seed: int, data=None) -> dict[str, dict[str, float]]:
    """The criteria read after the window: `l1_kernel` and `random` (cheap: always), and
    `oracle` when it drives (`oracle_values`)."""
    from nac.net import criteria as net_criteria
    from nac.net import model as model_lib

    branches = list(model_lib.taps(model))
    out = {
        "l1_kernel": net_criteria.l1_kernel(model),
        "random": criteria_lib.random_values(branches, seed),
    }
    if config.statistic == "oracle":
        out["oracle"] = oracle_values(config, model, data)
    return out


def oracle_values(config, model, data) -> dict[str, float]:
    """The `oracle` criterion: per branch, the ablation's `delta_loss` (the loss increase on
    the `--validation_examples` held-out training images when the branch's featuremap is
    zeroed, the evaluation weights as at the window's end). Computed by the ablation code;
    until that is present the criterion is refused here."""
    raise RunError(
        "--statistic=oracle: the branch ablation that computes it is not part of this build; "
        "use another --statistic"
    )


def write(directory, config, values, trained: bool = True) -> dict[str, float]:
    """Writes `criteria.json` (`{"format", "driving", "scale", "batch_size", "criteria":
    {name: {branch_id: value}}}`) from per-image `values`, and, for a step without training
    window (`trained=False`, `--construction_steps=0`), `stats.json` and `res.log` of the
    driving criterion alone. Returns the driving criterion's values on the files' scale."""
    directory = os.fspath(directory)
    scaled = statsio.to_original_scale(values, config.batch_size)
    doc = criteria_lib.criteria_document(scaled, config.statistic, SCALE)
    doc["batch_size"] = config.batch_size
    write_json(os.path.join(directory, criteria_lib.CRITERIA_FILE), doc)
    if not trained:
        statsio.write_stats(directory, {config.statistic: scaled[config.statistic]}, config.statistic)
    return dict(scaled[config.statistic])
