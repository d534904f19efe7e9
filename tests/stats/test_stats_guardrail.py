"""Guardrail check: one-sided test for regression beyond a relative margin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from warehouse_native.stats import Moments, StatsInputError, compare, guardrail_check
from warehouse_native.stats.distributions import t_cdf, t_sf


def _moments(n: int, mean: float, var: float) -> Moments:
    s = n * mean
    return Moments(n=n, sum=s, sum_sq=var * (n - 1) + s * s / n)


def test_zero_margin_equals_one_sided_compare():
    rng = np.random.default_rng(1)
    c = Moments.from_values(rng.normal(10, 2, 400))
    t = Moments.from_values(rng.normal(9.8, 2, 400))
    g = guardrail_check(c, t, direction="increase")
    ref = compare(c, t, alternative="decrease")  # bad direction for an increase-is-good metric
    assert g.p_value == pytest.approx(ref.p_value, rel=1e-12)
    g2 = guardrail_check(c, t, direction="decrease")
    ref2 = compare(c, t, alternative="increase")
    assert g2.p_value == pytest.approx(ref2.p_value, rel=1e-12)


def test_margin_statistic_by_hand():
    # C = 10 (n=1000, var 25 → Var = 0.025), T = 9.7 (n=1000, var 25), margin 2 %
    c, t = _moments(1000, 10.0, 25.0), _moments(1000, 9.7, 25.0)
    g = guardrail_check(c, t, direction="increase", max_regression=0.02)
    # L = T − 0.98·C = −0.1, Var(L) = 0.025 + 0.98²·0.025
    var = 0.025 + 0.98**2 * 0.025
    df = var**2 / (0.025**2 / 999 + (0.98**2 * 0.025) ** 2 / 999)
    assert g.p_value == pytest.approx(t_cdf(-0.1 / math.sqrt(var), df), rel=1e-10)
    assert g.rel_delta == pytest.approx(-0.03) and g.margin == 0.02
    assert g.status == "warn"  # 3 % regression beyond the 2 % margin, not significant
    # decrease-is-good metric going up by 3 % with a 2 % margin: L = T − 1.02·C
    t_up = _moments(1000, 10.3, 25.0)
    g = guardrail_check(c, t_up, direction="decrease", max_regression=0.02)
    var = 0.025 + 1.02**2 * 0.025
    df = var**2 / (0.025**2 / 999 + (1.02**2 * 0.025) ** 2 / 999)
    assert g.p_value == pytest.approx(t_sf(0.1 / math.sqrt(var), df), rel=1e-10)


def test_statuses():
    c = _moments(20000, 10.0, 25.0)
    # significant 5 % drop → fail
    assert guardrail_check(c, _moments(20000, 9.5, 25.0), direction="increase").status == "fail"
    # same drop, but a 10 % margin allowed → pass
    assert guardrail_check(c, _moments(20000, 9.5, 25.0), direction="increase", max_regression=0.10).status == "pass"
    # improvement → pass
    assert guardrail_check(c, _moments(20000, 10.5, 25.0), direction="increase").status == "pass"
    # the same improvement is a regression for a decrease-is-good metric
    assert guardrail_check(c, _moments(20000, 10.5, 25.0), direction="decrease").status == "fail"
    # small, non-significant drop → warn
    assert guardrail_check(c, _moments(20000, 9.99, 25.0), direction="increase").status == "warn"
    # drop within the margin → pass even when significant as a plain difference
    assert guardrail_check(c, _moments(20000, 9.9, 25.0), direction="increase", max_regression=0.05).status == "pass"


def test_negative_control_mean_margin():
    # C = −10, increase is good; T = −10.3 is a 3 % regression: (−10.3 + 10)/10 = −0.03
    c, t = _moments(1000, -10.0, 25.0), _moments(1000, -10.3, 25.0)
    g = guardrail_check(c, t, direction="increase", max_regression=0.02)
    assert g.rel_delta == pytest.approx(-0.03)
    # L = T − (1 + δ)·C = −10.3 + 10.2 = −0.1 < 0 → regression beyond margin (warn, not significant)
    assert g.status == "warn"
    var = 0.025 + 1.02**2 * 0.025
    df = var**2 / (0.025**2 / 999 + (1.02**2 * 0.025) ** 2 / 999)
    assert g.p_value == pytest.approx(t_cdf(-0.1 / math.sqrt(var), df), rel=1e-10)


def test_unknown_and_invalid():
    g = guardrail_check(Moments(n=0, sum=0, sum_sq=0), _moments(10, 1, 1), direction="increase")
    assert g.status == "unknown" and g.p_value is None and "control has no units" in g.reason
    g = guardrail_check(_moments(10, 1, 0), _moments(10, 1, 0), direction="increase")
    assert g.status == "unknown" and "zero variance" in g.reason
    with pytest.raises(StatsInputError):
        guardrail_check(_moments(10, 1, 1), _moments(10, 1, 1), direction="up")
    with pytest.raises(StatsInputError):
        guardrail_check(_moments(10, 1, 1), _moments(10, 1, 1), direction="increase", max_regression=-0.1)


def test_cuped_guardrail():
    rng = np.random.default_rng(3)
    xc, xt = rng.normal(5, 2, 3000), rng.normal(5, 2, 3000)
    yc, yt = xc + rng.normal(0, 1, 3000), 0.97 * xt + rng.normal(0, 1, 3000)
    c, t = Moments.from_values(yc, x=xc), Moments.from_values(yt, x=xt)
    plain = guardrail_check(c, t, direction="increase")
    adj = guardrail_check(c, t, direction="increase", cuped=True)
    assert adj.cuped and not plain.cuped
    assert adj.p_value == pytest.approx(compare(c, t, alternative="decrease", cuped=True).p_value, rel=1e-12)
    assert adj.p_value < plain.p_value  # the variance reduction sharpens the test here
