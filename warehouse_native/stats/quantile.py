"""Percentile metrics: a quantile of events that are clustered in randomisation units.

A percentile metric is the ``p``-quantile ``Q̂`` of a value over all events (rows) of an arm's
units, interpolated linearly between order statistics (numpy's ``"linear"``, Hyndman–Fan
type 7): with the arm's ``N`` values sorted, ``x₍₁₎ ≤ … ≤ x₍N₎``, ``h = (N − 1)·f`` and
``k = ⌊h⌋``, ``Q(f) = x₍k+1₎ + (h − k)·(x₍k+2₎ − x₍k+1₎)``.

Events of one unit are correlated, so the usual i.i.d. (binomial) interval of a quantile is
too narrow.  The delta method for quantiles (Deng, Knoblich & Lu, KDD 2018) goes through the
empirical share ``F̂ = Σᵢ belowᵢ / Σᵢ nᵢ`` of events at or below ``Q̂`` (``belowᵢ``: unit *i*'s
events ≤ ``Q̂``, ``nᵢ``: its events): a ratio of per-unit sums, whose clustered standard error
``σ_F`` is the delta-method variance of a ratio metric over the ``K`` units.  Inverting the
interval of ``F`` gives the *outer* interval ``[L, U] = [Q(p − z·σ_F), Q(p + z·σ_F)]``, and
``se(Q̂) ≈ (U − L)/(2z)``.  Two independent arms then give a normal test and interval for
``Q̂_t − Q̂_c`` (and, by the delta method, for the relative change).

The warehouse computes ``Q̂``, ``L``, ``U`` and the share's sums in one statement per metric
(``sql/templates/quantiles.sql.j2``); :func:`quantile_arm` is the same computation on arrays
(notebooks, tests, simulations).  Formulas and limits: ``docs/statistics.md``, section 17.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .arm import estimate_arm
from .comparison import Comparison, check_alternative, check_confidence, join_reasons, plain_deltas
from .contrast import t_inference
from .distributions import norm_cdf, norm_ppf, norm_sf
from .errors import StatsInputError
from .guardrail import GuardrailResult, check_direction
from .moments import Moments

__all__ = ["QuantileArm", "outer_z", "linear_quantile", "share_moments", "share_std_error", "quantile_arm",
           "compare_quantiles", "quantile_guardrail"]


def outer_z(confidence: float) -> float:
    """The two-sided normal quantile ``z`` used for the outer interval at ``confidence``."""
    c = check_confidence(confidence)
    return norm_ppf(1.0 - (1.0 - c) / 2.0)


@dataclass(frozen=True)
class QuantileArm:
    """One arm's percentile summary.

    ``units``: the arm's analysed units ``K`` (those without events too); ``events``: its
    events with a value ``N``; ``quantile``: ``Q̂ = Q(p)`` (``None`` without events);
    ``lower``/``upper``: the outer interval ``Q(p ∓ z·σ_F)`` (``None`` when ``σ_F`` is
    undefined: fewer than 2 units); ``z``: the normal quantile those bounds were computed with.
    """

    units: int
    events: int
    quantile: float | None
    lower: float | None
    upper: float | None
    z: float

    def __post_init__(self) -> None:
        for name in ("units", "events"):
            value = getattr(self, name)
            if isinstance(value, bool) or not float(value).is_integer() or value < 0:
                raise StatsInputError(f"QuantileArm.{name} must be a non-negative integer (got {value!r})")
            object.__setattr__(self, name, int(value))
        for name in ("quantile", "lower", "upper"):
            value = getattr(self, name)
            if value is not None:
                value = float(value)
                if not math.isfinite(value):
                    raise StatsInputError(f"QuantileArm.{name} must be finite (got {value!r})")
                object.__setattr__(self, name, value)
        if not (math.isfinite(self.z) and self.z > 0):
            raise StatsInputError(f"QuantileArm.z must be a positive number (got {self.z!r})")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise StatsInputError(f"QuantileArm: lower bound {self.lower} is above upper bound {self.upper}")

    @property
    def std_error(self) -> float | None:
        """``se(Q̂) = (U − L)/(2z)``; ``None`` when the bounds are missing."""
        if self.lower is None or self.upper is None:
            return None
        return (self.upper - self.lower) / (2.0 * self.z)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], metric: str, z: float) -> "QuantileArm":
        """From a fetched row of a percentile metric's statement (``n``, ``<metric>__den_sum``
        events, ``<metric>__quantile``, ``__quantile_lower``, ``__quantile_upper``)."""
        def num(key: str) -> float | None:
            value = row.get(key)
            if value is None:
                return None
            value = float(value)
            return None if math.isnan(value) else value

        return cls(units=int(num("n") or 0), events=int(num(f"{metric}__den_sum") or 0),
                   quantile=num(f"{metric}__quantile"), lower=num(f"{metric}__quantile_lower"),
                   upper=num(f"{metric}__quantile_upper"), z=z)


def linear_quantile(sorted_values: np.ndarray, fraction: float) -> float:
    """``Q(f)`` of ascending ``sorted_values``: ``x₍k+1₎ + (h − k)(x₍k+2₎ − x₍k+1₎)``,
    ``h = (N − 1)·f``, ``k = ⌊h⌋`` (1-based order statistics; equals ``numpy.quantile``'s
    ``"linear"`` method)."""
    n = len(sorted_values)
    if n == 0:
        raise StatsInputError("linear_quantile needs at least one value")
    h = (n - 1) * float(fraction)
    k = math.floor(h)
    lo = float(sorted_values[k])
    hi = float(sorted_values[min(k + 1, n - 1)])
    return lo + (h - k) * (hi - lo)


def share_moments(values: np.ndarray, unit_codes: np.ndarray, threshold: float, units: int) -> Moments:
    """The ratio sums of ``F = Σ below / Σ n`` over ``units`` units (codes ``0..units-1``; units
    without events contribute zeros): ``sum``/``sum_sq`` of ``below``, ``den_sum``/``den_sum_sq``
    of ``n``, ``num_den_sum`` = Σ below·n."""
    n = np.bincount(unit_codes, minlength=units).astype(float)
    below = np.bincount(unit_codes, weights=(values <= threshold).astype(float), minlength=units)
    return Moments(n=units, sum=float(below.sum()), sum_sq=float((below * below).sum()),
                   den_sum=float(n.sum()), den_sum_sq=float((n * n).sum()), num_den_sum=float((below * n).sum()))


def share_std_error(share: Moments) -> float | None:
    """``σ_F``: the delta-method standard error of the share ``Σ below / Σ n`` over units (the
    ratio-metric variance of ``stats.arm``); ``None`` with fewer than 2 units or no events."""
    arm = estimate_arm(share, covariate=False)
    return None if arm is None else math.sqrt(arm.var / arm.n)


def quantile_arm(values: Sequence[float] | np.ndarray, unit_codes: Sequence[int] | np.ndarray, *,
                 percentile: float, units: int, confidence: float = 0.95) -> QuantileArm:
    """One arm's :class:`QuantileArm` from its events: ``values[j]`` of unit ``unit_codes[j]``
    (``0 ≤ code < units``; ``units`` counts the arm's units with no events too).  The same
    computation as the warehouse statement, for notebooks, tests and simulations."""
    if not 0.0 < percentile < 1.0:
        raise StatsInputError(f"percentile must be strictly between 0 and 1 (got {percentile!r})")
    z = outer_z(confidence)
    v = np.asarray(values, dtype=float)
    codes = np.asarray(unit_codes, dtype=np.int64)
    if len(v) != len(codes):
        raise StatsInputError("quantile_arm: values and unit_codes differ in length")
    if len(codes) and (codes.min() < 0 or codes.max() >= units):
        raise StatsInputError("quantile_arm: unit codes must be in 0..units-1")
    if len(v) == 0:
        return QuantileArm(units, 0, None, None, None, z)
    ordered = np.sort(v)
    q = linear_quantile(ordered, percentile)
    sigma = share_std_error(share_moments(v, codes, q, units))
    if sigma is None:
        return QuantileArm(units, len(v), q, None, None, z)
    lower = linear_quantile(ordered, max(percentile - z * sigma, 0.0))
    upper = linear_quantile(ordered, min(percentile + z * sigma, 1.0))
    return QuantileArm(units, len(v), q, lower, upper, z)


def _arm_reasons(label: str, arm: QuantileArm) -> list[str]:
    if arm.units == 0:
        return [f"{label} has no units"]
    if arm.quantile is None:
        return [f"{label} has no events with a value, so its quantile is undefined"]
    if arm.std_error is None:
        return [f"{label} has only {arm.units} unit; at least 2 per arm are needed to estimate a variance"]
    return []


def compare_quantiles(control: QuantileArm, variant: QuantileArm, *, confidence: float = 0.95,
                      alternative: str = "two-sided") -> Comparison:
    """Compare two arms' quantiles: ``Δ = Q̂_t − Q̂_c`` with ``se = √(se_t² + se_c²)`` (independent
    arms), a normal interval and p-value (``dof`` is ``None``: no degrees of freedom), and the
    relative change ``Δ/|Q̂_c|`` with the delta-method ``se² = se_t²/Q̂_c² + Q̂_t²·se_c²/Q̂_c⁴``.
    ``control_mean``/``variant_mean`` carry the quantiles.  Data problems give ``None`` numbers
    and a ``reason``, as :func:`~warehouse_native.stats.compare` does."""
    confidence = check_confidence(confidence)
    alternative = check_alternative(alternative)
    base = dict(control_mean=control.quantile, variant_mean=variant.quantile, confidence=confidence,
                alternative=alternative)
    reasons = _arm_reasons("control", control) + _arm_reasons("variant", variant)
    qc, qt = control.quantile, variant.quantile
    abs_delta, rel_delta = plain_deltas(qc, qt, reasons, "quantile")
    se_c, se_t = control.std_error, variant.std_error
    if abs_delta is None or se_c is None or se_t is None:
        return Comparison(**base, abs_delta=abs_delta, rel_delta=rel_delta, reason=join_reasons(reasons))
    variance = se_c * se_c + se_t * se_t
    if variance <= 0.0:
        reasons.append("zero variance in both arms (the outer interval of each quantile has no width)")
        return Comparison(**base, abs_delta=abs_delta, rel_delta=rel_delta, reason=join_reasons(reasons))
    se = math.sqrt(variance)
    stat, p, lo, hi = t_inference(abs_delta, se, math.inf, alternative=alternative, confidence=confidence)
    rel: dict[str, float | None] = {}
    if rel_delta is not None:
        rel_var = se_t * se_t / (qc * qc) + qt * qt * se_c * se_c / qc ** 4
        if rel_var > 0.0:
            rel_se = math.sqrt(rel_var)
            _, _, rlo, rhi = t_inference(rel_delta, rel_se, math.inf, alternative=alternative,
                                         confidence=confidence)
            rel = dict(rel_ci_lower=rlo, rel_ci_upper=rhi, rel_std_error=rel_se)
    return Comparison(**base, abs_delta=abs_delta, abs_ci_lower=lo, abs_ci_upper=hi, rel_delta=rel_delta,
                      std_error=se, p_value=min(1.0, max(0.0, p)), dof=None, t_stat=stat,
                      reason=join_reasons(reasons), **rel)


def quantile_guardrail(control: QuantileArm, variant: QuantileArm, *, direction: str,
                       max_regression: float = 0.0, confidence: float = 0.95) -> GuardrailResult:
    """The guardrail test of ``stats.guardrail_check`` on quantiles: with ``δ = max_regression``
    and ``s = sign(Q̂_c)``, ``L = Q̂_t − a·Q̂_c`` (``a = 1 − δs`` when increase is good, ``1 + δs``
    when decrease is good), ``Var(L) = se_t² + a²·se_c²``, a one-sided normal test in the bad
    direction; ``fail`` when significant, ``warn`` when L is on the bad side, else ``pass``."""
    direction = check_direction(direction)
    confidence = check_confidence(confidence)
    delta = float(max_regression)
    if not (math.isfinite(delta) and delta >= 0.0):
        raise StatsInputError(f"max_regression must be a non-negative number (got {max_regression!r})")
    reasons = _arm_reasons("control", control) + _arm_reasons("variant", variant)
    if reasons:
        return GuardrailResult("unknown", None, join_reasons(reasons), margin=delta)
    qc, qt = control.quantile, variant.quantile
    se_c, se_t = control.std_error, variant.std_error
    assert qc is not None and qt is not None and se_c is not None and se_t is not None
    rel_delta = (qt - qc) / abs(qc) if qc != 0.0 else None
    if rel_delta is None and delta > 0.0:
        reasons.append("control quantile is zero, so the relative margin is zero")
    s = 0.0 if qc == 0.0 else math.copysign(1.0, qc)
    a = 1.0 - delta * s if direction == "increase" else 1.0 + delta * s
    lin = qt - a * qc
    variance = se_t * se_t + a * a * se_c * se_c
    common = dict(rel_delta=rel_delta, margin=delta, cuped=False)
    if variance <= 0.0:
        reasons.append("zero variance in both arms, so the regression cannot be tested")
        return GuardrailResult("unknown", None, join_reasons(reasons), **common)
    stat = lin / math.sqrt(variance)
    if direction == "increase":
        p, regressed = norm_cdf(stat), lin < 0.0
    else:
        p, regressed = norm_sf(stat), lin > 0.0
    status = "fail" if p < 1.0 - confidence else "warn" if regressed else "pass"
    return GuardrailResult(status, min(1.0, max(0.0, p)), join_reasons(reasons), **common)
