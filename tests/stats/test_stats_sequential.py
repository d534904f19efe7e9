"""Sequential (mSPRT) comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warehouse_native.stats import Moments, StatsInputError, compare, sequential_compare
from warehouse_native.stats.sequential import msprt


def test_msprt_formula_by_hand():
    est, v, tau, alpha = 0.3, 0.01, 0.2, 0.05
    lam = math.sqrt(v / (v + tau**2)) * math.exp(est**2 * tau**2 / (2 * v * (v + tau**2)))
    half = math.sqrt(v * (v + tau**2) / tau**2 * (2 * math.log(1 / alpha) + math.log((v + tau**2) / v)))
    p, lo, hi = msprt(est, v, tau, alpha)
    assert p == pytest.approx(min(1.0, 1 / lam), rel=1e-12)
    assert (lo, hi) == pytest.approx((est - half, est + half), rel=1e-12)
    # the CS boundary is where the p-value crosses alpha
    assert msprt(half, v, tau, alpha)[0] == pytest.approx(alpha, rel=1e-9)


def test_wider_than_fixed_horizon_and_consistent():
    rng = np.random.default_rng(2)
    c = Moments.from_values(rng.exponential(1.0, 5000))
    t = Moments.from_values(rng.exponential(1.05, 5000))
    fixed = compare(c, t)
    seq = sequential_compare(c, t)
    assert seq.reason is None
    assert seq.ci_lower < fixed.abs_ci_lower < fixed.abs_ci_upper < seq.ci_upper
    assert seq.rel_ci_lower < fixed.rel_ci_lower < fixed.rel_ci_upper < seq.rel_ci_upper
    assert seq.p_value >= fixed.p_value
    assert seq.abs_delta == fixed.abs_delta and seq.rel_delta == fixed.rel_delta
    # p ≤ α exactly when the confidence sequence excludes 0
    assert (seq.p_value <= 0.05) == (seq.ci_lower > 0 or seq.ci_upper < 0)
    # the absolute mixture sd is mixture_sd·|control mean|
    p, lo, hi = msprt(fixed.abs_delta, fixed.std_error**2, 0.05 * fixed.control_mean, 0.05)
    assert (seq.p_value, seq.ci_lower, seq.ci_upper) == pytest.approx((p, lo, hi), rel=1e-12)


def test_zero_control_mean_needs_abs_mixture_sd():
    c = Moments.from_values([-1.0, 1.0, -2.0, 2.0])
    t = Moments.from_values([0.0, 1.0, 3.0, 2.0])
    res = sequential_compare(c, t)
    assert res.p_value is None and "abs_mixture_sd" in res.reason and res.rel_ci_lower is None
    res = sequential_compare(c, t, abs_mixture_sd=0.5)
    assert res.p_value is not None and res.ci_lower < res.abs_delta < res.ci_upper


def test_invalid_tuning():
    c = Moments.from_values([1.0, 2.0])
    with pytest.raises(StatsInputError):
        sequential_compare(c, c, mixture_sd=0)
    with pytest.raises(StatsInputError):
        sequential_compare(c, c, confidence=1.5)
