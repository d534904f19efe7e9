"""A full refresh without a daily series builds a *compact* state: sealed bases straight from
the sources, per-day rows only from the seal on.  Daily runs on it equal a full scan; runs that
would need older days rebuild it, and say so."""

from __future__ import annotations

import datetime as dt

from test_incremental import _assert_same, _assert_same_units, _hold_back, _release, _unit_metrics
from warehouse_native.project import load_project
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

EXP = "button_color_v3"
STATE = "select sealed_before, days_from from wn.incremental_state where experiment = 'button_color_v3'"


def _without_daily_series(demo_project):
    exp = demo_project / "experiments" / f"{EXP}.yml"
    assert "daily_history: true}" in exp.read_text()
    exp.write_text(exp.read_text().replace("daily_history: true}", "daily_history: false}"))
    return load_project(demo_project)


def _first_day(adapter, table: str):
    return adapter.fetch(f"select min(day) as d, count(*) as n from wn.state__{EXP}__{table}")[0]


def test_daily_runs_on_a_compact_state_equal_a_full_scan(project_and_target, demo_project):
    _, target = project_and_target
    project = _without_daily_series(demo_project)
    first_day, last = dt.date(2026, 10, 20), dt.date(2026, 10, 29)
    with connect(target) as adapter:
        _hold_back(adapter, first_day + dt.timedelta(days=1))
        refresh = run_experiment(project, target, adapter, EXP, as_of=first_day, mode="full-refresh")
        # lookback 2: the next run reprocesses from 10-20, so the bases are sealed before 10-19
        # and the per-day rows start there
        assert adapter.fetch(STATE) == [{"sealed_before": "2026-10-19", "days_from": "2026-10-19"}]
        for table in ("exposure_days", "days__events"):
            rows = _first_day(adapter, table)
            assert rows["d"] == dt.date(2026, 10, 19) and rows["n"] > 100, (table, rows)
        steps = {s.step for s in refresh.steps}
        assert {"exposure_base", "base__events", "pre__events"} <= steps
        assert not {"state_days__events", "values_unseen__events"} & steps   # nothing copied twice
        view = _unit_metrics(adapter)
        full = run_experiment(project, target, adapter, EXP, as_of=first_day, mode="stateless")
        _assert_same(adapter, refresh.run_id, full.run_id)
        _assert_same_units(view, _unit_metrics(adapter))
        day, notes = first_day, {}
        while day < last:
            day += dt.timedelta(days=1)
            _release(adapter, day)
            run = run_experiment(project, target, adapter, EXP, as_of=day, mode="incremental")
            notes[day] = run.note
            if day in (dt.date(2026, 10, 22), dt.date(2026, 10, 26), last):
                view = _unit_metrics(adapter)
                full = run_experiment(project, target, adapter, EXP, as_of=day, mode="stateless")
                _assert_same(adapter, run.run_id, full.run_id)
                _assert_same_units(view, _unit_metrics(adapter))
        assert all(n.startswith("reprocessing from") for n in notes.values()), notes
        # seven kept days after the seal (the run as of 10-28 starts at 10-26): re-sealed before
        # 10-27; the per-day rows are still kept from 10-19
        assert [d for d, n in notes.items() if "sealing" in n] == [dt.date(2026, 10, 28)], notes
        assert adapter.fetch(STATE) == [{"sealed_before": "2026-10-27", "days_from": "2026-10-19"}]
        # a longer lookback reaches into the sealed bases: a compact state cannot roll them back
        longer = run_experiment(project, target, adapter, EXP, as_of=last, mode="incremental", lookback_days=6)
        assert longer.note.startswith("a lookback of 6 days reprocesses from 2026-10-24, days the sealed"), longer.note
        _assert_same(adapter, longer.run_id, full.run_id)
        assert adapter.fetch(STATE) == [{"sealed_before": "2026-10-24", "days_from": "2026-10-24"}]
        # and one reaching before the per-day rows: rebuilt too
        longest = run_experiment(project, target, adapter, EXP, as_of=last, mode="incremental", lookback_days=9)
        assert longest.note.startswith("a lookback of 9 days reprocesses from 2026-10-21; the state keeps"), longest.note
        _assert_same(adapter, longest.run_id, full.run_id)


def test_a_compact_state_backfills_what_it_can_and_rebuilds_for_the_rest(project_and_target, demo_project):
    _, target = project_and_target
    project = _without_daily_series(demo_project)
    exp = demo_project / "experiments" / f"{EXP}.yml"
    eng = demo_project / "metrics" / "engagement.yml"
    original = exp.read_text()
    day = dt.date(2026, 10, 24)
    with connect(target) as adapter:
        exp.write_text(original.replace(", event_types_used]", "]"))
        run_experiment(load_project(demo_project), target, adapter, EXP, as_of=day, mode="full-refresh")
        # a count_distinct metric (and its covariate) added: its value rows and covariates come
        # from the sources over the whole history, no per-day rows needed
        exp.write_text(original)
        project = load_project(demo_project)
        added = run_experiment(project, target, adapter, EXP, as_of=day + dt.timedelta(days=1), mode="incremental")
        assert "backfilling events: event_types_used" in added.note, added.note
        full = run_experiment(project, target, adapter, EXP, as_of=day + dt.timedelta(days=1), mode="stateless")
        _assert_same(adapter, added.run_id, full.run_id)
        # a changed post-window column needs every day's rows: rebuilt, compact again
        eng.write_text(eng.read_text().replace("filter: \"event_name = 'signup_success'\"",
                                               "filter: \"event_name in ('signup_success', 'visited_signup')\""))
        project = load_project(demo_project)
        changed = run_experiment(project, target, adapter, EXP, as_of=day + dt.timedelta(days=2), mode="incremental")
        assert changed.note.startswith("a changed or new column needs every day's rows"), changed.note
        full = run_experiment(project, target, adapter, EXP, as_of=day + dt.timedelta(days=2), mode="stateless")
        _assert_same(adapter, changed.run_id, full.run_id)
        assert adapter.fetch(STATE) == [{"sealed_before": "2026-10-25", "days_from": "2026-10-25"}]
        # the daily series reads every day's rows: switching it on rebuilds a full state, and
        # the series then holds every day from the start
        exp.write_text(exp.read_text().replace("daily_history: false}", "daily_history: true}"))
        project = load_project(demo_project)
        series = run_experiment(project, target, adapter, EXP, as_of=day + dt.timedelta(days=2), mode="incremental")
        assert series.note.startswith("the daily series (daily_history) needs per-day rows"), series.note
        _assert_same(adapter, series.run_id, full.run_id)
        assert adapter.fetch(STATE) == [{"sealed_before": "2026-10-25", "days_from": None}]
        assert _first_day(adapter, "days__events")["d"] == dt.date(2026, 10, 15)
        days = adapter.fetch("select count(distinct day) as n from wn.scorecard_daily where run_id = ?",
                             [series.run_id])
        assert days == [{"n": 12}]   # 10-15 .. 10-26


def test_the_state_joins_keep_their_written_build_sides(project_and_target, monkeypatch):
    """The aggregates statement of a refresh or an incremental run joins the exposures to each
    per-unit state relation: DuckDB runs it (and only it) with its build-side optimizer off, puts
    the setting back, and the numbers equal a stateless run's."""
    project, target = project_and_target
    setting = "select current_setting('disabled_optimizers') as s"
    seen: list[str] = []
    with connect(target) as adapter:
        before = adapter.fetch(setting)
        with adapter.joins_as_written():
            assert "build_side_probe_side" in adapter.fetch(setting)[0]["s"]
        assert adapter.fetch(setting) == before
        plain_fetch = adapter.fetch

        def fetch(sql, params=None):
            if "build_side_probe_side" in plain_fetch(setting)[0]["s"]:
                seen.append("plan: sufficient statistics per variant" in sql)   # the aggregates statement
            return plain_fetch(sql, params)

        monkeypatch.setattr(adapter, "fetch", fetch)
        day = dt.date(2026, 10, 24)
        refresh = run_experiment(project, target, adapter, EXP, as_of=day, mode="full-refresh")
        incremental = run_experiment(project, target, adapter, EXP, as_of=day + dt.timedelta(days=1),
                                     mode="incremental")
        stateless = run_experiment(project, target, adapter, EXP, as_of=day, mode="stateless")
        monkeypatch.undo()
        assert adapter.fetch(setting) == before
        _assert_same(adapter, refresh.run_id, stateless.run_id)
    # one statement per stateful run, the aggregates; none in the stateless run
    assert seen == [True, True], seen
    assert incremental.status == "success"
