"""Two-arm contrasts by the delta method, with optional CUPED / CUPAC adjustment.

Each arm ``k`` contributes a point estimate ``P_k`` (and covariate estimates ``X_k``, a
vector) whose covariance matrix is ``Σ_k / n_k``, ``Σ_k`` being the unit-level covariance of
the linearised values ``(z, w)`` (see :mod:`.arm`). Arms are independent, so any smooth
function ``g`` of the arm estimates has delta-method variance

    Var(g) ≈ ∇_t gᵀ Σ_t ∇_t g / n_t + ∇_c gᵀ Σ_c ∇_c g / n_c

and Welch–Satterthwaite degrees of freedom from the two per-arm terms.

CUPED with one or several covariates: ``θ = W⁻¹ s`` with ``W = Σ_k (n_k−1) Cov_k(w)`` and
``s = Σ_k (n_k−1) Cov_k(w, z)`` (the within-arm pooled regression coefficients, identical
to the OLS slopes of ``y ~ treatment + w``). Adjusted arm estimates are
``T = P_t − θᵀ(X_t − X̄)`` and ``C = P_c − θᵀ(X_c − X̄)`` with ``X̄`` the pooled covariate
estimates over both arms. θ is treated as known (its estimation error is of smaller
order), as is usual for CUPED. Covariates are taken in order (the metric's own first); one
with no pooled within-arm variance, or (numerically) a linear combination of those before
it, is left out, so ``W`` is always invertible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .arm import REL_TOL, ArmEstimate
from .distributions import t_cdf, t_ppf, t_sf
from .moments import OWN_COVARIATE

__all__ = ["Contrast", "Pair", "make_pair", "select_covariates", "t_inference", "ALTERNATIVES",
           "COLLINEAR_TOL"]

ALTERNATIVES = ("two-sided", "increase", "decrease")

#: A covariate whose pooled within-arm variance left after regressing it on the covariates
#: before it is below ``COLLINEAR_TOL`` × its variance (R² > 1 − 1e-9) adds nothing but
#: rounding noise: it is left out.
COLLINEAR_TOL = 1e-9

#: a gradient with respect to one arm's (P, X): ∂/∂P and ∂/∂X_j
Grad = tuple[float, tuple[float, ...]]


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
    """Control and variant estimates plus the CUPED coefficients (none without CUPED).

    With CUPED both arms hold exactly the covariates used, in the order of ``theta``;
    ``weight_control``/``weight_variant`` are each arm's share in the pooled covariate means.
    """

    control: ArmEstimate
    variant: ArmEstimate
    theta: tuple[float, ...] = ()
    cuped: bool = False
    weight_control: tuple[float, ...] = ()
    weight_variant: tuple[float, ...] = ()

    # -- adjusted point estimates -------------------------------------------------
    @property
    def variant_adjusted(self) -> float:
        """T = P_t − Σ_j θ_j·w_c,j·(X_t,j − X_c,j)  (= P_t − θᵀ(X_t − X̄))."""
        if not self.cuped:
            return self.variant.point
        return self.variant.point - sum(t * w * (xt - xc) for t, w, xt, xc in zip(
            self.theta, self.weight_control, self.variant.pre_point, self.control.pre_point))

    @property
    def control_adjusted(self) -> float:
        """C = P_c − Σ_j θ_j·w_t,j·(X_c,j − X_t,j)  (= P_c − θᵀ(X_c − X̄))."""
        if not self.cuped:
            return self.control.point
        return self.control.point - sum(t * w * (xc - xt) for t, w, xt, xc in zip(
            self.theta, self.weight_variant, self.variant.pre_point, self.control.pre_point))

    # -- gradients of T and C w.r.t. (P, X) of each arm ----------------------------
    def _grad_t(self) -> tuple[Grad, Grad]:
        """(∂T/∂(P_t, X_t), ∂T/∂(P_c, X_c))."""
        a = tuple(t * w for t, w in zip(self.theta, self.weight_control))
        return (1.0, tuple(-v for v in a)), (0.0, a)

    def _grad_c(self) -> tuple[Grad, Grad]:
        """(∂C/∂(P_t, X_t), ∂C/∂(P_c, X_c))."""
        b = tuple(t * w for t, w in zip(self.theta, self.weight_variant))
        return (0.0, b), (1.0, tuple(-v for v in b))

    def _quad(self, arm: ArmEstimate, g: Grad) -> float:
        """gᵀ Σ g / n for one arm."""
        g0, g1 = g
        q = g0 * g0 * arm.var
        if self.cuped and any(v != 0.0 for v in g1):
            v = np.asarray(g1)
            pre_var = np.asarray(arm.pre_var)
            q += 2 * g0 * float(v @ np.asarray(arm.cross)) + float(v @ pre_var @ v)
            scale = g0 * g0 * arm.var + float((v * v) @ np.diag(pre_var))
            q = 0.0 if q <= REL_TOL * scale else q
        return q / arm.n

    def combine(self, g_variant: Grad, g_control: Grad) -> tuple[float, float]:
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
        g_t = (tt[0] - a * ct[0], tuple(x - a * y for x, y in zip(tt[1], ct[1])))
        g_c = (tc[0] - a * cc[0], tuple(x - a * y for x, y in zip(tc[1], cc[1])))
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
        g_t = ((tt[0] - k * ct[0]) / s, tuple((x - k * y) / s for x, y in zip(tt[1], ct[1])))
        g_c = ((tc[0] - k * cc[0]) / s, tuple((x - k * y) / s for x, y in zip(tc[1], cc[1])))
        var, df = self.combine(g_t, g_c)
        return Contrast((t - c) / s, var, df)

    def raw_absolute_variance(self) -> float:
        """Var of the unadjusted delta P_t − P_c (for the CUPED variance reduction)."""
        return self.variant.var / self.variant.n + self.control.var / self.control.n


def covariate_label(name: str) -> str:
    """How a note names a covariate."""
    return "the metric's own pre-period value" if name == OWN_COVARIATE else name


def select_covariates(pooled: np.ndarray, names: tuple[str, ...]) -> tuple[list[int], list[str]]:
    """Which covariates to use, given their pooled within-arm sums of squares and products
    ``pooled``: in order, each one that still has variance after regressing it on those kept
    before it (relative to its own variance: :data:`COLLINEAR_TOL`). Returns the kept
    indexes and a note for each left out."""
    kept: list[int] = []
    notes: list[str] = []
    for j, name in enumerate(names):
        own = pooled[j, j]
        left = own
        if own > 0.0 and kept:
            block = pooled[np.ix_(kept, kept)]
            left = own - float(pooled[j, kept] @ np.linalg.solve(block, pooled[kept, j]))
        if own <= 0.0:
            notes.append(f"covariate {covariate_label(name)} not used: it has zero variance")
        elif left <= COLLINEAR_TOL * own:
            notes.append(f"covariate {covariate_label(name)} not used: it is a linear combination of "
                         "the covariates before it")
        else:
            kept.append(j)
    return kept, notes


def make_pair(control: ArmEstimate, variant: ArmEstimate, *, cuped: bool) -> tuple[Pair, str | None]:
    """Pair two arms, estimating the pooled CUPED coefficients when asked and possible.

    Returns the pair and a note (fragments joined by "; ") when CUPED was requested but could
    not be applied, or some covariate was left out.
    """
    if not cuped:
        return Pair(control, variant), None
    if not (control.has_covariate and variant.has_covariate):
        return Pair(control, variant), "CUPED not applied: the pre-period denominator sums to zero in an arm"
    names = tuple(n for n in control.covariates if n in variant.covariates)
    single = len(set(control.covariates) | set(variant.covariates)) == 1
    notes = [f"covariate {covariate_label(n)} not used: the pre-period denominator sums to zero in an arm"
             for n in dict.fromkeys(control.covariates + variant.covariates) if n not in names]
    c, v = control.restrict(names), variant.restrict(names)
    pooled = (c.n - 1) * np.asarray(c.pre_var).reshape(len(names), -1) \
        + (v.n - 1) * np.asarray(v.pre_var).reshape(len(names), -1)
    kept, dropped = select_covariates(pooled, names)
    if not kept:
        if single:
            return Pair(control, variant), "CUPED not applied: the covariate has zero variance"
        return Pair(control, variant), "CUPED not applied: no covariate has variance within the arms"
    notes += dropped
    totals = [c.pre_weight[j] + v.pre_weight[j] for j in kept]
    if any(t == 0.0 for t in totals):   # only a ratio's own covariate: Σm of the two arms cancel
        if single:
            return Pair(control, variant), "CUPED not applied: the pooled pre-period denominator is zero"
        notes.append("covariate the metric's own pre-period value not used: the pooled pre-period "
                     "denominator is zero")
        kept = [j for j, t in zip(kept, totals) if t != 0.0]
        if not kept:
            return Pair(control, variant), "; ".join(notes)
        totals = [t for t in totals if t != 0.0]
    used = tuple(names[j] for j in kept)
    c, v = c.restrict(used), v.restrict(used)
    cross = (c.n - 1) * np.asarray(c.cross) + (v.n - 1) * np.asarray(v.cross)
    theta = np.linalg.solve(pooled[np.ix_(kept, kept)], cross)
    pair = Pair(c, v, theta=tuple(float(t) for t in theta), cuped=True,
                weight_control=tuple(c.pre_weight[j] / t for j, t in enumerate(totals)),
                weight_variant=tuple(v.pre_weight[j] / t for j, t in enumerate(totals)))
    return pair, "; ".join(notes) or None


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
