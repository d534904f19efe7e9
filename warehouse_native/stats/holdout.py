"""Holdout readings: is a treatment worse than the held-out control on some metric?

A holdout keeps a small control away from the features for months and is read every day, but
never stopped early.  Every metric is read as a guardrail is (``guardrail_check``: one-sided,
in the metric's bad direction, beyond a relative margin δ), over the family of all metrics ×
treatments:

* **interim** (before the planned end): a regression is established when the always-valid
  relative interval (``sequential_compare``) at level ``1 − α/m`` lies wholly beyond the
  margin on the bad side.  By Ville's inequality and a union bound, the chance that a holdout
  without any real regression ever reports one, over every daily look and all ``m``
  readings, is at most α (``m = 1`` with ``correction: none``: per reading);
* **final** (at or after the planned end): the fixed-horizon one-sided p-values, adjusted
  over the ``m`` readings with the experiment's correction, below α.  Valid because a holdout
  never stops early: the final look is the one planned.

A reading that is not established but whose point estimate is beyond the margin is ``warn``.
"""

from __future__ import annotations

import math
from typing import Sequence

from .correction import adjust_p_values, check_method
from .errors import StatsInputError
from .guardrail import check_direction
from .moments import Moments
from .sequential import sequential_compare

__all__ = ["beyond_margin", "interim_regression", "final_regressions", "holdout_status"]


def beyond_margin(rel_lower: float | None, rel_upper: float | None, *, direction: str, margin: float) -> bool | None:
    """Does the relative interval lie wholly on the bad side of the margin?  Good = increase:
    ``upper < −δ``; good = decrease: ``lower > δ``.  None: no interval."""
    direction = check_direction(direction)
    if rel_lower is None or rel_upper is None or math.isnan(rel_lower) or math.isnan(rel_upper):
        return None
    return rel_upper < -margin if direction == "increase" else rel_lower > margin


def interim_regression(control: Moments, variant: Moments, *, direction: str, margin: float,
                       confidence: float, family: int, cuped: bool = False) -> bool | None:
    """Always-valid regression reading of one metric × treatment in a family of ``family``
    readings (Bonferroni: the interval at level ``1 − (1 − confidence)/family``)."""
    if family < 1:
        raise StatsInputError(f"family must be at least 1 (got {family})")
    level = 1.0 - (1.0 - confidence) / family
    s = sequential_compare(control, variant, confidence=level, cuped=cuped)
    return beyond_margin(s.rel_ci_lower, s.rel_ci_upper, direction=direction, margin=margin)


def final_regressions(p_values: Sequence[float | None], *, correction: str, confidence: float) -> list[bool | None]:
    """Final reading: the one-sided regression p-values of the family, adjusted with
    ``correction``, below ``1 − confidence``.  None where a p-value is None."""
    alpha = 1.0 - confidence
    adjusted = adjust_p_values(list(p_values), check_method(correction))
    return [None if p is None else bool(p < alpha) for p in adjusted]


def holdout_status(guardrail_status: str | None, regressed: bool | None) -> str:
    """The row's status from the guardrail test's own status and the holdout's reading:
    ``fail`` when the reading establishes the regression; ``warn`` when the point estimate is
    beyond the margin (the guardrail test said fail or warn) but the reading does not
    establish it; else the guardrail status (pass or unknown)."""
    if regressed:
        return "fail"
    if guardrail_status in ("fail", "warn"):
        return "warn"
    return guardrail_status or "unknown"
