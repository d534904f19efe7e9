"""Incremental runs equal a full (stateless) run exactly, through new days, late data and metric edits."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from warehouse_native.project import load_project
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

DAY = dt.date(2026, 10, 24)          # the "new" day of data
NUMERIC = ("control_units", "variant_units", "control_mean", "variant_mean", "abs_delta", "abs_ci_lower",
           "abs_ci_upper", "rel_delta", "rel_ci_lower", "rel_ci_upper", "p_value", "adjusted_p_value",
           "variance_reduction", "cuped_theta", "std_error")


def _hold_back(adapter, cutoff: dt.date) -> None:
    """Keep only data before ``cutoff`` in raw.*, plus hold back 10% of the last day (late data)."""
    for table in ("exposures", "events"):
        adapter.execute(f"create table raw.all_{table} as select * from raw.{table}")
        adapter.execute(f"""delete from raw.{table} where ts >= timestamp '{cutoff}'
            or (ts >= timestamp '{cutoff - dt.timedelta(days=1)}' and hash(user_id, ts) % 10 = 0)""")


def _release(adapter, through: dt.date) -> None:
    for table in ("exposures", "events"):
        adapter.execute(f"""insert into raw.{table} select * from raw.all_{table}
            where ts < timestamp '{through + dt.timedelta(days=1)}'
            except select * from raw.{table}""")


def _assert_same(adapter, run_a: str, run_b: str) -> int:
    a = {(r["metric"], r["variant"], r["dimension"], r["dimension_value"]): r
         for r in adapter.fetch("select * from wn.scorecard where run_id = ?", [run_a])}
    b = {(r["metric"], r["variant"], r["dimension"], r["dimension_value"]): r
         for r in adapter.fetch("select * from wn.scorecard where run_id = ?", [run_b])}
    assert a.keys() == b.keys() and len(a) > 100
    for key, row in a.items():
        for col in NUMERIC:
            x, y = row[col], b[key][col]
            if x is None or y is None:
                assert x is None and y is None, (key, col)
            else:
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (key, col, x, y)
        assert row["guardrail_status"] == b[key]["guardrail_status"]
    return len(a)


def _unit_metrics(adapter):
    return {r["unit_id"]: r for r in adapter.fetch("select * from wn.unit_metrics__button_color_v3")}


def _assert_same_units(got, expected):
    assert got.keys() == expected.keys()
    for unit, row in expected.items():
        assert got[unit].keys() == row.keys()
        for col, value in row.items():
            other = got[unit][col]
            if isinstance(value, float):
                assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12), (unit, col)
            else:
                assert value == other, (unit, col)


def test_incremental_equals_full_refresh_after_a_new_day_and_late_data(project_and_target):
    project, target = project_and_target
    with connect(target) as adapter:
        _hold_back(adapter, DAY)
        first = run_experiment(project, target, adapter, "button_color_v3", as_of=DAY - dt.timedelta(days=1),
                               mode="incremental")
        assert first.note.startswith("no incremental state yet")
        _release(adapter, DAY)          # the new day, and the held-back rows of the day before
        inc = run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        assert inc.note.startswith(f"reprocessing from {DAY - dt.timedelta(days=2)}")
        inc_units = _unit_metrics(adapter)
        inc_kind = adapter.relations("wn")["unit_metrics__button_color_v3"]
        full = run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="stateless")
        full_units = _unit_metrics(adapter)
        assert _assert_same(adapter, inc.run_id, full.run_id) > 100
        # per unit too, every measure
        _assert_same_units(inc_units, full_units)
        steps = {s.step: s for s in inc.steps}
        assert steps["days__events"].rows < len(full_units) * 3  # only the recent days
        # incremental runs publish the unit metrics as a view over the state (no per-unit copy),
        # a stateless run as a view over the sources, or as a table when asked for one
        assert steps["unit_metrics"].action == "inline"
        assert inc_kind == "view" and adapter.relations("wn")["unit_metrics__button_color_v3"] == "view"
        run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="stateless", unit_metrics="table")
        assert adapter.relations("wn")["unit_metrics__button_color_v3"] == "table"
        _assert_same_units(_unit_metrics(adapter), full_units)


def test_changed_and_added_metrics_backfill_alone(project_and_target, demo_project):
    project, target = project_and_target
    with connect(target) as adapter:
        run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        eng = demo_project / "metrics" / "engagement.yml"
        eng.write_text(eng.read_text().replace("filter: \"event_name = 'signup_success'\"",
                                               "filter: \"event_name in ('signup_success', 'visited_signup')\""))
        exp = demo_project / "experiments" / "button_color_v3.yml"
        exp.write_text(exp.read_text().replace("secondary_metrics: [signups,", "secondary_metrics: [sessions, signups,"))
        changed = load_project(demo_project)
        inc = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY + dt.timedelta(days=1),
                             mode="incremental")
        assert "backfilling events: sessions, sessions__pre, signups, signups__pre" in inc.note
        steps = {s.step for s in inc.steps}
        assert {"backfill_days__events", "backfill_pre__events"} <= steps
        full = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY + dt.timedelta(days=1),
                              mode="stateless")
        _assert_same(adapter, inc.run_id, full.run_id)
        # and the next plain incremental run needs no backfill any more
        again = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY + dt.timedelta(days=2),
                               mode="incremental")
        assert "backfilling" not in again.note
        full2 = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY + dt.timedelta(days=2),
                               mode="stateless")
        _assert_same(adapter, again.run_id, full2.run_id)


def test_count_distinct_metrics_added_and_changed_backfill_exactly(project_and_target, demo_project):
    """count_distinct columns: the first one on a source, a second one next to it, and a changed
    definition are backfilled into the distinct-value state and its sealed counts; every run
    equals a full scan, and the state keeps each unit's value once."""
    project, target = project_and_target
    exp = demo_project / "experiments" / "button_color_v3.yml"
    eng = demo_project / "metrics" / "engagement.yml"
    original = exp.read_text()
    exp.write_text(original.replace(", event_types_used]", "]"))
    values = "wn.state__button_color_v3__values__events"
    with connect(target) as adapter:
        first = run_experiment(load_project(demo_project), target, adapter, "button_color_v3", as_of=DAY,
                               mode="incremental")
        assert not adapter.table_columns("wn", values.split(".")[1])
        steps = [  # (what changes, as_of, the backfill the run reports)
            (lambda: exp.write_text(original), DAY + dt.timedelta(days=1), "event_types_used"),
            (lambda: (eng.write_text(eng.read_text() + "\n  - name: countries_seen\n    source: events\n"
                                     "    type: count_distinct\n    value: country\n"),
                      exp.write_text(original.replace(", event_types_used]", ", event_types_used, countries_seen]"))),
             DAY + dt.timedelta(days=2), "countries_seen"),
            (lambda: eng.write_text(eng.read_text().replace("    value: event_name\n",
                                                            "    value: event_name\n    filter: \"value > 0\"\n")),
             DAY + dt.timedelta(days=3), "event_types_used"),
            (lambda: eng.write_text(eng.read_text().replace("    value: event_name\n    filter: \"value > 0\"\n",
                                                            "    value: event_name\n").replace(
                                    "    value: country\n", "    value: lower(country)\n")),
             DAY + dt.timedelta(days=4), "event_types_used countries_seen"),   # every column at once
            (lambda: None, DAY + dt.timedelta(days=5), None),
            # removed: its rows leave the state; added back: backfilled again
            (lambda: exp.write_text(original), DAY + dt.timedelta(days=6), None),
            (lambda: exp.write_text(original.replace(", event_types_used]", ", event_types_used, countries_seen]")),
             DAY + dt.timedelta(days=7), "countries_seen"),
        ]
        for change, as_of, filled in steps:
            change()
            project = load_project(demo_project)
            inc = run_experiment(project, target, adapter, "button_color_v3", as_of=as_of, mode="incremental")
            if filled:
                assert "backfilling events:" in inc.note and "sealing" in inc.note, inc.note
                assert all(name in inc.note for name in filled.split()), inc.note
            else:
                assert "backfilling" not in inc.note and "sealing" not in inc.note, inc.note
            view = _unit_metrics(adapter)
            full = run_experiment(project, target, adapter, "button_color_v3", as_of=as_of, mode="stateless")
            _assert_same(adapter, inc.run_id, full.run_id)
            table = _unit_metrics(adapter)   # the published view, unit by unit, equals a full scan's table
            assert view.keys() == table.keys()
            for unit, row in table.items():
                assert all(view[unit][c] == v or math.isclose(view[unit][c], v, rel_tol=1e-9)
                           for c, v in row.items() if c in project.metrics or c.endswith("__pre")), unit
            n = adapter.fetch(f"select count(*) as n, count(distinct (unit_id, col, value)) as d from {values}")[0]
            assert n["n"] == n["d"] > 1000
            cols = {r["col"] for r in adapter.fetch(f"select distinct col from {values}")}
            assert cols == {c for c in ("event_types_used", "countries_seen") if c in project.metrics
                            and c in exp.read_text()}, cols
    assert first.status == "success"


def test_exposure_definition_change_or_going_back_rebuilds(project_and_target, demo_project):
    project, target = project_and_target
    with connect(target) as adapter:
        run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        back = run_experiment(project, target, adapter, "button_color_v3", as_of=DAY - dt.timedelta(days=3),
                              mode="incremental")
        assert back.note.startswith("the analysis now ends before the last processed day")
        exp = demo_project / "experiments" / "button_color_v3.yml"
        text = exp.read_text()
        assert "dimensions: [{name: country, top: 4, min_units: 500}]" in text
        exp.write_text(text.replace("dimensions: [{name: country, top: 4, min_units: 500}]",
                                    "dimensions: [{name: country, top: 4, min_units: 500}, device]"))
        changed = load_project(demo_project)
        rebuilt = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        assert rebuilt.note.startswith("the exposure definition")
        full = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY, mode="stateless")
        _assert_same(adapter, rebuilt.run_id, full.run_id)
        refresh = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY, mode="full-refresh")
        assert refresh.note == "full refresh requested"
        _assert_same(adapter, refresh.run_id, full.run_id)


def test_failed_incremental_run_leaves_state_untouched(project_and_target):
    project, target = project_and_target
    with connect(target) as adapter:
        run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        state = adapter.fetch("select * from wn.incremental_state")
        days = adapter.fetch("select count(*) as n, max(day) as d from wn.state__button_color_v3__days__events")
        with pytest.raises(Exception, match="fault injected"):
            run_experiment(project, target, adapter, "button_color_v3", as_of=DAY + dt.timedelta(days=1),
                           mode="incremental", fault="publish")
        assert adapter.fetch("select * from wn.incremental_state") == state
        assert adapter.fetch("select count(*) as n, max(day) as d from wn.state__button_color_v3__days__events") == days


def test_editing_a_model_backfills_what_reads_it(project_and_target, demo_project):
    project, target = project_and_target
    with connect(target) as adapter:
        run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        model = demo_project / "models" / "stg_events.sql"
        model.write_text(model.read_text() + "  and event_name <> 'page_view'\n")
        changed = load_project(demo_project)
        inc = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        assert "backfilling events:" in inc.note and "pages_per_session__num" in inc.note
        full = run_experiment(changed, target, adapter, "button_color_v3", as_of=DAY, mode="stateless")
        _assert_same(adapter, inc.run_id, full.run_id)


def test_windowed_metrics_stay_rates_and_match_incrementally(project_and_target, demo_project):
    """daily_participation over [exposure + 1 day, exposure + 4 days) is a rate <= 1, and a
    windowed conversion / count_distinct keep working through the incremental state."""
    _, target = project_and_target
    eng = demo_project / "metrics" / "engagement.yml"
    eng.write_text(eng.read_text() + """
  - name: dau_days_1_to_3
    source: events
    type: daily_participation
    filter: "event_name = 'session_start'"
    window: {start_day: 1, end_day: 4}
  - name: signup_first_week
    source: events
    type: conversion
    filter: "event_name = 'visited_signup'"
    window: {end_day: 7}
""")
    exp = demo_project / "experiments" / "button_color_v3.yml"
    exp.write_text(exp.read_text().replace("secondary_metrics: [signups,",
                                           "secondary_metrics: [dau_days_1_to_3, signup_first_week, signups,"))
    project = load_project(demo_project)
    with connect(target) as adapter:
        run_experiment(project, target, adapter, "button_color_v3", as_of=DAY - dt.timedelta(days=1),
                       mode="incremental")
        inc = run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="incremental")
        top = adapter.fetch("select max(dau_days_1_to_3) as m, max(dau_days_1_to_3__pre) as p "
                            "from wn.unit_metrics__button_color_v3")[0]
        full = run_experiment(project, target, adapter, "button_color_v3", as_of=DAY, mode="stateless")
        _assert_same(adapter, inc.run_id, full.run_id)
    assert 0 < top["m"] <= 1 and 0 < top["p"] <= 1


def test_daily_runs_keep_sealed_bases_exact_through_reseals_and_lookback_changes(project_and_target):
    """Day by day: runs that merge the sealed base with kept and new days, a shorter lookback,
    a re-seal after RESEAL_DAYS kept days, a longer lookback that reaches into the base
    (re-sealed from the per-day state), and states written by an older wn (fewer days kept,
    distinct values stored per day) all equal a full scan."""
    from warehouse_native.sql.incremental import RESEAL_DAYS

    project, target = project_and_target
    first_day, last = dt.date(2026, 10, 16), dt.date(2026, 10, 25)
    with connect(target) as adapter:
        _hold_back(adapter, first_day + dt.timedelta(days=1))
        run_experiment(project, target, adapter, "button_color_v3", as_of=first_day, mode="full-refresh")
        state = "select sealed_before, kept_before from wn.incremental_state where experiment = 'button_color_v3'"
        assert adapter.fetch(state) == [{"sealed_before": "2026-10-15", "kept_before": None}]
        notes = {}
        lookbacks = {dt.date(2026, 10, 22): 1, last: 4}
        day = first_day
        while day < last:
            day += dt.timedelta(days=1)
            _release(adapter, day)
            run = run_experiment(project, target, adapter, "button_color_v3", as_of=day, mode="incremental",
                                 lookback_days=lookbacks.get(day, 2))
            notes[day] = run.note
            if day in (dt.date(2026, 10, 20), dt.date(2026, 10, 22), dt.date(2026, 10, 24), last):
                full = run_experiment(project, target, adapter, "button_color_v3", as_of=day, mode="stateless")
                _assert_same(adapter, run.run_id, full.run_id)
        # 10-22, lookback 1: the run reprocesses the last processed day only
        assert notes[dt.date(2026, 10, 22)].startswith("reprocessing from 2026-10-21"), notes
        sealing = [d for d, note in notes.items() if "sealing the per-unit bases" in note]
        # base sealed before 10-15; on 10-24 the run starts at 10-22: seven kept days after the
        # seal (RESEAL_DAYS) -> re-sealed before 10-23; on 10-25 a lookback of 4 starts at
        # 10-21, inside that base -> rebuilt from the per-day state
        assert RESEAL_DAYS == 7
        assert sealing == [dt.date(2026, 10, 24), last], notes
        assert adapter.fetch(state) == [{"sealed_before": "2026-10-22", "kept_before": None}]
        # a state from an older wn kept the per-day rows before kept_before only: the run starts there
        adapter.execute("update wn.incremental_state set kept_before = '2026-10-23'")
        run = run_experiment(project, target, adapter, "button_color_v3", as_of=last, mode="incremental")
        assert run.note.startswith("reprocessing from 2026-10-23"), run.note
        _assert_same(adapter, run.run_id, full.run_id)
        # count_distinct state: one row per unit, column and value, dated the day it was first seen
        values = "wn.state__button_color_v3__values__events"
        n = adapter.fetch(f"select count(*) as n, count(distinct (unit_id, col, value)) as d from {values}")[0]
        assert n["n"] == n["d"] > 1000
        first_seen = f"""
            select e.unit_id, min(cast(s.ts as date)) as day, cast(s.event_name as varchar) as value
            from wn.exposures as e join raw.events as s on cast(s.user_id as varchar) = e.unit_id
            where e.experiment = 'button_color_v3' and s.ts >= e.first_exposure_at
              and s.ts < timestamp '{last + dt.timedelta(days=1)}' and s.event_name is not null
            group by e.unit_id, cast(s.event_name as varchar)"""
        stored = f"select unit_id, day, value from {values} where col = 'event_types_used'"
        for a, b in ((first_seen, stored), (stored, first_seen)):
            assert adapter.fetch(f"select count(*) as n from ({a} except {b})") == [{"n": 0}]
        # a state from an earlier wn held a row per day a value was seen, under another column
        # hash: the column is backfilled (and the counts re-sealed) instead of counted twice
        adapter.execute(f"insert into {values} select unit_id, day + 1, col, value from {values} "
                        f"where day + 1 < date '{last - dt.timedelta(days=1)}'")
        hashes = json.loads(adapter.fetch("select columns from wn.incremental_state")[0]["columns"])
        hashes["events"]["event_types_used"] = "from an older wn"
        adapter.execute("update wn.incremental_state set columns = ?", [json.dumps(hashes)])
        run = run_experiment(project, target, adapter, "button_color_v3", as_of=last, mode="incremental")
        assert "backfilling events: event_types_used" in run.note and "sealing" in run.note, run.note
        _assert_same(adapter, run.run_id, full.run_id)
        n = adapter.fetch(f"select count(*) as n, count(distinct (unit_id, col, value)) as d from {values}")[0]
        assert n["n"] == n["d"]
