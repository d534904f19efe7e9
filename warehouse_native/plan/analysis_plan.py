"""The analysis plan: what to compute for one experiment, with no SQL in it.

The plan sits between the validated project and the SQL renderer (as in MetricFlow):
it names the exposure source, one scan per event source with the per-unit columns it
must produce, and how each analysed metric is read back from those columns.  The SQL
layer renders it per dialect; generated SQL carries comments naming plan elements.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

from ..decision import Rule

Aggregation = Literal["count", "sum", "flag", "count_distinct", "distinct_days", "first_ts"]
WindowKind = Literal["post", "pre"]
# how a unit column's raw aggregate becomes its value (sql/render.py ``_finish``): as is,
# per active day, the retention eligibility indicator, a funnel step's completion flag
Finish = Literal["none", "per_post_day", "per_pre_day", "eligible", "funnel"]
Role = Literal["primary", "secondary", "guardrail"]

#: the prefix of the aggregates columns holding the covariates' own sums
COVARIATE_COLUMNS = "covariates"


@dataclass(frozen=True)
class UnitColumn:
    """One per-unit aggregate of a source's rows, in the post or pre-exposure window."""

    name: str
    metric: str
    agg: Aggregation
    window: WindowKind
    filter: str | None = None
    value: str | None = None
    start_day: int = 0
    end_day: int | None = None
    finish: Finish = "none"
    # retention: a unit counts only once this many days after its first exposure are over by
    # the analysis end (its value is 0 before; the ``eligible`` column says whether it counts)
    complete_after: int | None = None
    # funnel steps: the earlier steps' columns (first-row times), and the conversion window
    after: tuple[str, ...] = ()
    within_hours: float | None = None

    def signature(self) -> tuple:
        base = (self.agg, self.window, self.filter, self.value, self.start_day, self.end_day)
        extra = (self.complete_after, self.after, self.within_hours)
        return base + extra if any(x not in (None, ()) for x in extra) else base


@dataclass(frozen=True)
class SourceScan:
    """One pass over a source joined once to the exposures, producing many unit columns."""

    source: str
    relation: str           # a table name or a parenthesised, rendered SQL query
    unit_column: str
    timestamp: str
    columns: tuple[UnitColumn, ...]

    @property
    def needs_pre(self) -> bool:
        return any(c.window == "pre" for c in self.columns)

    @property
    def step_name(self) -> str:
        return f"scan__{self.source}"


@dataclass(frozen=True)
class QuantileQuery:
    """A percentile metric: the ``percentile``-th quantile of ``value`` over the events (rows)
    of exposed units in their post window, per variant and slice, with the bounds of its
    clustered outer interval (docs/statistics.md, "Percentile metrics").  One statement of
    its own, computed in the warehouse; no per-unit column."""

    metric: str
    percentile: float
    source: str
    relation: str
    unit_column: str
    timestamp: str
    value: str
    filter: str | None = None
    start_day: int = 0
    end_day: int | None = None

    @property
    def step_name(self) -> str:
        return f"{QUANTILE_STEP_PREFIX}{self.metric}"


QUANTILE_STEP_PREFIX = "quantiles__"


@dataclass(frozen=True)
class CovariatePlan:
    """A further CUPED covariate (``analysis.covariates``): another metric's pre-exposure value
    per unit, read from the unit-metrics column ``name`` (``<metric>__pre``) and capped as that
    metric's ``winsorize`` says."""

    name: str
    winsor_lower: float | None = None
    winsor_upper: float | None = None


@dataclass(frozen=True)
class MetricPlan:
    """How one analysed metric is read from the unit-metrics columns."""

    name: str
    type: str
    role: Role
    direction: str
    tags: tuple[str, ...]
    value_column: str                  # per-unit value (numerator for ratio-like metrics); "" for percentile
    den_column: str | None = None      # ratio-like: per-unit denominator
    pre_column: str | None = None      # CUPED covariate (pre numerator for ratio-like)
    pre_den_column: str | None = None  # ratio-like CUPED: pre denominator
    covariates: tuple[CovariatePlan, ...] = ()   # further covariates, besides pre_column
    winsor_lower: float | None = None
    winsor_upper: float | None = None
    max_regression: float = 0.0
    description: str | None = None
    definition_hash: str = ""

    @property
    def is_ratio(self) -> bool:
        return self.den_column is not None

    @property
    def is_percentile(self) -> bool:
        """Read from its own quantile statement (AnalysisPlan.quantiles), not the unit metrics."""
        return self.type == "percentile"

    @property
    def has_covariate(self) -> bool:
        return self.pre_column is not None or bool(self.covariates)

    def covariate_products(self) -> tuple[tuple[str, str, str], ...]:
        """The sums of this metric's inputs times its further covariates: (moment name, input,
        covariate), inputs named as in the aggregates query (``y``, ``d``, ``x``, ``xm``: value,
        denominator, own covariate and its denominator); moment ``<input>_c<j>`` is
        Σinput·c_j for the metric's j-th covariate.  The covariates' own sums and products are
        the plan's (:meth:`AnalysisPlan.covariate_products`), the same for every metric."""
        inputs = ["y"] + (["d"] if self.is_ratio else []) + (["x"] if self.pre_column else []) \
            + (["xm"] if self.pre_den_column else [])
        return tuple((f"{a}_c{j}", a, c.name) for a in inputs for j, c in enumerate(self.covariates))

    @property
    def winsorized(self) -> bool:
        return self.winsor_lower is not None or self.winsor_upper is not None


@dataclass(frozen=True)
class ExposurePlan:
    source: str
    relation: str
    unit_column: str
    timestamp: str
    experiment_column: str
    variant_column: str
    experiment_id: str
    population: bool = False   # power analysis: every unit active in the source, no assignment log


# plan fields added after fingerprints were first stored (wn.runs, the daily series' key): left
# out of the fingerprint while they hold this value, so a plan that does not use them keeps
# the fingerprint it had before they existed
_ADDED_FIELDS: dict[str, object] = {"dimension_limits": (), "quantiles": (), "kind": "ab", "freshness": (), "covariates": ()}


@dataclass(frozen=True)
class SourceFreshness:
    """A source the run reads, for the source_freshness health check: its newest row before the
    analysis end, against the source's thresholds (hours)."""

    source: str
    relation: str
    timestamp: str
    warn_after_hours: float
    fail_after_hours: float


def _drop_defaults(fields: dict, defaults: dict) -> None:
    for name, default in defaults.items():
        if name in fields and fields[name] == default:
            del fields[name]


@dataclass(frozen=True)
class AnalysisPlan:
    experiment: str
    unit_type: str
    exposure: ExposurePlan
    control: str
    variants: tuple[str, ...]            # control first
    weights: tuple[float, ...]
    start: dt.datetime                   # first exposure counted (inclusive)
    end: dt.datetime                     # analysis end (exclusive)
    as_of: dt.date
    cuped_days: int
    dimensions: tuple[str, ...]
    scans: tuple[SourceScan, ...]
    metrics: tuple[MetricPlan, ...]
    confidence: float
    correction: str
    alternative: str
    sequential: bool
    bayesian: bool
    prior_mean: float
    prior_sd: float
    models: tuple[tuple[str, str], ...] = field(default=())   # (name, rendered select) in run order
    # how unit ids are compared across the exposure source and the metric sources: "" (in
    # their own type; what `wn compile` assumes), the type family they share ("integer",
    # "string", ...: found by `wn run`), or "text" (the families differ: both sides cast to text)
    unit_keys: str = ""
    daily_history: bool = False          # see Analysis.daily_history
    planned_end: dt.date | None = None   # the experiment's last day (None: open-ended)
    decision_rule: Rule = Rule()         # the experiment's decision: settings
    # slices limited to their largest values: (dimension, top, min_units); others '(other)'
    dimension_limits: tuple[tuple[str, int | None, int | None], ...] = ()
    quantiles: tuple[QuantileQuery, ...] = ()   # percentile metrics: one statement each

    @property
    def unit_level_metrics(self) -> tuple[MetricPlan, ...]:
        """The metrics read from the per-unit columns (every type but percentile)."""
        return tuple(m for m in self.metrics if not m.is_percentile)
    kind: str = "ab"                     # ab | holdout (every metric read for regression)
    freshness: tuple[SourceFreshness, ...] = ()   # the sources whose newest row is checked
    # analysis.covariates used by some metric (each metric's own are MetricPlan.covariates)
    covariates: tuple[CovariatePlan, ...] = ()

    @property
    def scan_start(self) -> dt.datetime:
        """Earliest source row any window can need (pre-exposure covariates)."""
        needs_pre = any(s.needs_pre for s in self.scans)
        return self.start - dt.timedelta(days=self.cuped_days if needs_pre else 0)

    def metric(self, name: str) -> MetricPlan:
        return next(m for m in self.metrics if m.name == name)

    def quantile(self, name: str) -> QuantileQuery:
        return next(q for q in self.quantiles if q.metric == name)

    def covariate_products(self) -> tuple[tuple[str, int, int | None], ...]:
        """The covariates' own sums, computed once for every metric: (column, j, l or None):
        ``covariates__c<j>_sum`` is Σc_j and ``covariates__c<j>_c<l>`` Σc_j·c_l (j ≤ l), j and l
        indexes into :attr:`covariates`.  (No metric's column can have these names: a metric's
        moments never start with ``c<digit>``.)"""
        k = len(self.covariates)
        return tuple([(f"{COVARIATE_COLUMNS}__c{j}_sum", j, None) for j in range(k)]
                     + [(f"{COVARIATE_COLUMNS}__c{j}_c{l}", j, l) for j in range(k) for l in range(j, k)])

    def fingerprint(self) -> str:
        fields = asdict(self)
        for name, default in _ADDED_FIELDS.items():   # so that adding them changes no fingerprint
            if fields.get(name) == default:
                del fields[name]
        for m in fields["metrics"]:   # a plan without covariates keeps the fingerprint it had before them
            if not m["covariates"]:
                del m["covariates"]
        fields.pop("freshness", None)   # thresholds of a health check: no number depends on them
        _drop_defaults(fields.get("decision_rule") or {}, {"kind": "ab", "max_regression": None})
        for scan in fields["scans"]:
            for c in scan["columns"]:
                _drop_defaults(c, {"complete_after": None, "after": (), "within_hours": None})
        blob = json.dumps(fields, default=str, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
