"""Days on which exposures stopped: logging outages and variants that stopped being assigned.

Input: units first exposed per day and variant (the run counts them from its exposures
relation anyway).  Two findings, each a plain count test:

* a day of the window with no new unit in any variant (``warn``: a logging gap, or a
  deliberate pause; the numbers are still right, but the population changed);
* a day on which a configured variant got no new unit although its weight gave it an
  expected ``λ ≥ min_expected`` of that day's units (``fail``: under random assignment the
  chance of that is ``e^-λ`` at most, below 5e-5 for λ = 10; assignment broke for that arm).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping, Sequence

__all__ = ["GapResult", "exposure_gaps"]


@dataclass(frozen=True)
class GapResult:
    status: str                 # pass | warn | fail | unknown
    empty_days: tuple[dt.date, ...]                  # no new unit in any variant
    starved: tuple[tuple[dt.date, str, float], ...]  # (day, variant, expected units) with none
    detail: str


def _days(dates: Sequence[dt.date]) -> str:
    shown = ", ".join(d.isoformat() for d in dates[:5])
    return shown + (f" and {len(dates) - 5} more" if len(dates) > 5 else "")


def exposure_gaps(units: Mapping[tuple[dt.date, str], int], weights: Mapping[str, float],
                  first_day: dt.date, last_day: dt.date, *, min_expected: float = 10.0) -> GapResult:
    """``units[(day, variant)]``: units first exposed that day in that variant (any variant
    name; unconfigured ones count towards the day's total).  ``weights``: configured variants."""
    if last_day < first_day:
        return GapResult("unknown", (), (), "no day to check")
    total_weight = sum(weights.values()) or 1.0
    by_day: dict[dt.date, dict[str, int]] = {}
    for (day, variant), n in units.items():
        by_day.setdefault(day, {})[variant] = by_day.get(day, {}).get(variant, 0) + int(n)
    days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    empty = tuple(d for d in days if sum(by_day.get(d, {}).values()) == 0)
    starved = []
    for d in days:
        counts = by_day.get(d, {})
        total = sum(counts.values())
        for variant, w in weights.items():
            expected = total * w / total_weight
            if counts.get(variant, 0) == 0 and expected >= min_expected:
                starved.append((d, variant, expected))
    parts = []
    if starved:
        parts.append("no new unit in " + "; ".join(f"{v} on {d.isoformat()} (expected {e:.0f})"
                                                    for d, v, e in starved[:5])
                     + (f" and {len(starved) - 5} more" if len(starved) > 5 else ""))
    if empty:
        parts.append(f"{len(empty)} of {len(days)} days without any new exposure: {_days(list(empty))}")
    status = "fail" if starved else "warn" if empty else "pass"
    detail = "; ".join(parts) or f"every variant got new units on each of the {len(days)} days"
    return GapResult(status, empty, tuple(starved), detail)
