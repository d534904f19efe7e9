"""``wn docs``: the project (sources, metrics, experiments) -> a static, searchable catalog site.

Everything comes from the YAML and the compile path (``runner.compile_experiment``): no warehouse
connection.  A metric's compiled SQL is the per-unit expressions a run computes for it, taken
from the statements of an experiment that uses it (or of a one-metric preview experiment when
none does), in the chosen dialect.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WnError
from ..plan.builder import metric_roles
from ..project import Project
from ..project.config_models import Experiment, ExposureRef, Metric, Variant
from ..runner import compile_experiment
from .html import render_page


@dataclass
class MetricEntry:
    metric: Metric
    origin: str
    used_by: list[tuple[str, str]]          # (experiment, role)
    sql: str | None = None
    sql_note: str | None = None

    @property
    def search(self) -> str:
        m = self.metric
        return " ".join([m.name, m.type, m.source or "", m.direction, m.filter or "", m.value or "",
                         " ".join(m.tags), m.owner or "", m.description or "",
                         " ".join(e for e, _ in self.used_by)]).lower()


@dataclass
class SourceEntry:
    name: str
    origin: str
    source: Any
    metrics: list[str]

    @property
    def search(self) -> str:
        s = self.source
        return " ".join([self.name, s.description or "", s.table or "", " ".join(self.metrics)]).lower()


@dataclass
class ExperimentEntry:
    experiment: Experiment
    origin: str
    status: str
    metrics: list[tuple[str, str]]           # (metric, role)
    report_href: str | None

    @property
    def search(self) -> str:
        e = self.experiment
        return " ".join([e.name, e.hypothesis or "", e.description or "", e.owner or "", self.status,
                         " ".join(m for m, _ in self.metrics)]).lower()


@dataclass
class CatalogPage:
    project: str
    dialect: str
    as_of: str
    guardrails: list[MetricEntry]
    metrics: list[MetricEntry]
    sources: list[SourceEntry]
    experiments: list[ExperimentEntry]
    generated_at: str
    notes: list[str] = field(default_factory=list)


def _origin(project: Project, kind: str, name: str) -> str:
    o = project.origins.get((kind, name))
    return str(o) if o else ""


def _expressions(sql_texts: list[str], columns: set[str], dialect: str) -> tuple[list[str], list[str]]:
    """The select expressions aliased as one of ``columns`` in the compiled statements: those of
    the source scans (inside a CTE or a staged scan) and those that finish the unit_metrics row."""
    import sqlglot
    from sqlglot import exp

    scan: list[str] = []
    finish: list[str] = []
    for text in sql_texts:
        try:
            trees = sqlglot.parse(text, read=dialect)
        except sqlglot.errors.ParseError:
            continue
        for tree in trees:
            if tree is None:
                continue
            for alias in tree.find_all(exp.Alias):
                if alias.alias not in columns:
                    continue
                node = alias.copy()
                for c in node.find_all(exp.Column):   # keep plan comments out of the snippet
                    c.comments = None
                node.comments = None
                aggregate = node.find(exp.AggFunc) is not None
                (scan if aggregate else finish).append(node.sql(dialect=dialect, pretty=True))
    return list(dict.fromkeys(scan)), list(dict.fromkeys(finish))


def _preview_experiment(project: Project, metric: Metric, as_of: dt.date) -> Experiment | None:
    """A one-metric experiment on an exposure source carrying the metric's unit (for metrics no
    experiment uses), so that their SQL is shown as a run would compute it."""
    units = project.metric_units(metric)
    for src in project.sources.values():
        unit = next((u for u in src.units if u in units), None)
        if src.is_exposure_source and unit:
            return Experiment(name="catalog_preview", unit=unit, exposures=ExposureRef(source=src.name),
                              start=as_of, end=as_of,
                              variants=[Variant(name="control", control=True, weight=0.5),
                                        Variant(name="treatment", weight=0.5)],
                              primary_metrics=[metric.name])
    return None


def _compiled_sql(project: Project, metric: Metric, used_by: list[tuple[str, str]], *, dialect: str,
                  schema: str, as_of: dt.date, cache: dict[str, Any]) -> tuple[str | None, str | None]:
    if used_by:
        exp_name = used_by[0][0]
        experiment = project.experiments[exp_name]
        via = f"as compiled for experiment {exp_name}"
    else:
        experiment = _preview_experiment(project, metric, as_of)
        if experiment is None:
            return None, "no exposure source carries this metric's unit: not compiled"
        via = "as compiled for a one-metric preview (no experiment uses this metric)"
    day = max(as_of, experiment.start)
    project_for = project if used_by else _with_experiment(project, experiment)
    key = experiment.name if used_by else f"preview:{metric.name}"
    if key not in cache:
        try:
            # separate statements (on DuckDB a run is one statement): a percentile metric's
            # statement is shown whole, the per-unit expressions are the same
            cache[key] = compile_experiment(project_for, experiment.name, as_of=day, schema=schema,
                                            dialect=dialect, strategy="temp")
        except WnError as exc:
            cache[key] = exc
    if isinstance(cache[key], WnError):
        return None, f"could not compile: {cache[key].render()}"
    plan, compiled = cache[key]
    mp = plan.metric(metric.name)
    if mp.is_percentile:   # no per-unit expression: its own statement over the events
        step = plan.quantile(metric.name).step_name
        sql = next(s.sql for s in compiled.statements if s.step == step)
        return (f"-- {metric.name}: the quantile, its share sums and outer interval per variant and slice\n"
                f"-- {via}, dialect {dialect}; one statement of its own (step {step})\n{sql}"), None
    columns = {c for c in (mp.value_column, mp.den_column, mp.pre_column, mp.pre_den_column) if c}
    # a funnel's completion reads every earlier step's first time: show those columns too
    columns |= {name for sc in plan.scans for c in sc.columns if c.name in columns for name in c.after}
    texts = [s.sql for s in compiled.statements if s.action != "drop"]
    scan, finish = _expressions(texts, columns, dialect)
    if not scan and not finish:
        return None, "no per-unit expression found in the compiled SQL"
    sources = sorted({sc.source for sc in plan.scans if any(c.name in columns for c in sc.columns)})
    parts = [f"-- {metric.name}: per-unit columns {', '.join(sorted(columns))}",
             f"-- {via}, dialect {dialect}; `wn compile` writes the full statements"]
    if scan:
        parts += [f"\n-- per unit, in one scan of source {', '.join(sources)} (s: its rows, e: the unit's "
                  "exposure; pre = the CUPED window before exposure)", ",\n".join(scan)]
    if finish:
        parts += ["\n-- the unit_metrics row (units without rows count as 0)", ",\n".join(finish)]
    return "\n".join(parts), None


def _with_experiment(project: Project, experiment: Experiment) -> Project:
    import dataclasses

    return dataclasses.replace(project, experiments={**project.experiments, experiment.name: experiment})


def build_catalog(project: Project, *, dialect: str, schema: str, as_of: dt.date, out_dir: Path,
                  reports_dir: Path | None, title: str | None = None) -> CatalogPage:
    """The catalog of ``project``; ``title``: the page's heading (default: the project folder)."""
    usage: dict[str, list[tuple[str, str]]] = {m: [] for m in project.metrics}
    exp_entries: list[ExperimentEntry] = []
    for name, e in sorted(project.experiments.items()):
        roles = [(m.name, role) for m, role in metric_roles(project, e)]
        for metric, role in roles:
            usage[metric].append((name, role))
        href = None
        if reports_dir is not None and (reports_dir / f"{name}.html").exists():
            href = Path(os.path.relpath(reports_dir / f"{name}.html", out_dir)).as_posix()
        exp_entries.append(ExperimentEntry(e, _origin(project, "experiment", name), e.status(as_of), roles, href))
    for m in project.metrics.values():   # a ratio's parts are used where the ratio is
        if m.type == "ratio":
            for part in (m.numerator, m.denominator):
                for exp_name, _ in usage[m.name]:
                    if part in usage and (exp_name, f"part of {m.name}") not in usage[part]:
                        usage[part].append((exp_name, f"part of {m.name}"))
    entries = []
    cache: dict[str, Any] = {}
    for name, m in sorted(project.metrics.items()):
        direct = [(e, r) for e, r in usage[name] if not r.startswith("part of")]
        entry = MetricEntry(m, _origin(project, "metric", name), usage[name])
        entry.sql, entry.sql_note = _compiled_sql(project, m, direct, dialect=dialect, schema=schema, as_of=as_of,
                                                      cache=cache)
        entries.append(entry)
    sources = [SourceEntry(n, _origin(project, "source", n), s,
                           sorted(m.name for m in project.metrics.values() if m.source == n))
               for n, s in sorted(project.sources.items())]
    return CatalogPage(project=title or project.root.name, dialect=dialect, as_of=as_of.isoformat(),
                       guardrails=[e for e in entries if e.metric.is_guardrail],
                       metrics=[e for e in entries if not e.metric.is_guardrail], sources=sources,
                       experiments=exp_entries,
                       generated_at=dt.datetime.now().isoformat(sep=" ", timespec="seconds"))


def write_catalog(page: CatalogPage, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(render_page("catalog.html.j2", page=page), encoding="utf-8")
    return path
