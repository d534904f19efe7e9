"""wn.scorecard_daily: each day's row equals what a stateless run with --as-of that day publishes."""

from __future__ import annotations

import datetime as dt

import pytest

from compare import assert_same_rows, by_key
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

EXPERIMENT = "button_color_v3"
KEY = ("metric", "variant")


def _daily(adapter, experiment: str = EXPERIMENT) -> dict[dt.date, dict]:
    out: dict[dt.date, list] = {}
    for row in adapter.fetch("select * from wn.scorecard_daily_latest where experiment = ?", [experiment]):
        out.setdefault(row.pop("day"), []).append(row)
    return {day: by_key(rows, KEY) for day, rows in out.items()}


def _as_of(project, target, adapter, day: dt.date) -> dict:
    """A stateless run's overall rows as of ``day``, less its percentile metrics (the series
    leaves them out: README, scorecard_daily)."""
    run = run_experiment(project, target, adapter, EXPERIMENT, as_of=day, mode="stateless")
    rows = adapter.fetch("select * from wn.scorecard where run_id = ? and dimension is null", [run.run_id])
    assert any(r["metric_type"] == "percentile" for r in rows)
    return by_key([r for r in rows if r["metric_type"] != "percentile"], KEY)


def test_every_day_of_the_series_equals_a_run_as_of_that_day(project_and_target):
    project, target = project_and_target
    with connect(target) as adapter:
        run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 11, 1), mode="full-refresh")
        daily = _daily(adapter)
        # the experiment's days: its start through its end (the analysis ends there)
        assert sorted(daily) == [dt.date(2026, 10, 15) + dt.timedelta(days=k) for k in range(15)]
        compared = 0
        for day, rows in sorted(daily.items()):
            assert rows, day
            compared += assert_same_rows(_as_of(project, target, adapter, day), rows, f"as of {day}")
        assert compared > 10_000
        # the lift grows into its final value: units and unit counts rise day by day
        units = [daily[d][("visited_signup", "red")]["variant_units"] for d in sorted(daily)]
        assert units == sorted(units) and units[0] < units[-1]


def test_daily_runs_extend_the_series_and_fill_skipped_days(project_and_target, tmp_path):
    project, target = project_and_target
    with connect(target) as adapter:
        run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 22), mode="incremental")
        first = _daily(adapter)
        assert max(first) == dt.date(2026, 10, 22)

        # the next day's run adds its own result; the days before stay as recorded
        day = run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 23), mode="incremental",
                             target_dir=tmp_path / "a")
        assert day.note.startswith("reprocessing from 2026-10-21")
        assert not list(tmp_path.glob("a/compiled/*/duckdb/*publish_scorecard_daily.sql"))   # no extra statement
        daily = _daily(adapter)
        assert sorted(daily) == sorted(first) + [dt.date(2026, 10, 23)]
        for d in first:
            assert_same_rows(first[d], daily[d], f"{d} as recorded")
        assert_same_rows(_as_of(project, target, adapter, dt.date(2026, 10, 23)), daily[dt.date(2026, 10, 23)],
                         "the day of the run")

        # a skipped day (no run on 10-24): the run of 10-25 computes it from the state's bases + later rows
        inc = run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 25), mode="incremental",
                             target_dir=tmp_path / "b")
        sql = next(tmp_path.glob("b/compiled/*/duckdb/*publish_scorecard_daily.sql")).read_text()
        assert "state__button_color_v3__base__events" in sql
        assert "CAST('2026-10-24' AS DATE) AS as_of" in sql and "'2026-10-23'" not in sql and "'2026-10-25'" not in sql
        daily = _daily(adapter)
        assert max(daily) == dt.date(2026, 10, 25) and len(daily) == 11
        for d in (dt.date(2026, 10, 24), dt.date(2026, 10, 25)):
            assert_same_rows(_as_of(project, target, adapter, d), daily[d], f"as of {d}")
        # stateless runs above wrote no series: the latest series is still the incremental run's
        rows = adapter.fetch("select distinct run_id from wn.scorecard_daily_latest")
        assert [r["run_id"] for r in rows] == [inc.run_id]


@pytest.mark.parametrize("fault", ["publish"])
def test_a_failed_run_adds_no_series(project_and_target, fault):
    project, target = project_and_target
    with connect(target) as adapter:
        ok = run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 20), mode="incremental")
        with pytest.raises(Exception, match="fault injected"):
            run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 21), mode="incremental",
                           fault=fault)
        assert [r["run_id"] for r in adapter.fetch("select distinct run_id from wn.scorecard_daily")] == [ok.run_id]


def test_without_daily_history_the_series_grows_run_by_run(project_and_target, demo_project):
    exp = demo_project / "experiments" / "button_color_v3.yml"
    exp.write_text(exp.read_text().replace("daily_history: true}", "daily_history: false}"))
    from warehouse_native.project import load_project

    project, target = load_project(demo_project), project_and_target[1]
    with connect(target) as adapter:
        run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 22), mode="full-refresh")
        assert sorted(_daily(adapter)) == [dt.date(2026, 10, 22)]       # no history computed
        run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 23), mode="incremental")
        daily = _daily(adapter)
        assert sorted(daily) == [dt.date(2026, 10, 22), dt.date(2026, 10, 23)]
        assert_same_rows(_as_of(project, target, adapter, dt.date(2026, 10, 22)), daily[dt.date(2026, 10, 22)],
                         "kept as recorded")
        # a full refresh keeps the days recorded and replaces its own
        run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 23), mode="full-refresh")
        assert sorted(_daily(adapter)) == [dt.date(2026, 10, 22), dt.date(2026, 10, 23)]
