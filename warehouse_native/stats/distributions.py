"""Fast scalar CDFs and quantiles of the Student t and standard normal distributions.

``scipy.stats`` distribution objects carry a large per-call overhead; the ufuncs in
``scipy.special`` are the same numerics without it. ``df=math.inf`` means the normal.
"""

from __future__ import annotations

import math

from scipy import special

__all__ = ["t_cdf", "t_sf", "t_ppf", "norm_cdf", "norm_sf", "norm_ppf", "norm_pdf"]


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student t with ``df`` degrees of freedom."""
    if math.isinf(df):
        return float(special.ndtr(x))
    return float(special.stdtr(df, x))


def t_sf(x: float, df: float) -> float:
    """P(T > x) for Student t with ``df`` degrees of freedom."""
    return t_cdf(-x, df)


def t_ppf(q: float, df: float) -> float:
    """Quantile of Student t: the x with P(T <= x) = q."""
    if math.isinf(df):
        return float(special.ndtri(q))
    return float(special.stdtrit(df, q))


def norm_cdf(x: float) -> float:
    """Standard normal CDF."""
    return float(special.ndtr(x))


def norm_sf(x: float) -> float:
    """Standard normal survival function, 1 - CDF."""
    return float(special.ndtr(-x))


def norm_ppf(q: float) -> float:
    """Standard normal quantile."""
    return float(special.ndtri(q))


def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
