"""``run`` orchestrates: project -> plan -> sql -> warehouse -> stats -> warehouse.

Every intermediate result is staged under a run-specific name; the published tables are
changed in one transaction at the end, so a run that fails half-way leaves the previous
scorecard readable and unchanged.  Each step's time and row count go to ``wn.runs`` and
``target/run_results.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import __version__
from .artifacts import write_compiled, write_json
from .errors import WarehouseError, WnError
from .plan import QUANTILE_STEP_PREFIX, AnalysisPlan, build_plan
from .project import Project, Target
from .project.config_models import EVENT_LEVEL
from .sql import CompiledPlan, Statement, compile_plan, split_rows
from .sql.daily import AS_OF, series_days
from .sql.incremental import compile_incremental
from .sql.models import model_views
from .sql.render import header
from . import incremental
from .warehouse import Adapter, as_warehouse_error, unit_metrics_table
from .warehouse.keys import unit_keys
from .warehouse.publish import Publication
from .warehouse.tables import SCORECARD, SCORECARD_DAILY, TABLES, scorecard_latest_view

if TYPE_CHECKING:  # the statistics (scipy) are imported when a run computes them, not by `wn compile`
    from .results import RunOutputs

Progress = Callable[[str], None]


@dataclass
class StepResult:
    step: str
    action: str
    seconds: float
    rows: int | None = None
    relation: str | None = None
    choice: str | None = None


MODES = ("incremental", "full-refresh", "stateless")


@dataclass
class RunResult:
    run_id: str
    experiment: str
    status: str
    strategy: str
    started_at: dt.datetime
    mode: str = "stateless"
    note: str = ""
    finished_at: dt.datetime | None = None
    steps: list[StepResult] = field(default_factory=list)
    outputs: RunOutputs | None = None
    error: str | None = None
    plan: AnalysisPlan | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def new_run_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"


def compile_experiment(project: Project, experiment: str, *, as_of: dt.date, schema: str,
                       dialect: str, strategy: str, stage_prefix: str | None = None,
                       unit_metrics: str = "view") -> tuple[AnalysisPlan, CompiledPlan]:
    plan = build_plan(project, project.experiment(experiment), as_of=as_of, schema=schema)
    compiled = compile_plan(plan, dialect=dialect, strategy=strategy,
                            stage_prefix=stage_prefix or f"{schema}.__wn_stage", unit_metrics=unit_metrics)
    return plan, compiled


def compiled_files(plan: AnalysisPlan, compiled: CompiledPlan, models: list[tuple[str, str]], *,
                   in_place: bool = True) -> list[tuple[str, str]]:
    files = [(f"model_{name}", f"-- wn model {name} (materialised as a view)\n{sql}") for name, sql in models]
    for stmt in compiled.statements:
        files.append((stmt.step if stmt.action != "drop" else f"drop_{stmt.step}",
                      header(plan, compiled, stmt) + stmt.sql))
    if compiled.unit_view:   # what the publish transaction creates and runs
        view = Statement("publish_unit_metrics_view", "create_view", compiled.unit_view)
        files.append((view.step, header(plan, compiled, view)
                      + f"-- published as {unit_metrics_table(plan.experiment)}\n" + compiled.unit_view))
    if compiled.daily:   # run in the publish, over the state it leaves
        daily = Statement("publish_scorecard_daily", "query", compiled.daily)
        files.append((daily.step, header(plan, compiled, daily) + compiled.daily))
    if compiled.state_writes:
        sql = [s for w in compiled.state_writes
               for s in (w.in_place_sql() if in_place else w.new_table_sql())]
        state = Statement("publish_state", "publish", ";\n".join(sql))
        files.append((state.step, header(plan, compiled, state) + state.sql))
    return files


def run_experiment(project: Project, target: Target, adapter: Adapter, experiment: str, *,
                   as_of: dt.date, strategy: str = "auto", mode: str = "stateless",
                   lookback_days: int = 2, target_dir: Path | None = None,
                   progress: Progress | None = None, fault: str | None = None,
                   unit_metrics: str = "view") -> RunResult:
    """Run one experiment end to end; raises WnError after recording a failed run.

    ``mode``: ``stateless`` scans the sources in full and keeps no state; ``incremental``
    keeps per-unit-per-day state and reprocesses only recent days (``lookback_days`` before
    the day after the last processed one); ``full-refresh`` rebuilds that state.
    ``unit_metrics``: how a stateless run publishes ``unit_metrics__<experiment>``: ``view``
    (recomputed from the sources on read; no per-unit write) or ``table`` (a snapshot).
    Incremental runs publish a view over their state.
    """
    say = progress or (lambda _msg: None)
    schema = target.schema
    started = dt.datetime.now()
    run_id = new_run_id(started)
    stage = f"{schema}.__wn_{run_id.split('_')[-1]}"
    if mode not in MODES:
        raise WnError(f"unknown mode '{mode}'; use one of {', '.join(MODES)}")
    if unit_metrics == "table" and mode != "stateless":
        raise WnError("--unit-metrics table applies to runs without state (--no-state): an incremental run "
                      "publishes the unit metrics as a view over its state; add --no-state or leave "
                      "--unit-metrics at its default (view)")
    # incremental runs stage what becomes state as tables and what is read once as temporary tables
    result = RunResult(run_id, experiment, "running", strategy if mode == "stateless" else "state",
                       started, mode=mode)
    stage_relations: list[str] = []
    sql_dir: Path | None = None
    spec = None
    try:
        plan = build_plan(project, project.experiment(experiment), as_of=as_of, schema=schema)
        result.plan = plan
        _prepare(adapter, schema)
        models = model_views(plan, adapter.dialect, schema)
        for name, sql in models:
            _timed(result, f"model:{name}", "create_view", lambda s=sql: adapter.execute(s), say)
        # unit ids compared in their own type when every source agrees (needs the models in place)
        plan = dataclasses.replace(plan, unit_keys=unit_keys(
            adapter, [(plan.exposure.relation, plan.exposure.unit_column)]
            + [(s.relation, s.unit_column) for s in plan.scans]
            + [(q.relation, q.unit_column) for q in plan.quantiles]))
        result.plan = plan
        if mode == "stateless":
            compiled = compile_plan(plan, dialect=adapter.dialect, strategy=strategy, stage_prefix=stage,
                                    unit_metrics=unit_metrics)
        else:
            spec, result.note = incremental.decide(
                adapter, schema, plan, full_refresh=mode == "full-refresh", lookback_days=lookback_days,
                tag=None if adapter.publishes_in_place else run_id.split("_")[-1])
            compiled = compile_incremental(plan, spec, dialect=adapter.dialect, stage_prefix=stage)
            say(result.note)
        reference, freshness = _freshness_statement(plan, adapter.dialect, _utc_now())
        if target_dir is not None:
            extra = [(freshness.step, header(plan, compiled, freshness) + freshness.sql)] if freshness else []
            paths = write_compiled(target_dir, experiment, adapter.dialect,
                                   compiled_files(plan, compiled, models, in_place=adapter.publishes_in_place) + extra)
            sql_dir = paths[0].parent if paths else None
        aggregates: list[dict[str, Any]] = []
        quantiles: list[dict[str, Any]] = []   # the percentile metrics' rows, one statement each
        for stmt in compiled.statements:
            if stmt.action in ("create_table", "create_temp"):
                stage_relations.append(stmt.relation)
            step = _execute(adapter, stmt, result, say, sql_dir, compiled)
            if stmt.action == "query" and stmt.step.startswith(QUANTILE_STEP_PREFIX):
                quantiles += step
            elif stmt.action == "query":
                aggregates = step
            _fault(fault, stmt.step)
        for name, choice in compiled.choices.items():
            if choice.startswith("inline"):   # no statement of its own: record the decision
                result.steps.append(StepResult(name, "inline", 0.0, choice=choice))
        if compiled.combined:   # one statement: its rows also hold the percentiles and the exposure counts
            aggregates, counts, quantiles = split_rows(plan, aggregates)
        else:
            counts = adapter.fetch(
                f"select variant, cast(first_exposure_at as date) as day, count(*) as units "
                f"from {compiled.relations['exposures']} group by variant, cast(first_exposure_at as date)")
        newest = None
        if freshness is not None:   # one more query: each source's newest row in its last hours
            newest = {r["source"]: r["last_at"] for r in _execute(adapter, freshness, result, say, sql_dir, compiled)}
        say("computing statistics")
        from .results import build_outputs

        t0 = time.perf_counter()
        by_variant: dict[str, int] = {}
        by_day: dict[tuple[dt.date, str], int] = {}
        for r in counts:
            by_variant[r["variant"]] = by_variant.get(r["variant"], 0) + int(r["units"])
            day = r["day"] if isinstance(r["day"], dt.date) else dt.date.fromisoformat(str(r["day"])[:10])
            by_day[(day, r["variant"])] = int(r["units"])
        outputs = build_outputs(plan, aggregates, by_variant, run_id=run_id, computed_at=started,
                                exposures_by_day=by_day, quantiles=quantiles, source_newest=newest,
                                reference=reference)
        result.steps.append(StepResult("statistics", "python", time.perf_counter() - t0,
                                       rows=len(outputs.scorecard)))
        result.outputs = outputs
        say("publishing results")
        t0 = time.perf_counter()
        adapter.publish(_publication(schema, plan, result, target, as_of, compiled, spec),
                        checkpoint=lambda point: _fault(fault, point))
        result.steps.append(StepResult("publish", "transaction", time.perf_counter() - t0))
        result.status = "success"
    except WnError as exc:
        _fail(adapter, schema, result, exc.render(), target, as_of)
        exc.run_result = result  # type: ignore[attr-defined]
        raise
    except Exception as exc:  # a warehouse driver error
        err = as_warehouse_error(exc, step=result.steps[-1].step if result.steps else None)
        _fail(adapter, schema, result, err.render(), target, as_of)
        err.run_result = result  # type: ignore[attr-defined]
        raise err from None
    finally:
        for rel in reversed(stage_relations):
            with contextlib.suppress(Exception):
                adapter.execute(f"DROP TABLE IF EXISTS {rel}")
    return result


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _freshness_statement(plan: AnalysisPlan, dialect: str, now: dt.datetime) -> tuple[dt.datetime, Statement | None]:
    """The time the sources should be complete up to (the analysis end, or ``now`` when the
    run happens before it) and the source_freshness query (None: no source to check, or the
    analysed period has not begun)."""
    from .sql.freshness import STEP, freshness_sql, reference_time, window_start

    reference = reference_time(plan.end, now)
    if reference <= plan.start:
        return reference, None
    since = {f.source: window_start(reference, plan.start, f.fail_after_hours) for f in plan.freshness}
    sql = freshness_sql(plan, since=since, until=reference, dialect=dialect)
    return reference, Statement(STEP, "query", sql) if sql else None


def _fault(fault: str | None, point: str) -> None:
    """Tests inject a failure at a named point of a run (a step, or ``publish``)."""
    if fault == point:
        where = "during publish" if point == "publish" else f"after step {point}"
        raise WarehouseError(f"fault injected {where}", step=point)


def _prepare(adapter: Adapter, schema: str) -> None:
    adapter.ensure_schema(schema)
    for table, columns in TABLES.items():
        adapter.ensure_table(schema, table, columns)
    for table in ("scorecard", "scorecard_daily", "decisions"):
        adapter.execute(adapter.sql(f"CREATE OR REPLACE VIEW {schema}.{table}_latest AS "
                                    f"{scorecard_latest_view(schema, table)}"))


def _timed(result: RunResult, step: str, action: str, fn: Callable[[], Any], say: Progress) -> Any:
    say(step)
    t0 = time.perf_counter()
    out = fn()
    result.steps.append(StepResult(step, action, time.perf_counter() - t0))
    return out


def _execute(adapter: Adapter, stmt: Statement, result: RunResult, say: Progress,
             sql_dir: Path | None, compiled: CompiledPlan) -> Any:
    say(f"{stmt.step} ({stmt.action})")
    t0 = time.perf_counter()
    try:
        if stmt.action == "query":
            with adapter.joins_as_written() if stmt.joins_as_written else contextlib.nullcontext():
                out: Any = adapter.fetch(stmt.sql)
            rows = len(out)
        else:
            adapter.execute(stmt.sql)
            out = None
            rows = None
            if stmt.action in ("create_table", "create_temp"):
                rows = int(adapter.fetch(f"select count(*) as n from {stmt.relation}")[0]["n"])
    except WnError:
        raise
    except Exception as exc:
        path = None
        if sql_dir is not None:
            match = sorted(sql_dir.glob(f"*_{stmt.step}.sql"))
            path = str(match[0]) if match else str(sql_dir)
        raise as_warehouse_error(exc, step=stmt.step, sql_path=path) from None
    choice = compiled.choices.get(stmt.step)
    result.steps.append(StepResult(stmt.step, stmt.action, time.perf_counter() - t0, rows,
                                   stmt.relation, choice))
    return out


def _publication(schema: str, plan: AnalysisPlan, result: RunResult, target: Target, as_of: dt.date,
                 compiled: CompiledPlan, spec: incremental.IncrementalSpec | None) -> Publication:
    """What this run publishes; the adapter decides how it is swapped in (warehouse/publish.py)."""
    outputs = result.outputs
    assert outputs is not None

    def run_row() -> list[Any]:
        result.finished_at = dt.datetime.now()
        return _run_row(result, "success", None, target, as_of)

    def daily_rows(adapter: Adapter) -> list[list[Any]]:
        """wn.scorecard_daily: the days the previous series recorded, as recorded; the days
        computed from the state; and the last day, this run's own overall results."""
        from .results import build_outputs

        last = incremental.last_day(plan)
        # with daily_history off, the days before the last are only ever what earlier runs recorded
        first = (spec.series_from if plan.daily_history else last) if spec and spec.previous_run else None
        rows = []
        if first:
            names = [c for c, _ in SCORECARD_DAILY]
            kept = adapter.fetch(f"select * from {schema}.scorecard_daily where run_id = {adapter.placeholder} "
                                 f"and day < {adapter.placeholder}", [spec.previous_run, first])
            for r in kept:
                r.update(run_id=result.run_id, computed_at=result.started_at)
                rows.append([r[c] for c in names])
        by_day: dict[dt.date, list[dict[str, Any]]] = (
            {day: [] for day in series_days(plan, first)} if compiled.daily else {})
        for row in adapter.fetch(compiled.daily) if compiled.daily else []:
            day = row.pop(AS_OF)
            by_day.setdefault(day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10]), []).append(row)
        for day, aggregates in sorted(by_day.items()):
            as_of = dataclasses.replace(plan, as_of=day, end=dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))
            for r in build_outputs(as_of, aggregates, {}, run_id=result.run_id, computed_at=result.started_at).scorecard:
                rows.append(r[:3] + [day] + r[3:])
        cols = [c for c, _ in SCORECARD]
        overall, kind = cols.index("dimension"), cols.index("metric_type")
        # percentile metrics are not in the series (their days would each need a pass over the events)
        rows += [r[:3] + [last] + r[3:] for r in outputs.scorecard
                 if r[overall] is None and r[kind] not in EVENT_LEVEL]
        return rows

    return Publication(
        schema=schema, experiment=plan.experiment,
        staged_unit_metrics=compiled.relations.get("unit_metrics"), unit_view=compiled.unit_view,
        state_writes=compiled.state_writes,
        state_row=incremental.state_row(plan, result.run_id, spec, compiled.state_tables) if spec else None,
        state_tables=compiled.state_tables,
        rows=[("metric_aggregates", outputs.metric_aggregates), ("covariate_aggregates", outputs.covariate_aggregates),
              ("scorecard", outputs.scorecard),
              ("health_checks", outputs.health), ("decisions", outputs.decisions)],
        run_row=run_row, tag=result.run_id.split("_")[-1], series=daily_rows if spec else None)


def _run_row(result: RunResult, status: str, error: str | None, target: Target,
             as_of: dt.date) -> list[Any]:
    plan = result.plan
    steps = json.dumps([s.__dict__ for s in result.steps], default=str)
    units = sum(result.outputs.units_by_variant.values()) if result.outputs else None
    return [result.run_id, result.experiment, result.started_at, result.finished_at or dt.datetime.now(),
            status, result.mode, result.strategy,
            target.describe(), error,
            str(plan.as_of if plan else as_of), plan.fingerprint() if plan else None, __version__,
            units, steps]


def _fail(adapter: Adapter, schema: str, result: RunResult, message: str, target: Target,
          as_of: dt.date) -> None:
    result.status = "error"
    result.error = message
    result.finished_at = dt.datetime.now()
    with contextlib.suppress(Exception):
        adapter.ensure_schema(schema)
        adapter.ensure_table(schema, "runs", TABLES["runs"])
        adapter.insert_rows(f"{schema}.runs", TABLES["runs"], [_run_row(result, "error", message, target, as_of)])


def write_run_results(target_dir: Path, results: list[RunResult], target: Target) -> Path:
    payload = {
        "target": target.describe(),
        "results": [{
            "run_id": r.run_id, "experiment": r.experiment, "status": r.status,
            "strategy": r.strategy, "mode": r.mode, "note": r.note,
            "started_at": r.started_at, "finished_at": r.finished_at,
            "error": r.error, "plan_fingerprint": r.plan.fingerprint() if r.plan else None,
            "steps": [s.__dict__ for s in r.steps],
            "srm": r.outputs.srm_status if r.outputs else None,
            "scorecard_rows": len(r.outputs.scorecard) if r.outputs else 0,
        } for r in results],
    }
    return write_json(target_dir / "run_results.json", payload)
