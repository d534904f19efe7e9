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
                     "count_distinct", "mean", "ratio"]
METRIC_TYPES: tuple[str, ...] = MetricType.__args__  # type: ignore[attr-defined]
NEEDS_VALUE = {"sum", "count_distinct", "mean"}
RATIO_LIKE = {"mean", "ratio"}


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

    _name = field_validator("name")(classmethod(lambda cls, v: _check_name(v)))

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
        return self

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


class Experiment(_Frozen):
    name: str
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
    dimensions: list[str] = []
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
