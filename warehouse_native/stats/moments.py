"""Sufficient statistics of one metric, for one variant, in one slice.

The SQL layer sums over units and hands these sums to the statistics layer; every result
``wn`` reports can be recomputed from them (see ``docs/statistics.md``).

Notation, per unit ``i`` of the variant:

* ``y`` — the metric value (for ratio metrics: the per-unit numerator),
* ``d`` — the per-unit denominator (ratio metrics and ``mean`` metrics only),
* ``x`` — the covariate: the same metric over the pre-exposure window (for ratio
  metrics the pre-window numerator),
* ``m`` — the pre-window denominator (ratio metrics with a covariate only).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import StatsInputError

__all__ = ["Moments", "RATIO_FIELDS", "COVARIATE_FIELDS", "RATIO_COVARIATE_FIELDS", "MOMENT_FIELDS"]

#: Σd, Σd², Σy·d
RATIO_FIELDS: tuple[str, ...] = ("den_sum", "den_sum_sq", "num_den_sum")
#: Σx, Σx², Σy·x
COVARIATE_FIELDS: tuple[str, ...] = ("pre_sum", "pre_sum_sq", "sum_cross")
#: Σm, Σm², Σx·m, Σy·m, Σd·x, Σd·m
RATIO_COVARIATE_FIELDS: tuple[str, ...] = (
    "pre_den_sum",
    "pre_den_sum_sq",
    "pre_num_den_sum",
    "num_pre_den_sum",
    "den_pre_sum",
    "den_pre_den_sum",
)
_SQUARE_FIELDS = ("sum_sq", "den_sum_sq", "pre_sum_sq", "pre_den_sum_sq")
_FLOAT_FIELDS = ("sum", "sum_sq", *RATIO_FIELDS, *COVARIATE_FIELDS, *RATIO_COVARIATE_FIELDS)


@dataclass(frozen=True)
class Moments:
    """Per-variant sums over units; optional groups must be given completely or not at all.

    Attributes:
        n: number of units (an ``int`` ≥ 0).
        sum: Σy.  sum_sq: Σy².
        den_sum, den_sum_sq, num_den_sum: Σd, Σd², Σy·d (ratio metrics).
        pre_sum, pre_sum_sq, sum_cross: Σx, Σx², Σy·x (CUPED covariate).
        pre_den_sum, pre_den_sum_sq, pre_num_den_sum, num_pre_den_sum, den_pre_sum,
        den_pre_den_sum: Σm, Σm², Σx·m, Σy·m, Σd·x, Σd·m (CUPED for ratio metrics).

    Numeric values may be given as ``int``, ``float``, ``Decimal`` or numpy scalars; they are
    stored as ``float``. Invalid input raises :class:`StatsInputError`.
    """

    n: int
    sum: float
    sum_sq: float
    den_sum: float | None = None
    den_sum_sq: float | None = None
    num_den_sum: float | None = None
    pre_sum: float | None = None
    pre_sum_sq: float | None = None
    sum_cross: float | None = None
    pre_den_sum: float | None = None
    pre_den_sum_sq: float | None = None
    pre_num_den_sum: float | None = None
    num_pre_den_sum: float | None = None
    den_pre_sum: float | None = None
    den_pre_den_sum: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _as_count(self.n))
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if value is None:
                if name in ("sum", "sum_sq"):
                    raise StatsInputError(f"Moments.{name} is required (got None)")
                continue
            object.__setattr__(self, name, _as_float(name, value))
        for name in _SQUARE_FIELDS:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise StatsInputError(f"Moments.{name} is a sum of squares and cannot be negative (got {value})")
        _check_group(self, "ratio", RATIO_FIELDS)
        _check_group(self, "covariate", COVARIATE_FIELDS)
        _check_group(self, "ratio covariate", RATIO_COVARIATE_FIELDS)
        if self.den_pre_den_sum is not None and not (self.is_ratio and self.pre_sum is not None):
            raise StatsInputError(
                "Moments: ratio covariate sums (pre_den_sum, ...) need both the ratio sums "
                "(den_sum, den_sum_sq, num_den_sum) and the covariate sums (pre_sum, pre_sum_sq, sum_cross)"
            )

    @property
    def is_ratio(self) -> bool:
        """True when the denominator sums are present (metric types ``ratio`` and ``mean``)."""
        return self.den_sum is not None

    @property
    def has_covariate(self) -> bool:
        """True when CUPED can be applied: covariate sums present, and for ratio metrics the
        pre-window denominator sums as well."""
        if self.pre_sum is None:
            return False
        return not self.is_ratio or self.pre_den_sum is not None

    @property
    def mean(self) -> float | None:
        """The raw mean Σy/n, or Σy/Σd for ratio metrics; ``None`` when undefined."""
        if self.n == 0:
            return None
        if self.is_ratio:
            return None if self.den_sum == 0 else self.sum / self.den_sum  # type: ignore[operator]
        return self.sum / self.n

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Moments":
        """Build from a mapping such as a fetched ``wn.metric_aggregates`` row.

        Keys are matched case-insensitively (Snowflake upper-cases names); other keys are
        ignored. ``None`` and NaN become ``None``; ``Decimal``/int values are converted.
        A missing or NULL ``n`` counts as 0 units, and NULL ``sum``/``sum_sq`` with 0 units
        count as 0 (SQL ``sum`` over no rows is NULL).
        """
        lowered = {str(k).lower(): v for k, v in row.items()}
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = lowered.get(f.name)
            if value is not None and not isinstance(value, (bool, np.bool_)):
                if isinstance(value, float) and math.isnan(value):
                    value = None
                elif isinstance(value, Decimal) and value.is_nan():
                    value = None
                elif isinstance(value, np.floating) and np.isnan(value):
                    value = None
            values[f.name] = value
        if values["n"] is None:
            values["n"] = 0
        n = _as_count(values["n"])
        values["n"] = n
        if n == 0:
            for name in ("sum", "sum_sq"):
                if values[name] is None:
                    values[name] = 0.0
        return cls(**values)

    @classmethod
    def from_values(
        cls,
        y: Sequence[float] | np.ndarray,
        d: Sequence[float] | np.ndarray | None = None,
        x: Sequence[float] | np.ndarray | None = None,
        m: Sequence[float] | np.ndarray | None = None,
    ) -> "Moments":
        """Compute the sums from per-unit arrays (for notebooks and tests).

        ``d`` makes a ratio metric, ``x`` adds a covariate, ``m`` the pre-denominator.
        """
        yv = np.asarray(y, dtype=float)
        kw: dict[str, float] = {}
        if d is not None:
            dv = np.asarray(d, dtype=float)
            kw.update(den_sum=dv.sum(), den_sum_sq=(dv * dv).sum(), num_den_sum=(yv * dv).sum())
        if x is not None:
            xv = np.asarray(x, dtype=float)
            kw.update(pre_sum=xv.sum(), pre_sum_sq=(xv * xv).sum(), sum_cross=(yv * xv).sum())
            if m is not None:
                if d is None:
                    raise StatsInputError("Moments.from_values: m (pre-denominator) needs d (denominator)")
                mv = np.asarray(m, dtype=float)
                kw.update(
                    pre_den_sum=mv.sum(),
                    pre_den_sum_sq=(mv * mv).sum(),
                    pre_num_den_sum=(xv * mv).sum(),
                    num_pre_den_sum=(yv * mv).sum(),
                    den_pre_sum=(dv * xv).sum(),
                    den_pre_den_sum=(dv * mv).sum(),
                )
        elif m is not None:
            raise StatsInputError("Moments.from_values: m (pre-denominator) needs x (pre-numerator)")
        return cls(n=int(yv.size), sum=float(yv.sum()), sum_sq=float((yv * yv).sum()), **kw)


MOMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Moments))
assert MOMENT_FIELDS == ("n", *_FLOAT_FIELDS)


def _as_count(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise StatsInputError(f"Moments.n must be a non-negative integer (got {value!r})")
    if isinstance(value, numbers.Integral):
        n = int(value)
    elif isinstance(value, (float, Decimal, np.floating)) and math.isfinite(value) and float(value).is_integer():
        n = int(value)
    else:
        raise StatsInputError(f"Moments.n must be a non-negative integer (got {value!r})")
    if n < 0:
        raise StatsInputError(f"Moments.n must be a non-negative integer (got {n})")
    return n


def _as_float(name: str, value: Any) -> float:
    if type(value) is float:
        if not math.isfinite(value):
            raise StatsInputError(f"Moments.{name} must be finite (got {value!r})")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, Decimal)):
        raise StatsInputError(f"Moments.{name} must be a number (got {value!r})")
    out = float(value)
    if not math.isfinite(out):
        raise StatsInputError(f"Moments.{name} must be finite (got {value!r})")
    return out


def _check_group(m: Moments, label: str, names: tuple[str, ...]) -> None:
    present = [n for n in names if getattr(m, n) is not None]
    if present and len(present) != len(names):
        missing = [n for n in names if getattr(m, n) is None]
        raise StatsInputError(
            f"Moments: incomplete {label} sums: {', '.join(present)} given but "
            f"{', '.join(missing)} missing (give all of {', '.join(names)} or none)"
        )
