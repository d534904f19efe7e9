"""One arm's point estimate and the (co)variances of its linearised unit values.

Every metric is reduced to a point estimate ``P`` and a per-unit "linearised" value ``z``
whose sample variance gives the variance of ``P`` as ``Var(z)/n``:

* plain metrics: ``P = ȳ`` and ``z = y``;
* ratio metrics: ``P = R = Σy/Σd`` and ``z = (y − R·d)/d̄`` (delta method).

With a covariate, the pre-window estimate ``X`` (``x̄``, or ``Σx/Σm`` for ratios) gets the
linearised value ``w`` (``x``, or ``(x − X·m)/m̄``), and we keep ``Var(w)`` and
``Cov(z, w)`` too. All are sample (co)variances with the ``n − 1`` divisor, computed from
the sums in :class:`~warehouse_native.stats.moments.Moments` alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from .moments import Moments

__all__ = ["ArmEstimate", "estimate_arm", "REL_TOL"]

#: A centred sum of squares below ``REL_TOL`` × its uncentred size is floating-point
#: cancellation noise, and is treated as exactly zero (a constant metric).
REL_TOL = 1e-10


@dataclass(frozen=True)
class ArmEstimate:
    """Point estimates and unit-level (co)variances for one arm (needs ``n ≥ 2``).

    ``var`` is Var(z); ``pre_point``, ``pre_var`` (Var(w)), ``cross`` (Cov(z, w)) and
    ``pre_weight`` (this arm's weight in the pooled covariate mean: ``n`` for plain
    metrics, ``Σm`` for ratios) are ``None`` when no covariate is available.
    """

    n: int
    point: float
    var: float
    pre_point: float | None = None
    pre_var: float | None = None
    cross: float | None = None
    pre_weight: float | None = None

    @property
    def has_covariate(self) -> bool:
        return self.pre_point is not None


def _cov(s_ab: float, s_a: float, s_b: float, n: int) -> float:
    """Sample covariance (n − 1 divisor) from Σab, Σa, Σb, 0 within rounding noise (as for
    variances: e.g. a metric with the same value for every unit has no covariance with
    anything, whatever order the warehouse added the products in)."""
    centred = s_ab - s_a * s_b / n
    if abs(centred) <= REL_TOL * abs(s_ab):
        return 0.0
    return centred / (n - 1)


def _var(s_aa: float, s_a: float, n: int) -> float:
    """Sample variance (n − 1 divisor) from Σa², Σa, clamped to 0 within rounding noise."""
    centred = s_aa - s_a * s_a / n
    if centred <= REL_TOL * s_aa:
        return 0.0
    return centred / (n - 1)


def _clamp(value: float, scale: float) -> float:
    """Treat a variance that is cancellation noise relative to ``scale`` as zero."""
    return 0.0 if value <= REL_TOL * scale else value


def estimate_arm(m: Moments, *, covariate: bool) -> ArmEstimate | None:
    """Reduce one arm's sums to an :class:`ArmEstimate`.

    Returns ``None`` when the point estimate or variance is undefined (``n < 2``, or a ratio
    whose denominator sums to zero). With ``covariate=True`` the covariate parts are filled
    when the sums allow it (present, and a non-zero pre-window denominator for ratios);
    otherwise they stay ``None`` and the caller falls back to no CUPED.
    """
    n = m.n
    if n < 2:
        return None
    if not m.is_ratio:
        var_y = _var(m.sum_sq, m.sum, n)
        est = ArmEstimate(n=n, point=m.sum / n, var=var_y)
        if covariate and m.has_covariate:
            assert m.pre_sum is not None and m.pre_sum_sq is not None and m.sum_cross is not None
            est = ArmEstimate(
                n=n,
                point=est.point,
                var=var_y,
                pre_point=m.pre_sum / n,
                pre_var=_var(m.pre_sum_sq, m.pre_sum, n),
                cross=_cov(m.sum_cross, m.sum, m.pre_sum, n),
                pre_weight=float(n),
            )
        return est

    assert m.den_sum is not None and m.den_sum_sq is not None and m.num_den_sum is not None
    if m.den_sum == 0:
        return None
    r = m.sum / m.den_sum
    d_bar = m.den_sum / n
    v_yy = _var(m.sum_sq, m.sum, n)
    v_dd = _var(m.den_sum_sq, m.den_sum, n)
    v_yd = _cov(m.num_den_sum, m.sum, m.den_sum, n)
    var_z = _clamp(v_yy - 2 * r * v_yd + r * r * v_dd, v_yy + r * r * v_dd) / (d_bar * d_bar)
    if not (covariate and m.has_covariate) or m.pre_den_sum == 0:
        return ArmEstimate(n=n, point=r, var=var_z)

    x_s, x_ss, yx = m.pre_sum, m.pre_sum_sq, m.sum_cross
    m_s, m_ss, xm = m.pre_den_sum, m.pre_den_sum_sq, m.pre_num_den_sum
    ym, dx, dm = m.num_pre_den_sum, m.den_pre_sum, m.den_pre_den_sum
    assert None not in (x_s, x_ss, yx, m_s, m_ss, xm, ym, dx, dm)
    p = x_s / m_s  # type: ignore[operator]
    m_bar = m_s / n  # type: ignore[operator]
    v_xx = _var(x_ss, x_s, n)  # type: ignore[arg-type]
    v_mm = _var(m_ss, m_s, n)  # type: ignore[arg-type]
    v_xm = _cov(xm, x_s, m_s, n)  # type: ignore[arg-type]
    var_w = _clamp(v_xx - 2 * p * v_xm + p * p * v_mm, v_xx + p * p * v_mm) / (m_bar * m_bar)
    c_yx = _cov(yx, m.sum, x_s, n)  # type: ignore[arg-type]
    c_ym = _cov(ym, m.sum, m_s, n)  # type: ignore[arg-type]
    c_dx = _cov(dx, m.den_sum, x_s, n)  # type: ignore[arg-type]
    c_dm = _cov(dm, m.den_sum, m_s, n)  # type: ignore[arg-type]
    cross = (c_yx - p * c_ym - r * c_dx + r * p * c_dm) / (d_bar * m_bar)
    return ArmEstimate(n=n, point=r, var=var_z, pre_point=p, pre_var=var_w, cross=cross, pre_weight=m_s)
