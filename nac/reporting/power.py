"""What a paired design can detect: Student t quantiles, power and the smallest difference.

A study compares roles paired by seed: n differences d_i with standard deviation `sd`, tested
two-sided with the paired t test at level `alpha`. Its power against a true difference `delta`
is P(|T| > t_crit) with T noncentral t (n - 1 degrees of freedom, noncentrality
delta * sqrt(n) / sd). It is computed here by Monte Carlo with a fixed seed (exact to about
+-0.005 with the default draws), so the smallest detectable difference at a power (80% by
default) is found by bisection on delta. NumPy only; quantiles of the central t from its
density integrated numerically (`t_quantile`), checked against tables in the tests.
"""

from __future__ import annotations

import functools
import math

import numpy as np

DRAWS = 100_000
SEED = 0


def t_cdf(x: float, df: int) -> float:
    """P(T <= x) for Student's t with `df` degrees of freedom (numerical integration)."""
    if df < 1:
        raise ValueError(f"t_cdf: df={df}; needs at least 1 degree of freedom")
    if x < 0:
        return 1.0 - t_cdf(-x, df)
    # P(0 <= T <= x) by the substitution t = tan(u) on [0, atan(x)]: smooth, bounded interval.
    u = np.linspace(0.0, math.atan(x), 4001)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    t = np.tan(u)
    f = np.exp(log_c - (df + 1) / 2 * np.log1p(t * t / df)) / np.cos(u) ** 2
    h = u[1] - u[0]
    integral = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return 0.5 + float(integral)


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The x with P(T <= x) = p (bisection on `t_cdf`)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p={p}; needs 0 < p < 1")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


@functools.lru_cache(maxsize=64)
def _standard_draws(n: int, draws: int) -> tuple:
    """Means and standard deviations of `draws` samples of n standard normals (fixed seed):
    every power below reuses them, so the bisections run on common random numbers."""
    z = np.random.default_rng(SEED).standard_normal((draws, n))
    return z.mean(axis=1), z.std(axis=1, ddof=1)


def paired_power(delta: float, sd: float, n: int, alpha: float = 0.05, draws: int = DRAWS) -> float:
    """Power of the two-sided paired t test with n pairs against a true difference `delta`."""
    if n < 2:
        raise ValueError(f"paired_power: n={n}; a paired t test needs at least 2 pairs")
    if sd <= 0:
        raise ValueError(f"paired_power: sd={sd}; needs a positive standard deviation")
    crit = t_quantile(1 - alpha / 2, n - 1)
    mean_z, sd_z = _standard_draws(n, draws)
    t = (mean_z + delta / sd) / (sd_z / math.sqrt(n))  # differences delta + sd * z
    return float(np.mean(np.abs(t) > crit))


def min_detectable_difference(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true difference the paired t test with n pairs detects with `power`."""
    lo, hi = 0.0, sd
    while paired_power(hi, sd, n, alpha) < power:
        hi *= 2.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if paired_power(mid, sd, n, alpha) < power else (lo, mid)
    return (lo + hi) / 2


def pairs_needed(delta: float, sd: float, power: float = 0.8, alpha: float = 0.05, most: int = 400) -> int:
    """The fewest pairs that detect `delta` with `power` (ValueError beyond `most`)."""
    n = 2
    while paired_power(delta, sd, n, alpha) < power:
        n += 1
        if n > most:
            raise ValueError(f"pairs_needed: more than {most} pairs for delta={delta}, sd={sd}")
    return n


def t_interval(values, level: float = 0.95) -> tuple[float, float] | None:
    """The t interval of the mean of `values` (None with fewer than 2 values)."""
    v = np.asarray(list(values), np.float64)
    if v.size < 2:
        return None
    half = t_quantile(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean() - half), float(v.mean() + half)
