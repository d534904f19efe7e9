"""Hostile strings stay in their SQL position on DuckDB and PostgreSQL.

The demo data and YAML are rewritten so that the experiment id, every variant name, every
dimension value and the event names two filters compare with are strings that try to break
out of a quoted literal (quotes, ``--``, ``/*``, ``;``, backslashes, dollar quotes, psycopg
placeholders, newlines, unicode).  A run must then publish exactly the numbers of the plain
demo, under the hostile names, and leave the raw tables alone.  Identifiers with odd but
legal characters (a quoted table name, spaces and unicode in filter columns) run end to end;
columns wn writes into its SQL unquoted (timestamp, units, dimensions) are refused clearly.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

import killing
from compare import assert_same_rows, by_key
from warehouse_native.errors import ProjectError
from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

AS_OF = dt.date(2026, 11, 1)
EXPERIMENT = "button_color_v3"
HOSTILE_ID = "bcv3'); drop table raw.events; --"
VARIANTS = {
    "blue": "it's blue; --",
    "red": "x'); delete from wn.runs; /*",
    "green": "back\\slash\\",
    "orange": "$$; drop table raw.exposures; $$ %s %(x)s ? \n 名前",
}
COUNTRIES = {"US": "U'S", "GB": "G\\'B; --", "FR": "F/*R", "BR": "B$$R", "IN": "%s", "DE": "D\nE"}
EVENTS = {"purchase": "buy'); drop table raw.events; --", "session_start": "start \\' /* -- $1 ?"}


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _hostile(wh: killing.Warehouse) -> None:
    """Rewrite the data and the YAML of ``wh``'s project with the hostile strings."""
    con = wh.connect()
    mark = "?" if wh.kind == "duckdb" else "%s"
    try:
        def run(sql: str, params: list[Any]) -> None:
            con.execute(sql.replace("?", mark), params)

        run("update raw.exposures set experiment = ? where experiment = ?", [HOSTILE_ID, EXPERIMENT])
        for old, new in VARIANTS.items():
            run("update raw.exposures set group_name = ? where group_name = ?", [new, old])
        for old, new in COUNTRIES.items():
            run("update raw.exposures set country = ? where country = ?", [new, old])
        for old, new in EVENTS.items():
            run("update raw.events set event_name = ? where event_name = ?", [new, old])
    finally:
        con.close()
    path = wh.project / "experiments" / f"{EXPERIMENT}.yml"
    doc = yaml.safe_load(path.read_text())
    doc["experiment"]["exposures"]["experiment_id"] = HOSTILE_ID
    for v in doc["experiment"]["variants"]:
        v["name"] = VARIANTS[v["name"]]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    for catalog in (wh.project / "metrics").glob("*.yml"):
        text = catalog.read_text()
        for old, new in EVENTS.items():   # the filters compare with the hostile event names
            text = text.replace(f"\"event_name = '{old}'\"", yaml.safe_dump(f"event_name = {_sql_literal(new)}").strip()
                                .removesuffix("...").strip())
        catalog.write_text(text)


def _run(wh: killing.Warehouse, mode: str) -> dict[tuple, dict[str, Any]]:
    target = load_target(wh.project)
    with connect(target) as adapter:
        result = run_experiment(load_project(wh.project), target, adapter, EXPERIMENT, as_of=AS_OF, mode=mode)
        return by_key(adapter.fetch(f"select * from wn.scorecard where run_id = {adapter.placeholder}",
                                    [result.run_id]))


def _renamed(card: dict[tuple, dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """The plain demo's scorecard with the hostile names in place of the plain ones."""
    out = {}
    for (metric, variant, dim, value), row in card.items():
        row = dict(row, variant=VARIANTS[variant], control_variant=VARIANTS[row["control_variant"]],
                   dimension_value=COUNTRIES.get(value, value))
        out[(metric, VARIANTS[variant], dim, COUNTRIES.get(value, value))] = row
    return out


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        killing.skip_without_postgres("injection tests")
    return request.param


def test_hostile_ids_variants_dimension_values_and_filters_stay_in_place(tmp_path: Path, engine: str) -> None:
    wh = killing.make_warehouse(engine, tmp_path, 1500)
    try:
        plain = _renamed(_run(wh, "stateless"))
        raw_counts = wh.rows("select (select count(*) from raw.events) as events, "
                             "(select count(*) from raw.exposures) as exposures")
        _hostile(wh)
        for mode in ("stateless", "incremental"):
            card = _run(wh, mode)
            assert_same_rows(plain, card, f"{engine} {mode} scorecard with hostile names",
                             ignore={"run_id", "computed_at", "experiment"})
        assert {r["experiment"] for r in wh.rows("select distinct experiment from wn.scorecard")} == {EXPERIMENT}
        exposures = wh.rows("select variant, count(*) as n from wn.exposures group by variant")
        assert {r["variant"] for r in exposures} - {"__multiple__"} == set(VARIANTS.values())
        assert wh.rows("select (select count(*) from raw.events) as events, "
                       "(select count(*) from raw.exposures) as exposures") == raw_counts
        runs = wh.rows("select status from wn.runs")
        assert len(runs) == 3 and {r["status"] for r in runs} == {"success"}
    finally:
        killing.drop_warehouse(wh)


def test_odd_but_legal_identifiers_work_end_to_end(tmp_path: Path, engine: str) -> None:
    """A quoted table name with a space, and filter / value columns with spaces and unicode."""
    wh = killing.make_warehouse(engine, tmp_path, 1500)
    try:
        con = wh.connect()
        con.execute('create table raw."odd events" as select user_id, ts as event_ts, event_name as "event name", '
                    'value as "välue" from raw.events')
        con.close()
        (wh.project / "metrics" / "odd.yml").write_text(
            "sources:\n  - name: odd_events\n    table: raw.\"odd events\"\n    timestamp: event_ts\n"
            "    units: {user_id: user_id}\nmetrics:\n"
            "  - name: odd_revenue\n    source: odd_events\n    type: sum\n    value: '\"välue\"'\n"
            "    filter: \"\\\"event name\\\" = 'purchase'\"\n")
        path = wh.project / "experiments" / f"{EXPERIMENT}.yml"
        path.write_text(path.read_text().replace("secondary_metrics: [", "secondary_metrics: [odd_revenue, "))
        for mode in ("stateless", "incremental"):
            card = _run(wh, mode)
            for (metric, variant, dim, value), row in card.items():
                if metric == "odd_revenue":   # the same rows as revenue, before its winsorizing
                    twin = card[("revenue", variant, dim, value)]
                    assert row["variant_units"] == twin["variant_units"]
                    assert row["variant_mean"] == pytest.approx(twin["variant_mean"], rel=0.05)
            assert any(k[0] == "odd_revenue" for k in card)
    finally:
        killing.drop_warehouse(wh)


def test_columns_wn_writes_unquoted_are_refused_clearly(tmp_path: Path) -> None:
    wh = killing.Warehouse("duckdb", tmp_path, "")
    for folder in ("metrics", "experiments", "models"):
        import shutil

        shutil.copytree(killing.REPO / folder, tmp_path / folder)
    (tmp_path / "metrics" / "odd.yml").write_text(
        "sources:\n  - name: odd_events\n    table: raw.events; drop table raw.events\n    timestamp: event ts\n"
        "    units: {user_id: \"User Id\"}\n    dimensions: [\"co;untry\"]\n")
    with pytest.raises(ProjectError) as info:
        load_project(wh.project)
    text = info.value.render()
    assert "metrics/odd.yml:3 [sources.0.table]" in text and "is not a table or view name" in text.replace(
        "contains ';': a table", "is not a table")
    assert "metrics/odd.yml:4 [sources.0.timestamp]" in text and "'event ts' is not a plain column name" in text
    assert "sql: 'select *, \"event ts\" as event_ts from ...'" in text
    assert "[sources.0.units]" in text and "[sources.0.dimensions]" in text
