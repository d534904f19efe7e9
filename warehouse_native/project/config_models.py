"""Validated, frozen config objects for sources, metrics and experiments.

Pydantic does the field-level checks (types, unknown keys, allowed values); the
cross-references (a metric's source exists, weights sum to one, ...) are checked by
``project.loader`` where the whole catalog is known.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .expressions import check_identifier, check_table

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
NAME_HINT = "names are lower_snake_case (letters, digits, underscores; not starting with a digit), at most 40 characters"

MetricType = Literal["count", "sum", "conversion", "active_days", "daily_participation",
                     "count_distinct", "mean", "ratio", "retention", "funnel", "percentile"]
METRIC_TYPES: tuple[str, ...] = MetricType.__args__  # type: ignore[attr-defined]
NEEDS_VALUE = {"sum", "count_distinct", "mean", "percentile"}
RATIO_LIKE = {"mean", "ratio", "retention"}
# names a funnel step may not take: the unit columns wn derives from a metric end in them
RESERVED_STEP_NAMES = frozenset({"den", "pre", "num", "pre_den"})
# metrics computed over events rather than per unit: no per-unit column, no numerator or
# denominator of a ratio, no CUPED covariate, no winsorization (docs/statistics.md, section 17)
EVENT_LEVEL = {"percentile"}


def _check_name(value: str) -> str:
    if not NAME_RE.match(value) or len(value) > 40 or "__" in value:
        raise ValueError(f"'{value}' is not a valid name ({NAME_HINT}; '__' is reserved for "
                         "the columns wn derives from a metric)")
    return value


# columns of the exposures / unit metrics tables a metric must not shadow
RESERVED_METRIC_NAMES = frozenset({"experiment", "unit_type", "unit_id", "variant", "first_exposure_at",
                                   "exposure_count", "post_days", "n", "dimension", "dimension_value",
                                   "day", "d"})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Freshness(_Frozen):
    """``freshness:`` of a source: how long before the analysis end its newest row may be
    (health check ``source_freshness``; docs/statistics.md, section 9)."""

    warn_after_hours: float = Field(default=24, gt=0, le=8760)
    fail_after_hours: float = Field(default=72, gt=0, le=8760)
    check: bool = True      # ``freshness: false`` in the YAML: this source is not checked

    @model_validator(mode="after")
    def _order(self) -> "Freshness":
        if self.fail_after_hours <= self.warn_after_hours:
            raise ValueError(f"fail_after_hours ({self.fail_after_hours:g}) must be larger than "
                             f"warn_after_hours ({self.warn_after_hours:g}), e.g. "
                             "{warn_after_hours: 24, fail_after_hours: 72}")
        return self


class Source(_Frozen):
    """A table, view or SQL query with timestamped rows keyed by unit ids."""

    name: str
    description: str | None = None
    table: str | None = None
    sql: str | None = None
    timestamp: str
    units: dict[str, str] = Field(min_length=1)
    dimensions: list[str] = []
    columns: list[str] | None = None  # optional: lets `wn validate` check filters offline
    experiment_column: str | None = None
    variant_column: str | None = None
    # the source_freshness health check's thresholds; false: do not check this source
    freshness: Freshness = Freshness()

    _name = field_validator("name")(classmethod(lambda cls, v: _check_name(v)))

    @field_validator("freshness", mode="before")
    @classmethod
    def _freshness_switch(cls, value: object) -> object:
        """``freshness: false`` turns the check off for this source, ``true`` keeps the defaults."""
        if isinstance(value, bool):
            return {"check": value}
        if not isinstance(value, dict):
            raise ValueError(f"freshness is a mapping like {{warn_after_hours: 24, fail_after_hours: 72}}, or "
                             f"false to skip this source; not {value!r}")
        return value

    @field_validator("timestamp", "experiment_column", "variant_column")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        return None if value is None else check_identifier(value)

    @field_validator("units")
    @classmethod
    def _unit_columns(cls, value: dict[str, str]) -> dict[str, str]:
        for column in value.values():
            check_identifier(column)
        return value

    @field_validator("dimensions")
    @classmethod
    def _dimension_columns(cls, value: list[str]) -> list[str]:
        for column in value:
            check_identifier(column)
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        return None if value is None else check_table(value)

    @model_validator(mode="after")
    def _table_or_sql(self) -> "Source":
        if bool(self.table) == bool(self.sql):
            raise ValueError("give exactly one of 'table' or 'sql'")
        if bool(self.experiment_column) != bool(self.variant_column):
            raise ValueError("an exposure source needs both 'experiment_column' and 'variant_column'")
        return self

    @property
    def is_exposure_source(self) -> bool:
        return bool(self.experiment_column)

    def known_columns(self) -> set[str] | None:
        if self.columns is None:
            return None
        cols = set(self.columns) | {self.timestamp} | set(self.units.values()) | set(self.dimensions)
        for extra in (self.experiment_column, self.variant_column):
            if extra:
                cols.add(extra)
        return cols


class Winsorize(_Frozen):
    lower: float | None = Field(default=None, gt=0, lt=0.5)
    upper: float | None = Field(default=None, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _some(self) -> "Winsorize":
        if self.lower is None and self.upper is None:
            raise ValueError("give 'lower' and/or 'upper' quantiles, e.g. {upper: 0.999}")
        return self


class Window(_Frozen):
    """Which days after first exposure count: [start_day, end_day) in days."""

    start_day: int = Field(default=0, ge=0)
    end_day: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _order(self) -> "Window":
        if self.end_day is not None and self.end_day <= self.start_day:
            raise ValueError("end_day must be after start_day")
        return self


class Retention(_Frozen):
    """``retention: {day: N}``: active (a row passing the metric's filter) during day N after
    first exposure, i.e. in [first exposure + N days, first exposure + N + 1 days)."""

    day: int = Field(ge=0, le=3650)


class FunnelStep(_Frozen):
    name: str
    filter: str

    @field_validator("name")
    @classmethod
    def _step_name(cls, value: str) -> str:
        _check_name(value)
        if value in RESERVED_STEP_NAMES:
            raise ValueError(f"'{value}' names a column wn derives from a metric; choose another step name")
        return value


class Funnel(_Frozen):
    """``funnel: {steps: [...], within_hours: 24}``: ordered steps, each a filter over the
    source's rows; a unit completes step k when its first step-k row in the post window comes
    at or after its first step-(k-1) row (which it completed), and, with ``within_hours``,
    less than that many hours after its first step-1 row."""

    steps: list[FunnelStep] = Field(min_length=2, max_length=20)
    within_hours: float | None = Field(default=None, gt=0, le=24 * 3650)

    @model_validator(mode="after")
    def _unique(self) -> "Funnel":
        names = [s.name for s in self.steps]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"step name(s) {', '.join(dups)} appear twice; give every step its own name")
        return self


class GuardrailConfig(_Frozen):
    max_regression: float = Field(default=0.0, ge=0, lt=1)


class Metric(_Frozen):
    """How to turn a source's rows into one number per unit."""

    name: str
    description: str | None = None
    owner: str | None = None          # free text (team or person); catalog only, never in the hash
    type: MetricType
    source: str | None = None
    filter: str | None = None
    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    direction: Literal["increase", "decrease"] = "increase"
    tags: list[str] = []
    winsorize: Winsorize | None = None
    window: Window | None = None
    cuped: bool = True
    guardrail: GuardrailConfig | None = None
    retention: Retention | None = None
    funnel: Funnel | None = None
    percentile: float | None = None   # type: percentile: which quantile of the events' values, in (0, 1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check_name(value)
        if value in RESERVED_METRIC_NAMES:
            raise ValueError(f"'{value}' is a column wn writes next to the metrics; choose another name")
        return value

    @model_validator(mode="after")
    def _fields_for_type(self) -> "Metric":
        if self.type == "ratio":
            missing = [f for f in ("numerator", "denominator") if not getattr(self, f)]
            if missing:
                raise ValueError(f"a ratio metric needs {' and '.join(missing)} (names of other metrics)")
            if self.source or self.filter or self.value:
                raise ValueError("a ratio metric takes numerator/denominator metrics, not source/filter/value")
        else:
            if not self.source:
                raise ValueError(f"a {self.type} metric needs 'source'")
            if self.numerator or self.denominator:
                raise ValueError("numerator/denominator only apply to type: ratio")
            if self.type in NEEDS_VALUE and not self.value:
                raise ValueError(f"a {self.type} metric needs 'value' (a SQL expression over the source)")
            if self.type not in NEEDS_VALUE and self.value:
                raise ValueError(f"'value' does not apply to a {self.type} metric; remove it")
        if self.type in ("retention", "funnel") and self.winsorize is not None:
            raise ValueError(f"'winsorize' does not apply to a {self.type} metric (its per-unit values are 0/1 "
                             "flags); remove it")
        if self.type == "retention":
            if self.retention is None:
                raise ValueError("a retention metric needs 'retention: {day: N}' (active on day N after exposure)")
            if self.window is not None:
                raise ValueError("'window' does not apply to a retention metric: 'retention.day' sets it")
        elif self.retention is not None:
            raise ValueError(f"'retention' only applies to type: retention, not {self.type}")
        if self.type == "funnel":
            if self.funnel is None:
                raise ValueError("a funnel metric needs 'funnel: {steps: [{name, filter}, ...]}' (two or more steps)")
        elif self.funnel is not None:
            raise ValueError(f"'funnel' only applies to type: funnel, not {self.type}")
        if self.type == "percentile":
            self._check_percentile()
        elif self.percentile is not None:
            raise ValueError(f"'percentile' only applies to type: percentile (this is a {self.type} metric); "
                             "remove it, or set type: percentile")
        return self

    def _check_percentile(self) -> None:
        if self.percentile is None:
            raise ValueError("a percentile metric needs 'percentile': the quantile as a fraction "
                             "strictly between 0 and 1, e.g. percentile: 0.95 for the 95th percentile")
        if self.winsorize is not None:
            raise ValueError("'winsorize' does not apply to a percentile metric (a quantile is not "
                             "moved by a few extreme values); remove it")
        if "cuped" in self.model_fields_set and self.cuped:
            raise ValueError("CUPED does not apply to a percentile metric (wn has no pre-exposure "
                             "covariate for a quantile of events); remove 'cuped: true'")

    @field_validator("percentile")
    @classmethod
    def _percentile_range(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value < 1.0:
            fix = (f"for the {value:g}th percentile write {value / 100:g}" if 1.0 < value < 100.0
                   else "e.g. 0.95 for the 95th percentile")
            raise ValueError(f"percentile must be a fraction strictly between 0 and 1 (got {value:g}; {fix})")
        return value

    @property
    def is_event_level(self) -> bool:
        """Computed over the source's events, not as a per-unit value (type: percentile)."""
        return self.type in EVENT_LEVEL

    @property
    def is_guardrail(self) -> bool:
        return "guardrail" in self.tags


class Variant(_Frozen):
    name: str
    control: bool = False
    weight: float = Field(gt=0, le=1)


class ExposureRef(_Frozen):
    source: str
    experiment_id: str | None = None


class Prior(_Frozen):
    mean: float = 0.0
    sd: float = Field(default=0.3, gt=0)


COVARIATE_SUFFIX = "__pre"


class Analysis(_Frozen):
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    cuped: bool = True
    cuped_days: int = Field(default=14, ge=1, le=365)
    # CUPAC: further covariates of every CUPED metric besides its own pre-period value, each a
    # catalog metric's pre-exposure value per unit, written '<metric>__pre' (checked against
    # the catalog by project.loader; docs/statistics.md, "Several covariates")
    covariates: list[str] = []
    correction: Literal["none", "bonferroni", "holm", "bh"] = "holm"
    alternative: Literal["two-sided", "one-sided"] = "two-sided"
    sequential: bool = False
    bayesian: bool = False
    prior: Prior = Prior()
    # wn.scorecard_daily: a first run (or a full refresh) computes the days before its last day
    # from the state (true; costs about a stateless run more at 1M units x 28 days), or the
    # series starts on the first run's day and grows run by run, a full refresh keeping it (false)
    daily_history: bool = False


class DecisionRule(_Frozen):
    """``decision:`` of an experiment: how its results become ship / do not ship / keep
    running / investigate (warehouse_native/decision.py; docs/statistics.md, "Decision")."""

    min_days: int = Field(default=7, ge=0, le=3650)
    # relative lift the primary metrics must be able to detect with 80% power before "no
    # effect" becomes "do not ship" (0.02 = 2%); without it wn keeps running until the end date
    mde: float | None = Field(default=None, gt=0, le=10)
    ship_when: Literal["all_primary", "any_primary"] = "all_primary"
    # kind: holdout only: the relative regression tolerated on a metric that sets no
    # guardrail.max_regression of its own (0.01 = 1%; default 0)
    max_regression: float | None = Field(default=None, ge=0, lt=1)


ExperimentKind = Literal["ab", "holdout"]


class Dimension(_Frozen):
    """A slice of an experiment: ``country``, or ``{name: country, top: 10, min_units: 500}`` to
    keep the values with the most units (``top``; ties by value) that have at least
    ``min_units`` units, every other value lumped into ``(other)``."""

    name: str
    top: int | None = Field(default=None, ge=1, le=1000)
    min_units: int | None = Field(default=None, ge=1)

    @property
    def limited(self) -> bool:
        return self.top is not None or self.min_units is not None


class Experiment(_Frozen):
    name: str
    # ab: ship / do not ship; holdout: a small control kept from the features for months,
    # every metric read for regression, no early verdict (decision.py, docs/statistics.md)
    kind: ExperimentKind = "ab"
    description: str | None = None
    hypothesis: str | None = None
    owner: str | None = None
    unit: str
    exposures: ExposureRef
    start: dt.date
    end: dt.date | None = None
    variants: list[Variant] = Field(min_length=2)
    primary_metrics: list[str] = Field(min_length=1)
    secondary_metrics: list[str] = []
    guardrail_metrics: list[str] = []
    dimensions: list[Dimension] = []
    analysis: Analysis = Analysis()
    decision: DecisionRule = DecisionRule()

    _name = field_validator("name")(classmethod(lambda cls, v: _check_name(v)))

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"'{value}' is not a date; write it as YYYY-MM-DD") from None
        return value

    @field_validator("dimensions", mode="before")
    @classmethod
    def _dimension_names(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @property
    def dimension_names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    @model_validator(mode="after")
    def _consistent(self) -> "Experiment":
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    @property
    def control(self) -> Variant:
        return next(v for v in self.variants if v.control)

    @property
    def treatments(self) -> list[Variant]:
        return [v for v in self.variants if not v.control]

    @property
    def experiment_id(self) -> str:
        return self.exposures.experiment_id or self.name

    def status(self, as_of: dt.date) -> Literal["not started", "running", "ended"]:
        """Where the experiment stands on ``as_of``: its last day is ``end`` (inclusive)."""
        if as_of < self.start:
            return "not started"
        return "ended" if self.end is not None and as_of > self.end else "running"

    def is_active(self, as_of: dt.date, grace_days: int = 0) -> bool:
        """Started on or before ``as_of`` and ended no more than ``grace_days`` before it."""
        return self.start <= as_of and (self.end is None or as_of <= self.end + dt.timedelta(days=grace_days))
