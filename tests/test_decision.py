"""The decision rule (warehouse_native/decision.py) on hand-built results, and on the demo."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from conftest import AS_OF
from warehouse_native.decision import Rule, decide, more_days_for
from warehouse_native.errors import ProjectError
from warehouse_native.project import load_project
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

PRIMARIES = ["signups", "dau"]


def row(variant, metric, *, delta=0.0, significant=False, role="primary", direction="increase",
        guardrail=None, mde=0.04, dimension=None):
    return {"variant": variant, "metric": metric, "role": role, "direction": direction, "dimension": dimension,
            "abs_delta": delta, "rel_delta": delta / 10, "significant": significant,
            "guardrail_status": guardrail, "mde_80": mde}


def card(**per_variant):
    """rows for treatments b, c: per variant a dict metric -> (delta, significant)."""
    out = []
    for variant, metrics in per_variant.items():
        for metric in PRIMARIES:
            delta, sig = metrics.get(metric, (0.1, False))
            out.append(row(variant, metric, delta=delta, significant=sig, mde=metrics.get("mde", 0.04)))
        out.append(row(variant, "latency", role="guardrail", direction="decrease",
                       guardrail=metrics.get("guardrail", "pass")))
    return out


SRM_OK = [{"check_name": "srm", "dimension": None, "status": "pass", "detail": "units: a=1, b=1"}]


def run(rule, rows, health=SRM_OK, days=14, ended=False, treatments=("b", "c")):
    return decide(rule, rows, health, treatments=list(treatments), primaries=PRIMARIES, days_run=days, ended=ended)


def test_a_failing_health_check_means_investigate_whatever_the_results():
    rows = card(b={"signups": (1.0, True), "dau": (1.0, True)}, c={})
    srm = [{"check_name": "srm", "dimension": None, "status": "fail", "detail": "units: a=900, b=1100"}]
    d = run(Rule(), rows, srm)
    assert d.decision == "investigate" and d.variant is None and "a=900" in d.reason
    # a failing SRM of one slice alone does not stop the decision
    d = run(Rule(), rows, SRM_OK + [{"check_name": "srm", "dimension": "country", "status": "fail"}])
    assert d.decision == "ship" and d.variant == "b"


def test_too_early_keeps_running_for_the_days_left():
    rows = card(b={"signups": (1.0, True), "dau": (1.0, True)}, c={})
    d = run(Rule(min_days=7), rows, days=3)
    assert (d.decision, d.more_days, d.headline) == ("keep running", 4, "keep running (needs 4 more days)")
    # an experiment that ended before min_days is decided on what it has
    assert run(Rule(min_days=7), rows, days=3, ended=True).decision == "ship"


def test_ship_needs_every_primary_better_by_default_or_one_with_any_primary():
    rows = card(b={"signups": (1.0, True)}, c={})
    assert run(Rule(mde=0.05), rows).decision == "do not ship"      # powered (MDE 4% <= 5%), b better on one of two
    d = run(Rule(ship_when="any_primary"), rows)
    assert (d.decision, d.variant) == ("ship", "b") and "signups" in d.reason


def test_of_two_winners_the_larger_lift_on_the_first_primary_ships():
    rows = card(b={"signups": (1.0, True), "dau": (1.0, True)}, c={"signups": (3.0, True), "dau": (0.5, True)})
    d = run(Rule(), rows)
    assert (d.decision, d.variant) == ("ship", "c") and "also shippable: b" in d.reason


def test_direction_decides_better_and_worse():
    # a decrease metric: a significant negative delta is better
    rows = [row("b", "signups", delta=-2.0, significant=True, direction="decrease"),
            row("b", "dau", delta=-1.0, significant=True, direction="decrease")]
    assert run(Rule(), rows, treatments=("b",)).variant == "b"
    rows = [row("b", "signups", delta=2.0, significant=True, direction="decrease"), row("b", "dau")]
    d = run(Rule(), rows, treatments=("b",))
    assert d.decision == "do not ship" and "signups significantly worse" in d.reason


def test_a_failing_guardrail_blocks_shipping_that_variant():
    rows = card(b={"signups": (1.0, True), "dau": (1.0, True), "guardrail": "fail"},
                c={"signups": (0.5, True), "dau": (0.5, True)})
    assert run(Rule(), rows).variant == "c"
    rows = card(b={"signups": (1.0, True), "dau": (1.0, True), "guardrail": "fail"}, c={"signups": (-1.0, True)})
    d = run(Rule(), rows)
    assert d.decision == "do not ship" and "b: guardrail latency fails" in d.reason and "c: signups" in d.reason


def test_nothing_significant_keeps_running_until_the_mde_is_reached():
    rows = card(b={"mde": 0.10}, c={"mde": 0.08})
    d = run(Rule(mde=0.05), rows, days=10)
    # hand-derived: the MDE falls as 1/sqrt(units) and units grow with days:
    # 0.10 -> 0.05 needs 4x the units, i.e. 40 days in all, 30 more
    assert (d.decision, d.more_days, d.mde_now) == ("keep running", 30, 0.10)
    assert d.headline == "keep running (needs 30 more days for MDE 5.0%)"
    assert more_days_for(0.06, 0.05, 14) == math.ceil(14 * (1.2 ** 2 - 1)) == 7
    # powered: no effect of 5% would have hidden -> do not ship; ended under-powered -> do not ship
    assert run(Rule(mde=0.05), card(b={"mde": 0.04}, c={"mde": 0.05})).decision == "do not ship"
    d = run(Rule(mde=0.05), rows, ended=True)
    assert d.decision == "do not ship" and "under-powered" in d.reason
    # no target: keep running until the end
    assert run(Rule(), rows).decision == "keep running" and run(Rule(), rows, ended=True).decision == "do not ship"


def test_rule_values_are_checked():
    with pytest.raises(ValueError, match="min_days"):
        Rule(min_days=-1)
    with pytest.raises(ValueError, match="relative lift"):
        Rule(mde=0)
    with pytest.raises(ValueError, match="all_primary or any_primary"):
        Rule(ship_when="most")


def test_a_bad_decision_block_names_file_line_and_field(demo_project):
    path = demo_project / "experiments" / "button_color_v3.yml"
    path.write_text(path.read_text().replace("ship_when: any_primary", "ship_when: always"))
    with pytest.raises(ProjectError) as exc:
        load_project(demo_project)
    text = exc.value.render()
    assert "button_color_v3.yml:" in text and "decision.ship_when" in text


def test_the_demo_records_its_decision_with_the_run(demo_project, project_and_target):
    _, target = project_and_target
    project = load_project(demo_project)
    with connect(target) as adapter:
        early = run_experiment(project, target, adapter, "button_color_v3", as_of=dt.date(2026, 10, 18),
                               mode="stateless")
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        rows = adapter.fetch("select * from wn.decisions order by computed_at")
        latest = adapter.fetch("select * from wn.decisions_latest")
        sig = adapter.fetch("select variant, metric, rel_delta from wn.scorecard where run_id = ? and "
                            "dimension is null and role = 'primary' and significant", [result.run_id])
    assert [r["run_id"] for r in rows] == [early.run_id, result.run_id]
    first, last = rows
    # 4 days of data, the demo's rule waits for 7
    assert (first["decision"], first["more_days"], first["days_run"]) == ("keep running", 3, 4)
    # the demo's red button: significantly better on visited_signup (any_primary), no guardrail of red fails
    assert {(r["variant"], r["metric"]) for r in sig if r["rel_delta"] > 0} >= {("red", "visited_signup")}
    assert (last["decision"], last["variant"], last["headline"]) == ("ship", "red", "ship red")
    assert latest == [last]
    assert json.loads(last["rule"]) == {"min_days": 7, "mde": 0.05, "ship_when": "any_primary"}
    readings = {r["variant"]: r for r in json.loads(last["readings"])}
    assert readings["orange"]["guardrails_failed"] == ["revenue"] and readings["red"]["better"] == ["visited_signup"]
    # red's revenue guardrail warns: said, not decisive
    assert readings["red"]["guardrails_warned"] == ["revenue"] and "(guardrails warning: revenue)" in last["reason"]
