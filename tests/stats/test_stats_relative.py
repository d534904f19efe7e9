"""Relative delta: point estimate and delta-method standard error, hand-derived."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warehouse_native.stats import Moments, compare
from warehouse_native.stats.distributions import t_ppf


def _moments(n: int, mean: float, var: float) -> Moments:
    """Sums of n values with the given sample mean and variance (n − 1 divisor)."""
    s = n * mean
    return Moments(n=n, sum=s, sum_sq=var * (n - 1) + s * s / n)


def test_hand_derived_relative():
    # control: n=100, mean 10, var 25 -> Var(mean) = 0.25; variant: n=200, mean 12, var 36 -> 0.18
    c, t = _moments(100, 10.0, 25.0), _moments(200, 12.0, 36.0)
    res = compare(c, t)
    assert res.rel_delta == pytest.approx(0.2, rel=1e-12)
    # Var((t - c)/|c|) = Var(t)/c² + t²·Var(c)/c⁴ = 0.18/100 + 144·0.25/10000 = 0.0018 + 0.0036
    assert res.rel_std_error == pytest.approx(math.sqrt(0.0054), rel=1e-10)
    assert res.std_error == pytest.approx(math.sqrt(0.43), rel=1e-10)
    # df (Welch–Satterthwaite): 0.43² / (0.18²/199 + 0.25²/99)
    df = 0.43**2 / (0.18**2 / 199 + 0.25**2 / 99)
    assert res.dof == pytest.approx(df, rel=1e-10)
    q = t_ppf(0.975, df)
    assert res.rel_ci_lower == pytest.approx(0.2 - q * math.sqrt(0.0054), rel=1e-10)
    assert res.rel_ci_upper == pytest.approx(0.2 + q * math.sqrt(0.0054), rel=1e-10)


def test_negative_control_mean_uses_absolute_value():
    c, t = _moments(100, -10.0, 25.0), _moments(200, -8.0, 36.0)
    res = compare(c, t)
    # (−8 − (−10)) / |−10| = +0.2: the metric went up
    assert res.rel_delta == pytest.approx(0.2, rel=1e-12)
    # Var = Var(t)/c² + t²·Var(c)/c⁴ = 0.18/100 + 64·0.25/10000
    assert res.rel_std_error == pytest.approx(math.sqrt(0.0018 + 0.0016), rel=1e-10)
    assert res.rel_ci_lower < 0.2 < res.rel_ci_upper


def test_one_sided_relative_intervals():
    c, t = _moments(100, 10.0, 25.0), _moments(200, 12.0, 36.0)
    inc = compare(c, t, alternative="increase")
    dec = compare(c, t, alternative="decrease")
    q = t_ppf(0.95, inc.dof)
    assert inc.rel_ci_upper is None and inc.rel_ci_lower == pytest.approx(0.2 - q * inc.rel_std_error)
    assert dec.rel_ci_lower is None and dec.rel_ci_upper == pytest.approx(0.2 + q * dec.rel_std_error)
    assert inc.p_value + dec.p_value == pytest.approx(1.0)


def test_relative_se_matches_simulated_spread():
    """The delta-method SE of the relative delta agrees with its spread over repeated samples."""
    rng = np.random.default_rng(11)
    reps, n = 4000, 300
    c = rng.gamma(2.0, 2.5, (reps, n))
    t = rng.gamma(2.0, 2.5, (reps, n)) * 1.1
    rel = t.mean(1) / c.mean(1) - 1.0
    res = compare(Moments.from_values(c[0]), Moments.from_values(t[0]))
    assert res.rel_std_error == pytest.approx(rel.std(ddof=1), rel=0.08)
