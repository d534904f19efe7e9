"""Load and validate a whole project: catalog, experiments and models.

Every problem is collected (with file, line, field and a fix) before anything is raised,
so ``wn validate`` reports all of them at once.  Nothing here touches the warehouse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import sqlglot
from pydantic import BaseModel, ValidationError
from sqlglot.errors import ParseError

from ..errors import ProblemCollector
from .config_models import COVARIATE_SUFFIX, EVENT_LEVEL, RATIO_LIKE, Experiment, Metric, Source
from .expressions import check_filter, check_value
from .models import Model, load_model_files, render_sql, topological_order
from .yaml_loader import LineDict, LineList, load_yaml_file, locate
from ..errors import ProjectError


@dataclass(frozen=True)
class Origin:
    file: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Project:
    """Everything the plan layer needs, validated."""

    root: Path
    sources: dict[str, Source]
    metrics: dict[str, Metric]
    experiments: dict[str, Experiment]
    models: dict[str, Model]
    model_order: tuple[str, ...]
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            known = ", ".join(sorted(self.experiments)) or "none"
            raise ProjectError(f"no experiment named '{name}' in experiments/ (known: {known})")
        return self.experiments[name]

    def guardrails_for(self, unit: str) -> list[Metric]:
        """Catalog metrics tagged guardrail whose source(s) carry this unit type."""
        return [m for m in self.metrics.values() if m.is_guardrail and unit in self.metric_units(m)]

    def metric_units(self, metric: Metric) -> set[str]:
        if metric.type == "ratio":
            parts = [self.metrics.get(metric.numerator or ""), self.metrics.get(metric.denominator or "")]
            sets = [self.metric_units(p) for p in parts if p is not None]
            return set.intersection(*sets) if sets else set()
        src = self.sources.get(metric.source or "")
        return set(src.units) if src else set()


_HINTS = {
    "extra_forbidden": "remove it, or check the spelling against the README's YAML reference",
    "missing": "add this field",
    "literal_error": None,
}


def _pydantic_problems(exc: ValidationError, node: Any, prefix: list[Any], file: str,
                       out: ProblemCollector, label: str) -> None:
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-after"))]
        line = locate(node, loc) if loc else getattr(node, "line", None)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field '{loc[-1]}'"
        elif err["type"] == "literal_error":
            allowed = err.get("ctx", {}).get("expected", "")
            msg = f"'{err.get('input')}' is not allowed here; expected {allowed}"
        field_path = ".".join(str(p) for p in prefix + loc) or None
        out.add(f"{label}: {msg}", file=file, line=line, field=field_path,
                hint=_HINTS.get(err["type"]))


def _items(data: Any, key: str, file: str, out: ProblemCollector) -> LineList:
    if data is None:
        return LineList()
    if not isinstance(data, LineDict):
        out.add(f"expected a mapping with a '{key}:' list at the top", file=file, line=1)
        return LineList()
    unknown = [k for k in data if k not in ("sources", "metrics")]
    for k in unknown:
        out.add(f"unknown top-level key '{k}'", file=file, line=data.line_of(k),
                hint="a catalog file holds 'sources:' and/or 'metrics:' lists")
    items = data.get(key)
    if items is None:
        return LineList()
    if not isinstance(items, LineList):
        out.add(f"'{key}' must be a list", file=file, line=data.line_of(key), field=key)
        return LineList()
    return items


def _build(model: type[BaseModel], node: Any, prefix: list[Any], file: str,
           out: ProblemCollector, label: str, line: int | None = None) -> Any:
    if not isinstance(node, dict):
        out.add(f"{label}: expected a mapping", file=file, line=getattr(node, "line", None) or line,
                field=".".join(map(str, prefix)))
        return None
    try:
        return model.model_validate(dict(node))
    except ValidationError as exc:
        _pydantic_problems(exc, node, prefix, file, out, label)
        return None


def _yaml_files(folder: Path, root: Path, out: ProblemCollector):
    """(display path, parsed YAML) of each *.yml / *.yaml in a folder; syntax errors collected."""
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        file = str(path.relative_to(root))
        try:
            yield file, load_yaml_file(path, file)
        except ProjectError as exc:
            out.problems.extend(exc.problems)


def load_project(root: Path) -> Project:
    root = root.resolve()
    out = ProblemCollector()
    sources: dict[str, Source] = {}
    metrics: dict[str, Metric] = {}
    experiments: dict[str, Experiment] = {}
    origins: dict[tuple[str, str], Origin] = {}
    nodes: dict[tuple[str, str], Any] = {}

    def register(kind: str, obj: Any, node: Any, file: str, table: dict) -> None:
        key = (kind, obj.name)
        here = Origin(file, getattr(node, "line", None))
        if obj.name in table:
            out.add(f"duplicate {kind} name '{obj.name}' (first defined at {origins[key]})",
                    file=file, line=here.line, field="name", hint=f"rename one of the two {kind}s")
            return
        table[obj.name] = obj
        origins[key] = here
        nodes[key] = node

    metrics_dir = root / "metrics"
    if not metrics_dir.is_dir():
        out.add("no metrics/ folder: the catalog of sources and metrics lives there", file=str(root))
    for file, data in _yaml_files(metrics_dir, root, out):
        for kind, model, table in (("source", Source, sources), ("metric", Metric, metrics)):
            items = _items(data, kind + "s", file, out)
            for i, node in enumerate(items):
                name = node.get("name", f"#{i + 1}") if isinstance(node, dict) else f"#{i + 1}"
                obj = _build(model, node, [f"{kind}s", i], file, out, f"{kind} '{name}'", items.line_of(i))
                if obj is not None:
                    register(kind, obj, node, file, table)

    exp_dir = root / "experiments"
    for file, data in _yaml_files(exp_dir, root, out):
        path = root / file
        if not isinstance(data, LineDict) or "experiment" not in data:
            out.add("expected a top-level 'experiment:' mapping", file=file, line=1)
            continue
        node = data["experiment"]
        name = node.get("name", path.stem) if isinstance(node, dict) else path.stem
        obj = _build(Experiment, node, ["experiment"], file, out, f"experiment '{name}'", data.line_of("experiment"))
        if isinstance(node, LineDict):
            _check_variants(node, file, f"experiment '{name}'", out)
        if obj is not None:
            register("experiment", obj, node, file, experiments)

    for key, src in sources.items():
        _check_source(src, nodes[("source", key)], origins[("source", key)].file, out)
    for key, metric in metrics.items():
        _check_metric(metric, nodes[("metric", key)], origins[("metric", key)].file, sources, metrics, out)
    models, order = _load_models(root, sources, out)
    for src in sources.values():
        if src.sql:
            _check_source_sql(src, nodes[("source", src.name)], origins[("source", src.name)].file,
                              models, out)
    project = Project(root, sources, metrics, experiments, models, tuple(order), origins)
    for key, experiment in experiments.items():
        origin = origins[("experiment", key)]
        _check_experiment(experiment, nodes[("experiment", key)], origin.file, project, out)
    out.raise_if_any()
    return project


def _check_source(src: Source, node: LineDict, file: str, out: ProblemCollector) -> None:
    if src.columns is not None:
        declared = set(src.columns)
        for what, cols in (("dimensions", src.dimensions), ("units", list(src.units.values()))):
            for c in cols:
                if c not in declared:
                    out.add(f"source '{src.name}': {what} column '{c}' is not in 'columns'",
                            file=file, line=node.line_of(what), field=what,
                            hint="add it to 'columns' or fix the name")


def _check_source_sql(src: Source, node: LineDict, file: str, models: dict[str, Model],
                      out: ProblemCollector) -> None:
    try:
        sql, refs, _ = render_sql(src.sql or "", schema="wn")
    except jinja2.TemplateError as exc:
        out.add(f"source '{src.name}': cannot render sql: {exc}", file=file, line=node.line_of("sql"),
                field="sql")
        return
    for ref in refs:
        if ref not in models:
            out.add(f"source '{src.name}': ref('{ref}') names no model in models/", file=file,
                    line=node.line_of("sql"), field="sql",
                    hint=f"add models/{ref}.sql or fix the name")
    try:
        sqlglot.parse_one(sql, read="duckdb")
    except ParseError as exc:
        out.add(f"source '{src.name}': sql does not parse: {exc.errors[0]['description'] if exc.errors else exc}",
                file=file, line=node.line_of("sql"), field="sql")


def _check_metric(metric: Metric, node: LineDict, file: str, sources: dict[str, Source],
                  metrics: dict[str, Metric], out: ProblemCollector) -> None:
    label = f"metric '{metric.name}'"
    if metric.type == "ratio":
        for part in ("numerator", "denominator"):
            ref = getattr(metric, part)
            other = metrics.get(ref)
            if other is None:
                out.add(f"{label}: {part} '{ref}' is not a metric in the catalog", file=file,
                        line=node.line_of(part), field=part,
                        hint=_closest(ref, metrics) or "define it under metrics:")
            elif other.type in RATIO_LIKE:
                out.add(f"{label}: {part} '{ref}' is itself a {other.type} metric", file=file,
                        line=node.line_of(part), field=part,
                        hint="point numerator and denominator at count/sum/... metrics")
            elif other.type in EVENT_LEVEL or other.type == "funnel":
                out.add(f"{label}: {part} '{ref}' is a {other.type} metric, which has no single per-unit value",
                        file=file, line=node.line_of(part), field=part,
                        hint="point numerator and denominator at count/sum/... metrics")
        return
    src = sources.get(metric.source or "")
    if src is None:
        out.add(f"{label}: source '{metric.source}' is not defined", file=file,
                line=node.line_of("source"), field="source",
                hint=_closest(metric.source, sources) or "define it under sources:")
        return
    columns = src.known_columns()
    checks = [(fld, check, getattr(metric, fld), [fld])
              for fld, check in (("filter", check_filter), ("value", check_value))]
    if metric.funnel is not None:
        checks += [(f"funnel.steps.{i}.filter", check_filter, step.filter, ["funnel", "steps", i, "filter"])
                   for i, step in enumerate(metric.funnel.steps)]
    for fld, check, text, path in checks:
        if text is None:
            continue
        try:
            check(text, columns)
        except ValueError as exc:
            out.add(f"{label}: {fld} {exc}", file=file, line=locate(node, path), field=fld,
                    hint="write one SQL expression over the source's columns, e.g. "
                         "\"event_name = 'purchase'\"")


def _load_models(root: Path, sources: dict[str, Source], out: ProblemCollector) -> tuple[dict[str, Model], list[str]]:
    models = {m.name: m for m in load_model_files(root / "models", root)}
    deps: dict[str, list[str]] = {}
    for model in models.values():
        try:
            sql, refs, srcs = render_sql(model.raw_sql, schema="wn")
        except jinja2.TemplateError as exc:
            out.add(f"model '{model.name}': cannot render: {exc}", file=model.path,
                    line=getattr(exc, "lineno", None))
            continue
        deps[model.name] = refs
        for ref in refs:
            if ref not in models:
                out.add(f"model '{model.name}': ref('{ref}') names no model", file=model.path,
                        hint=_closest(ref, models) or f"add models/{ref}.sql")
        for src in srcs:
            if src not in sources:
                out.add(f"model '{model.name}': source('{src}') is not a catalog source",
                        file=model.path, hint=_closest(src, sources) or "define it in metrics/*.yml")
        try:
            parsed = sqlglot.parse(sql, read="duckdb")
            if len([p for p in parsed if p is not None]) != 1:
                out.add(f"model '{model.name}': must be exactly one SELECT statement", file=model.path)
        except ParseError as exc:
            err = exc.errors[0] if exc.errors else {}
            out.add(f"model '{model.name}': SQL does not parse: {err.get('description', exc)}",
                    file=model.path, line=err.get("line"))
    try:
        order = topological_order(deps)
    except ValueError as exc:
        out.add(f"models reference each other in a cycle: {exc}", file="models/")
        order = sorted(deps)
    return models, order


def _check_experiment(e: Experiment, node: LineDict, file: str, project: Project,
                      out: ProblemCollector) -> None:
    label = f"experiment '{e.name}'"

    def add(msg: str, fld: str, hint: str | None = None, path: list[Any] | None = None) -> None:
        line = locate(node, path or [fld])
        out.add(f"{label}: {msg}", file=file, line=line, field=fld, hint=hint)

    exp_src = project.sources.get(e.exposures.source)
    if exp_src is None:
        add(f"exposure source '{e.exposures.source}' is not defined", "exposures",
            _closest(e.exposures.source, project.sources), ["exposures", "source"])
    else:
        if not exp_src.is_exposure_source:
            add(f"source '{exp_src.name}' has no experiment_column/variant_column", "exposures",
                "add experiment_column and variant_column to that source", ["exposures", "source"])
        if e.unit not in exp_src.units:
            add(f"unit '{e.unit}' is not a unit of exposure source '{exp_src.name}'", "unit",
                f"use one of: {', '.join(exp_src.units)}")
        for i, dim in enumerate(e.dimension_names):
            if dim not in exp_src.dimensions:
                add(f"dimension '{dim}' is not a dimension of exposure source '{exp_src.name}'",
                    "dimensions", f"add it to that source's dimensions, or use one of: "
                    f"{', '.join(exp_src.dimensions) or '(none)'}", ["dimensions", i])

    seen: dict[str, str] = {}
    for role in ("primary_metrics", "secondary_metrics", "guardrail_metrics"):
        for i, name in enumerate(getattr(e, role)):
            metric = project.metrics.get(name)
            if metric is None:
                add(f"{role} names '{name}', which is not in the catalog", role,
                    _closest(name, project.metrics) or "define it in metrics/*.yml", [role, i])
                continue
            if name in seen:
                add(f"metric '{name}' is listed in both {seen[name]} and {role}", role,
                    "list each metric once", [role, i])
            seen[name] = role
            if name in e.dimension_names:
                add(f"metric '{name}' has the name of a dimension of this experiment", role,
                    "rename the metric or the dimension", [role, i])
            if _resolvable(metric, project) and e.unit not in project.metric_units(metric):
                add(f"metric '{name}' has no '{e.unit}' unit in its source", role,
                    "add the unit column to the source's 'units'", [role, i])
    for msg, path, hint in holdout_problems(e):
        add(msg, ".".join(path), hint, list(path))

    _check_covariates(e, project, add)


def holdout_problems(e: Experiment) -> list[tuple[str, tuple[str, ...], str]]:
    """Settings that make no sense for the experiment's kind: (message, field path, fix).

    A holdout keeps a small control away from the features and reads every metric for
    regression; it never ships, so the ship / do-not-ship settings do not apply to it, and its
    interim readings always use the always-valid (sequential) intervals."""
    out: list[tuple[str, tuple[str, ...], str]] = []
    decision = e.decision.model_fields_set
    if e.kind != "holdout":
        if "max_regression" in decision:
            out.append(("decision.max_regression applies to kind: holdout only", ("decision", "max_regression"),
                        "remove it; an A/B test's guardrails take guardrail: {max_regression: ...} on the metric"))
        return out
    for fld, why in (("ship_when", "a holdout never ships"),
                     ("mde", "a holdout reads regressions, it does not wait to rule out a lift")):
        if fld in decision:
            out.append((f"decision.{fld} does not apply to a holdout ({why})", ("decision", fld),
                        f"remove decision.{fld}, or make it an A/B test (kind: ab)"))
    if "sequential" in e.analysis.model_fields_set and not e.analysis.sequential:
        out.append(("a holdout's interim readings always use always-valid (sequential) intervals; "
                    "analysis.sequential: false would be ignored", ("analysis", "sequential"),
                    "remove analysis.sequential"))
    controls = [v for v in e.variants if v.control]
    if len(controls) == 1 and controls[0].weight > 0.5:
        out.append((f"the holdout (control variant '{controls[0].name}') gets {controls[0].weight:.0%} of the "
                    "units; a holdout is the small group kept away from the features", ("variants",),
                    "mark the small held-out group with control: true (e.g. 5% holdout, 95% features)"))
    return out


def _check_covariates(e: Experiment, project: Project, add) -> None:
    """``analysis.covariates``: each '<metric>__pre' of a catalog metric with one number per
    unit of the experiment's unit type, listed once, with CUPED on."""
    fld = "analysis.covariates"
    if e.analysis.covariates and not e.analysis.cuped:
        add("covariates are CUPED covariates, but analysis.cuped is false", fld,
            "set 'cuped: true' or remove 'covariates'", ["analysis", "covariates"])
    seen: set[str] = set()
    for i, name in enumerate(e.analysis.covariates):
        path = ["analysis", "covariates", i]
        if name in seen:
            add(f"covariate '{name}' is listed twice", fld, "list each covariate once", path)
            continue
        seen.add(name)
        if not name.endswith(COVARIATE_SUFFIX):
            known = f"'{name}{COVARIATE_SUFFIX}'" if name in project.metrics else f"'<metric>{COVARIATE_SUFFIX}'"
            add(f"covariate '{name}' does not end in '{COVARIATE_SUFFIX}'", fld,
                f"a covariate is a catalog metric's pre-exposure value: write {known}", path)
            continue
        base = name.removesuffix(COVARIATE_SUFFIX)
        metric = project.metrics.get(base)
        if metric is None:
            near = _nearest(base, project.metrics)
            add(f"covariate '{name}' names no catalog metric '{base}'", fld,
                f"did you mean '{near}{COVARIATE_SUFFIX}'?" if near
                else f"name a metric of metrics/*.yml, followed by '{COVARIATE_SUFFIX}'", path)
            continue
        if metric.type in ("funnel", "percentile"):
            add(f"covariate '{name}': '{base}' is a {metric.type} metric, which has no pre-exposure value "
                "per unit", fld, f"use a count, sum, conversion or active-days metric of the same rows, e.g. "
                f"'<metric>{COVARIATE_SUFFIX}'", path)
            continue
        if metric.type in RATIO_LIKE:
            parts = ("its numerator or denominator metric" if metric.type == "ratio"
                     else "a conversion metric with the same filter" if metric.type == "retention"
                     else "a sum or count metric of the same rows")
            add(f"covariate '{name}': '{base}' is a {metric.type} metric, not one number per unit "
                "(its per-unit ratio is undefined for units without rows)", fld,
                f"use {parts} instead, e.g. '<metric>{COVARIATE_SUFFIX}'", path)
            continue
        if _resolvable(metric, project) and e.unit not in project.metric_units(metric):
            add(f"covariate '{name}': the source '{metric.source}' of metric '{base}' has no "
                f"'{e.unit}' unit (the experiment's unit)", fld,
                f"use a metric on '{e.unit}' units, or add a '{e.unit}' column to the source's 'units'", path)


def _resolvable(metric: Metric, project: Project) -> bool:
    """False when the metric's own references are broken (already reported on the metric)."""
    if metric.type == "ratio":
        parts = [project.metrics.get(metric.numerator or ""), project.metrics.get(metric.denominator or "")]
        return all(p is not None and _resolvable(p, project) for p in parts)
    return metric.source in project.sources


def _check_variants(node: LineDict, file: str, label: str, out: ProblemCollector) -> None:
    """Checks on the raw variant list, so they run even when other fields are invalid."""
    variants = node.get("variants")
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        return
    line = node.line_of("variants")
    controls = [v.get("name") for v in variants if v.get("control") is True]
    if len(controls) != 1:
        out.add(f"{label}: needs exactly one control variant, found {len(controls)}", file=file,
                line=line, field="variants", hint="mark one variant with 'control: true'")
    names = [str(v.get("name")) for v in variants]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.add(f"{label}: variant '{dup}' is listed twice", file=file, line=line, field="variants")
    if "__multiple__" in names:
        out.add(f"{label}: '__multiple__' is reserved for multi-exposed units", file=file, line=line,
                field="variants")
    weights = [v.get("weight") for v in variants]
    if all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
        total = float(sum(weights))
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            out.add(f"{label}: variant weights sum to {total:g}, not 1", file=file, line=line,
                    field="variants", hint="make the weights add up to 1 (e.g. 0.25 each for four variants)")


def _nearest(name: str | None, known: dict[str, Any]) -> str | None:
    import difflib

    if not name:
        return None
    match = difflib.get_close_matches(name, list(known), n=1)
    return match[0] if match else None


def _closest(name: str | None, known: dict[str, Any]) -> str | None:
    match = _nearest(name, known)
    return f"did you mean '{match}'?" if match else None
