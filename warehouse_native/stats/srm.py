"""Sample-ratio-mismatch check: chi-square goodness of fit against configured weights."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from scipy import special

from .errors import StatsInputError

__all__ = ["SrmResult", "srm_check"]


@dataclass(frozen=True)
class SrmResult:
    """Outcome of :func:`srm_check`.

    ``status``: "pass" | "warn" | "fail" | "unknown"; numbers are ``None`` when unknown.
    ``expected`` holds the expected unit count per variant (empty when unknown).
    ``reason`` explains "unknown" and anything unusual (e.g. small expected counts).
    """

    chi2: float | None
    dof: int | None
    p_value: float | None
    status: str
    reason: str | None = None
    expected: dict[str, float] = field(default_factory=dict)


def srm_check(
    counts: Mapping[str, int],
    weights: Mapping[str, float],
    *,
    warn_below: float = 0.01,
    fail_below: float = 0.001,
) -> SrmResult:
    """Chi-square test of observed unit counts per variant against the configured split.

    Weights are normalised to sum to 1. Variants in ``weights`` but not in ``counts`` count
    as 0 units. A variant with units but no (or zero) weight is an outright mismatch
    (status "fail", p = 0). Status: "fail" if p < ``fail_below``, "warn" if
    p < ``warn_below``, else "pass"; "unknown" when there are no units or fewer than two
    weighted variants. Multi-exposed units (``__multiple__``) must be left out by the caller.
    """
    if not (0.0 <= fail_below <= warn_below <= 1.0):
        raise StatsInputError(f"need 0 <= fail_below <= warn_below <= 1 (got {fail_below}, {warn_below})")
    for name, c in counts.items():
        if c is None or float(c) < 0 or not math.isfinite(float(c)):
            raise StatsInputError(f"unit count for variant {name!r} must be a non-negative number (got {c!r})")
    for name, w in weights.items():
        if w is None or not math.isfinite(float(w)) or float(w) < 0:
            raise StatsInputError(f"weight for variant {name!r} must be a non-negative number (got {w!r})")
    total_weight = sum(float(w) for w in weights.values())
    if total_weight <= 0:
        raise StatsInputError("variant weights must have a positive sum")

    names = list(weights) + [k for k in counts if k not in weights]
    observed = {k: float(counts.get(k, 0) or 0) for k in names}
    total = sum(observed.values())
    if total == 0:
        return SrmResult(None, None, None, "unknown", "no units exposed yet")
    share = {k: float(weights.get(k, 0.0)) / total_weight for k in names}
    unweighted = [k for k in names if share[k] == 0.0 and observed[k] > 0]
    expected = {k: total * share[k] for k in names}
    weighted = [k for k in names if share[k] > 0.0]
    if unweighted:
        return SrmResult(
            None,  # the chi-square statistic is infinite
            len(weighted) - 1 if len(weighted) > 1 else None,
            0.0,
            "fail",
            f"units were assigned to variant(s) with no configured weight: {', '.join(unweighted)}",
            expected,
        )
    if len(weighted) < 2:
        return SrmResult(None, None, None, "unknown", "fewer than two variants have a positive weight", expected)
    chi2 = sum((observed[k] - expected[k]) ** 2 / expected[k] for k in weighted)
    dof = len(weighted) - 1
    p = float(special.chdtrc(dof, chi2))
    if p < fail_below:
        status = "fail"
    elif p < warn_below:
        status = "warn"
    else:
        status = "pass"
    reason = None
    if min(expected[k] for k in weighted) < 5:
        reason = "expected count below 5 in some variant; the chi-square approximation is rough"
    return SrmResult(float(chi2), dof, p, status, reason, expected)
