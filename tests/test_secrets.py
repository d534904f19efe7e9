"""A password planted through env_var never shows: not in any command's output (errors and
``--debug`` included), not in any file wn writes (``target/``), not in any table of the
warehouse (``wn.runs`` with its error rows included).  A password written in profiles.yml
itself is refused, without showing it.

PostgreSQL with trust authentication accepts and ignores the password, so the planted one
travels the whole way: profile -> adapter -> server.  Skips loudly without the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import killing
from conftest import REPO

SECRET = f"S3cr3t-{uuid.uuid4().hex}"
TOKEN = f"T0ken-{uuid.uuid4().hex}"


def _wn(project: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "WN_TEST_PASSWORD": SECRET, "WN_TEST_TOKEN": TOKEN, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "warehouse_native.cli.main", *args, "--project-dir", str(project),
                           "--as-of", "2026-11-01"], capture_output=True, cwd=str(REPO), env=env, timeout=300)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> killing.Warehouse:
    killing.skip_without_postgres("secret tests")
    wh = killing.make_warehouse("postgres", tmp_path_factory.mktemp("secrets"), 1500)
    password = "password: \"{{ env_var('WN_TEST_PASSWORD') }}\""
    (wh.project / "profiles.yml").write_text(
        "wn_secret:\n  target: pg\n  outputs:\n"
        f"    pg: {{type: postgres, host: 127.0.0.1, port: 5432, user: postgres, {password}, dbname: {wh.db}, schema: wn}}\n"
        f"    down: {{type: postgres, host: 127.0.0.1, port: 1, user: postgres, {password}, dbname: {wh.db}, schema: wn}}\n"
        "    connect: {type: spark, method: connect, url: \"sc://127.0.0.1:15002/;token={{ env_var('WN_TEST_TOKEN') }}\", "
        "schema: wn}\n")
    try:
        yield wh
    finally:
        killing.drop_warehouse(wh)


@pytest.mark.postgres
def test_a_planted_password_appears_nowhere(pg: killing.Warehouse) -> None:
    project = pg.project
    # a second experiment that fails in the warehouse: its error goes to wn.runs and the output
    (project / "metrics" / "ghost.yml").write_text(
        "sources:\n  - name: ghost\n    table: raw.ghost\n    timestamp: ts\n    units: {user_id: user_id}\n"
        "    experiment_column: experiment\n    variant_column: group_name\n")
    path = project / "experiments" / "show_new_homepage.yml"
    path.write_text(path.read_text().replace("source: exposures", "source: ghost").replace("dimensions: [country, device]", ""))
    outputs = []
    for args, code in [(("validate",), 0), (("ls",), 0), (("compile", "-t", "pg", "--dialect", "all"), 0),
                       (("compile", "-t", "connect"), 0),
                       (("run", "-e", "button_color_v3", "-e", "show_new_homepage", "-t", "pg", "--debug"), 1),
                       (("run", "-e", "button_color_v3", "-t", "down", "--debug"), 4),
                       (("show", "-e", "button_color_v3", "-t", "pg"), 0),
                       (("power", "--metric", "dau", "--mde", "0.05", "-t", "pg"), 0),
                       (("docs",), 0)]:
        got, out = _wn(project, *args)
        assert got == code, f"wn {' '.join(args)}: exit {got}\n{out}"
        outputs.append(out)
    text = "\n".join(outputs)
    assert "relation \"raw.ghost\" does not exist" in text and "cannot connect to PostgreSQL" in text
    assert SECRET not in text and TOKEN not in text
    files = [p for p in project.rglob("*") if p.is_file() and p.name != "profiles.yml"]
    assert any(p.name == "run_results.json" for p in files) and any(p.suffix == ".sql" for p in files)
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes() or TOKEN.encode() in p.read_bytes()]
    assert not leaks, f"the secret is in {leaks}"
    runs = pg.rows("select status, error, target from wn.runs")
    assert {r["status"] for r in runs} == {"success", "error"}
    tables = [r["table_name"] for r in pg.rows(
        "select table_name from information_schema.tables where table_schema = 'wn' and table_type = 'BASE TABLE'")]
    for table in tables:
        hit = pg.rows(f"select count(*) as n from wn.\"{table}\" as t where t::text like '%{SECRET}%'")
        assert hit == [{"n": 0}], f"the secret is in wn.{table}"


def test_a_password_written_in_the_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    import shutil

    for folder in ("metrics", "experiments", "models"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    (tmp_path / "profiles.yml").write_text(
        "p:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      password: hunter2-literal\n"
        "      dbname: x\n    sc:\n      type: spark\n      method: connect\n"
        "      url: 'sc://h:443/;token=dapi-literal;x-databricks-cluster-id=1'\n")
    for target, field in (("pg", "[outputs.pg.password]"), ("sc", "[outputs.sc.url]")):
        code, out = _wn(tmp_path, "run", "-e", "button_color_v3", "-t", target)
        assert code == 2, out
        assert f"profiles.yml:{6 if target == 'pg' else 11} {field}" in " ".join(out.split())
        assert "secrets come only from the environment" in out and "env_var(" in out
        assert "hunter2-literal" not in out and "dapi-literal" not in out


def test_messages_never_show_a_registered_secret() -> None:
    """A driver that echoes the password in an error (some do, for a bad connection string) still
    does not show it: every message wn renders is redacted."""
    from warehouse_native.errors import Problem, ProjectError, WarehouseError, register_secret

    secret = f"pw-{uuid.uuid4().hex}"
    register_secret(secret)
    err = WarehouseError(f"cannot connect: password={secret} rejected", hint=f"check {secret}")
    assert secret not in err.render() and secret not in str(err) and "password=**** rejected" in err.render()
    assert secret not in ProjectError(Problem(f"bad {secret}", "profiles.yml", 3)).render()
