"""Experiments: deterministic assignment of subjects to variants, and the statistics of
their results (intervals, z-test, chi-square, Bayesian probability to beat control,
Thompson-sampling weights). Pure functions: no Django.
"""

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z_95 = 1.959963984540054


def bucket(subject: str, experiment: str) -> float:
    """A number in [0, 1) fixed by the subject and the experiment (SHA-256 of both)."""
    digest = hashlib.sha256(f"{experiment}\x1f{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(subject: str, experiment: str, weights: Sequence[tuple[str, float]]) -> str:
    """The variant of a subject: weights split [0, 1) in the given order."""
    total = sum(max(w, 0.0) for _, w in weights)
    if total <= 0:
        raise ValueError("an experiment needs a variant with a positive weight")
    point = bucket(subject, experiment) * total
    edge = 0.0
    for name, weight in weights:
        edge += max(weight, 0.0)
        if point < edge:
            return name
    return next(name for name, w in reversed(weights) if w > 0)  # rounding at the very top


# --- statistics -----------------------------------------------------------------------


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (0, 0 without trials)."""
    if trials <= 0:
        return 0.0, 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) of the difference between proportions s2/n2 and s1/n1 (pooled)."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (s2 / n2 - s1 / n1) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def chi_square(successes: Sequence[int], trials: Sequence[int]) -> tuple[float, float]:
    """(chi2, p) of the independence test of success/failure across all arms."""
    table = np.array([[s, n - s] for s, n in zip(successes, trials, strict=True) if n > 0],
                     dtype=float)
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        return 0.0, 1.0
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    return float(chi2), float(p)


def prob_beats(control: tuple[int, int], variant: tuple[int, int], *, draws: int = 40_000,
               seed: int = 7) -> float:
    """P(variant's rate > control's) under Beta(1 + s, 1 + n - s) posteriors (Monte Carlo,
    seeded, so the same counts give the same figure)."""
    rng = np.random.default_rng(seed)
    (cs, cn), (vs, vn) = control, variant
    a = rng.beta(1 + cs, 1 + max(cn - cs, 0), draws)
    b = rng.beta(1 + vs, 1 + max(vn - vs, 0), draws)
    return float((b > a).mean())


def thompson_weights(counts: Mapping[str, tuple[int, int]], *, draws: int = 20_000,
                     seed: int | None = None, floor: float = 0.01) -> dict[str, float]:
    """Thompson sampling as allocation: each arm's share is the probability that its
    Beta posterior draw is the best (every arm keeps at least ``floor``)."""
    names = list(counts)
    if not names:
        return {}
    rng = np.random.default_rng(seed)
    samples = np.stack([rng.beta(1 + s, 1 + max(n - s, 0), draws) for s, n in counts.values()])
    wins = np.bincount(samples.argmax(axis=0), minlength=len(names)) / draws
    shares = np.maximum(wins, floor)
    shares /= shares.sum()
    return {name: round(float(share), 4) for name, share in zip(names, shares, strict=True)}


@dataclass(frozen=True)
class ArmResult:
    """One variant's counts and figures (CTR = clicks / impressions)."""

    name: str
    is_control: bool
    is_holdout: bool
    impressions: int
    clicks: int
    conversions: int
    revenue: float
    ctr: float
    ctr_low: float
    ctr_high: float
    conversion_rate: float  # conversions per impression
    conversion_low: float
    conversion_high: float
    z: float | None
    p_value: float | None
    prob_beats_control: float | None


@dataclass(frozen=True)
class ExperimentResult:
    arms: list[ArmResult]
    chi2: float
    chi2_p: float
    warnings: list[str]


def experiment_analyse(arms: Sequence[Mapping], *, min_impressions: int) -> ExperimentResult:
    """Figures per arm from counts: ``arms`` are mappings with name, is_control, is_holdout,
    impressions, clicks, conversions and revenue; the first control is the reference."""
    control = next((a for a in arms if a["is_control"]), arms[0] if arms else None)
    results, warnings = [], []
    for arm in arms:
        n, clicks, conversions = arm["impressions"], arm["clicks"], arm["conversions"]
        low, high = wilson_interval(clicks, n)
        conv_low, conv_high = wilson_interval(min(conversions, n), n)
        z = p = beats = None
        if control is not None and arm is not control and n and control["impressions"]:
            z, p = two_proportion_z(control["clicks"], control["impressions"], clicks, n)
            beats = prob_beats((control["clicks"], control["impressions"]), (clicks, n))
        results.append(ArmResult(
            name=arm["name"], is_control=arm is control, is_holdout=arm["is_holdout"],
            impressions=n, clicks=clicks, conversions=conversions, revenue=arm["revenue"],
            ctr=clicks / n if n else 0.0, ctr_low=low, ctr_high=high,
            conversion_rate=conversions / n if n else 0.0, conversion_low=conv_low,
            conversion_high=conv_high, z=z, p_value=p, prob_beats_control=beats))
        if n < min_impressions:
            warnings.append(f"{arm['name']}: {n:,} impressions, under the {min_impressions:,} "
                            "needed: too few to conclude")
        elif min(clicks, n - clicks) < 5:
            warnings.append(f"{arm['name']}: fewer than 5 clicks (or non-clicks): the normal "
                            "approximation of the z-test does not hold yet")
    chi2, chi2_p = chi_square([a["clicks"] for a in arms], [a["impressions"] for a in arms])
    return ExperimentResult(arms=results, chi2=chi2, chi2_p=chi2_p, warnings=warnings)
