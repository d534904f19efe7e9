"""Dagster: one asset per wn experiment (its published scorecard) and one for its report.

Load with ``dagster dev -f wn_assets.py`` (or list the module in your workspace). It needs only
the ``wn`` command (``WN_BIN``) and the project checkout (``WN_PROJECT_DIR``); the assets come
from ``wn ls --json --active``, which reads the YAML only (no warehouse connection).

wn's exit codes decide retries: 1 (a run failed) and 4 (warehouse error) are retried by the
asset's RetryPolicy; 2 (invalid project) and 3 (compile error) fail without retrying.
"""


import json
import os
import subprocess

from dagster import (AssetExecutionContext, AssetSelection, Definitions, Failure, MaterializeResult, RetryPolicy,
                     ScheduleDefinition, asset, define_asset_job)

WN = os.environ.get("WN_BIN", "wn")
PROJECT_DIR = os.environ.get("WN_PROJECT_DIR", "/srv/wn-project")
NO_RETRY = {2: "invalid project", 3: "compile error"}


def wn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([WN, *args, "--project-dir", PROJECT_DIR], capture_output=True, text=True,
                          timeout=6 * 3600)


def experiments() -> list[dict]:
    out = wn("ls", "--json", "--active")
    if out.returncode != 0:
        raise RuntimeError(f"`wn ls --json` failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def check(context: AssetExecutionContext, out: subprocess.CompletedProcess, what: str) -> str:
    context.log.info(out.stdout)
    if out.returncode == 0:
        return out.stdout
    message = f"{what}: exit {out.returncode}: {out.stderr.strip()}"
    raise Failure(description=message, allow_retries=out.returncode not in NO_RETRY)


def experiment_assets(exp: dict) -> list:
    name = exp["name"]

    @asset(name=f"scorecard__{name}", group_name="wn", kinds={"sql"},
           description=f"wn.scorecard of {name}: {exp.get('hypothesis') or ''}",
           metadata={"status": exp["status"], "owner": exp.get("owner") or "", "unit": exp["unit"]},
           retry_policy=RetryPolicy(max_retries=2, delay=900))
    def scorecard(context: AssetExecutionContext) -> MaterializeResult:
        text = check(context, wn("run", "--experiment", name, "--quiet"), f"wn run {name}")
        return MaterializeResult(metadata={"summary": text.strip()})

    @asset(name=f"report__{name}", group_name="wn", deps=[scorecard], kinds={"html"},
           description=f"target/report/{name}.html")
    def report(context: AssetExecutionContext) -> MaterializeResult:
        text = check(context, wn("report", "--experiment", name), f"wn report {name}")
        return MaterializeResult(metadata={"summary": text.strip()})

    return [scorecard, report]


assets = [a for exp in experiments() for a in experiment_assets(exp)]
daily = define_asset_job("wn_daily", selection=AssetSelection.groups("wn"))
defs = Definitions(assets=assets, jobs=[daily],
                   schedules=[ScheduleDefinition(job=daily, cron_schedule="15 6 * * *")])
