"""The demo experiment runs end to end on DuckDB and tells the planted story."""

from __future__ import annotations

from conftest import AS_OF

from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect


def test_demo_run_publishes_tables(project_and_target):
    project, target = project_and_target
    with connect(target) as adapter:
        result = run_experiment(project, target, adapter, "button_color_v3", as_of=AS_OF)
        assert result.status == "success"
        tables = {r["table_name"] for r in adapter.fetch(
            "select table_name from information_schema.tables where table_schema = 'wn'")}
        assert {"exposures", "unit_metrics__button_color_v3", "metric_aggregates", "scorecard",
                "scorecard_latest", "runs", "health_checks"} <= tables
        leftovers = [t for t in tables if t.startswith("__wn")]
        assert leftovers == []
