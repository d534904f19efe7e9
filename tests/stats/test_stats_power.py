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


def test_minimum_detectable_effect_matches_statsmodels():
    """MDE at fixed sizes: solve statsmodels' NormalIndPower for the effect size instead."""
    from statsmodels.stats.power import NormalIndPower

    from warehouse_native.stats import minimum_detectable_effect

    sd, mean, n_c, n_t = 2.0, 5.0, 4000, 1000
    mde = minimum_detectable_effect(control_mean=mean, control_var=sd**2, control_n=n_c,
                                    variant_var=sd**2, variant_n=n_t, confidence=0.95, power=0.8)
    d = NormalIndPower().solve_power(nobs1=n_c, ratio=n_t / n_c, alpha=0.05, power=0.8, effect_size=None)
    # statsmodels also counts the far tail and solves numerically: agreement to 1e-4 relative
    assert mde == pytest.approx(d * sd / mean, rel=1e-4)
    assert minimum_detectable_effect(control_mean=0.0, control_var=1, control_n=10, variant_var=1,
                                     variant_n=10) is None
