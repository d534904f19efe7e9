"""Data-driven edge cases give a reason, never an exception or a NaN."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from warehouse_native.stats import (
    Moments,
    bayesian_summary,
    compare,
    guardrail_check,
    sequential_compare,
)


def assert_clean(result) -> None:
    """No numeric field of a result dataclass may be NaN or infinite."""
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        if isinstance(v, float):
            assert math.isfinite(v), f"{type(result).__name__}.{f.name} = {v}"


EMPTY = Moments(n=0, sum=0.0, sum_sq=0.0)
OK = Moments.from_values([1.0, 2.0, 3.0, 4.0])


def _all_functions(c, t):
    results = [
        compare(c, t),
        compare(c, t, cuped=True),
        compare(c, t, alternative="increase"),
        guardrail_check(c, t, direction="increase", max_regression=0.01),
        sequential_compare(c, t),
        bayesian_summary(c, t, direction="decrease"),
    ]
    for r in results:
        assert_clean(r)
    return results


def test_variant_with_no_units():
    res = _all_functions(OK, EMPTY)
    r = res[0]
    assert r.reason == "variant has no units"
    assert r.control_mean == 2.5 and r.variant_mean is None and r.abs_delta is None and r.p_value is None
    assert res[3].status == "unknown"
    assert all(x.reason and "variant has no units" in x.reason for x in res)


def test_both_arms_empty():
    r = _all_functions(EMPTY, EMPTY)[0]
    assert r.reason == "control has no units; variant has no units"


def test_single_unit_arm_keeps_point_estimates():
    one = Moments.from_values([5.0])
    r = _all_functions(OK, one)[0]
    assert r.abs_delta == 2.5 and r.rel_delta == 1.0
    assert r.std_error is None and r.p_value is None and r.abs_ci_lower is None
    assert r.reason == "variant has only 1 unit; at least 2 per arm are needed to estimate a variance"


def test_zero_variance_in_both_arms():
    c = Moments.from_values([3.0] * 10)
    t = Moments.from_values([4.0] * 12)
    r = _all_functions(c, t)[0]
    assert r.abs_delta == 1.0 and r.rel_delta == pytest.approx(1 / 3)
    assert r.p_value is None and r.std_error is None and r.abs_ci_lower is None
    assert r.reason.startswith("zero variance in both arms")


def test_all_zero_metric():
    z = Moments.from_values(np.zeros(50))
    r = _all_functions(z, z)[0]
    assert r.control_mean == 0.0 and r.abs_delta == 0.0 and r.rel_delta is None and r.p_value is None
    assert "control mean is zero" in r.reason and "zero variance" in r.reason


def test_zero_control_mean_keeps_absolute_inference():
    c = Moments.from_values([-1.0, 1.0, -2.0, 2.0])
    t = Moments.from_values([0.0, 1.0, 3.0, 2.0])
    r = _all_functions(c, t)[0]
    assert r.p_value is not None and r.abs_ci_lower is not None
    assert r.rel_delta is None and r.rel_ci_lower is None and r.rel_std_error is None
    assert r.reason == "control mean is zero, so the relative change is undefined"


def test_ratio_with_zero_denominator():
    c = Moments.from_values([1.0, 2.0, 0.0], [1.0, 2.0, 1.0])
    t = Moments.from_values([0.0, 0.0], [0.0, 0.0])
    r = _all_functions(c, t)[0]
    assert r.variant_mean is None and r.abs_delta is None and r.p_value is None
    assert r.reason == "ratio denominator sums to zero in variant"


def test_variant_identically_zero_gives_exact_relative_change():
    c = Moments.from_values([1.0, 2.0, 3.0, 5.0])
    t = Moments.from_values([0.0, 0.0, 0.0])
    r = _all_functions(c, t)[0]
    assert r.rel_delta == -1.0 and r.rel_std_error == 0.0 and r.rel_ci_lower == r.rel_ci_upper == -1.0
    assert r.p_value is not None and r.reason is None


def test_cuped_with_perfectly_predicting_covariate():
    x = np.arange(10.0)
    c = Moments.from_values(2 * x + 1, x=x)
    t = Moments.from_values(2 * x + 3, x=x)
    r = compare(c, t, cuped=True)
    assert_clean(r)
    assert r.cuped and r.abs_delta == pytest.approx(2.0) and r.p_value is None
    assert "after CUPED adjustment" in r.reason


def test_from_row_with_nan_covariate_and_cuped():
    row = {"n": 3, "sum": 3.0, "sum_sq": 5.0, "pre_sum": float("nan"), "pre_sum_sq": float("nan"), "sum_cross": float("nan")}
    r = compare(Moments.from_row(row), Moments.from_row(row), cuped=True)
    assert_clean(r)
    assert r.cuped is False and "CUPED not applied" in r.reason and r.p_value == pytest.approx(1.0)


def test_invalid_arguments_raise():
    from warehouse_native.stats import StatsInputError

    with pytest.raises(StatsInputError, match="alternative"):
        compare(OK, OK, alternative="greater")
    with pytest.raises(StatsInputError, match="confidence"):
        compare(OK, OK, confidence=95)
