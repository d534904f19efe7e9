"""The CLI end to end in a subprocess: real exit codes, readable output, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_project


def wn(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "warehouse_native.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={"COLUMNS": "160", "PATH": ""})


def test_seed_run_show_compile(tmp_path: Path):
    root = copy_project(tmp_path / "p")
    seed = wn("seed", "--users", "2000", cwd=root)
    assert seed.returncode == 0, seed.stderr
    assert "raw.events" in seed.stdout
    run = wn("run", "--experiment", "button_color_v3", "--as-of", "2026-11-01", cwd=root)
    assert run.returncode == 0, run.stderr
    assert "SRM" in run.stdout and "visited_signup" in run.stdout and "revenue" in run.stdout
    # an incremental run (the default) writes what its publish runs too: the view and the state updates
    compiled = root / "target" / "compiled" / "button_color_v3" / "duckdb"
    view = next(compiled.glob("*_publish_unit_metrics_view.sql")).read_text()
    assert "state__button_color_v3__base__events" in view and "published as unit_metrics__button_color_v3" in view
    assert list(compiled.glob("*_publish_state.sql"))
    show = wn("show", "--experiment", "button_color_v3", "--slices", "--as-of", "2026-11-01", cwd=root)
    assert show.returncode == 0, show.stderr
    assert "country = US" in show.stdout
    # both print the decision the run recorded
    import duckdb

    with duckdb.connect(str(root / "warehouse" / "demo.duckdb"), read_only=True) as db:
        headline = db.execute("select headline from wn.decisions_latest where experiment = 'button_color_v3'").fetchone()[0]
    assert headline and f"decision: {headline} —" in run.stdout and f"decision: {headline} —" in show.stdout
    comp = wn("compile", "--experiment", "button_color_v3", "--dialect", "all", cwd=root)
    assert comp.returncode == 0, comp.stderr
    for dialect in ("duckdb", "postgres", "spark", "snowflake", "bigquery"):
        files = sorted(p.name for p in (root / "target" / "compiled" / "button_color_v3" / dialect).glob("*.sql"))
        # the events model, the run's statements (DuckDB: one), the published unit_metrics view
        assert files[0] == "01_model_stg_events.sql" and files[-1].endswith("_publish_unit_metrics_view.sql"), dialect
        assert len(files) == (3 if dialect == "duckdb" else 5), (dialect, files)
    assert (root / "target" / "run_results.json").exists()
    allrun = wn("run", "--all", "--as-of", "2026-10-20", "--quiet", cwd=root)
    assert allrun.returncode == 0, allrun.stderr
    assert "button_color_v3" in allrun.stdout and "show_new_homepage" in allrun.stdout


@pytest.mark.parametrize("args, message, code", [
    (["run", "--experiment", "nope"], "no experiment named 'nope'", 2),
    (["run"], "--experiment NAME", 2),
    (["run", "--experiment", "button_color_v3", "--target", "prod"], "has no target 'prod'", 2),
    (["run", "--experiment", "button_color_v3", "--as-of", "2026-02-30"], "is not a date", 2),
    (["run", "--experiment", "button_color_v3", "--as-of", "2026-10-01"], "nothing to analyse yet", 1),
    (["show", "--experiment", "button_color_v3"], "then `wn run --experiment NAME`", 4),
])
def test_user_errors_are_one_clear_message(tmp_path: Path, args, message, code):
    root = copy_project(tmp_path / "p")
    out = wn(*args, cwd=root)
    text = out.stdout + out.stderr
    assert out.returncode == code, text
    assert message in " ".join(text.split())
    assert "Traceback" not in text


def test_missing_raw_tables_explain_the_fix(tmp_path: Path):
    root = copy_project(tmp_path / "p")
    out = wn("run", "--experiment", "button_color_v3", cwd=root)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 1
    assert "raw.exposures" in text.lower() or "raw" in text
    assert "wn seed" in text and "Traceback" not in text


@pytest.mark.parametrize("old, new, message, target", [
    ("threads: 2", "threads: two", "threads must be a positive whole number", "dev"),
    ("memory_limit: 4GB", "memory_limit: lots", "memory_limit 'lots' is not a size", "dev"),
    ("method: session ", "method: sesion ", "unknown spark method 'sesion'", "spark"),
    ("warehouse_dir: warehouse/spark", "warehous_dir: warehouse/spark",
     "'warehous_dir' is not a setting of a spark target", "spark"),
    ("warehouse_dir: warehouse/spark", "warehouse_dir: warehouse/spark\n      metastore: glue",
     "metastore must be derby or none", "spark"),
    ("url: \"{{ env_var('WN_SPARK_URL', 'sc://localhost:15002') }}\"", "url: localhost:15002",
     "method: connect needs url: sc://host:port", "spark_connect"),
    ("conf: {spark.sql.shuffle.partitions: 4}", "conf: 4", "conf must map Spark settings to values", "spark"),
])
def test_profile_typos_are_located(tmp_path: Path, old, new, message, target):
    root = copy_project(tmp_path / "p")
    profiles = root / "profiles.yml"
    assert old in profiles.read_text()
    profiles.write_text(profiles.read_text().replace(old, new))
    out = wn("run", "--experiment", "button_color_v3", "--target", target, cwd=root)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 2 and message in text and "profiles.yml:" in text
    assert "internal error" not in text
