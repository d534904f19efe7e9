"""`wn validate` reports every planted mistake with file:line and a fix, without a warehouse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import copy_project
from warehouse_native.cli.main import cli
from warehouse_native.errors import ProjectError
from warehouse_native.project import load_project


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.fixture()
def broken_project(tmp_path: Path) -> Path:
    """The demo project with five different mistakes planted in three files."""
    root = copy_project(tmp_path / "p", tmp_path / "never_created.duckdb")
    eng = root / "metrics" / "engagement.yml"
    text = eng.read_text()
    # 1. an injection attempt in a filter
    text = text.replace("filter: \"event_name = 'signup_success'\"",
                        "filter: \"1=1; DROP TABLE raw.events\"", 1)   # the signups metric only
    # 2. an unknown metric type
    text = text.replace("type: active_days", "type: active_dayz")
    # 3. an unknown source
    text = text.replace("  - name: page_views\n    source: events", "  - name: page_views\n    source: evnts")
    eng.write_text(text)
    exp = root / "experiments" / "button_color_v3.yml"
    text = exp.read_text()
    # 4. weights that do not sum to 1
    text = text.replace("{name: orange, weight: 0.25}", "{name: orange, weight: 0.35}")
    # 5. a bad date
    text = text.replace("end: 2026-10-29", "end: 2026-13-45")
    exp.write_text(text)
    # 6. a duplicate metric name in another file
    com = root / "metrics" / "commerce.yml"
    com.write_text(com.read_text() + "\n  - name: revenue\n    source: events\n    type: count\n")
    return root


def test_load_project_reports_every_problem(broken_project: Path):
    with pytest.raises(ProjectError) as info:
        load_project(broken_project)
    problems = info.value.problems
    eng = broken_project / "metrics" / "engagement.yml"
    exp = broken_project / "experiments" / "button_color_v3.yml"
    com = broken_project / "metrics" / "commerce.yml"

    def find(fragment: str):
        hits = [p for p in problems if fragment in p.message]
        assert hits, f"no problem mentions {fragment!r}: {[p.message for p in problems]}"
        return hits[0]

    p = find("contains ';'")
    assert (p.file, p.line, p.field) == ("metrics/engagement.yml", _line_of(eng, "DROP TABLE"), "filter")
    p = find("active_dayz")
    assert (p.file, p.line) == ("metrics/engagement.yml", _line_of(eng, "active_dayz"))
    assert p.field == "metrics.1.type"
    p = find("source 'evnts' is not defined")
    assert p.line == _line_of(eng, "source: evnts") and "did you mean 'events'" in (p.hint or "")
    p = find("weights sum to 1.1")
    assert p.file == "experiments/button_color_v3.yml" and p.line == _line_of(exp, "variants:")
    p = find("is not a date")
    assert p.line == _line_of(exp, "end: 2026-13-45") and p.field == "experiment.end"
    p = find("duplicate metric name 'revenue'")
    assert p.file == "metrics/commerce.yml" and p.line == len(com.read_text().splitlines()) - 2
    assert all(p.hint or "did you mean" in p.message or p.message for p in problems)


def test_validate_cli_lists_all_and_exits_nonzero_without_touching_warehouse(broken_project: Path, tmp_path):
    result = CliRunner().invoke(cli, ["validate", "--project-dir", str(broken_project)])
    assert result.exit_code == 2
    out = result.output
    assert "6 problems found" in out
    locations = re.findall(r"(metrics/\w+\.yml|experiments/\w+\.yml):(\d+)", out)
    assert len(locations) >= 6
    assert "Traceback" not in out
    assert not (tmp_path / "never_created.duckdb").exists()


@pytest.mark.parametrize("expr, fragment", [
    ("1=1; DROP TABLE raw.events", "contains ';'"),
    ("(select max(value) from raw.events) > 0", "subquery"),
    ("sum(value) > 3", "aggregate"),
    ("value * 2", "not a boolean condition"),
    ("event_nam = 'x'", "unknown column 'event_nam'"),
    ("drop table raw.events", "not a boolean condition"),
])
def test_filter_must_be_one_row_level_condition(tmp_path: Path, expr: str, fragment: str):
    root = copy_project(tmp_path / "p")
    eng = root / "metrics" / "engagement.yml"
    eng.write_text(eng.read_text().replace("\"event_name = 'visited_signup'\"", '"' + expr.replace('"', '\\"') + '"'))
    with pytest.raises(ProjectError) as info:
        load_project(root)
    messages = " | ".join(p.message for p in info.value.problems)
    assert fragment in messages


def test_valid_demo_project_passes():
    from conftest import REPO

    project = load_project(REPO)
    assert "button_color_v3" in project.experiments
    assert {m.name for m in project.guardrails_for("user_id")} == {"revenue", "api_success_rate"}


def test_yaml_syntax_error_names_line(tmp_path: Path):
    root = copy_project(tmp_path / "p")
    exp = root / "experiments" / "button_color_v3.yml"
    exp.write_text(exp.read_text().replace("  unit: user_id", "  unit: [user_id"))
    with pytest.raises(ProjectError) as info:
        load_project(root)
    p = info.value.problems[0]
    assert p.file == "experiments/button_color_v3.yml" and "YAML syntax error" in p.message and p.line
