"""Minimum detectable effect (the scorecard's mde_80 power input) against statsmodels."""

import pytest


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
