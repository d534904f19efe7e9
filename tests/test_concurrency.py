"""Two ``wn run`` at once, in real processes.

DuckDB lets one process write a file: a second run waits up to ``lock_timeout`` seconds, then
exits 4 with the file and the process holding it named (never a traceback, nothing changed).
PostgreSQL: runs of one experiment take turns (a session advisory lock for the whole run), runs
of different experiments go side by side.  Staging tables of dead runs are swept, never those
of a live one.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import killing
from conftest import REPO, copy_project

EXPERIMENT = "button_color_v3"
OTHER = "show_new_homepage"
AS_OF = "2026-11-01"


def _wn(project: Path, *args: str, target: str = "dev", timeout: float | None = None,
        env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "warehouse_native.cli.main", *args, "--project-dir", str(project),
           "-t", target, "--as-of", AS_OF]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO),
                            env={**os.environ, **(env or {}), "COLUMNS": "200"})


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, " ".join((out + err).decode(errors="replace").split())   # unwrapped


def _set_lock_timeout(project: Path, seconds: float) -> None:
    text = (project / "profiles.yml").read_text()
    (project / "profiles.yml").write_text(text.replace("      schema: wn\n", f"      schema: wn\n      lock_timeout: {seconds}\n"))


def _intervals(wh: killing.Warehouse, experiment: str) -> list[tuple[dt.datetime, dt.datetime]]:
    rows = wh.rows(f"select started_at, finished_at from wn.runs where experiment = '{experiment}' "
                   "and status = 'success' order by started_at")
    return [(r["started_at"], r["finished_at"]) for r in rows]


# -- DuckDB ---------------------------------------------------------------------------------------

HOLD = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('holding', flush=True); "
        "sys.stdin.readline()")


def _hold(path: Path) -> subprocess.Popen:
    """Another process that holds the DuckDB file until its stdin closes."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"holding"
    return holder


@pytest.fixture()
def duck(demo_project: Path) -> killing.Warehouse:
    db = demo_project.parent / "warehouse" / "demo.duckdb"
    code, out = _finish(_wn(demo_project, "run", "-e", EXPERIMENT, "-q"))
    assert code == 0, out
    return killing.Warehouse("duckdb", demo_project, str(db))


def test_duckdb_locked_file_clear_error_after_lock_timeout(duck: killing.Warehouse) -> None:
    _set_lock_timeout(duck.project, 0.5)
    before = killing.snapshot(duck)
    holder = _hold(Path(duck.db))
    try:
        t0 = time.monotonic()
        code, out = _finish(_wn(duck.project, "run", "-e", EXPERIMENT, "-q"))
        waited = time.monotonic() - t0
        show_code, show_out = _finish(_wn(duck.project, "show", "-e", EXPERIMENT))
    finally:
        holder.stdin.close()
        holder.wait()
    assert code == 4 and show_code == 4, out + show_out
    assert "Traceback" not in out + show_out
    assert f"the DuckDB database {duck.db} is locked by process {holder.pid}" in out
    assert "gave up after waiting 0.5 s" in out and "lock_timeout" in out
    assert waited >= 0.5
    assert killing.same_snapshot(before, killing.snapshot(duck)) == []


def test_duckdb_second_run_waits_for_the_first(duck: killing.Warehouse) -> None:
    """A run started while another process writes the file waits, then runs."""
    _set_lock_timeout(duck.project, 60)
    holder = _hold(Path(duck.db))
    proc = _wn(duck.project, "run", "-e", EXPERIMENT, "-q")
    time.sleep(1.5)
    assert proc.poll() is None, "the run did not wait for the lock"
    holder.stdin.close()
    holder.wait()
    code, out = _finish(proc)
    assert code == 0, out
    assert len(_intervals(duck, EXPERIMENT)) == 2


def test_duckdb_two_real_runs_at_once_both_succeed_one_after_the_other(duck: killing.Warehouse) -> None:
    procs = [_wn(duck.project, "run", "-e", EXPERIMENT, "-q"), _wn(duck.project, "run", "-e", OTHER, "-q"),
             _wn(duck.project, "run", "-e", EXPERIMENT, "-q", "--no-state")]
    results = [_finish(p) for p in procs]
    assert [c for c, _ in results] == [0, 0, 0], results
    spans = sorted(_intervals(duck, EXPERIMENT)[1:] + _intervals(duck, OTHER))
    assert len(spans) == 3
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), f"runs overlapped: {spans}"
    assert killing.stray_stages(duck) == []


def test_duckdb_stray_stage_tables_of_a_dead_run_are_dropped(duck: killing.Warehouse) -> None:
    import duckdb

    with duckdb.connect(duck.db) as con:
        con.execute("create table wn.__wn_dead00_unit_metrics as select 1 as x")
        con.execute("create table wn.__wn_dead00_5_days as select 1 as x")
    code, out = _finish(_wn(duck.project, "run", "-e", EXPERIMENT, "-q"))
    assert code == 0, out
    assert killing.stray_stages(duck) == []


def test_lock_timeout_is_validated(demo_project: Path) -> None:
    _set_lock_timeout(demo_project, -1)
    code, out = _finish(_wn(demo_project, "run", "-e", EXPERIMENT))
    assert code == 2 and "Traceback" not in out
    assert "profiles.yml:" in out and "[outputs.dev.lock_timeout]" in out and "lock_timeout must be" in out


# -- PostgreSQL ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> killing.Warehouse:
    killing.skip_without_postgres("concurrency tests")
    wh = killing.make_warehouse("postgres", tmp_path_factory.mktemp("pg_concurrency"), 1500)
    try:
        yield wh
    finally:
        killing.drop_warehouse(wh)


def _adapter(wh: killing.Warehouse):
    from warehouse_native.project import load_target
    from warehouse_native.warehouse import connect

    return connect(load_target(wh.project))


@pytest.mark.postgres
def test_postgres_same_experiment_waits_other_experiment_runs_beside(pg: killing.Warehouse) -> None:
    with _adapter(pg) as holder:
        with holder.experiment_lock(EXPERIMENT):      # as if a run of EXPERIMENT were under way
            same = _wn(pg.project, "run", "-e", EXPERIMENT, "-q", target="pg")
            other = _wn(pg.project, "run", "-e", OTHER, "-q", target="pg")
            code, out = _finish(other)
            assert code == 0, out                     # ran beside it
            assert same.poll() is None, "a run of the same experiment did not wait"
            released = dt.datetime.now()
        code, out = _finish(same)
    assert code == 0, out
    assert _intervals(pg, EXPERIMENT)[-1][0] >= released


@pytest.mark.postgres
def test_postgres_lock_timeout_gives_a_clear_message(pg: killing.Warehouse) -> None:
    with _adapter(pg) as holder:
        pid = holder.fetch("select pg_backend_pid() as pid")[0]["pid"]
        with holder.experiment_lock(EXPERIMENT):
            code, out = _finish(_wn(pg.project, "run", "-e", EXPERIMENT, "-q", target="pg",
                                    env={"WN_LOCK_TIMEOUT": "1"}))
    assert code == 1 and "Traceback" not in out, out
    assert f"another run of experiment '{EXPERIMENT}' on schema wn is in progress (PostgreSQL backend pid {pid}" in out
    assert "gave up after waiting 1 s" in out and "previous results are unchanged" in out


@pytest.mark.postgres
def test_postgres_two_real_runs_of_one_experiment_take_turns(pg: killing.Warehouse) -> None:
    procs = [_wn(pg.project, "run", "-e", EXPERIMENT, "-q", *flags, target="pg")
             for flags in ((), ("--no-state",), ("--full-refresh",))]
    results = [_finish(p) for p in procs]
    assert [c for c, _ in results] == [0, 0, 0], results
    spans = _intervals(pg, EXPERIMENT)[-3:]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), f"runs of one experiment overlapped: {spans}"
    assert killing.stray_stages(pg) == []


@pytest.mark.postgres
def test_postgres_sweeps_only_stages_no_live_run_can_own(pg: killing.Warehouse) -> None:
    """A staging table is swept only when no other wn session is connected: it might be theirs."""
    with _adapter(pg) as live:                        # another wn session, e.g. a run in progress
        live.execute("create table wn.__wn_dead00_unit_metrics as select 1 as x")
        code, out = _finish(_wn(pg.project, "run", "-e", OTHER, "-q", target="pg"))
        assert code == 0, out
        assert killing.stray_stages(pg) == ["wn.__wn_dead00_unit_metrics"]
    code, out = _finish(_wn(pg.project, "run", "-e", OTHER, "-q", target="pg"))
    assert code == 0, out
    assert killing.stray_stages(pg) == []
