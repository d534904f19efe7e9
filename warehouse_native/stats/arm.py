"""One arm's point estimate and the (co)variances of its linearised unit values.

Every metric is reduced to a point estimate ``P`` and a per-unit "linearised" value ``z``
whose sample variance gives the variance of ``P`` as ``Var(z)/n``:

* plain metrics: ``P = ȳ`` and ``z = y``;
* ratio metrics: ``P = R = Σy/Σd`` and ``z = (y − R·d)/d̄`` (delta method).

With covariates, each gets a point estimate and a linearised value the same way: the
metric's own covariate ``X`` (``x̄``, or ``Σx/Σm`` for ratios) with ``w = x`` (or
``(x − X·m)/m̄``), and each further covariate ``c_j`` its mean ``c̄_j`` with ``w_j = c_j``.
We keep the covariance matrix of the ``w`` and their covariances with ``z``. All are sample
(co)variances with the ``n − 1`` divisor, computed from the sums in
:class:`~warehouse_native.stats.moments.Moments` alone: each linearised value is a linear
combination ``aᵀu`` of the raw per-unit values ``u = (y, d, x, m, c_1 … c_k)``, so their
covariances are ``aᵀ S b`` with ``S`` the sample covariance matrix of ``u`` from its sums and
sums of products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .moments import OWN_COVARIATE, Moments

__all__ = ["ArmEstimate", "estimate_arm", "REL_TOL"]

#: A centred sum of squares below ``REL_TOL`` × its uncentred size is floating-point
#: cancellation noise, and is treated as exactly zero (a constant metric).
REL_TOL = 1e-10

Vector = tuple[float, ...]


@dataclass(frozen=True)
class ArmEstimate:
    """Point estimates and unit-level (co)variances for one arm (needs ``n ≥ 2``).

    ``var`` is Var(z). Per covariate ``j`` (named in ``covariates``; the metric's own is
    :data:`OWN_COVARIATE`, first when present): ``pre_point[j]`` its estimate,
    ``pre_var[j][l]`` Cov(w_j, w_l), ``cross[j]`` Cov(z, w_j), ``pre_weight[j]`` this arm's
    weight in the pooled covariate mean (``n``; ``Σm`` for a ratio's own covariate). All
    empty when no covariate is available.
    """

    n: int
    point: float
    var: float
    covariates: tuple[str, ...] = ()
    pre_point: Vector = ()
    pre_var: tuple[Vector, ...] = ()
    cross: Vector = ()
    pre_weight: Vector = ()

    @property
    def has_covariate(self) -> bool:
        return bool(self.covariates)

    def restrict(self, names: tuple[str, ...]) -> "ArmEstimate":
        """The same arm with only the covariates ``names`` (in that order)."""
        idx = [self.covariates.index(name) for name in names]
        return ArmEstimate(n=self.n, point=self.point, var=self.var, covariates=tuple(names),
                           pre_point=tuple(self.pre_point[i] for i in idx),
                           pre_var=tuple(tuple(self.pre_var[i][j] for j in idx) for i in idx),
                           cross=tuple(self.cross[i] for i in idx),
                           pre_weight=tuple(self.pre_weight[i] for i in idx))


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
    for the covariates the sums allow (present, and for a ratio's own covariate a non-zero
    pre-window denominator); the caller falls back to no CUPED when there are none.
    """
    n = m.n
    if n < 2:
        return None
    if not m.is_ratio:
        est = ArmEstimate(n=n, point=m.sum / n, var=_var(m.sum_sq, m.sum, n))
    else:
        assert m.den_sum is not None and m.den_sum_sq is not None and m.num_den_sum is not None
        if m.den_sum == 0:
            return None
        r = m.sum / m.den_sum
        d_bar = m.den_sum / n
        v_yy = _var(m.sum_sq, m.sum, n)
        v_dd = _var(m.den_sum_sq, m.den_sum, n)
        v_yd = _cov(m.num_den_sum, m.sum, m.den_sum, n)
        var_z = _clamp(v_yy - 2 * r * v_yd + r * r * v_dd, v_yy + r * r * v_dd) / (d_bar * d_bar)
        est = ArmEstimate(n=n, point=r, var=var_z)
    if not (covariate and m.has_covariate):
        return est
    return _with_covariates(est, m)


def _raw_sums(m: Moments, own: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The raw per-unit values ``u`` this arm's linearisation uses, with Σu and Σuuᵀ."""
    labels = ["y"] + (["d"] if m.is_ratio else []) + (["x"] + (["m"] if m.is_ratio else []) if own else [])
    extra = m.covariates
    names = labels + [f"c:{c}" for c in (extra.names if extra else ())]
    sums = {"y": m.sum, "d": m.den_sum, "x": m.pre_sum, "m": m.pre_den_sum}
    products = {("y", "y"): m.sum_sq, ("d", "d"): m.den_sum_sq, ("y", "d"): m.num_den_sum,
                ("x", "x"): m.pre_sum_sq, ("y", "x"): m.sum_cross, ("m", "m"): m.pre_den_sum_sq,
                ("x", "m"): m.pre_num_den_sum, ("y", "m"): m.num_pre_den_sum, ("d", "x"): m.den_pre_sum,
                ("d", "m"): m.den_pre_den_sum}
    if extra is not None:
        for j, cj in enumerate(extra.names):
            sums[f"c:{cj}"] = extra.sums[j]
            for label, column in (("y", extra.with_y), ("d", extra.with_d), ("x", extra.with_x),
                                  ("m", extra.with_m)):
                if column is not None:
                    products[(label, f"c:{cj}")] = column[j]
            for l, cl in enumerate(extra.names):
                products[(f"c:{cj}", f"c:{cl}")] = extra.products[j][l]
    k = len(names)
    s = np.array([sums[a] for a in names], dtype=float)
    q = np.empty((k, k))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            value = products.get((a, b), products.get((b, a)))
            assert value is not None, f"no Σ{a}·{b}"
            q[i, j] = value
    return names, s, q


def _sample_cov(s: np.ndarray, q: np.ndarray, n: int) -> np.ndarray:
    """Sample covariance matrix from Σu and Σuuᵀ, each entry 0 within rounding noise."""
    k = len(s)
    out = np.empty((k, k))
    for i in range(k):
        out[i, i] = _var(q[i, i], s[i], n)
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = _cov(q[i, j], s[i], s[j], n)
    return out


def _with_covariates(est: ArmEstimate, m: Moments) -> ArmEstimate:
    """``est`` with the covariate parts: the linearised values' covariances ``A S Aᵀ``."""
    n = m.n
    own = m.has_own_covariate and not (m.is_ratio and m.pre_den_sum == 0)
    extra = m.covariates.names if m.covariates is not None else ()
    if not own and not extra:
        return est
    labels, s, q = _raw_sums(m, own)
    cov = _sample_cov(s, q, n)
    at = {label: i for i, label in enumerate(labels)}
    rows: list[np.ndarray] = []   # a for z, then for each w

    def row(weights: dict[str, float]) -> np.ndarray:
        a = np.zeros(len(labels))
        for label, w in weights.items():
            a[at[label]] = w
        return a

    if m.is_ratio:
        rows.append(row({"y": 1.0 / (m.den_sum / n), "d": -est.point / (m.den_sum / n)}))  # type: ignore[operator]
    else:
        rows.append(row({"y": 1.0}))
    names: list[str] = []
    points: list[float] = []
    weights: list[float] = []
    if own:
        if m.is_ratio:
            p, m_bar = m.pre_sum / m.pre_den_sum, m.pre_den_sum / n  # type: ignore[operator]
            rows.append(row({"x": 1.0 / m_bar, "m": -p / m_bar}))
            points.append(p)
            weights.append(m.pre_den_sum)  # type: ignore[arg-type]
        else:
            rows.append(row({"x": 1.0}))
            points.append(m.pre_sum / n)  # type: ignore[operator]
            weights.append(float(n))
        names.append(OWN_COVARIATE)
    for j, name in enumerate(extra):
        rows.append(row({f"c:{name}": 1.0}))
        points.append(m.covariates.sums[j] / n)  # type: ignore[union-attr]
        weights.append(float(n))
        names.append(name)
    a = np.array(rows)
    lin = a @ cov @ a.T
    scale = (a * a) @ np.diag(cov)    # each linearised variance's size, for the noise clamp
    for i in range(1, len(rows)):
        lin[i, i] = _clamp(lin[i, i], scale[i])
    return ArmEstimate(n=n, point=est.point, var=est.var, covariates=tuple(names), pre_point=tuple(points),
                       pre_var=tuple(tuple(float(v) for v in r[1:]) for r in lin[1:]),
                       cross=tuple(float(v) for v in lin[0, 1:]), pre_weight=tuple(weights))
