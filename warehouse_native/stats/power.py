"""Sample-size planning for a fixed-horizon test of each treatment against control."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scipy import optimize, special

from .distributions import norm_cdf, norm_ppf, t_ppf
from .errors import StatsInputError

__all__ = ["PowerResult", "sample_size", "days_needed"]


@dataclass(frozen=True)
class PowerResult:
    """Units needed so that every treatment-vs-control test reaches ``power``.

    ``units_per_variant`` follows the order of ``weights`` (control first); each entry is
    rounded up, and ``total_units`` is their sum. ``mde_absolute = mde·|mean|``;
    ``effect_size`` is the standardised effect ``mde_absolute/sd``.
    """

    units_per_variant: list[int]
    total_units: int
    mde_absolute: float
    effect_size: float
    alpha: float
    power: float
    test: str


def _power(n_total: float, d: float, wc: float, wt: float, alpha: float, two_sided: bool, test: str) -> float:
    """Power of one treatment-vs-control test with ``n_total`` units overall.

    ``d`` is the standardised effect; arms get ``wc·N`` and ``wt·N`` units.
    """
    n1, n2 = wc * n_total, wt * n_total
    nc = d / math.sqrt(1.0 / n1 + 1.0 / n2)
    if test == "z":
        if two_sided:
            crit = norm_ppf(1.0 - alpha / 2.0)
            return norm_cdf(nc - crit) + norm_cdf(-nc - crit)
        return norm_cdf(nc - norm_ppf(1.0 - alpha))
    df = n1 + n2 - 2.0
    if two_sided:
        crit = t_ppf(1.0 - alpha / 2.0, df)
        return float(1.0 - special.nctdtr(df, nc, crit) + special.nctdtr(df, nc, -crit))
    crit = t_ppf(1.0 - alpha, df)
    return float(1.0 - special.nctdtr(df, nc, crit))


def _solve_total(d: float, wc: float, wt: float, alpha: float, power: float, two_sided: bool, test: str) -> float:
    """Smallest (continuous) total N whose power reaches ``power`` for one pair of arms."""
    # the t-test needs df = n1 + n2 − 2 ≥ 1 for its power to be meaningful
    lo = max(3.0 / (wc + wt), 1.0 / wc, 1.0 / wt) if test == "t" else 1e-9
    f = lambda n: _power(n, d, wc, wt, alpha, two_sided, test) - power  # noqa: E731
    if f(lo) >= 0:
        return lo
    z = norm_ppf(1.0 - alpha / 2.0 if two_sided else 1.0 - alpha) + norm_ppf(power)
    hi = max(lo * 2.0, 2.0 * (z / d) ** 2 * (1.0 / wc + 1.0 / wt))
    while f(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(f, lo, hi, xtol=1e-10, rtol=1e-12, maxiter=500))


def sample_size(
    *,
    mean: float,
    variance: float,
    mde: float,
    confidence: float = 0.95,
    power: float = 0.8,
    weights: Sequence[float] = (0.5, 0.5),
    alternative: str = "two-sided",
    test: str = "z",
) -> PowerResult:
    """Units per variant to detect a relative change of ``mde`` (e.g. 0.02 = 2 %).

    ``mean``/``variance``: the metric's per-unit mean and variance (e.g. from a pre-period).
    ``weights``: traffic split, control first (normalised). Each treatment is compared with
    control at level ``α = 1 − confidence`` (pass a corrected confidence, e.g. from
    :func:`adjusted_confidence`, to plan for a multiple-comparison correction); the total is
    the largest needed by any treatment. ``test``: "z" (normal approximation, as
    ``statsmodels`` ``NormalIndPower``) or "t" (pooled-variance t, as ``TTestIndPower``).
    Invalid inputs raise :class:`StatsInputError`.
    """
    try:
        mean, variance, mde = float(mean), float(variance), float(mde)
        confidence, power = float(confidence), float(power)
    except (TypeError, ValueError):
        raise StatsInputError("mean, variance, mde, confidence and power must be numbers") from None
    for name, v in (("mean", mean), ("variance", variance), ("mde", mde)):
        if not math.isfinite(v):
            raise StatsInputError(f"{name} must be a finite number (got {v!r})")
    if mean == 0:
        raise StatsInputError("mean is zero, so a relative minimum detectable effect is undefined")
    if variance <= 0:
        raise StatsInputError(f"variance must be positive (got {variance!r})")
    if mde <= 0:
        raise StatsInputError(f"mde must be a positive relative change (got {mde!r})")
    if not (0.0 < confidence < 1.0):
        raise StatsInputError(f"confidence must be strictly between 0 and 1 (got {confidence!r})")
    if alternative not in ("two-sided", "increase", "decrease"):
        raise StatsInputError(f"alternative must be two-sided, increase or decrease (got {alternative!r})")
    if test not in ("z", "t"):
        raise StatsInputError(f"test must be 'z' or 't' (got {test!r})")
    w = [float(x) for x in weights]
    if len(w) < 2 or any(not math.isfinite(x) or x <= 0 for x in w):
        raise StatsInputError(f"weights need at least two positive numbers, control first (got {list(weights)!r})")
    alpha = 1.0 - confidence
    two_sided = alternative == "two-sided"
    if not (alpha < power < 1.0):
        raise StatsInputError(f"power must be between alpha ({alpha:g}) and 1 (got {power!r})")
    total_w = sum(w)
    w = [x / total_w for x in w]
    delta = mde * abs(mean)
    d = delta / math.sqrt(variance)
    n_total = max(_solve_total(d, w[0], wt, alpha, power, two_sided, test) for wt in w[1:])
    per_variant = [max(2, math.ceil(x * n_total - 1e-9)) for x in w]
    return PowerResult(
        units_per_variant=per_variant,
        total_units=sum(per_variant),
        mde_absolute=delta,
        effect_size=d,
        alpha=alpha,
        power=power,
        test=test,
    )


def days_needed(total_units: int, daily_new_units: float) -> int:
    """Days until ``total_units`` units have been exposed at ``daily_new_units`` per day.

    Assumes a steady inflow of *new* units (returning units do not count twice).
    """
    if total_units < 0:
        raise StatsInputError(f"total_units must be non-negative (got {total_units!r})")
    if not (math.isfinite(daily_new_units) and daily_new_units > 0):
        raise StatsInputError(f"daily_new_units must be a positive number (got {daily_new_units!r})")
    return math.ceil(total_units / daily_new_units - 1e-9)


def minimum_detectable_effect(
    *,
    control_mean: float,
    control_var: float,
    control_n: int,
    variant_var: float,
    variant_n: int,
    confidence: float = 0.95,
    power: float = 0.8,
) -> float | None:
    """Relative effect a two-sided z-test detects with probability ``power`` at these sizes.

    ``MDE = (z_{1-α/2} + z_{power}) · sqrt(σc²/nc + σt²/nt) / |control_mean|``; ``None`` when
    it is undefined (an arm with fewer than 2 units, zero control mean, zero variance).
    """
    if control_n < 2 or variant_n < 2 or control_mean == 0:
        return None
    se = math.sqrt(control_var / control_n + variant_var / variant_n)
    if not math.isfinite(se) or se == 0:
        return None
    z = norm_ppf(1 - (1 - confidence) / 2) + norm_ppf(power)
    return z * se / abs(control_mean)
