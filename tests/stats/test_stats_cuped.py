"""CUPED: against OLS in statsmodels, and ratio CUPED against a hand linearisation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import statsmodels.api as sm

from warehouse_native.stats import Moments, compare


def assert_clean(result) -> None:
    """No numeric field of a result dataclass may be NaN or infinite."""
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        if isinstance(v, float):
            assert math.isfinite(v), f"{type(result).__name__}.{f.name} = {v}"


def _data(seed, n_c=3000, n_t=2500, effect=0.3):
    rng = np.random.default_rng(seed)
    xc, xt = rng.gamma(2.0, 2.0, n_c), rng.gamma(2.0, 2.0, n_t)
    yc = 1.0 + 0.8 * xc + rng.normal(0, 2.0, n_c)
    yt = 1.0 + effect + 0.8 * xt + rng.normal(0, 2.0, n_t)
    return xc, yc, xt, yt


def test_cuped_delta_equals_ols_treatment_coefficient():
    xc, yc, xt, yt = _data(1)
    res = compare(Moments.from_values(yc, x=xc), Moments.from_values(yt, x=xt), cuped=True)
    assert_clean(res)
    assert res.cuped is True and res.reason is None
    y = np.concatenate([yc, yt])
    x = np.concatenate([xc, xt])
    treat = np.concatenate([np.zeros(yc.size), np.ones(yt.size)])
    design = np.column_stack([np.ones_like(y), treat, x - x.mean()])
    ols = sm.OLS(y, design).fit()
    assert res.abs_delta == pytest.approx(ols.params[1], rel=1e-9)
    assert res.theta == pytest.approx(ols.params[2], rel=1e-9)
    # per-arm (Welch-type) variance vs homoskedastic / robust OLS variance: close, not equal
    assert res.std_error == pytest.approx(ols.bse[1], rel=0.02)
    assert res.std_error == pytest.approx(ols.HC2_se[1], rel=0.02)
    # raw means stay raw
    assert res.control_mean == pytest.approx(yc.mean()) and res.variant_mean == pytest.approx(yt.mean())
    # variance reduction is roughly the squared correlation between metric and covariate
    raw = compare(Moments.from_values(yc, x=xc), Moments.from_values(yt, x=xt))
    assert res.variance_reduction == pytest.approx(1 - (res.std_error / raw.std_error) ** 2, rel=1e-12)
    rho2 = np.corrcoef(np.concatenate([yc - yc.mean(), yt - yt.mean()]), np.concatenate([xc - xc.mean(), xt - xt.mean()]))[0, 1] ** 2
    assert res.variance_reduction == pytest.approx(rho2, abs=0.02)
    assert raw.cuped is False and raw.theta is None and raw.variance_reduction is None


def _relative_by_numeric_gradient(arms, theta, pooled_weight):
    """(T − C)/|C| and its delta-method SE via a finite-difference gradient (independent of the
    analytic gradient in the library). ``arms``: [(P, X, cov2x2/n)] for variant, control."""
    (pt, xt, st), (pc, xc, sc) = arms
    wt, wc = pooled_weight

    def g(v):
        pt_, xt_, pc_, xc_ = v
        xbar = wt * xt_ + wc * xc_
        t_adj, c_adj = pt_ - theta * (xt_ - xbar), pc_ - theta * (xc_ - xbar)
        return (t_adj - c_adj) / abs(c_adj)

    v0 = np.array([pt, xt, pc, xc])
    grad = np.zeros(4)
    for i in range(4):
        h = 1e-6 * max(1.0, abs(v0[i]))
        up, dn = v0.copy(), v0.copy()
        up[i] += h
        dn[i] -= h
        grad[i] = (g(up) - g(dn)) / (2 * h)
    var = grad[:2] @ st @ grad[:2] + grad[2:] @ sc @ grad[2:]
    return g(v0), np.sqrt(var)


def test_cuped_relative_matches_numeric_delta_method():
    xc, yc, xt, yt = _data(2)
    res = compare(Moments.from_values(yc, x=xc), Moments.from_values(yt, x=xt), cuped=True)
    arms = [
        (yt.mean(), xt.mean(), np.cov(yt, xt, ddof=1) / yt.size),
        (yc.mean(), xc.mean(), np.cov(yc, xc, ddof=1) / yc.size),
    ]
    n = yt.size + yc.size
    rel, se = _relative_by_numeric_gradient(arms, res.theta, (yt.size / n, yc.size / n))
    assert res.rel_delta == pytest.approx(rel, rel=1e-9)
    assert res.rel_std_error == pytest.approx(se, rel=1e-6)


def _ratio_arm(rng, n, lift=1.0):
    m = rng.poisson(4.0, n) + 1.0
    x = rng.binomial(m.astype(int), 0.3).astype(float)
    d = m + rng.poisson(1.0, n)  # post-period activity tracks pre-period activity
    rate = np.clip(0.3 * lift + 0.5 * (x / m - 0.3), 0.01, 0.99)
    y = rng.binomial(d.astype(int), rate).astype(float)
    return y, d, x, m


def test_ratio_cuped_matches_hand_linearisation():
    rng = np.random.default_rng(9)
    yc, dc, xc, mc = _ratio_arm(rng, 2000)
    yt, dt, xt, mt = _ratio_arm(rng, 1800, lift=1.05)
    res = compare(Moments.from_values(yc, dc, xc, mc), Moments.from_values(yt, dt, xt, mt), cuped=True)
    assert_clean(res)
    assert res.cuped and res.reason is None

    def lin(y, d, x, m):
        r, p = y.sum() / d.sum(), x.sum() / m.sum()
        return r, p, (y - r * d) / d.mean(), (x - p * m) / m.mean()

    rc, pc, zc, wc = lin(yc, dc, xc, mc)
    rt, pt, zt, wt = lin(yt, dt, xt, mt)
    theta = (np.cov(zc, wc)[0, 1] * (zc.size - 1) + np.cov(zt, wt)[0, 1] * (zt.size - 1)) / (
        wc.var(ddof=1) * (wc.size - 1) + wt.var(ddof=1) * (wt.size - 1)
    )
    assert res.theta == pytest.approx(theta, rel=1e-9)
    assert res.abs_delta == pytest.approx((rt - rc) - theta * (pt - pc), rel=1e-9)
    se = np.sqrt((zt - theta * wt).var(ddof=1) / zt.size + (zc - theta * wc).var(ddof=1) / zc.size)
    assert res.std_error == pytest.approx(se, rel=1e-9)
    assert res.variance_reduction > 0.1
    # relative with the pooled pre-ratio (weights Σm_k / Σm)
    arms = [(rt, pt, np.cov(zt, wt) / zt.size), (rc, pc, np.cov(zc, wc) / zc.size)]
    msum = mt.sum() + mc.sum()
    rel, rel_se = _relative_by_numeric_gradient(arms, theta, (mt.sum() / msum, mc.sum() / msum))
    assert res.rel_delta == pytest.approx(rel, rel=1e-9)
    assert res.rel_std_error == pytest.approx(rel_se, rel=1e-6)


def test_ratio_cuped_with_unit_denominators_equals_mean_cuped():
    xc, yc, xt, yt = _data(4, 500, 600)
    oc, ot = np.ones(500), np.ones(600)
    a = compare(Moments.from_values(yc, oc, xc, oc), Moments.from_values(yt, ot, xt, ot), cuped=True)
    b = compare(Moments.from_values(yc, x=xc), Moments.from_values(yt, x=xt), cuped=True)
    for f in ("abs_delta", "std_error", "theta", "variance_reduction", "rel_delta", "rel_std_error", "p_value", "dof"):
        assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-9), f


def test_cuped_requested_without_covariate_falls_back_with_note():
    xc, yc, xt, yt = _data(5, 100, 100)
    res = compare(Moments.from_values(yc, x=xc), Moments.from_values(yt), cuped=True)
    plain = compare(Moments.from_values(yc), Moments.from_values(yt))
    assert res.cuped is False and res.theta is None
    assert res.reason == "CUPED not applied: covariate sums are missing in variant"
    assert res.p_value == plain.p_value and res.abs_delta == plain.abs_delta


def test_cuped_with_constant_covariate_falls_back():
    rng = np.random.default_rng(6)
    yc, yt = rng.normal(0, 1, 50), rng.normal(0, 1, 50)
    res = compare(Moments.from_values(yc, x=np.zeros(50)), Moments.from_values(yt, x=np.zeros(50)), cuped=True)
    assert res.cuped is False and "zero variance" in res.reason and res.p_value is not None


def test_ratio_cuped_without_pre_denominator_falls_back():
    rng = np.random.default_rng(8)
    yc, dc, xc, _ = _ratio_arm(rng, 200)
    yt, dt, xt, _ = _ratio_arm(rng, 200)
    res = compare(Moments.from_values(yc, dc, xc), Moments.from_values(yt, dt, xt), cuped=True)
    assert res.cuped is False and "CUPED not applied" in res.reason and res.p_value is not None
