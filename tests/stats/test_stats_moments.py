"""Moments: validation, conversion and construction from rows and arrays."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from warehouse_native.stats import Moments, StatsInputError


def test_plain_fields_and_properties():
    m = Moments(n=4, sum=10, sum_sq=30)
    assert m.n == 4 and isinstance(m.sum, float) and m.sum_sq == 30.0
    assert not m.is_ratio and not m.has_covariate
    assert m.mean == 2.5


def test_ratio_and_covariate_properties():
    m = Moments(n=3, sum=3, sum_sq=5, den_sum=6, den_sum_sq=14, num_den_sum=8)
    assert m.is_ratio and not m.has_covariate and m.mean == 0.5
    # a ratio with a plain covariate but no pre-denominator cannot do ratio CUPED
    m2 = Moments(n=3, sum=3, sum_sq=5, den_sum=6, den_sum_sq=14, num_den_sum=8, pre_sum=1, pre_sum_sq=1, sum_cross=1)
    assert not m2.has_covariate
    assert Moments(n=3, sum=3, sum_sq=5, pre_sum=1, pre_sum_sq=1, sum_cross=1).has_covariate


def test_zero_units_and_zero_denominator_mean_is_none():
    assert Moments(n=0, sum=0, sum_sq=0).mean is None
    assert Moments(n=2, sum=1, sum_sq=1, den_sum=0, den_sum_sq=0, num_den_sum=0).mean is None


@pytest.mark.parametrize("n", [-1, 1.5, "3", True, None, math.nan])
def test_bad_n_rejected(n):
    with pytest.raises(StatsInputError, match="n must be a non-negative integer"):
        Moments(n=n, sum=0, sum_sq=0)


def test_integral_float_and_numpy_n_accepted():
    assert Moments(n=3.0, sum=1, sum_sq=1).n == 3
    assert type(Moments(n=np.int64(3), sum=1, sum_sq=1).n) is int


def test_partial_group_names_missing_field():
    with pytest.raises(StatsInputError, match="den_sum_sq, num_den_sum missing"):
        Moments(n=3, sum=1, sum_sq=1, den_sum=2)
    with pytest.raises(StatsInputError, match="sum_cross missing"):
        Moments(n=3, sum=1, sum_sq=1, pre_sum=2, pre_sum_sq=4)
    with pytest.raises(StatsInputError, match="den_pre_den_sum missing"):
        Moments(
            n=3, sum=1, sum_sq=1, den_sum=1, den_sum_sq=1, num_den_sum=1, pre_sum=1, pre_sum_sq=1, sum_cross=1,
            pre_den_sum=1, pre_den_sum_sq=1, pre_num_den_sum=1, num_pre_den_sum=1, den_pre_sum=1,
        )


def test_ratio_covariate_needs_ratio_and_covariate():
    with pytest.raises(StatsInputError, match="need both"):
        Moments(
            n=3, sum=1, sum_sq=1, pre_sum=1, pre_sum_sq=1, sum_cross=1,
            pre_den_sum=1, pre_den_sum_sq=1, pre_num_den_sum=1, num_pre_den_sum=1, den_pre_sum=1, den_pre_den_sum=1,
        )


@pytest.mark.parametrize("bad", [math.nan, math.inf, "1"])
def test_non_finite_or_non_numeric_rejected(bad):
    with pytest.raises(StatsInputError):
        Moments(n=3, sum=bad, sum_sq=1)


def test_required_and_negative_squares():
    with pytest.raises(StatsInputError, match="sum is required"):
        Moments(n=3, sum=None, sum_sq=1)
    with pytest.raises(StatsInputError, match="cannot be negative"):
        Moments(n=3, sum=1, sum_sq=-1)


def test_from_row_decimal_uppercase_nan_and_extra_keys():
    row = {
        "VARIANT": "red", "N": Decimal(5), "SUM": Decimal("2.5"), "SUM_SQ": 3,
        "pre_sum": math.nan, "pre_sum_sq": None, "sum_cross": Decimal("NaN"),
        "den_sum": np.float64("nan"),
    }
    m = Moments.from_row(row)
    assert m == Moments(n=5, sum=2.5, sum_sq=3.0)
    assert isinstance(m.sum, float) and m.pre_sum is None and m.den_sum is None


def test_from_row_empty_arm_with_nulls():
    m = Moments.from_row({"n": None, "sum": None, "sum_sq": None})
    assert m.n == 0 and m.sum == 0.0 and m.sum_sq == 0.0


def test_from_values_matches_hand_sums():
    y, d, x, mm = [1.0, 2.0, 4.0], [1.0, 1.0, 2.0], [0.5, 1.0, 3.0], [1.0, 2.0, 2.0]
    m = Moments.from_values(y, d, x, mm)
    assert (m.n, m.sum, m.sum_sq) == (3, 7.0, 21.0)
    assert (m.den_sum, m.den_sum_sq, m.num_den_sum) == (4.0, 6.0, 11.0)
    assert (m.pre_sum, m.pre_sum_sq, m.sum_cross) == (4.5, 10.25, 14.5)
    assert (m.pre_den_sum, m.pre_den_sum_sq, m.pre_num_den_sum) == (5.0, 9.0, 8.5)
    assert (m.num_pre_den_sum, m.den_pre_sum, m.den_pre_den_sum) == (13.0, 7.5, 7.0)
    assert m.is_ratio and m.has_covariate


def test_frozen():
    m = Moments(n=1, sum=1, sum_sq=1)
    with pytest.raises(AttributeError):
        m.n = 2  # type: ignore[misc]
