"""Experiments: stable assignment matching the weights, and the statistics of results."""

import math

import numpy as np
import pytest
from scipy import stats

from recommend.experiments import (
    assign,
    bucket,
    chi_square,
    experiment_analyse,
    prob_beats,
    thompson_weights,
    two_proportion_z,
    wilson_interval,
)

WEIGHTS = [("control", 45.0), ("treatment", 45.0), ("holdout", 10.0)]


def test_assignment_is_stable_and_matches_the_weights_over_10000_subjects():
    subjects = [f"{i:032x}" for i in range(10_000)]
    first = [assign(s, "home-test", WEIGHTS) for s in subjects]
    assert first == [assign(s, "home-test", WEIGHTS) for s in subjects]  # stable
    counts = [first.count(name) for name, _ in WEIGHTS]
    expected = [10_000 * w / 100 for _, w in WEIGHTS]
    # Chi-square goodness of fit: the split is what the weights say (p well above 0.001).
    assert stats.chisquare(counts, expected).pvalue > 0.001
    for count, want in zip(counts, expected, strict=True):
        assert abs(count - want) < 4 * math.sqrt(want)
    # Another experiment splits the same subjects independently of this one.
    other = [assign(s, "other-test", WEIGHTS) for s in subjects]
    agree = sum(a == b for a, b in zip(first, other, strict=True)) / len(subjects)
    assert abs(agree - (0.45**2 + 0.45**2 + 0.1**2)) < 0.03


def test_buckets_are_uniform():
    values = np.array([bucket(f"s{i}", "x") for i in range(5000)])
    assert values.min() >= 0 and values.max() < 1
    assert stats.kstest(values, "uniform").pvalue > 0.001


def test_zero_weight_variants_get_nobody():
    assert {assign(f"s{i}", "x", [("a", 0), ("b", 1)]) for i in range(200)} == {"b"}
    with pytest.raises(ValueError):
        assign("s", "x", [("a", 0)])


def test_wilson_and_z_test_against_known_values():
    low, high = wilson_interval(50, 1000)
    assert low == pytest.approx(0.0381, abs=1e-4) and high == pytest.approx(0.0653, abs=1e-4)
    z, p = two_proportion_z(100, 2000, 140, 2000)
    # By hand: pooled 0.06, se sqrt(0.06 * 0.94 * 2 / 2000) = 0.0075100, z = 0.02 / se.
    assert z == pytest.approx(2.66312, abs=1e-4) and p == pytest.approx(0.007742, abs=1e-5)
    chi2, chi_p = chi_square([100, 140], [2000, 2000])
    assert chi2 == pytest.approx(z * z, rel=1e-6) and chi_p == pytest.approx(p, rel=1e-6)


def test_bayesian_probability_to_beat_control():
    assert prob_beats((100, 2000), (140, 2000)) > 0.99
    assert prob_beats((100, 2000), (100, 2000)) == pytest.approx(0.5, abs=0.02)
    assert prob_beats((140, 2000), (100, 2000)) < 0.01


def test_thompson_weights_favour_the_better_arm_and_keep_exploring():
    shares = thompson_weights({"a": (100, 2000), "b": (160, 2000)}, seed=1)
    assert shares["b"] > 0.95 and shares["a"] >= 0.0099
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    # An arm without data yet is explored: its uniform prior often draws the best.
    assert thompson_weights({"a": (100, 2000), "new": (0, 0)}, seed=1)["new"] > 0.5


def test_results_warn_while_the_sample_is_small():
    arms = [{"name": "control", "is_control": True, "is_holdout": False, "impressions": 300,
             "clicks": 12, "conversions": 3, "revenue": 30.0},
            {"name": "knn", "is_control": False, "is_holdout": False, "impressions": 310,
             "clicks": 20, "conversions": 5, "revenue": 55.0}]
    result = experiment_analyse(arms, min_impressions=1000)
    assert len(result.warnings) == 2 and "too few" in result.warnings[0]
    control, knn = result.arms
    assert control.z is None and knn.p_value is not None and 0 < knn.prob_beats_control < 1
    assert knn.ctr == pytest.approx(20 / 310) and knn.ctr_low < knn.ctr < knn.ctr_high
    assert experiment_analyse(arms, min_impressions=100).warnings == []


def test_an_arm_without_impressions_has_no_test_figures():
    arms = [{"name": "control", "is_control": True, "is_holdout": False, "impressions": 50,
             "clicks": 5, "conversions": 0, "revenue": 0.0},
            {"name": "new", "is_control": False, "is_holdout": False, "impressions": 0,
             "clicks": 0, "conversions": 0, "revenue": 0.0}]
    new = experiment_analyse(arms, min_impressions=10).arms[1]
    assert new.z is None and new.p_value is None and new.prob_beats_control is None
