"""Absolute delta: Welch t-test against scipy on the raw arrays."""

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


SCIPY_ALT = {"two-sided": "two-sided", "increase": "greater", "decrease": "less"}


@pytest.mark.parametrize("seed,n_c,n_t,shift", [(0, 500, 400, 0.3), (1, 3, 5, 1.0), (2, 50, 2000, -0.2), (3, 10, 10, 0.0)])
@pytest.mark.parametrize("alternative", ["two-sided", "increase", "decrease"])
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_matches_scipy_welch(seed, n_c, n_t, shift, alternative, confidence):
    rng = np.random.default_rng(seed)
    c = rng.normal(10.0, 3.0, n_c)
    t = rng.normal(10.0 + shift, 4.5, n_t)
    res = compare(Moments.from_values(c), Moments.from_values(t), alternative=alternative, confidence=confidence)
    ref = stats.ttest_ind(t, c, equal_var=False, alternative=SCIPY_ALT[alternative])
    ci = ref.confidence_interval(confidence_level=confidence)
    assert_clean(res)
    assert res.reason is None and res.cuped is False
    assert res.control_mean == pytest.approx(c.mean(), rel=1e-12)
    assert res.variant_mean == pytest.approx(t.mean(), rel=1e-12)
    assert res.abs_delta == pytest.approx(t.mean() - c.mean(), rel=1e-9, abs=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)
    assert res.dof == pytest.approx(ref.df, rel=1e-9)
    assert res.t_stat == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    se = np.sqrt(c.var(ddof=1) / n_c + t.var(ddof=1) / n_t)
    assert res.std_error == pytest.approx(se, rel=1e-9)
    if alternative == "increase":
        assert res.abs_ci_upper is None and np.isinf(ci.high)
        assert res.abs_ci_lower == pytest.approx(ci.low, rel=1e-9)
    elif alternative == "decrease":
        assert res.abs_ci_lower is None and np.isinf(ci.low)
        assert res.abs_ci_upper == pytest.approx(ci.high, rel=1e-9)
    else:
        assert res.abs_ci_lower == pytest.approx(ci.low, rel=1e-9)
        assert res.abs_ci_upper == pytest.approx(ci.high, rel=1e-9)


@pytest.mark.filterwarnings("ignore:Precision loss occurred")
def test_one_arm_constant_uses_other_arm_df():
    c = np.full(20, 3.0)
    t = np.random.default_rng(5).normal(3.5, 1.0, 30)
    res = compare(Moments.from_values(c), Moments.from_values(t))
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert res.dof == pytest.approx(29.0, rel=1e-9)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_constant_float_arm_is_exactly_zero_variance():
    # 0.1 is not exact in binary: Σy² − (Σy)²/n leaves rounding noise that must not count
    c = np.full(1000, 0.1)
    t = np.full(1000, 0.1)
    res = compare(Moments.from_values(c), Moments.from_values(t))
    assert res.p_value is None and "zero variance" in res.reason
