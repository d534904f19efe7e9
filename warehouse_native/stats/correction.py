"""Multiple-comparison corrections of p-values, and matching per-test confidence levels.

The family is whatever the caller passes in one call (in ``wn``: treatment variants ×
primary metrics of one experiment, per slice). ``None`` entries (tests that could not be
computed) pass through as ``None`` and do not count towards the family size ``m``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import StatsInputError

__all__ = ["CORRECTION_METHODS", "adjust_p_values", "adjusted_confidence", "check_method"]

CORRECTION_METHODS = ("none", "bonferroni", "holm", "bh")


def check_method(method: str) -> str:
    """Validate a correction method name (case-insensitive); returns it lower-cased."""
    name = str(method).lower()
    if name not in CORRECTION_METHODS:
        raise StatsInputError(f"correction method must be one of {', '.join(CORRECTION_METHODS)} (got {method!r})")
    return name


def _valid(p_values: Sequence[float | None]) -> tuple[list[int], np.ndarray]:
    idx: list[int] = []
    vals: list[float] = []
    for i, p in enumerate(p_values):
        if p is None:
            continue
        v = float(p)
        if math.isnan(v):
            continue
        if not (0.0 <= v <= 1.0):
            raise StatsInputError(f"p-values must lie in [0, 1] (got {p!r} at position {i})")
        idx.append(i)
        vals.append(v)
    return idx, np.asarray(vals, dtype=float)


def adjust_p_values(p_values: Sequence[float | None], method: str) -> list[float | None]:
    """Adjusted p-values, in input order.

    * ``none``: unchanged.
    * ``bonferroni``: ``min(1, m·p)``.
    * ``holm``: step-down; with ``p_(1) ≤ … ≤ p_(m)``,
      ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j))``.
    * ``bh`` (Benjamini–Hochberg, FDR): step-up,
      ``p̃_(i) = min_{j ≥ i} min(1, m·p_(j)/j)``.

    Reject a hypothesis at level α when its adjusted p-value is ≤ α (the same decisions as
    ``statsmodels.stats.multitest.multipletests``).
    """
    method = check_method(method)
    idx, p = _valid(p_values)
    out: list[float | None] = [None] * len(p_values)
    m = p.size
    if m == 0:
        return out
    if method == "none":
        adj = p.copy()
    elif method == "bonferroni":
        adj = np.minimum(1.0, p * m)
    else:
        order = np.argsort(p, kind="mergesort")
        ps = p[order]
        ranks = np.arange(1, m + 1)
        if method == "holm":
            adj_sorted = np.maximum.accumulate(np.minimum(1.0, (m - ranks + 1) * ps))
        else:  # bh
            adj_sorted = np.minimum.accumulate(np.minimum(1.0, ps * m / ranks)[::-1])[::-1]
        adj = np.empty(m)
        adj[order] = adj_sorted
    for i, v in zip(idx, adj):
        out[i] = float(v)
    return out


def adjusted_confidence(p_values: Sequence[float | None], method: str, confidence: float = 0.95) -> float:
    """Per-test confidence level for intervals that match the correction of this family.

    With ``α = 1 − confidence`` and ``m`` the number of non-``None`` p-values:

    * ``none``: ``confidence``.
    * ``bonferroni`` and ``holm``: ``1 − α/m``. Bonferroni intervals are simultaneous
      intervals; Holm has no interval of its own that matches its step-down decisions, so
      we use the Bonferroni intervals, which remain valid simultaneously (they can be more
      conservative than Holm's rejections: an interval may cover 0 for a Holm-rejected test).
    * ``bh``: Benjamini–Yekutieli FCR-adjusted intervals, ``1 − R·α/m`` where ``R`` is the
      number of BH rejections at level α (``R = 0`` → ``1 − α/m``). Every BH-rejected test
      then has an interval excluding 0, and the false coverage-statement rate among the
      selected intervals is at most α (for independent or PRDS tests).
    """
    method = check_method(method)
    if not (0.0 < float(confidence) < 1.0):
        raise StatsInputError(f"confidence must be strictly between 0 and 1 (got {confidence!r})")
    alpha = 1.0 - float(confidence)
    _, p = _valid(p_values)
    m = p.size
    if method == "none" or m <= 1:
        return float(confidence)
    if method in ("bonferroni", "holm"):
        return 1.0 - alpha / m
    adj = adjust_p_values(list(p), "bh")
    rejected = sum(1 for v in adj if v is not None and v <= alpha)
    return 1.0 - max(rejected, 1) * alpha / m
