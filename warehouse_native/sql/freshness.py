"""The source-freshness query: one statement, the newest row of each source a run reads.

Each source is read only in ``[since, until)`` (the last ``fail_after_hours`` before the
analysis end, see ``stats/freshness.py``), so engines that prune by the timestamp (DuckDB
zone maps, Parquet min/max statistics on Spark, a PostgreSQL index or partitions on it) read
those days only; the sources are combined with ``UNION ALL`` into one round trip.
"""

from __future__ import annotations

import datetime as dt
from typing import Mapping

from ..plan import AnalysisPlan
from .expressions import ts
from .render import _ENV, _parse, write

STEP = "source_freshness"


def reference_time(analysis_end: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The time the sources are expected to be complete up to: the analysis end, or the run's
    start (UTC) when the run happens before it (a run during the --as-of day)."""
    return min(analysis_end, now)


def window_start(reference: dt.datetime, period_start: dt.datetime, fail_after_hours: float) -> dt.datetime:
    """Where the look for a source's newest row starts: ``fail_after`` hours before the
    reference, or the start of the analysed period if that is later."""
    return max(period_start, reference - dt.timedelta(hours=fail_after_hours))


def freshness_sql(plan: AnalysisPlan, *, since: Mapping[str, dt.datetime], until: dt.datetime,
                  dialect: str = "duckdb") -> str | None:
    """The query (columns ``source, last_at``, one row per source of ``plan.freshness``) in
    ``dialect``; None when no source is checked."""
    if not plan.freshness:
        return None
    sql = _ENV.get_template("freshness.sql.j2").render(targets=plan.freshness, since=since, until=until, ts=ts)
    return write(_parse(sql, STEP), dialect, STEP)
