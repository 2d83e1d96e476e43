"""Rank agreement of featuremap statistics: Kendall's tau-b, its stage average, stability.

The measures behind the stability stop (`nac.search.stopping`) and the report's stability
section (`nac.reporting.stability`). Pure Python and NumPy.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_THRESHOLD = 0.9


def kendall_tau_b(x, y) -> float:
    """Kendall's rank correlation tau-b of two equally long sequences (ties allowed).

    tau_b = (concordant - discordant) / sqrt((n0 - ties_x) * (n0 - ties_y)), n0 = n(n-1)/2,
    computed over all pairs with numpy. Returns NaN when either sequence is constant (or has
    fewer than two elements): the ranking says nothing there.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau_b: shapes {x.shape} and {y.shape}; expected two equal 1-D shapes")
    i, j = np.triu_indices(len(x), k=1)
    sx = np.sign(x[i] - x[j])
    sy = np.sign(y[i] - y[j])
    untied_x = np.count_nonzero(sx)
    untied_y = np.count_nonzero(sy)
    if untied_x == 0 or untied_y == 0:
        return float("nan")
    return float(np.sum(sx * sy) / math.sqrt(float(untied_x) * float(untied_y)))


def weighted_tau(per_stage) -> float:
    """The mean of per-stage taus weighted by branch count: `[(branches, tau), ...]` in.

    NaN taus (a stage whose ranking is all ties) are left out; NaN when none is left.
    """
    pairs = [(w, v) for w, v in per_stage if not math.isnan(v)]
    weight = sum(w for w, _ in pairs)
    return sum(w * v for w, v in pairs) / weight if weight else float("nan")


def stable_from(steps, taus, threshold: float):
    """The first recorded step from which every later tau is >= `threshold`, else None.

    NaN taus (no ranking) count as below the threshold.
    """
    start = None
    for step, tau in zip(steps, taus):
        if tau is not None and not math.isnan(tau) and tau >= threshold:
            if start is None:
                start = step
        else:
            start = None
    return start
