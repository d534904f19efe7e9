"""Pre-exposure balance: were the arms alike before the experiment started?

Randomisation makes every pre-exposure quantity equal across arms in expectation.  wn already
sums each CUPED metric's pre-window value per unit (``pre_sum``, ``pre_sum_sq``), so a Welch
t-test per (metric, treatment) against control costs nothing extra.  A large difference means
broken assignment, a bad join, or a population that changed mid-way: the health check
``pre_exposure_bias`` reports the smallest p-value, Bonferroni-adjusted over the comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .distributions import t_sf
from .moments import Moments

__all__ = ["BalanceResult", "pre_exposure_balance", "welch_pre"]


@dataclass(frozen=True)
class BalanceResult:
    status: str                    # pass | warn | fail | unknown
    statistic: float | None        # Welch t of the most imbalanced comparison
    p_value: float | None          # its p-value, Bonferroni-adjusted over ``comparisons``
    comparisons: int
    worst: str | None              # label of the most imbalanced comparison
    detail: str


def welch_pre(control: Moments, treat: Moments) -> tuple[float, float, float] | None:
    """Welch's t, degrees of freedom and two-sided p of the pre-window means (treatment −
    control); None when an arm has < 2 units, no covariate, or no variance at all."""
    arms = []
    for m in (control, treat):
        if m.pre_sum is None or m.pre_sum_sq is None or m.n < 2:
            return None
        mean = m.pre_sum / m.n
        var = max((m.pre_sum_sq - m.n * mean * mean) / (m.n - 1), 0.0)
        arms.append((mean, var / m.n, m.n))
    (mc, sc, nc), (mt, st, nt) = arms
    se2 = sc + st
    if se2 <= 0:
        return None
    t = (mt - mc) / math.sqrt(se2)
    df = se2 * se2 / ((sc * sc) / (nc - 1) + (st * st) / (nt - 1))
    return t, df, min(1.0, 2 * t_sf(abs(t), df))


def pre_exposure_balance(pairs: Sequence[tuple[str, Moments, Moments]], *, warn_below: float = 0.01,
                         fail_below: float = 0.001) -> BalanceResult:
    """Test each ``(label, control, treatment)`` pair; the status follows the smallest p-value
    times the number of comparisons (Bonferroni): ``fail`` below ``fail_below``, ``warn``
    below ``warn_below``."""
    tests = [(label, r) for label, c, t in pairs if (r := welch_pre(c, t)) is not None]
    if not tests:
        return BalanceResult("unknown", None, None, 0, None, "no metric with a pre-exposure covariate to compare")
    label, (t, df, p) = min(tests, key=lambda item: item[1][2])
    k = len(tests)
    adjusted = min(1.0, p * k)
    status = "fail" if adjusted < fail_below else "warn" if adjusted < warn_below else "pass"
    return BalanceResult(status, t, adjusted, k, label,
                         f"largest pre-exposure difference: {label} (Welch t = {t:.2f}, df = {df:.0f}, "
                         f"p = {p:.3g}); Bonferroni over {k} metric × treatment comparisons: p = {adjusted:.3g}")
