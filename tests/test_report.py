"""``wn report``: the demo report rendered in headless Chromium, its numbers against the warehouse."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chromium import browser_fixture, page_summary_js
from conftest import AS_OF, copy_project
from pagekit import cli, drop_time_series, ensure_time_series, fetch, keep_screenshot, published_project
from warehouse_native.present.report import build_summary, verdict
from test_postgres import pg_database, pg_server  # noqa: F401 - fixtures for the PostgreSQL test

browser = browser_fixture()
EXP = "button_color_v3"
MAX_BYTES = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def project(tmp_path_factory, seeded_db) -> Path:
    root = published_project(tmp_path_factory.mktemp("report"), seeded_db)
    ensure_time_series(root, EXP)
    return root


@pytest.fixture(scope="module")
def report(project) -> Path:
    assert cli("report", "-e", EXP, "--as-of", AS_OF.isoformat(), "--project-dir", str(project)) == 0
    path = project / "target" / "report" / f"{EXP}.html"
    assert path.exists() and path.stat().st_size < MAX_BYTES
    return path


@pytest.fixture(scope="module")
def page(browser, report):
    tab = browser.open(report.as_uri())
    yield tab
    tab.close()


DOM_ROWS = """(() => Array.from(document.querySelectorAll('tr[data-metric]')).map(tr => ({
    metric: tr.dataset.metric, variant: tr.dataset.variant, verdict: tr.dataset.verdict,
    dimension: tr.closest('section.slice') ? tr.closest('section.slice').dataset.dimension : null,
    value: tr.closest('section.slice') ? tr.closest('section.slice').dataset.dimensionValue : null,
    cells: Object.fromEntries(Array.from(tr.querySelectorAll('[data-col]')).map(td => [td.dataset.col,
        {text: td.textContent.trim(), value: td.dataset.value, lower: td.dataset.lower, upper: td.dataset.upper}]))
})))()"""


def _pct(text: str) -> float:
    return float(text.replace("%", "").replace("+", "")) / 100


def _close_to_shown(shown: str, value: float, decimals: int) -> bool:
    """The text shows ``value`` rounded to ``decimals``."""
    return abs(float(shown.replace(",", "")) - value) <= 0.5 * 10 ** -decimals + 1e-12


def _check_number(cell: dict, value: float | None, kind: str) -> None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        assert cell["text"] == "—" and cell["value"] == "", cell
        return
    assert float(cell["value"]) == pytest.approx(value, rel=1e-12, abs=1e-15), cell
    text = cell["text"]
    if kind == "pct":
        assert abs(_pct(text) - value) <= 0.00005 + 1e-12, (text, value)
    elif kind == "p":
        assert (value < 1e-4) if text == "<0.0001" else _close_to_shown(text, value, 4), (text, value)
    else:   # a mean: 4 decimals below 10, 2 below 1000, then whole numbers
        decimals = 4 if abs(value) < 10 else 2 if abs(value) < 1000 else 0
        assert _close_to_shown(text, value, decimals), (text, value)


def test_report_loads_offline_with_every_chart(browser, page, project, tmp_path):
    state = page.collect()
    assert state.console_errors == []
    # the network is cut and the page asked for nothing but itself
    assert all(u.startswith(("file:", "data:", "about:")) for u in state.requests), state.requests
    charts = page.evaluate(page_summary_js())
    metrics = {r["metric"] for r in fetch(project, "select distinct metric from wn.scorecard_latest "
                                                   "where experiment = ? and dimension is null", [EXP])}
    forests = [c for c in charts if "forest" in c["cls"]]
    assert {c["metric"] for c in forests} == metrics
    # one point per computable lift, in every metric's chart
    overall = fetch(project, "select metric, count(rel_delta) as n from wn.scorecard_latest where experiment = ? "
                             "and dimension is null group by metric", [EXP])
    assert {c["metric"]: c["points"] for c in forests} == {r["metric"]: r["n"] for r in overall}
    for c in charts:
        assert c["marks"] > 0, c
        if not c["hidden"]:
            assert c["width"] > 100 and c["height"] > 40, c
    assert any(c["cls"] == "chart" and c["points"] > 0 for c in charts)    # exposures per day
    primaries = {r["metric"] for r in fetch(project, "select distinct metric from wn.scorecard_latest "
                                                     "where experiment = ? and role = 'primary'", [EXP])}
    assert {c["metric"] for c in charts if "series" in c["cls"]} == primaries
    slices = {(r["dimension"], r["dimension_value"]) for r in fetch(
        project, "select distinct dimension, dimension_value from wn.scorecard_latest where experiment = ? "
                 "and dimension is not null", [EXP])}
    assert {c["slice"] for c in charts if "slice-chart" in c["cls"]} == {f"{d}={v}" for d, v in slices}
    shot = page.screenshot(tmp_path / "report.png", max_height=2000)   # the top: header to primaries
    assert shot.stat().st_size > 20_000
    keep_screenshot(shot, "report.png")


def test_report_numbers_equal_scorecard_latest(page, project):
    rows = fetch(project, "select * from wn.scorecard_latest where experiment = ?", [EXP])
    dom = {(r["metric"], r["variant"], r["dimension"], r["value"]): r for r in page.evaluate(DOM_ROWS)}
    assert len(dom) == len(rows)
    for row in rows:
        shown = dom[(row["metric"], row["variant"], row["dimension"], row["dimension_value"])]
        cells = shown["cells"]
        assert shown["verdict"] == verdict(row)
        _check_number(cells["control_mean"], row["control_mean"], "mean")
        _check_number(cells["variant_mean"], row["variant_mean"], "mean")
        if row["rel_delta"] is None:
            assert "reason" in cells
            continue
        _check_number(cells["rel_delta"], row["rel_delta"], "pct")
        _check_number(cells["p_value"], row["p_value"], "p")
        _check_number(cells["adjusted_p_value"], row["adjusted_p_value"], "p")
        adjusted = row["correction"] != "none"
        ci = cells["adjusted_rel_ci" if adjusted else "rel_ci"]
        lo, hi = (row["adjusted_rel_ci_lower"], row["adjusted_rel_ci_upper"]) if adjusted else \
            (row["rel_ci_lower"], row["rel_ci_upper"])
        assert (float(ci["lower"]), float(ci["upper"])) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
        shown_lo, shown_hi = re.findall(r"[+-]\d+\.\d+%", ci["text"])
        assert abs(_pct(shown_lo) - lo) <= 0.00005 + 1e-12 and abs(_pct(shown_hi) - hi) <= 0.00005 + 1e-12
        if row["guardrail_status"]:
            assert cells["guardrail_status"]["text"] == row["guardrail_status"]


def test_report_header_summary_and_health(page, project):
    text = page.evaluate("document.body.innerText")
    assert "A red signup button makes more people visit the signup page" in text
    assert page.evaluate("document.getElementById('owner').textContent") == "growth-team"
    assert page.evaluate("document.getElementById('dates').textContent") == "2026-10-15 → 2026-10-29"
    overall = fetch(project, "select * from wn.scorecard_latest where experiment = ? and dimension is null", [EXP])
    units = {r["variant"]: r["variant_units"] for r in overall} | {r["control_variant"]: r["control_units"] for r in overall}
    shown = page.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('#variants tr[data-variant]'))"
                          ".map(tr => [tr.dataset.variant, tr.querySelector('[data-col=units]').dataset.value]))")
    assert {v: int(float(n)) for v, n in shown.items()} == units
    # the summary row: the run's recorded decision, with the guardrail and health chips under it
    summary = page.evaluate("(() => { const s = document.getElementById('summary'); "
                            "return {kind: s.dataset.kind, text: s.innerText}; })()")
    decision = fetch(project, "select * from wn.decisions_latest where experiment = ?", [EXP])[0]
    assert decision["run_id"] == overall[0]["run_id"]
    assert summary["kind"] == "decision"
    assert summary["text"].startswith(f"Decision: {decision['headline']} — {decision['reason']}")
    for r in overall:
        if r["guardrail_status"] in ("fail", "warn"):
            assert f"{r['metric']} ({r['variant']})" in summary["text"]
    health = fetch(project, "select h.* from wn.health_checks as h join (select distinct run_id from "
                            "wn.scorecard_latest where experiment = ?) using (run_id) where dimension is null", [EXP])
    shown = page.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('table.health tr[data-check]'))"
                          ".map(tr => [tr.dataset.check, [tr.querySelector('.status').textContent, "
                          "tr.querySelectorAll('td')[2].dataset.value]]))")
    assert {h["check_name"]: (h["status"], pytest.approx(h["statistic"])) for h in health} == \
        {k: (s, float(v)) for k, (s, v) in shown.items()}


def test_slice_selector_shows_one_slice_at_a_time(page):
    keys = page.evaluate("Array.from(document.querySelectorAll('#slice-select option')).map(o => o.value)")
    # the demo's four largest countries and '(other)' (dimensions: [{name: country, top: 4, ...}])
    assert sorted(keys) == ["country=(other)", "country=BR", "country=GB", "country=IN", "country=US"]
    for key in keys:
        visible = page.evaluate(f"""(() => {{ const s = document.getElementById('slice-select');
            s.value = {json.dumps(key)}; s.dispatchEvent(new Event('change'));
            return Array.from(document.querySelectorAll('section.slice')).filter(e => !e.hidden)
                .map(e => [e.dataset.slice, e.querySelector('svg').getBoundingClientRect().height]); }})()""")
        assert len(visible) == 1 and visible[0][0] == key and visible[0][1] > 100


def test_report_without_time_series_says_so(browser, project, tmp_path):
    drop_time_series(project)
    try:
        out = tmp_path / "out"
        assert cli("report", "-e", EXP, "--as-of", AS_OF.isoformat(), "--project-dir", str(project),
                   "--out", str(out)) == 0
        tab = browser.open((out / f"{EXP}.html").as_uri())
        assert tab.collect().console_errors == []
        assert "No time series recorded yet" in tab.evaluate("document.getElementById('no-time-series').textContent")
        assert tab.evaluate("document.querySelectorAll('figure.series').length") == 0
        tab.close()
    finally:
        ensure_time_series(project, EXP)


def test_report_all_writes_one_page_per_published_experiment(project, tmp_path):
    assert cli("report", "--all", "--project-dir", str(project), "--out", str(tmp_path)) == 0
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["button_color_v3.html", "show_new_homepage.html"]
    text = (tmp_path / "show_new_homepage.html").read_text()
    assert "<script src" not in text and "http://" not in text.replace("http://www.w3.org/", "")


def _wn(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "warehouse_native.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"COLUMNS": "160", "PATH": ""})


@pytest.mark.parametrize("args, message, code", [
    (["report", "-e", "nope"], "no experiment named 'nope'", 2),
    (["report"], "--experiment NAME", 2),
    (["report", "-e", EXP, "--all"], "not both", 2),
    (["report", "-e", EXP], "and then `wn run --experiment NAME`", 4),
])
def test_report_errors_are_one_clear_message(tmp_path, args, message, code):
    root = copy_project(tmp_path / "p")
    out = _wn(*args, cwd=root)
    text = out.stdout + out.stderr
    assert out.returncode == code, text
    assert message in " ".join(text.split()) and "Traceback" not in text


def test_report_before_any_run_says_what_to_run(demo_project):
    out = _wn("report", "-e", EXP, cwd=demo_project)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 4 and "no wn.scorecard table" in text and f"run `wn run --experiment {EXP}` first" in text
    assert "Traceback" not in text


def test_cli_startup_does_not_import_the_page_libraries():
    code = ("import sys, warehouse_native.cli.main; "
            "print([m for m in ('altair', 'vl_convert', 'warehouse_native.present.report') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_summary_shows_a_decision_once_one_is_recorded():
    overall = [{"metric": "revenue", "variant": "red", "role": "guardrail", "guardrail_status": "fail",
                "significant": True, "rel_delta": -0.1, "direction": "increase"}]
    health = [{"check_name": "srm", "dimension": None, "status": "pass", "p_value": 0.5}]
    assert build_summary(None, overall, health).kind == "guardrails"
    decided = build_summary({"decision": "ship", "headline": "ship red", "reason": "red: better"}, overall, health)
    assert decided.kind == "decision" and decided.headline == "Decision: ship red — red: better"
    assert decided.status == "pass"
    assert build_summary({"decision": "investigate", "headline": "investigate"}, overall, health).status == "fail"
    # a failing check other than SRM gets its own chip, with its detail
    gaps = {"check_name": "exposure_gaps", "dimension": None, "status": "fail", "detail": "no new unit in red on 2026-10-20"}
    chips = {i.label: (i.status, i.detail) for i in build_summary(None, overall, health + [gaps]).items}
    assert chips["exposure gaps"] == ("fail", "no new unit in red on 2026-10-20")
    assert {i.label for i in decided.items} >= {"SRM", "guardrails fail"}


@pytest.mark.parametrize("row, expected", [
    ({"significant": True, "rel_delta": 0.1, "direction": "increase"}, "good"),
    ({"significant": True, "rel_delta": 0.1, "direction": "decrease"}, "bad"),
    ({"significant": True, "rel_delta": -0.1, "direction": "decrease"}, "good"),
    ({"significant": False, "rel_delta": 0.3, "direction": "increase"}, "neutral"),
    ({"significant": False, "rel_delta": -0.3, "guardrail_status": "warn"}, "warn"),
    ({"significant": True, "rel_delta": -0.3, "guardrail_status": "fail"}, "bad"),
    ({"significant": None, "rel_delta": None, "reason": "n < 2"}, "neutral"),
])
def test_verdict_colours_by_direction(row, expected):
    assert verdict(row) == expected


@pytest.mark.postgres
def test_report_reads_postgres_through_the_adapter(pg_database, tmp_path):
    """The same reads on PostgreSQL (placeholders, casts, views): the page model holds the
    published numbers and the exposures per day add up to the analysed units."""
    import dataclasses

    from test_postgres import HOST, PORT, USER
    from warehouse_native.demo import DemoConfig, generate_demo
    from warehouse_native.present.published import read_published
    from warehouse_native.present.report import build_report, write_report
    from warehouse_native.project import load_project, load_target
    from warehouse_native.runner import run_experiment
    from warehouse_native.warehouse import connect

    root = copy_project(tmp_path / "p", tmp_path / "w" / "demo.duckdb")
    project = load_project(root)
    pg = load_target(root, target="pg")
    pg = dataclasses.replace(pg, settings={**pg.settings, "host": HOST, "port": PORT, "user": USER, "password": "",
                                           "dbname": pg_database})
    with connect(pg) as adapter:
        for relation, columns in generate_demo(DemoConfig(users=2000)).items():
            adapter.load_columns(relation, columns)
        assert run_experiment(project, pg, adapter, EXP, as_of=AS_OF).status == "success"
        published = read_published(adapter, pg.schema, EXP, where=pg.describe())
        expected = adapter.fetch("select * from wn.scorecard_latest where experiment = %s", [EXP])
    page = build_report(published, project.experiments[EXP], as_of=AS_OF)
    shown = {(r.metric, r.variant, r.dimension, r.dimension_value): r.values for _, _, blocks in page.groups
             for b in blocks for r in b.rows}
    shown |= {(r.metric, r.variant, r.dimension, r.dimension_value): r.values for s in page.slices for r in s.rows}
    assert len(shown) == len(expected)
    for row in expected:
        values = shown[(row["metric"], row["variant"], row["dimension"], row["dimension_value"])]
        assert values["rel_delta"] == row["rel_delta"] and values["p_value"] == row["p_value"]
    per_variant: dict[str, int] = {}
    for r in published.exposures_per_day:
        per_variant[r["variant"]] = per_variant.get(r["variant"], 0) + int(r["units"])
    assert {v["name"]: per_variant[v["name"]] for v in page.variants} == {v["name"]: v["units"] for v in page.variants}
    assert page.series == [] and "No time series" in page.series_note
    assert write_report(page, tmp_path / "out").stat().st_size < MAX_BYTES
