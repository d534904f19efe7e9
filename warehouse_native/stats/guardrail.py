"""Guardrail check: a one-sided test for regression beyond a relative margin."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .comparison import check_confidence, join_reasons, prepare_pair
from .distributions import t_cdf, t_sf
from .errors import StatsInputError
from .moments import Moments

__all__ = ["GuardrailResult", "guardrail_check", "DIRECTIONS"]

DIRECTIONS = ("increase", "decrease")


@dataclass(frozen=True)
class GuardrailResult:
    """Outcome of :func:`guardrail_check`.

    ``status``: "fail" (significant regression beyond the margin), "warn" (the point
    estimate regresses beyond the margin, not significantly), "pass", or "unknown" (not
    computable; ``reason`` says why). ``p_value`` is the one-sided p-value of
    H0 "no regression beyond the margin"; ``rel_delta`` the observed relative change
    (CUPED-adjusted when ``cuped``); ``margin`` the ``max_regression`` used.
    """

    status: str
    p_value: float | None
    reason: str | None = None
    rel_delta: float | None = None
    margin: float = 0.0
    cuped: bool = False


def check_direction(direction: str) -> str:
    """Validate a metric direction ("increase" or "decrease" is good)."""
    if direction not in DIRECTIONS:
        raise StatsInputError(f"direction must be 'increase' or 'decrease' (got {direction!r})")
    return direction


def guardrail_check(
    control: Moments,
    variant: Moments,
    *,
    direction: str,
    max_regression: float = 0.0,
    confidence: float = 0.95,
    cuped: bool = False,
) -> GuardrailResult:
    """Test whether ``variant`` regresses the metric by more than ``max_regression``.

    ``direction`` is the metric's *good* direction. With ``δ = max_regression`` (relative,
    0.02 = 2 %), ``T``/``C`` the (CUPED-adjusted) variant/control means and ``s = sign(C)``:

    * good = increase: H1 "rel < −δ", i.e. ``L = T − (1 − δ·s)·C < 0``;
    * good = decrease: H1 "rel > δ", i.e. ``L = T − (1 + δ·s)·C > 0``.

    ``L`` is linear in the arm means, so it is tested with a Welch t-test (delta-method
    variance, Welch–Satterthwaite df) without a ratio approximation; with ``δ = 0`` the
    p-value equals the one-sided :func:`compare` p-value in the bad direction.
    Status "fail" when p < 1 − confidence; "warn" when L is on the bad side but not
    significantly; "pass" otherwise.
    """
    direction = check_direction(direction)
    confidence = check_confidence(confidence)
    delta = float(max_regression)
    if not (math.isfinite(delta) and delta >= 0.0):
        raise StatsInputError(f"max_regression must be a non-negative number (got {max_regression!r})")
    prep = prepare_pair(control, variant, cuped=cuped)
    reasons = list(prep.reasons)
    pair = prep.pair
    if pair is None:
        return GuardrailResult("unknown", None, join_reasons(reasons), margin=delta)
    c = pair.control_adjusted
    rel = pair.relative()
    rel_delta = rel.estimate if rel is not None else None
    if rel is None and delta > 0.0:
        reasons.append("control mean is zero, so the relative margin is zero")
    s = 0.0 if c == 0.0 else math.copysign(1.0, c)
    a = 1.0 - delta * s if direction == "increase" else 1.0 + delta * s
    lin = pair.linear(a)
    common = dict(rel_delta=rel_delta, margin=delta, cuped=pair.cuped)
    if lin.variance <= 0.0:
        reasons.append("zero variance in both arms, so the regression cannot be tested")
        return GuardrailResult("unknown", None, join_reasons(reasons), **common)
    stat = lin.estimate / lin.std_error
    if direction == "increase":
        p = t_cdf(stat, lin.dof)
        regressed = lin.estimate < 0.0
    else:
        p = t_sf(stat, lin.dof)
        regressed = lin.estimate > 0.0
    if p < 1.0 - confidence:
        status = "fail"
    elif regressed:
        status = "warn"
    else:
        status = "pass"
    return GuardrailResult(status, min(1.0, max(0.0, p)), join_reasons(reasons), **common)
