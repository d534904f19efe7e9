"""Sample-ratio mismatch against scipy.stats.chisquare."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from warehouse_native.stats import StatsInputError, srm_check


@pytest.mark.parametrize(
    "counts,weights",
    [
        ({"a": 5000, "b": 5100}, {"a": 1, "b": 1}),
        ({"a": 2500, "b": 2440, "c": 2600, "d": 2510}, {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}),
        ({"a": 1000, "b": 2150}, {"a": 1, "b": 2}),
        ({"a": 900, "b": 1100}, {"a": 50, "b": 50}),
    ],
)
def test_matches_scipy_chisquare(counts, weights):
    res = srm_check(counts, weights)
    obs = np.array([counts[k] for k in weights], dtype=float)
    w = np.array([weights[k] for k in weights], dtype=float)
    ref = stats.chisquare(obs, obs.sum() * w / w.sum())
    assert res.chi2 == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert res.dof == len(weights) - 1
    assert res.expected == pytest.approx({k: obs.sum() * weights[k] / w.sum() for k in weights})


def test_status_thresholds():
    assert srm_check({"a": 5000, "b": 5100}, {"a": 1, "b": 1}).status == "pass"
    # chi2 with 1 df: p≈0.0075 → warn; p≈1e-5 → fail
    assert srm_check({"a": 5000, "b": 5265}, {"a": 1, "b": 1}).status == "warn"
    assert srm_check({"a": 900, "b": 1100}, {"a": 1, "b": 1}).status == "fail"
    custom = srm_check({"a": 5000, "b": 5265}, {"a": 1, "b": 1}, warn_below=0.005, fail_below=0.001)
    assert custom.status == "pass"


def test_zero_total_is_unknown():
    res = srm_check({"a": 0, "b": 0}, {"a": 0.5, "b": 0.5})
    assert res.status == "unknown" and res.p_value is None and "no units" in res.reason


def test_missing_count_is_zero_and_unweighted_variant_fails():
    res = srm_check({"a": 100}, {"a": 0.5, "b": 0.5})
    assert res.status == "fail" and res.expected == {"a": 50.0, "b": 50.0}
    res = srm_check({"a": 100, "b": 100, "zz": 3}, {"a": 0.5, "b": 0.5})
    assert res.status == "fail" and res.p_value == 0.0 and "zz" in res.reason and res.chi2 is None


def test_single_weighted_variant_is_unknown_and_small_counts_noted():
    assert srm_check({"a": 10}, {"a": 1}).status == "unknown"
    res = srm_check({"a": 3, "b": 4}, {"a": 1, "b": 1})
    assert res.status == "pass" and "below 5" in res.reason


def test_invalid_inputs_raise():
    with pytest.raises(StatsInputError):
        srm_check({"a": -1, "b": 2}, {"a": 1, "b": 1})
    with pytest.raises(StatsInputError):
        srm_check({"a": 1, "b": 2}, {"a": 0, "b": 0})
    with pytest.raises(StatsInputError):
        srm_check({"a": 1, "b": 2}, {"a": 1, "b": 1}, warn_below=0.001, fail_below=0.01)
