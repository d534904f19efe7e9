"""Statistics for wn: pure functions on per-variant sufficient statistics.

No SQL, no I/O, no imports from other wn layers. Conventions and formulas are in
``docs/statistics.md``.
"""

from .balance import BalanceResult, pre_exposure_balance
from .bayesian import DEFAULT_PRIOR_SD, BayesianResult, bayesian_summary
from .comparison import Comparison, compare
from .contrast import ALTERNATIVES
from .correction import CORRECTION_METHODS, adjust_p_values, adjusted_confidence
from .errors import StatsInputError
from .exposure_gaps import GapResult, exposure_gaps
from .freshness import FreshnessResult, SourceLag, source_freshness
from .guardrail import DIRECTIONS, GuardrailResult, guardrail_check
from .holdout import beyond_margin, final_regressions, holdout_status, interim_regression
from .moments import (
    COVARIATE_FIELDS,
    MOMENT_FIELDS,
    OWN_COVARIATE,
    RATIO_COVARIATE_FIELDS,
    RATIO_FIELDS,
    CovariateSums,
    Moments,
)
from .power import PowerResult, days_needed, minimum_detectable_effect, sample_size
from .quantile import QuantileArm, compare_quantiles, outer_z, quantile_arm, quantile_guardrail
from .sequential import SequentialResult, sequential_compare
from .srm import SrmResult, srm_check

__all__ = [
    "ALTERNATIVES",
    "BalanceResult",
    "BayesianResult",
    "COVARIATE_FIELDS",
    "CORRECTION_METHODS",
    "Comparison",
    "CovariateSums",
    "DEFAULT_PRIOR_SD",
    "DIRECTIONS",
    "FreshnessResult",
    "GapResult",
    "GuardrailResult",
    "MOMENT_FIELDS",
    "Moments",
    "OWN_COVARIATE",
    "PowerResult",
    "QuantileArm",
    "compare_quantiles",
    "outer_z",
    "quantile_arm",
    "quantile_guardrail",
    "minimum_detectable_effect",
    "RATIO_COVARIATE_FIELDS",
    "RATIO_FIELDS",
    "SequentialResult",
    "SourceLag",
    "SrmResult",
    "StatsInputError",
    "adjust_p_values",
    "adjusted_confidence",
    "bayesian_summary",
    "exposure_gaps",
    "beyond_margin",
    "final_regressions",
    "holdout_status",
    "interim_regression",
    "source_freshness",
    "pre_exposure_balance",
    "compare",
    "days_needed",
    "guardrail_check",
    "sample_size",
    "sequential_compare",
    "srm_check",
]
