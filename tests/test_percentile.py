"""Percentile metrics (type: percentile): exact quantiles and clustered intervals from the warehouse.

* exactness: the SQL's quantile and outer-interval bounds per variant and slice equal an
  independent numpy implementation over the raw rows (1e-9), on data with units without
  events, ties, NULL values, a unit with a single event and events on the window bounds;
  and the SQL's inputs equal the statistics' own array path (``stats.quantile_arm``);
* calibration by simulation (clustered events, seeded): coverage of the CI for the
  difference of quantiles, A/A false-positive rate;
* the pipeline: scorecard rows (guardrail verdict, correction family, recomputable from
  ``metric_aggregates``), stateless and incremental runs giving identical rows, PostgreSQL
  giving DuckDB's numbers, ``wn compile`` for every dialect;
* validation: clear errors with file, line, field and fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from warehouse_native import stats
from warehouse_native.errors import CompileError, ProjectError
from warehouse_native.project import load_project, load_target
from warehouse_native.runner import compile_experiment, run_experiment
from warehouse_native.warehouse import connect

from test_postgres import pg_database, pg_server  # noqa: F401  (fixtures: a throw-away database, or a loud skip)

EXPERIMENT = "latency_test"
START = dt.datetime(2026, 3, 1)
AS_OF = dt.date(2026, 3, 20)           # after the experiment's end (2026-03-14)
END = dt.datetime(2026, 3, 15)         # the analysis end (exclusive)
EARLY_AS_OF = dt.date(2026, 3, 9)
UNITS = 400
COUNTRIES = np.array(["US", "DE", None], dtype=object)
TREATMENT_FACTOR = 1.3                 # treatment latencies are 30% higher: the p95 guardrail fails
US = 1_000_000

SOURCES = """\
sources:
  - name: exposures
    table: raw.exposures
    timestamp: ts
    units: {user_id: user_id}
    experiment_column: experiment
    variant_column: group_name
    dimensions: [country]
  - name: requests
    table: raw.requests
    timestamp: ts
    units: {user_id: user_id}
    columns: [user_id, ts, endpoint, latency_ms]
"""

METRICS = """\
metrics:
  - name: api_requests
    source: requests
    type: count
    filter: "endpoint = 'api'"
  - name: api_latency_p95
    description: 95th percentile of API latency over all requests
    source: requests
    type: percentile
    percentile: 0.95
    value: latency_ms
    filter: "endpoint = 'api'"
    direction: decrease
    tags: [guardrail]
  - name: api_latency_p50
    source: requests
    type: percentile
    percentile: 0.5
    value: latency_ms
    filter: "endpoint = 'api'"
    direction: decrease
"""

EXPERIMENT_YML = f"""\
experiment:
  name: {EXPERIMENT}
  unit: user_id
  exposures: {{source: exposures}}
  start: 2026-03-01
  end: 2026-03-14
  variants:
    - {{name: control, control: true, weight: 0.5}}
    - {{name: treatment, weight: 0.5}}
  primary_metrics: [api_latency_p50, api_requests]
  dimensions: [country]
  analysis: {{confidence: 0.95, cuped: true, correction: holm}}
"""


def write_project(root: Path, db: Path, pg: dict | None = None) -> Path:
    (root / "metrics").mkdir(parents=True)
    (root / "experiments").mkdir()
    (root / "metrics" / "sources.yml").write_text(SOURCES)
    (root / "metrics" / "latency.yml").write_text(METRICS)
    (root / "experiments" / f"{EXPERIMENT}.yml").write_text(EXPERIMENT_YML)
    outputs = f"    dev: {{type: duckdb, path: '{db}', schema: wn}}\n"
    if pg:
        outputs += ("    pg: {type: postgres, host: %(host)s, port: %(port)s, user: %(user)s, dbname: %(dbname)s, "
                    "schema: wn}\n" % pg)
    (root / "profiles.yml").write_text(f"pct:\n  target: dev\n  outputs:\n{outputs}")
    return root


# -- data ---------------------------------------------------------------------------------

def _ts(base: dt.datetime, offset_us) -> np.ndarray:
    return np.datetime64(base, "us") + np.asarray(offset_us, dtype=np.int64).astype("timedelta64[us]")


def make_data(seed: int = 3) -> dict[str, dict[str, np.ndarray]]:
    """Exposures and requests with the edge cases: units without events, ties (latencies in whole
    10 ms steps), NULL latencies, one unit with a single event, rows exactly on the window bounds,
    pre-exposure rows, a multi-exposed unit, a NULL country, 'health' rows the filter drops."""
    rng = np.random.default_rng(seed)
    users = np.array([f"u{i:04d}" for i in range(UNITS)], dtype=object)
    variant = np.where(rng.random(UNITS) < 0.5, "control", "treatment").astype(object)
    country = COUNTRIES[rng.choice(3, UNITS, p=[0.5, 0.35, 0.15])]
    first_us = rng.integers(0, 10 * 86_400 * US, UNITS)
    ex_user, ex_ts, ex_variant, ex_country = [users], [first_us], [variant], [country]
    again = rng.random(UNITS) < 0.3                       # logged again later, same variant
    ex_user.append(users[again])
    ex_ts.append(first_us[again] + rng.integers(1, 86_400 * US, again.sum()))
    ex_variant.append(variant[again])
    ex_country.append(country[again])
    multi = users[-1]                                     # also logged in the other variant
    ex_user.append(np.array([multi], dtype=object))
    ex_ts.append(np.array([first_us[-1] + 3600 * US]))
    ex_variant.append(np.array(["control" if variant[-1] == "treatment" else "treatment"], dtype=object))
    ex_country.append(np.array([country[-1]], dtype=object))
    exposures = {
        "user_id": np.concatenate(ex_user), "ts": _ts(START, np.concatenate(ex_ts)),
        "experiment": np.full(sum(len(u) for u in ex_user), EXPERIMENT, dtype=object),
        "group_name": np.concatenate(ex_variant), "country": np.concatenate(ex_country)}

    # requests: Poisson per unit (10% of units have none), unit-level latency level (clustering)
    counts = rng.poisson(6, UNITS)
    counts[rng.random(UNITS) < 0.1] = 0
    counts[5] = 1                                          # a unit with a single request
    level = rng.lognormal(0.0, 0.5, UNITS)
    unit = np.repeat(np.arange(UNITS), counts)
    window = (END - START).total_seconds() * US
    offset = first_us[unit] + (rng.random(len(unit)) * (window - first_us[unit])).astype(np.int64)
    factor = np.where(variant[unit] == "treatment", TREATMENT_FACTOR, 1.0)
    latency = np.round(level[unit] * rng.lognormal(np.log(120.0), 0.6, len(unit)) * factor / 10.0) * 10.0
    latency[rng.random(len(unit)) < 0.05] = np.nan          # NULL values
    endpoint = np.where(rng.random(len(unit)) < 0.1, "health", "api").astype(object)
    # pre-exposure rows (outside the window)
    pre_units = rng.choice(UNITS, 200)
    pre_off = first_us[pre_units] - rng.integers(1, 5 * 86_400 * US, 200)
    # window bounds: at first exposure (in), 1 us before it (out), 1 us before the end (in), at the end (out)
    edge_units = np.array([1, 2, 3, 4, 6])
    end_us = int(window)
    edges = [(edge_units, first_us[edge_units]), (edge_units, first_us[edge_units] - 1),
             (edge_units, np.full(5, end_us - 1)), (edge_units, np.full(5, end_us))]
    e_unit = [unit, pre_units] + [u for u, _ in edges]
    e_off = [offset, pre_off] + [o for _, o in edges]
    e_lat = [latency, np.full(200, 5000.0)] + [np.full(5, v) for v in (7000.0, 9000.0, 8000.0, 9500.0)]
    e_end = [endpoint, np.full(200, "api", dtype=object)] + [np.full(5, "api", dtype=object)] * 4
    all_unit = np.concatenate(e_unit)
    lat = np.concatenate(e_lat)
    lat = np.where(variant[all_unit] == "treatment", lat, lat)   # edge rows keep their values
    requests = {"user_id": users[all_unit], "ts": _ts(START, np.concatenate(e_off)),
                "endpoint": np.concatenate(e_end), "latency_ms": lat}
    return {"raw.exposures": exposures, "raw.requests": requests}


# -- the independent numpy implementation ----------------------------------------------------

def expected(data, percentile: float, end: dt.datetime, confidence: float = 0.95) -> dict[tuple, dict]:
    """Per (variant, dimension, dimension_value): units, events, the quantile, the share sums and
    the outer bounds, computed from the raw rows with numpy (np.quantile, explicit per-unit sums)."""
    ex, rq = data["raw.exposures"], data["raw.requests"]
    end64 = np.datetime64(end, "us")
    first: dict[str, tuple] = {}
    variants: dict[str, set] = {}
    for u, t, v, c in zip(ex["user_id"], ex["ts"], ex["group_name"], ex["country"]):
        if t >= end64:
            continue
        variants.setdefault(u, set()).add(v)
        if u not in first or t < first[u][0]:
            first[u] = (t, c)
    analysed = {u: (first[u][0], next(iter(variants[u])), first[u][1]) for u in first if len(variants[u]) == 1}
    z = sps.norm.ppf(1 - (1 - confidence) / 2)
    events: dict[str, list[float]] = {u: [] for u in analysed}
    for u, t, e, lat in zip(rq["user_id"], rq["ts"], rq["endpoint"], rq["latency_ms"]):
        if u in analysed and e == "api" and not np.isnan(lat) and analysed[u][0] <= t < end64:
            events[u].append(float(lat))
    groups: dict[tuple, list[str]] = {}
    for u, (_, v, c) in analysed.items():
        groups.setdefault((v, None, None), []).append(u)
        groups.setdefault((v, "country", "(null)" if c is None else c), []).append(u)
    out = {}
    for key, members in groups.items():
        values = np.array([x for u in members for x in events[u]])
        row = {"n": len(members), "events": len(values)}
        if len(values):
            q = float(np.quantile(values, percentile))
            a = np.array([sum(x <= q for x in events[u]) for u in members], dtype=float)
            b = np.array([len(events[u]) for u in members], dtype=float)
            r = a.sum() / b.sum()
            k = len(members)
            sigma = math.sqrt(((a - r * b) ** 2).sum() * k / ((k - 1) * b.sum() ** 2)) if k > 1 else None
            row.update(quantile=q, below=a.sum(), below_sq=(a * a).sum(), events_sq=(b * b).sum(),
                       cross=(a * b).sum(), sigma=sigma)
            if sigma is not None:
                row.update(lower=float(np.quantile(values, max(percentile - z * sigma, 0.0))),
                           upper=float(np.quantile(values, min(percentile + z * sigma, 1.0))))
        out[key] = row
    return out


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def duck(tmp_path_factory, data):
    """The test project on DuckDB, seeded, with one stateless run as of AS_OF."""
    root = tmp_path_factory.mktemp("pct")
    project_dir = write_project(root / "project", root / "w.duckdb")
    project, target = load_project(project_dir), load_target(project_dir)
    with connect(target) as adapter:
        for relation, columns in data.items():
            adapter.load_columns(relation, columns)
        result = run_experiment(project, target, adapter, EXPERIMENT, as_of=AS_OF, mode="stateless")
        aggregates = adapter.fetch("select * from wn.metric_aggregates where run_id = ?", [result.run_id])
        scorecard = adapter.fetch("select * from wn.scorecard where run_id = ?", [result.run_id])
    return dict(project=project, target=target, result=result, aggregates=aggregates, scorecard=scorecard,
                dir=project_dir)


def _rows(rows, metric):
    return {(r["variant"], r["dimension"], r["dimension_value"]): r for r in rows if r["metric"] == metric}


# -- exactness --------------------------------------------------------------------------------

def test_edge_cases_are_in_the_data(data):
    rq = data["raw.requests"]
    assert np.isnan(rq["latency_ms"]).sum() > 10
    exp = expected(data, 0.95, END)
    overall = {k: v for k, v in exp.items() if k[1] is None}
    assert sum(v["n"] for v in overall.values()) == UNITS - 1          # the multi-exposed unit is out
    # ties: far fewer distinct latencies than requests
    values = rq["latency_ms"][~np.isnan(rq["latency_ms"])]
    assert len(np.unique(values)) < len(values) / 5
    # the (null) country slice exists
    assert any(k[2] == "(null)" for k in exp)


@pytest.mark.parametrize("metric,p", [("api_latency_p95", 0.95), ("api_latency_p50", 0.5)])
def test_sql_quantile_and_bounds_equal_numpy_over_raw_rows(duck, data, metric, p):
    got = _rows(duck["aggregates"], metric)
    want = expected(data, p, END)
    assert got.keys() == want.keys() and len(got) == 2 * 4      # 2 variants x (overall + US, DE, (null))
    for key, w in want.items():
        g = got[key]
        assert g["n"] == w["n"], key
        assert g["percentile"] == p
        assert g["quantile"] == pytest.approx(w["quantile"], rel=1e-9, abs=1e-9), key
        assert g["quantile_lower"] == pytest.approx(w["lower"], rel=1e-9, abs=1e-9), key
        assert g["quantile_upper"] == pytest.approx(w["upper"], rel=1e-9, abs=1e-9), key
        assert g["quantile_lower"] < g["quantile_upper"], key     # a real interval
        assert (g["sum"], g["sum_sq"], g["den_sum"], g["den_sum_sq"], g["num_den_sum"]) == \
            (w["below"], w["below_sq"], w["events"], w["events_sq"], w["cross"]), key


def test_window_bounds_nulls_and_filter_decide_which_rows_count(duck, data):
    """Rows count in [first exposure, analysis end): the rows at first exposure and 1 us before
    the end count; 1 us before exposure, at the end, NULL latencies and 'health' rows do not."""
    rq = data["raw.requests"]
    got = _rows(duck["aggregates"], "api_latency_p95")
    counted = sum(got[(v, None, None)]["den_sum"] for v in ("control", "treatment"))
    first: dict[str, np.datetime64] = {}
    for u, t in zip(data["raw.exposures"]["user_id"], data["raw.exposures"]["ts"]):
        first[u] = min(first.get(u, t), t)
    multi = data["raw.exposures"]["user_id"][-1]
    end64 = np.datetime64(END, "us")

    def count(lo_closed: bool, hi_closed: bool, keep_nulls: bool = False, keep_health: bool = False) -> int:
        n = 0
        for u, t, e, lat in zip(rq["user_id"], rq["ts"], rq["endpoint"], rq["latency_ms"]):
            fe = first[u]
            inside = (t >= fe if lo_closed else t > fe) and (t <= end64 if hi_closed else t < end64)
            n += inside and u != multi and (keep_health or e == "api") and (keep_nulls or not np.isnan(lat))
        return n

    assert counted == count(True, False)
    assert count(True, False) - count(False, False) >= 5     # the 5 rows at first exposure
    assert count(True, True) - count(True, False) >= 5       # the 5 rows at the end
    assert count(True, False, keep_nulls=True) > counted and count(True, False, keep_health=True) > counted
    # and the edge rows' values: 7000 (at exposure) and 8000 (1 us before the end) are in the
    # control or treatment values, 9000 and 9500 are not (the largest counted value is 8000)
    want = expected(data, 0.9999, END)
    assert max(want[(v, None, None)]["upper"] for v in ("control", "treatment")) == 8000.0


def test_sql_inputs_equal_the_statistics_array_path(duck, data):
    """stats.quantile_arm (used by the simulations below) on the raw rows gives the SQL's arms."""
    ex, rq = data["raw.exposures"], data["raw.requests"]
    end64 = np.datetime64(END, "us")
    first, seen = {}, {}
    for u, t, v in zip(ex["user_id"], ex["ts"], ex["group_name"]):
        seen.setdefault(u, set()).add(v)
        first[u] = min(first.get(u, t), t)
    for variant in ("control", "treatment"):
        members = sorted(u for u in first if seen[u] == {variant})
        code = {u: i for i, u in enumerate(members)}
        keep = [(code[u], lat) for u, t, e, lat in zip(rq["user_id"], rq["ts"], rq["endpoint"], rq["latency_ms"])
                if u in code and e == "api" and not np.isnan(lat) and first[u] <= t < end64]
        arm = stats.quantile_arm([x for _, x in keep], [c for c, _ in keep], percentile=0.95, units=len(members))
        row = _rows(duck["aggregates"], "api_latency_p95")[(variant, None, None)]
        sql = stats.QuantileArm.from_row({**row, "api_latency_p95__den_sum": row["den_sum"],
                                          **{f"api_latency_p95__{k}": row[k] for k in
                                             ("quantile", "quantile_lower", "quantile_upper")}},
                                         "api_latency_p95", arm.z)
        assert (arm.units, arm.events) == (sql.units, sql.events) == (row["n"], row["den_sum"])
        for field in ("quantile", "lower", "upper", "std_error"):
            assert getattr(arm, field) == pytest.approx(getattr(sql, field), rel=1e-9), (variant, field)


# -- the scorecard ------------------------------------------------------------------------------

def test_scorecard_rows_guardrail_and_correction(duck):
    card = _rows(duck["scorecard"], "api_latency_p95")
    row = card[("treatment", None, None)]
    assert row["metric_type"] == "percentile" and row["role"] == "guardrail"
    assert row["control_mean"] < row["variant_mean"]                 # the quantiles
    assert row["rel_delta"] == pytest.approx(TREATMENT_FACTOR - 1, abs=0.15)
    assert row["guardrail_status"] == "fail" and row["guardrail_p_value"] < 0.05
    assert row["abs_ci_lower"] > 0 and row["p_value"] < 0.05
    assert row["cuped"] is False and row["dof"] is None
    assert len(card) == 4                                             # overall + 3 slices
    # recomputable from metric_aggregates: the stats function on the stored arms
    aggs = _rows(duck["aggregates"], "api_latency_p95")
    z = stats.outer_z(0.95)

    def arm(v):
        a = aggs[(v, None, None)]
        return stats.QuantileArm(a["n"], int(a["den_sum"]), a["quantile"], a["quantile_lower"], a["quantile_upper"], z)

    c = stats.compare_quantiles(arm("control"), arm("treatment"))
    assert row["p_value"] == pytest.approx(c.p_value, rel=1e-12)
    assert (row["abs_ci_lower"], row["abs_ci_upper"]) == pytest.approx((c.abs_ci_lower, c.abs_ci_upper), rel=1e-12)
    # the primary family (holm over api_latency_p50 and api_requests)
    prim = {r["metric"]: r for r in duck["scorecard"] if r["role"] == "primary" and r["dimension"] is None}
    assert set(prim) == {"api_latency_p50", "api_requests"}
    adjusted = stats.adjust_p_values([prim["api_latency_p50"]["p_value"], prim["api_requests"]["p_value"]], "holm")
    assert prim["api_latency_p50"]["adjusted_p_value"] == pytest.approx(adjusted[0], rel=1e-12)
    assert prim["api_latency_p50"]["correction"] == "holm"
    assert prim["api_latency_p50"]["adjusted_ci_lower"] <= prim["api_latency_p50"]["abs_ci_lower"]
    assert prim["api_latency_p50"]["mde_80"] > 0


def test_stateless_and_incremental_runs_give_identical_percentile_rows(duck, tmp_path, data):
    project, target = duck["project"], duck["target"]
    columns = ("control_units", "variant_units", "control_mean", "variant_mean", "abs_delta", "abs_ci_lower",
               "abs_ci_upper", "rel_delta", "rel_ci_lower", "rel_ci_upper", "p_value", "adjusted_p_value",
               "guardrail_status")
    with connect(target) as adapter:
        for as_of in (EARLY_AS_OF, AS_OF):     # a first incremental run builds the state, the next one reuses it
            inc = run_experiment(project, target, adapter, EXPERIMENT, as_of=as_of, mode="incremental")
            full = run_experiment(project, target, adapter, EXPERIMENT, as_of=as_of, mode="stateless")
            a = adapter.fetch("select * from wn.scorecard where run_id = ? and metric_type = 'percentile'", [inc.run_id])
            b = adapter.fetch("select * from wn.scorecard where run_id = ? and metric_type = 'percentile'", [full.run_id])
            assert len(a) == len(b) == 2 * 4
            b_by = {(r["metric"], r["variant"], r["dimension"], r["dimension_value"]): r for r in b}
            for r in a:
                other = b_by[(r["metric"], r["variant"], r["dimension"], r["dimension_value"])]
                for col in columns:
                    assert r[col] == other[col], (col, r["metric"], r["dimension_value"])
            # not in the daily series; the other metrics are
            daily = adapter.fetch("select distinct metric from wn.scorecard_daily where run_id = ?", [inc.run_id])
            assert {d["metric"] for d in daily} == {"api_requests"}
        assert inc.mode == "incremental" and "reprocessing" in inc.note
    # the late run's quantile reads the later window: more events than the early run's
    early = expected(data, 0.95, dt.datetime.combine(EARLY_AS_OF + dt.timedelta(days=1), dt.time()))
    late = expected(data, 0.95, END)
    assert early[("control", None, None)]["events"] < late[("control", None, None)]["events"]


def test_compile_writes_the_quantile_statement_for_every_dialect(duck):
    import sqlglot

    for dialect in ("postgres", "spark", "databricks", "snowflake", "bigquery", "trino"):
        plan, compiled = compile_experiment(duck["project"], EXPERIMENT, as_of=AS_OF, schema="wn",
                                            dialect=dialect, strategy="cte")
        steps = [s.step for s in compiled.statements]
        assert steps[-3:] == ["aggregates", "quantiles__api_latency_p50", "quantiles__api_latency_p95"], dialect
        sql = compiled.statements[-1].sql
        assert "row_number() over" in sql.lower() and "api_latency_p95__quantile_upper" in sql
        sqlglot.parse_one(sql, read=dialect)
    # no per-unit column, no CUPED covariate, not in the aggregates statement
    assert all("api_latency" not in c.name for s in plan.scans for c in s.columns)
    assert "api_latency" not in compiled.statements[-3].sql and compiled.statements[-3].step == "aggregates"
    # DuckDB: one statement; each percentile metric's query is a part of it, its CTEs renamed
    plan, one = compile_experiment(duck["project"], EXPERIMENT, as_of=AS_OF, schema="wn", dialect="duckdb",
                                   strategy="cte")
    assert [s.step for s in one.statements] == ["aggregates"] and one.combined
    tree = sqlglot.parse_one(one.statements[0].sql, read="duckdb")
    ctes = [c.alias for c in tree.find_all(sqlglot.exp.CTE)]
    assert len(ctes) == len(set(ctes)) and "__wn_q0_ranked" in ctes and "__wn_q1_ranked" in ctes
    assert {"api_latency_p50__quantile", "api_latency_p95__quantile_upper"} <= set(tree.named_selects)


def test_power_refuses_a_percentile_metric(duck):
    from warehouse_native.plan import build_power_plan

    with pytest.raises(CompileError, match="does not support percentile"):
        build_power_plan(duck["project"], "api_latency_p95", unit="user_id", as_of=AS_OF, days=14, schema="wn")


# -- PostgreSQL --------------------------------------------------------------------------------

@pytest.mark.postgres
def test_postgres_gives_duckdbs_numbers(duck, data, tmp_path, pg_database):
    from test_postgres import HOST, PORT, USER  # noqa: PLC0415

    pg = dict(host=HOST, port=PORT, user=USER, dbname=pg_database)
    project_dir = write_project(tmp_path / "pg", tmp_path / "unused.duckdb", pg=pg)
    project, target = load_project(project_dir), load_target(project_dir, target="pg")
    with connect(target) as adapter:
        for relation, columns in data.items():
            adapter.load_columns(relation, columns)
        for mode in ("stateless", "incremental"):
            result = run_experiment(project, target, adapter, EXPERIMENT, as_of=AS_OF, mode=mode)
            aggs = adapter.fetch(f"select * from wn.metric_aggregates where run_id = {adapter.placeholder}",
                                 [result.run_id])
            card = adapter.fetch(f"select * from wn.scorecard where run_id = {adapter.placeholder}", [result.run_id])
            for metric in ("api_latency_p95", "api_latency_p50"):
                mine, theirs = _rows(aggs, metric), _rows(duck["aggregates"], metric)
                assert mine.keys() == theirs.keys()
                for key, row in mine.items():
                    for col in ("n", "quantile", "quantile_lower", "quantile_upper", "sum", "den_sum", "num_den_sum"):
                        assert float(row[col]) == pytest.approx(float(theirs[key][col]), rel=1e-9), (mode, key, col)
                mine, theirs = _rows(card, metric), _rows(duck["scorecard"], metric)
                for key, row in mine.items():
                    for col in ("p_value", "abs_ci_lower", "rel_ci_upper", "guardrail_status"):
                        a, b = row[col], theirs[key][col]
                        assert (a == pytest.approx(b, rel=1e-9)) if isinstance(b, float) else a == b, (key, col)


# -- calibration by simulation (the statistics' array path, shown above to equal the SQL's) ------

def _simulated_events(rng: np.random.Generator, units: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Clustered events: Poisson(4) events per unit (some units have none), log-latency = unit
    level N(0, 0.5²) + event noise N(0, 0.5²): the intra-unit correlation of the logs is 0.5."""
    counts = rng.poisson(4, units)
    level = rng.normal(0.0, 0.5, units)
    codes = np.repeat(np.arange(units), counts)
    return np.exp(level[codes] + rng.normal(0.0, 0.5, len(codes))) * scale, codes


def _arms(rng, units, scale, p) -> tuple[stats.QuantileArm, stats.QuantileArm]:
    """The clustered arm, and the same events analysed as if independent (each its own unit)."""
    values, codes = _simulated_events(rng, units, scale)
    return (stats.quantile_arm(values, codes, percentile=p, units=units),
            stats.quantile_arm(values, np.arange(len(values)), percentile=p, units=len(values)))


def _true_quantile(percentile: float) -> float:
    """Events' log-latency is N(0, 0.5) overall (event counts do not depend on the unit level)."""
    return math.exp(sps.norm.ppf(percentile) * math.sqrt(0.5))


@pytest.mark.slow
def test_ci_for_the_difference_covers_the_true_difference():
    rng = np.random.default_rng(20261203)
    p, units, reps = 0.95, 500, 2000
    true = 0.1 * _true_quantile(p)          # treatment latencies 10% higher
    covered = naive_covered = 0
    for _ in range(reps):
        (c_arm, c_naive), (t_arm, t_naive) = _arms(rng, units, 1.0, p), _arms(rng, units, 1.1, p)
        c = stats.compare_quantiles(c_arm, t_arm)
        covered += c.abs_ci_lower <= true <= c.abs_ci_upper
        n = stats.compare_quantiles(c_naive, t_naive)
        naive_covered += n.abs_ci_lower <= true <= n.abs_ci_upper
    assert 0.93 <= covered / reps <= 0.97, covered / reps
    # ignoring the clustering (events as independent units) gives intervals far too narrow
    assert naive_covered / reps < 0.88, naive_covered / reps


@pytest.mark.slow
def test_aa_false_positive_rate_is_alpha():
    rng = np.random.default_rng(7)
    p, units, reps = 0.9, 400, 4000
    positives = guardrail_fails = 0
    for _ in range(reps):
        control, treatment = _arms(rng, units, 1.0, p)[0], _arms(rng, units, 1.0, p)[0]
        positives += stats.compare_quantiles(control, treatment).p_value < 0.05
        guardrail_fails += stats.quantile_guardrail(control, treatment, direction="decrease").status == "fail"
    assert 0.04 <= positives / reps <= 0.06, positives / reps
    assert 0.035 <= guardrail_fails / reps <= 0.065, guardrail_fails / reps   # one-sided at 5%


# -- statistics on hand-made arms ----------------------------------------------------------------

def test_compare_quantiles_formulas_and_reasons():
    z = stats.outer_z(0.95)
    control = stats.QuantileArm(100, 400, 10.0, 10.0 - 2 * z, 10.0 + 2 * z, z)     # se 2
    variant = stats.QuantileArm(100, 400, 13.0, 13.0 - 1 * z, 13.0 + 1 * z, z)     # se 1
    c = stats.compare_quantiles(control, variant)
    assert c.std_error == pytest.approx(math.sqrt(5))
    assert c.p_value == pytest.approx(2 * sps.norm.sf(3 / math.sqrt(5)))
    assert c.abs_ci_lower == pytest.approx(3 - z * math.sqrt(5))
    assert c.rel_delta == pytest.approx(0.3)
    assert c.rel_std_error == pytest.approx(math.sqrt(1 / 100 + 169 * 4 / 10_000))
    one = stats.compare_quantiles(control, variant, alternative="decrease")
    assert one.abs_ci_lower is None and one.p_value == pytest.approx(sps.norm.cdf(3 / math.sqrt(5)))
    # the guardrail: decrease is good, a 3-unit rise with se sqrt(5) is a one-sided z of 1.34: warn
    g = stats.quantile_guardrail(control, variant, direction="decrease")
    assert g.status == "warn" and g.p_value == pytest.approx(sps.norm.sf(3 / math.sqrt(5)))
    assert stats.quantile_guardrail(control, variant, direction="decrease", max_regression=0.5).status == "pass"
    # data problems: a reason, never an exception
    empty = stats.QuantileArm(50, 0, None, None, None, z)
    single = stats.QuantileArm(1, 3, 5.0, None, None, z)
    assert "no events" in stats.compare_quantiles(empty, variant).reason
    r = stats.compare_quantiles(control, single)
    assert r.abs_delta == pytest.approx(-5.0) and r.p_value is None and "only 1 unit" in r.reason
    assert stats.quantile_guardrail(empty, variant, direction="decrease").status == "unknown"
    flat = stats.QuantileArm(10, 30, 5.0, 5.0, 5.0, z)
    assert "zero variance" in stats.compare_quantiles(flat, flat).reason
    zero = stats.QuantileArm(10, 30, 0.0, -1.0, 1.0, z)
    assert stats.compare_quantiles(zero, variant).rel_delta is None


def test_quantile_arm_matches_numpy_on_ties_and_tiny_arms():
    values = np.array([3.0, 1.0, 2.0, 2.0, 2.0, 5.0, 2.0])
    codes = np.array([0, 0, 1, 1, 2, 2, 3])
    for p in (0.1, 0.5, 0.9):
        arm = stats.quantile_arm(values, codes, percentile=p, units=6)     # units 4, 5: no events
        assert arm.quantile == pytest.approx(np.quantile(values, p), abs=1e-12)
        assert arm.lower <= arm.quantile <= arm.upper
    one = stats.quantile_arm([4.0], [0], percentile=0.95, units=1)
    assert (one.quantile, one.lower, one.upper) == (4.0, None, None)
    assert stats.quantile_arm([], [], percentile=0.5, units=3).quantile is None
    with pytest.raises(stats.StatsInputError):
        stats.quantile_arm([1.0], [0], percentile=1.5, units=1)


# -- validation ------------------------------------------------------------------------------------

def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old,new,message,field", [
    ("percentile: 0.95", "percentile: 95", "strictly between 0 and 1", "metrics.1.percentile"),
    ("percentile: 0.95", "percentile: 0", "strictly between 0 and 1", "metrics.1.percentile"),
    ("    percentile: 0.95\n", "", "needs 'percentile'", "metrics.1"),
    ("    value: latency_ms\n    filter: \"endpoint = 'api'\"\n    direction: decrease\n    tags",
     "    filter: \"endpoint = 'api'\"\n    direction: decrease\n    tags", "needs 'value'", "metrics.1"),
    ("    direction: decrease\n    tags: [guardrail]", "    cuped: true\n    direction: decrease\n    tags: [guardrail]",
     "CUPED does not apply", "metrics.1"),
    ("    direction: decrease\n    tags: [guardrail]", "    winsorize: {upper: 0.99}\n    direction: decrease\n"
     "    tags: [guardrail]", "'winsorize' does not apply", "metrics.1"),
    ("    type: count\n", "    type: count\n    percentile: 0.5\n", "only applies to type: percentile", "metrics.0"),
])
def test_validation_errors_name_file_line_field_and_fix(tmp_path, old, new, message, field):
    root = write_project(tmp_path / "p", tmp_path / "w.duckdb")
    path = root / "metrics" / "latency.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ProjectError) as info:
        load_project(root)
    hits = [p for p in info.value.problems if message in p.message]
    assert len(hits) == 1, [p.message for p in info.value.problems]
    problem = hits[0]
    assert problem.file == "metrics/latency.yml" and problem.field == field
    if field.endswith("percentile"):
        assert problem.line == _line(path, new) and ("0.95" in problem.message or "write 0.95" in problem.message)
    else:
        name = "api_requests" if field == "metrics.0" else "api_latency_p95"
        assert problem.line == _line(path, f"name: {name}")


def test_a_ratio_cannot_use_a_percentile_metric(tmp_path):
    from click.testing import CliRunner

    from warehouse_native.cli.main import cli

    root = write_project(tmp_path / "p", tmp_path / "w.duckdb")
    path = root / "metrics" / "latency.yml"
    path.write_text(path.read_text() + "  - name: odd_ratio\n    type: ratio\n    numerator: api_latency_p50\n"
                    "    denominator: api_requests\n")
    out = CliRunner().invoke(cli, ["validate", "--project-dir", str(root)])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "numerator 'api_latency_p50' is a percentile metric" in out.output
    assert f"metrics/latency.yml:{_line(path, 'numerator: api_latency_p50')}" in out.output
