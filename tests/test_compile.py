"""Compiled SQL: one scan per source, portable to five dialects, snapshot-tested per engine.

Golden files live in tests/golden/<dialect>/; regenerate after an intended change with
``WN_UPDATE_GOLDEN=1 pytest tests/test_compile.py`` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from conftest import REPO
from warehouse_native.plan import build_plan
from warehouse_native.project import load_project
from warehouse_native.sql import DIALECTS, compile_plan

GOLDEN = Path(__file__).parent / "golden"
AS_OF = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def plan():
    project = load_project(REPO)
    return build_plan(project, project.experiments["button_color_v3"], as_of=AS_OF, schema="wn")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("strategy", ["cte", "temp"])
def test_every_statement_parses_back_in_its_dialect(plan, dialect, strategy):
    compiled = compile_plan(plan, dialect=dialect, strategy=strategy)
    # DuckDB runs a stateless plan as one statement (the exposures a CTE), unless told to stage
    one = dialect == "duckdb" and strategy == "cte"
    assert [s.step for s in compiled.statements][:1] == (["aggregates"] if one else ["exposures"])
    assert compiled.combined == one
    for stmt in compiled.statements:
        parsed = sqlglot.parse(stmt.sql, read=dialect)
        assert len(parsed) == 1, stmt.step
        assert parsed[0] is not None


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_sql(plan, dialect):
    compiled = compile_plan(plan, dialect=dialect, strategy="cte")
    text = "\n\n".join(f"-- step {s.step} ({s.action})\n{s.sql};" for s in compiled.statements)
    text += f"\n\n-- published view unit_metrics__button_color_v3\n{compiled.unit_view};\n"
    path = GOLDEN / f"button_color_v3.{dialect}.sql"
    if os.environ.get("WN_UPDATE_GOLDEN") or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"compiled SQL for {dialect} changed; see module docstring"


@pytest.mark.parametrize("dialect,unit_metrics", [("duckdb", "view"), ("postgres", "view"), ("duckdb", "table")])
def test_one_scan_per_source_joined_once_to_exposures(plan, dialect, unit_metrics):
    compiled = compile_plan(plan, dialect=dialect, strategy="cte", unit_metrics=unit_metrics)
    # the statement computing the unit metrics: the aggregates (view) or the unit_metrics table
    unit = next(s for s in compiled.statements if s.step == ("aggregates" if unit_metrics == "view" else "unit_metrics"))
    tree = sqlglot.parse_one(unit.sql, read=dialect)
    cte = next(c for c in tree.find_all(exp.CTE) if c.alias == "__wn_scan__events")
    scanned = [t.name for t in cte.find_all(exp.Table) if t.name == "stg_events"]
    assert scanned == ["stg_events"], "the events source must be read exactly once"
    every = [t.name for s in compiled.statements for t in sqlglot.parse_one(s.sql, read=dialect).find_all(exp.Table)]
    # the percentile metric's statement (or part of the one statement) reads the events once
    # more (its own rows, no unit column); the exposure source is read once
    assert every.count("stg_events") == 2 and every.count("exposures") == 1
    # every events metric, its CUPED covariate included, comes out of that one scan
    cte = next(c for c in tree.find_all(exp.CTE) if c.alias == "__wn_scan__events")
    columns = set(cte.this.named_selects)
    for m in plan.unit_level_metrics:
        assert m.value_column in columns and (m.pre_column is None or m.pre_column in columns)
    # a percentile metric (median_order_value) has no unit column: its own statement reads the events
    assert [m.name for m in plan.metrics if m.is_percentile] == ["median_order_value"]
    assert not any("median_order_value" in c for c in columns)


def test_strategies_differ_only_in_materialisation(plan):
    cte = compile_plan(plan, dialect="duckdb", strategy="cte")
    temp = compile_plan(plan, dialect="duckdb", strategy="temp")
    # the last query: the percentile metric's statement (quantiles__median_order_value)
    # DuckDB with CTEs: one statement (exposures, scan, unit metrics, aggregates, percentile)
    assert [s.action for s in cte.statements] == ["query"]
    assert [s.action for s in temp.statements] == ["create_temp", "create_temp", "query", "query", "drop"]
    one, view = "inline; one statement with the aggregates", "inline; published as a view over the sources"
    assert cte.choices == {"scan__events": "inline, plain scan", "exposures": one, "unit_metrics": view,
                           "quantiles__median_order_value": one}
    assert temp.choices == {"scan__events": "temp, plain scan", "unit_metrics": view}
    pg = compile_plan(plan, dialect="postgres", strategy="cte")   # no one-statement form there
    assert [s.action for s in pg.statements] == ["create_temp", "query", "query"]
    table = compile_plan(plan, dialect="duckdb", strategy="temp", unit_metrics="table")
    assert [s.action for s in table.statements] == ["create_temp", "create_temp", "create_table", "query", "query",
                                                    "drop"]
    assert table.unit_view is None and table.relations["unit_metrics"].endswith("_unit_metrics")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_published_view_is_self_contained(plan, dialect):
    """A stateless run's unit_metrics view outlives the run: it reads the sources, never the
    run's temporary or staged relations."""
    compiled = compile_plan(plan, dialect=dialect, strategy="temp")
    tree = sqlglot.parse_one(compiled.unit_view, read=dialect)
    ctes = {c.alias for c in tree.find_all(exp.CTE)}
    read = {f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.name not in ctes}
    # the exposure source and the events model, nothing the run staged
    assert read == {"raw.exposures", "wn.stg_events"}, read


def test_filters_are_qualified_to_the_source(plan):
    compiled = compile_plan(plan, dialect="postgres", strategy="temp")
    scan = next(s for s in compiled.statements if s.step == "scan__events")
    assert "s.event_name = 'visited_signup'" in scan.sql
    assert "e.event_name" not in scan.sql


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", ["rebuild", "daily", "reseal_and_backfill"])
def test_incremental_statements_parse_back_in_every_dialect(plan, dialect, case):
    """The incremental run's statements (bases, merges, backfills) are written for every
    dialect, the first-row dimension roll-ups included (arg_min on DuckDB, a join elsewhere)."""
    from warehouse_native.sql.incremental import IncrementalSpec, compile_incremental, state_tables

    tables = state_tables("wn", plan.experiment, [s.source for s in plan.scans])
    day = dt.date(2026, 10, 20)
    spec = {
        "rebuild": IncrementalSpec(since=plan.start.date(), exists=False, tables=tables, seal_at=day),
        "daily": IncrementalSpec(since=day, exists=True, tables=tables, present={k: True for k in tables},
                                 sealed_before=day - dt.timedelta(days=3)),
        "reseal_and_backfill": IncrementalSpec(
            since=day, exists=True, tables=tables, present={k: True for k in tables},
            fill={plan.scans[0].source: (plan.scans[0].columns[0].name,)}, sealed_before=day,
            seal_at=day + dt.timedelta(days=1)),
    }[case]
    compiled = compile_incremental(plan, spec, dialect=dialect, stage_prefix="wn.__wn_x")
    steps = [s.step for s in compiled.statements]
    # the percentile metric keeps no state: its statement reads the run's exposures after the aggregates
    assert steps[0] == "exposure_days" and steps[-2:] == ["aggregates", "quantiles__median_order_value"]
    assert "unit_metrics" not in steps
    assert ("exposure_base" in steps) == (case != "daily")
    for stmt in compiled.statements:
        parsed = sqlglot.parse(stmt.sql, read=dialect)
        assert len(parsed) == 1 and parsed[0] is not None, stmt.step
    # the run's unit metrics are inline in the aggregates statement
    aggregates = next(s.sql for s in compiled.statements if s.step == "aggregates")
    assert ("state__button_color_v3__base__events" in aggregates) == (case == "daily")
    # the published view reads the state only, never this run's staged relations
    view = compiled.unit_view
    assert len(sqlglot.parse(view, read=dialect)) == 1
    # so does the query of the results as of each day
    assert len(sqlglot.parse(compiled.daily, read=dialect)) == 1 and "__wn_x" not in compiled.daily
    assert "__wn_x" not in view
    assert "state__button_color_v3__base__events" in view and "state__button_color_v3__exposure_base" in view


def test_a_plan_using_no_new_feature_keeps_its_fingerprint_and_hashes():
    """Fields added to the plan later (top-N slices, percentiles, holdouts, freshness,
    covariates, retention and funnel columns) stay out of the fingerprint and the definition
    hashes while unused, so upgrading wn restarts no daily series and keeps metric_aggregates
    comparable.  The values are those of wn before they existed (code 077f2e9)."""
    from warehouse_native.incremental import series_key

    project = load_project(REPO)
    plan = build_plan(project, project.experiments["show_new_homepage"], as_of=AS_OF, schema="wn")
    assert (plan.fingerprint(), series_key(plan)) == ("534255dea5a9751b", "fca5c4f93bdb8d33")
    assert plan.metric("page_views").definition_hash == "b3172efced0b9bd3"
