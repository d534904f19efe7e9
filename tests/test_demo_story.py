"""The default demo run (CUPED on, ``as_of=AS_OF``) tells the story planted in the data.

* red lifts ``visited_signup`` significantly (after the Holm correction);
* orange fails the ``revenue`` guardrail;
* the button_color_v3 split passes SRM; multi-exposed units are counted and excluded;
* the ``show_new_homepage`` gate runs and passes SRM against its 80/20 weights.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import AS_OF, copy_project
from scipy import stats as sps

from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

EXPERIMENT = "button_color_v3"
GATE = "show_new_homepage"
MULTIPLE = "__multiple__"


@dataclass
class Run:
    run_id: str
    scorecard: list[dict]
    health: list[dict]
    exposure_counts: dict[str, int]   # variant -> units in wn.exposures
    config: dict

    def row(self, metric: str, variant: str) -> dict:
        rows = [r for r in self.scorecard if r["metric"] == metric and r["variant"] == variant
                and r["dimension"] is None]
        assert len(rows) == 1, f"{len(rows)} overall scorecard rows for {metric}/{variant}"
        return rows[0]

    def check(self, name: str) -> dict:
        rows = [h for h in self.health if h["check_name"] == name and h["dimension"] is None]
        assert len(rows) == 1, f"{len(rows)} overall '{name}' health rows"
        return rows[0]


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory, seeded_db) -> dict[str, Run]:
    """Both demo experiments run, unmodified, in one copy of the project (as ``demo_project``
    does, but module-scoped so the runs are shared by every test here)."""
    root = tmp_path_factory.mktemp("demo_story")
    db = root / "warehouse" / "demo.duckdb"
    db.parent.mkdir(parents=True)
    shutil.copy(seeded_db, db)
    project = copy_project(root / "project", db)
    target = load_target(project)
    loaded = load_project(project)
    runs: dict[str, Run] = {}
    with connect(target) as adapter:
        for name in (EXPERIMENT, GATE):
            result = run_experiment(loaded, target, adapter, name, as_of=AS_OF)
            assert result.status == "success", result.error
            scorecard = adapter.fetch("select * from wn.scorecard where run_id = ?", [result.run_id])
            health = adapter.fetch("select * from wn.health_checks where run_id = ?", [result.run_id])
            counts = adapter.fetch("select variant, count(*) as n from wn.exposures where experiment = ? "
                                   "group by variant", [name])
            config = yaml.safe_load((Path(project) / "experiments" / f"{name}.yml").read_text())["experiment"]
            runs[name] = Run(result.run_id, scorecard, health,
                             {r["variant"]: int(r["n"]) for r in counts}, config)
        latest = adapter.fetch("select distinct experiment, run_id from wn.scorecard_latest")
    assert {(r["experiment"], r["run_id"]) for r in latest} == {(n, r.run_id) for n, r in runs.items()}
    return runs


def test_demo_runs_with_cuped_on(demo_runs):
    run = demo_runs[EXPERIMENT]
    assert run.config["analysis"]["cuped"] is True
    assert run.row("visited_signup", "red")["cuped"] is True


def test_red_lifts_visited_signup_significantly(demo_runs):
    r = demo_runs[EXPERIMENT].row("visited_signup", "red")
    assert r["role"] == "primary"
    assert r["abs_delta"] > 0 and r["rel_delta"] > 0
    assert r["variant_mean"] > r["control_mean"]
    assert r["adjusted_p_value"] < 0.05
    assert r["adjusted_p_value"] >= r["p_value"]       # Holm never lowers a p-value
    assert r["significant"] is True
    assert r["abs_ci_lower"] > 0


def test_other_colours_do_not_move_visited_signup(demo_runs):
    for variant in ("green", "orange"):
        r = demo_runs[EXPERIMENT].row("visited_signup", variant)
        assert r["significant"] is False, (variant, r["adjusted_p_value"])


def test_orange_fails_the_revenue_guardrail(demo_runs):
    r = demo_runs[EXPERIMENT].row("revenue", "orange")
    assert r["role"] == "guardrail"
    assert r["guardrail_status"] == "fail"
    assert r["abs_delta"] < 0 and r["variant_mean"] < r["control_mean"]


def test_srm_passes_for_the_experiment(demo_runs):
    run = demo_runs[EXPERIMENT]
    srm = run.check("srm")
    assert srm["status"] == "pass"
    assert srm["p_value"] >= 0.01


def test_multi_exposed_units_are_counted_and_excluded(demo_runs):
    run = demo_runs[EXPERIMENT]
    multiple = run.exposure_counts.get(MULTIPLE, 0)
    assert multiple > 0
    assert run.check("multi_exposure")["statistic"] == multiple
    variants = [v["name"] for v in run.config["variants"]]
    control = next(v["name"] for v in run.config["variants"] if v.get("control"))
    assert set(run.exposure_counts) == set(variants) | {MULTIPLE}
    overall = [r for r in run.scorecard if r["dimension"] is None]
    assert overall
    for r in overall:
        assert r["control_variant"] == control
        assert r["control_units"] == run.exposure_counts[control], r["metric"]
        assert r["variant_units"] == run.exposure_counts[r["variant"]], (r["metric"], r["variant"])
    # no statistic counts the multi-exposed: analysed units = exposed units - multiple
    analysed = sum(run.exposure_counts[v] for v in variants)
    assert analysed == sum(run.exposure_counts.values()) - multiple
    assert MULTIPLE not in {r["variant"] for r in run.scorecard}


def _srm_against(counts: list[int], weights: list[float]) -> float:
    expected = np.array(weights) / sum(weights) * sum(counts)
    return float(sps.chisquare(counts, expected).pvalue)


def test_feature_gate_runs_and_passes_srm_with_80_20_weights(demo_runs):
    run = demo_runs[GATE]
    weights = {v["name"]: v["weight"] for v in run.config["variants"]}
    assert weights == {"off": 0.8, "on": 0.2}
    srm = run.check("srm")
    assert srm["status"] == "pass"
    counts = [run.exposure_counts[v] for v in ("off", "on")]
    # the check uses the configured weights: same p-value as an independent chi-square
    assert srm["p_value"] == pytest.approx(_srm_against(counts, [0.8, 0.2]), rel=1e-9)
    # ... and the gate's split is far from 50/50, so an unweighted check would fail
    assert _srm_against(counts, [0.5, 0.5]) < 1e-6
    assert {r["metric"] for r in run.scorecard} >= {"page_views", "dau", "sessions"}
    assert {r["variant"] for r in run.scorecard} == {"on"}
    assert run.check("multi_exposure")["statistic"] == run.exposure_counts.get(MULTIPLE, 0)
