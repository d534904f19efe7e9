"""Multiple-comparison corrections against statsmodels' multipletests."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from warehouse_native.stats import Moments, StatsInputError, adjust_p_values, adjusted_confidence, compare

SM_METHOD = {"bonferroni": "bonferroni", "holm": "holm", "bh": "fdr_bh"}


@pytest.mark.parametrize("method", ["bonferroni", "holm", "bh"])
@pytest.mark.parametrize("seed", range(5))
def test_matches_multipletests(method, seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 12), rng.uniform(0, 0.01, 5)])
    p[3] = p[7]  # a tie
    rng.shuffle(p)
    ours = adjust_p_values(list(p), method)
    ref = multipletests(p, alpha=0.05, method=SM_METHOD[method])[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["none", "bonferroni", "holm", "bh"])
def test_none_entries_pass_through_and_are_not_counted(method):
    p = [0.01, None, 0.04, float("nan"), 0.03]
    ours = adjust_p_values(p, method)
    assert ours[1] is None and ours[3] is None
    ref = [0.01, 0.04, 0.03] if method == "none" else multipletests([0.01, 0.04, 0.03], method=SM_METHOD[method])[1]
    np.testing.assert_allclose([ours[0], ours[2], ours[4]], ref, rtol=1e-12)


def test_empty_and_invalid():
    assert adjust_p_values([], "holm") == []
    assert adjust_p_values([None], "bh") == [None]
    with pytest.raises(StatsInputError, match="correction method"):
        adjust_p_values([0.1], "sidak")
    with pytest.raises(StatsInputError, match=r"\[0, 1\]"):
        adjust_p_values([1.5], "holm")
    assert adjust_p_values([0.2], "HOLM") == [0.2]


def test_adjusted_confidence_rules():
    p = [0.001, 0.02, 0.3, None, 0.8]
    assert adjusted_confidence(p, "none", 0.95) == 0.95
    assert adjusted_confidence(p, "bonferroni", 0.95) == pytest.approx(1 - 0.05 / 4)
    assert adjusted_confidence(p, "holm", 0.95) == pytest.approx(1 - 0.05 / 4)
    # BH at 0.05 rejects only 0.001 (0.02·4/2 = 0.04 ≤ 0.05 → also rejected): R = 2
    assert adjust_p_values(p, "bh")[1] == pytest.approx(0.04)
    assert adjusted_confidence(p, "bh", 0.95) == pytest.approx(1 - 2 * 0.05 / 4)
    # no rejection → falls back to 1 − α/m
    assert adjusted_confidence([0.5, 0.9], "bh", 0.95) == pytest.approx(1 - 0.05 / 2)
    assert adjusted_confidence([0.01], "bonferroni", 0.9) == 0.9


def test_adjusted_intervals_agree_with_adjusted_decisions():
    """Intervals at the adjusted level exclude 0 exactly when the Bonferroni-adjusted
    p-value is below α; with BH (FCR intervals), every BH rejection has an interval excluding 0."""
    rng = np.random.default_rng(21)
    pairs = []
    for shift in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3):
        c, t = rng.normal(1, 1, 400), rng.normal(1 + shift, 1, 400)
        pairs.append((Moments.from_values(c), Moments.from_values(t)))
    first = [compare(c, t) for c, t in pairs]
    p = [r.p_value for r in first]
    for method in ("bonferroni", "bh"):
        adj = adjust_p_values(p, method)
        level = adjusted_confidence(p, method, 0.95)
        for (c, t), a in zip(pairs, adj):
            r = compare(c, t, confidence=level)
            excludes_zero = r.abs_ci_lower > 0 or r.abs_ci_upper < 0
            if method == "bonferroni":
                assert excludes_zero == (a < 0.05)
            elif a <= 0.05:
                assert excludes_zero
