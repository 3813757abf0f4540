"""Statistics over seeds: the Student-t critical values against their closed forms, the t-interval of an unbounded
metric and the Wilson-type interval of a bounded one by hand, paired differences and the three verdicts."""
from __future__ import annotations

import math

import pytest
from helpers import wilson_by_hand

from jaxhw.intervals import (
    ACCURACY_RANGE,
    mean_interval,
    paired_difference,
    sampling_error,
    t_cdf,
    t_critical,
    verdict,
)

T2 = math.sqrt(2 * 0.9025 / 0.0975)  # t(0.975, 2), below
T4 = 2.7764451051977934  # t(0.975, 4): the root of the closed-form CDF of df = 4, found in the test below


def test_t_distribution_matches_its_closed_forms():
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t) / pi, so t(0.975) = tan(pi (0.975 - 1/2)).
    # df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so t / sqrt(2 + t^2) = 0.95 and t^2 = 2 * 0.9025 / (1 - 0.9025).
    # df = 4: F(t) = 1/2 + (3/4) x (1 - x^2 / 3) with x = t / sqrt(4 + t^2). Large df tends to the normal's.
    for t in (-3.0, -0.5, 0.0, 0.7, 12.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
        x = t / math.sqrt(4 + t * t)
        assert t_cdf(t, 4) == pytest.approx(0.5 + 0.75 * x * (1 - x * x / 3), abs=1e-12)
    assert t_critical(1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-9)
    assert t_critical(2) == pytest.approx(T2, rel=1e-9)
    x = T4 / math.sqrt(4 + T4 * T4)
    assert 0.5 + 0.75 * x * (1 - x * x / 3) == pytest.approx(0.975, abs=1e-12)
    assert t_critical(4) == pytest.approx(T4, rel=1e-9)
    assert t_critical(10**6) == pytest.approx(1.959964, abs=1e-5)


def test_an_unbounded_metric_gets_the_student_t_interval():
    values = [0.90, 0.92, 0.97]
    found = mean_interval(values)
    sd = math.sqrt(sum((v - 0.93) ** 2 for v in values) / 2)
    half = T2 * sd / math.sqrt(3)
    assert (found["mean"], found["low"], found["high"]) == pytest.approx((0.93, 0.93 - half, 0.93 + half))
    assert mean_interval([0.5])["low"] is None and verdict(mean_interval([0.5])) == "not shown"


@pytest.mark.parametrize("values", [
    [0.99, 0.99, 0.75, 0.90, 0.88],  # spread out below 1: the t-interval reaches 1.025
    [0.99, 1.0, 1.0, 0.99, 1.0],  # at the bound: the t-interval reaches 1.003
    [0.02, 0.0, 0.01, 0.0, 0.0],  # at the other bound
])
def test_an_accuracy_interval_stays_inside_0_1_and_holds_the_mean(values):
    t_interval = mean_interval(values)
    assert t_interval["low"] < 0 or t_interval["high"] > 1  # the case the bounded interval is for
    found = mean_interval(values, bounds=ACCURACY_RANGE)
    assert 0 <= found["low"] <= found["mean"] <= found["high"] <= 1
    assert (found["low"], found["high"]) == pytest.approx(wilson_by_hand(values, T4), abs=1e-12)


def test_an_accuracy_far_from_its_bounds_gets_nearly_the_t_interval():
    values = [0.50, 0.60, 0.55, 0.52, 0.58]
    bounded, plain = mean_interval(values, bounds=ACCURACY_RANGE), mean_interval(values)
    assert bounded["low"] == pytest.approx(plain["low"], abs=1e-3)
    assert bounded["high"] == pytest.approx(plain["high"], abs=1e-3)


def test_seeds_that_agree_give_a_point_and_values_outside_the_range_are_refused():
    assert mean_interval([1.0, 1.0, 1.0], bounds=ACCURACY_RANGE)[("low")] == 1.0
    assert mean_interval([0.9, 0.9], bounds=ACCURACY_RANGE)["high"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\].*1.2"):
        mean_interval([0.9, 1.2], bounds=ACCURACY_RANGE)
    with pytest.raises(ValueError, match="non-empty"):
        mean_interval([])


def test_paired_differences_of_accuracies_stay_inside_minus_1_1():
    a, b = [1.0, 1.0, 1.0, 0.99], [0.0, 0.0, 0.03, 0.0]
    assert mean_interval([x - y for x, y in zip(a, b)])["high"] > 1
    found = paired_difference(a, b, bounds=ACCURACY_RANGE)
    assert -1 <= found["low"] <= found["mean"] <= found["high"] <= 1
    # The difference d in [-1, 1] is mapped to (d + 1) / 2 in [0, 1] and back.
    low, high = wilson_by_hand([(x - y + 1) / 2 for x, y in zip(a, b)], t_critical(3))
    assert (found["low"], found["high"]) == pytest.approx((2 * low - 1, 2 * high - 1), abs=1e-12)


def test_paired_differences_decide_a_steady_gap_where_the_levels_overlap():
    a, b = [0.80, 0.90, 0.70, 0.85], [0.78, 0.88, 0.69, 0.82]
    assert verdict(paired_difference(a, b, bounds=ACCURACY_RANGE)) == "supported"
    assert verdict(paired_difference(b, a, bounds=ACCURACY_RANGE)) == "refuted"
    assert verdict(paired_difference([0.8, 0.7, 0.9], [0.75, 0.78, 0.85])) == "not shown"
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([1, 2], [1, 2, 3])


def test_the_test_sets_sampling_error_is_the_normal_interval_of_a_proportion():
    # 1.959964 sqrt(p (1 - p) / n): at 0.9 on 1,000 examples 0.0186, at 0.5 on 100 examples 0.098.
    assert sampling_error(0.9, 1000) == pytest.approx(1.959964 * math.sqrt(0.09 / 1000), rel=1e-6)
    assert sampling_error(0.5, 100) == pytest.approx(0.0979982, rel=1e-6)
