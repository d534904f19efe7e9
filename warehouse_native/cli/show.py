"""``wn show``: print an experiment's latest published scorecard from the warehouse."""

from __future__ import annotations

import click

from ..errors import WarehouseError
from .console import console
from .flags import Flags, common_flags


@click.command("show")
@click.option("--experiment", "-e", required=True, metavar="NAME", help="Experiment to show.")
@click.option("--slices", is_flag=True, help="Also print the per-dimension results.")
@common_flags
def command(flags: Flags, experiment: str, slices: bool) -> None:
    """Read wn.scorecard_latest and the health checks of that run, and print them."""
    from ..present.published import read_decision
    from ..warehouse import connect
    from .display import print_summary, scorecard_table

    target = flags.load_target()
    schema = target.schema
    with connect(target, read_only=target.type == "duckdb") as adapter:
        if not adapter.table_columns(schema, "scorecard"):
            raise WarehouseError(f"no {schema}.scorecard table in {target.describe()}",
                                 hint=f"run `wn run --experiment {experiment}` first")
        rows = adapter.fetch(f"select * from {schema}.scorecard_latest where experiment = {adapter.placeholder}",
                             [experiment])
        if not rows:
            raise WarehouseError(f"no successful run of '{experiment}' in {target.describe()}",
                                 hint=f"run `wn run --experiment {experiment}`")
        run_id = rows[0]["run_id"]
        health = adapter.fetch(f"select * from {schema}.health_checks where run_id = {adapter.placeholder}",
                               [run_id])
        decision = read_decision(adapter, schema, run_id)
    srm = next((h for h in health if h["check_name"] == "srm" and h["dimension"] is None), {})
    multi = next((h for h in health if h["check_name"] == "multi_exposure"), {})
    units: dict[str, int] = {}
    for r in rows:
        if r["dimension"] is None:
            units.setdefault(r["control_variant"], int(r["control_units"]))
            units.setdefault(r["variant"], int(r["variant_units"]))
    print_summary(experiment, run_id, srm.get("status", "unknown"), srm.get("p_value"), units,
                  int(multi.get("statistic") or 0), rows, decision)
    if slices:
        dims = sorted({r["dimension"] for r in rows if r["dimension"]})
        for dim in dims:
            for value in sorted({r["dimension_value"] for r in rows if r["dimension"] == dim}):
                part = [r for r in rows if r["dimension"] == dim and r["dimension_value"] == value]
                check = next((h for h in health if h["check_name"] == "srm" and h["dimension"] == dim
                              and h["dimension_value"] == value), {})
                console.print(scorecard_table(part, title=f"{dim} = {value}  (SRM {check.get('status', '?')})"))
