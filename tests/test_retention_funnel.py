"""Retention and funnel metrics: the published numbers against pandas, statsmodels and
hand-derived formulas over the raw rows; incremental runs equal to stateless ones; A/A
false-positive rates; validation errors.

The project is tests/shapes_project.py (integer ids, NULLs, rows exactly at the window
bounds, multi-exposed units, units without rows) with ``day3_return`` (retention on day 3 of
clicks and views) and ``view_to_buy`` (a funnel view -> click -> buy within 48 hours).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shapes_project as sp
from compare import assert_same_rows, scorecard
from test_query_shapes import END, independent_units
from warehouse_native import stats
from warehouse_native.errors import ProjectError
from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

TREATMENTS = ("one_page", "express")


def _profiles(path) -> str:
    return f"p:\n  target: dev\n  outputs:\n    dev: {{type: duckdb, path: '{path}', schema: wn}}\n"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("retention")
    project_dir = sp.write_project(root / "project", _profiles(root / "w.duckdb"))
    tables = sp.generate()
    target = load_target(project_dir)
    project = load_project(project_dir)
    with connect(target) as adapter:
        for name, cols in tables.items():
            adapter.load_columns(name, cols)
        run_experiment(project, target, adapter, sp.EXPERIMENT, as_of=sp.AS_OF, mode="stateless")
        card = scorecard(adapter, "wn", sp.EXPERIMENT)
    units = independent_units(tables)
    return project, target, tables, card, units


def _overall(card: dict, metric: str, variant: str) -> dict:
    return card[(metric, variant, None, None)]


def test_retention_is_the_share_of_eligible_units_active_on_day_n(shapes):
    _, _, _, card, units = shapes
    by = units.groupby("variant")
    retained, eligible = by.day3_return.sum(), by.day3_return__den.sum()
    # units exposed in the last 4 days before the end are not eligible yet: some are excluded
    assert 0 < eligible.sum() < len(units[units.variant != "__multiple__"])
    for variant in TREATMENTS:
        row = _overall(card, "day3_return", variant)
        assert row["metric_type"] == "retention"
        assert math.isclose(row["control_mean"], retained["control"] / eligible["control"], rel_tol=1e-9)
        assert math.isclose(row["variant_mean"], retained[variant] / eligible[variant], rel_tol=1e-9)
        assert row["control_units"] == int((units.variant == "control").sum())
        assert (row["control_counted"], row["variant_counted"]) == (eligible["control"], eligible[variant])
        left_out = row["control_units"] + row["variant_units"] - eligible["control"] - eligible[variant]
        assert row["reason"].startswith(f"{int(left_out)} of ")


def test_retention_without_cuped_has_the_binomial_standard_error_over_eligible_units(shapes):
    """Hand-derived: a ratio of sums whose denominator is the 0/1 eligibility has the delta-
    method variance R(1-R)/n_eligible * n/(n-1) in each arm (n: all units of the arm)."""
    _, _, _, _, units = shapes
    arms = {}
    for variant in ("control", "one_page"):
        u = units[units.variant == variant]
        arms[variant] = stats.Moments.from_values(u.day3_return, d=u.day3_return__den)
    got = stats.compare(arms["control"], arms["one_page"], cuped=False)
    var = 0.0
    for variant in ("control", "one_page"):
        u = units[units.variant == variant]
        n, ne = len(u), u.day3_return__den.sum()
        r = u.day3_return.sum() / ne
        var += r * (1 - r) / ne * n / (n - 1)
    assert math.isclose(got.std_error, math.sqrt(var), rel_tol=1e-9)


def test_retention_cuped_follows_the_ratio_cuped_formula_over_the_raw_rows(shapes):
    """Its covariate is pre-exposure activity of the same (eligible) units.  Independently of
    wn's moments: the linearised ratios z = (y - R e)/mean(e) and w = (x - R_x e)/mean(e) per
    arm, theta = sum (n-1)cov(z, w) / sum (n-1)var(w) (docs/statistics.md, CUPED), and the
    adjusted difference (R_t - R_c) - theta (R_x,t - R_x,c).  It is close to OLS on the eligible
    units (the arms' eligible shares scale z and w slightly differently), checked loosely."""
    _, _, _, card, units = shapes
    for variant in TREATMENTS:
        cov = var = 0.0
        ratios = {}
        for v in ("control", variant):
            u = units[units.variant == v]
            y, x, e = u.day3_return.to_numpy(), u.day3_return__pre.to_numpy(), u.day3_return__den.to_numpy()
            r, rx = y.sum() / e.sum(), x.sum() / e.sum()
            z, w = (y - r * e) / e.mean(), (x - rx * e) / e.mean()
            cov += (len(u) - 1) * np.cov(z, w, ddof=1)[0, 1]
            var += (len(u) - 1) * w.var(ddof=1)
            ratios[v] = (r, rx)
        theta = cov / var
        expected = (ratios[variant][0] - ratios["control"][0]) - theta * (ratios[variant][1] - ratios["control"][1])
        row = _overall(card, "day3_return", variant)
        assert row["cuped"] and row["variance_reduction"] > 0.01
        assert math.isclose(row["cuped_theta"], theta, rel_tol=1e-9)
        assert math.isclose(row["abs_delta"], expected, rel_tol=1e-9)
        u = units[units.variant.isin(["control", variant]) & (units.day3_return__den == 1)]
        X = sm.add_constant(np.column_stack([(u.variant == variant).astype(float), u.day3_return__pre]))
        ols = sm.OLS(u.day3_return.to_numpy(), X).fit().params[1]
        assert abs(row["abs_delta"] - ols) < 0.01 * abs(ols) + 1e-4


def test_funnel_steps_and_overall_conversion(shapes):
    _, _, _, card, units = shapes
    by = units.groupby("variant")
    viewed, clicked, bought = (by[f"view_to_buy__{s}"].sum() for s in ("viewed", "clicked", "bought"))
    size = by.size()
    assert (bought <= clicked).all() and (clicked <= viewed).all() and bought.sum() > 20
    for variant in TREATMENTS:
        for name, num, den in (("view_to_buy", bought, size), ("view_to_buy__viewed", viewed, size),
                               ("view_to_buy__clicked", clicked, viewed),
                               ("view_to_buy__bought", bought, clicked)):
            row = _overall(card, name, variant)
            assert math.isclose(row["variant_mean"], num[variant] / den[variant], rel_tol=1e-9), name
            assert math.isclose(row["control_mean"], num["control"] / den["control"], rel_tol=1e-9), name
        assert _overall(card, "view_to_buy", variant)["metric_type"] == "funnel"
        step = _overall(card, "view_to_buy__clicked", variant)
        assert step["metric_type"] == "funnel_step" and step["role"] == "secondary" and not step["cuped"]
        assert step["variant_counted"] == viewed[variant] and _overall(card, "view_to_buy", variant)["variant_counted"] is None


def test_funnel_overall_is_a_two_proportion_comparison(shapes):
    """The overall funnel conversion is a per-unit 0/1 value: its standard error is the
    unpooled two-proportion one with sample variances (n - 1)."""
    _, _, _, card, units = shapes
    for variant in TREATMENTS:
        var = 0.0
        for v in ("control", variant):
            y = units.loc[units.variant == v, "view_to_buy__bought"]
            var += y.var(ddof=1) / len(y)
        assert math.isclose(_overall(card, "view_to_buy", variant)["std_error"], math.sqrt(var), rel_tol=1e-9)


def test_funnel_order_and_window_by_hand(tmp_path):
    """Hand-made rows: out-of-order first rows, a step past the window, a step exactly at the
    previous step's time, a unit with no rows, rows before exposure."""
    project_dir = sp.write_project(tmp_path / "p", _profiles(tmp_path / "w.duckdb"))
    t0 = np.datetime64(f"{sp.START}T10:00:00", "us")
    h = np.timedelta64(3600, "s")
    uids = np.arange(1, 7, dtype="int64")
    assignments = {"uid": uids, "exp": np.full(6, sp.EXPERIMENT, dtype=object),
                   "arm": np.array(["control", "one_page", "express", "control", "one_page", "express"], dtype=object),
                   "platform": np.full(6, "web", dtype=object), "seen_at": np.full(6, t0)}
    rows = [  # uid, offset hours, kind
        (1, 1, "view"), (1, 2, "click"), (1, 3, "buy"),          # complete
        (2, 1, "click"), (2, 2, "view"), (2, 3, "click"),        # first click before first view: stops at view
        (3, 1, "view"), (3, 1, "click"), (3, 50, "buy"),         # click at the view's time; buy after 48 h
        (4, -1, "view"), (4, 1, "click"), (4, 2, "buy"),         # the view before exposure does not count
        (6, 1, "view"), (6, 47.9, "click"), (6, 47.95, "buy"),   # inside 48 h of the view
    ]
    actions = {"uid": np.array([r[0] for r in rows], dtype="int64"),
               "seen_at": np.array([t0 + np.timedelta64(int(r[1] * 3600), "s") for r in rows]),
               "kind": np.array([r[2] for r in rows], dtype=object),
               "amount": np.full(len(rows), np.nan), "item": np.full(len(rows), None, dtype=object),
               "latency_ms": np.full(len(rows), np.nan)}
    orders = {"uid": np.array([1], dtype="int64"), "ordered_at": np.array([t0 + h]), "total": np.array([1.0]),
              "items": np.array([1], dtype="int64")}
    target = load_target(project_dir)
    with connect(target) as adapter:
        for name, cols in {"raw2.assignments": assignments, "raw2.actions": actions, "raw2.orders": orders}.items():
            adapter.load_columns(name, cols)
        run_experiment(load_project(project_dir), target, adapter, sp.EXPERIMENT, as_of=sp.AS_OF, mode="stateless")
        got = {r["unit_id"]: r for r in adapter.fetch(
            f"select unit_id, view_to_buy__viewed as v, view_to_buy__clicked as c, view_to_buy__bought as b "
            f"from wn.unit_metrics__{sp.EXPERIMENT}")}
    expected = {1: (1, 1, 1), 2: (1, 0, 0), 3: (1, 1, 0), 4: (0, 0, 0), 5: (0, 0, 0), 6: (1, 1, 1)}
    assert {u: (r["v"], r["c"], r["b"]) for u, r in got.items()} == expected


def test_incremental_runs_equal_a_stateless_run(shapes, tmp_path):
    """A full refresh on the first days, then an incremental run after new days with late rows:
    every scorecard row (retention and funnel included) equals the stateless run's."""
    project, _, tables, reference, _ = shapes
    project_dir = sp.write_project(tmp_path / "p", _profiles(tmp_path / "w.duckdb"))
    target = load_target(project_dir)
    new_day = sp.START + dt.timedelta(days=9)
    first, _ = sp.split(tables, new_day)
    with connect(target) as adapter:
        for name, cols in first.items():
            adapter.load_columns(name, cols)
        run_experiment(project, target, adapter, sp.EXPERIMENT, as_of=new_day - dt.timedelta(days=1),
                       mode="full-refresh")
        for name, cols in tables.items():   # the new days and the late rows arrive
            adapter.load_columns(name, cols)
        run_experiment(project, target, adapter, sp.EXPERIMENT, as_of=sp.AS_OF, mode="incremental")
        card = scorecard(adapter, "wn", sp.EXPERIMENT)
    ours = {k: v for k, v in card.items() if k[0].startswith(("day3_return", "view_to_buy"))}
    theirs = {k: v for k, v in reference.items() if k[0].startswith(("day3_return", "view_to_buy"))}
    assert assert_same_rows(theirs, ours, "incremental") >= 5 * 2 * 4
    assert assert_same_rows(reference, card, "incremental") > 1000


def _false_positive_rate(draw, reps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        control, treatment = draw(rng), draw(rng)
        hits += stats.compare(control, treatment, cuped=control.pre_sum is not None).p_value < 0.05
    return hits / reps


def test_a_a_false_positive_rate_of_retention_with_cuped():
    def arm(rng):
        n = 1500
        eligible = (rng.random(n) < 0.7).astype(float)
        engaged = rng.beta(1.2, 2.0, size=n)
        before = (rng.random(n) < engaged).astype(float) * eligible
        retained = (rng.random(n) < engaged).astype(float) * eligible
        return stats.Moments.from_values(retained, d=eligible, x=before, m=eligible)

    rate = _false_positive_rate(arm, 4000, seed=7)
    assert 0.04 <= rate <= 0.06, rate


def test_a_a_false_positive_rate_of_funnel_steps():
    def steps(rng):
        n = 1500
        p = rng.beta(2, 5, size=n)
        viewed = (rng.random(n) < 0.6).astype(float)
        clicked = viewed * (rng.random(n) < p)
        return viewed, clicked

    rng = np.random.default_rng(11)
    hits_overall = hits_step = 0
    reps = 4000
    for _ in range(reps):
        (vc, cc), (vt, ct) = steps(rng), steps(rng)
        overall = stats.compare(stats.Moments.from_values(cc), stats.Moments.from_values(ct))
        step = stats.compare(stats.Moments.from_values(cc, d=vc), stats.Moments.from_values(ct, d=vt))
        hits_overall += overall.p_value < 0.05
        hits_step += step.p_value < 0.05
    assert 0.04 <= hits_overall / reps <= 0.06, hits_overall / reps
    assert 0.04 <= hits_step / reps <= 0.06, hits_step / reps


@pytest.mark.parametrize("metric, message", [
    ("{name: r, source: actions, type: retention}", "needs 'retention: {day: N}'"),
    ("{name: r, source: actions, type: retention, retention: {day: 2}, window: {end_day: 3}}",
     "'window' does not apply to a retention metric"),
    ("{name: r, source: actions, type: count, retention: {day: 2}}", "'retention' only applies"),
    ("{name: f, source: actions, type: funnel, funnel: {steps: [{name: a, filter: \"kind = 'x'\"}]}}",
     "at least 2 items"),
    ("{name: f, source: actions, type: funnel, funnel: {steps: [{name: a, filter: \"kind = 'x'\"}, "
     "{name: a, filter: \"kind = 'y'\"}]}}", "appear twice"),
    ("{name: f, source: actions, type: funnel, funnel: {steps: [{name: den, filter: \"kind = 'x'\"}, "
     "{name: b, filter: \"kind = 'y'\"}]}}", "names a column wn derives"),
    ("{name: f, source: actions, type: funnel, funnel: {steps: [{name: a, filter: \"kind = 'x'\"}, "
     "{name: b, filter: \"1=1; drop table t\"}]}}", "funnel.steps.1.filter"),
    ("{name: r, source: actions, type: retention, retention: {day: 2}, winsorize: {upper: 0.99}}",
     "'winsorize' does not apply to a retention metric"),
    ("{name: r, type: ratio, numerator: clicks, denominator: view_to_buy}", "which has no single per-unit value"),
])
def test_bad_retention_and_funnel_definitions_name_the_file_line_and_fix(tmp_path, metric, message):
    project_dir = sp.write_project(tmp_path / "p", _profiles(tmp_path / "w.duckdb"))
    catalog = project_dir / "metrics" / "catalog.yml"
    catalog.write_text(catalog.read_text() + f"  - {metric}\n")
    line = len(catalog.read_text().splitlines())
    with pytest.raises(ProjectError) as info:
        load_project(project_dir)
    hits = [p for p in info.value.problems if message in f"{p.message} {p.field}"]
    assert hits, [str(p) for p in info.value.problems]
    assert hits[0].file.endswith("catalog.yml") and hits[0].line == line
