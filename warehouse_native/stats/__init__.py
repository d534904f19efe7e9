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
from .guardrail import DIRECTIONS, GuardrailResult, guardrail_check
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
    "GapResult",
    "GuardrailResult",
    "MOMENT_FIELDS",
    "Moments",
    "OWN_COVARIATE",
    "PowerResult",
    "minimum_detectable_effect",
    "RATIO_COVARIATE_FIELDS",
    "RATIO_FIELDS",
    "SequentialResult",
    "SrmResult",
    "StatsInputError",
    "adjust_p_values",
    "adjusted_confidence",
    "bayesian_summary",
    "exposure_gaps",
    "pre_exposure_balance",
    "compare",
    "days_needed",
    "guardrail_check",
    "sample_size",
    "sequential_compare",
    "srm_check",
]
