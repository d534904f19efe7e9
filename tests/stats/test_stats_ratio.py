"""Ratio metrics: delta method against a hand computation and a bootstrap."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from warehouse_native.stats import Moments, compare


def assert_clean(result) -> None:
    """No numeric field of a result dataclass may be NaN or infinite."""
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        if isinstance(v, float):
            assert math.isfinite(v), f"{type(result).__name__}.{f.name} = {v}"


def _arm(rng, n, rate):
    d = rng.poisson(5.0, n) + 1.0  # e.g. sessions per user
    y = rng.binomial(d.astype(int), rate).astype(float)  # e.g. converting sessions
    return y, d


def _linearised(y, d):
    r = y.sum() / d.sum()
    return r, (y - r * d) / d.mean()


def test_ratio_matches_hand_delta_method():
    rng = np.random.default_rng(42)
    yc, dc = _arm(rng, 800, 0.20)
    yt, dt = _arm(rng, 900, 0.22)
    res = compare(Moments.from_values(yc, dc), Moments.from_values(yt, dt))
    assert_clean(res)
    rc, zc = _linearised(yc, dc)
    rt, zt = _linearised(yt, dt)
    vc, vt = zc.var(ddof=1) / zc.size, zt.var(ddof=1) / zt.size
    # the textbook form: Var(R) = (s_y² − 2R s_yd + R² s_d²) / (n d̄²)
    cov = np.cov(yc, dc, ddof=1)
    textbook = (cov[0, 0] - 2 * rc * cov[0, 1] + rc**2 * cov[1, 1]) / (yc.size * dc.mean() ** 2)
    assert vc == pytest.approx(textbook, rel=1e-10)
    assert res.control_mean == pytest.approx(rc, rel=1e-12)
    assert res.variant_mean == pytest.approx(rt, rel=1e-12)
    assert res.abs_delta == pytest.approx(rt - rc, rel=1e-10)
    assert res.std_error == pytest.approx(np.sqrt(vc + vt), rel=1e-9)
    df = (vc + vt) ** 2 / (vc**2 / (zc.size - 1) + vt**2 / (zt.size - 1))
    assert res.dof == pytest.approx(df, rel=1e-9)
    p = 2 * stats.t.sf(abs(rt - rc) / np.sqrt(vc + vt), df)
    assert res.p_value == pytest.approx(p, rel=1e-8)
    # relative: Var = vt/rc² + rt²·vc/rc⁴
    assert res.rel_delta == pytest.approx(rt / rc - 1, rel=1e-10)
    assert res.rel_std_error == pytest.approx(np.sqrt(vt / rc**2 + rt**2 * vc / rc**4), rel=1e-9)


def test_ratio_standard_error_close_to_bootstrap():
    rng = np.random.default_rng(7)
    yc, dc = _arm(rng, 1000, 0.3)
    yt, dt = _arm(rng, 1000, 0.3)
    res = compare(Moments.from_values(yc, dc), Moments.from_values(yt, dt))
    b = 2000
    ic = rng.integers(0, yc.size, (b, yc.size))
    it = rng.integers(0, yt.size, (b, yt.size))
    boot = yt[it].sum(1) / dt[it].sum(1) - yc[ic].sum(1) / dc[ic].sum(1)
    boot_se = boot.std(ddof=1)
    # a bootstrap SE from 2000 resamples is itself uncertain by ~1.6 %; allow 8 %
    assert res.std_error == pytest.approx(boot_se, rel=0.08)


def test_ratio_with_unit_denominators_equals_plain_mean():
    rng = np.random.default_rng(3)
    yc, yt = rng.exponential(2.0, 300), rng.exponential(2.2, 250)
    ones_c, ones_t = np.ones(300), np.ones(250)
    a = compare(Moments.from_values(yc, ones_c), Moments.from_values(yt, ones_t))
    b = compare(Moments.from_values(yc), Moments.from_values(yt))
    for f in ("abs_delta", "std_error", "p_value", "dof", "rel_delta", "rel_std_error", "abs_ci_lower", "rel_ci_upper"):
        assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-9), f


def test_mismatched_metric_shapes_raise():
    from warehouse_native.stats import StatsInputError

    with pytest.raises(StatsInputError, match="ratio"):
        compare(Moments.from_values([1.0, 2.0], [1.0, 1.0]), Moments.from_values([1.0, 2.0]))
