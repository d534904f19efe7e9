"""Source freshness: did every source a run reads deliver rows up to the analysis end?

Late or stopped data makes the last day(s) of an analysis incomplete: units exposed then look
inactive, and an arm with a different share of recent units is biased.  Per source, the lag is
``reference − newest row``, where ``reference = min(analysis end, run start)`` (a run during the
``--as-of`` day cannot expect rows after its own start).  With the source's thresholds
(hours): ``pass`` up to ``warn_after``; ``warn`` above it; ``fail`` above ``fail_after``, or
when the source has no row in the analysed period at all.

The newest row is only looked for in ``[max(period start, reference − fail_after), reference)``
(``sql/freshness.py``): a row older than ``fail_after`` hours fails the source whatever its
exact time, so the query reads only the last ``fail_after`` hours (engines prune the rest by
the timestamp).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping

__all__ = ["FreshnessResult", "SourceLag", "source_freshness"]

_RANK = {"pass": 0, "unknown": 1, "warn": 2, "fail": 3}


@dataclass(frozen=True)
class SourceLag:
    source: str
    status: str                      # pass | warn | fail
    last_at: dt.datetime | None      # newest row in the window (None: none)
    lag_hours: float | None          # reference - last_at, in hours
    text: str


@dataclass(frozen=True)
class FreshnessResult:
    status: str                      # pass | warn | fail | unknown
    worst_lag_hours: float | None    # the largest lag of a source with a row in the window
    sources: tuple[SourceLag, ...]
    detail: str


def _naive_utc(value: dt.datetime | dt.date) -> dt.datetime:
    if not isinstance(value, dt.datetime):   # a DATE column: the start of that day
        return dt.datetime.combine(value, dt.time())
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _when(value: dt.datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value.second or value.microsecond else f"{value:%Y-%m-%d %H:%M}"


def _lag(source: str, last: dt.datetime | dt.date | None, warn_after: float, fail_after: float,
         reference: dt.datetime, period_start: dt.datetime) -> SourceLag:
    if last is None:
        if reference - dt.timedelta(hours=fail_after) <= period_start:   # the look reached the period's start
            why = f"no row in the analysed period ({_when(period_start)} to {_when(reference)})"
        else:
            why = f"no row in the {fail_after:g} h before {_when(reference)} (fail after {fail_after:g} h)"
        return SourceLag(source, "fail", None, None, f"{source}: {why}")
    at = _naive_utc(last)
    hours = max(0.0, (reference - at).total_seconds() / 3600)
    status = "fail" if hours > fail_after else "warn" if hours > warn_after else "pass"
    limit = {"fail": f" (fail after {fail_after:g} h)", "warn": f" (warn after {warn_after:g} h)"}.get(status, "")
    return SourceLag(source, status, at, hours,
                     f"{source}: last row {_when(at)}, {hours:.1f} h before {_when(reference)}{limit}")


def source_freshness(newest: Mapping[str, dt.datetime | dt.date | None],
                     thresholds: Mapping[str, tuple[float, float]], *, reference: dt.datetime,
                     period_start: dt.datetime) -> FreshnessResult:
    """``newest[source]``: the newest row's time in the window the query read (None:
    none); ``thresholds[source]``: ``(warn_after_hours, fail_after_hours)``.  Sources are
    reported in the order of ``thresholds``."""
    if not thresholds:
        return FreshnessResult("unknown", None, (), "no source to check (every source has freshness: false)")
    if reference <= period_start:
        return FreshnessResult("unknown", None, (), f"the analysed period has not begun at {_when(reference)}")
    lags = tuple(_lag(name, newest.get(name), warn, fail, reference, period_start)
                 for name, (warn, fail) in thresholds.items())
    status = max((s.status for s in lags), key=_RANK.__getitem__)
    known = [s.lag_hours for s in lags if s.lag_hours is not None]
    late = [s.text for s in lags if s.status != "pass"]
    fresh = [f"{s.source} {s.lag_hours:.1f} h" for s in lags if s.status == "pass"]
    parts = late + ([f"fresh: {', '.join(fresh)} before {_when(reference)}"] if fresh else [])
    return FreshnessResult(status, max(known) if known else None, lags, "; ".join(parts))
