"""Always-valid (sequential) inference: mixture SPRT with a normal mixing distribution.

For an estimate ``Δ̂`` that is approximately ``N(Δ, V)`` and a ``N(0, τ²)`` mixture over the
alternative, the mixture likelihood ratio against ``Δ = 0`` is

    Λ = sqrt(V / (V + τ²)) · exp( Δ̂² τ² / (2 V (V + τ²)) ).

By Ville's inequality ``P(Λ ever exceeds 1/α) ≤ α`` under H0, so ``p = min(1, 1/Λ)`` may be
looked at after every batch of data, and the interval

    Δ̂ ± sqrt( V (V + τ²)/τ² · (2 log(1/α) + log((V + τ²)/V)) )

(the set of Δ not rejected) is a confidence sequence. This is the mSPRT of Johari et al.
(2017) and equals the asymptotic confidence sequence of Waudby-Smith et al. with
``τ = ρ·σ``. Variances are plug-in estimates, so validity is asymptotic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .comparison import check_confidence, join_reasons, prepare_pair
from .errors import StatsInputError
from .moments import Moments

__all__ = ["SequentialResult", "sequential_compare", "msprt"]


@dataclass(frozen=True)
class SequentialResult:
    """Outcome of :func:`sequential_compare` (two-sided; numbers ``None`` with a reason
    when not computable). ``p_value`` is the always-valid p-value of the absolute delta;
    ``ci_*`` the confidence sequence for the absolute delta, ``rel_ci_*`` for the relative
    delta. ``abs_delta``/``rel_delta`` are the point estimates (CUPED-adjusted if ``cuped``).
    """

    p_value: float | None
    ci_lower: float | None
    ci_upper: float | None
    rel_ci_lower: float | None
    rel_ci_upper: float | None
    reason: str | None = None
    abs_delta: float | None = None
    rel_delta: float | None = None
    cuped: bool = False


def msprt(estimate: float, variance: float, tau: float, alpha: float) -> tuple[float, float, float]:
    """Normal-mixture SPRT: ``(p_value, ci_lower, ci_upper)`` for an ``N(Δ, variance)``
    estimate with mixing sd ``tau`` (same units as the estimate)."""
    v, t2 = variance, tau * tau
    log_lr = 0.5 * math.log(v / (v + t2)) + estimate * estimate * t2 / (2.0 * v * (v + t2))
    p = 1.0 if log_lr <= 0.0 else math.exp(-log_lr)
    half = math.sqrt(v * (v + t2) / t2 * (2.0 * math.log(1.0 / alpha) + math.log((v + t2) / v)))
    return p, estimate - half, estimate + half


def sequential_compare(
    control: Moments,
    variant: Moments,
    *,
    confidence: float = 0.95,
    mixture_sd: float = 0.05,
    abs_mixture_sd: float | None = None,
    cuped: bool = False,
) -> SequentialResult:
    """Always-valid two-sided comparison of ``variant`` with ``control``.

    ``mixture_sd`` is the sd of the mixing distribution on the *relative* effect (0.05:
    tuned for lifts of about 5 %); the absolute-scale sd is ``mixture_sd·|control mean|``
    unless ``abs_mixture_sd`` gives it directly (needed when the control mean is 0).
    Estimates and variances are those of :func:`compare` (delta method, optional CUPED).
    """
    confidence = check_confidence(confidence)
    if not (math.isfinite(mixture_sd) and mixture_sd > 0):
        raise StatsInputError(f"mixture_sd must be a positive number (got {mixture_sd!r})")
    if abs_mixture_sd is not None and not (math.isfinite(abs_mixture_sd) and abs_mixture_sd > 0):
        raise StatsInputError(f"abs_mixture_sd must be a positive number (got {abs_mixture_sd!r})")
    alpha = 1.0 - confidence
    prep = prepare_pair(control, variant, cuped=cuped)
    reasons = list(prep.reasons)
    pair = prep.pair
    if pair is None:
        return SequentialResult(None, None, None, None, None, join_reasons(reasons))
    abs_c = pair.absolute()
    rel_c = pair.relative() if prep.control_mean != 0.0 else None
    out: dict = dict(abs_delta=abs_c.estimate, rel_delta=rel_c.estimate if rel_c else None, cuped=pair.cuped)
    if rel_c is None:
        reasons.append("control mean is zero, so the relative change is undefined")
    if abs_c.variance <= 0.0:
        reasons.append("zero variance in both arms")
        return SequentialResult(None, None, None, None, None, join_reasons(reasons), **out)
    p = lo = hi = None
    tau_abs = abs_mixture_sd
    if tau_abs is None and prep.control_mean:
        tau_abs = mixture_sd * abs(prep.control_mean)
    if tau_abs is None:
        reasons.append("absolute mixture sd needs a non-zero control mean (or abs_mixture_sd)")
    else:
        p, lo, hi = msprt(abs_c.estimate, abs_c.variance, tau_abs, alpha)
    rlo = rhi = None
    if rel_c is not None and rel_c.variance > 0.0:
        _, rlo, rhi = msprt(rel_c.estimate, rel_c.variance, mixture_sd, alpha)
    return SequentialResult(p, lo, hi, rlo, rhi, join_reasons(reasons), **out)
