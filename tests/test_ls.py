"""``wn ls``: experiments and their status on --as-of, as a table and as JSON for schedulers."""

from __future__ import annotations

import json
import re

import pytest

from conftest import REPO, copy_project
from pagekit import cli
from warehouse_native.cli.ls import experiment_entry
from warehouse_native.project import load_project


def ls_json(capsys, *args: str) -> list[dict]:
    capsys.readouterr()
    assert cli("ls", "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("as_of, statuses, active", [
    ("2026-10-10", {"button_color_v3": "not started", "show_new_homepage": "not started"}, set()),
    ("2026-10-15", {"button_color_v3": "running", "show_new_homepage": "not started"}, {"button_color_v3"}),
    ("2026-10-29", {"button_color_v3": "running", "show_new_homepage": "ended"},
     {"button_color_v3", "show_new_homepage"}),          # ended yesterday: still in `wn run --all`
    ("2026-10-31", {"button_color_v3": "ended", "show_new_homepage": "ended"}, {"button_color_v3"}),
    ("2026-11-05", {"button_color_v3": "ended", "show_new_homepage": "ended"}, set()),
])
def test_status_relative_to_as_of(capsys, tmp_path, as_of, statuses, active):
    root = copy_project(tmp_path / "p")
    entries = ls_json(capsys, "--project-dir", str(root), "--as-of", as_of)
    assert {e["name"]: e["status"] for e in entries} == statuses
    assert {e["name"] for e in entries if e["active"]} == active
    # --active lists exactly what `wn run --all` would run on that day
    project = load_project(root)
    import datetime as dt
    day = dt.date.fromisoformat(as_of)
    assert {e["name"] for e in ls_json(capsys, "--project-dir", str(root), "--as-of", as_of, "--active")} == \
        {n for n, e in project.experiments.items() if e.is_active(day, grace_days=2)}


def test_json_shape(capsys, tmp_path):
    root = copy_project(tmp_path / "p")
    [button, gate] = ls_json(capsys, "--project-dir", str(root), "--as-of", "2026-10-20")
    assert button == {
        "name": "button_color_v3", "status": "running", "active": True, "start": "2026-10-15", "end": "2026-10-29",
        "unit": "user_id", "kind": "ab", "owner": "growth-team",
        "variants": [{"name": "blue", "control": True, "weight": 0.25}, {"name": "red", "control": False, "weight": 0.25},
                     {"name": "green", "control": False, "weight": 0.25},
                     {"name": "orange", "control": False, "weight": 0.25}],
        "primary_metrics": ["visited_signup", "dau"],
        "hypothesis": "A red signup button makes more people visit the signup page"}
    assert gate["owner"] is None and gate["hypothesis"].startswith("Feature gate")
    assert [e["name"] for e in ls_json(capsys, "--project-dir", str(root), "--as-of", "2026-10-16",
                                        "--status", "not started")] == ["show_new_homepage"]


def test_open_ended_experiment_keeps_running(tmp_path):
    root = copy_project(tmp_path / "p")
    path = root / "experiments" / "button_color_v3.yml"
    path.write_text(re.sub(r"\n  end: .*", "", path.read_text()))
    import datetime as dt
    entry = experiment_entry(load_project(root).experiments["button_color_v3"], dt.date(2030, 1, 1), 2)
    assert (entry["status"], entry["active"], entry["end"]) == ("running", True, None)


def test_table_output(capsys, tmp_path):
    root = copy_project(tmp_path / "p")
    capsys.readouterr()
    assert cli("ls", "--project-dir", str(root), "--as-of", "2026-10-20") == 0
    out = capsys.readouterr().out
    assert "button_color_v3" in out and "running" in out and "blue (control)" in out


def test_readme_documents_every_json_key():
    readme = REPO.joinpath("README.md").read_text()
    section = readme[readme.index("### `wn ls --json`"):]
    section = section[:section.index("\n## ")]
    for key in ("name", "status", "active", "start", "end", "unit", "owner", "variants", "primary_metrics",
                "hypothesis"):
        assert f"`{key}`" in section, key
