"""Shared by the page tests: the CLI in-process, a demo project with published runs, a time series."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import duckdb

from conftest import AS_OF, REPO, copy_project
from warehouse_native.cli.main import main

UPDATE_SCREENSHOTS = bool(os.environ.get("WN_UPDATE_SCREENSHOTS"))
SCREENSHOTS = REPO / "docs" / "img"


def cli(*args: str) -> int:
    """``wn ARGS`` in this process; the exit code."""
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def published_project(root: Path, seeded_db: Path, experiments=("button_color_v3", "show_new_homepage")) -> Path:
    """A copy of the demo project whose warehouse holds one successful run of each experiment."""
    db = root / "warehouse" / "demo.duckdb"
    db.parent.mkdir(parents=True)
    shutil.copy(seeded_db, db)
    project = copy_project(root / "project", db)
    for name in experiments:
        assert cli("run", "-e", name, "--as-of", AS_OF.isoformat(), "--quiet", "--project-dir", str(project)) == 0
    return project


def warehouse_path(project: Path) -> Path:
    return project.parent / "warehouse" / "demo.duckdb"


def fetch(project: Path, sql: str, params=()) -> list[dict]:
    with duckdb.connect(str(warehouse_path(project)), read_only=True) as con:
        cur = con.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def ensure_time_series(project: Path, experiment: str, days: int = 15, start: dt.date = dt.date(2026, 10, 15)) -> None:
    """Give the warehouse ``wn.scorecard_daily_latest`` rows for ``experiment`` (DESIGN: every
    scorecard column plus ``day``, overall rows only) unless wn's runs already wrote them: the
    latest result scaled so that each day's CI narrows as data accumulates."""
    with duckdb.connect(str(warehouse_path(project))) as con:
        have = con.execute("select count(*) from information_schema.tables where table_schema = 'wn' "
                           "and table_name = 'scorecard_daily_latest'").fetchone()[0]
        if have and con.execute("select count(*) from wn.scorecard_daily_latest where experiment = ?",
                                [experiment]).fetchone()[0]:
            return
        con.execute("drop view if exists wn.scorecard_daily_latest")
        con.execute("drop table if exists wn.scorecard_daily")
        con.execute(f"""
            create table wn.scorecard_daily as
            select s.* replace (s.rel_delta * (0.6 + 0.4 * k / {days - 1}) as rel_delta,
                                s.rel_delta * (0.6 + 0.4 * k / {days - 1}) - (s.rel_delta - s.rel_ci_lower) * sqrt({days} / (k + 1)) as rel_ci_lower,
                                s.rel_delta * (0.6 + 0.4 * k / {days - 1}) + (s.rel_ci_upper - s.rel_delta) * sqrt({days} / (k + 1)) as rel_ci_upper),
                   cast(date '{start.isoformat()}' + cast(k as integer) as date) as day
            from wn.scorecard_latest as s, range({days}) as t(k)
            where s.experiment = '{experiment}' and s.dimension is null""")
        con.execute("create view wn.scorecard_daily_latest as select * from wn.scorecard_daily")


def drop_time_series(project: Path) -> None:
    with duckdb.connect(str(warehouse_path(project))) as con:
        con.execute("drop view if exists wn.scorecard_daily_latest")


def keep_screenshot(shot: Path, name: str) -> None:
    """``WN_UPDATE_SCREENSHOTS=1 pytest ...`` refreshes the committed docs/img/<name>."""
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, SCREENSHOTS / name)
