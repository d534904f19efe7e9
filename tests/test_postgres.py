"""The demo runs on PostgreSQL with the same numbers as on DuckDB, and publishes atomically.

Needs the server on 127.0.0.1:5432 (user postgres, trust auth).  If it is not reachable the
module fixture tries once to start the local cluster with pg_ctlcluster; if that fails too,
every test here is SKIPPED with a loud reason (run pytest with -rs to see it).

Everything happens in a throw-away database ``wn_test_<random>`` (the demo catalog hard-codes
``raw.exposures``/``raw.events`` and the profile writes to schema ``wn``), dropped at the end.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
import uuid
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from compare import assert_same_rows, by_key
from conftest import AS_OF, copy_project
from warehouse_native.demo import DemoConfig, generate_demo
from warehouse_native.errors import WarehouseError
from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

pytestmark = pytest.mark.postgres

HOST, PORT, USER, ADMIN_DB = "127.0.0.1", 5432, "postgres", "test"
EXPERIMENT = "button_color_v3"
USERS = 3000

KEY = ("metric", "variant", "dimension", "dimension_value")
HEALTH_KEY = ("check_name", "dimension", "dimension_value")


# -- server ----------------------------------------------------------------------------

def _connect(dbname: str = ADMIN_DB):
    import psycopg

    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname=dbname, autocommit=True,
                           connect_timeout=5)


def _start_local_cluster() -> tuple[bool, str]:
    """Try once to start the local cluster: (started?, what happened, for the skip reason)."""
    conf = Path("/etc/postgresql")
    versions = sorted(os.listdir(conf)) if conf.is_dir() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        return False, "no local cluster to start (pg_ctlcluster or /etc/postgresql missing)"
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{' '.join(cmd)}` failed: {exc}"
    if done.returncode != 0:
        return False, f"`{' '.join(cmd)}` exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
    return True, f"started with `{' '.join(cmd)}`"


@pytest.fixture(scope="module")
def pg_server() -> None:
    def skip(why: str) -> None:
        reason = f"POSTGRES NOT AVAILABLE at {HOST}:{PORT}: {why} — Postgres tests skipped"
        warnings.warn(reason)
        pytest.skip(reason)

    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        skip(f"psycopg is not installed ({exc})")
    try:
        _connect().close()
        return
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    started, what = _start_local_cluster()
    last = first
    for _ in range(30 if started else 1):   # a fresh server may need a few seconds
        try:
            _connect().close()
            return
        except Exception as exc:  # noqa: BLE001
            last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            time.sleep(0.5)
    skip(f"{first}; start attempt: {what}; still: {last}")


@pytest.fixture(scope="module")
def pg_database(pg_server: None) -> str:
    """A database of its own for this test session, dropped afterwards."""
    name = f"wn_test_{uuid.uuid4().hex[:10]}"
    with _connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        with _connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- both warehouses, seeded with the same data and run once --------------------------------

@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pg_database: str) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("pg_vs_duckdb")
    project_dir = copy_project(root / "project", root / "warehouse" / "demo.duckdb")
    project = load_project(project_dir)
    duck = load_target(project_dir)
    pg = load_target(project_dir, target="pg")
    assert duck.type == "duckdb" and pg.type == "postgres"
    pg = dataclasses.replace(pg, settings={**pg.settings, "host": HOST, "port": PORT, "user": USER,
                                           "password": "", "dbname": pg_database})
    data = generate_demo(DemoConfig(users=USERS))
    out = SimpleNamespace(project=project, duck=duck, pg=pg, timings={})
    for name, target in (("duck", duck), ("pg", pg)):
        with connect(target) as adapter:
            t0 = time.perf_counter()
            for relation, columns in data.items():
                adapter.load_columns(relation, columns)
            t1 = time.perf_counter()
            result = run_experiment(project, target, adapter, EXPERIMENT, as_of=AS_OF)
            out.timings[name] = {"seed": t1 - t0, "run": time.perf_counter() - t1}
            assert result.status == "success"
            setattr(out, f"{name}_run", result)
            setattr(out, f"{name}_scorecard", _by_key(_scorecard_latest(adapter, target), KEY))
            setattr(out, f"{name}_health", _by_key(adapter.fetch(
                f"select * from wn.health_checks where run_id = {adapter.placeholder}",
                [result.run_id]), HEALTH_KEY))
            setattr(out, f"{name}_aggregates", _by_key(adapter.fetch(
                f"select * from wn.metric_aggregates where run_id = {adapter.placeholder}",
                [result.run_id]), ("metric", "variant", "dimension", "dimension_value")))
    print(f"\nseed/run seconds: {out.timings}")
    return out


def _scorecard_latest(adapter, target) -> list[dict[str, Any]]:
    return adapter.fetch(f"select * from {target.schema}.scorecard_latest where experiment = "
                         f"{adapter.placeholder} order by metric, variant, dimension, dimension_value",
                         [EXPERIMENT])


_by_key = by_key


def _assert_same_rows(expected: dict, actual: dict, what: str) -> None:
    assert_same_rows(expected, actual, what)


# -- tests -------------------------------------------------------------------------------

def test_seeded_raw_tables_are_identical(env: SimpleNamespace) -> None:
    """Binary COPY keeps doubles, NULLs and microsecond timestamps exact."""
    queries = {
        "raw.exposures": "select user_id, stable_id, experiment, group_name, ts, country, device "
                         "from raw.exposures order by experiment, user_id, ts, group_name",
        "raw.events": "select user_id, ts, event_name, value, country from raw.events "
                      "order by user_id, ts, event_name, value",
    }
    for relation, sql in queries.items():
        with connect(env.duck) as duck, connect(env.pg) as pg:
            a = [tuple(r.values()) for r in duck.fetch(sql)]
            b = [tuple(r.values()) for r in pg.fetch(sql)]
        assert len(a) == len(b) > 1000, relation
        diff = [(x, y) for x, y in zip(a, b) if x != y]   # NaN was loaded as NULL on both sides
        assert not diff, f"{relation}: {len(diff)} rows differ, first: {diff[:3]}"


def test_scorecard_matches_duckdb(env: SimpleNamespace) -> None:
    assert len(env.duck_scorecard) > 100
    _assert_same_rows(env.duck_scorecard, env.pg_scorecard, "scorecard_latest")
    overall = [k for k in env.pg_scorecard if k[2] is None]
    sliced = [k for k in env.pg_scorecard if k[2] == "country"]
    assert overall and sliced


def test_sufficient_statistics_and_health_match_duckdb(env: SimpleNamespace) -> None:
    _assert_same_rows(env.duck_aggregates, env.pg_aggregates, "metric_aggregates")
    _assert_same_rows(env.duck_health, env.pg_health, "health_checks")


@pytest.mark.parametrize("strategy", ["temp", "cte"])
def test_strategies_on_postgres_match_duckdb(env: SimpleNamespace, strategy: str) -> None:
    with connect(env.pg) as adapter:
        result = run_experiment(env.project, env.pg, adapter, EXPERIMENT, as_of=AS_OF, strategy=strategy)
        assert result.status == "success" and result.strategy == strategy
        card = _by_key(adapter.fetch("select * from wn.scorecard where run_id = %s", [result.run_id]), KEY)
        leftovers = adapter.fetch("select table_name from information_schema.tables "
                                  "where table_name like '\\_\\_wn%%'")
        run = adapter.fetch("select status, strategy from wn.runs where run_id = %s", [result.run_id])
    _assert_same_rows(env.duck_scorecard, card, f"scorecard ({strategy})")
    assert leftovers == []
    assert run == [{"status": "success", "strategy": strategy}]


def test_failed_publish_leaves_previous_scorecard_intact(env: SimpleNamespace) -> None:
    with connect(env.pg) as adapter:
        before = _scorecard_latest(adapter, env.pg)
        units_before = adapter.fetch(f"select count(*) as n from wn.unit_metrics__{EXPERIMENT}")
        exposures_before = adapter.fetch("select count(*) as n from wn.exposures where experiment = %s",
                                         [EXPERIMENT])
        aggregates_before = adapter.fetch("select count(*) as n from wn.metric_aggregates")
        assert before
        with pytest.raises(WarehouseError, match="fault injected during publish") as info:
            run_experiment(env.project, env.pg, adapter, EXPERIMENT, as_of=AS_OF, fault="publish")
        failed = info.value.run_result.run_id  # type: ignore[attr-defined]
        assert _scorecard_latest(adapter, env.pg) == before
        assert adapter.fetch(f"select count(*) as n from wn.unit_metrics__{EXPERIMENT}") == units_before
        assert adapter.fetch("select count(*) as n from wn.exposures where experiment = %s",
                             [EXPERIMENT]) == exposures_before
        assert adapter.fetch("select count(*) as n from wn.metric_aggregates") == aggregates_before
        for table in ("scorecard", "metric_aggregates", "health_checks"):
            assert adapter.fetch(f"select count(*) as n from wn.{table} where run_id = %s",
                                 [failed]) == [{"n": 0}], table
        assert adapter.fetch("select table_name from information_schema.tables "
                             "where table_name like '\\_\\_wn%%'") == []
    # the error row was committed: another connection sees it
    with connect(env.pg) as other:
        runs = other.fetch("select status, error from wn.runs where run_id = %s", [failed])
    assert len(runs) == 1 and runs[0]["status"] == "error"
    assert "fault injected during publish" in runs[0]["error"]


@pytest.mark.parametrize("fault,unit_metrics", [("scan__events", "view"), ("aggregates", "view"),
                                                ("unit_metrics", "table")])
def test_failed_step_leaves_no_stage_tables(env: SimpleNamespace, fault: str, unit_metrics: str) -> None:
    with connect(env.pg) as adapter:
        before = _scorecard_latest(adapter, env.pg)
        with pytest.raises(WarehouseError, match="fault injected"):
            run_experiment(env.project, env.pg, adapter, EXPERIMENT, as_of=AS_OF, fault=fault,
                           strategy="temp", unit_metrics=unit_metrics)
        assert _scorecard_latest(adapter, env.pg) == before
        assert adapter.fetch("select table_name from information_schema.tables "
                             "where table_name like '\\_\\_wn%%'") == []


def test_load_columns_round_trip_and_replace(env: SimpleNamespace) -> None:
    """Awkward values survive COPY; reloading keeps dependent views, or fails cleanly."""
    ts = np.array(["2026-10-01T00:00:00.000001", "NaT", "1999-12-31T23:59:59.999999"], dtype="datetime64[us]")
    columns = {
        "s": np.array(["tab\there", None, "back\\slash\nnew line \\N"], dtype=object),
        "f": np.array([0.1, np.nan, -1e-300]),
        "i": np.array([1, -(2**62), 0], dtype=np.int64),
        "b": np.array([True, False, True]),
        "t": ts,
    }
    with connect(env.pg) as pg:
        assert pg.load_columns("scratch.odd", columns) == 3
        rows = pg.fetch("select * from scratch.odd order by i")
        assert [r["s"] for r in rows] == [None, "back\\slash\nnew line \\N", "tab\there"]
        assert [r["f"] for r in rows] == [None, -1e-300, 0.1]
        assert [r["b"] for r in rows] == [False, True, True]
        assert [r["t"] for r in rows] == [None, ts[2].item(), ts[0].item()]
        pg.execute("create view scratch.odd_v as select s, f from scratch.odd")
        # same shape: truncated and refilled, the view keeps working
        assert pg.load_columns("scratch.odd", {**columns, "f": np.array([1.0, 2.0, 3.0])}) == 3
        assert sorted(r["f"] for r in pg.fetch("select f from scratch.odd_v")) == [1.0, 2.0, 3.0]
        # new shape under a view: a clear error, and the old rows are still there
        with pytest.raises(WarehouseError, match="other objects depend on it"):
            pg.load_columns("scratch.odd", {"s": columns["s"]})
        assert pg.fetch("select count(*) as n from scratch.odd_v") == [{"n": 3}]
        pg.execute("drop schema scratch cascade")


def test_incremental_runs_on_postgres_match_a_full_scan(env: SimpleNamespace) -> None:
    """Build the state early, add days run by run, compare with DuckDB's full scan."""
    import datetime as dt

    with connect(env.pg) as adapter:
        for as_of in (dt.date(2026, 10, 25), dt.date(2026, 10, 27), AS_OF):
            result = run_experiment(env.project, env.pg, adapter, EXPERIMENT, as_of=as_of, mode="incremental")
        # the last run adds 10-28 and 10-29 to a state processed through 10-27
        assert result.note.startswith("reprocessing from 2026-10-26"), result.note
        card = _by_key(adapter.fetch("select * from wn.scorecard where run_id = %s", [result.run_id]), KEY)
        assert adapter.fetch("select mode from wn.runs where run_id = %s", [result.run_id]) == [{"mode": "incremental"}]
        daily = "select * from wn.scorecard_daily_latest"
        pg_daily = _by_key(adapter.fetch(daily), ("day", "metric", "variant"))
    _assert_same_rows(env.duck_scorecard, card, "scorecard (incremental on postgres)")
    # the results as of each day equal DuckDB's, computed from its own state
    with connect(env.duck) as duck:
        run_experiment(env.project, env.duck, duck, EXPERIMENT, as_of=AS_OF, mode="full-refresh")
        _assert_same_rows(_by_key(duck.fetch(daily), ("day", "metric", "variant")), pg_daily, "scorecard_daily")


def test_exposures_view_on_postgres_spans_experiments_and_migrates(env: SimpleNamespace) -> None:
    """An old wn.exposures table that a user's view depends on stops the run with a fix; once
    it can go, the view replaces it, spans two experiments (NULL for a dimension one lacks),
    and is replaced again by later runs, stateless and incremental, while a user's view reads it."""
    target = dataclasses.replace(env.pg, schema="wn_view")
    with connect(target) as adapter:
        adapter.execute("create schema wn_view")
        try:
            adapter.execute("create table wn_view.exposures (experiment varchar, unit_type varchar, "
                            "unit_id varchar, variant varchar, first_exposure_at timestamp, exposure_count bigint)")
            adapter.execute("create view wn_view.mine as select * from wn_view.exposures")
            with pytest.raises(WarehouseError, match="depend") as info:
                run_experiment(env.project, target, adapter, EXPERIMENT, as_of=AS_OF)
            assert "fix: drop or repoint" in str(info.value)
            assert adapter.relations("wn_view")["exposures"] == "table"
            adapter.execute("drop view wn_view.mine")
            run_experiment(env.project, target, adapter, EXPERIMENT, as_of=AS_OF)
            run_experiment(env.project, target, adapter, "show_new_homepage", as_of=AS_OF)
            assert adapter.relations("wn_view")["exposures"] == "view"
            assert adapter.table_columns("wn_view", "exposures")[-2:] == ["country", "device"]
            adapter.execute("create view wn_view.mine as select experiment, unit_id, device from wn_view.exposures")
            run_experiment(env.project, target, adapter, EXPERIMENT, as_of=AS_OF)   # replaces the view again
            # incremental runs publish unit_metrics as a view over state tables, which a full
            # refresh replaces: PostgreSQL tracks both dependencies (and the user's view)
            for mode in ("incremental", "full-refresh", "incremental"):
                run_experiment(env.project, target, adapter, EXPERIMENT, as_of=AS_OF, mode=mode)
                assert adapter.relations("wn_view")[f"unit_metrics__{EXPERIMENT}"] == "view"
            # a user's view on the unit metrics blocks replacing them: one clear error, nothing lost
            adapter.execute(f"create view wn_view.units_mine as select unit_id from wn_view.unit_metrics__{EXPERIMENT}")
            before = adapter.fetch(f"select count(*) as n from wn_view.units_mine")
            with pytest.raises(WarehouseError, match=f"cannot replace wn_view.unit_metrics__{EXPERIMENT}") as info:
                run_experiment(env.project, target, adapter, EXPERIMENT, as_of=AS_OF, mode="incremental")
            assert "drop or repoint what depends on it" in str(info.value)
            assert adapter.fetch("select count(*) as n from wn_view.units_mine") == before
            adapter.execute("drop view wn_view.units_mine")
            rows = adapter.fetch("select experiment, count(*) as n, count(device) as with_device "
                                 "from wn_view.mine group by experiment order by experiment")
            units = {e: adapter.fetch(f"select count(*) as n from wn_view.unit_metrics__{e}")[0]["n"]
                     for e in (EXPERIMENT, "show_new_homepage")}
            assert [(r["experiment"], r["n"]) for r in rows] == sorted(units.items())
            assert rows[0]["with_device"] == 0 and rows[1]["with_device"] > 0.9 * rows[1]["n"]
        finally:
            adapter.execute("drop schema wn_view cascade")


def test_compact_state_on_postgres_matches_a_full_scan(env: SimpleNamespace, tmp_path: Path) -> None:
    """Without a daily series a full refresh builds a compact state (bases straight from the
    sources, covariates in the same pass, per-day rows from the seal on; the exposure base by
    row_number on PostgreSQL).  Daily runs on it and a rebuild forced by a longer lookback
    equal a stateless run on PostgreSQL, as of every day compared."""
    import datetime as dt

    root = tmp_path / "project"
    shutil.copytree(env.project.root, root)
    exp = root / "experiments" / f"{EXPERIMENT}.yml"
    exp.write_text(exp.read_text().replace("daily_history: true}", "daily_history: false}"))
    project = load_project(root)
    target = dataclasses.replace(env.pg, schema="wn_compact")
    state = f"select sealed_before, days_from from wn_compact.incremental_state where experiment = '{EXPERIMENT}'"
    with connect(target) as adapter:
        try:
            first = run_experiment(project, target, adapter, EXPERIMENT, as_of=dt.date(2026, 10, 22),
                                   mode="full-refresh")
            assert adapter.fetch(state) == [{"sealed_before": "2026-10-21", "days_from": "2026-10-21"}]
            days = adapter.fetch(f"select min(day) as d from wn_compact.state__{EXPERIMENT}__days__events")
            assert days == [{"d": dt.date(2026, 10, 21)}]
            runs = [(first, dt.date(2026, 10, 22))]
            for as_of in (dt.date(2026, 10, 24), AS_OF):
                runs.append((run_experiment(project, target, adapter, EXPERIMENT, as_of=as_of, mode="incremental"),
                             as_of))
            assert runs[-1][0].note.startswith("reprocessing from"), runs[-1][0].note
            longer = run_experiment(project, target, adapter, EXPERIMENT, as_of=AS_OF, mode="incremental",
                                    lookback_days=12)
            assert longer.note.startswith("a lookback of 12 days"), longer.note
            runs.append((longer, AS_OF))
            for run, as_of in runs:
                full = run_experiment(project, target, adapter, EXPERIMENT, as_of=as_of, mode="stateless")
                got, want = (_by_key(adapter.fetch("select * from wn_compact.scorecard where run_id = %s", [r]), KEY)
                             for r in (run.run_id, full.run_id))
                _assert_same_rows(want, got, f"compact state on postgres as of {as_of} ({run.note[:30]})")
        finally:
            adapter.execute("drop schema if exists wn_compact cascade")
