"""Results over several seeds, stated as a paper states them: the mean with a 95% interval that stays inside the
range of its metric, a comparison as the paired difference over the same seeds, and a verdict no stronger than
its interval.

What an interval covers: the spread of the result over training seeds (initial weights, batch order, dropout
and, where the seed draws it, the data), evaluated on one fixed test set. It does not cover the sampling error
of that test set itself (about ±0.02 at accuracy 0.9 on 1,000 examples): the same models on another test set
of the same size would score differently by about that much more.

Two constructions, one per kind of metric:

- A metric without bounds (a loss, seconds): the Student-t interval, mean ± t(0.975, n - 1) · s / sqrt(n).
- A metric with bounds [a, b] (an accuracy in [0, 1]; a difference of accuracies in [-1, 1]): the Wilson score
  interval at the effective sample size the seeds imply. Mapped to u in [0, 1], with mean m and sample variance
  s² over n seeds, the seeds behave like n_eff = m (1 - m) n / s² Bernoulli trials (the design effect of survey
  statistics); the Wilson interval solves |m - p| <= t · sqrt(p (1 - p) / n_eff) for p. It lies inside [a, b],
  always holds the mean, is the Student-t interval when the mean is far from the bounds, and bends away from a
  bound as the mean nears it, where a symmetric interval would cross it (an accuracy of 0.996 over five seeds
  gets [0.98, 0.999], not [0.989, 1.003]).

With one seed there is no interval (None); seeds that all agree give the point [m, m]. A claim "A > B" is
"supported" when the whole interval of the paired difference A - B lies above the margin it names, "refuted"
when it lies wholly below, and "not shown" when the interval straddles it (the seeds cannot decide).
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np

CONFIDENCE = 0.95
VERDICTS = ("supported", "refuted", "not shown")
ACCURACY_RANGE = (0.0, 1.0)
COVERS = ("95% intervals over training seeds on one fixed test set; they leave out that test set's own sampling "
          "error")


def sampling_error(accuracy: float, examples: int, confidence: float = CONFIDENCE) -> float:
    """The half-width of the normal interval of an accuracy measured on ``examples`` test examples: the test set's
    own sampling error, which intervals over seeds on one test set leave out."""
    z = t_critical(10**9, confidence)  # the normal quantile, t with unbounded degrees of freedom
    return z * math.sqrt(accuracy * (1.0 - accuracy) / examples)


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast below the mean of Beta(a, b)
        return 1.0 - _incomplete_beta(1.0 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 10_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * fraction


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t > 0 else tail


@functools.lru_cache(maxsize=None)
def t_critical(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t critical value t(1 - (1 - confidence) / 2, df), found by bisection on ``t_cdf``
    (no scipy: the commands that print an interval should not load it for one number)."""
    if df < 1:
        raise ValueError(f"a t critical value needs at least 1 degree of freedom, got {df}")
    target = 1.0 - (1.0 - confidence) / 2.0
    low, high = 0.0, 1.0
    while t_cdf(high, df) < target:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < target:
            low = middle
        else:
            high = middle
        if high - low < 1e-13 * high:
            break
    return (low + high) / 2.0


def _check_range(values: np.ndarray, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not low < high:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    outside = values[(values < low) | (values > high)]
    if outside.size:
        raise ValueError(f"values must lie in [{low:g}, {high:g}] for a bounded interval, got {outside[0]!r}")


def _bounded(values: np.ndarray, bounds: tuple[float, float], critical: float) -> tuple[float, float]:
    """The Wilson interval at the seeds' effective sample size (module docstring), in the metric's own units."""
    low, high = bounds
    u = (values - low) / (high - low)
    n, m, variance = u.size, float(u.mean()), float(u.var(ddof=1))
    if variance == 0.0:
        found = (m, m)
    else:
        n_eff = m * (1.0 - m) * n / variance
        q2 = critical * critical
        centre = (m + q2 / (2.0 * n_eff)) / (1.0 + q2 / n_eff)
        half = critical / (1.0 + q2 / n_eff) * math.sqrt(variance / n + q2 / (4.0 * n_eff * n_eff))
        found = (max(0.0, min(centre - half, m)), min(1.0, max(centre + half, m)))
    return low + (high - low) * found[0], low + (high - low) * found[1]


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE,
                  bounds: tuple[float, float] | None = None) -> dict:
    """{"mean", "low", "high", "n", "sd"} of the values; low, high and sd are None for a single value.

    ``bounds``: the metric's range, e.g. ``ACCURACY_RANGE``; the interval then stays inside it (module docstring).
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"mean_interval needs a non-empty list of numbers, got shape {values.shape}")
    if bounds is not None:
        _check_range(values, bounds)
    mean = float(values.mean())
    if values.size == 1:
        return {"mean": mean, "low": None, "high": None, "n": 1, "sd": None}
    sd = float(values.std(ddof=1))
    critical = t_critical(values.size - 1, confidence)
    if bounds is None:
        half = critical * sd / math.sqrt(values.size)
        low, high = mean - half, mean + half
    else:
        low, high = _bounded(values, bounds, critical)
    return {"mean": mean, "low": low, "high": high, "n": int(values.size), "sd": sd}


def bounds_of(metric: str) -> tuple[float, float] | None:
    """The range of a metric named as metrics.json names it: accuracies lie in [0, 1]; losses have no bound."""
    return ACCURACY_RANGE if "accuracy" in metric else None


def interval(values: Sequence[float], bounds: tuple[float, float] | None = None) -> list[float] | None:
    """[low, high] of the 95% interval of the mean, or None for a single value (what ``*_ci95`` fields hold)."""
    found = mean_interval(values, bounds=bounds)
    return None if found["low"] is None else [found["low"], found["high"]]


def paired_difference(a: Sequence[float], b: Sequence[float], bounds: tuple[float, float] | None = None) -> dict:
    """The mean of a - b over the same seeds, with its interval (``mean_interval``). ``bounds``: the range of a
    and b; the difference's interval then stays inside [low - high, high - low] (for accuracies [-1, 1])."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a paired difference needs the same seeds on both sides, got {a.shape} and {b.shape}")
    if bounds is not None:
        _check_range(a, bounds)
        _check_range(b, bounds)
        bounds = (bounds[0] - bounds[1], bounds[1] - bounds[0])
    return mean_interval(a - b, bounds=bounds)


def verdict(found: dict, above: float = 0.0) -> str:
    """"supported" if the interval lies wholly above ``above``, "refuted" if wholly below it, else "not shown".

    A single value (no interval) shows nothing."""
    if found["low"] is None:
        return "not shown"
    if found["low"] > above:
        return "supported"
    if found["high"] < above:
        return "refuted"
    return "not shown"


def summarize_members(record: dict, seeds: Sequence[int]) -> dict:
    """A history record of K members (every metric a list of K values) as the mean per metric, with
    ``<metric>_per_seed`` and ``<metric>_ci95`` beside it; other fields as they are."""
    summary = {}
    for key, value in record.items():
        if isinstance(value, list) and len(value) == len(seeds):
            summary[key] = float(np.mean(value))
            summary[f"{key}_ci95"] = interval(value, bounds_of(key))
            summary[f"{key}_per_seed"] = [float(v) for v in value]
        else:
            summary[key] = value
    return summary
