"""``wn docs``: the catalog site rendered in headless Chromium, checked against the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chromium import browser_fixture
from conftest import AS_OF
from pagekit import cli, keep_screenshot, published_project
from warehouse_native.plan.builder import metric_roles
from warehouse_native.project import load_project

browser = browser_fixture()

EXTRA = """metrics:
  - name: refunds
    description: Refund requests per user (no experiment uses it yet)
    owner: support-team
    source: events
    type: count
    filter: "event_name = 'refund'"
    direction: decrease
    tags: [commerce]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, seeded_db) -> Path:
    project = published_project(tmp_path_factory.mktemp("docs"), seeded_db, experiments=("button_color_v3",))
    (project / "metrics" / "extra.yml").write_text(EXTRA)
    assert cli("report", "-e", "button_color_v3", "--project-dir", str(project)) == 0
    # the site never connects: it works with the warehouse gone
    (project.parent / "warehouse" / "demo.duckdb").rename(project.parent / "moved.duckdb")
    assert cli("docs", "--project-dir", str(project), "--as-of", AS_OF.isoformat()) == 0
    return project


@pytest.fixture(scope="module")
def page(browser, site):
    tab = browser.open((site / "target" / "docs" / "index.html").as_uri())
    yield tab
    tab.close()


ENTRIES = """(() => Array.from(document.querySelectorAll('.entry')).map(e => ({
    kind: e.dataset.kind, name: e.dataset.name, section: e.closest('section').id, text: e.innerText,
    sql: e.querySelector('pre.sql') ? e.querySelector('pre.sql').textContent : null,
    links: Array.from(e.querySelectorAll('a')).map(a => a.getAttribute('href'))})))()"""


def test_catalog_lists_everything_guardrails_first(page, site, tmp_path):
    state = page.collect()
    assert state.console_errors == []
    assert all(u.startswith(("file:", "data:", "about:")) for u in state.requests), state.requests
    project = load_project(site)
    entries = page.evaluate(ENTRIES)
    metrics = [e for e in entries if e["kind"] == "metric"]
    guardrails = [m.name for m in project.metrics.values() if m.is_guardrail]
    assert [e["name"] for e in metrics[:len(guardrails)]] == sorted(guardrails)      # guardrails first
    assert {e["section"] for e in metrics[:len(guardrails)]} == {"guardrails"}
    assert sorted(e["name"] for e in metrics) == sorted(project.metrics)
    assert sorted(e["name"] for e in entries if e["kind"] == "source") == sorted(project.sources)
    assert sorted(e["name"] for e in entries if e["kind"] == "experiment") == sorted(project.experiments)
    used = {m: [] for m in project.metrics}
    for name, experiment in project.experiments.items():
        for metric, role in metric_roles(project, experiment):
            used[metric.name].append((name, role))
    for e in metrics:
        m = project.metrics[e["name"]]
        assert m.type in e["text"] and f"{m.direction} is good" in e["text"]
        for value in (m.description, m.owner, m.filter, m.value, *m.tags):
            if value:
                assert value in e["text"], (m.name, value)
        for exp_name, role in used[m.name]:
            assert f"{exp_name} ({role})" in e["text"]
        # compiled SQL: the metric's own per-unit expressions, filter included
        assert e["sql"], m.name
        if m.type == "percentile":   # a statement of its own over the events, not per-unit columns
            assert f"-- {m.name}: the quantile, its share sums and outer interval" in e["sql"]
        else:
            assert f"-- {m.name}: per-unit columns" in e["sql"]
        if m.filter:
            assert m.filter.split("=")[1].strip() in e["sql"], e["sql"]
    assert "one-metric preview" in next(e["sql"] for e in metrics if e["name"] == "refunds")
    page.evaluate("document.querySelector('#metric-revenue details').open = true")   # show some SQL
    shot = page.screenshot(tmp_path / "catalog.png", max_height=1500)
    assert shot.stat().st_size > 20_000
    keep_screenshot(shot, "catalog.png")


def test_search_box_filters_entries(page):
    def search(text: str) -> list[str]:
        return page.evaluate(f"""(() => {{ const box = document.getElementById('search');
            box.value = {json.dumps(text)}; box.dispatchEvent(new Event('input'));
            return Array.from(document.querySelectorAll('.entry')).filter(e => !e.hidden).map(e => e.dataset.name); }})()""")

    # the metric, one whose description names it, the source it reads, the experiments using it
    assert search("revenue") == ["revenue", "avg_order_value", "events", "button_color_v3", "show_new_homepage"]
    assert search("guardrail") == ["api_success_rate", "revenue"]
    assert search("commerce-team") == ["revenue", "avg_order_value", "median_order_value"]
    assert search("refund decrease") == ["refunds"]
    assert search("no such thing") == []
    assert len(search("")) == page.evaluate("document.querySelectorAll('.entry').length")


def test_experiments_link_to_their_reports(browser, page, site):
    hrefs = page.evaluate("Object.fromEntries(Array.from(document.querySelectorAll('[data-kind=experiment]'))"
                          ".map(e => [e.dataset.name, e.querySelector('a.report-link') && "
                          "e.querySelector('a.report-link').getAttribute('href')]))")
    assert hrefs == {"button_color_v3": "../report/button_color_v3.html", "show_new_homepage": None}
    tab = browser.open(((site / "target" / "docs") / hrefs["button_color_v3"]).resolve().as_uri())
    assert tab.collect().console_errors == []
    assert tab.evaluate("document.getElementById('title').textContent") == "button_color_v3"
    tab.close()
