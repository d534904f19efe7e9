"""Every query shape gives the numbers of an independent computation over the raw rows.

The shapes project (tests/shapes_project.py: integer ids, three sources, every metric type,
NULL values and NULL slice values, rows exactly at the first exposure and at the analysis end,
multi-exposed units, units without events) is run with each shape wn can choose — active days
as a bitmask or as COUNT(DISTINCT date), unit ids in their own type or cast to text, the plain
or the grouped scan — and its unit metrics are compared, unit by unit, with pandas over the raw
rows; the published scorecards of all shapes agree to 1e-9.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shapes_project as sp
from compare import assert_same_rows, scorecard
from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.sql import dialects, render
from warehouse_native.warehouse import connect

END = pd.Timestamp(sp.END + dt.timedelta(days=1))      # the analysis end (exclusive)
PRE = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("shapes")
    project_dir = sp.write_project(root / "project", f"p:\n  target: dev\n  outputs:\n    dev: "
                                   f"{{type: duckdb, path: '{root / 'w.duckdb'}', schema: wn}}\n")
    tables = sp.generate()
    target = load_target(project_dir)
    with connect(target) as adapter:
        for name, cols in tables.items():
            adapter.load_columns(name, cols)
    return load_project(project_dir), target, tables


def _frame(cols: dict) -> pd.DataFrame:
    return pd.DataFrame({k: v for k, v in cols.items()})


def independent_units(tables: dict) -> pd.DataFrame:
    """Per unit, every unit measure of the stateless run, computed with pandas."""
    a = _frame(tables["raw2.assignments"])
    a = a[(a.exp == sp.EXPERIMENT) & (a.seen_at >= pd.Timestamp(sp.START)) & (a.seen_at < END) & a.uid.notna()]
    units = a.groupby("uid").agg(fe=("seen_at", "min"), lo=("arm", "min"), hi=("arm", "max")).reset_index()
    units["variant"] = np.where(units.lo == units.hi, units.lo, "__multiple__")
    units = units.set_index("uid")
    fe_date = units.fe.dt.normalize()
    units["post_days"] = np.maximum((END - fe_date).dt.days, 1)

    def windowed(rows: pd.DataFrame, ts: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = rows.join(units[["fe"]], on="uid", how="inner")
        post = rows[(rows[ts] >= rows.fe) & (rows[ts] < END)]
        pre = rows[(rows[ts] < rows.fe) & (rows[ts] >= rows.fe - PRE)]
        return post, pre

    out = pd.DataFrame(index=units.index)
    act = _frame(tables["raw2.actions"])
    post, pre = windowed(act, "seen_at")
    for suffix, rows in (("", post), ("__pre", pre)):
        click = rows[rows.kind == "click"]
        buy = rows[rows.kind == "buy"]
        out["clicks" + suffix] = click.groupby("uid").size()
        out["spend" + suffix] = buy.groupby("uid").amount.sum(min_count=1)
        out["buyer" + suffix] = buy.groupby("uid").size().clip(upper=1)
        out["active" + suffix] = rows[rows.kind.isin(["click", "view"])].groupby("uid").seen_at.apply(
            lambda t: t.dt.normalize().nunique())
        out["daily_rate" + suffix] = rows.groupby("uid").seen_at.apply(lambda t: t.dt.normalize().nunique())
        views = rows[(rows.kind == "view") & rows["item"].notna()]
        out["items_seen" + suffix] = views.groupby("uid")["item"].nunique()
        lat = rows[rows.latency_ms.notna()]
        out["latency" + suffix] = lat.groupby("uid").latency_ms.sum()
        out["latency" + ("__den" if not suffix else "__pre_den")] = lat.groupby("uid").size()
    # retention on day 3: active in [fe + 3 days, fe + 4 days), only units whose day 3 is over
    eligible = (units.fe + pd.Timedelta(days=4) <= END).astype(float)
    act3 = post[post.kind.isin(["click", "view"]) & (post.seen_at >= post.fe + pd.Timedelta(days=3))
                & (post.seen_at < post.fe + pd.Timedelta(days=4))]
    out["day3_return"] = act3.groupby("uid").size().clip(upper=1).reindex(out.index).fillna(0) * eligible
    out["day3_return__den"] = eligible
    was_active = pre[pre.kind.isin(["click", "view"])].groupby("uid").size().clip(upper=1)
    out["day3_return__pre"] = was_active.reindex(out.index).fillna(0) * eligible
    # the funnel view -> click -> buy: first rows of each step in order, the last within 48 hours
    firsts = {k: post[post.kind == k].groupby("uid").seen_at.min().reindex(out.index) for k in ("view", "click", "buy")}
    v, c, b = firsts["view"], firsts["click"], firsts["buy"]
    out["view_to_buy__viewed"] = v.notna().astype(float)
    out["view_to_buy__clicked"] = (v.notna() & c.notna() & (c >= v) & (c < v + pd.Timedelta(hours=48))).astype(float)
    out["view_to_buy__bought"] = (out["view_to_buy__clicked"].astype(bool) & b.notna() & (b >= c)
                                  & (b < v + pd.Timedelta(hours=48))).astype(float)
    week = post[(post.kind == "click") & (post.seen_at < post.fe + pd.Timedelta(days=7))]
    out["first_week_clicks"] = week.groupby("uid").size()
    out["first_week_clicks__pre"] = out["clicks__pre"]
    orders = _frame(tables["raw2.orders"])
    post, pre = windowed(orders, "ordered_at")
    out["basket__num"], out["basket__num__pre"] = post.groupby("uid").total.sum(), pre.groupby("uid").total.sum()
    out["basket__den"], out["basket__den__pre"] = post.groupby("uid").size(), pre.groupby("uid").size()
    out = out.fillna(0.0).astype(float)
    out["daily_rate"] = out["daily_rate"] / units.post_days
    # the pre window touches 8 dates unless the first exposure is at midnight (then 7)
    pre_dates = np.where(units.fe == fe_date, 7, 8)
    out["daily_rate__pre"] = out["daily_rate__pre"] / pre_dates
    out["variant"] = units.variant
    out["post_days"] = units.post_days.astype(float)
    return out


SHAPES = {
    "bitmask, own key type": {},
    "count distinct dates": {"bitmask": ()},
    # a period longer than one bigint word (63 days) spans several words: 5-day words here
    "bitmask of several words": {"word": 5},
    "keys as text": {"unit_keys": "text"},
    "grouped scan": {"grouped_from": 1},
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_equals_an_independent_computation(shapes, monkeypatch, shape):
    project, target, tables = shapes
    opts = SHAPES[shape]
    if "bitmask" in opts:
        monkeypatch.setattr(render, "BITMASK_DIALECTS", opts["bitmask"])
    if "word" in opts:
        monkeypatch.setattr(render, "BITMASK_WORD", opts["word"])
    if "grouped_from" in opts:
        monkeypatch.setattr(render, "GROUPED_SCAN_MIN_COLUMNS", opts["grouped_from"])
    if "unit_keys" in opts:
        from warehouse_native import runner
        monkeypatch.setattr(runner, "unit_keys", lambda adapter, columns: opts["unit_keys"])
    with connect(target) as adapter:
        result = run_experiment(project, target, adapter, sp.EXPERIMENT, as_of=sp.AS_OF, mode="stateless",
                                strategy="temp")
        plan = result.plan
        assert plan.unit_keys == opts.get("unit_keys", "integer")
        if shape == "count distinct dates":
            sql = "\n".join(s.sql for s in __import__("warehouse_native.sql", fromlist=["compile_plan"]).compile_plan(
                plan, dialect="duckdb", strategy="temp").statements)
            assert "bit_or" not in sql.lower() and "count(distinct cast(" in sql.lower()
        if "word" in opts:   # several words, with the shift clamped for rows of the other words
            sql = "\n".join(s.sql for s in __import__("warehouse_native.sql", fromlist=["compile_plan"]).compile_plan(
                plan, dialect="duckdb", strategy="temp").statements).lower()
            assert sql.count("bit_or(") >= 2 * 3 and "greatest(" in sql and "least(" in sql
        got = pd.DataFrame(adapter.fetch(f"select * from wn.unit_metrics__{sp.EXPERIMENT}")).set_index("unit_id")
        card = scorecard(adapter, "wn", sp.EXPERIMENT)
    expected = independent_units(tables)
    got.index = got.index.astype("int64")
    assert set(got.index) == set(expected.index) and len(got) > 2500
    assert (got.variant == expected.variant.loc[got.index]).all()
    bad = []
    for col in expected.columns.drop("variant"):
        a, b = got[col].astype(float), expected[col].loc[got.index]
        diff = ~np.isclose(a, b, rtol=1e-9, atol=1e-12)
        if diff.any():
            bad.append(f"{col}: {int(diff.sum())} units differ, e.g. {a[diff].head(2).to_dict()} vs {b[diff].head(2).to_dict()}")
    assert not bad, "\n".join(bad)
    # and every shape publishes the same scorecard
    if shape == next(iter(SHAPES)):
        test_every_shape_equals_an_independent_computation.reference = card
    else:
        assert assert_same_rows(test_every_shape_equals_an_independent_computation.reference, card, shape) > 1000


def test_unit_keys_of_different_types_are_compared_as_text(shapes, tmp_path):
    """A metric source whose unit column is text while the exposures' is an integer: wn casts
    both sides, and the numbers do not change."""
    project, target, tables = shapes
    with connect(target) as adapter:
        reference = scorecard(adapter, "wn", sp.EXPERIMENT) if adapter.table_columns("wn", "scorecard") else None
        adapter.execute("create or replace table raw2.orders_int as select * from raw2.orders")
        adapter.execute("create or replace table raw2.orders as "
                        "select cast(uid as varchar) as uid, ordered_at, total, items from raw2.orders_int")
        try:
            result = run_experiment(project, target, adapter, sp.EXPERIMENT, as_of=sp.AS_OF, mode="stateless")
            assert result.plan.unit_keys == "text"
            card = scorecard(adapter, "wn", sp.EXPERIMENT)
        finally:
            adapter.execute("create or replace table raw2.orders as select * from raw2.orders_int")
    if reference is None:
        pytest.skip("needs the shapes run of the test above")
    assert assert_same_rows(reference, card, "text keys") > 1000
    assert not math.isnan(card[("basket", "one_page", None, None)]["variant_mean"])
