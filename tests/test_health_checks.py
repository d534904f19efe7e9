"""Health checks computed from the published sums, against scipy over the unit rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from conftest import AS_OF
from warehouse_native.project import load_project
from warehouse_native.runner import run_experiment
from warehouse_native.stats import Moments, exposure_gaps, pre_exposure_balance
from warehouse_native.warehouse import connect


def test_pre_exposure_bias_equals_welch_tests_over_the_units(demo_project, project_and_target):
    _, target = project_and_target
    project = load_project(demo_project)
    with connect(target) as adapter:
        firsts = adapter.fetch("select cast(min(ts) as date) as day from raw.exposures where experiment = "
                               "'button_color_v3' and ts >= timestamp '2026-10-15' group by user_id")
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, mode="stateless")
        units = pd.DataFrame(adapter.fetch("select * from wn.unit_metrics__button_color_v3"))
        check = adapter.fetch("select * from wn.health_checks where run_id = ? and check_name = 'pre_exposure_bias'",
                              [result.run_id])
    plan = result.plan
    assert len(check) == 1 and check[0]["dimension"] is None
    # independent: scipy's Welch test on each unit's pre-window value, metric x treatment
    p_values, ts = {}, {}
    for m in plan.metrics:
        if not m.has_covariate:
            continue
        assert any(c.lower() == m.pre_column for c in units.columns), m.pre_column
        pre = units[m.pre_column].astype(float).fillna(0.0)
        control = pre[units.variant == plan.control]
        for v in plan.variants[1:]:
            res = sps.ttest_ind(pre[units.variant == v], control, equal_var=False)
            p_values[(m.name, v)], ts[(m.name, v)] = res.pvalue, res.statistic
    assert len(p_values) >= 20
    worst = min(p_values, key=p_values.get)
    expected_p = min(1.0, p_values[worst] * len(p_values))
    assert check[0]["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert check[0]["statistic"] == pytest.approx(ts[worst], rel=1e-9)
    assert f"{worst[0]}, {worst[1]}" in check[0]["detail"] and f"over {len(p_values)} metric" in check[0]["detail"]
    assert check[0]["status"] == ("fail" if expected_p < 0.001 else "warn" if expected_p < 0.01 else "pass")


def _arm(rng, n, shift):
    x = rng.normal(10 + shift, 3, n)
    return Moments(n=n, sum=0.0, sum_sq=0.0, pre_sum=float(x.sum()), pre_sum_sq=float((x * x).sum()),
                   sum_cross=0.0), x


def test_balance_flags_a_shifted_arm_and_passes_balanced_ones():
    rng = np.random.default_rng(5)
    (c, xc), (t_ok, x_ok), (t_bad, x_bad) = _arm(rng, 4000, 0), _arm(rng, 4000, 0.0), _arm(rng, 4000, 0.5)
    ok = pre_exposure_balance([("m, b", c, t_ok)])
    ref = sps.ttest_ind(x_ok, xc, equal_var=False)
    assert ok.p_value == pytest.approx(ref.pvalue, rel=1e-9) and ok.statistic == pytest.approx(ref.statistic, rel=1e-9)
    bad = pre_exposure_balance([("m, b", c, t_ok), ("m, c", c, t_bad)])
    ref = sps.ttest_ind(x_bad, xc, equal_var=False)
    assert bad.status == "fail" and bad.worst == "m, c" and bad.comparisons == 2
    assert bad.p_value == pytest.approx(min(1.0, 2 * ref.pvalue), rel=1e-6, abs=1e-300)
    # nothing to test: unknown, not pass
    assert pre_exposure_balance([]).status == "unknown"
    assert pre_exposure_balance([("m, b", Moments(n=1, sum=0.0, sum_sq=0.0), t_ok)]).status == "unknown"


def test_balance_false_alarms_stay_rare_under_randomisation():
    """A/A: with 3 treatments x 4 covariates, the check warns in about 1% of experiments
    (Bonferroni is conservative with correlated covariates; here they are independent)."""
    rng = np.random.default_rng(11)
    warned = 0
    trials = 2000
    for _ in range(trials):
        arms = [[_arm(rng, 200, 0)[0] for _ in range(4)] for _ in range(4)]
        pairs = [(f"m{j}, v{i}", arms[0][j], arms[i][j]) for i in (1, 2, 3) for j in range(4)]
        warned += pre_exposure_balance(pairs).status != "pass"
    assert 0.002 <= warned / trials <= 0.02, warned / trials


D = dt.date


def test_exposure_gaps_hand_counted():
    w = {"a": 0.5, "b": 0.5}
    days = {(D(2026, 1, 1), "a"): 30, (D(2026, 1, 1), "b"): 28, (D(2026, 1, 3), "a"): 12, (D(2026, 1, 3), "b"): 9}
    g = exposure_gaps(days, w, D(2026, 1, 1), D(2026, 1, 3))
    # Jan 2 has no exposure at all: a warning, not a failure
    assert (g.status, g.empty_days, g.starved) == ("warn", (D(2026, 1, 2),), ())
    assert "1 of 3 days without any new exposure: 2026-01-02" in g.detail
    # b gets none on a day with 25 units: expected 12.5 >= 10 -> fail, named
    days[(D(2026, 1, 2), "a")] = 25
    g = exposure_gaps(days, w, D(2026, 1, 1), D(2026, 1, 3))
    assert g.status == "fail" and g.starved == ((D(2026, 1, 2), "b", 12.5),)
    assert "b on 2026-01-02 (expected 12)" in g.detail   # 12.5 shown rounded to even
    # 19 units: expected 9.5 < 10, chance e^-9.5 of none is not rare enough to call
    days[(D(2026, 1, 2), "a")] = 19
    assert exposure_gaps(days, w, D(2026, 1, 1), D(2026, 1, 3)).status == "pass"
    # unconfigured variants count towards the day's total; weights need not sum to 1
    g = exposure_gaps({(D(2026, 1, 1), "x"): 40}, {"a": 2.0, "b": 2.0}, D(2026, 1, 1), D(2026, 1, 1))
    assert [s[1:] for s in g.starved] == [("a", 20.0), ("b", 20.0)]
    assert exposure_gaps({}, w, D(2026, 1, 2), D(2026, 1, 1)).status == "unknown"


def test_a_variant_that_stops_being_assigned_makes_the_decision_investigate(demo_project, project_and_target):
    _, target = project_and_target
    project = load_project(demo_project)
    with connect(target) as adapter:
        # the SDK stopped logging red on one day, and logged nothing at all on another
        adapter.execute("delete from raw.exposures where experiment = 'button_color_v3' and group_name = 'red' "
                        "and cast(ts as date) = date '2026-10-20'")
        adapter.execute("delete from raw.exposures where cast(ts as date) = date '2026-10-22'")
        expected = adapter.fetch(
            "select count(distinct user_id) as n from raw.exposures where experiment = 'button_color_v3' "
            "and cast(ts as date) = date '2026-10-20' and user_id not in (select user_id from raw.exposures "
            "where experiment = 'button_color_v3' and ts < timestamp '2026-10-20')")[0]["n"]
        firsts = adapter.fetch("select cast(min(ts) as date) as day from raw.exposures where experiment = "
                               "'button_color_v3' and ts >= timestamp '2026-10-15' group by user_id")
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF, mode="stateless")
        gaps = adapter.fetch("select * from wn.health_checks where run_id = ? and check_name = 'exposure_gaps'",
                             [result.run_id])[0]
        decision = adapter.fetch("select * from wn.decisions where run_id = ?", [result.run_id])[0]
    assert gaps["status"] == "fail"
    # red's expected share of the day's new units (weights 25% each), as the check states it
    assert expected / 4 >= 10 and f"red on 2026-10-20 (expected {expected / 4:.0f})" in gaps["detail"]
    # the days of the window (2026-10-15 .. 10-29) on which no unit was first exposed, counted here
    seen = {r["day"] for r in firsts}
    empty = [d for d in (D(2026, 10, 15) + dt.timedelta(days=i) for i in range(15)) if d not in seen]
    assert D(2026, 10, 22) in empty
    assert f"{len(empty)} of 15 days without any new exposure: {', '.join(d.isoformat() for d in empty)}" in gaps["detail"]
    assert decision["decision"] == "investigate" and "exposure_gaps" in decision["reason"]
