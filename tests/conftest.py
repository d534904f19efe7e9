"""Shared fixtures: a copy of the demo project in a temp folder, seeded once per session."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from warehouse_native.demo import DemoConfig, generate_demo
from warehouse_native.project import load_project, load_target
from warehouse_native.warehouse import connect

REPO = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 11, 1)
SMALL_USERS = 6000


def copy_project(dest: Path, duckdb_path: Path | None = None) -> Path:
    """Copy profiles.yml, metrics/, experiments/, models/ of the repo into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for folder in ("metrics", "experiments", "models"):
        shutil.copytree(REPO / folder, dest / folder)
    text = (REPO / "profiles.yml").read_text()
    path = duckdb_path or dest / "warehouse" / "demo.duckdb"
    text = text.replace("{{ env_var('WN_DUCKDB_PATH', 'warehouse/demo.duckdb') }}", str(path))
    (dest / "profiles.yml").write_text(text)
    return dest


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file holding the demo raw tables (SMALL_USERS users), written once."""
    path = tmp_path_factory.mktemp("seed") / "seed.duckdb"
    project = copy_project(path.parent / "project", path)
    target = load_target(project)
    with connect(target) as adapter:
        for name, cols in generate_demo(DemoConfig(users=SMALL_USERS)).items():
            adapter.load_columns(name, cols)
    return path


@pytest.fixture()
def demo_project(tmp_path: Path, seeded_db: Path) -> Path:
    """A fresh copy of the demo project whose warehouse is a copy of the seeded database."""
    db = tmp_path / "warehouse" / "demo.duckdb"
    db.parent.mkdir(parents=True)
    shutil.copy(seeded_db, db)
    return copy_project(tmp_path / "project", db)


@pytest.fixture()
def project_and_target(demo_project: Path):
    return load_project(demo_project), load_target(demo_project)


# -- Spark: one local session per test process (a JVM is started once) --------------------------

SPARK_CONF = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


@pytest.fixture(scope="session")
def spark_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse folder of the test process's local Spark session (started here, once)."""
    import shutil as _shutil

    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip("SPARK TESTS SKIPPED: pyspark is not installed (pip install -e '.[dev]' installs it)")
    if not _shutil.which("java"):
        pytest.skip("SPARK TESTS SKIPPED: no `java` on PATH (Spark needs Java 17+)")
    from warehouse_native.warehouse.spark_adapter import session_from_settings

    folder = tmp_path_factory.mktemp("spark_warehouse")
    session_from_settings({"method": "session", "master": "local[2]", "warehouse_dir": str(folder),
                           "conf": SPARK_CONF})
    return folder


def spark_profiles(warehouse: Path, schema: str = "wn", duckdb_path: Path | None = None) -> str:
    """profiles.yml text with a spark target (the test session's warehouse) and a duckdb one."""
    duck = f"\n    duck: {{type: duckdb, path: '{duckdb_path}', schema: {schema}}}" if duckdb_path else ""
    return (f"wn_test:\n  target: spark\n  outputs:\n"
            f"    spark: {{type: spark, method: session, master: 'local[2]', warehouse_dir: '{warehouse}', "
            f"schema: {schema}}}{duck}\n")
