"""Holdout experiments (kind: holdout): the reading rule on hand-made scorecards, its statistics,
its validation errors, and end to end on DuckDB over the demo data.

The end-to-end holdouts reinterpret the demo's assignment logs: in ``show_new_homepage`` the
20% "on" group (more page views, story.py) becomes the holdout, so the 80% "off" group is worse
on page_views; in ``button_color_v3`` blue is the holdout and orange lowers revenue.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from conftest import AS_OF
from warehouse_native.decision import Rule, decide
from warehouse_native.errors import ProjectError
from warehouse_native.plan import build_plan
from warehouse_native.present.report import build_summary
from warehouse_native.project import load_project
from warehouse_native.runner import run_experiment
from warehouse_native.stats import (Moments, adjust_p_values, beyond_margin, final_regressions, holdout_status,
                                    interim_regression, sequential_compare)
from warehouse_native.warehouse import connect

SRM_OK = [{"check_name": "srm", "dimension": None, "status": "pass", "detail": "units: h=50, f=950"}]


def row(variant, metric, status, *, role="secondary", rel=-0.01, mde=0.05, dimension=None, significant=False):
    return {"variant": variant, "metric": metric, "role": role, "direction": "increase", "dimension": dimension,
            "abs_delta": rel, "rel_delta": rel, "significant": significant, "guardrail_status": status, "mde_80": mde}


def read(rows, *, health=SRM_OK, days=30, ended=False, treatments=("features",), rule=None):
    return decide(rule or Rule(kind="holdout"), rows, health, treatments=list(treatments), primaries=["dau"],
                  days_run=days, ended=ended)


# -- the rule on hand-made scorecards -------------------------------------------------------

def test_no_regression_while_running_and_after_the_end():
    rows = [row("features", "dau", "pass", role="primary", rel=0.02, significant=True, mde=0.03),
            row("features", "revenue", "warn", role="guardrail", rel=-0.004, mde=0.08)]
    d = read(rows)
    # a significantly better primary does not ship a holdout: it never ships
    assert (d.decision, d.variant, d.headline) == ("no regression", None, "holdout: no regression")
    assert "interim reading" in d.reason and "not established: revenue" in d.reason
    assert d.mde_now == 0.08 and "regressions of 8.0% would show" in d.reason
    final = read(rows, ended=True)
    assert (final.decision, final.headline) == ("no regression", "holdout ended: no regression")
    assert "final reading at the planned end" in final.reason


def test_a_regression_names_the_metrics_and_their_lifts():
    rows = [row("features", "dau", "pass", role="primary"),
            row("features", "revenue", "fail", role="guardrail", rel=-0.031),
            row("features", "sessions", "fail", rel=-0.012),
            row("features", "dau", "fail", role="primary", dimension="country")]   # a slice: not read
    d = read(rows)
    assert (d.decision, d.headline) == ("regression", "holdout: regression on revenue, sessions")
    assert "features: revenue -3.1%, sessions -1.2%" in d.reason
    assert [(r.variant, r.regressed) for r in d.readings] == [("features", ("revenue", "sessions"))]
    assert read(rows, ended=True).headline == "holdout ended: regression on revenue, sessions"


def test_several_treatments_are_read_each_against_the_holdout():
    rows = [row("red", "revenue", "pass"), row("orange", "revenue", "fail", rel=-0.25),
            row("red", "dau", "fail"), row("orange", "dau", "fail")]
    d = read(rows, treatments=("red", "orange"))
    assert d.headline == "holdout: regression on dau (red, orange), revenue (orange)"   # in the order the treatments name them
    assert "orange: revenue -25.0%, dau -1.0%" in d.reason and "red: dau -1.0%" in d.reason


def test_a_failing_health_check_means_investigate():
    rows = [row("features", "revenue", "fail", rel=-0.2)]
    srm = [{"check_name": "srm", "dimension": None, "status": "fail", "detail": "units: h=80, f=920"}]
    d = read(rows, health=srm)
    assert (d.decision, d.headline) == ("investigate", "holdout: investigate")
    assert "h=80" in d.reason
    assert read(rows, health=srm, ended=True).headline == "holdout ended: investigate"


def test_min_days_applies_before_the_end_only():
    rows = [row("features", "revenue", "fail", rel=-0.2)]
    d = read(rows, days=3, rule=Rule(kind="holdout", min_days=7))
    assert (d.decision, d.more_days, d.headline) == ("keep running", 4, "holdout: keep running (needs 4 more days)")
    assert read(rows, days=3, ended=True, rule=Rule(kind="holdout", min_days=7)).decision == "regression"


def test_the_recorded_rule_holds_the_settings_of_its_kind():
    assert Rule(kind="holdout", min_days=3, max_regression=0.01).settings() == \
        {"kind": "holdout", "min_days": 3, "max_regression": 0.01}
    assert Rule(min_days=3, mde=0.05).settings() == {"min_days": 3, "mde": 0.05, "ship_when": "all_primary"}
    with pytest.raises(ValueError, match="ab or holdout"):
        Rule(kind="gate")
    with pytest.raises(ValueError, match="max_regression"):
        Rule(kind="holdout", max_regression=1.5)


def test_the_report_summary_colours_a_holdout_decision():
    rows = [row("features", "page_views", "fail", role="primary", rel=-0.08)]
    decision = {"decision": "regression", "headline": "holdout: regression on page_views", "reason": "why"}
    s = build_summary(decision, rows, SRM_OK)
    assert (s.kind, s.status) == ("decision", "fail")
    assert s.headline == "Decision: holdout: regression on page_views — why"
    assert [(i.label, i.detail) for i in s.items if i.label.startswith("regressions")] == \
        [("regressions fail", "page_views (features)")]
    assert build_summary({"decision": "no regression", "headline": "holdout: no regression"}, [], SRM_OK).status == "pass"


# -- the statistics ----------------------------------------------------------------------

def test_beyond_margin_in_both_directions():
    assert beyond_margin(-0.05, -0.011, direction="increase", margin=0.01) is True
    assert beyond_margin(-0.05, -0.009, direction="increase", margin=0.01) is False   # within the margin
    assert beyond_margin(0.011, 0.05, direction="decrease", margin=0.01) is True
    assert beyond_margin(-0.01, 0.05, direction="decrease", margin=0.0) is False
    assert beyond_margin(None, 0.1, direction="increase", margin=0.0) is None


def _arms(shift: float, n: int = 4000):
    import numpy as np

    rng = np.random.default_rng(11)
    control = Moments.from_values(rng.normal(10.0, 2.0, n))
    treat = Moments.from_values(rng.normal(10.0 * (1 + shift), 2.0, n))
    return control, treat


def test_interim_reading_is_the_always_valid_interval_at_a_bonferroni_level():
    control, treat = _arms(-0.02)
    for family in (1, 12):
        s = sequential_compare(control, treat, confidence=1 - 0.05 / family)
        assert interim_regression(control, treat, direction="increase", margin=0.0, confidence=0.95,
                                  family=family) is (s.rel_ci_upper < 0)
    # -2% on 4000 units per arm: the always-valid interval excludes 0 alone, not within 12 readings?
    alone = sequential_compare(control, treat, confidence=0.95)
    wide = sequential_compare(control, treat, confidence=1 - 0.05 / 12)
    assert wide.rel_ci_upper > alone.rel_ci_upper   # the Bonferroni level widens the interval
    assert interim_regression(control, treat, direction="increase", margin=0.0, confidence=0.95, family=1) is True
    # a margin larger than the effect is never established as a regression
    assert interim_regression(control, treat, direction="increase", margin=0.05, confidence=0.95, family=1) is False
    # better, not worse: no regression
    control, better = _arms(+0.02)
    assert interim_regression(control, better, direction="increase", margin=0.0, confidence=0.95, family=1) is False


def test_final_reading_corrects_the_one_sided_p_values():
    ps = [0.01, 0.02, 0.04, None]
    # holm: 3 x 0.01 = 0.03, max(0.03, 2 x 0.02) = 0.04, max(0.04, 1 x 0.04) = 0.04 -> all below 0.05
    assert final_regressions(ps, correction="holm", confidence=0.95) == [True, True, True, None]
    # bonferroni: 0.03, 0.06, 0.12
    assert final_regressions(ps, correction="bonferroni", confidence=0.95) == [True, False, False, None]
    assert final_regressions([0.04], correction="none", confidence=0.95) == [True]


def test_status_of_a_row_from_the_guardrail_test_and_the_reading():
    assert holdout_status("fail", True) == "fail"
    assert holdout_status("fail", False) == "warn"    # raw p below alpha, not established by the reading
    assert holdout_status("warn", None) == "warn"
    assert holdout_status("pass", False) == "pass"
    assert holdout_status("unknown", None) == "unknown"


# -- validation ------------------------------------------------------------------------------

HOLDOUT = """experiment:
  name: homepage_holdout
  kind: holdout
  unit: user_id
  exposures: {source: exposures, experiment_id: show_new_homepage}
  start: 2026-10-18
  end: 2026-10-28
  variants:
    - {name: "on", control: true, weight: 0.2}
    - {name: "off", weight: 0.8}
  primary_metrics: [page_views]
  secondary_metrics: [dau, sessions]
  decision: {min_days: 3}
"""

BUTTONS = """experiment:
  name: button_holdout
  kind: holdout
  unit: user_id
  exposures: {source: exposures, experiment_id: button_color_v3}
  start: 2026-10-15
  end: 2026-10-29
  variants:
    - {name: blue, control: true, weight: 0.25}
    - {name: red, weight: 0.25}
    - {name: green, weight: 0.25}
    - {name: orange, weight: 0.25}
  primary_metrics: [dau]
  secondary_metrics: [sessions]
  decision: {max_regression: 0.01}
"""


def _problems(project: Path, text: str, name: str = "homepage_holdout") -> str:
    (project / "experiments" / f"{name}.yml").write_text(text)
    with pytest.raises(ProjectError) as exc:
        load_project(project)
    return exc.value.render()


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize("change, field, fix", [
    (("kind: holdout", "kind: holdup"), "experiment.kind", "expected 'ab' or 'holdout'"),
    (("decision: {min_days: 3}", "decision: {min_days: 3, ship_when: any_primary}"), "decision.ship_when",
     "remove decision.ship_when, or make it an A/B test (kind: ab)"),
    (("decision: {min_days: 3}", "decision: {mde: 0.02}"), "decision.mde", "remove decision.mde"),
    (("decision: {min_days: 3}", "decision: {max_regression: 2}"), "experiment.decision.max_regression",
     "less than 1"),
    (("primary_metrics: [page_views]", "primary_metrics: [page_views]\n  analysis: {sequential: false}"),
     "analysis.sequential", "remove analysis.sequential"),
])
def test_a_holdout_that_makes_no_sense_names_file_line_field_and_fix(demo_project, change, field, fix):
    text = HOLDOUT.replace(*change)
    message = _problems(demo_project, text)
    needle = change[1].split("\n")[-1].split(":")[0].strip()
    assert f"experiments/homepage_holdout.yml:{_line(text, needle)}" in message, message
    assert f"[{field}]" in message and fix in message, message


def test_a_holdout_with_the_big_group_as_control_is_refused(demo_project):
    text = HOLDOUT.replace('{name: "on", control: true, weight: 0.2}', '{name: "on", weight: 0.2}') \
                  .replace('{name: "off", weight: 0.8}', '{name: "off", control: true, weight: 0.8}')
    message = _problems(demo_project, text)
    assert f"homepage_holdout.yml:{_line(text, 'variants:')} [variants]" in message
    assert "control variant 'off') gets 80% of the units" in message and "mark the small held-out group" in message


def test_an_ab_test_takes_no_holdout_margin(demo_project):
    path = demo_project / "experiments" / "show_new_homepage.yml"
    text = path.read_text().replace("analysis: {confidence: 0.95, cuped: true, correction: holm}",
                                    "analysis: {confidence: 0.95, cuped: true, correction: holm}\n"
                                    "  decision: {max_regression: 0.01}")
    message = _problems(demo_project, text, "show_new_homepage")
    assert f"show_new_homepage.yml:{_line(text, 'max_regression')} [decision.max_regression]" in message
    assert "applies to kind: holdout only" in message and "guardrail: {max_regression" in message


def test_a_metric_margin_wins_over_the_holdout_margin(demo_project):
    (demo_project / "experiments" / "button_holdout.yml").write_text(BUTTONS)
    project = load_project(demo_project)
    plan = build_plan(project, project.experiment("button_holdout"), as_of=AS_OF, schema="wn")
    margins = {m.name: m.max_regression for m in plan.metrics}
    # api_success_rate sets guardrail: {max_regression: 0.005}; revenue is a guardrail without one
    assert margins == {"dau": 0.01, "sessions": 0.01, "api_success_rate": 0.005, "revenue": 0.01}
    assert plan.sequential and plan.kind == "holdout" and plan.decision_rule.kind == "holdout"
    # an A/B test's non-guardrail metrics keep no margin
    ab = build_plan(project, project.experiment("button_color_v3"), as_of=AS_OF, schema="wn")
    assert {m.name: m.max_regression for m in ab.metrics}["revenue"] == 0.0 and ab.kind == "ab"


# -- end to end on DuckDB ---------------------------------------------------------------------

def _decision(adapter, run_id):
    return adapter.fetch("select * from wn.decisions where run_id = ?", [run_id])[0]


def test_a_holdout_end_to_end_interim_and_final(demo_project):
    (demo_project / "experiments" / "homepage_holdout.yml").write_text(HOLDOUT)
    project = load_project(demo_project)
    from warehouse_native.project import load_target

    target = load_target(demo_project)
    with connect(target) as adapter:
        early = run_experiment(project, target, adapter, "homepage_holdout", as_of=dt.date(2026, 10, 24),
                               mode="stateless")
        final = run_experiment(project, target, adapter, "homepage_holdout", as_of=AS_OF, mode="stateless")
        rows = {r["metric"]: r for r in adapter.fetch(
            "select * from wn.scorecard where run_id = ? and dimension is null", [final.run_id])}
        early_rows = {r["metric"]: r for r in adapter.fetch(
            "select * from wn.scorecard where run_id = ? and dimension is null", [early.run_id])}
        sums = {r["variant"]: r for r in adapter.fetch(
            "select * from wn.metric_aggregates where run_id = ? and metric = 'page_views' and dimension is null",
            [early.run_id])}
        first, last = _decision(adapter, early.run_id), _decision(adapter, final.run_id)
        incremental = run_experiment(project, target, adapter, "homepage_holdout", as_of=AS_OF, mode="full-refresh")
        again = _decision(adapter, incremental.run_id)
    # every metric, not only the guardrails, is read for regression
    assert set(rows) == {"page_views", "dau", "sessions", "revenue", "api_success_rate"}
    assert all(r["guardrail_status"] in ("pass", "warn", "fail") for r in rows.values())
    assert all(r["sequential_rel_ci_upper"] is not None for r in rows.values())
    # final reading: the one-sided p-values, Holm-adjusted over the 5 metric x treatment rows, below 0.05
    names = sorted(rows)
    adjusted = dict(zip(names, adjust_p_values([rows[n]["guardrail_p_value"] for n in names], "holm")))
    assert {n for n in names if rows[n]["guardrail_status"] == "fail"} == {n for n in names if adjusted[n] < 0.05}
    assert rows["page_views"]["guardrail_status"] == "fail" and rows["page_views"]["rel_delta"] < -0.05
    assert (last["decision"], last["headline"], last["variant"]) == \
        ("regression", "holdout ended: regression on page_views", None)
    assert f"off: page_views {rows['page_views']['rel_delta']:+.1%}" in last["reason"]
    assert json.loads(last["rule"]) == {"kind": "holdout", "min_days": 3, "max_regression": 0.0}
    assert json.loads(last["readings"])[0]["regressed"] == ["page_views"]
    # interim (7 days): page_views is worse, but the always-valid interval at 1 - 0.05/5 does not
    # establish it yet: a warning, and the holdout reads "no regression" and keeps running
    pv = early_rows["page_views"]
    assert pv["rel_delta"] < 0 and pv["guardrail_status"] == "warn"
    # the published 95% sequence alone excludes 0; at the Bonferroni level over 5 readings it does not
    assert pv["sequential_rel_ci_upper"] < 0
    arms = [Moments.from_row(sums[v]) for v in ("on", "off")]
    assert interim_regression(*arms, direction="increase", margin=0.0, confidence=0.95, family=1, cuped=True)
    assert not interim_regression(*arms, direction="increase", margin=0.0, confidence=0.95, family=5, cuped=True)
    assert (first["decision"], first["headline"]) == ("no regression", "holdout: no regression")
    assert "not established: page_views" in first["reason"]
    # the same reading from the incremental state
    assert (again["decision"], again["headline"]) == (last["decision"], last["headline"])


def test_several_treatments_end_to_end(demo_project):
    (demo_project / "experiments" / "button_holdout.yml").write_text(BUTTONS)
    project = load_project(demo_project)
    from warehouse_native.project import load_target

    target = load_target(demo_project)
    with connect(target) as adapter:
        result = run_experiment(project, target, adapter, "button_holdout", as_of=AS_OF, mode="stateless")
        d = _decision(adapter, result.run_id)
        failing = adapter.fetch("select variant, metric from wn.scorecard where run_id = ? and dimension is null "
                                "and guardrail_status = 'fail'", [result.run_id])
    # orange lowers revenue by about a quarter (story.py): the only regression beyond 1%
    assert [(r["variant"], r["metric"]) for r in failing] == [("orange", "revenue")]
    assert d["headline"] == "holdout ended: regression on revenue (orange)"
    readings = {r["variant"]: r for r in json.loads(d["readings"])}
    assert readings["orange"]["regressed"] == ["revenue"] and readings["red"]["regressed"] == []
    assert all(not math.isnan(r["mde"]) for r in readings.values())


def test_wn_show_prints_the_holdout_reading(demo_project):
    from click.testing import CliRunner

    from warehouse_native.cli.main import cli

    (demo_project / "experiments" / "homepage_holdout.yml").write_text(HOLDOUT)
    args = ["--project-dir", str(demo_project), "--as-of", "2026-11-01"]
    runner = CliRunner()
    ran = runner.invoke(cli, ["run", "-e", "homepage_holdout", "--no-state", *args], catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    shown = runner.invoke(cli, ["show", "-e", "homepage_holdout", *args], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    for out in (ran.output, shown.output):
        flat = " ".join(out.split())
        assert "decision: holdout ended: regression on page_views —" in flat
        assert "regression readings FAILING: page_views (off)" in flat
    # the report's page model reads the same published decision
    from warehouse_native.present.published import read_published
    from warehouse_native.present.report import build_report
    from warehouse_native.project import load_target

    project = load_project(demo_project)
    with connect(load_target(demo_project)) as adapter:
        published = read_published(adapter, "wn", "homepage_holdout", where="test")
    page = build_report(published, project.experiment("homepage_holdout"), as_of=AS_OF, charts_on=False)
    assert page.summary.status == "fail"
    assert page.summary.headline.startswith("Decision: holdout ended: regression on page_views — ")
    assert page.info["analysis"].startswith("holdout (every metric read for regression)")
