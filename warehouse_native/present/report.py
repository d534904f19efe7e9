"""``wn report``: an experiment's published rows -> a page model -> one self-contained HTML file.

The page model (dataclasses below) holds everything the template shows, already ordered and
formatted-ready; charts are SVG strings rendered by ``charts``.  The summary row at the top is
the experiment's decision (wn.decisions) over the guardrail and health chips; runs recorded
without a decision show the chips alone (``build_summary``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..project.config_models import Experiment
from . import charts
from .html import render_page
from .published import Published, Row

ROLES = (("primary", "Primary metrics"), ("secondary", "Secondary metrics"), ("guardrail", "Guardrail metrics"))
_STATUS_RANK = {"fail": 3, "warn": 2, "unknown": 1, "pass": 0}


@dataclass
class ResultRow:
    """One metric x treatment variant (x slice) as shown: the numbers are scorecard columns."""

    metric: str
    role: str
    variant: str
    dimension: str | None
    dimension_value: str | None
    values: dict[str, Any]   # scorecard columns shown, by column name
    ci_lower: float | None   # the CI drawn and printed: adjusted for primaries when corrected
    ci_upper: float | None
    ci_kind: str             # 'rel_ci' | 'adjusted_rel_ci'
    verdict: str             # good | bad | warn | neutral
    reason: str | None

    @property
    def rel(self) -> float | None:
        return self.values.get("rel_delta")


@dataclass
class MetricBlock:
    name: str
    role: str
    metric_type: str
    direction: str
    description: str | None
    rows: list[ResultRow]
    chart: str | None = None


@dataclass
class SummaryItem:
    label: str
    status: str     # pass | warn | fail | unknown (health); good | bad (a significant primary result)
    detail: str


@dataclass
class Summary:
    """The row under the title: a decision when one is recorded, else guardrails + health."""

    kind: str       # 'decision' | 'guardrails'
    status: str
    headline: str
    items: list[SummaryItem] = field(default_factory=list)


@dataclass
class Slice:
    key: str
    dimension: str
    value: str
    srm_status: str
    srm_detail: str
    rows: list[ResultRow]
    chart: str | None = None


@dataclass
class Series:
    metric: str
    chart: str
    days: int
    ci_label: str


@dataclass
class ReportPage:
    experiment: str
    info: dict[str, Any]             # hypothesis, owner, unit, dates, status, analysis settings
    variants: list[dict[str, Any]]   # name, control, weight, units
    run: dict[str, Any]
    summary: Summary
    health: list[Row]
    groups: list[tuple[str, str, list[MetricBlock]]]   # role, title, blocks
    exposures_chart: str | None
    exposures_note: str | None
    series: list[Series]
    series_note: str | None
    slices: list[Slice]
    notes: list[str]
    generated_at: str


def verdict(row: Mapping[str, Any]) -> str:
    """Significance colouring by direction; guardrails by their status."""
    status = row.get("guardrail_status")
    if status == "fail":
        return "bad"
    if status == "warn":
        return "warn"
    delta = row.get("rel_delta")
    if delta is None or _nan(delta):
        delta = row.get("abs_delta")
    if not row.get("significant") or delta is None or _nan(delta) or delta == 0:
        return "neutral"
    return "good" if (delta > 0) == (row.get("direction", "increase") == "increase") else "bad"


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _clean(row: Row) -> Row:
    return {k: (None if _nan(v) else v) for k, v in row.items()}


def result_row(row: Row) -> ResultRow:
    corrected = (row.get("correction") or "none") != "none" and row.get("adjusted_rel_ci_lower") is not None
    kind = "adjusted_rel_ci" if corrected else "rel_ci"
    return ResultRow(row["metric"], row.get("role") or "secondary", row["variant"], row.get("dimension"),
                     row.get("dimension_value"), row, row.get(f"{kind}_lower"), row.get(f"{kind}_upper"), kind,
                     verdict(row), row.get("reason"))


def _points(rows: Sequence[ResultRow]) -> list[dict[str, Any]]:
    return [{"metric": r.metric, "variant": r.variant, "rel": r.rel, "lo": r.ci_lower, "hi": r.ci_upper,
             "verdict": r.verdict} for r in rows if r.rel is not None and r.ci_lower is not None]


# the colour of the summary row per decision
_DECISION_STATUS = {"ship": "pass", "keep running": "warn", "do not ship": "fail", "investigate": "fail",
                    "no regression": "pass", "regression": "fail"}   # (the last two: holdouts)


def build_summary(decision: Mapping[str, Any] | None, overall: Sequence[Row], health: Sequence[Row]) -> Summary:
    """The run's decision (wn.decisions) with the guardrail and health chips under it; runs
    without a recorded decision show the chips with a "No decision" headline."""
    items: list[SummaryItem] = []
    srm = next((h for h in health if h.get("check_name") == "srm" and h.get("dimension") is None), None)
    if srm is not None:
        p = srm.get("p_value")
        items.append(SummaryItem("SRM", srm.get("status") or "unknown",
                                 f"p = {p:.4f}" if isinstance(p, float) else (srm.get("detail") or "")))
    multi = next((h for h in health if h.get("check_name") == "multi_exposure"), None)
    if multi is not None:
        items.append(SummaryItem("multi-exposure", multi.get("status") or "unknown", multi.get("detail") or ""))
    for h in health:   # every other overall check that did not pass (pre-exposure bias, exposure gaps, ...)
        if h.get("dimension") is None and h.get("check_name") not in ("srm", "multi_exposure") \
                and h.get("status") in ("fail", "warn"):
            items.append(SummaryItem(str(h["check_name"]).replace("_", " "), h["status"], h.get("detail") or ""))
    # a holdout reads every metric as a guardrail: its rows all carry a guardrail_status
    holdout = any(r.get("guardrail_status") and r.get("role") != "guardrail" for r in overall)
    guard = [r for r in overall if r.get("role") == "guardrail" or (holdout and r.get("guardrail_status"))]
    label = "regressions" if holdout else "guardrails"
    for status in ("fail", "warn"):
        hit = sorted({f"{r['metric']} ({r['variant']})" for r in guard if r.get("guardrail_status") == status})
        if hit:
            items.append(SummaryItem(f"{label} {status}", status, ", ".join(hit)))
    passing = sum(1 for r in guard if r.get("guardrail_status") == "pass")
    if passing:
        items.append(SummaryItem(f"{label} pass", "pass", f"{passing} of {len(guard)} metric × variant"))
    for r in overall:   # significant primary results: shown, but not a health status
        if r.get("role") == "primary" and verdict(r) in ("good", "bad"):
            better = verdict(r) == "good"
            items.append(SummaryItem(f"primary {r['metric']}", verdict(r),
                                     f"{r['variant']}: significantly {'better' if better else 'worse'}"))
    worst = max((i.status for i in items if i.status in _STATUS_RANK), key=_STATUS_RANK.get, default="unknown")
    if decision is not None:
        status = _DECISION_STATUS.get(str(decision.get("decision")), worst)
        return Summary("decision", status, f"Decision: {decision.get('headline') or decision.get('decision')} — "
                       f"{decision.get('reason') or ''}", items)
    head = {"fail": "No decision yet — a health check or guardrail fails",
            "warn": "No decision yet — warnings to review",
            "pass": "No decision yet — guardrails and health checks pass",
            "unknown": "No decision yet"}[worst]
    return Summary("guardrails", worst, head, items)


def _variants(exp: Experiment | None, overall: Sequence[Row]) -> list[dict[str, Any]]:
    units: dict[str, int] = {}
    for r in overall:
        units.setdefault(r["control_variant"], r.get("control_units"))
        units.setdefault(r["variant"], r.get("variant_units"))
    if exp is not None:
        return [{"name": v.name, "control": v.control, "weight": v.weight, "units": units.get(v.name)}
                for v in exp.variants]
    control = overall[0]["control_variant"] if overall else None
    return [{"name": n, "control": n == control, "weight": None, "units": u} for n, u in units.items()]


def _role_order(exp: Experiment | None, rows: Sequence[Row]) -> list[str]:
    """Metric order: the experiment's lists, then the remaining metrics alphabetically."""
    order = {"primary": 0, "secondary": 1, "guardrail": 2}
    listed = (exp.primary_metrics + exp.secondary_metrics + exp.guardrail_metrics) if exp else []
    pos = {m: i for i, m in enumerate(listed)}
    names = {r["metric"]: r.get("role") for r in rows}
    return sorted(names, key=lambda m: (order.get(names[m] or "", 9), pos.get(m, len(pos)), m))


def _info(name: str, exp: Experiment | None, as_of: dt.date) -> dict[str, Any]:
    if exp is None:
        return {"name": name, "hypothesis": None, "description": None, "owner": None, "unit": None,
                "start": None, "end": None, "status": "unknown (not in this project's experiments/)",
                "dimensions": [], "analysis": None}
    a = exp.analysis
    analysis = (("holdout (every metric read for regression), " if exp.kind == "holdout" else "")
                + f"confidence {a.confidence:g}, correction {a.correction}, {a.alternative}"
                f"{', CUPED ' + str(a.cuped_days) + ' days' if a.cuped else ''}"
                f"{', sequential' if a.sequential or exp.kind == 'holdout' else ''}{', Bayesian' if a.bayesian else ''}")
    return {"name": name, "hypothesis": exp.hypothesis, "description": exp.description, "owner": exp.owner,
            "unit": exp.unit, "start": exp.start.isoformat(), "end": exp.end.isoformat() if exp.end else None,
            "status": exp.status(as_of), "dimensions": exp.dimension_names, "analysis": analysis}


def _day(value: Any) -> str:
    return value.isoformat()[:10] if isinstance(value, (dt.date, dt.datetime)) else str(value)[:10]


def _series(daily: Sequence[Row] | None, metrics: Sequence[str], colors: dict[str, str]) -> tuple[list[Series], str | None]:
    if not daily:
        return [], ("No time series recorded yet: the cumulative lift appears here once runs write "
                    "scorecard_daily.")
    out: list[Series] = []
    rows = [_clean(r) for r in daily if r.get("dimension") is None]
    primaries = [m for m in metrics if any(r["metric"] == m and r.get("role") == "primary" for r in rows)]
    for metric in primaries:
        mine = [r for r in rows if r["metric"] == metric]
        sequential = all(r.get("sequential_rel_ci_lower") is not None for r in mine)
        lo, hi = ("sequential_rel_ci_lower", "sequential_rel_ci_upper") if sequential else ("rel_ci_lower", "rel_ci_upper")
        points = sorted(({"day": _day(r["day"]), "variant": r["variant"], "rel": r.get("rel_delta"),
                          "lo": r.get(lo), "hi": r.get(hi)} for r in mine), key=lambda p: (p["day"], p["variant"]))
        label = ("always-valid (sequential) CI" if sequential else
                 "unadjusted CI: looking at it every day inflates false positives (see analysis.sequential)")
        out.append(Series(metric, charts.cumulative(points, colors), len({p["day"] for p in points}), label))
    if not out:
        return [], "No time series recorded yet for the primary metrics."
    return out, None


def build_report(published: Published, exp: Experiment | None, *, as_of: dt.date,
                 descriptions: Mapping[str, str | None] | None = None, charts_on: bool = True) -> ReportPage:
    """The page of one experiment; ``exp`` is its YAML (None when it left the project), ``descriptions``
    the catalog's metric descriptions."""
    rows = [_clean(r) for r in published.scorecard]
    overall = [r for r in rows if r.get("dimension") is None]
    variants = _variants(exp, overall)
    names = [v["name"] for v in variants]
    treatments = [v["name"] for v in variants if not v["control"]]
    colors = charts.variant_colors(names)
    metric_order = _role_order(exp, rows)
    pos = {m: i for i, m in enumerate(metric_order)}
    vpos = {v: i for i, v in enumerate(names)}

    def ordered(part: Sequence[Row]) -> list[ResultRow]:
        return [result_row(r) for r in sorted(part, key=lambda r: (pos[r["metric"]], vpos.get(r["variant"], 99), r["variant"]))]

    groups: list[tuple[str, str, list[MetricBlock]]] = []
    for role, title in ROLES:
        blocks = []
        for metric in (m for m in metric_order if any(r["metric"] == m and r.get("role") == role for r in overall)):
            mine = ordered([r for r in overall if r["metric"] == metric])
            first = mine[0].values
            block = MetricBlock(metric, role, first.get("metric_type") or "", first.get("direction") or "increase",
                                (descriptions or {}).get(metric), mine)
            pts = _points(mine)
            if charts_on and pts:
                block.chart = charts.forest(pts, treatments)
            blocks.append(block)
        if blocks:
            groups.append((role, title, blocks))

    health = [_clean(h) for h in published.health]
    overall_health = sorted((h for h in health if h.get("dimension") is None), key=lambda h: h["check_name"] != "srm")
    slices: list[Slice] = []
    dim_order = {d: i for i, d in enumerate(exp.dimension_names)} if exp else {}
    keys = sorted({(r["dimension"], r["dimension_value"]) for r in rows if r.get("dimension") is not None},
                  key=lambda k: (dim_order.get(k[0], 99), k[0], str(k[1])))
    for dim, value in keys:
        part = ordered([r for r in rows if r.get("dimension") == dim and r.get("dimension_value") == value])
        srm = next((h for h in health if h.get("check_name") == "srm" and h.get("dimension") == dim
                    and h.get("dimension_value") == value), {})
        sl = Slice(f"{dim}={value}", dim, str(value), srm.get("status") or "unknown", srm.get("detail") or "", part)
        pts = _points(part)
        if charts_on and pts:
            sl.chart = charts.slice_forest(pts, [m for m in metric_order if any(p["metric"] == m for p in pts)], treatments)
        slices.append(sl)

    exposures_chart = exposures_note = None
    if published.exposures_per_day is None:
        exposures_note = "No exposures view in the warehouse."
    else:
        per_day = sorted(({"day": _day(r["day"]), "variant": r["variant"], "units": int(r["units"])}
                          for r in published.exposures_per_day if r["variant"] in vpos),
                         key=lambda r: (r["day"], vpos[r["variant"]]))
        if per_day and charts_on:
            exposures_chart = charts.exposures(per_day, colors)
        elif not per_day:
            exposures_note = "No exposures of a configured variant."
    series, series_note = _series(published.daily, metric_order, colors) if charts_on else ([], None)

    run = _clean(published.run)
    return ReportPage(
        experiment=published.experiment, info=_info(published.experiment, exp, as_of), variants=variants,
        run={k: (v.isoformat(sep=" ", timespec="seconds") if isinstance(v, dt.datetime) else v)
             for k, v in run.items() if k != "steps"},
        summary=build_summary(published.decision, overall, health), health=overall_health, groups=groups,
        exposures_chart=exposures_chart, exposures_note=exposures_note, series=series, series_note=series_note,
        slices=slices, notes=list(published.notes),
        generated_at=dt.datetime.now().isoformat(sep=" ", timespec="seconds"))


def write_report(page: ReportPage, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{page.experiment}.html"
    path.write_text(render_page("report.html.j2", page=page), encoding="utf-8")
    return path
