"""Start-up: which modules `wn --help`, `wn validate`, `wn compile` and the start of `wn run`
import (each in a fresh interpreter, listed by ``-X importtime`` and read from ``sys.modules``).

No timed assertion here: the wall times are measured by ``benchmarks/startup.py``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import click
import click.testing
import pytest

import warehouse_native.cli
from conftest import copy_project
from warehouse_native.cli.main import COMMANDS, LazyGroup, cli

# what a command that never touches the warehouse or the statistics must not import
DRIVERS = ("duckdb", "_duckdb", "psycopg", "pyspark", "py4j", "grpc", "pandas", "pyarrow")
STATS = ("scipy", "warehouse_native.stats", "warehouse_native.results")
PAGES = ("altair", "vl_convert", "warehouse_native.present.report", "warehouse_native.present.charts",
         "warehouse_native.present.catalog", "warehouse_native.present.published")
# the rich modules of tables, live displays and syntax highlighting (a console is fine for output)
RICH_HEAVY = ("rich.table", "rich.live", "rich.progress", "rich.status", "rich.syntax", "rich.traceback",
              "rich.pretty", "pygments")

# runs the wn entry point in a fresh interpreter (after `setup`, which may set `probe`), then
# prints the exit code and the modules it imported
_CHILD = """
import json, sys
probe = None
{setup}
sys.argv = ["wn"] + {args!r}
from warehouse_native.cli.main import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\n@@MODULES@@" + json.dumps({{"code": code, "modules": sorted(sys.modules), "probe": probe}}))
"""


class Child(NamedTuple):
    code: int
    modules: set[str]     # sys.modules after the command
    timed: set[str]       # the modules -X importtime listed
    stdout: str
    stderr: str
    probe: Any            # what `setup` recorded


def _wn(*args: str, cwd: Path, setup: str = "") -> Child:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", _CHILD.format(args=list(args), setup=setup)],
                         cwd=cwd, capture_output=True, text=True, timeout=300, env={"COLUMNS": "160", "PATH": ""})
    text, _, payload = out.stdout.rpartition("\n@@MODULES@@")
    assert payload, out.stderr[-3000:]
    data = json.loads(payload)
    timed = {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", out.stderr, re.M)}
    assert timed, "no -X importtime output"
    stderr = "\n".join(ln for ln in out.stderr.splitlines() if not ln.startswith("import time:"))
    return Child(data["code"], set(data["modules"]), timed, text, stderr, data["probe"])


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "p")


def test_help_imports_no_command_module(project: Path):
    code, modules, timed, text, _, _ = _wn("--help", cwd=project)
    assert code == 0
    for name in COMMANDS:
        assert re.search(rf"^  {name} +\S", text, re.M), name
    commands = [f"warehouse_native.cli.{module}" for module, _ in COMMANDS.values()]
    for found in (modules, timed):
        assert not _loaded(found, tuple(commands) + DRIVERS + STATS + PAGES + ("rich", "pydantic", "sqlglot",
                                                                               "jinja2", "yaml", "numpy")), found
        assert not _loaded(found, ("warehouse_native.project", "warehouse_native.warehouse",
                                   "warehouse_native.runner"))


def test_validate_imports_only_the_project_loader(project: Path):
    code, modules, timed, text, _, _ = _wn("validate", cwd=project)
    assert code == 0 and "project is valid" in text
    assert "warehouse_native.project.loader" in modules and "warehouse_native.project.loader" in timed
    for found in (modules, timed):
        assert not _loaded(found, DRIVERS + STATS + PAGES + RICH_HEAVY + ("numpy",))
        assert not _loaded(found, ("warehouse_native.warehouse", "warehouse_native.runner", "warehouse_native.plan",
                                   "warehouse_native.sql", "warehouse_native.demo"))


def test_validate_with_problems_imports_no_more(project: Path):
    (project / "experiments" / "broken.yml").write_text("experiment:\n  name: broken\n  unknown_key: 1\n")
    code, modules, *_ = _wn("validate", cwd=project)
    assert code == 2
    assert not _loaded(modules, DRIVERS + STATS + PAGES + RICH_HEAVY + ("numpy", "warehouse_native.runner"))


def test_compile_imports_no_driver_and_no_statistics(project: Path):
    code, modules, timed, *_ = _wn("compile", "--dialect", "all", cwd=project)
    assert code == 0
    assert list((project / "target" / "compiled" / "button_color_v3" / "duckdb").glob("*.sql"))
    assert "warehouse_native.runner" in modules
    for found in (modules, timed):
        assert not _loaded(found, DRIVERS + STATS + PAGES + RICH_HEAVY + ("numpy",)), _loaded(found, DRIVERS + STATS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_imports_no_driver_and_no_statistics(project: Path, command: str):
    code, modules, _, text, _, _ = _wn(command, "--help", cwd=project)
    assert code == 0 and f"Usage: wn {command}" in text
    assert f"warehouse_native.cli.{COMMANDS[command][0]}" in modules
    assert not _loaded(modules, DRIVERS + STATS + PAGES + ("numpy", "warehouse_native.runner"))


def test_run_connects_before_it_imports_the_statistics(tmp_path: Path):
    """The statistics (scipy) and numpy are imported after the run's first SQL statement, not at start-up."""
    project = copy_project(tmp_path / "p")   # an empty warehouse: the run fails at its first scan
    setup = ("from warehouse_native.warehouse.duckdb_adapter import DuckDBAdapter\n"
             "execute = DuckDBAdapter.execute\n"
             "def first(self, *a, **k):\n"
             "    global probe\n"
             "    probe = probe or sorted(sys.modules)\n"
             "    return execute(self, *a, **k)\n"
             "DuckDBAdapter.execute = first\n")
    run = _wn("run", "-e", "button_color_v3", "--as-of", "2026-11-01", cwd=project, setup=setup)
    assert run.code == 1, run.stdout + run.stderr   # no raw tables: the run fails, as it should
    assert run.probe is not None
    assert not _loaded(set(run.probe), STATS + PAGES + ("numpy", "pyspark", "psycopg"))


def test_driver_errors_are_recognised_without_importing_the_driver(tmp_path: Path):
    setup = ("import warehouse_native.cli.main as m\n"
             "Err = type('UndefinedTable', (Exception,), {'__module__': 'psycopg.errors'})\n"
             "def fail(*a, **k):\n"
             "    raise Err('relation \"raw.events\" does not exist')\n"
             "m.cli.main = fail\n")
    out = _wn("validate", cwd=tmp_path, setup=setup)
    assert out.code == 4, out.stdout + out.stderr
    assert 'error: relation "raw.events" does not exist' in out.stderr and "internal error" not in out.stderr
    assert not _loaded(out.modules, DRIVERS)


# -- the lazy command table agrees with the commands themselves ---------------------------------

def test_command_table_lists_every_command_module():
    modules = {m.name for m in pkgutil.iter_modules(warehouse_native.cli.__path__)}
    with_command = {m for m in modules
                    if isinstance(getattr(importlib.import_module(f"warehouse_native.cli.{m}"), "command", None),
                                  click.Command)}
    assert with_command == {module for module, _ in COMMANDS.values()}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_table_help_is_the_commands_help(name: str):
    module, line = COMMANDS[name]
    command = importlib.import_module(f"warehouse_native.cli.{module}").command
    assert command.name == name
    assert " ".join(command.help.partition("\n\n")[0].split()) == line
    for limit in (30, 45, 60, 94, 200):
        assert click.Command(name, help=line).get_short_help_str(limit) == command.get_short_help_str(limit)


def test_group_help_is_the_same_before_and_after_the_commands_are_imported():
    fresh = LazyGroup("wn", lazy_commands=COMMANDS, callback=cli.callback, params=cli.params,
                      help=cli.help, context_settings=cli.context_settings)
    before = click.testing.CliRunner().invoke(fresh, ["--help"], prog_name="wn", terminal_width=100).output
    assert not dict.keys(fresh.commands)   # nothing imported to print the list
    for name in COMMANDS:
        assert fresh.commands[name] is cli.commands[name]   # click's mapping still works, loading on demand
    after = click.testing.CliRunner().invoke(fresh, ["--help"], prog_name="wn", terminal_width=100).output
    assert before == after and "Commands:" in before
    assert fresh.get_command(click.Context(fresh), "nope") is None
