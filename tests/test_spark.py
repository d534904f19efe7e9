"""Spark (pyspark, local[2]) computes the same scorecards as DuckDB, in every mode, and a run
that fails half-way on Spark leaves the previous results readable and unchanged.

One Spark session serves the whole test process (tests/conftest.py); the DuckDB reference runs
on the same generated data.  Two projects: the demo, and tests/shapes_project.py (every metric
type, integer ids, three sources, NULL dimension values, window-edge rows).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import shapes_project
from compare import assert_same_rows, by_key, scorecard
from conftest import SMALL_USERS, copy_project, spark_profiles
from warehouse_native.cli.main import main
from warehouse_native.demo import DemoConfig, generate_demo
from warehouse_native.errors import WarehouseError
from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

pytestmark = pytest.mark.spark

DEMO = "button_color_v3"
DEMO_AS_OF = dt.date(2026, 11, 1)
NEW_DAY = dt.date(2026, 10, 24)      # incremental tests: the state is built through the day before


def _load(target, tables: dict) -> None:
    with connect(target) as adapter:
        for relation, columns in tables.items():
            adapter.load_columns(relation, columns)


def _run(env, target, experiment: str, as_of: dt.date, **kwargs):
    with connect(target) as adapter:
        result = run_experiment(env.project, target, adapter, experiment, as_of=as_of, **kwargs)
        assert result.status == "success"
        return result, scorecard(adapter, target.schema, experiment)


def _demo_split(data: dict, before: dt.date, seed: int = 3) -> dict:
    """The demo tables as they stood before ``before``: later rows, and 10% of the last day's
    rows, not there yet (late data)."""
    rng = np.random.default_rng(seed)
    cut = np.datetime64(before.isoformat(), "us")
    out = {}
    for name, cols in data.items():
        keep = (cols["ts"] < cut) & ~((cols["ts"] >= cut - np.timedelta64(1, "D")) & (rng.random(len(cols["ts"])) < 0.1))
        out[name] = {k: v[keep] for k, v in cols.items()}
    return out


def _project(root: Path, warehouse: Path, raw: str, schema: str) -> SimpleNamespace:
    """A copy of the demo project whose raw tables live in schema ``raw`` and results in ``schema``."""
    project_dir = copy_project(root / "project")
    for path in [*(project_dir / "metrics").glob("*.yml"), *(project_dir / "models").glob("*.sql")]:
        path.write_text(path.read_text().replace("raw.", f"{raw}."))
    (project_dir / "profiles.yml").write_text(spark_profiles(warehouse, schema, root / "ref.duckdb"))
    return SimpleNamespace(dir=project_dir, project=load_project(project_dir),
                           spark=load_target(project_dir), duck=load_target(project_dir, target="duck"))


def _demo_data(raw: str) -> dict:
    """The demo tables (SMALL_USERS users), named in schema ``raw``."""
    return {name.replace("raw.", f"{raw}."): cols for name, cols in generate_demo(DemoConfig(users=SMALL_USERS)).items()}


@pytest.fixture(scope="module")
def demo(spark_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    env = _project(tmp_path_factory.mktemp("spark_demo"), spark_warehouse, "raw_demo", "wn_demo")
    env.data = _demo_data("raw_demo")
    for target in (env.duck, env.spark):
        _load(target, env.data)
    env.reference = _run(env, env.duck, DEMO, DEMO_AS_OF, mode="stateless")[1]
    return env


def test_demo_stateless_runs_match_duckdb_with_every_strategy(demo: SimpleNamespace) -> None:
    # (auto inlines every scan here: it runs cte's SQL)
    for strategy in ("auto", "temp"):
        result, card = _run(demo, demo.spark, DEMO, DEMO_AS_OF, mode="stateless", strategy=strategy)
        assert assert_same_rows(demo.reference, card, f"spark stateless --strategy {strategy}") > 5000
    steps = {s.step: s for s in result.steps}
    assert steps["exposures"].action == "create_temp" and steps["exposures"].rows > 4000
    with connect(demo.spark) as spark, connect(demo.duck) as duck:
        # the sufficient statistics, the health checks and the exposures view agree too
        assert_same_rows(by_key(duck.fetch("select * from wn_demo.metric_aggregates where run_id = "
                                           "(select max(run_id) from wn_demo.runs)")),
                         by_key(spark.fetch("select * from wn_demo.metric_aggregates where run_id = ?", [result.run_id])),
                         "metric_aggregates", ignore={"run_id", "computed_at"})
        key = ("check_name", "dimension", "dimension_value")
        assert_same_rows(by_key(duck.fetch("select * from wn_demo.health_checks where run_id = "
                                           "(select max(run_id) from wn_demo.runs)"), key),
                         by_key(spark.fetch("select * from wn_demo.health_checks where run_id = ?", [result.run_id]), key),
                         "health_checks")
        q = "select variant, count(*) as n, sum(exposure_count) as e from wn_demo.exposures group by variant"
        assert sorted(map(tuple, (r.values() for r in spark.fetch(q)))) == \
            sorted(map(tuple, (r.values() for r in duck.fetch(q))))
        # the published unit metrics are a view on Spark (swapped in one statement), over this run's table
        assert spark.relations("wn_demo")[f"unit_metrics__{DEMO}"] == "view"


def test_demo_full_refresh_matches_duckdb(demo: SimpleNamespace) -> None:
    result, card = _run(demo, demo.spark, DEMO, DEMO_AS_OF, mode="full-refresh")
    assert assert_same_rows(demo.reference, card, "spark full refresh") > 5000
    assert result.mode == "full-refresh"


def _incremental_case(env: SimpleNamespace, experiment: str, data: dict, split, new_day: dt.date,
                      final_as_of: dt.date) -> None:
    """Spark: state built on the data as of the day before ``new_day``; then the new day and
    the late rows arrive and an incremental run follows.  It equals DuckDB's stateless run on
    all the data, scorecard and unit metrics alike, and DuckDB's daily series after the same runs."""
    # DuckDB follows the same two runs: the daily series keeps each day as it was computed then
    # (late rows do not rewrite a recorded day), so both engines must record the same series
    for target in (env.spark, env.duck):
        _load(target, split(data, new_day))
        first, _ = _run(env, target, experiment, new_day - dt.timedelta(days=1), mode="incremental")
        assert first.note.startswith("no incremental state yet")
    cards = {}
    for target in (env.spark, env.duck):
        _load(target, data)
        inc, cards[target.type] = _run(env, target, experiment, final_as_of, mode="incremental")
        assert inc.note.startswith("reprocessing from"), inc.note
    _, reference = _run(env, env.duck, experiment, final_as_of, mode="stateless")
    assert assert_same_rows(reference, cards["spark"], "spark incremental vs duckdb stateless") > 1000
    with connect(env.spark) as spark, connect(env.duck) as duck:
        schema = env.spark.schema
        # the results as of each day, too
        daily = f"select * from {schema}.scorecard_daily_latest where experiment = '{experiment}'"
        key = ("day", "metric", "variant")
        expected = by_key(duck.fetch(daily), key)
        assert final_as_of in {k[0] for k in expected}
        assert assert_same_rows(expected, by_key(spark.fetch(daily), key), "scorecard_daily") >= 2 * 3 * 5
        units = by_key(spark.fetch(f"select * from {schema}.unit_metrics__{experiment}"), ("unit_id",))
        expected = by_key(duck.fetch(f"select * from {schema}.unit_metrics__{experiment}"), ("unit_id",))
        assert assert_same_rows(expected, units, "unit metrics, unit by unit", ignore=set()) > 10_000
        # the state row names exactly the state tables that exist: nothing of the first run is left
        state = spark.fetch(f"select tables from {schema}.incremental_state where experiment = ? "
                            "order by updated_at desc", [experiment])[0]["tables"]
        named = {t.split(".")[-1].lower() for t in __import__("json").loads(state).values()}
        present = {n.lower() for n, kind in spark.relations(schema).items()
                   if kind == "table" and n.lower().startswith(f"state__{experiment}")}
        assert named == present
        assert not [n for n in spark.relations(schema) if n.startswith("__wn")]


def test_demo_incremental_with_a_new_day_and_late_rows_matches_duckdb(
        spark_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    env = _project(tmp_path_factory.mktemp("spark_inc"), spark_warehouse, "raw_inc", "wn_inc")
    data = _demo_data("raw_inc")
    _incremental_case(env, DEMO, data, _demo_split, NEW_DAY, NEW_DAY)


@pytest.fixture(scope="module")
def shapes(spark_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("spark_shapes")
    project_dir = shapes_project.write_project(
        root / "project", spark_profiles(spark_warehouse, "wn_shapes", root / "ref.duckdb"))
    env = SimpleNamespace(dir=project_dir, project=load_project(project_dir), spark=load_target(project_dir),
                          duck=load_target(project_dir, target="duck"), data=shapes_project.generate())
    return env


def test_shapes_project_matches_duckdb_in_every_mode(shapes: SimpleNamespace) -> None:
    exp, as_of = shapes_project.EXPERIMENT, shapes_project.AS_OF
    new_day = shapes_project.END - dt.timedelta(days=3)
    # incremental first (it loads partial data), then stateless and full refresh on all of it
    _incremental_case(shapes, exp, shapes.data, lambda d, day: shapes_project.split(d, day)[0], new_day, new_day)
    _, reference = _run(shapes, shapes.duck, exp, as_of, mode="stateless")
    for mode in ("stateless", "full-refresh"):
        _, card = _run(shapes, shapes.spark, exp, as_of, mode=mode)
        assert assert_same_rows(reference, card, f"shapes project, spark {mode}") > 2000
    # integer unit ids went through as such: the exposures view holds them as text, one per unit
    with connect(shapes.spark) as spark:
        ids = spark.fetch(f"select unit_id from wn_shapes.exposures where experiment = '{exp}' limit 5")
        assert all(str(r["unit_id"]).isdigit() for r in ids)


def _snapshot(adapter, schema: str) -> dict:
    return {
        "scorecard": sorted(map(str, adapter.fetch(f"select * from {schema}.scorecard_latest"))),
        "units": adapter.fetch(f"select count(*) as n, sum(visited_signup) as s, sum(active_days) as a "
                               f"from {schema}.unit_metrics__{DEMO}"),
        "state": adapter.fetch(f"select * from {schema}.incremental_state order by updated_at desc")[:1],
        "exposures": adapter.fetch(f"select variant, count(*) as n from {schema}.exposures group by variant "
                                   "order by variant"),
    }


def test_a_run_failing_half_way_on_spark_leaves_the_previous_results(demo: SimpleNamespace) -> None:
    _run(demo, demo.spark, DEMO, DEMO_AS_OF, mode="incremental")
    with connect(demo.spark) as spark:
        before = _snapshot(spark, "wn_demo")
        tables_before = set(spark.relations("wn_demo"))
        # in the middle of publishing (new state tables written, result rows inserted), and
        # before it (after the aggregates query)
        for fault in ("publish", "aggregates"):
            with pytest.raises(WarehouseError, match="fault injected"):
                run_experiment(demo.project, demo.spark, spark, DEMO, as_of=DEMO_AS_OF, mode="full-refresh",
                               fault=fault)
            assert _snapshot(spark, "wn_demo") == before
            # nothing of the failed run is left: no staged tables, no new state versions
            assert set(spark.relations("wn_demo")) == tables_before
            last = spark.fetch("select status, error from wn_demo.runs order by started_at desc limit 1")[0]
            assert last["status"] == "error" and "fault injected" in last["error"]
        # and the next run publishes normally, equal to DuckDB
        run_experiment(demo.project, demo.spark, spark, DEMO, as_of=DEMO_AS_OF, mode="incremental")
        assert_same_rows(demo.reference, scorecard(spark, "wn_demo", DEMO), "run after a failed one")


def test_cli_seed_run_show_and_power_on_spark(spark_warehouse: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    project_dir = copy_project(tmp_path / "project")
    (project_dir / "profiles.yml").write_text(spark_profiles(spark_warehouse, "wn_cli"))

    def wn(*args: str) -> str:
        with pytest.raises(SystemExit) as info:
            main([*args, "--project-dir", str(project_dir), "--target", "spark"])
        out = capsys.readouterr()
        assert info.value.code == 0, out.out + out.err
        return out.out + out.err

    assert "wrote raw.events" in wn("seed", "--users", "3000", "--seed", "5")
    text = wn("run", "-e", "show_new_homepage", "--as-of", "2026-11-01", "--no-state")
    assert "show_new_homepage" in text and "page_views" in text
    assert "page_views" in wn("show", "-e", "show_new_homepage", "--slices")
    text = wn("power", "--metric", "visited_signup", "--mde", "0.05", "--as-of", "2026-10-20")
    assert "visited_signup" in text
    with connect(load_target(project_dir)) as spark:
        runs = spark.fetch("select status, target from wn_cli.runs")
        assert runs and all(r["status"] == "success" and "spark" in r["target"] for r in runs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONNECT_SERVER = """
import sys, time
from pyspark.sql import SparkSession
port, warehouse = sys.argv[1], sys.argv[2]
spark = (SparkSession.builder.master("local[2]")
         .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
         .config("spark.connect.grpc.binding.port", port)
         .config("spark.sql.warehouse.dir", warehouse)
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.ui.enabled", "false").getOrCreate())
print("ready", flush=True)
time.sleep(3600)
"""


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory: pytest.TempPathFactory, spark_warehouse: Path):
    """A Spark Connect server in a process of its own (as a cluster would be)."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("connect_server")
    proc = subprocess.Popen([sys.executable, "-c", CONNECT_SERVER, str(port), str(folder / "warehouse")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 180
        line = ""
        while time.time() < deadline and "ready" not in line:
            line = proc.stdout.readline() if proc.stdout else ""
            if proc.poll() is not None:
                pytest.fail("the Spark Connect server did not start")
        yield f"sc://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


FETCH_SCORECARD = """
import json, sys
from pathlib import Path
from warehouse_native.project import load_target
from warehouse_native.warehouse import connect
with connect(load_target(Path(sys.argv[1]))) as remote:
    assert type(remote.spark).__module__.startswith("pyspark.sql.connect")
    rows = remote.fetch("select * from wn_remote.scorecard_latest")
print(json.dumps(rows, default=str))
"""


def test_spark_connect_target_gives_the_same_scorecard(connect_server: str, demo: SimpleNamespace,
                                                        tmp_path: Path) -> None:
    """The CLI, in a process of its own (a process holds either a local session or a remote one),
    seeds and runs the demo through Spark Connect; the scorecard equals DuckDB's."""
    project_dir = copy_project(tmp_path / "project")
    (project_dir / "profiles.yml").write_text(
        f"wn_test:\n  target: remote\n  outputs:\n    remote: {{type: spark, method: connect, "
        f"url: '{connect_server}', schema: wn_remote}}\n")
    assert load_target(project_dir).describe().endswith(f"(spark: {connect_server})")

    def wn(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "warehouse_native.cli.main", *args,
                              "--project-dir", str(project_dir)], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Traceback" not in out.stderr
        return out.stdout

    # the same data as the DuckDB reference (users, days and seed of conftest's generate_demo call)
    assert "wrote raw.events" in wn("seed", "--users", str(SMALL_USERS), "--days", "28", "--seed", "7")
    wn("run", "-e", DEMO, "--as-of", str(DEMO_AS_OF))
    out = subprocess.run([sys.executable, "-c", FETCH_SCORECARD, str(project_dir)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert assert_same_rows(demo.reference, by_key(rows), "spark connect") > 5000
