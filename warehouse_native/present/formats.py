"""How numbers are written on the pages (and in the terminal): one place, so tests can check them."""

from __future__ import annotations

import math
from typing import Any

DASH = "—"


def missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x: float | None, digits: int = 2) -> str:
    """A relative change: ``+1.23%``."""
    return DASH if missing(x) else f"{x * 100:+.{digits}f}%"


def num(x: float | None) -> str:
    """A mean: 4 decimals below 10, 2 below 1000, then thousands separators."""
    if missing(x):
        return DASH
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.2f}"
    return f"{x:.4f}"


def pvalue(x: float | None) -> str:
    if missing(x):
        return DASH
    return "<0.0001" if x < 1e-4 else f"{x:.4f}"


def count(x: int | float | None) -> str:
    return DASH if missing(x) else f"{int(x):,}"
