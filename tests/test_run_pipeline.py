"""Running the pipeline: strategies agree, publishing is atomic, runs are recorded."""

from __future__ import annotations

import json

import pytest

from conftest import AS_OF
from warehouse_native.errors import WarehouseError
from warehouse_native.runner import run_experiment, write_run_results
from warehouse_native.warehouse import connect

KEY = ("metric", "variant", "dimension", "dimension_value")
NUMBERS = ("control_units", "variant_units", "control_mean", "variant_mean", "abs_delta", "abs_ci_lower",
           "abs_ci_upper", "rel_delta", "rel_ci_lower", "rel_ci_upper", "p_value", "adjusted_p_value",
           "variance_reduction", "guardrail_status", "significant")


def _scorecard(adapter, run_id):
    rows = adapter.fetch("select * from wn.scorecard where run_id = ?", [run_id])
    return {tuple(r[k] for k in KEY): r for r in rows}


def test_cte_temp_and_auto_give_identical_scorecards(project_and_target):
    project, target = project_and_target
    with connect(target) as adapter:
        cards, health = {}, {}
        for strategy in ("cte", "temp", "auto"):
            result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, strategy=strategy)
            cards[strategy] = _scorecard(adapter, result.run_id)
            # SRM, exposure gaps, ... read the exposure counts: one statement's rows (cte, auto on
            # DuckDB) or a query of the staged exposures (temp)
            health[strategy] = adapter.fetch(
                "select check_name, dimension, dimension_value, status, round(statistic, 9) as statistic, "
                "round(p_value, 9) as p_value, detail from wn.health_checks where run_id = ? order by all",
                [result.run_id])
        assert len(health["cte"]) > 10 and health["cte"] == health["temp"] == health["auto"]
        assert any(r["check_name"] == "srm" for r in health["cte"])
        assert len(cards["cte"]) > 100
        for other in ("temp", "auto"):
            assert cards[other].keys() == cards["cte"].keys()
            for key, row in cards["cte"].items():
                for col in NUMBERS:
                    a, b = row[col], cards[other][key][col]
                    if isinstance(a, float):
                        # parallel sums may differ in the last bits between runs
                        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), (key, col)
                    else:
                        assert a == b, (key, col)
        runs = adapter.fetch("select strategy, status from wn.runs order by started_at")
        assert [r["strategy"] for r in runs] == ["cte", "temp", "auto"]
        assert {r["status"] for r in runs} == {"success"}


def test_grouped_scan_shape_gives_the_same_numbers(project_and_target, monkeypatch):
    """The grouped-then-pivoted scan (chosen for sources with many columns) equals the plain one."""
    from warehouse_native.sql import render

    project, target = project_and_target
    with connect(target) as adapter:
        plain = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        monkeypatch.setattr(render, "GROUPED_SCAN_MIN_COLUMNS", 1)
        grouped = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        a, b = _scorecard(adapter, plain.run_id), _scorecard(adapter, grouped.run_id)
    one, view = "inline; one statement with the aggregates", "inline; published as a view over the sources"
    # DuckDB: the exposures, the scan, the unit metrics and the percentile statement are one query
    assert {s.step: s.choice for s in plain.steps if s.choice} == {
        "scan__events": "inline, plain scan", "exposures": one, "unit_metrics": view,
        "quantiles__median_order_value": one}
    assert {s.step: s.choice for s in grouped.steps if s.choice}["scan__events"] == "inline, grouped scan"
    assert a.keys() == b.keys() and len(a) > 100
    for key, row in a.items():
        for col in NUMBERS:
            x, y = row[col], b[key][col]
            if isinstance(x, float):
                assert y == pytest.approx(x, rel=1e-9, abs=1e-12), (key, col)
            else:
                assert x == y, (key, col)


# (on DuckDB a run publishing the view is one statement, "aggregates"; with a table it stages the
# exposures, writes the unit metrics, then queries them)
@pytest.mark.parametrize("fault,unit_metrics", [("aggregates", "view"), ("publish", "view"), ("exposures", "table"),
                                                ("unit_metrics", "table"), ("publish", "table")])
def test_failed_run_leaves_previous_results_intact(project_and_target, fault, unit_metrics):
    project, target = project_and_target
    with connect(target) as adapter:
        good = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, unit_metrics=unit_metrics)
        before = adapter.fetch("select * from wn.scorecard_latest order by metric, variant, dimension, dimension_value")
        exposures_before = adapter.fetch("select count(*) as n from wn.exposures")[0]["n"]
        aggregates_before = adapter.fetch("select count(*) as n from wn.metric_aggregates")[0]["n"]
        with pytest.raises(WarehouseError, match="fault injected"):
            run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, fault=fault,
                           unit_metrics=unit_metrics)
        after = adapter.fetch("select * from wn.scorecard_latest order by metric, variant, dimension, dimension_value")
        assert after == before and after[0]["run_id"] == good.run_id
        assert adapter.fetch("select count(*) as n from wn.exposures")[0]["n"] == exposures_before
        assert adapter.fetch("select count(*) as n from wn.metric_aggregates")[0]["n"] == aggregates_before
        assert adapter.fetch("select count(*) as n from wn.unit_metrics__button_color_v3")[0]["n"] > 0
        runs = adapter.fetch("select status, error from wn.runs order by started_at")
        assert [r["status"] for r in runs] == ["success", "error"]
        assert "fault injected" in runs[-1]["error"]
        stages = adapter.fetch("select table_name from information_schema.tables where table_name like '__wn%'")
        assert stages == []


def test_broken_metric_fails_cleanly_and_names_the_step(project_and_target, demo_project):
    project, target = project_and_target
    eng = demo_project / "metrics" / "engagement.yml"
    # a column the source does not have, in a project that does not declare columns
    src = demo_project / "metrics" / "sources.yml"
    src.write_text(src.read_text().replace("    columns: [user_id, ts, event_name, value, country]\n", ""))
    eng.write_text(eng.read_text().replace("filter: \"event_name = 'visited_signup'\"",
                                           "filter: \"event_kind = 'visited_signup'\""))
    from warehouse_native.project import load_project

    broken = load_project(demo_project)
    with connect(target) as adapter:
        run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        with pytest.raises(WarehouseError) as info:
            run_experiment(broken, target, adapter, "button_color_v3", as_of=AS_OF,
                           target_dir=demo_project / "target")
        text = info.value.render()
        # the scan is a CTE of the aggregates statement (unit metrics published as a view)
        assert "step 'aggregates'" in text and "event_kind" in text and "compiled SQL" in text
        assert adapter.fetch("select count(*) as n from wn.scorecard_latest")[0]["n"] > 0


def test_run_results_json_records_steps(project_and_target, demo_project):
    project, target = project_and_target
    with connect(target) as adapter:
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, strategy="temp",
                                target_dir=demo_project / "target")
        units = adapter.fetch("select count(*) as n from wn.exposures where experiment = 'button_color_v3'")[0]["n"]
        steps_json = adapter.fetch("select steps from wn.runs where run_id = ?", [result.run_id])[0]["steps"]
    path = write_run_results(demo_project / "target", [result], target)
    data = json.loads(path.read_text())
    assert data["metadata"]["schema_version"].endswith("run-results/v1.json")
    steps = {s["step"]: s for s in data["results"][0]["steps"]}
    assert steps["exposures"]["rows"] == units
    assert steps["unit_metrics"]["action"] == "inline" and steps["unit_metrics"]["rows"] is None
    assert steps["unit_metrics"]["choice"] == "inline; published as a view over the sources"
    assert steps["scan__events"]["choice"] == "temp, plain scan"
    assert {"exposures", "scan__events", "unit_metrics", "aggregates", "statistics", "publish"} <= set(steps)
    assert json.loads(steps_json)[0]["step"] == "model:stg_events"
    compiled = sorted(p.name for p in (demo_project / "target" / "compiled" / "button_color_v3" / "duckdb").glob("*.sql"))
    assert compiled[0] == "01_model_stg_events.sql" and any("scan__events" in c for c in compiled)
    assert any(c.endswith("_publish_unit_metrics_view.sql") for c in compiled)


def test_null_variant_rows_are_unknown_not_multi_exposed(project_and_target):
    project, target = project_and_target
    with connect(target) as adapter:
        adapter.execute("""insert into raw.exposures
            select 'ghost_' || cast(i as varchar), 'd', 'button_color_v3', null,
                   timestamp '2026-10-20 10:00:00', 'US', 'web' from range(7) as t(i)""")
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        ghosts = adapter.fetch("select distinct variant from wn.exposures where unit_id like 'ghost_%'")
        health = {h["check_name"]: h for h in adapter.fetch(
            "select * from wn.health_checks where run_id = ?", [result.run_id])}
    assert ghosts == [{"variant": "(null)"}]
    assert health["unknown_variant"]["statistic"] == 7 and health["unknown_variant"]["status"] == "warn"
    assert "(null)" in health["unknown_variant"]["detail"]


@pytest.mark.parametrize("mode", ["stateless", "incremental"])
def test_dimension_comes_from_the_first_exposure_row_even_when_null(project_and_target, mode):
    project, target = project_and_target
    with connect(target) as adapter:
        adapter.execute("""insert into raw.exposures values
            ('nully', 'd', 'button_color_v3', 'red', timestamp '2026-10-20 10:00:00', null, 'web'),
            ('nully', 'd', 'button_color_v3', 'red', timestamp '2026-10-21 10:00:00', 'US', 'web'),
            ('latey', 'd', 'button_color_v3', 'red', timestamp '2026-10-21 09:00:00', 'FR', 'web'),
            ('latey', 'd', 'button_color_v3', 'red', timestamp '2026-10-20 09:00:00', 'DE', 'web')""")
        run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, mode=mode)
        rows = adapter.fetch("select unit_id, country from wn.exposures where unit_id in ('nully', 'latey') "
                             "order by unit_id")
    assert rows == [{"unit_id": "latey", "country": "DE"}, {"unit_id": "nully", "country": None}]


def test_exposures_view_spans_experiments_and_replaces_an_old_table(project_and_target):
    """wn.exposures reads every experiment's unit_metrics table; dimensions an experiment does
    not have read NULL; a wn.exposures table from an older wn is replaced by the view."""
    project, target = project_and_target
    with connect(target) as adapter:
        adapter.execute("create schema if not exists wn")
        adapter.execute("create table wn.exposures (experiment varchar, unit_type varchar, unit_id varchar, "
                        "variant varchar, first_exposure_at timestamp, exposure_count bigint)")
        adapter.execute("insert into wn.exposures values ('gone', 'user_id', 'u1', 'a', null, 1)")
        run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        assert adapter.relations("wn")["exposures"] == "view"
        assert adapter.table_columns("wn", "exposures")[-1] == "country"
        run_experiment(project, target, adapter, "show_new_homepage", as_of=AS_OF)
        assert adapter.table_columns("wn", "exposures")[-2:] == ["country", "device"]
        rows = adapter.fetch("select experiment, count(*) as n, count(device) as with_device, "
                             "count(country) as with_country from wn.exposures group by experiment order by 1")
        units = {e: adapter.fetch(f"select count(*) as n from wn.unit_metrics__{e}")[0]["n"]
                 for e in ("button_color_v3", "show_new_homepage")}
        assert [r["experiment"] for r in rows] == ["button_color_v3", "show_new_homepage"]
        assert rows[0]["n"] == units["button_color_v3"] and rows[0]["with_device"] == 0
        assert rows[0]["with_country"] > 0.9 * rows[0]["n"]
        assert rows[1]["n"] == units["show_new_homepage"] and rows[1]["with_device"] > 0.9 * rows[1]["n"]
        # re-running the first experiment keeps the view's columns and the other experiment's rows
        run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        assert adapter.table_columns("wn", "exposures")[-2:] == ["country", "device"]
        again = adapter.fetch("select experiment, count(*) as n from wn.exposures group by experiment order by 1")
        assert [(r["experiment"], r["n"]) for r in again] == [(r["experiment"], r["n"]) for r in rows]
        # incremental runs publish the unit metrics as a view, which wn.exposures reads too; a view
        # of the user's own named like one (same columns) is not mistaken for an experiment's
        adapter.execute("create view wn.unit_metrics__button_color_v3_us as "
                        "select * from wn.unit_metrics__button_color_v3 where country = 'US'")
        run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, mode="incremental")
        assert adapter.relations("wn")["unit_metrics__button_color_v3"] == "view"
        again = adapter.fetch("select experiment, count(*) as n from wn.exposures group by experiment order by 1")
        assert [(r["experiment"], r["n"]) for r in again] == [(r["experiment"], r["n"]) for r in rows]
