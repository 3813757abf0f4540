"""Results over several seeds, stated as a paper states them: the mean with a two-sided 95% Student-t interval,
a comparison as the paired difference over the same seeds, and a verdict no stronger than its interval.

With n seeds and sample standard deviation s, the interval is mean ± t(0.975, n - 1) · s / sqrt(n); with one
seed there is no interval (None). A claim "A > B" is "supported" when the whole interval of the paired
difference A - B lies above the margin it names, "refuted" when it lies wholly below, and "not shown" when
the interval straddles it (the seeds cannot decide).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
VERDICTS = ("supported", "refuted", "not shown")


def t_critical(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t critical value: t(1 - (1 - confidence) / 2, df)."""
    return float(stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, df))


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """{"mean", "low", "high", "n", "sd"} of the values; low, high and sd are None for a single value."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"mean_interval needs a non-empty list of numbers, got shape {values.shape}")
    mean = float(values.mean())
    if values.size == 1:
        return {"mean": mean, "low": None, "high": None, "n": 1, "sd": None}
    sd = float(values.std(ddof=1))
    half = t_critical(values.size - 1, confidence) * sd / math.sqrt(values.size)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(values.size), "sd": sd}


def interval(values: Sequence[float]) -> list[float] | None:
    """[low, high] of the 95% interval of the mean, or None for a single value (what ``*_ci95`` fields hold)."""
    found = mean_interval(values)
    return None if found["low"] is None else [found["low"], found["high"]]


def paired_difference(a: Sequence[float], b: Sequence[float]) -> dict:
    """The mean of a - b over the same seeds, with its interval (``mean_interval``)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a paired difference needs the same seeds on both sides, got {a.shape} and {b.shape}")
    return mean_interval(a - b)


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
            summary[f"{key}_ci95"] = interval(value)
            summary[f"{key}_per_seed"] = [float(v) for v in value]
        else:
            summary[key] = value
    return summary
