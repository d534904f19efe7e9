"""A second project, unlike the demo, for comparing engines and query shapes.

It has every metric type (count, sum with winsorization, conversion, active_days,
daily_participation, count_distinct, mean, ratio, a windowed count, retention, funnel), CUPED with a 7-day
window, a guardrail in the `decrease` direction, three sources (the assignment log, actions,
orders), **integer** unit ids, three unbalanced variants, one dimension with NULL values, and
data with edge cases: multi-exposed units, units with no events, events exactly at the first
exposure and at the analysis end, NULL values, rows of unknown units and NULL unit ids.

``write_project(root, profiles)`` writes the YAML; ``generate(seed)`` the raw tables as numpy
columns (``raw2.assignments``, ``raw2.actions``, ``raw2.orders``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

EXPERIMENT = "checkout_v2"
START = dt.date(2026, 9, 8)
END = dt.date(2026, 9, 21)          # last day counted
DATA_FROM = dt.date(2026, 9, 1)     # 7 pre-exposure days for CUPED
AS_OF = dt.date(2026, 9, 25)
DAYS = (END - DATA_FROM).days + 2   # through the day after the end (rows past the end must not count)

CATALOG = """\
sources:
  - name: assignments
    table: raw2.assignments
    timestamp: seen_at
    units: {uid: uid}
    experiment_column: exp
    variant_column: arm
    dimensions: [platform]
  - name: actions
    table: raw2.actions
    timestamp: seen_at
    units: {uid: uid}
  - name: orders
    table: raw2.orders
    timestamp: ordered_at
    units: {uid: uid}

metrics:
  - {name: clicks, source: actions, type: count, filter: "kind = 'click'"}
  - {name: first_week_clicks, source: actions, type: count, filter: "kind = 'click'", window: {start_day: 0, end_day: 7}}
  - {name: spend, source: actions, type: sum, value: amount, filter: "kind = 'buy'", winsorize: {upper: 0.99}}
  - {name: buyer, source: actions, type: conversion, filter: "kind = 'buy'"}
  - {name: active, source: actions, type: active_days, filter: "kind in ('click', 'view')"}
  - {name: daily_rate, source: actions, type: daily_participation}
  - {name: items_seen, source: actions, type: count_distinct, value: item, filter: "kind = 'view'"}
  - name: latency
    source: actions
    type: mean
    value: latency_ms
    filter: "latency_ms is not null"
    direction: decrease
    tags: [guardrail]
    guardrail: {max_regression: 0.05}
  - {name: order_total, source: orders, type: sum, value: total}
  - {name: order_count, source: orders, type: count}
  - {name: basket, type: ratio, numerator: order_total, denominator: order_count}
  - {name: day3_return, source: actions, type: retention, retention: {day: 3}, filter: "kind in ('click', 'view')"}
  - name: view_to_buy
    source: actions
    type: funnel
    funnel:
      within_hours: 48
      steps:
        - {name: viewed, filter: "kind = 'view'"}
        - {name: clicked, filter: "kind = 'click'"}
        - {name: bought, filter: "kind = 'buy'"}
"""

EXPERIMENT_YAML = f"""\
experiment:
  name: {EXPERIMENT}
  hypothesis: A one-page checkout sells more
  unit: uid
  exposures: {{source: assignments}}
  start: {START}
  end: {END}
  variants:
    - {{name: control, control: true, weight: 0.5}}
    - {{name: one_page, weight: 0.25}}
    - {{name: express, weight: 0.25}}
  primary_metrics: [buyer, spend]
  secondary_metrics: [clicks, first_week_clicks, active, daily_rate, items_seen, basket, day3_return, view_to_buy]
  dimensions: [platform]
  analysis: {{confidence: 0.95, cuped: true, cuped_days: 7, correction: holm}}
"""


def write_project(root: Path, profiles: str) -> Path:
    """The project's files under ``root`` (no models: sources are tables)."""
    for folder in ("metrics", "experiments", "models"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "metrics" / "catalog.yml").write_text(CATALOG)
    (root / "experiments" / f"{EXPERIMENT}.yml").write_text(EXPERIMENT_YAML)
    (root / "profiles.yml").write_text(profiles)
    return root


def _ts(day: dt.date, seconds: np.ndarray) -> np.ndarray:
    base = np.datetime64(day.isoformat(), "us")
    return base + (seconds * 1_000_000).astype("int64").astype("timedelta64[us]")


def generate(units: int = 3000, seed: int = 11) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    uid = rng.choice(np.arange(10_000, 10_000 + units * 20), size=units, replace=False).astype("int64")
    arms = np.array(["control", "one_page", "express"], dtype=object)
    arm = arms[rng.choice(3, size=units, p=[0.5, 0.25, 0.25])]
    platform = np.array(["ios", "android", "web", None], dtype=object)[rng.choice(4, size=units, p=[0.3, 0.3, 0.3, 0.1])]
    first_day = rng.integers(0, (END - START).days + 1, size=units)
    first_sec = rng.integers(0, 86_400, size=units).astype("float64")
    first_sec[:20] = 0.0                                  # exposed exactly at midnight
    exposed_at = _ts(START, first_day * 86_400 + first_sec)
    # the assignment log: first exposure, repeats, some units in a second arm, bad rows
    reps = rng.integers(1, 4, size=units)
    a_uid = np.repeat(uid, reps)
    a_arm = np.repeat(arm, reps)
    a_platform = np.repeat(platform, reps)
    a_at = np.repeat(exposed_at, reps) + (rng.integers(0, 3 * 86_400, size=reps.sum()) * (
        np.arange(reps.sum()) != np.repeat(np.cumsum(reps) - reps, reps))).astype("timedelta64[s]")
    multi = rng.choice(units, size=units // 100, replace=False)
    extra = {"uid": uid[multi], "exp": np.full(len(multi), EXPERIMENT, dtype=object),
             "arm": np.where(arm[multi] == "control", "express", "control").astype(object),
             "platform": platform[multi], "seen_at": exposed_at[multi] + np.timedelta64(3600, "s")}
    other = {"uid": uid[:50], "exp": np.full(50, "other_test", dtype=object), "arm": np.full(50, "on", dtype=object),
             "platform": platform[:50], "seen_at": exposed_at[:50]}
    late = {"uid": uid[50:60], "exp": np.full(10, EXPERIMENT, dtype=object), "arm": arm[50:60],
            "platform": platform[50:60], "seen_at": np.full(10, np.datetime64((END + dt.timedelta(days=1)).isoformat(), "us"))}
    assignments = {"uid": a_uid, "exp": np.full(len(a_uid), EXPERIMENT, dtype=object), "arm": a_arm,
                   "platform": a_platform, "seen_at": a_at}
    for part in (extra, other, late):
        for k in assignments:
            assignments[k] = np.concatenate([assignments[k], part[k]])

    # actions: a per-unit activity level; 15% of units never act; the treatment clicks a bit more
    lift = np.where(arm == "one_page", 1.15, np.where(arm == "express", 1.05, 1.0))
    rate = rng.gamma(1.5, 1.2, size=units) * (rng.random(units) > 0.15)
    counts = rng.poisson(rate[:, None] * np.where(np.arange(DAYS)[None, :] >= (START - DATA_FROM).days + first_day[:, None],
                                                   lift[:, None], 1.0), size=(units, DAYS))
    unit_idx, day_idx = np.nonzero(counts)
    reps = counts[unit_idx, day_idx]
    unit_idx, day_idx = np.repeat(unit_idx, reps), np.repeat(day_idx, reps)
    n = len(unit_idx)
    at = _ts(DATA_FROM, day_idx * 86_400 + rng.integers(0, 86_400, size=n))
    kinds = np.array(["click", "view", "buy", "ping"], dtype=object)[rng.choice(4, size=n, p=[0.45, 0.35, 0.08, 0.12])]
    amount = np.where(kinds == "buy", np.round(rng.lognormal(3.0, 1.0, size=n), 2), np.nan)
    amount[(kinds == "buy") & (rng.random(n) < 0.05)] = np.nan          # a purchase without an amount
    item = np.where(kinds == "view", np.array([f"item_{i}" for i in range(40)], dtype=object)[rng.integers(0, 40, size=n)], None)
    latency = np.where(rng.random(n) < 0.7, rng.gamma(2.0, 60.0, size=n), np.nan)
    act_uid = uid[unit_idx]
    # edge rows: exactly at the first exposure, exactly at the analysis end (excluded), NULL and unknown units
    edge_n = 30
    edge = {"uid": np.concatenate([uid[:edge_n], uid[edge_n:2 * edge_n], np.array([1, 2, 3], dtype="int64")]),
            "seen_at": np.concatenate([exposed_at[:edge_n],
                                  np.full(edge_n, np.datetime64((END + dt.timedelta(days=1)).isoformat(), "us")),
                                  exposed_at[:3]]),
            "kind": np.full(2 * edge_n + 3, "click", dtype=object),
            "amount": np.full(2 * edge_n + 3, np.nan), "item": np.full(2 * edge_n + 3, None, dtype=object),
            "latency_ms": np.full(2 * edge_n + 3, 100.0)}
    actions = {"uid": np.concatenate([act_uid, edge["uid"]]), "seen_at": np.concatenate([at, edge["seen_at"]]),
               "kind": np.concatenate([kinds, edge["kind"]]), "amount": np.concatenate([amount, edge["amount"]]),
               "item": np.concatenate([item, edge["item"]]), "latency_ms": np.concatenate([latency, edge["latency_ms"]])}

    buys = np.flatnonzero(kinds == "buy")
    orders = {"uid": act_uid[buys], "ordered_at": at[buys] + np.timedelta64(30, "s"),
              "total": np.where(np.isnan(amount[buys]), 0.0, amount[buys]) + 4.99,
              "items": rng.integers(1, 5, size=len(buys)).astype("int64")}
    return {"raw2.assignments": assignments, "raw2.actions": actions, "raw2.orders": orders}


def split(tables: dict[str, dict[str, np.ndarray]], before: dt.date, late_share: float = 0.1,
          seed: int = 5) -> tuple[dict, dict]:
    """(what has arrived by ``before``, the rest): rows before ``before``, less ``late_share`` of
    the last day's rows, which arrive late with the rest."""
    rng = np.random.default_rng(seed)
    cut = np.datetime64(before.isoformat(), "us")
    last = cut - np.timedelta64(1, "D")
    first: dict = {}
    rest: dict = {}
    for name, cols in tables.items():
        ts = cols["ordered_at"] if "ordered_at" in cols else cols["seen_at"]
        now = (ts < cut) & ~((ts >= last) & (rng.random(len(ts)) < late_share))
        first[name] = {k: v[now] for k, v in cols.items()}
        rest[name] = {k: v[~now] for k, v in cols.items()}
    return first, rest
