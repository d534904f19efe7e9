"""The source_freshness health check: each source's newest row against the analysis end.

Pure rule on hand-made times; its one query in every dialect; end to end on DuckDB in every run
mode (a source that stops two days early warns, one empty in the analysed period fails and
makes the decision investigate, a fresh one passes); and on PostgreSQL against DuckDB.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlglot

from conftest import AS_OF, copy_project
from warehouse_native.errors import ProjectError
from warehouse_native.plan import build_plan
from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.sql.freshness import freshness_sql, reference_time, window_start
from warehouse_native.stats import source_freshness
from warehouse_native.warehouse import connect

T = dt.datetime
END = T(2026, 10, 30)          # button_color_v3: last day 2026-10-29, analysis end (exclusive) 10-30 00:00
START = T(2026, 10, 15)
DEFAULT = (24.0, 72.0)


# -- the rule ------------------------------------------------------------------------------

def test_pass_warn_and_fail_by_the_lag_before_the_reference():
    r = source_freshness({"exposures": T(2026, 10, 29, 23, 0), "events": T(2026, 10, 27, 23, 30)},
                         {"exposures": DEFAULT, "events": DEFAULT}, reference=END, period_start=START)
    assert r.status == "warn" and r.worst_lag_hours == pytest.approx(48.5)
    assert [(s.source, s.status) for s in r.sources] == [("exposures", "pass"), ("events", "warn")]
    assert r.detail == ("events: last row 2026-10-27 23:30, 48.5 h before 2026-10-30 00:00 (warn after 24 h); "
                        "fresh: exposures 1.0 h before 2026-10-30 00:00")
    # exactly at the threshold still passes; the source's own thresholds apply
    assert source_freshness({"e": END - dt.timedelta(hours=24)}, {"e": DEFAULT}, reference=END,
                            period_start=START).status == "pass"
    assert source_freshness({"e": T(2026, 10, 29, 17)}, {"e": (6.0, 12.0)}, reference=END,
                            period_start=START).status == "warn"


def test_no_row_fails_and_says_where_it_looked():
    r = source_freshness({"events": None}, {"events": DEFAULT}, reference=END, period_start=START)
    assert (r.status, r.worst_lag_hours) == ("fail", None)
    assert r.detail == "events: no row in the 72 h before 2026-10-30 00:00 (fail after 72 h)"
    # the look reached back to the start of the analysed period: nothing at all in it
    short = source_freshness({"events": None}, {"events": DEFAULT}, reference=T(2026, 10, 17), period_start=START)
    assert short.detail == "events: no row in the analysed period (2026-10-15 00:00 to 2026-10-17 00:00)"
    # a row older than fail_after (a wider look than the query's) fails too
    assert source_freshness({"e": T(2026, 10, 25)}, {"e": DEFAULT}, reference=END,
                            period_start=START).sources[0].text.endswith("120.0 h before 2026-10-30 00:00 (fail after 72 h)")


def test_times_are_compared_in_utc_and_dates_as_midnight():
    aware = dt.datetime(2026, 10, 29, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2)))   # 2026-10-30 00:00 UTC
    assert source_freshness({"e": aware}, {"e": DEFAULT}, reference=END, period_start=START).worst_lag_hours == 0.0
    assert source_freshness({"e": dt.date(2026, 10, 29)}, {"e": DEFAULT}, reference=END,
                            period_start=START).worst_lag_hours == 24.0
    assert source_freshness({}, {}, reference=END, period_start=START).status == "unknown"


def test_the_reference_is_the_run_start_during_the_as_of_day():
    assert reference_time(END, T(2026, 10, 29, 6, 15)) == T(2026, 10, 29, 6, 15)
    assert reference_time(END, T(2026, 12, 3)) == END
    assert window_start(END, START, 72) == T(2026, 10, 27)
    assert window_start(T(2026, 10, 16), START, 72) == START


# -- the query -------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark"])
def test_one_query_reads_only_the_last_hours_of_each_source(demo_project, dialect):
    project = load_project(demo_project)
    plan = build_plan(project, project.experiment("button_color_v3"), as_of=AS_OF, schema="wn")
    assert [(f.source, f.warn_after_hours, f.fail_after_hours) for f in plan.freshness] == \
        [("exposures", 24, 72), ("events", 24, 72)]
    since = {"exposures": T(2026, 10, 27), "events": T(2026, 10, 28)}
    sql = freshness_sql(plan, since=since, until=END, dialect=dialect)
    tree = sqlglot.parse_one(sql, read=dialect)
    selects = list(tree.find_all(sqlglot.exp.Select))
    assert len(selects) == 3   # two sources (one through its model's select) in one UNION ALL
    assert isinstance(tree, sqlglot.exp.Union) and not tree.args.get("distinct")
    for day in ("2026-10-27 00:00:00", "2026-10-28 00:00:00", "2026-10-30 00:00:00"):
        assert day in sql
    assert "raw.exposures" in sql and "stg_events" in sql


def test_thresholds_are_validated_with_file_line_and_field(demo_project):
    path = demo_project / "metrics" / "sources.yml"
    text = path.read_text().replace("  - name: events\n",
                                    "  - name: events\n    freshness: {warn_after_hours: 48, fail_after_hours: 24}\n", 1)
    path.write_text(text)
    with pytest.raises(ProjectError) as exc:
        load_project(demo_project)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "fail_after_hours: 24" in t)
    message = exc.value.render()
    assert f"metrics/sources.yml:{line} [sources.1.freshness]" in message
    assert "fail_after_hours (24) must be larger than warn_after_hours (48)" in message
    path.write_text(text.replace("{warn_after_hours: 48, fail_after_hours: 24}", "{warn_after: 4}"))
    with pytest.raises(ProjectError) as exc:
        load_project(demo_project)
    assert f"metrics/sources.yml:{line} [sources.1.freshness.warn_after]: source 'events': unknown field" \
        in exc.value.render()


# -- end to end on DuckDB ------------------------------------------------------------------

def _freshness(adapter, run_id):
    rows = adapter.fetch("select * from wn.health_checks where run_id = ? and check_name = 'source_freshness'", [run_id])
    assert len(rows) == 1
    return rows[0]


def _decision(adapter, run_id):
    return adapter.fetch("select * from wn.decisions where run_id = ?", [run_id])[0]


def test_a_source_that_stops_two_days_early_warns_in_every_mode(demo_project):
    project, target = load_project(demo_project), load_target(demo_project)
    with connect(target) as adapter:
        adapter.execute("delete from raw.events where ts >= timestamp '2026-10-28 00:00:00'")
        last = adapter.fetch("select max(ts) as t from raw.events")[0]["t"]
        last_exposure = adapter.fetch("select max(ts) as t from raw.exposures where ts < timestamp '2026-10-30'")[0]["t"]
        checks = {}
        for mode in ("stateless", "full-refresh", "incremental"):
            result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, mode=mode)
            checks[mode] = (_freshness(adapter, result.run_id), _decision(adapter, result.run_id), result)
    lag = (END - last).total_seconds() / 3600
    assert 48 <= lag < 49   # stopped two days before the analysis end
    check, decision, result = checks["stateless"]
    assert check["status"] == "warn" and check["statistic"] == pytest.approx(lag)
    assert f"events: last row {last:%Y-%m-%d %H:%M:%S}, {lag:.1f} h before 2026-10-30 00:00 (warn after 24 h)" \
        in check["detail"]
    # the test data ends on 2026-10-28 (DemoConfig's 28 days), a day before the experiment's end:
    # the exposures are a day late too
    lag_exposures = (END - last_exposure).total_seconds() / 3600
    assert 24 < lag_exposures < 25
    assert check["detail"] == (f"exposures: last row {last_exposure:%Y-%m-%d %H:%M:%S}, {lag_exposures:.1f} h before "
                               f"2026-10-30 00:00 (warn after 24 h); events: last row {last:%Y-%m-%d %H:%M:%S}, "
                               f"{lag:.1f} h before 2026-10-30 00:00 (warn after 24 h)")
    # a warning is not decisive
    assert decision["decision"] != "investigate"
    # one query, recorded as a step, answering one row per source
    step = next(s for s in result.steps if s.step == "source_freshness")
    assert (step.action, step.rows) == ("query", 2)
    for mode in ("full-refresh", "incremental"):
        assert (checks[mode][0]["status"], checks[mode][0]["detail"]) == (check["status"], check["detail"]), mode


def test_a_source_empty_in_the_period_fails_and_the_decision_investigates(demo_project):
    project, target = load_project(demo_project), load_target(demo_project)
    with connect(target) as adapter:
        adapter.execute("delete from raw.events where ts >= timestamp '2026-10-18 00:00:00'")
        result = run_experiment(project, target, adapter, "show_new_homepage", as_of=dt.date(2026, 10, 20),
                                mode="stateless")
        check, decision = _freshness(adapter, result.run_id), _decision(adapter, result.run_id)
    assert check["status"] == "fail"
    assert "events: no row in the analysed period (2026-10-18 00:00 to 2026-10-21 00:00)" in check["detail"]
    assert decision["decision"] == "investigate" and "source_freshness: events: no row" in decision["reason"]


def test_fresh_sources_pass_and_a_source_can_be_left_out(demo_project):
    project, target = load_project(demo_project), load_target(demo_project)
    with connect(target) as adapter:
        newest = {name: adapter.fetch(f"select max(ts) as t from raw.{name} where ts < timestamp '2026-10-29'")[0]["t"]
                  for name in ("events", "exposures")}
        result = run_experiment(project, target, adapter, "show_new_homepage", as_of=AS_OF, mode="stateless")
        check = _freshness(adapter, result.run_id)
        path = demo_project / "metrics" / "sources.yml"
        path.write_text(path.read_text().replace("  - name: events\n", "  - name: events\n    freshness: false\n", 1))
        skipped = run_experiment(load_project(demo_project), target, adapter, "show_new_homepage", as_of=AS_OF,
                                 mode="stateless")
        without = _freshness(adapter, skipped.run_id)
    end = T(2026, 10, 29)   # show_new_homepage's last day is 2026-10-28
    lags = {k: (end - v).total_seconds() / 3600 for k, v in newest.items()}
    assert check["status"] == "pass" and check["statistic"] == pytest.approx(max(lags.values()))
    assert check["detail"] == (f"fresh: exposures {lags['exposures']:.1f} h, events {lags['events']:.1f} h "
                               "before 2026-10-29 00:00")
    assert without["detail"] == f"fresh: exposures {lags['exposures']:.1f} h before 2026-10-29 00:00"


# -- PostgreSQL: the same check from the same data ----------------------------------------------

from test_postgres import HOST, PORT, USER, pg_database, pg_server  # noqa: E402,F401 (fixtures)


@pytest.mark.postgres
def test_postgres_reports_what_duckdb_reports(tmp_path, pg_database):
    from warehouse_native.demo import DemoConfig, generate_demo

    root = copy_project(tmp_path / "project", tmp_path / "warehouse" / "demo.duckdb")
    project = load_project(root)
    duck = load_target(root)
    pg = load_target(root, target="pg")
    pg = dataclasses.replace(pg, settings={**pg.settings, "host": HOST, "port": PORT, "user": USER,
                                           "password": "", "dbname": pg_database})
    data = generate_demo(DemoConfig(users=2000))
    checks = {}
    for name, target in (("duck", duck), ("pg", pg)):
        with connect(target) as adapter:
            for relation, columns in data.items():
                adapter.load_columns(relation, columns)
            adapter.execute("delete from raw.events where ts >= timestamp '2026-10-28 00:00:00'")
            result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, mode="stateless")
            checks[name] = adapter.fetch(f"select status, statistic, detail from {target.schema}.health_checks "
                                         f"where run_id = {adapter.placeholder} and check_name = 'source_freshness'",
                                         [result.run_id])
    assert checks["pg"] == checks["duck"] and checks["pg"][0]["status"] == "warn"
    assert "events: last row 2026-10-27" in checks["pg"][0]["detail"]
