"""Tests of the demo data generator: contract (columns, types, ranges, determinism) and story
(assignment is fair, the planted effects are there, pre-period activity predicts post)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from scipy import stats

from warehouse_native.demo import DEMO_TABLES, DemoConfig, generate_demo
from warehouse_native.demo import story as S

USERS = 20_000  # the default size (what the demo and acceptance tests use); ~0.3 s to make

EXPOSURE_COLUMNS = {
    "user_id": "O",
    "stable_id": "O",
    "experiment": "O",
    "group_name": "O",
    "ts": "M",
    "country": "O",
    "device": "O",
}
EVENT_COLUMNS = {"user_id": "O", "ts": "M", "event_name": "O", "value": "f", "country": "O"}


@pytest.fixture(scope="module")
def data():
    return generate_demo(DemoConfig(users=USERS))


def _uidx(user_ids: np.ndarray) -> np.ndarray:
    return np.fromiter((int(u[1:]) for u in user_ids), np.int64, len(user_ids))


@pytest.fixture(scope="module")
def units(data):
    """Per exposed user of button_color_v3: variant (or __multiple__), first exposure ts."""
    ex = data["raw.exposures"]
    m = ex["experiment"] == S.EXPERIMENT
    user, ts, group = _uidx(ex["user_id"][m]), ex["ts"][m], ex["group_name"][m]
    order = np.lexsort((ts, user))
    user, ts, group = user[order], ts[order], group[order]
    first = np.ones(len(user), bool)
    first[1:] = user[1:] != user[:-1]
    starts = np.flatnonzero(first)
    n_rows = np.diff(np.append(starts, len(user)))
    code = np.unique(group, return_inverse=True)[1]
    n_groups = np.maximum.reduceat(code, starts) - np.minimum.reduceat(code, starts)
    variant = group[starts].astype(object)
    variant[n_groups > 0] = "__multiple__"
    return {"user": user[starts], "first": ts[starts], "variant": variant, "rows": n_rows}


@pytest.fixture(scope="module")
def user_metrics(data, units):
    """Post (from first exposure) and 14-day pre counts per exposed user, in numpy."""
    ev = data["raw.events"]
    fe = np.full(USERS, np.datetime64("NaT"), "datetime64[us]")
    fe[units["user"]] = units["first"]
    user = _uidx(ev["user_id"])
    ts = ev["ts"]
    exposed = ~np.isnat(fe[user])
    post = exposed & (ts >= fe[user])
    pre = exposed & (ts < fe[user]) & (ts >= fe[user] - np.timedelta64(14, "D"))
    out = {}
    for name in ("page_view", "session_start", "visited_signup", "purchase", "api_request",
                 "api_success"):
        is_name = ev["event_name"] == name
        out[name] = np.bincount(user[post & is_name], minlength=USERS)[units["user"]]
        out[name + "_pre"] = np.bincount(user[pre & is_name], minlength=USERS)[units["user"]]
    buy = post & (ev["event_name"] == "purchase")
    out["revenue"] = np.bincount(user[buy], ev["value"][buy], minlength=USERS)[units["user"]]
    out["variant"] = units["variant"]
    return out


# --- contract ---------------------------------------------------------------------------------


def test_tables_columns_and_dtypes(data):
    assert tuple(data) == DEMO_TABLES == ("raw.exposures", "raw.events")
    for table, spec in (("raw.exposures", EXPOSURE_COLUMNS), ("raw.events", EVENT_COLUMNS)):
        cols = data[table]
        assert list(cols) == list(spec)
        lengths = {len(a) for a in cols.values()}
        assert len(lengths) == 1 and lengths.pop() > 0
        for name, kind in spec.items():
            arr = cols[name]
            assert arr.ndim == 1
            assert arr.dtype.kind == kind, (table, name, arr.dtype)
            if kind == "M":
                assert arr.dtype == np.dtype("datetime64[us]")
            if kind == "f":
                assert arr.dtype == np.float64
            if kind == "O":
                assert all(type(v) is str for v in arr[:1000])


def test_default_size_is_in_range(data):
    assert DemoConfig().users == USERS
    assert 500_000 <= len(data["raw.events"]["ts"]) <= 1_500_000
    exposed = np.unique(data["raw.exposures"]["user_id"]).size
    assert 0.7 * USERS <= exposed <= 0.9 * USERS


def test_deterministic(data):
    again = generate_demo(DemoConfig(users=USERS))
    for table in DEMO_TABLES:
        for name, arr in data[table].items():
            other = again[table][name]
            if arr.dtype == object:
                assert arr.tolist() == other.tolist(), (table, name)
            else:
                assert arr.tobytes() == other.tobytes(), (table, name)


def test_seed_changes_data(data):
    other = generate_demo(DemoConfig(users=USERS, seed=8))
    assert len(other["raw.events"]["ts"]) != len(data["raw.events"]["ts"]) or not np.array_equal(
        other["raw.events"]["ts"], data["raw.events"]["ts"]
    )
    assert other["raw.exposures"]["group_name"].tolist() != data["raw.exposures"][
        "group_name"
    ].tolist()


def test_values_and_categories(data):
    ev, ex = data["raw.events"], data["raw.exposures"]
    assert set(ev["event_name"]) == set(S.EVENT_NAMES)
    buy = ev["event_name"] == "purchase"
    assert np.isnan(ev["value"][~buy]).all()
    assert (ev["value"][buy] > 0).all() and np.isfinite(ev["value"][buy]).all()
    assert set(ev["country"]) == set(S.COUNTRIES) == set(ex["country"])
    assert set(ex["device"]) == set(S.DEVICES)
    assert set(ex["experiment"]) == {S.EXPERIMENT, S.GATE}
    assert set(ex["group_name"][ex["experiment"] == S.EXPERIMENT]) == set(S.EXPERIMENT_VARIANTS)
    assert set(ex["group_name"][ex["experiment"] == S.GATE]) == set(S.GATE_VARIANTS)
    assert all(u.startswith("u") and len(u) == 7 for u in ev["user_id"][:1000])
    # A user's country is the same everywhere.
    countries = dict(zip(ex["user_id"].tolist(), ex["country"].tolist()))
    sample = slice(0, 20_000)
    assert all(
        countries.get(u, c) == c
        for u, c in zip(ev["user_id"][sample].tolist(), ev["country"][sample].tolist())
    )


def test_timestamps_in_range(data):
    cfg = DemoConfig(users=USERS)
    lo = np.datetime64(cfg.start.isoformat(), "us")
    hi = lo + np.timedelta64(cfg.days, "D")
    ev_ts, ex = data["raw.events"]["ts"], data["raw.exposures"]
    assert ev_ts.min() >= lo and ev_ts.max() < hi
    # Events on every day of the range; day-ordered.
    days = (ev_ts - lo).astype("timedelta64[D]").astype(int)
    assert np.unique(days).size == cfg.days
    assert (np.diff(days) >= 0).all()
    # Exposures only while the experiment / gate run (and data exists), sorted by ts.
    assert (np.diff(ex["ts"].astype(np.int64)) >= 0).all()
    for name, first, last in (
        (S.EXPERIMENT, cfg.experiment_start, cfg.experiment_end),
        (S.GATE, cfg.gate_start, cfg.gate_end),
    ):
        ts = ex["ts"][ex["experiment"] == name]
        assert ts.min() >= np.datetime64(first.isoformat(), "us")
        assert ts.max() < min(np.datetime64(last.isoformat(), "us") + np.timedelta64(1, "D"), hi)
    assert cfg.experiment_start == date(2026, 10, 15) and cfg.experiment_end == date(2026, 10, 29)
    assert cfg.gate_start == date(2026, 10, 18) and cfg.gate_end == date(2026, 10, 28)


def test_duckdb_registers_as_sql_types(data):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    for table, name in (("raw.events", "ev"), ("raw.exposures", "ex")):
        con.register(name, data[table])
    types = {r[0]: r[1] for r in con.sql("describe ev").fetchall()}
    assert types == {"user_id": "VARCHAR", "ts": "TIMESTAMP", "event_name": "VARCHAR",
                     "value": "DOUBLE", "country": "VARCHAR"}
    types = {r[0]: r[1] for r in con.sql("describe ex").fetchall()}
    assert types == {c: ("TIMESTAMP" if c == "ts" else "VARCHAR") for c in EXPOSURE_COLUMNS}
    n_null, n_nan = con.sql(
        "select count(*) filter (where value is null), count(*) filter (where isnan(value)) "
        "from ev where event_name <> 'purchase'"
    ).fetchall()[0]
    assert n_null == int((data["raw.events"]["event_name"] != "purchase").sum()) and n_nan == 0


# --- story ------------------------------------------------------------------------------------


def test_exposure_counts_and_multi_exposed(units):
    n = len(units["user"])
    assert 0.7 * USERS <= n <= 0.9 * USERS
    assert units["rows"].min() == 1 and units["rows"].max() <= S.MAX_EXPOSURE_ROWS + 1
    assert (units["rows"] > 1).mean() > 0.5
    multi = (units["variant"] == "__multiple__").mean()
    assert 0.002 <= multi <= 0.01


def test_stable_ids(data):
    ex = data["raw.exposures"]
    pairs = set(zip(ex["user_id"].tolist(), ex["stable_id"].tolist()))
    per_user = {}
    for u, s in pairs:
        per_user.setdefault(u, set()).add(s)
    # One device per user, a second one only for some multi-exposed users.
    assert max(len(s) for s in per_user.values()) <= 3
    assert np.mean([len(s) == 1 for s in per_user.values()]) > 0.98
    assert len({s for _, s in pairs}) == len(pairs)  # device ids are never shared


def test_variant_shares_pass_srm(units):
    v = units["variant"]
    v = v[v != "__multiple__"]
    observed = [int((v == name).sum()) for name in S.EXPERIMENT_VARIANTS]
    expected = np.asarray(S.EXPERIMENT_WEIGHTS) * sum(observed)
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_gate_shares_pass_srm(data):
    ex = data["raw.exposures"]
    m = ex["experiment"] == S.GATE
    users, first = np.unique(ex["user_id"][m], return_index=True)
    groups = ex["group_name"][m][first]  # may be the multi row for a few users: fine
    observed = [int((groups == name).sum()) for name in S.GATE_VARIANTS]
    expected = np.asarray(S.GATE_WEIGHTS) * sum(observed)
    assert stats.chisquare(observed, expected).pvalue > 0.001


def _arm(metrics, name, variant):
    return metrics[name][metrics["variant"] == variant].astype(float)


def test_red_lifts_visited_signup(user_metrics):
    red = _arm(user_metrics, "visited_signup", "red") > 0
    blue = _arm(user_metrics, "visited_signup", "blue") > 0
    table = [[red.sum(), (~red).sum()], [blue.sum(), (~blue).sum()]]
    assert stats.fisher_exact(table, alternative="greater").pvalue < 0.001
    assert 1.1 < red.mean() / blue.mean() < 1.6  # planted: about 1.28


def test_orange_lowers_revenue(user_metrics):
    orange = _arm(user_metrics, "revenue", "orange")
    blue = _arm(user_metrics, "revenue", "blue")
    assert stats.ttest_ind(orange, blue, equal_var=False, alternative="less").pvalue < 0.01
    assert 0.6 < orange.mean() / blue.mean() < 0.9  # planted: 0.80 * 0.95 = 0.76


def test_green_and_guardrails_are_neutral(user_metrics):
    for variant in ("red", "green", "orange"):
        for name in ("session_start", "page_view", "api_request"):
            p = stats.ttest_ind(
                _arm(user_metrics, name, variant), _arm(user_metrics, name, "blue"),
                equal_var=False,
            ).pvalue
            assert p > 0.001, (variant, name)
    for name in ("visited_signup", "revenue"):
        p = stats.ttest_ind(
            _arm(user_metrics, name, "green"), _arm(user_metrics, name, "blue"), equal_var=False
        ).pvalue
        assert p > 0.001, name
    for variant in S.EXPERIMENT_VARIANTS:
        rate = (_arm(user_metrics, "api_success", variant).sum()
                / _arm(user_metrics, "api_request", variant).sum())
        assert abs(rate - S.API_SUCCESS_PROB) < 0.01, variant


def test_pre_period_predicts_post(user_metrics):
    for name in ("page_view", "session_start"):
        r = np.corrcoef(user_metrics[name], user_metrics[name + "_pre"])[0, 1]
        assert r > 0.5, (name, r)  # CUPED variance reduction r**2 > 25%


def test_sessions_have_page_views(data):
    names = data["raw.events"]["event_name"]
    ratio = (names == "page_view").sum() / (names == "session_start").sum()
    assert 1.8 < ratio < 2.4  # 1 + Poisson(1), a little more for the gate's "on"
    api = (names == "api_success").sum() / (names == "api_request").sum()
    assert abs(api - S.API_SUCCESS_PROB) < 0.005


# --- config -----------------------------------------------------------------------------------


def test_events_per_user_day_scales_volume(data):
    small = generate_demo(DemoConfig(users=2_000, events_per_user_day=1.0))
    big = generate_demo(DemoConfig(users=2_000, events_per_user_day=2.0))
    ratio = len(big["raw.events"]["ts"]) / len(small["raw.events"]["ts"])
    assert 1.8 < ratio < 2.2


def test_short_and_odd_configs_still_work():
    cfg = DemoConfig(users=100, days=5, seed=0, start=date(2025, 1, 30))
    assert cfg.experiment_start == date(2025, 2, 3)  # moved so that it has data
    d = generate_demo(cfg)
    ev_ts = d["raw.events"]["ts"]
    assert ev_ts.min() >= np.datetime64("2025-01-30") and ev_ts.max() < np.datetime64("2025-02-04")
    assert len(d["raw.exposures"]["ts"]) > 0
    # More users than one internal block.
    d = generate_demo(DemoConfig(users=70_000, days=2))
    assert np.unique(d["raw.exposures"]["user_id"]).size > 1_000


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"users": 99}, "users"),
        ({"users": 1000.5}, "users"),
        ({"users": True}, "users"),
        ({"days": 1}, "days"),
        ({"seed": -1}, "seed"),
        ({"start": datetime(2026, 10, 1)}, "start"),
        ({"start": "2026-10-01"}, "start"),
        ({"events_per_user_day": 0}, "events_per_user_day"),
        ({"events_per_user_day": float("nan")}, "events_per_user_day"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DemoConfig(**kwargs)


def test_config_is_frozen():
    cfg = DemoConfig()
    with pytest.raises(Exception):
        cfg.users = 5  # type: ignore[misc]
