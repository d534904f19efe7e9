"""Sufficient statistics of one metric, for one variant, in one slice.

The SQL layer sums over units and hands these sums to the statistics layer; every result
``wn`` reports can be recomputed from them (see ``docs/statistics.md``).

Notation, per unit ``i`` of the variant:

* ``y`` — the metric value (for ratio metrics: the per-unit numerator),
* ``d`` — the per-unit denominator (ratio metrics and ``mean`` metrics only),
* ``x`` — the covariate: the same metric over the pre-exposure window (for ratio
  metrics the pre-window numerator),
* ``m`` — the pre-window denominator (ratio metrics with a covariate only),
* ``c_1 … c_k`` — further covariates (CUPAC, ``analysis.covariates``): other metrics'
  pre-window values per unit, with their own sums in :class:`CovariateSums`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import StatsInputError

__all__ = ["Moments", "CovariateSums", "OWN_COVARIATE", "RATIO_FIELDS", "COVARIATE_FIELDS",
           "RATIO_COVARIATE_FIELDS", "MOMENT_FIELDS"]

#: The name under which results list the metric's own covariate (``x``, or ``x/m`` for ratios);
#: further covariates keep their own names, which may not be this one.
OWN_COVARIATE = "pre"

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


Vector = tuple[float, ...]


@dataclass(frozen=True)
class CovariateSums:
    """Sums of further covariates ``c_1 … c_k`` of one metric, in one variant and slice.

    Attributes:
        names: the covariates' names (unique; never :data:`OWN_COVARIATE`).
        sums: Σc_j.
        products: Σc_j·c_l, a symmetric k × k matrix (its diagonal: Σc_j²).
        with_y: Σy·c_j.  with_d: Σd·c_j (ratio metrics).
        with_x: Σx·c_j (the metric's own covariate).  with_m: Σm·c_j (ratio metrics' own covariate).

    Which of ``with_d``/``with_x``/``with_m`` are given must match the :class:`Moments` they
    belong to (checked there). Values are stored as floats; invalid input raises
    :class:`StatsInputError`.
    """

    names: tuple[str, ...]
    sums: Vector
    products: tuple[Vector, ...]
    with_y: Vector
    with_d: Vector | None = None
    with_x: Vector | None = None
    with_m: Vector | None = None

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        k = len(names)
        if k == 0:
            raise StatsInputError("CovariateSums: give at least one covariate (or none at all: covariates=None)")
        if len(set(names)) != k or OWN_COVARIATE in names:
            raise StatsInputError(f"CovariateSums: names must be unique and not '{OWN_COVARIATE}' (got {names})")
        object.__setattr__(self, "names", names)
        for field_name in ("sums", "with_y", "with_d", "with_x", "with_m"):
            value = getattr(self, field_name)
            if value is None:
                if field_name in ("sums", "with_y"):
                    raise StatsInputError(f"CovariateSums.{field_name} is required")
                continue
            object.__setattr__(self, field_name, _as_vector(f"CovariateSums.{field_name}", value, k))
        rows = tuple(_as_vector("CovariateSums.products", row, k) for row in self.products)
        if len(rows) != k:
            raise StatsInputError(f"CovariateSums.products must be {k} x {k} (got {len(rows)} rows)")
        for j in range(k):
            if rows[j][j] < 0:
                raise StatsInputError(f"CovariateSums.products[{j}][{j}] is a sum of squares and cannot be negative")
        object.__setattr__(self, "products", rows)

    @property
    def k(self) -> int:
        return len(self.names)

    @classmethod
    def from_values(
        cls,
        covariates: Mapping[str, Sequence[float] | np.ndarray],
        y: Sequence[float] | np.ndarray,
        d: Sequence[float] | np.ndarray | None = None,
        x: Sequence[float] | np.ndarray | None = None,
        m: Sequence[float] | np.ndarray | None = None,
    ) -> "CovariateSums":
        """The sums from per-unit arrays (``covariates``: name -> values of each unit)."""
        names = tuple(covariates)
        c = np.array([np.asarray(covariates[n], dtype=float) for n in names]).reshape(len(names), -1)

        def dot(v):
            return None if v is None else tuple(float(t) for t in c @ np.asarray(v, dtype=float))

        return cls(names=names, sums=tuple(float(t) for t in c.sum(axis=1)),
                   products=tuple(tuple(float(t) for t in row) for row in c @ c.T),
                   with_y=dot(y), with_d=dot(d), with_x=dot(x), with_m=dot(m))


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
        covariates: sums of further covariates (:class:`CovariateSums`), or ``None``.

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
    covariates: CovariateSums | None = None

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
        if self.covariates is not None:
            _check_covariates(self)

    @property
    def is_ratio(self) -> bool:
        """True when the denominator sums are present (metric types ``ratio`` and ``mean``)."""
        return self.den_sum is not None

    @property
    def has_own_covariate(self) -> bool:
        """True when the metric's own covariate sums are present (for ratio metrics with the
        pre-window denominator sums)."""
        if self.pre_sum is None:
            return False
        return not self.is_ratio or self.pre_den_sum is not None

    @property
    def has_covariate(self) -> bool:
        """True when CUPED can be applied: the own covariate's sums or further covariates present."""
        return self.has_own_covariate or self.covariates is not None

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
        for name in MOMENT_FIELDS:
            value = lowered.get(name)
            if value is not None and not isinstance(value, (bool, np.bool_)):
                if isinstance(value, float) and math.isnan(value):
                    value = None
                elif isinstance(value, Decimal) and value.is_nan():
                    value = None
                elif isinstance(value, np.floating) and np.isnan(value):
                    value = None
            values[name] = value
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
        covariates: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    ) -> "Moments":
        """Compute the sums from per-unit arrays (for notebooks and tests).

        ``d`` makes a ratio metric, ``x`` adds a covariate, ``m`` the pre-denominator,
        ``covariates`` (name -> per-unit values) further covariates.
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
        extra = None
        if covariates:
            extra = CovariateSums.from_values(covariates, yv, d, x, m if x is not None else None)
        return cls(n=int(yv.size), sum=float(yv.sum()), sum_sq=float((yv * yv).sum()), covariates=extra, **kw)


#: the numeric fields of :class:`Moments` (its ``covariates`` aside), as in ``wn.metric_aggregates``
MOMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Moments) if f.name != "covariates")
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


def _as_vector(name: str, value: Any, k: int) -> Vector:
    items = list(value)
    if len(items) != k:
        raise StatsInputError(f"{name} must have {k} values (one per covariate), got {len(items)}")
    return tuple(_as_float(name, v) for v in items)


def _check_covariates(m: Moments) -> None:
    """The covariate sums hold exactly the products the metric's other groups call for."""
    c = m.covariates
    assert c is not None
    for label, given, group, needed in (
            ("with_d (Σd·c)", c.with_d, "ratio sums", m.is_ratio),
            ("with_x (Σx·c)", c.with_x, "covariate sums", m.pre_sum is not None),
            ("with_m (Σm·c)", c.with_m, "ratio covariate sums", m.pre_den_sum is not None)):
        if given is not None and not needed:
            raise StatsInputError(f"Moments: covariate sums {label} given without the {group}")
        if given is None and needed:
            raise StatsInputError(f"Moments: covariate sums {label} missing (the Moments have the {group})")


def _check_group(m: Moments, label: str, names: tuple[str, ...]) -> None:
    present = [n for n in names if getattr(m, n) is not None]
    if present and len(present) != len(names):
        missing = [n for n in names if getattr(m, n) is None]
        raise StatsInputError(
            f"Moments: incomplete {label} sums: {', '.join(present)} given but "
            f"{', '.join(missing)} missing (give all of {', '.join(names)} or none)"
        )
