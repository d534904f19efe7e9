"""Two-arm contrasts by the delta method, with optional CUPED adjustment.

Each arm ``k`` contributes a point estimate ``P_k`` (and covariate estimate ``X_k``) whose
covariance matrix is ``Σ_k / n_k``, ``Σ_k`` being the unit-level covariance of the
linearised values ``(z, w)`` (see :mod:`.arm`). Arms are independent, so any smooth
function ``g`` of the arm estimates has delta-method variance

    Var(g) ≈ ∇_t gᵀ Σ_t ∇_t g / n_t + ∇_c gᵀ Σ_c ∇_c g / n_c

and Welch–Satterthwaite degrees of freedom from the two per-arm terms.

CUPED: ``θ = Σ_k (n_k−1) Cov_k(z, w) / Σ_k (n_k−1) Var_k(w)`` (the within-arm pooled
regression slope, identical to the OLS slope of ``y ~ treatment + x``). Adjusted arm
estimates are ``T = P_t − θ (X_t − X̄)`` and ``C = P_c − θ (X_c − X̄)`` with ``X̄`` the pooled
covariate estimate over both arms. θ is treated as known (its estimation error is of
smaller order), as is usual for CUPED.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .arm import REL_TOL, ArmEstimate
from .distributions import t_cdf, t_ppf, t_sf

__all__ = ["Contrast", "Pair", "make_pair", "t_inference", "ALTERNATIVES"]

ALTERNATIVES = ("two-sided", "increase", "decrease")


@dataclass(frozen=True)
class Contrast:
    """A delta-method estimate: value, variance and Welch–Satterthwaite df."""

    estimate: float
    variance: float
    dof: float

    @property
    def std_error(self) -> float:
        return math.sqrt(self.variance)


@dataclass(frozen=True)
class Pair:
    """Control and variant estimates plus the CUPED slope (``theta = 0`` without CUPED)."""

    control: ArmEstimate
    variant: ArmEstimate
    theta: float = 0.0
    cuped: bool = False
    weight_control: float = 0.0  # share of the control arm in the pooled covariate mean
    weight_variant: float = 0.0

    # -- adjusted point estimates -------------------------------------------------
    @property
    def variant_adjusted(self) -> float:
        """T = P_t − θ·w_c·(X_t − X_c)  (= P_t − θ(X_t − X̄))."""
        if not self.cuped:
            return self.variant.point
        return self.variant.point - self.theta * self.weight_control * (self._xt - self._xc)

    @property
    def control_adjusted(self) -> float:
        """C = P_c − θ·w_t·(X_c − X_t)  (= P_c − θ(X_c − X̄))."""
        if not self.cuped:
            return self.control.point
        return self.control.point - self.theta * self.weight_variant * (self._xc - self._xt)

    @property
    def _xt(self) -> float:
        return self.variant.pre_point  # type: ignore[return-value]

    @property
    def _xc(self) -> float:
        return self.control.pre_point  # type: ignore[return-value]

    # -- gradients of T and C w.r.t. (P, X) of each arm ----------------------------
    def _grad_t(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(∂T/∂(P_t, X_t), ∂T/∂(P_c, X_c))."""
        a = self.theta * self.weight_control
        return (1.0, -a), (0.0, a)

    def _grad_c(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(∂C/∂(P_t, X_t), ∂C/∂(P_c, X_c))."""
        b = self.theta * self.weight_variant
        return (0.0, b), (1.0, -b)

    def _quad(self, arm: ArmEstimate, g: tuple[float, float]) -> float:
        """gᵀ Σ g / n for one arm."""
        g0, g1 = g
        q = g0 * g0 * arm.var
        if self.cuped and g1 != 0.0:
            q += 2 * g0 * g1 * arm.cross + g1 * g1 * arm.pre_var  # type: ignore[operator]
            scale = g0 * g0 * arm.var + g1 * g1 * arm.pre_var  # type: ignore[operator]
            q = 0.0 if q <= REL_TOL * scale else q
        return q / arm.n

    def combine(self, g_variant: tuple[float, float], g_control: tuple[float, float]) -> tuple[float, float]:
        """Variance and Welch–Satterthwaite df of a statistic with the given arm gradients."""
        q_t = self._quad(self.variant, g_variant)
        q_c = self._quad(self.control, g_control)
        total = q_t + q_c
        if total <= 0.0:
            return 0.0, math.nan
        denom = q_t * q_t / (self.variant.n - 1) + q_c * q_c / (self.control.n - 1)
        return total, total * total / denom

    # -- the contrasts ------------------------------------------------------------
    def linear(self, a: float = 1.0) -> Contrast:
        """T − a·C (``a = 1``: the absolute delta)."""
        (tt, tc), (ct, cc) = self._grad_t(), self._grad_c()
        g_t = (tt[0] - a * ct[0], tt[1] - a * ct[1])
        g_c = (tc[0] - a * cc[0], tc[1] - a * cc[1])
        var, df = self.combine(g_t, g_c)
        return Contrast(self.variant_adjusted - a * self.control_adjusted, var, df)

    def absolute(self) -> Contrast:
        """T − C."""
        return self.linear(1.0)

    def relative(self) -> Contrast | None:
        """(T − C)/|C|; ``None`` when C = 0."""
        t, c = self.variant_adjusted, self.control_adjusted
        if c == 0.0:
            return None
        k = t / c
        (tt, tc), (ct, cc) = self._grad_t(), self._grad_c()
        s = abs(c)
        g_t = ((tt[0] - k * ct[0]) / s, (tt[1] - k * ct[1]) / s)
        g_c = ((tc[0] - k * cc[0]) / s, (tc[1] - k * cc[1]) / s)
        var, df = self.combine(g_t, g_c)
        return Contrast((t - c) / s, var, df)

    def raw_absolute_variance(self) -> float:
        """Var of the unadjusted delta P_t − P_c (for the CUPED variance reduction)."""
        return self.variant.var / self.variant.n + self.control.var / self.control.n


def make_pair(control: ArmEstimate, variant: ArmEstimate, *, cuped: bool) -> tuple[Pair, str | None]:
    """Pair two arms, estimating the pooled CUPED θ when asked and possible.

    Returns the pair and a note when CUPED was requested but could not be applied.
    """
    if not cuped:
        return Pair(control, variant), None
    if not (control.has_covariate and variant.has_covariate):
        return Pair(control, variant), "CUPED not applied: the pre-period denominator sums to zero in an arm"
    ss_w = (control.n - 1) * control.pre_var + (variant.n - 1) * variant.pre_var  # type: ignore[operator]
    if ss_w <= 0.0:
        return Pair(control, variant), "CUPED not applied: the covariate has zero variance"
    total_weight = control.pre_weight + variant.pre_weight  # type: ignore[operator]
    if total_weight == 0.0:
        return Pair(control, variant), "CUPED not applied: the pooled pre-period denominator is zero"
    ss_zw = (control.n - 1) * control.cross + (variant.n - 1) * variant.cross  # type: ignore[operator]
    theta = ss_zw / ss_w
    pair = Pair(
        control,
        variant,
        theta=theta,
        cuped=True,
        weight_control=control.pre_weight / total_weight,  # type: ignore[operator]
        weight_variant=variant.pre_weight / total_weight,  # type: ignore[operator]
    )
    return pair, None


def t_inference(
    estimate: float, std_error: float, dof: float, *, alternative: str, confidence: float
) -> tuple[float, float, float | None, float | None]:
    """t statistic, p-value and confidence bounds for ``estimate`` against 0.

    ``alternative``: "two-sided"; "increase" (H1: > 0, interval [lower, +∞) with the upper
    bound returned as ``None``); "decrease" (H1: < 0, interval (−∞, upper], lower ``None``).
    """
    stat = estimate / std_error
    alpha = 1.0 - confidence
    if alternative == "two-sided":
        p = 2.0 * t_sf(abs(stat), dof)
        q = t_ppf(1.0 - alpha / 2.0, dof)
        lo, hi = estimate - q * std_error, estimate + q * std_error
        return stat, min(1.0, p), lo, hi
    q = t_ppf(confidence, dof)
    if alternative == "increase":
        return stat, t_sf(stat, dof), estimate - q * std_error, None
    return stat, t_cdf(stat, dof), None, estimate + q * std_error
