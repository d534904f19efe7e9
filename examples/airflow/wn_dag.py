"""Airflow: run every active wn experiment daily, one task per experiment, then its report.

Copy this file into your DAGs folder. It needs only the ``wn`` command on the workers (set
``WN_BIN`` if it is not on PATH) and the project checkout (``WN_PROJECT_DIR``). The task list
comes from ``wn ls --json --active`` when the DAG file is parsed: ``wn ls`` reads only the
YAML (no warehouse connection), so parsing stays fast.

Exit codes of wn decide what Airflow does (README, "Exit codes"):
  0        success
  1, 4     a run failed / the warehouse refused or was unreachable: fail, Airflow retries
  2, 3     invalid project / compile error: fail at once, no retry (fix the YAML first)
  other    fail (70 is a bug in wn: report it)
Works with Airflow 2.7+ and 3.x.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess

try:                                                    # Airflow 3
    from airflow.sdk import DAG, task
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:                                     # Airflow 2
    from airflow import DAG
    from airflow.decorators import task
    from airflow.exceptions import AirflowException, AirflowFailException

WN = os.environ.get("WN_BIN", "wn")
PROJECT_DIR = os.environ.get("WN_PROJECT_DIR", "/srv/wn-project")
NO_RETRY = {2: "invalid project", 3: "compile error"}
RETRY = {1: "the run failed", 4: "warehouse error"}


def wn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([WN, *args, "--project-dir", PROJECT_DIR], capture_output=True, text=True,
                          timeout=6 * 3600)


def experiments() -> list[dict]:
    """Experiments `wn run --all` would run today (parse time)."""
    out = wn("ls", "--json", "--active")
    if out.returncode != 0:
        raise RuntimeError(f"`wn ls --json` failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def check(out: subprocess.CompletedProcess, what: str) -> str:
    """Map wn's exit code to Airflow's behaviour (see the module docstring)."""
    print(out.stdout)
    if out.returncode == 0:
        return out.stdout
    message = f"{what}: exit {out.returncode} ({NO_RETRY.get(out.returncode) or RETRY.get(out.returncode) or 'unexpected'}): {out.stderr.strip()}"
    if out.returncode in NO_RETRY:
        raise AirflowFailException(message)
    raise AirflowException(message)


with DAG(
    dag_id="wn_experiments",
    description="wn: scorecards, reports and the catalog, daily",
    schedule="15 6 * * *",                     # after the nightly loads land in the warehouse
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=15)},
    tags=["wn", "experiments"],
) as dag:
    reports = []
    for exp in experiments():
        name = exp["name"]

        @task(task_id=f"run__{name}", doc_md=f"`wn run --experiment {name}` ({exp['status']}, owner {exp['owner']})")
        def run(experiment: str = name, ds: str | None = None) -> str:
            return check(wn("run", "--experiment", experiment, "--quiet", "--as-of", ds or dt.date.today().isoformat()),
                         f"wn run {experiment}")

        @task(task_id=f"report__{name}", retries=0)
        def report(experiment: str = name) -> str:
            return check(wn("report", "--experiment", experiment), f"wn report {experiment}")

        r = report()
        run() >> r
        reports.append(r)

    @task(task_id="docs", trigger_rule="all_done", retries=0)
    def docs() -> str:
        return check(wn("docs"), "wn docs")

    reports >> docs()
