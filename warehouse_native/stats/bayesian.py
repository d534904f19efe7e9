"""Bayesian summary of the relative lift under a normal approximation.

The likelihood is the delta-method sampling distribution of the relative delta,
``rel̂ ~ N(rel, se²)``; with a normal prior ``rel ~ N(μ₀, σ₀²)`` the posterior is normal:

    precision = 1/σ₀² + 1/se²,   mean = (μ₀/σ₀² + rel̂/se²) / precision,   sd = precision^(−1/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .comparison import check_confidence, join_reasons, prepare_pair
from .distributions import norm_cdf, norm_pdf, norm_ppf
from .errors import StatsInputError
from .guardrail import check_direction
from .moments import Moments

__all__ = ["BayesianResult", "bayesian_summary", "DEFAULT_PRIOR_SD"]

#: Weakly informative: a ±60 % relative lift is two prior sds out.
DEFAULT_PRIOR_SD = 0.3


@dataclass(frozen=True)
class BayesianResult:
    """Posterior summary of the relative lift ``(T − C)/|C|`` (numbers ``None`` with a
    reason when not computable).

    ``chance_to_beat``: posterior probability that the variant is better than control in
    the metric's good ``direction``. ``expected_loss``: posterior expected relative loss
    from shipping the variant, ``E[max(0, −rel)]`` (good = increase) or ``E[max(0, rel)]``
    (good = decrease). ``ci_lower``/``ci_upper``: central credible interval at
    ``confidence``.
    """

    chance_to_beat: float | None
    expected_loss: float | None
    posterior_mean: float | None
    posterior_sd: float | None
    ci_lower: float | None
    ci_upper: float | None
    reason: str | None = None
    cuped: bool = False


def bayesian_summary(
    control: Moments,
    variant: Moments,
    *,
    direction: str,
    prior_mean: float = 0.0,
    prior_sd: float | None = DEFAULT_PRIOR_SD,
    confidence: float = 0.95,
    cuped: bool = False,
) -> BayesianResult:
    """Posterior of the relative lift with a ``N(prior_mean, prior_sd²)`` prior.

    ``prior_sd=None`` (or ``math.inf``) gives a flat prior: the posterior is then the
    likelihood itself. Estimates and standard errors are those of :func:`compare`.
    """
    direction = check_direction(direction)
    confidence = check_confidence(confidence)
    if not math.isfinite(prior_mean):
        raise StatsInputError(f"prior_mean must be finite (got {prior_mean!r})")
    if prior_sd is not None and not (prior_sd > 0):
        raise StatsInputError(f"prior_sd must be positive, or None for a flat prior (got {prior_sd!r})")
    prep = prepare_pair(control, variant, cuped=cuped)
    reasons = list(prep.reasons)
    pair = prep.pair
    none = (None,) * 6
    if pair is None:
        return BayesianResult(*none, join_reasons(reasons))
    rel = pair.relative() if prep.control_mean != 0.0 else None
    if rel is None:
        reasons.append("control mean is zero, so the relative lift is undefined")
        return BayesianResult(*none, join_reasons(reasons), cuped=pair.cuped)
    if rel.variance <= 0.0:
        reasons.append("the relative lift has zero variance, so there is no likelihood to update")
        return BayesianResult(*none, join_reasons(reasons), cuped=pair.cuped)
    precision = 1.0 / rel.variance
    weighted = rel.estimate / rel.variance
    if prior_sd is not None and math.isfinite(prior_sd):
        precision += 1.0 / (prior_sd * prior_sd)
        weighted += prior_mean / (prior_sd * prior_sd)
    mean = weighted / precision
    sd = 1.0 / math.sqrt(precision)
    good = mean if direction == "increase" else -mean  # posterior mean of the gain
    z = good / sd
    chance = norm_cdf(z)
    # E[max(0, −G)] for G ~ N(good, sd²)
    loss = sd * norm_pdf(z) - good * norm_cdf(-z)
    q = norm_ppf(0.5 + confidence / 2.0)
    return BayesianResult(
        chance_to_beat=chance,
        expected_loss=max(0.0, loss),
        posterior_mean=mean,
        posterior_sd=sd,
        ci_lower=mean - q * sd,
        ci_upper=mean + q * sd,
        reason=join_reasons(reasons),
        cuped=pair.cuped,
    )
