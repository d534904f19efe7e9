"""Comparing what two runs published, value by value (engines, modes and query shapes must agree)."""

from __future__ import annotations

import math
from typing import Any

REL_TOL = 1e-9
ABS_TOL = 1e-12
SCORECARD_KEY = ("metric", "variant", "dimension", "dimension_value")
# columns that differ between any two runs by design
PER_RUN = {"run_id", "computed_at"}


def by_key(rows: list[dict[str, Any]], key: tuple[str, ...] = SCORECARD_KEY) -> dict[tuple, dict[str, Any]]:
    out = {tuple(r[k] for k in key): r for r in rows}
    assert len(out) == len(rows), f"duplicate keys {key}"
    return out


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def assert_same_rows(expected: dict, actual: dict, what: str, ignore: set[str] = PER_RUN) -> int:
    """Every row and every column equal (numbers to 1e-9 relative); returns the number of values compared."""
    assert actual.keys() == expected.keys(), (
        f"{what}: rows differ; only expected: {sorted(expected.keys() - actual.keys(), key=str)[:5]}, "
        f"only actual: {sorted(actual.keys() - expected.keys(), key=str)[:5]}")
    bad, compared = [], 0
    for key, row in expected.items():
        other = {k.lower(): v for k, v in actual[key].items()}
        row = {k.lower(): v for k, v in row.items()}
        assert set(other) == set(row), f"{what}: columns differ: {set(row) ^ set(other)}"
        for col, value in row.items():
            if col in ignore:
                continue
            compared += 1
            if not same_value(value, other[col]):
                bad.append(f"{key} {col}: expected={value!r} actual={other[col]!r}")
    assert not bad, f"{what}: {len(bad)} values differ:\n" + "\n".join(bad[:20])
    return compared


def scorecard(adapter, schema: str, experiment: str) -> dict[tuple, dict[str, Any]]:
    """The experiment's published scorecard (scorecard_latest), by metric x variant x slice."""
    return by_key(adapter.fetch(f"select * from {schema}.scorecard_latest where experiment = {adapter.placeholder}",
                                [experiment]))
