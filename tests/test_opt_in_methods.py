"""Opt-in methods reach the scorecard: sequential, Bayesian, corrections, one-sided tests."""

from __future__ import annotations

import re

import pytest

from conftest import AS_OF
from warehouse_native import stats
from warehouse_native.project import load_project
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect


def _set_analysis(project_dir, text):
    path = project_dir / "experiments" / "button_color_v3.yml"
    before = path.read_text()
    after, count = re.subn(r"analysis: \{[^}]*\}", text, before, count=1)
    assert count == 1, "the demo experiment has no one-line `analysis: {...}` to replace"
    path.write_text(after)


def test_sequential_bayesian_and_bh_columns(demo_project, project_and_target):
    _, target = project_and_target
    _set_analysis(demo_project, "analysis: {confidence: 0.9, cuped: true, correction: bh, "
                                "sequential: true, bayesian: true, prior: {mean: 0.0, sd: 0.5}}")
    project = load_project(demo_project)
    with connect(target) as adapter:
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        rows = adapter.fetch("select * from wn.scorecard where run_id = ? and dimension is null", [result.run_id])
        aggs = adapter.fetch("select * from wn.metric_aggregates where run_id = ? and dimension is null",
                             [result.run_id])
    by = {(r["metric"], r["variant"]): r for r in rows}
    red = by[("visited_signup", "red")]
    assert red["confidence_level"] == 0.9 and red["correction"] == "bh"
    # always-valid interval is wider than the fixed-horizon one and contains the estimate
    assert red["sequential_ci_lower"] < red["abs_ci_lower"] < red["abs_delta"]
    assert red["sequential_ci_upper"] > red["abs_ci_upper"]
    assert red["sequential_p_value"] >= red["p_value"]
    assert 0.99 < red["chance_to_beat"] <= 1.0 and red["expected_loss"] >= 0
    # BH over the 6 primary comparisons equals statsmodels' fdr_bh on the stored p-values
    from statsmodels.stats.multitest import multipletests

    family = sorted((r for r in rows if r["role"] == "primary"), key=lambda r: (r["metric"], r["variant"]))
    expected = multipletests([r["p_value"] for r in family], method="fdr_bh")[1]
    assert [r["adjusted_p_value"] for r in family] == pytest.approx(list(expected), rel=1e-12)
    # secondaries are not adjusted
    sec = by[("signups", "red")]
    assert sec["adjusted_p_value"] == sec["p_value"] and sec["correction"] == "none"
    # everything can be recomputed from metric_aggregates alone
    agg = {(a["metric"], a["variant"]): a for a in aggs}
    c = stats.Moments.from_row(agg[("visited_signup", "blue")])
    t = stats.Moments.from_row(agg[("visited_signup", "red")])
    again = stats.compare(c, t, confidence=0.9, cuped=True)
    assert again.p_value == pytest.approx(red["p_value"], rel=1e-12)
    assert again.abs_delta == pytest.approx(red["abs_delta"], rel=1e-12)


def test_one_sided_analysis_uses_metric_direction(demo_project, project_and_target):
    _, target = project_and_target
    _set_analysis(demo_project, "analysis: {confidence: 0.95, cuped: false, correction: none, "
                                "alternative: one-sided}")
    project = load_project(demo_project)
    with connect(target) as adapter:
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        rows = adapter.fetch("select * from wn.scorecard where run_id = ? and dimension is null "
                             "and metric = 'visited_signup'", [result.run_id])
    for r in rows:
        # H1: variant > control; p one-sided = half the two-sided p when the estimate is positive
        assert r["abs_ci_upper"] is None and r["abs_ci_lower"] is not None
        if r["abs_delta"] > 0:
            assert r["p_value"] < 0.5
        else:
            assert r["p_value"] >= 0.5
