"""Seeded simulations: false-positive rate, coverage, and peeking with the sequential test.

Arrays are simulated in bulk with numpy; every test still goes through ``compare`` /
``sequential_compare`` on ``Moments`` built from the simulated sums.
"""

from __future__ import annotations

import numpy as np
import pytest

from warehouse_native.stats import Moments, compare, sequential_compare

pytestmark = pytest.mark.slow

SIMS = 4000


def _batch(y, d=None, x=None, m=None) -> list[Moments]:
    """One Moments per row of the (sims × units) arrays."""
    n = y.shape[1]
    cols = {"sum": y.sum(1), "sum_sq": (y * y).sum(1)}
    if d is not None:
        cols.update(den_sum=d.sum(1), den_sum_sq=(d * d).sum(1), num_den_sum=(y * d).sum(1))
    if x is not None:
        cols.update(pre_sum=x.sum(1), pre_sum_sq=(x * x).sum(1), sum_cross=(y * x).sum(1))
    names = list(cols)
    rows = np.column_stack([cols[k] for k in names]).tolist()
    return [Moments(n=n, **dict(zip(names, r))) for r in rows]


def _metric(rng, sims, n, effect=0.0):
    """Skewed metric with mean 1 correlated with a pre-period covariate (mean 1)."""
    x = rng.gamma(2.0, 0.5, (sims, n))
    y = 0.5 * x + rng.exponential(0.5, (sims, n)) + effect
    return y, x


def _ratio(rng, sims, n, rate=0.3):
    d = rng.poisson(3.0, (sims, n)) + 1.0
    y = rng.binomial(d.astype(np.int64), rate).astype(float)
    return y, d


def _rate(flags) -> float:
    return float(np.mean(flags))


def test_aa_false_positive_rate():
    rng = np.random.default_rng(20261015)
    n = 400
    yc, xc = _metric(rng, SIMS, n)
    yt, xt = _metric(rng, SIMS, n)
    plain_c, plain_t = _batch(yc, x=xc), _batch(yt, x=xt)
    rc, dc = _ratio(rng, SIMS, n)
    rt, dt = _ratio(rng, SIMS, n)
    ratio_c, ratio_t = _batch(rc, dc), _batch(rt, dt)
    fp_plain = _rate([compare(c, t).p_value < 0.05 for c, t in zip(plain_c, plain_t)])
    fp_cuped = _rate([compare(c, t, cuped=True).p_value < 0.05 for c, t in zip(plain_c, plain_t)])
    fp_ratio = _rate([compare(c, t).p_value < 0.05 for c, t in zip(ratio_c, ratio_t)])
    fp_one_sided = _rate([compare(c, t, alternative="increase").p_value < 0.05 for c, t in zip(plain_c, plain_t)])
    for name, rate in [("plain", fp_plain), ("cuped", fp_cuped), ("ratio", fp_ratio), ("one-sided", fp_one_sided)]:
        assert 0.04 <= rate <= 0.06, (name, rate)


def test_ci_coverage_of_known_effect():
    rng = np.random.default_rng(20261029)
    n, effect = 500, 0.1  # control mean is 1, so the true relative effect is also 0.1
    yc, xc = _metric(rng, SIMS, n)
    yt, xt = _metric(rng, SIMS, n, effect)
    cs, ts = _batch(yc, x=xc), _batch(yt, x=xt)
    plain = [compare(c, t) for c, t in zip(cs, ts)]
    cuped = [compare(c, t, cuped=True) for c, t in zip(cs, ts)]
    rc, dc = _ratio(rng, SIMS, n, 0.30)
    rt, dt = _ratio(rng, SIMS, n, 0.33)
    ratio = [compare(c, t) for c, t in zip(_batch(rc, dc), _batch(rt, dt))]
    checks = {
        "abs": _rate([r.abs_ci_lower <= effect <= r.abs_ci_upper for r in plain]),
        "rel": _rate([r.rel_ci_lower <= effect <= r.rel_ci_upper for r in plain]),
        "cuped abs": _rate([r.abs_ci_lower <= effect <= r.abs_ci_upper for r in cuped]),
        "cuped rel": _rate([r.rel_ci_lower <= effect <= r.rel_ci_upper for r in cuped]),
        "ratio abs": _rate([r.abs_ci_lower <= 0.03 <= r.abs_ci_upper for r in ratio]),
        "ratio rel": _rate([r.rel_ci_lower <= 0.1 <= r.rel_ci_upper for r in ratio]),
    }
    for name, cov in checks.items():
        assert 0.935 <= cov <= 0.965, (name, cov)
    # CUPED removes corr(y, x)² of the variance: Var(0.5x) / Var(y) = 0.125 / 0.375 = 1/3
    assert np.mean([r.variance_reduction for r in cuped]) == pytest.approx(1 / 3, abs=0.01)


def test_peeking_inflates_fixed_test_but_not_sequential():
    rng = np.random.default_rng(7)
    sims, days, per_day = 1200, 14, 200
    sums = {arm: np.zeros((sims, 2)) for arm in ("c", "t")}
    fixed_hit = np.zeros(sims, dtype=bool)
    seq_hit = np.zeros(sims, dtype=bool)
    final_fixed = np.zeros(sims, dtype=bool)
    for day in range(1, days + 1):
        for arm in ("c", "t"):
            y = rng.exponential(1.0, (sims, per_day))
            sums[arm] += np.column_stack([y.sum(1), (y * y).sum(1)])
        n = day * per_day
        for i in range(sims):
            c = Moments(n=n, sum=sums["c"][i, 0], sum_sq=sums["c"][i, 1])
            t = Moments(n=n, sum=sums["t"][i, 0], sum_sq=sums["t"][i, 1])
            p_fixed = compare(c, t).p_value
            fixed_hit[i] |= p_fixed < 0.05
            seq_hit[i] |= sequential_compare(c, t).p_value < 0.05
            if day == days:
                final_fixed[i] = p_fixed < 0.05
    assert 0.035 <= final_fixed.mean() <= 0.065  # one look: nominal
    assert fixed_hit.mean() > 0.10  # 14 looks: inflated
    assert seq_hit.mean() <= 0.05  # always valid
