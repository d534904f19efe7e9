"""Bayesian summary: conjugate normal update on the relative lift."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from warehouse_native.stats import Moments, StatsInputError, bayesian_summary, compare


def _pair(seed=0, lift=1.02):
    rng = np.random.default_rng(seed)
    return Moments.from_values(rng.gamma(2, 5, 3000)), Moments.from_values(rng.gamma(2, 5, 3000) * lift)


def test_flat_prior_reproduces_the_likelihood():
    c, t = _pair()
    f = compare(c, t)
    b = bayesian_summary(c, t, direction="increase", prior_sd=None)
    assert b.posterior_mean == pytest.approx(f.rel_delta, rel=1e-12)
    assert b.posterior_sd == pytest.approx(f.rel_std_error, rel=1e-12)
    assert b.chance_to_beat == pytest.approx(stats.norm.cdf(f.rel_delta / f.rel_std_error), rel=1e-12)
    z = stats.norm.ppf(0.975)
    assert (b.ci_lower, b.ci_upper) == pytest.approx((f.rel_delta - z * f.rel_std_error, f.rel_delta + z * f.rel_std_error))


def test_conjugate_update_by_hand_and_expected_loss_by_integration():
    c, t = _pair(1)
    f = compare(c, t)
    m0, s0 = 0.01, 0.02
    b = bayesian_summary(c, t, direction="increase", prior_mean=m0, prior_sd=s0, confidence=0.9)
    prec = 1 / s0**2 + 1 / f.rel_std_error**2
    mean = (m0 / s0**2 + f.rel_delta / f.rel_std_error**2) / prec
    sd = prec**-0.5
    assert b.posterior_mean == pytest.approx(mean, rel=1e-12)
    assert b.posterior_sd == pytest.approx(sd, rel=1e-12)
    assert b.ci_upper - b.ci_lower == pytest.approx(2 * stats.norm.ppf(0.95) * sd)
    loss, _ = integrate.quad(lambda r: max(0.0, -r) * stats.norm.pdf(r, mean, sd), mean - 12 * sd, mean + 12 * sd, points=[0.0])
    assert b.expected_loss == pytest.approx(loss, rel=1e-6, abs=1e-12)
    # decrease-is-good: chance flips, loss is E[max(0, rel)]
    d = bayesian_summary(c, t, direction="decrease", prior_mean=m0, prior_sd=s0)
    assert d.chance_to_beat == pytest.approx(1 - b.chance_to_beat, rel=1e-9)
    loss_d, _ = integrate.quad(lambda r: max(0.0, r) * stats.norm.pdf(r, mean, sd), mean - 12 * sd, mean + 12 * sd, points=[0.0])
    assert d.expected_loss == pytest.approx(loss_d, rel=1e-6, abs=1e-12)


def test_default_prior_shrinks_toward_zero():
    rng = np.random.default_rng(4)
    c = Moments.from_values(rng.normal(10, 10, 30))
    t = Moments.from_values(rng.normal(14, 10, 30))
    flat = bayesian_summary(c, t, direction="increase", prior_sd=math.inf)
    weak = bayesian_summary(c, t, direction="increase")
    assert abs(weak.posterior_mean) < abs(flat.posterior_mean)
    assert weak.posterior_sd < flat.posterior_sd


def test_undefined_cases_and_invalid():
    zero = Moments.from_values([-1.0, 1.0])
    b = bayesian_summary(zero, Moments.from_values([1.0, 2.0]), direction="increase")
    assert b.chance_to_beat is None and "control mean is zero" in b.reason
    with pytest.raises(StatsInputError):
        bayesian_summary(zero, zero, direction="increase", prior_sd=0.0)
