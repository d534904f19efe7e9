"""The scheduler examples under examples/ load in their scheduler and run wn for real.

Each scheduler runs in its own virtualenv, as it would beside wn (``.venv-airflow``,
``.venv-dagster``, made by .ci/run; or ``WN_AIRFLOW_PYTHON`` / ``WN_DAGSTER_PYTHON``, or this
interpreter if it has the package). Without one the test is skipped with a loud reason.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, copy_project
from pagekit import cli
from warehouse_native.cli.main import cli as click_group

EXAMPLES = REPO / "examples"
WN_BIN = str(Path(sys.executable).with_name("wn"))


def scheduler_python(name: str, module: str) -> str:
    candidates = [os.environ.get(f"WN_{name.upper()}_PYTHON"), str(REPO / f".venv-{name}" / "bin" / "python"),
                  sys.executable]
    for python in filter(None, candidates):
        if Path(python).exists() and subprocess.run([python, "-c", f"import {module}"],
                                                    capture_output=True).returncode == 0:
            return python
    pytest.skip(f"SKIPPED LOUDLY: {name} is not installed (.ci/run installs it into .venv-{name}); "
                f"examples/{name}/ was not loaded")


@pytest.fixture()
def live_project(demo_project: Path) -> Path:
    """The demo project with button_color_v3 open-ended, so that it is active today."""
    if dt.date.today() < dt.date(2026, 10, 15):   # the demo data starts then
        pytest.skip("SKIPPED LOUDLY: the clock is before the demo experiment's start (2026-10-15)")
    path = demo_project / "experiments" / "button_color_v3.yml"
    path.write_text(re.sub(r"\n  end: .*", "", path.read_text()))
    return demo_project


def run_in(python: str, script: str, project: Path, tmp_path: Path) -> dict:
    env = {**os.environ, "WN_BIN": WN_BIN, "WN_PROJECT_DIR": str(project), "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "DAGSTER_HOME": str(tmp_path / "dagster"), "PYTHONWARNINGS": "ignore"}
    (tmp_path / "dagster").mkdir(exist_ok=True)
    out = subprocess.run([python, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env,
                         timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


AIRFLOW = """
    import json, subprocess
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=%(folder)r, safe_mode=False, **({} if 'include_examples' not in DagBag.__init__.__code__.co_varnames else {'include_examples': False}))
    dag = bag.dags['wn_experiments']
    result = {'errors': {str(k): str(v) for k, v in bag.import_errors.items()},
              'tasks': sorted(dag.task_ids),
              'upstream': {t: sorted(dag.get_task(t).upstream_task_ids) for t in dag.task_ids}}
    # the tasks' own code, run as a worker would (exit codes -> Airflow's behaviour)
    dag.get_task('run__button_color_v3').python_callable(experiment='button_color_v3', ds='2026-11-01')
    dag.get_task('report__button_color_v3').python_callable(experiment='button_color_v3')
    dag.get_task('docs').python_callable()
    import importlib
    module = importlib.import_module(dag.get_task('docs').python_callable.__module__)
    raised = {}
    for code in (1, 2, 3, 4, 70):
        try:
            module.check(subprocess.CompletedProcess(['wn'], code, '', 'boom'), 'wn run x')
        except Exception as exc:
            raised[code] = type(exc).__name__
    result['raised'] = raised
    print(json.dumps(result))
"""


def test_airflow_dag_loads_and_its_tasks_run_wn(live_project, tmp_path):
    python = scheduler_python("airflow", "airflow")
    result = run_in(python, AIRFLOW % {"folder": str(EXAMPLES / "airflow")}, live_project, tmp_path)
    assert result["errors"] == {}
    # one run task per active experiment (show_new_homepage ended long ago), then its report, then docs
    assert result["tasks"] == ["docs", "report__button_color_v3", "run__button_color_v3"]
    assert result["upstream"] == {"docs": ["report__button_color_v3"],
                                  "report__button_color_v3": ["run__button_color_v3"], "run__button_color_v3": []}
    assert (live_project / "target" / "report" / "button_color_v3.html").exists()
    assert (live_project / "target" / "docs" / "index.html").exists()
    # invalid project / compile error: fail without retry; a failed run or warehouse error: retry
    assert result["raised"] == {"1": "AirflowException", "2": "AirflowFailException", "3": "AirflowFailException",
                                "4": "AirflowException", "70": "AirflowException"}


DAGSTER = """
    import importlib.util, json, subprocess
    import dagster
    spec = importlib.util.spec_from_file_location('wn_assets', %(path)r)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    graph = module.defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    parents = {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
               for k in graph.get_all_asset_keys()}
    job = module.defs.resolve_job_def('wn_daily').name
    schedules = [s.cron_schedule for s in module.defs.schedules]
    run = dagster.materialize(module.assets, raise_on_error=False)
    failure = {}
    for code in (2, 4):
        try:
            module.check(dagster.build_asset_context(), subprocess.CompletedProcess(['wn'], code, '', 'boom'), 'x')
        except dagster.Failure as exc:
            failure[code] = exc.allow_retries
    print(json.dumps({'keys': keys, 'parents': parents, 'job': job, 'schedules': schedules,
                      'success': run.success, 'allow_retries': failure}))
"""


def test_dagster_assets_load_and_materialize(live_project, tmp_path):
    python = scheduler_python("dagster", "dagster")
    result = run_in(python, DAGSTER % {"path": str(EXAMPLES / "dagster" / "wn_assets.py")}, live_project, tmp_path)
    assert result["keys"] == ["report__button_color_v3", "scorecard__button_color_v3"]
    assert result["parents"] == {"report__button_color_v3": ["scorecard__button_color_v3"],
                                 "scorecard__button_color_v3": []}
    assert result["job"] == "wn_daily" and result["schedules"] == ["15 6 * * *"]
    assert result["success"] and (live_project / "target" / "report" / "button_color_v3.html").exists()
    assert result["allow_retries"] == {"2": False, "4": True}


CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\d+(-\d+)?))*$")


def test_cron_line_parses_and_runs(live_project):
    lines = [ln for ln in (EXAMPLES / "cron" / "wn.crontab").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for field, (lo, hi) in zip(fields[:5], ranges):
        assert CRON_FIELD.match(field), field
        assert all(lo <= int(n) <= hi for n in re.findall(r"\d+", field.split("/")[0])), field
    command = fields[5]
    # every wn invocation in it is a valid command line
    for call in re.findall(r"\.venv/bin/wn ([^;&|>)]+)", command):
        name, *args = call.split()
        click_group.commands[name].make_context(name, args)   # raises on an unknown option
    # and the line does its job, run as cron would (sh, from the project folder)
    venv = live_project / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "wn").symlink_to(WN_BIN)
    (live_project / "target").mkdir()
    line = command.replace("/srv/wn-project", str(live_project))
    out = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=600)
    # silent when every run succeeded (a failure prints the log's tail: cron mails it)
    assert out.returncode == 0 and out.stdout == "" and out.stderr == "", out.stdout + out.stderr
    log = (live_project / "target" / "wn-cron.log").read_text()
    assert "button_color_v3" in log and "Traceback" not in log
    assert (live_project / "target" / "report" / "button_color_v3.html").exists()
    assert (live_project / "target" / "docs" / "index.html").exists()


def test_wn_ls_json_is_what_the_examples_read(live_project, capsys):
    capsys.readouterr()
    assert cli("ls", "--json", "--active", "--project-dir", str(live_project)) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ["button_color_v3"]
    for path in (EXAMPLES / "airflow" / "wn_dag.py", EXAMPLES / "dagster" / "wn_assets.py"):
        text = path.read_text()
        assert '"ls", "--json", "--active"' in text and 'exp["name"]' in text
    assert shutil.which("sh")
