"""CUPAC: several CUPED covariates (``analysis.covariates``).

* statistics from sufficient statistics against statsmodels OLS on the per-unit rows, with
  units without events, a constant covariate and collinear covariates;
* an A/A simulation: the false-positive rate with several covariates stays near alpha;
* validation (``wn validate``), the plan and the compiled SQL of every dialect;
* ``wn run`` end to end on DuckDB (stateless, full refresh, incremental after adding the
  covariates to an existing state, the daily series, slices) against an independent
  computation over ``raw.*``, and PostgreSQL against DuckDB.

The OLS that equals wn's estimator (docs/statistics.md, "Several covariates"): for a plain
metric, ``y ~ 1 + treatment + x + c_1 + ... + c_k`` over the two arms compared; the
treatment coefficient is ``abs_delta`` and the slopes are θ.  Its standard error is not an
OLS one: θ is treated as known, so Var = Σ_arms RSS_arm / (n_arm (n_arm − 1)) with RSS_arm the
OLS residuals' sum of squares in that arm (Welch on the residualised values, Welch–
Satterthwaite df).  When the arms' covariate means are equal and n_t = n_c = m, this is
HC0 × m/(m − 1).  Ratio metrics: the same OLS on the linearised values
``R_arm + (y − R_arm·d)/d̄_arm`` and ``P_arm + (x − P_arm·m)/m̄_arm``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import shutil
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pytest
import statsmodels.api as sm
from click.testing import CliRunner
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from compare import assert_same_rows, by_key
from conftest import AS_OF, copy_project
from test_end_to_end_independent import EXPERIMENT, _plant_edge_rows, experiment_config, independent_units
from test_postgres import HOST, PORT, USER, pg_database, pg_server  # noqa: F401 (fixtures)
from warehouse_native.cli.main import cli
from warehouse_native.errors import ProjectError
from warehouse_native.plan import build_plan
from warehouse_native.project import load_project
from warehouse_native.sql import DIALECTS, compile_plan
from warehouse_native.stats import (CovariateSums, Moments, StatsInputError, bayesian_summary, compare,
                                    guardrail_check, sequential_compare)

REL = 1e-9


def _ols(y: np.ndarray, design: np.ndarray):
    """statsmodels OLS; a rank-deficient design (a collinear or constant covariate) is fitted
    by its pseudo-inverse, which identifies the treatment effect all the same."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.OLS(y, design).fit()


# -- statistics against OLS ------------------------------------------------------------------

def _plain_arm(rng: np.random.Generator, n: int, effect: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per-unit (y, own pre value x, further covariates) of one arm.  30% of the units have no
    events in either window (every value 0, as the SQL coalesces them); ``a2__pre`` is
    2·a + 3 (collinear with ``a__pre`` and the intercept); ``zero__pre`` is 0 for everyone."""
    active = rng.random(n) < 0.7
    x = rng.poisson(2.0, n) * active
    a = rng.gamma(2.0, 1.5, n) * active
    conv = (rng.random(n) < 0.4) * active
    y = (1.0 + effect + 0.6 * x + 0.9 * a + 0.7 * conv + rng.normal(0, 1.0, n)) * active
    return y.astype(float), x.astype(float), {"a__pre": a, "a2__pre": 2 * a + 3, "conv__pre": conv.astype(float),
                                              "zero__pre": np.zeros(n)}


def _stack(control, variant):
    """Both arms' rows in one array each: y, x, covariates, treatment indicator."""
    (yc, xc, cc), (yt, xt, ct) = control, variant
    treat = np.r_[np.zeros(yc.size), np.ones(yt.size)]
    return np.r_[yc, yt], np.r_[xc, xt], {k: np.r_[cc[k], ct[k]] for k in cc}, treat


def _welch_from_residuals(resid: np.ndarray, treat: np.ndarray) -> tuple[float, float]:
    """The documented SE and df: Σ_arms RSS/(n(n−1)), Welch–Satterthwaite."""
    v = []
    for g in (1, 0):
        e = resid[treat == g]
        v.append((e @ e) / (e.size * (e.size - 1)))
    n = [(treat == 1).sum(), (treat == 0).sum()]
    dof = sum(v) ** 2 / (v[0] ** 2 / (n[0] - 1) + v[1] ** 2 / (n[1] - 1))
    return math.sqrt(sum(v)), dof


def test_estimate_equals_ols_with_units_without_events_a_constant_and_collinear_covariates():
    rng = np.random.default_rng(11)
    control, variant = _plain_arm(rng, 900, 0.0), _plain_arm(rng, 700, 0.25)
    res = compare(Moments.from_values(control[0], x=control[1], covariates=control[2]),
                  Moments.from_values(variant[0], x=variant[1], covariates=variant[2]), cuped=True)
    y, x, cov, treat = _stack(control, variant)
    assert (y == 0).mean() > 0.25   # units without events are in the data

    # the full-rank OLS: the redundant covariates left out, as wn documents
    full_rank = sm.OLS(y, np.column_stack([np.ones_like(y), treat, x, cov["a__pre"], cov["conv__pre"]])).fit()
    assert res.cuped and res.abs_delta == pytest.approx(full_rank.params[1], rel=REL)
    assert [name for name, _ in res.covariates] == ["pre", "a__pre", "conv__pre"]
    assert [t for _, t in res.covariates] == pytest.approx(list(full_rank.params[2:]), rel=REL)
    assert res.theta == pytest.approx(full_rank.params[2], rel=REL)
    assert res.reason == ("covariate a2__pre not used: it is a linear combination of the covariates before it; "
                          "covariate zero__pre not used: it has zero variance")
    # the rank-deficient OLS with every covariate (pinv): the treatment effect is still identified
    everything = np.column_stack([np.ones_like(y), treat, x, *cov.values()])
    deficient = _ols(y, everything)
    assert np.linalg.matrix_rank(everything) == everything.shape[1] - 2
    assert res.abs_delta == pytest.approx(deficient.params[1], rel=REL)

    # SE: θ known, per-arm residual variances (Welch) — from the OLS residuals
    se, dof = _welch_from_residuals(full_rank.resid, treat)
    assert res.std_error == pytest.approx(se, rel=REL) and res.dof == pytest.approx(dof, rel=REL)
    # ... which is statsmodels' Welch test on the residualised values y − θᵀw
    adjusted = y - np.column_stack([x, cov["a__pre"], cov["conv__pre"]]) @ full_rank.params[2:]
    cm = CompareMeans(DescrStatsW(adjusted[treat == 1]), DescrStatsW(adjusted[treat == 0]))
    t_stat, p_value, df = cm.ttest_ind(usevar="unequal")
    assert res.p_value == pytest.approx(p_value, rel=1e-8) and res.t_stat == pytest.approx(t_stat, rel=REL)
    assert res.std_error == pytest.approx(cm.std_meandiff_separatevar, rel=REL) and res.dof == pytest.approx(df, rel=REL)
    # variance reduction against the unadjusted Welch variance, as with one covariate
    raw = compare(Moments.from_values(control[0]), Moments.from_values(variant[0]))
    assert res.variance_reduction == pytest.approx(1 - (se / raw.std_error) ** 2, rel=REL)
    one = compare(Moments.from_values(control[0], x=control[1]), Moments.from_values(variant[0], x=variant[1]),
                  cuped=True)
    assert res.variance_reduction > one.variance_reduction + 0.2   # the further covariates do help here


def test_standard_error_is_hc0_scaled_when_covariate_means_balance():
    """With equal covariate means in the two arms and n_t = n_c = m, the treatment column is
    orthogonal to the centred covariates, and the documented SE is HC0 × √(m/(m−1))."""
    rng = np.random.default_rng(5)
    m = 400
    arms = [_plain_arm(rng, m, eff) for eff in (0.0, 0.3)]
    balanced = []
    for y, x, cov in arms:   # shift each arm's covariates onto common means (x: 2, a: 3, conv: 0.3)
        cov = {k: cov[k] - cov[k].mean() + mean for k, mean in (("a__pre", 3.0), ("conv__pre", 0.3))}
        balanced.append((y, x - x.mean() + 2.0, cov))
    res = compare(*(Moments.from_values(y, x=x, covariates=c) for y, x, c in balanced), cuped=True)
    y, x, cov, treat = _stack(*balanced)
    ols = sm.OLS(y, np.column_stack([np.ones_like(y), treat, x, cov["a__pre"], cov["conv__pre"]])).fit()
    assert res.abs_delta == pytest.approx(ols.params[1], rel=REL)
    assert res.std_error ** 2 == pytest.approx(ols.HC0_se[1] ** 2 * m / (m - 1), rel=1e-9)


def _ratio_arm(rng: np.random.Generator, n: int, lift: float):
    m = rng.poisson(4.0, n) * (rng.random(n) < 0.85)     # some units had no pre-period sessions
    x = rng.binomial(m, 0.3)
    d = m + rng.poisson(1.0, n)
    rate = np.clip(0.3 * lift + 0.4 * (x / np.maximum(m, 1) - 0.3), 0.01, 0.99)
    y = rng.binomial(d, rate)
    c = {"sessions__pre": (m + rng.poisson(0.5, n)).astype(float), "spend__pre": rng.gamma(1.5, 2.0, n) * (m > 0)}
    return [v.astype(float) for v in (y, d, x, m)] + [c]


def test_ratio_metric_equals_ols_on_the_linearised_values():
    rng = np.random.default_rng(21)
    arms = [_ratio_arm(rng, 1500, 1.0), _ratio_arm(rng, 1300, 1.06)]
    res = compare(*(Moments.from_values(y, d, x, m, covariates=c) for y, d, x, m, c in arms), cuped=True)
    assert res.cuped and res.reason is None
    rows, treat = [], []
    for g, (y, d, x, m, c) in enumerate(arms):
        r, p = y.sum() / d.sum(), x.sum() / m.sum()
        z = r + (y - r * d) / d.mean()         # linearised ratio, mean R of the arm
        w = p + (x - p * m) / m.mean()         # linearised pre ratio, mean P of the arm
        rows.append(np.column_stack([z, w, c["sessions__pre"], c["spend__pre"]]))
        treat.append(np.full(y.size, float(g)))
    data, treat = np.vstack(rows), np.concatenate(treat)
    ols = sm.OLS(data[:, 0], np.column_stack([np.ones(len(treat)), treat, data[:, 1:]])).fit()
    assert res.abs_delta == pytest.approx(ols.params[1], rel=REL)
    assert [t for _, t in res.covariates] == pytest.approx(list(ols.params[2:]), rel=REL)
    se, dof = _welch_from_residuals(ols.resid, treat)
    assert res.std_error == pytest.approx(se, rel=REL) and res.dof == pytest.approx(dof, rel=REL)


def test_relative_delta_matches_a_numeric_delta_method_gradient():
    """(T − C)/|C| with T, C adjusted by the vector θ around the pooled covariate means; its SE
    by a finite-difference gradient over (P, X) of both arms (independent of wn's analytic one)."""
    rng = np.random.default_rng(8)
    control, variant = _plain_arm(rng, 600, 0.0), _plain_arm(rng, 500, 0.4)
    keep = ("a__pre", "conv__pre")
    arms = [(y, x, {k: c[k] for k in keep}) for y, x, c in (variant, control)]
    res = compare(*(Moments.from_values(y, x=x, covariates=c) for y, x, c in reversed(arms)), cuped=True)
    theta = np.array([t for _, t in res.covariates])
    n_t, n_c = arms[0][0].size, arms[1][0].size
    wt, wc = n_t / (n_t + n_c), n_c / (n_t + n_c)

    def rel(v):
        pt, xt, pc, xc = v[0], v[1:4], v[4], v[5:8]
        xbar = wt * xt + wc * xc
        t_adj, c_adj = pt - theta @ (xt - xbar), pc - theta @ (xc - xbar)
        return (t_adj - c_adj) / abs(c_adj)

    units = [np.column_stack([y, x, *c.values()]) for y, x, c in arms]
    v0 = np.concatenate([u.mean(axis=0) for u in units])
    grad = np.zeros(8)
    for i in range(8):
        h = 1e-6 * max(1.0, abs(v0[i]))
        up, dn = v0.copy(), v0.copy()
        up[i] += h
        dn[i] -= h
        grad[i] = (rel(up) - rel(dn)) / (2 * h)
    var = sum(g @ np.cov(u, rowvar=False) @ g / len(u) for g, u in ((grad[:4], units[0]), (grad[4:], units[1])))
    assert res.rel_delta == pytest.approx(rel(v0), rel=REL)
    assert res.rel_std_error == pytest.approx(math.sqrt(var), rel=1e-6)


def test_only_redundant_further_covariates_give_single_covariate_cuped_with_a_note():
    rng = np.random.default_rng(3)
    control, variant = _plain_arm(rng, 300, 0.0), _plain_arm(rng, 300, 0.2)
    extra = lambda arm: {"zero__pre": arm[2]["zero__pre"], "twice__pre": 2 * arm[1]}   # noqa: E731
    res = compare(*(Moments.from_values(a[0], x=a[1], covariates=extra(a)) for a in (control, variant)), cuped=True)
    single = compare(*(Moments.from_values(a[0], x=a[1]) for a in (control, variant)), cuped=True)
    for f in ("abs_delta", "std_error", "p_value", "theta", "variance_reduction", "rel_delta", "rel_std_error"):
        assert getattr(res, f) == pytest.approx(getattr(single, f), rel=1e-12), f
    assert res.covariates == (("pre", single.theta),)
    assert res.reason == ("covariate zero__pre not used: it has zero variance; covariate twice__pre not used: "
                          "it is a linear combination of the covariates before it")
    # no covariate with variance at all: plain Welch, and the reason says why
    flat = compare(*(Moments.from_values(a[0], x=np.zeros(300), covariates={"zero__pre": np.zeros(300)})
                     for a in (control, variant)), cuped=True)
    welch = compare(Moments.from_values(control[0]), Moments.from_values(variant[0]))
    assert not flat.cuped and flat.p_value == welch.p_value and flat.covariates == ()
    assert flat.reason == "CUPED not applied: no covariate has variance within the arms"


def test_sequential_bayesian_and_guardrail_use_the_same_adjustment():
    """The opt-in methods share the pair (θ, adjusted means) with compare()."""
    rng = np.random.default_rng(13)
    control, variant = _plain_arm(rng, 800, 0.0), _plain_arm(rng, 800, 0.3)
    arms = [Moments.from_values(a[0], x=a[1], covariates={k: a[2][k] for k in ("a__pre", "conv__pre")})
            for a in (control, variant)]
    fixed = compare(*arms, cuped=True)
    single = compare(*(Moments.from_values(a[0], x=a[1]) for a in (control, variant)), cuped=True)
    seq = sequential_compare(*arms, cuped=True)
    assert seq.cuped and seq.abs_delta == pytest.approx(fixed.abs_delta, rel=1e-12)
    assert seq.ci_upper - seq.ci_lower > fixed.abs_ci_upper - fixed.abs_ci_lower   # always-valid: wider
    bayes = bayesian_summary(*arms, direction="increase", cuped=True)
    bayes_single = bayesian_summary(*(Moments.from_values(a[0], x=a[1]) for a in (control, variant)),
                                    direction="increase", cuped=True)
    assert bayes.cuped and bayes.posterior_sd < bayes_single.posterior_sd   # more covariates, less noise
    guard = guardrail_check(*arms, direction="increase", cuped=True)
    assert guard.cuped and guard.rel_delta == pytest.approx(fixed.rel_delta, rel=1e-12)
    assert fixed.std_error < single.std_error


def test_covariate_sums_are_checked():
    with pytest.raises(StatsInputError, match="unique"):
        CovariateSums(names=("a", "a"), sums=(1, 1), products=((1, 1), (1, 1)), with_y=(1, 1))
    with pytest.raises(StatsInputError, match="one per covariate"):
        CovariateSums(names=("a", "b"), sums=(1,), products=((1, 1), (1, 1)), with_y=(1, 1))
    sums = CovariateSums(names=("a",), sums=(1.0,), products=((1.0,),), with_y=(2.0,))
    with pytest.raises(StatsInputError, match=r"with_x \(Σx·c\) missing"):
        Moments(n=3, sum=1, sum_sq=1, pre_sum=1, pre_sum_sq=1, sum_cross=1, covariates=sums)
    other = dataclasses.replace(sums, names=("b",))
    with pytest.raises(StatsInputError, match="name different covariates"):
        compare(Moments(n=3, sum=1, sum_sq=1, covariates=sums), Moments(n=3, sum=1, sum_sq=1, covariates=other),
                cuped=True)


def _aa_arms(rng: np.random.Generator, reps: int, n: int) -> list[list[Moments]]:
    """``reps`` A/A experiments of 2 × ``n`` units, as sums only: metric ~ own pre value + 3
    further covariates (a continuous, a binary, one correlated with the own) + t(5) noise."""
    shape = (reps, 2, n)
    x = rng.poisson(2.0, shape).astype(float)
    c1 = rng.gamma(2.0, 1.0, shape)
    c2 = (rng.random(shape) < 0.3).astype(float)
    c3 = x + rng.poisson(1.0, shape)
    y = 0.5 * x + 0.8 * c1 + 0.6 * c2 + 0.2 * c3 + rng.standard_t(5, shape)
    u = np.stack([y, x, c1, c2, c3], axis=2)               # reps x arm x variable x unit
    sums, gram = u.sum(axis=3), np.einsum("ragn,rahn->ragh", u, u)
    out = []
    for r in range(reps):
        arms = []
        for g in range(2):
            s, q = sums[r, g], gram[r, g]
            extra = CovariateSums(names=("c1__pre", "c2__pre", "c3__pre"), sums=tuple(s[2:]),
                                  products=tuple(map(tuple, q[2:, 2:])), with_y=tuple(q[0, 2:]),
                                  with_x=tuple(q[1, 2:]))
            arms.append(Moments(n=n, sum=s[0], sum_sq=q[0, 0], pre_sum=s[1], pre_sum_sq=q[1, 1],
                                sum_cross=q[0, 1], covariates=extra))
        out.append(arms)
    return out


def test_aa_false_positive_rate_with_several_covariates_stays_at_alpha():
    """10 000 A/A experiments of 2 × 250 units with 4 covariates, analysed from sums only: the
    rejection rate at alpha 0.05 is in [4%, 6%] (binomial SE 0.22%; treating θ as known adds
    about k/N to the variance, here 0.8%, i.e. a rate near 5.1%), and the covariates really
    reduce the variance."""
    rng = np.random.default_rng(20261101)
    p_values, reductions = [], []
    for _ in range(10):                                     # in chunks: bounded memory
        for control, variant in _aa_arms(rng, 1000, 250):
            res = compare(control, variant, cuped=True)
            assert res.cuped and res.p_value is not None and len(res.covariates) == 4
            p_values.append(res.p_value)
            reductions.append(res.variance_reduction)
    rate = float(np.mean(np.array(p_values) < 0.05))
    assert 0.04 <= rate <= 0.06, rate
    assert np.mean(reductions) > 0.5


# -- validation, plan, SQL ---------------------------------------------------------------------

DEVICE_CATALOG = """\
sources:
  - name: device_log
    table: raw.device_log
    timestamp: ts
    units: {device_id: device_id}
metrics:
  - name: device_pings
    source: device_log
    type: count
"""

BAD_COVARIATES = """\
  analysis:
    cuped: true
    correction: holm
    covariates:
      - sessions
      - sesions__pre
      - pages_per_session__pre
      - avg_order_value__pre
      - device_pings__pre
      - revenue__pre
      - revenue__pre
"""


def _line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def _set_analysis(path: Path, block: str) -> None:
    text = re.sub(r"^  analysis: \{.*\}\n", block, path.read_text(), flags=re.M)
    assert block in text, f"no one-line analysis: in {path}"
    path.write_text(text)


def test_validate_names_every_bad_covariate_with_file_line_field_and_fix(tmp_path: Path):
    root = copy_project(tmp_path / "p", tmp_path / "never.duckdb")
    (root / "metrics" / "devices.yml").write_text(DEVICE_CATALOG)
    exp = root / "experiments" / "button_color_v3.yml"
    _set_analysis(exp, BAD_COVARIATES)
    gate = root / "experiments" / "show_new_homepage.yml"
    _set_analysis(gate, "  analysis:\n    cuped: false\n    covariates: [sessions__pre]\n")
    with pytest.raises(ProjectError) as info:
        load_project(root)
    problems = info.value.problems
    expected = [  # (message fragment, file, line needle, hint fragment)
        ("covariate 'sessions' does not end in '__pre'", exp, "- sessions", "write 'sessions__pre'"),
        ("covariate 'sesions__pre' names no catalog metric 'sesions'", exp, "- sesions__pre",
         "did you mean 'sessions__pre'?"),
        ("'pages_per_session' is a ratio metric", exp, "- pages_per_session__pre", "numerator or denominator"),
        ("'avg_order_value' is a mean metric", exp, "- avg_order_value__pre", "sum or count metric"),
        ("the source 'device_log' of metric 'device_pings' has no 'user_id' unit", exp, "- device_pings__pre",
         "metric on 'user_id' units"),
        ("covariate 'revenue__pre' is listed twice", exp, ("- revenue__pre", 2), "list each covariate once"),
        ("covariates are CUPED covariates, but analysis.cuped is false", gate, "covariates:",
         "set 'cuped: true' or remove 'covariates'"),
    ]
    for fragment, path, needle, hint in expected:
        hits = [p for p in problems if fragment in p.message]
        assert len(hits) == 1, (fragment, [p.message for p in problems])
        needle, occurrence = needle if isinstance(needle, tuple) else (needle, 1)
        p = hits[0]
        assert (p.file, p.line, p.field) == (str(path.relative_to(root)), _line_of(path, needle, occurrence),
                                             "analysis.covariates"), fragment
        assert hint in (p.hint or ""), (fragment, p.hint)
    assert len(problems) == len(expected), [p.message for p in problems]
    result = CliRunner().invoke(cli, ["validate", "--project-dir", str(root)])
    assert result.exit_code == 2 and f"{len(expected)} problems found" in result.output
    assert "Traceback" not in result.output


COVARIATES = ["sessions__pre", "session_starts__pre", "never_seen__pre", "page_views__pre", "revenue__pre",
              "visited_signup__pre"]
EXTRA_CATALOG = """\
metrics:
  - name: session_starts        # the same numbers as sessions: a collinear covariate
    source: events
    type: count
    filter: "event_name = 'session_start'"
  - name: never_seen            # no unit has such rows: a constant covariate
    source: events
    type: count
    filter: "event_name = 'no_such_event'"
"""


def _with_covariates(root: Path, covariates: list[str] = COVARIATES) -> Path:
    (root / "metrics" / "cupac.yml").write_text(EXTRA_CATALOG)
    exp = root / "experiments" / "button_color_v3.yml"
    text = exp.read_text()
    old = "daily_history: true}"
    assert text.count(old) == 1
    text = text.replace(old, f"daily_history: true, covariates: [{', '.join(covariates)}]}}")
    # every country a slice of its own (the per-country checks read FR, which the demo lumps into '(other)')
    assert text.count("dimensions: [{name: country, top: 4, min_units: 500}]") == 1
    exp.write_text(text.replace("dimensions: [{name: country, top: 4, min_units: 500}]", "dimensions: [country]"))
    return root


def test_plan_reads_each_covariate_from_its_source_scan_once(tmp_path: Path):
    root = _with_covariates(copy_project(tmp_path / "p", tmp_path / "never.duckdb"))
    eng = root / "metrics" / "engagement.yml"   # a metric opting out of CUPED gets no covariates
    eng.write_text(eng.read_text().replace("    value: event_name\n", "    value: event_name\n    cuped: false\n"))
    project = load_project(root)
    plan = build_plan(project, project.experiments[EXPERIMENT], as_of=AS_OF, schema="wn")
    assert [s.source for s in plan.scans] == ["events"]
    names = [c.name for c in plan.scans[0].columns]
    assert all(names.count(c) == 1 for c in COVARIATES) and len(names) == len(set(names))
    by_name = {c.name: c for c in plan.scans[0].columns}
    assert by_name["never_seen__pre"].window == "pre" and by_name["never_seen__pre"].filter == "event_name = 'no_such_event'"
    covs = {m.name: [c.name for c in m.covariates] for m in plan.metrics}
    assert covs["signups"] == COVARIATES                                     # plus its own signups__pre
    assert covs["visited_signup"] == [c for c in COVARIATES if c != "visited_signup__pre"]   # never twice
    assert covs["event_types_used"] == [] and plan.metric("event_types_used").pre_column is None
    revenue = next(c for c in plan.metric("signups").covariates if c.name == "revenue__pre")
    assert (revenue.winsor_lower, revenue.winsor_upper) == (None, 0.999)   # capped as the revenue metric is
    assert plan.metric("pages_per_session").covariates[0].name == "sessions__pre"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_covariate_sums_compile_for_every_dialect_in_the_one_aggregates_query(tmp_path: Path, dialect: str):
    root = _with_covariates(copy_project(tmp_path / "p", tmp_path / "never.duckdb"))
    project = load_project(root)
    plan = build_plan(project, project.experiments[EXPERIMENT], as_of=AS_OF, schema="wn")
    compiled = compile_plan(plan, dialect=dialect, strategy="cte")
    queries = [s for s in compiled.statements if s.action == "query" and not s.step.startswith("quantiles__")]
    assert [s.step for s in queries] == ["aggregates"]   # (a percentile metric has a statement of its own)
    sql = queries[0].sql.lower()
    k = len(COVARIATES)
    # each covariate's sums and pairwise products: once in the statement, whatever metrics use it
    shared = re.findall(r"\bas (covariates__c\d+_(?:sum|c\d+))\b", sql)
    assert len(shared) == len(set(shared)) == k + k * (k + 1) // 2, shared
    assert {"covariates__c0_sum", f"covariates__c{k - 1}_c{k - 1}", "covariates__c0_c1"} <= set(shared)
    # per metric only its inputs times its covariates
    for name in ("signups__y_c0", "signups__x_c5", "pages_per_session__d_c0", "pages_per_session__xm_c5",
                 "revenue__y_c4"):
        assert re.search(rf"\bas {name}\b", sql), (dialect, name)
    assert not re.search(r"\bsignups__d_c0\b", sql)   # a plain metric has no denominator products
    assert not re.search(r"\brevenue__y_c5\b", sql)   # revenue's own revenue__pre is not a further covariate
    # revenue__pre (covariate 4) is capped as the revenue metric is, by one quantile for all metrics
    assert len(re.findall(r"\bas capcov4_hi\b", sql)) == 1 and not re.search(r"\bcapcov[0-35]_", sql)


# -- wn run end to end ---------------------------------------------------------------------------

def _wn(*args: str) -> None:
    result = CliRunner().invoke(cli, [*args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _run(project: Path, *flags: str, as_of: dt.date = AS_OF) -> None:
    _wn("run", "--project-dir", str(project), "--as-of", as_of.isoformat(), "-e", EXPERIMENT, "--quiet", *flags)


def _latest(db: Path, table: str = "scorecard_latest") -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f"select * from wn.{table} where experiment = ?", [EXPERIMENT])
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _plant_nulls(db: Path) -> None:
    """Purchases with a NULL value (count as purchases, add nothing to revenue) before and
    after some units' first exposure."""
    con = duckdb.connect(str(db))
    try:
        con.execute("""
            insert into raw.events (user_id, ts, event_name, value, country)
            select user_id, min(ts) + k * interval 1 day, 'purchase', null, 'US'
            from raw.exposures, range(-3, 3) as r(k)
            where experiment = 'button_color_v3' and user_id like '%7'
            group by user_id, k""")
    finally:
        con.close()


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path):
    """The demo with planted edge rows: a first incremental run without covariates, then with
    them (new covariate columns backfilled into the state), then --no-state and --full-refresh."""
    root = tmp_path_factory.mktemp("cupac_e2e")
    db = root / "warehouse" / "demo.duckdb"
    db.parent.mkdir(parents=True)
    shutil.copy(seeded_db, db)
    project = copy_project(root / "project", db)
    _plant_edge_rows(db)
    _plant_nulls(db)
    _run(project)                                   # the state, before covariates
    _with_covariates(project)
    out = {}
    for mode, flags in (("incremental", ()), ("stateless", ("--no-state",)), ("full-refresh", ("--full-refresh",))):
        _run(project, *flags)
        out[mode] = _latest(db)
        if mode == "incremental":
            out["daily"] = _latest(db, "scorecard_daily_latest")
    units = independent_units(db, experiment_config(project), AS_OF)
    units.pre["session_starts"] = units.pre["sessions"].copy()
    units.pre["never_seen"] = np.zeros_like(units.pre["sessions"])
    return units, out, project, db


def _row(rows: list[dict], metric: str, variant: str, dim=None, value=None) -> dict:
    hits = [r for r in rows if (r["metric"], r["variant"], r["dimension"], r["dimension_value"]) ==
            (metric, variant, dim, value)]
    assert len(hits) == 1, (metric, variant, dim, value, len(hits))
    return hits[0]


def _design(units, metric: str, sel: np.ndarray) -> np.ndarray:
    """Own pre value then the further covariates (the metric's own one not twice), per unit."""
    extra = [c.removesuffix("__pre") for c in COVARIATES if c != f"{metric}__pre"]
    return np.column_stack([units.pre[metric][sel], *(units.pre[c][sel] for c in extra)])


def _check_plain(units, rows, metric, variant, dim=None, value=None) -> list[str]:
    sel = units.analysed() & np.isin(units.variant, [units.control, variant])
    if dim:
        sel &= units.country == value
    treat = (units.variant[sel] == variant).astype(float)
    y = units.post[metric][sel]
    w = _design(units, metric, sel)
    ols = _ols(y, np.column_stack([np.ones_like(y), treat, w]))   # a collinear and a zero column: pinv
    se, dof = _welch_from_residuals(ols.resid, treat)
    adjusted = y - w @ ols.params[2:]
    p_value = CompareMeans(DescrStatsW(adjusted[treat == 1]), DescrStatsW(adjusted[treat == 0])).ttest_ind(
        usevar="unequal")[1]
    raw_var = y[treat == 1].var(ddof=1) / (treat == 1).sum() + y[treat == 0].var(ddof=1) / (treat == 0).sum()
    got = _row(rows, metric, variant, dim, value)
    want = {"abs_delta": ols.params[1], "std_error": se, "dof": dof, "p_value": p_value,
            "variance_reduction": 1 - se ** 2 / raw_var, "control_mean": y[treat == 0].mean(),
            "variant_mean": y[treat == 1].mean(), "control_units": (treat == 0).sum(),
            "variant_units": (treat == 1).sum()}
    problems = [f"{key}: wn {got[key]!r}, expected {exp!r}" for key, exp in want.items()
                if got[key] is None or not math.isclose(got[key], exp, rel_tol=1e-8 if key == "p_value" else REL,
                                                        abs_tol=1e-12)]
    if not got["cuped"] or not got["cuped_covariates"].startswith(f"{metric}__pre,"):
        problems.append(f"covariates applied: {got['cuped_covariates']!r}")
    return [f"{metric}/{variant}/{value}: {p}" for p in problems]


PLAIN = ("signups", "active_days", "visited_signup", "event_types_used", "revenue")


@pytest.mark.parametrize("metric", PLAIN)
def test_wn_run_matches_ols_on_raw_rows_overall_and_per_country(e2e, metric: str):
    units, out, _, _ = e2e
    rows = out["stateless"]
    problems = []
    for variant in units.variants[1:]:
        problems += _check_plain(units, rows, metric, variant)
        for country in ("US", "FR"):
            problems += _check_plain(units, rows, metric, variant, "country", country)
    assert not problems, "\n".join(problems)
    got = _row(rows, metric, "red")
    # the collinear and the constant covariate are left out, and the reason says so
    applied = [c for c in COVARIATES if c not in ("session_starts__pre", "never_seen__pre", f"{metric}__pre")]
    assert got["cuped_covariates"] == ",".join([f"{metric}__pre", *applied])
    assert "covariate session_starts__pre not used: it is a linear combination" in got["reason"]
    assert "covariate never_seen__pre not used: it has zero variance" in got["reason"]


def test_ratio_metric_through_wn_run_matches_ols_on_linearised_raw_rows(e2e):
    units, out, _, _ = e2e
    sel = units.analysed()
    problems = []
    for variant in units.variants[1:]:
        parts, treat = [], []
        for g, v in enumerate((units.control, variant)):
            arm = sel & (units.variant == v)
            y, d = units.post["page_views"][arm], units.post["sessions"][arm]
            x, m = units.pre["page_views"][arm], units.pre["sessions"][arm]
            r, p = y.sum() / d.sum(), x.sum() / m.sum()
            extra = [units.pre[c.removesuffix("__pre")][arm] for c in COVARIATES]
            parts.append(np.column_stack([r + (y - r * d) / d.mean(), p + (x - p * m) / m.mean(), *extra]))
            treat.append(np.full(arm.sum(), float(g == 1)))
        data, treat = np.vstack(parts), np.concatenate(treat)
        ols = _ols(data[:, 0], np.column_stack([np.ones(len(treat)), treat, data[:, 1:]]))
        se, _ = _welch_from_residuals(ols.resid, treat)
        got = _row(out["stateless"], "pages_per_session", variant)
        for key, want in (("abs_delta", ols.params[1]), ("std_error", se)):
            if not math.isclose(got[key], want, rel_tol=REL):
                problems.append(f"{variant} {key}: wn {got[key]!r}, expected {want!r}")
    assert not problems, "\n".join(problems)


def test_every_run_mode_publishes_the_same_numbers(e2e):
    _, out, _, _ = e2e
    stateless = by_key(out["stateless"])
    assert len(stateless) > 100
    assert_same_rows(stateless, by_key(out["full-refresh"]), "full refresh vs stateless")
    # incremental: after a first run without covariates, the new covariate columns were backfilled
    assert_same_rows(stateless, by_key(out["incremental"]), "incremental (covariates added) vs stateless")
    assert all(r["cuped_covariates"] for r in stateless.values() if r["cuped"])


def test_daily_series_uses_the_covariates_every_day(e2e, tmp_path: Path):
    """The series' last day is the run's own result; an earlier day equals a stateless run as of it."""
    _, out, project, db = e2e
    daily = out["daily"]
    day = dt.date(2026, 10, 22)
    # (percentile metrics are not in the daily series: docs/statistics.md, "Percentile metrics")
    overall = {k: r for k, r in by_key(out["incremental"]).items() if k[2] is None and r["metric_type"] != "percentile"}
    last = {k: r for k, r in by_key([{**r} for r in daily if r["day"] == dt.date(2026, 10, 29)]).items()}
    assert last.keys() == overall.keys()
    for key, row in overall.items():
        assert math.isclose(last[key]["abs_delta"] or 0, row["abs_delta"] or 0, rel_tol=REL, abs_tol=1e-12), key
        assert last[key]["cuped_covariates"] == row["cuped_covariates"], key
    # a stateless run as of an earlier day, on a copy (the module's warehouse stays as it is)
    copy_db = tmp_path / "w" / "demo.duckdb"
    copy_db.parent.mkdir()
    shutil.copy(db, copy_db)
    other = copy_project(tmp_path / "p", copy_db)
    shutil.copy(project / "metrics" / "cupac.yml", other / "metrics" / "cupac.yml")
    shutil.copy(project / "experiments" / f"{EXPERIMENT}.yml", other / "experiments" / f"{EXPERIMENT}.yml")
    _run(other, "--no-state", as_of=day)
    then = {k: r for k, r in by_key(_latest(copy_db)).items() if k[2] is None and r["metric_type"] != "percentile"}
    that_day = by_key([r for r in daily if r["day"] == day])
    assert then.keys() == that_day.keys()
    compared = 0
    for key, row in then.items():
        for col in ("abs_delta", "std_error", "p_value", "variance_reduction", "cuped_theta"):
            a, b = row[col], that_day[key][col]
            assert (a is None) == (b is None) and (a is None or math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)), \
                (key, col, a, b)
            compared += a is not None
        assert row["cuped_covariates"] == that_day[key]["cuped_covariates"]
    assert compared > 100


def test_covariate_aggregates_hold_the_sums_over_raw_rows(e2e):
    """wn.covariate_aggregates: Σc, Σy·c, Σx·c and Σc·c' as computed from the raw rows."""
    units, _, _, db = e2e
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""
            select covariate, factor, value from wn.covariate_aggregates
            where run_id = (select run_id from wn.scorecard_latest where experiment = ? limit 1)
              and metric = 'signups' and variant = 'green' and dimension is null""", [EXPERIMENT]).fetchall()
    finally:
        con.close()
    got = {(c, f): v for c, f, v in rows}
    arm = units.analysed() & (units.variant == "green")
    pre = {c: units.pre[c.removesuffix("__pre")][arm] for c in COVARIATES}
    y, x = units.post["signups"][arm], units.pre["signups"][arm]
    want = {}
    for j, c in enumerate(COVARIATES):
        want[(c, "1")] = pre[c].sum()
        want[(c, "y")] = y @ pre[c]
        want[(c, "x")] = x @ pre[c]
        want.update({(c, o): pre[c] @ pre[o] for o in COVARIATES[j:]})
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=REL, abs_tol=1e-9), (key, got[key], value)


# -- PostgreSQL ----------------------------------------------------------------------------------

@pytest.mark.postgres
def test_postgres_publishes_the_same_covariate_results_as_duckdb(tmp_path: Path, pg_database: str):
    from warehouse_native.demo import DemoConfig, generate_demo
    from warehouse_native.project import load_target
    from warehouse_native.runner import run_experiment
    from warehouse_native.warehouse import connect

    project_dir = _with_covariates(copy_project(tmp_path / "p", tmp_path / "w" / "demo.duckdb"))
    project = load_project(project_dir)
    duck = load_target(project_dir)
    pg = load_target(project_dir, target="pg")
    pg = dataclasses.replace(pg, settings={**pg.settings, "host": HOST, "port": PORT, "user": USER,
                                           "password": "", "dbname": pg_database})
    data = generate_demo(DemoConfig(users=2000))
    published = {}
    for name, target in (("duck", duck), ("pg", pg)):
        with connect(target) as adapter:
            for relation, columns in data.items():
                adapter.load_columns(relation, columns)
            run = run_experiment(project, target, adapter, EXPERIMENT, as_of=AS_OF, mode="incremental")
            assert run.status == "success", run.error
            q = adapter.placeholder
            published[name] = (
                by_key(adapter.fetch(f"select * from wn.scorecard where run_id = {q}", [run.run_id])),
                by_key(adapter.fetch(f"select * from wn.covariate_aggregates where run_id = {q}", [run.run_id]),
                       ("metric", "variant", "dimension", "dimension_value", "covariate", "factor")))
    assert_same_rows(published["duck"][0], published["pg"][0], "scorecard with covariates")
    assert_same_rows(published["duck"][1], published["pg"][1], "covariate_aggregates")
    assert any(r["cuped_covariates"] and "page_views__pre" in r["cuped_covariates"]
               for r in published["pg"][0].values())


# -- Spark ----------------------------------------------------------------------------------------

@pytest.mark.spark
def test_spark_publishes_the_same_covariate_results_as_duckdb(spark_warehouse: Path, tmp_path: Path):
    """The aggregates SQL transpiled for Spark, incremental mode (state + the daily series)."""
    from conftest import spark_profiles
    from warehouse_native.demo import DemoConfig, generate_demo
    from warehouse_native.project import load_target
    from warehouse_native.runner import run_experiment
    from warehouse_native.warehouse import connect

    project_dir = _with_covariates(copy_project(tmp_path / "project"))
    for path in [*(project_dir / "metrics").glob("*.yml"), *(project_dir / "models").glob("*.sql")]:
        path.write_text(path.read_text().replace("raw.", "raw_cupac."))
    (project_dir / "profiles.yml").write_text(spark_profiles(spark_warehouse, "wn_cupac", tmp_path / "ref.duckdb"))
    project = load_project(project_dir)
    data = {name.replace("raw.", "raw_cupac."): cols for name, cols in generate_demo(DemoConfig(users=2000)).items()}
    published = {}
    for name, target in (("duck", load_target(project_dir, target="duck")), ("spark", load_target(project_dir))):
        with connect(target) as adapter:
            for relation, columns in data.items():
                adapter.load_columns(relation, columns)
            run = run_experiment(project, target, adapter, EXPERIMENT, as_of=AS_OF, mode="incremental")
            assert run.status == "success", run.error
            q = adapter.placeholder
            published[name] = (
                by_key(adapter.fetch(f"select * from wn_cupac.scorecard where run_id = {q}", [run.run_id])),
                by_key(adapter.fetch(f"select * from wn_cupac.covariate_aggregates where run_id = {q}", [run.run_id]),
                       ("metric", "variant", "dimension", "dimension_value", "covariate", "factor")),
                by_key(adapter.fetch(f"select * from wn_cupac.scorecard_daily where run_id = {q}", [run.run_id]),
                       ("day", "metric", "variant", "dimension", "dimension_value")))
    for i, what in enumerate(("scorecard", "covariate_aggregates", "scorecard_daily")):
        assert assert_same_rows(published["duck"][i], published["spark"][i], f"{what} with covariates") > 1000
