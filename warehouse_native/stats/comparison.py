"""Fixed-horizon comparison of one variant against control (Welch t, delta method, CUPED)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .arm import estimate_arm
from .contrast import ALTERNATIVES, Pair, make_pair, t_inference
from .errors import StatsInputError
from .moments import OWN_COVARIATE, Moments

__all__ = ["Comparison", "compare", "prepare_pair", "check_confidence", "check_alternative", "join_reasons"]


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`. Every number is ``float`` or ``None``, never NaN.

    ``control_mean``/``variant_mean`` are raw (never CUPED-adjusted). ``abs_delta`` and
    ``rel_delta`` are CUPED-adjusted when ``cuped`` is true. ``covariates``: (name, θ) of each
    covariate applied, the metric's own named ``"pre"``; ``theta`` is the own covariate's θ
    (``None`` when it was not applied). A ``None`` CI bound with
    ``reason`` unrelated to it means the interval is unbounded on that side (one-sided
    tests). ``reason`` explains any missing number and any deviation from the request
    (e.g. CUPED requested but not applied); several reasons are joined with ``"; "``.
    ``p_value`` tests the absolute delta against 0 under ``alternative``.
    """

    control_mean: float | None = None
    variant_mean: float | None = None
    abs_delta: float | None = None
    abs_ci_lower: float | None = None
    abs_ci_upper: float | None = None
    rel_delta: float | None = None
    rel_ci_lower: float | None = None
    rel_ci_upper: float | None = None
    std_error: float | None = None
    rel_std_error: float | None = None
    p_value: float | None = None
    dof: float | None = None
    cuped: bool = False
    theta: float | None = None
    variance_reduction: float | None = None
    reason: str | None = None
    t_stat: float | None = None
    confidence: float = 0.95
    alternative: str = "two-sided"
    covariates: tuple[tuple[str, float], ...] = ()


def check_confidence(confidence: float, name: str = "confidence") -> float:
    """Validate a confidence level in (0, 1)."""
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        raise StatsInputError(f"{name} must be a number strictly between 0 and 1 (got {confidence!r})") from None
    if not (0.0 < c < 1.0):
        raise StatsInputError(f"{name} must be strictly between 0 and 1 (got {confidence!r})")
    return c


def check_alternative(alternative: str) -> str:
    """Validate ``alternative`` ("two-sided", "increase" or "decrease")."""
    if alternative not in ALTERNATIVES:
        raise StatsInputError(f"alternative must be one of {', '.join(ALTERNATIVES)} (got {alternative!r})")
    return alternative


def plain_deltas(control: float | None, variant: float | None, reasons: list[str],
                 what: str = "mean") -> tuple[float | None, float | None]:
    """(variant − control, (variant − control)/|control|) of two point estimates, None where
    undefined; a zero control appends why the relative change is missing to ``reasons``."""
    if control is None or variant is None:
        return None, None
    if control == 0.0:
        reasons.append(f"control {what} is zero, so the relative change is undefined")
        return variant - control, None
    return variant - control, (variant - control) / abs(control)


def join_reasons(reasons: list[str]) -> str | None:
    """Join reason fragments with "; " (``None`` when there are none)."""
    return "; ".join(reasons) if reasons else None


def _covariate_names(m: Moments) -> tuple[str, ...]:
    return m.covariates.names if m.covariates is not None else ()


@dataclass(frozen=True)
class PreparedPair:
    """What :func:`prepare_pair` found: raw means, the paired estimates (``None`` when no
    variance-based inference is possible) and reason fragments."""

    control_mean: float | None
    variant_mean: float | None
    pair: Pair | None
    reasons: list[str]


def prepare_pair(control: Moments, variant: Moments, *, cuped: bool) -> PreparedPair:
    """Shared first step of every two-arm analysis: data checks, arm estimates, CUPED θ."""
    reasons: list[str] = []
    if control.n > 0 and variant.n > 0 and control.is_ratio != variant.is_ratio:
        raise StatsInputError("control and variant Moments disagree on whether the metric is a ratio")
    if control.n > 0 and variant.n > 0 and _covariate_names(control) != _covariate_names(variant):
        raise StatsInputError("control and variant Moments name different covariates "
                              f"({_covariate_names(control)} vs {_covariate_names(variant)})")
    means: list[float | None] = []
    for label, m in (("control", control), ("variant", variant)):
        if m.n == 0:
            reasons.append(f"{label} has no units")
        elif m.is_ratio and m.den_sum == 0:
            reasons.append(f"ratio denominator sums to zero in {label}")
        means.append(m.mean)
    cm, vm = means
    if reasons:
        return PreparedPair(cm, vm, None, reasons)
    for label, m in (("control", control), ("variant", variant)):
        if m.n < 2:
            reasons.append(f"{label} has only {m.n} unit; at least 2 per arm are needed to estimate a variance")
    if reasons:
        return PreparedPair(cm, vm, None, reasons)
    c_arm = estimate_arm(control, covariate=cuped)
    v_arm = estimate_arm(variant, covariate=cuped)
    assert c_arm is not None and v_arm is not None
    if cuped and not (control.has_covariate and variant.has_covariate):
        missing = [lbl for lbl, m in (("control", control), ("variant", variant)) if not m.has_covariate]
        reasons.append(f"CUPED not applied: covariate sums are missing in {' and '.join(missing)}")
        cuped = False
    pair, note = make_pair(c_arm, v_arm, cuped=cuped)
    if note:
        reasons.append(note)
    return PreparedPair(cm, vm, pair, reasons)


def compare(
    control: Moments,
    variant: Moments,
    *,
    confidence: float = 0.95,
    alternative: str = "two-sided",
    cuped: bool = False,
) -> Comparison:
    """Compare ``variant`` with ``control``.

    Absolute delta: Welch t-test, Welch–Satterthwaite df; ratio metrics via the delta method.
    Relative delta ``(T − C)/|C|`` with a delta-method standard error and the same df.
    With ``cuped=True`` and covariate sums in both arms, both deltas are CUPED-adjusted
    with θ pooled over the two arms. ``alternative``: "two-sided" (default), "increase"
    (H1: variant > control) or "decrease" (H1: variant < control); one-sided tests give
    one-sided intervals whose open side is ``None``.

    Data problems never raise: numbers that cannot be computed are ``None`` and
    ``reason`` says why. Invalid arguments raise :class:`StatsInputError`.
    """
    confidence = check_confidence(confidence)
    alternative = check_alternative(alternative)
    prep = prepare_pair(control, variant, cuped=cuped)
    base = dict(
        control_mean=prep.control_mean,
        variant_mean=prep.variant_mean,
        confidence=confidence,
        alternative=alternative,
    )
    reasons = list(prep.reasons)
    cm, vm = prep.control_mean, prep.variant_mean
    pair = prep.pair
    if pair is None:
        abs_delta, rel_delta = plain_deltas(cm, vm, reasons)
        return Comparison(**base, abs_delta=abs_delta, rel_delta=rel_delta, reason=join_reasons(reasons))

    cuped_on = pair.cuped
    abs_c = pair.absolute()
    rel_c = pair.relative() if cm != 0.0 else None
    if rel_c is None:
        if cm == 0.0:
            reasons.append("control mean is zero, so the relative change is undefined")
        else:
            reasons.append("CUPED-adjusted control mean is zero, so the relative change is undefined")
    raw_var = pair.raw_absolute_variance()
    used = tuple(zip(pair.variant.covariates, pair.theta)) if cuped_on else ()
    theta = dict(used).get(OWN_COVARIATE)
    vr = (1.0 - abs_c.variance / raw_var) if (cuped_on and raw_var > 0.0) else None
    out = dict(
        base,
        abs_delta=abs_c.estimate,
        rel_delta=rel_c.estimate if rel_c else None,
        cuped=cuped_on,
        theta=theta,
        variance_reduction=vr,
        covariates=used,
    )
    if abs_c.variance <= 0.0:
        if raw_var <= 0.0:
            reasons.append("zero variance in both arms (every unit has the same value within each arm)")
        else:
            reasons.append("zero variance in both arms after CUPED adjustment (the covariate predicts the metric exactly)")
        return Comparison(**out, reason=join_reasons(reasons))

    dof = abs_c.dof
    se = abs_c.std_error
    stat, p, lo, hi = t_inference(abs_c.estimate, se, dof, alternative=alternative, confidence=confidence)
    rel_fields: dict[str, float | None] = {}
    if rel_c is not None and rel_c.variance > 0.0:
        _, _, rlo, rhi = t_inference(rel_c.estimate, rel_c.std_error, dof, alternative=alternative, confidence=confidence)
        rel_fields = dict(rel_ci_lower=rlo, rel_ci_upper=rhi, rel_std_error=rel_c.std_error)
    elif rel_c is not None:
        # e.g. a variant that is identically zero: (0 − C)/|C| = −1 whatever C is.
        r = rel_c.estimate
        rel_fields = dict(
            rel_ci_lower=None if alternative == "decrease" else r,
            rel_ci_upper=None if alternative == "increase" else r,
            rel_std_error=0.0,
        )
    return Comparison(
        **out,
        abs_ci_lower=lo,
        abs_ci_upper=hi,
        std_error=se,
        p_value=_clean(p),
        dof=dof,
        t_stat=stat,
        reason=join_reasons(reasons),
        **rel_fields,
    )


def _clean(p: float) -> float:
    """Clip a probability into [0, 1] (guards against rounding just outside)."""
    if math.isnan(p):  # pragma: no cover - defensive; inputs are finite here
        raise AssertionError("p-value is NaN")
    return min(1.0, max(0.0, p))
