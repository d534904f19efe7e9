"""Sample size against statsmodels NormalIndPower / TTestIndPower."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from warehouse_native.stats import StatsInputError, days_needed, sample_size

SM_ALT = {"two-sided": "two-sided", "increase": "larger", "decrease": "larger"}


@pytest.mark.parametrize("test,solver", [("z", NormalIndPower()), ("t", TTestIndPower())])
@pytest.mark.parametrize("alternative", ["two-sided", "increase"])
@pytest.mark.parametrize(
    "mean,variance,mde,weights,power,confidence",
    [
        (10.0, 25.0, 0.02, (0.5, 0.5), 0.8, 0.95),
        (0.1, 0.09, 0.05, (0.5, 0.5), 0.9, 0.95),
        (3.0, 16.0, 0.1, (0.6, 0.4), 0.8, 0.9),
        (-2.0, 4.0, 0.5, (0.5, 0.5), 0.8, 0.95),  # negative mean: mde on |mean|
        (1.0, 1.0, 1.0, (0.5, 0.5), 0.8, 0.95),  # tiny samples: t and z differ
    ],
)
def test_matches_statsmodels(test, solver, alternative, mean, variance, mde, weights, power, confidence):
    res = sample_size(
        mean=mean, variance=variance, mde=mde, weights=weights, power=power,
        confidence=confidence, alternative=alternative, test=test,
    )
    d = mde * abs(mean) / math.sqrt(variance)
    ratio = weights[1] / weights[0]
    nobs1 = solver.solve_power(effect_size=d, alpha=1 - confidence, power=power, ratio=ratio, alternative=SM_ALT[alternative])
    assert res.effect_size == pytest.approx(d)
    assert res.units_per_variant[0] == max(2, math.ceil(nobs1 - 1e-6))
    assert res.units_per_variant[1] == max(2, math.ceil(nobs1 * ratio - 1e-6))
    assert res.total_units == sum(res.units_per_variant)


def test_multiple_treatments_use_the_hardest_comparison():
    res = sample_size(mean=10, variance=25, mde=0.02, weights=(0.4, 0.4, 0.2))
    alone = sample_size(mean=10, variance=25, mde=0.02, weights=(0.4, 0.2))
    # the 0.2 arm drives the total; same per-arm sizes as that pair alone, scaled to 3 arms
    assert res.units_per_variant[2] == alone.units_per_variant[1]
    assert res.units_per_variant[0] == res.units_per_variant[1] == alone.units_per_variant[0]


def test_days_needed():
    assert days_needed(1000, 100) == 10
    assert days_needed(1001, 100) == 11
    assert days_needed(0, 5) == 0
    with pytest.raises(StatsInputError):
        days_needed(100, 0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(mean=0.0, variance=1.0, mde=0.1),
        dict(mean=1.0, variance=0.0, mde=0.1),
        dict(mean=1.0, variance=1.0, mde=0.0),
        dict(mean=1.0, variance=1.0, mde=0.1, weights=(1.0,)),
        dict(mean=1.0, variance=1.0, mde=0.1, power=0.01),
        dict(mean=1.0, variance=1.0, mde=0.1, confidence=1.0),
        dict(mean=float("nan"), variance=1.0, mde=0.1),
    ],
)
def test_invalid_inputs_raise(kw):
    with pytest.raises(StatsInputError):
        sample_size(**kw)
