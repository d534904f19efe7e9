"""`wn power`: the population's mean/variance come from the warehouse and feed a correct sample size."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.stats.power import NormalIndPower

from warehouse_native.cli.main import cli
from warehouse_native.power_analysis import measure_population, power_report
from warehouse_native.warehouse import connect

AS_OF = dt.date(2026, 10, 25)


def test_population_moments_match_independent_sql(project_and_target):
    project, target = project_and_target
    with connect(target) as adapter:
        moments, days = measure_population(project, adapter, "signups", unit="user_id", as_of=AS_OF,
                                           days=10, schema="wn")
        rows = adapter.fetch("""
            with pop as (
                select user_id, min(ts) as first_seen from raw.events
                where ts >= timestamp '2026-10-16' and ts < timestamp '2026-10-26' and user_id is not null
                group by user_id)
            select pop.user_id,
                   count(e.user_id) filter (where lower(e.event_name) = 'signup_success'
                                            and e.ts >= pop.first_seen) as v
            from pop left join raw.events e
              on e.user_id = pop.user_id and e.ts >= pop.first_seen and e.ts < timestamp '2026-10-26'
            group by pop.user_id""")
    v = np.array([float(r["v"]) for r in rows])
    assert moments.n == len(v)
    assert moments.sum == pytest.approx(v.sum(), rel=1e-12)
    assert moments.sum_sq == pytest.approx((v * v).sum(), rel=1e-12)
    report = power_report(moments, metric="signups", unit="user_id", days=days, mdes=[0.05],
                          weights=(0.5, 0.5), confidence=0.95, power=0.8)
    effect = 0.05 * v.mean() / v.std(ddof=1)
    expected = NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=1.0)
    assert report.rows[0].units_per_variant[0] == int(np.ceil(expected))
    assert report.rows[0].days == int(np.ceil(report.rows[0].total_units / (len(v) / 10)))


def test_power_cli_prints_table(demo_project):
    result = CliRunner().invoke(cli, ["power", "--project-dir", str(demo_project), "--metric",
                                      "pages_per_session", "--experiment", "show_new_homepage",
                                      "--mde", "0.02,0.05", "--as-of", "2026-10-25"])
    assert result.exit_code == 0, result.output
    assert "units per variant" in result.output and "5.00%" in result.output
    bad = CliRunner().invoke(cli, ["power", "--project-dir", str(demo_project), "--metric", "nope"])
    assert bad.exit_code != 0
