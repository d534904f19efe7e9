"""Acceptance: wn's published scorecard equals an independent recomputation from ``raw.*``.

Everything "expected" here is computed from scratch: the experiment's YAML is read with
``yaml``, per-unit values come from this file's own SQL over ``raw.exposures`` and
``raw.events`` (not wn's models, plan, templates or SQL), and the statistics come from
numpy / scipy / statsmodels.  wn itself is only *run* (``run_experiment``) and its published
tables are read back.  Nothing from ``warehouse_native.sql``, ``.plan``, ``.results`` or
``.stats`` is imported.

Semantics reproduced (see the brief / DESIGN.md):

* exposures of experiment E: ``experiment = E``, ``start 00:00 <= ts < min(end, as_of) + 1 day``;
  per unit the first exposure, the variant (``__multiple__`` when seen in two groups) and
  the country of the earliest exposure row;
* events: ``raw.events`` with ``lower(event_name)`` and ``user_id is not null``; post window
  ``first_exposure_at <= ts < analysis end``; pre window (CUPED) 14 days before first exposure;
* analysed units: those in a configured variant; units without events get 0;
* revenue winsorized at the pooled 0.999 quantile (``quantile_cont`` = numpy "linear");
* Welch t-test (``scipy.stats.ttest_ind(equal_var=False)``) without CUPED, and CUPED as the
  OLS fit ``y ~ treat + (x - mean(x))`` (within-arm pooled θ) with it.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pytest
import statsmodels.api as sm
import yaml
from conftest import AS_OF, copy_project
from scipy import stats as sps

from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect

EXPERIMENT = "button_color_v3"
MULTIPLE = "__multiple__"
CUPED_DAYS = 14
WINSOR_UPPER = 0.999
REL, ABS = 1e-9, 1e-12

# Plain (per-unit mean) metrics checked against Welch, with how they are computed below.
PLAIN_METRICS = ("visited_signup", "signups", "revenue", "dau", "active_days", "event_types_used")
# Ratio-like metrics: point estimate sum(num) / sum(den) per variant.
RATIO_METRICS = {
    "pages_per_session": ("page_views", "sessions"),
    "avg_order_value": ("revenue_raw", "purchases"),
    "api_success_rate": ("api_successes", "api_requests"),
}


# -- the independent computation ------------------------------------------------------------

@dataclass
class Units:
    """Per-unit arrays of one experiment, as computed by this file (all exposed units)."""

    unit_id: np.ndarray
    variant: np.ndarray
    country: np.ndarray
    first_at: np.ndarray
    post: dict[str, np.ndarray]   # metric -> per-unit value in the post window
    pre: dict[str, np.ndarray]    # metric -> per-unit value in the pre window (CUPED)
    control: str
    variants: tuple[str, ...]     # configured, control first
    analysis_end: dt.datetime

    def analysed(self) -> np.ndarray:
        return np.isin(self.variant, self.variants)


def experiment_config(project: Path, name: str = EXPERIMENT) -> dict:
    return yaml.safe_load((project / "experiments" / f"{name}.yml").read_text())["experiment"]


_UNITS_SQL = """
with x as (
    select cast(user_id as varchar) as unit_id, cast(group_name as varchar) as grp, ts, country
    from raw.exposures
    where experiment = $experiment and ts >= $start and ts < $end and user_id is not null
)
select unit_id,
       case when count(distinct grp) = 1 then any_value(grp) else '__multiple__' end as variant,
       min(ts) as first_at,
       arg_min(country, ts) as country
from x
group by unit_id
"""

# Per-unit aggregates in one window (``{lo}``/``{hi}`` bound the event ts, per unit).
_WINDOW_SQL = """
with units as ({units}),
ev as (
    select cast(user_id as varchar) as unit_id, ts, lower(event_name) as name, value
    from raw.events
    where user_id is not null
),
hits as (
    select units.unit_id, ev.ts, ev.name, ev.value
    from units join ev on ev.unit_id = units.unit_id
    where ev.ts >= {lo} and ev.ts < {hi}
)
select units.unit_id,
    count(hits.name) filter (where hits.name = 'visited_signup') as visited_signup_rows,
    count(hits.name) filter (where hits.name = 'signup_success') as signups,
    coalesce(sum(hits.value) filter (where hits.name = 'purchase'), 0) as revenue_raw,
    count(hits.name) filter (where hits.name = 'purchase') as purchases,
    count(distinct cast(hits.ts as date)) filter (where hits.name = 'session_start') as active_days,
    count(distinct hits.name) as event_types_used,
    count(hits.name) filter (where hits.name = 'page_view') as page_views,
    count(hits.name) filter (where hits.name = 'session_start') as sessions,
    count(hits.name) filter (where hits.name = 'api_request') as api_requests,
    count(hits.name) filter (where hits.name = 'api_success') as api_successes
from units left join hits on hits.unit_id = units.unit_id
group by units.unit_id
order by units.unit_id
"""


def independent_units(db: Path, cfg: dict, as_of: dt.date) -> Units:
    start = dt.datetime.combine(cfg["start"], dt.time())
    last_day = min(cfg["end"], as_of) if cfg.get("end") else as_of
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time())
    params = {"experiment": cfg["exposures"]["experiment_id"], "start": start, "end": end}
    con = duckdb.connect(str(db), read_only=True)
    try:
        base = con.execute(_UNITS_SQL + " order by unit_id", params).fetchall()
        post = con.execute(_WINDOW_SQL.format(units=_UNITS_SQL, lo="units.first_at", hi="$end"),
                           params).fetchnumpy()
        pre = con.execute(_WINDOW_SQL.format(
            units=_UNITS_SQL, lo=f"units.first_at - interval {CUPED_DAYS} day", hi="units.first_at"),
            params).fetchnumpy()
    finally:
        con.close()
    unit_id = np.array([r[0] for r in base], dtype=object)
    assert list(post["unit_id"]) == list(unit_id) == list(pre["unit_id"])
    first_at = [r[2] for r in base]
    # daily participation: active days / days from the exposure date to the analysis-end date
    days_since = np.array([max((end.date() - t.date()).days, 1) for t in first_at], dtype=float)

    def derive(raw: dict[str, np.ndarray], days: np.ndarray) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v, dtype=float) for k, v in raw.items() if k != "unit_id"}
        out["visited_signup"] = (out["visited_signup_rows"] > 0).astype(float)
        out["dau"] = out["active_days"] / days
        return out

    variants = [v["name"] for v in cfg["variants"]]
    control = next(v["name"] for v in cfg["variants"] if v.get("control"))
    variants = (control, *[v for v in variants if v != control])
    units = Units(
        unit_id=unit_id,
        variant=np.array([r[1] for r in base], dtype=object),
        country=np.array([r[3] for r in base], dtype=object),
        first_at=np.array(first_at, dtype=object),
        post=derive(post, days_since),
        # pre window [first - 14 days, first): it touches 14 dates, 15 when first is not at midnight
        pre=derive(pre, np.array([CUPED_DAYS + (0 if t == dt.datetime.combine(t.date(), dt.time()) else 1)
                                  for t in first_at], dtype=float)),
        control=control, variants=variants, analysis_end=end)
    # Winsorization: cap at the pooled quantile over all analysed units (quantile_cont).
    mask = units.analysed()
    for window in (units.post, units.pre):
        cap = np.quantile(window["revenue_raw"][mask], WINSOR_UPPER)
        window["revenue"] = np.minimum(window["revenue_raw"], cap)
    return units


def welch(t: np.ndarray, c: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Means, delta, relative delta, Welch SE/df/CI and the scipy Welch p-value."""
    vt, vc = t.var(ddof=1) / len(t), c.var(ddof=1) / len(c)
    se = math.sqrt(vt + vc)
    dof = (vt + vc) ** 2 / (vt ** 2 / (len(t) - 1) + vc ** 2 / (len(c) - 1))
    delta = t.mean() - c.mean()
    q = sps.t.ppf(0.5 + confidence / 2, dof)
    return {
        "control_mean": c.mean(), "variant_mean": t.mean(), "abs_delta": delta,
        "rel_delta": delta / abs(c.mean()), "std_error": se, "dof": dof,
        "abs_ci_lower": delta - q * se, "abs_ci_upper": delta + q * se,
        "p_value": float(sps.ttest_ind(t, c, equal_var=False).pvalue),
    }


def cuped_ols(yt, xt, yc, xc) -> dict[str, float]:
    """CUPED delta as the treat coefficient of OLS ``y ~ treat + (x - mean(x))``."""
    y = np.concatenate([yc, yt])
    x = np.concatenate([xc, xt])
    treat = np.concatenate([np.zeros(len(yc)), np.ones(len(yt))])
    fit = sm.OLS(y, sm.add_constant(np.column_stack([treat, x - x.mean()]))).fit()
    theta = float(fit.params[2])
    adj_t, adj_c = yt - theta * xt, yc - theta * xc
    raw_var = yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc)
    adj_var = adj_t.var(ddof=1) / len(adj_t) + adj_c.var(ddof=1) / len(adj_c)
    return {
        "abs_delta": float(fit.params[1]), "cuped_theta": theta,
        # θ treated as known: Welch on the adjusted values
        "std_error": math.sqrt(adj_var),
        "p_value": float(sps.ttest_ind(adj_t, adj_c, equal_var=False).pvalue),
        "variance_reduction": 1.0 - adj_var / raw_var,
    }


# -- running wn ------------------------------------------------------------------------------

def set_cuped(project: Path, on: bool) -> None:
    path = project / "experiments" / f"{EXPERIMENT}.yml"
    before = experiment_config(project)
    text = path.read_text()
    old, new = f"cuped: {str(not on).lower()}", f"cuped: {str(on).lower()}"
    assert text.count(old) == 1, f"expected exactly one '{old}' in {path}"
    path.write_text(text.replace(old, new))
    after = experiment_config(project)
    assert after["analysis"]["cuped"] is on
    after["analysis"]["cuped"] = before["analysis"]["cuped"]
    assert after == before, "only analysis.cuped may change"


def run_wn(project: Path, as_of: dt.date = AS_OF) -> tuple[str, list[dict], list[dict]]:
    """Run the experiment; return (run_id, scorecard rows, health rows) of that run."""
    target = load_target(project)
    with connect(target) as adapter:
        result = run_experiment(load_project(project), target, adapter, EXPERIMENT, as_of=as_of)
        assert result.status == "success", result.error
        scorecard = adapter.fetch("select * from wn.scorecard where run_id = ?", [result.run_id])
        health = adapter.fetch("select * from wn.health_checks where run_id = ?", [result.run_id])
    return result.run_id, scorecard, health


def _project(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path, name: str) -> tuple[Path, Path]:
    """Same as conftest's ``demo_project`` (a fresh copy of the seeded DB + project), but
    module-scoped so one wn run serves every assertion of the module."""
    root = tmp_path_factory.mktemp(name)
    db = root / "warehouse" / "demo.duckdb"
    db.parent.mkdir(parents=True)
    shutil.copy(seeded_db, db)
    return copy_project(root / "project", db), db


@dataclass
class Case:
    project: Path
    db: Path
    units: Units
    scorecard: list[dict]
    health: list[dict]

    def row(self, metric: str, variant: str, dimension: str | None = None,
            value: str | None = None) -> dict:
        rows = [r for r in self.scorecard if r["metric"] == metric and r["variant"] == variant
                and r["dimension"] == dimension and r["dimension_value"] == value]
        assert len(rows) == 1, f"{len(rows)} scorecard rows for {metric}/{variant}/{dimension}={value}"
        return rows[0]


@pytest.fixture(scope="module")
def no_cuped(tmp_path_factory, seeded_db) -> Case:
    project, db = _project(tmp_path_factory, seeded_db, "e2e_no_cuped")
    set_cuped(project, False)
    _, scorecard, health = run_wn(project)
    return Case(project, db, independent_units(db, experiment_config(project), AS_OF), scorecard, health)


@pytest.fixture(scope="module")
def with_cuped(tmp_path_factory, seeded_db) -> Case:
    project, db = _project(tmp_path_factory, seeded_db, "e2e_cuped")
    assert experiment_config(project)["analysis"]["cuped"] is True
    _, scorecard, health = run_wn(project)
    return Case(project, db, independent_units(db, experiment_config(project), AS_OF), scorecard, health)


# -- comparisons -----------------------------------------------------------------------------

def close(actual, expected, rel: float = REL, abs_: float = ABS) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)


def check_plain(case: Case, metric: str, variant: str, sel: np.ndarray,
                dimension: str | None = None, value: str | None = None) -> list[str]:
    u = case.units
    y = u.post[metric]
    t, c = y[sel & (u.variant == variant)], y[sel & (u.variant == u.control)]
    want = welch(t, c)
    got = case.row(metric, variant, dimension, value)
    problems = []
    if got["control_units"] != len(c) or got["variant_units"] != len(t):
        problems.append(f"units: wn {got['control_units']}/{got['variant_units']}, expected {len(c)}/{len(t)}")
    for key, exp_value in want.items():
        if not close(got[key], exp_value):
            problems.append(f"{key}: wn {got[key]!r}, expected {exp_value!r}")
    if got["cuped"]:
        problems.append("cuped is true although the experiment has analysis.cuped: false")
    return [f"{metric}/{variant}/{dimension}={value}: {p}" for p in problems]


def treatments(case: Case) -> tuple[str, ...]:
    return case.units.variants[1:]


# -- tests: CUPED off, Welch -------------------------------------------------------------------

@pytest.mark.parametrize("metric", PLAIN_METRICS)
def test_overall_plain_metrics_match_independent_welch(no_cuped: Case, metric: str):
    sel = no_cuped.units.analysed()
    problems = [p for v in treatments(no_cuped) for p in check_plain(no_cuped, metric, v, sel)]
    assert not problems, "\n".join(problems)


def country_slices(case: Case) -> np.ndarray:
    """Each unit's country slice as the experiment configures it: with ``top`` / ``min_units``
    the largest countries by analysed units (ties by name), every other one as '(other)'."""
    u = case.units
    spec = next(d for d in experiment_config(case.project)["dimensions"]
                if (d["name"] if isinstance(d, dict) else d) == "country")
    country = np.array(["(null)" if c is None else c for c in u.country], dtype=object)
    if not isinstance(spec, dict):
        return country
    names, counts = np.unique(country[u.analysed()], return_counts=True)
    ranked = [n for n, k in sorted(zip(names, counts), key=lambda p: (-p[1], p[0]))
              if k >= spec.get("min_units", 1)][:spec.get("top", len(names))]
    return np.where(np.isin(country, ranked), country, "(other)")


def test_the_demo_lumps_small_countries_into_other(no_cuped: Case):
    slices = country_slices(no_cuped)
    kept = set(slices[no_cuped.units.analysed()])
    assert "(other)" in kept and len(kept) == 5   # top: 4, and the rest
    sliced = {r["dimension_value"] for r in no_cuped.scorecard if r["dimension"] == "country"}
    assert sliced == kept
    srm = {h["dimension_value"] for h in no_cuped.health if h["check_name"] == "srm" and h["dimension"] == "country"}
    assert srm == kept
    # a percentile metric (its own statement) lumps the same values, with the same units
    units = {(r["dimension_value"], r["variant"]): (r["control_units"], r["variant_units"])
             for r in no_cuped.scorecard if r["dimension"] == "country" and r["metric"] == "signups"}
    quantile = {(r["dimension_value"], r["variant"]): (r["control_units"], r["variant_units"])
                for r in no_cuped.scorecard if r["dimension"] == "country" and r["metric"] == "median_order_value"}
    assert quantile == units and len(units) == 5 * 3


def test_slices_of_a_dimension_are_one_correction_family(no_cuped: Case):
    """Holm over every (country slice x treatment x primary metric), as statsmodels does it."""
    from statsmodels.stats.multitest import multipletests

    rows = [r for r in no_cuped.scorecard if r["dimension"] == "country" and r["role"] == "primary"]
    assert len(rows) == 5 * 3 * 2
    expected = multipletests([r["p_value"] for r in rows], method="holm")[1]
    for r, want in zip(rows, expected):
        assert r["correction"] == "holm" and close(r["adjusted_p_value"], want, rel=1e-12)
    secondary = [r for r in no_cuped.scorecard if r["dimension"] == "country" and r["role"] == "secondary"]
    assert secondary and all(r["adjusted_p_value"] == r["p_value"] for r in secondary)


@pytest.mark.parametrize("metric", PLAIN_METRICS)
def test_country_slices_match_independent_welch(no_cuped: Case, metric: str):
    u = no_cuped.units
    slices = country_slices(no_cuped)
    countries = sorted(set(slices[u.analysed()]))
    assert len(countries) >= 2
    sliced = {r["dimension_value"] for r in no_cuped.scorecard if r["dimension"] == "country"}
    assert sliced == set(countries)
    problems = []
    for country in countries:
        sel = u.analysed() & (slices == country)
        for v in treatments(no_cuped):
            problems += check_plain(no_cuped, metric, v, sel, "country", country)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dimension_value", [None, "US", "(other)"])
@pytest.mark.parametrize("metric", sorted(RATIO_METRICS))
def test_ratio_point_estimates(no_cuped: Case, metric: str, dimension_value: str | None):
    u = no_cuped.units
    num, den = (u.post[k] for k in RATIO_METRICS[metric])
    sel = u.analysed() if dimension_value is None else u.analysed() & (country_slices(no_cuped) == dimension_value)
    dimension = None if dimension_value is None else "country"
    ctrl = sel & (u.variant == u.control)
    problems = []
    for v in treatments(no_cuped):
        trt = sel & (u.variant == v)
        got = no_cuped.row(metric, v, dimension, dimension_value)
        c_ratio, t_ratio = num[ctrl].sum() / den[ctrl].sum(), num[trt].sum() / den[trt].sum()
        for key, want in (("control_mean", c_ratio), ("variant_mean", t_ratio),
                          ("abs_delta", t_ratio - c_ratio),
                          ("rel_delta", (t_ratio - c_ratio) / abs(c_ratio)),
                          ("control_units", ctrl.sum()), ("variant_units", trt.sum())):
            if not close(got[key], want):
                problems.append(f"{v} {key}: wn {got[key]!r}, expected {want!r}")
    assert not problems, "\n".join(problems)


def test_ratio_delta_method_standard_error(no_cuped: Case):
    """Delta-method SE of pages_per_session (a textbook formula, computed per unit)."""
    u = no_cuped.units
    y, d = u.post["page_views"], u.post["sessions"]

    def arm_var(mask):
        yy, dd = y[mask], d[mask]
        r = yy.sum() / dd.sum()
        lin = (yy - r * dd) / dd.mean()    # linearised ratio
        return lin.var(ddof=1) / len(lin)

    ctrl = u.analysed() & (u.variant == u.control)
    for v in treatments(no_cuped):
        se = math.sqrt(arm_var(ctrl) + arm_var(u.analysed() & (u.variant == v)))
        got = no_cuped.row("pages_per_session", v)
        assert close(got["std_error"], se), (v, got["std_error"], se)


def test_units_and_health_checks_match_own_exposure_counts(no_cuped: Case):
    u = no_cuped.units
    own = {v: int((u.variant == v).sum()) for v in u.variants}
    multiple = int((u.variant == MULTIPLE).sum())
    unknown = int((~u.analysed() & (u.variant != MULTIPLE)).sum())
    assert multiple > 0
    for r in no_cuped.scorecard:
        if r["dimension"] is None:
            assert r["control_units"] == own[u.control], r["metric"]
            assert r["variant_units"] == own[r["variant"]], (r["metric"], r["variant"])
    health = {(h["check_name"], h["dimension_value"]): h for h in no_cuped.health}
    assert health[("multi_exposure", None)]["statistic"] == multiple
    assert health[("unknown_variant", None)]["statistic"] == unknown
    srm = health[("srm", None)]
    weights = [v["weight"] for v in experiment_config(no_cuped.project)["variants"]]
    names = [v["name"] for v in experiment_config(no_cuped.project)["variants"]]
    counts = np.array([own[n] for n in names], dtype=float)
    chi = sps.chisquare(counts, counts.sum() * np.array(weights) / sum(weights))
    assert close(srm["statistic"], chi.statistic) and close(srm["p_value"], chi.pvalue)
    check_exposure_table(no_cuped)


def check_exposure_table(case: Case) -> None:
    """wn.exposures holds exactly our units, variants, first exposures and countries."""
    u = case.units
    con = duckdb.connect(str(case.db), read_only=True)
    try:
        rows = con.execute("select unit_id, variant, first_exposure_at, country from wn.exposures "
                           "where experiment = ? order by unit_id", [EXPERIMENT]).fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == list(u.unit_id)
    assert [r[1] for r in rows] == list(u.variant)
    assert [r[2] for r in rows] == list(u.first_at)
    assert [r[3] for r in rows] == list(u.country)


# -- tests: CUPED on, against OLS ---------------------------------------------------------------

@pytest.mark.parametrize("metric", ["active_days", "visited_signup", "dau", "signups"])
def test_cuped_delta_equals_ols_treat_coefficient(with_cuped: Case, metric: str):
    u = with_cuped.units
    y, x = u.post[metric], u.pre[metric]
    ctrl = u.analysed() & (u.variant == u.control)
    problems = []
    for v in treatments(with_cuped):
        trt = u.analysed() & (u.variant == v)
        want = cuped_ols(y[trt], x[trt], y[ctrl], x[ctrl])
        got = with_cuped.row(metric, v)
        if not got["cuped"]:
            problems.append(f"{v}: cuped is false ({got['reason']})")
            continue
        # raw means stay raw with CUPED on
        for key, exp_value in (("control_mean", y[ctrl].mean()), ("variant_mean", y[trt].mean())):
            if not close(got[key], exp_value):
                problems.append(f"{v} {key}: wn {got[key]!r}, expected {exp_value!r}")
        for key, exp_value in want.items():
            if key == "cuped_theta" and metric == "dau":
                continue   # the pre-period covariate of dau is scaled by wn's choice (per 14 days)
            if not close(got[key], exp_value, rel=1e-8 if key == "p_value" else REL):
                problems.append(f"{v} {key}: wn {got[key]!r}, expected {exp_value!r}")
    assert not problems, "\n".join(problems)


def test_cuped_variance_reduction_is_real_on_an_engagement_metric(with_cuped: Case):
    """The demo plants pre/post correlation: CUPED must cut the variance of active_days."""
    got = with_cuped.row("active_days", "red")
    assert got["cuped"] and got["variance_reduction"] > 0.2


# -- tests: a window cut by --as-of --------------------------------------------------------------

def test_as_of_inside_the_experiment_truncates_every_window(tmp_path_factory, seeded_db):
    as_of = dt.date(2026, 10, 21)
    project, db = _project(tmp_path_factory, seeded_db, "e2e_as_of")
    set_cuped(project, False)
    _, scorecard, health = run_wn(project, as_of=as_of)
    case = Case(project, db, independent_units(db, experiment_config(project), as_of), scorecard, health)
    assert case.units.analysis_end == dt.datetime(2026, 10, 22)
    sel = case.units.analysed()
    problems = [p for m in PLAIN_METRICS for v in treatments(case) for p in check_plain(case, m, v, sel)]
    assert not problems, "\n".join(problems)


# -- tests: planted edge rows (window boundaries, case, NULLs, unknown variant, outlier) ---------

def _plant_edge_rows(db: Path) -> dict[str, str]:
    """Add rows at every boundary the semantics define; return the user ids used."""
    con = duckdb.connect(str(db))
    try:
        blue, red = (con.execute(
            "select user_id from raw.exposures where experiment = ? and group_name = ? "
            "and user_id not in (select user_id from raw.exposures where experiment = ? "
            "                     and group_name <> ?) order by user_id limit 2",
            [EXPERIMENT, g, EXPERIMENT, g]).fetchall() for g in ("blue", "red"))
        users = {"blue_a": blue[0][0], "blue_b": blue[1][0], "red_a": red[0][0], "red_b": red[1][0]}
        first = {k: con.execute("select min(ts) from raw.exposures where experiment = ? and user_id = ?",
                                [EXPERIMENT, u]).fetchone()[0] for k, u in users.items()}
        T = dt.datetime
        exposures = [
            # other variant, but after the analysis end (2026-10-30 00:00): not multi-exposed
            (users["blue_a"], "red", T(2026, 10, 30, 0, 0, 0)),
            # other variant before the start: ignored, not multi-exposed
            (users["red_a"], "green", T(2026, 10, 14, 23, 59, 59)),
            # same variant, earlier (still after start), other country: new first exposure + country
            (users["red_b"], "red", T(2026, 10, 15, 0, 0, 0)),
            # new units: first exposure on the last analysed day / only after the end / unknown group
            ("zz_last_day", "blue", T(2026, 10, 29, 23, 59, 59)),
            ("zz_after_end", "blue", T(2026, 10, 30, 0, 0, 0)),
            ("zz_unknown", "purple", T(2026, 10, 20, 12, 0, 0)),
            ("zz_red_late", "red", T(2026, 10, 29, 8, 0, 0)),
            (None, "blue", T(2026, 10, 20, 12, 0, 0)),
        ]
        for user, group, ts in exposures:
            country = "ZZ" if user == users["red_b"] else "US"
            con.execute("insert into raw.exposures (user_id, stable_id, experiment, group_name, ts, country, device) "
                        "values (?, 'dev', ?, ?, ?, ?, 'web')", [user, EXPERIMENT, group, ts, country])
        end = T(2026, 10, 30)
        fa = first["blue_b"]
        events = [
            ("zz_last_day", T(2026, 10, 29, 23, 59, 59, 999999), "SESSION_START", None),
            ("zz_last_day", T(2026, 10, 29, 23, 59, 59, 999999), "Purchase", 50_000.0),  # outlier
            ("zz_last_day", end, "session_start", None),                 # at the end: excluded
            ("zz_after_end", T(2026, 10, 29, 12, 0, 0), "session_start", None),
            ("zz_red_late", T(2026, 10, 29, 9, 0, 0), "Visited_Signup", None),
            ("zz_red_late", T(2026, 10, 29, 9, 1, 0), "purchase", 12.5),
            (users["blue_b"], fa, "visited_signup", None),               # at first exposure: post
            (users["blue_b"], fa - dt.timedelta(microseconds=1), "signup_success", None),  # pre
            (users["blue_b"], fa - dt.timedelta(days=CUPED_DAYS), "session_start", None),   # pre, edge
            (users["blue_b"], fa - dt.timedelta(days=CUPED_DAYS, microseconds=1), "page_view", None),
            (users["blue_a"], T(2026, 10, 29, 22, 0, 0), "purchase", 80_000.0),       # outlier
            (None, T(2026, 10, 20, 12, 0, 0), "session_start", None),
        ]
        for user, ts, name, value in events:
            con.execute("insert into raw.events (user_id, ts, event_name, value, country) "
                        "values (?, ?, ?, ?, 'US')", [user, ts, name, value])
    finally:
        con.close()
    return users


@pytest.mark.parametrize("cuped", [False, True])
def test_edge_rows_follow_the_documented_semantics(tmp_path_factory, seeded_db, cuped: bool):
    project, db = _project(tmp_path_factory, seeded_db, f"e2e_edges_{cuped}")
    users = _plant_edge_rows(db)
    if not cuped:
        set_cuped(project, False)
    # every country its own slice, so that the planted one-unit slice 'ZZ' is reported
    path = project / "experiments" / f"{EXPERIMENT}.yml"
    text = path.read_text()
    assert text.count("dimensions: [{name: country, top: 4, min_units: 500}]") == 1
    path.write_text(text.replace("dimensions: [{name: country, top: 4, min_units: 500}]", "dimensions: [country]"))
    _, scorecard, health = run_wn(project)
    case = Case(project, db, independent_units(db, experiment_config(project), AS_OF), scorecard, health)
    u = case.units
    by_id = dict(zip(u.unit_id, range(len(u.unit_id))))
    # the planted rows do what the semantics say (guards the independent code itself)
    assert u.variant[by_id[users["blue_a"]]] == "blue"
    assert u.variant[by_id[users["red_a"]]] == "red"
    assert u.country[by_id[users["red_b"]]] == "ZZ"
    assert "zz_after_end" not in by_id and u.variant[by_id["zz_unknown"]] == "purple"
    last = by_id["zz_last_day"]
    assert u.post["sessions"][last] == 1 and u.post["dau"][last] == 1.0
    assert u.post["revenue_raw"][last] == 50_000.0 and u.post["revenue"][last] < 50_000.0
    assert u.post["visited_signup"][by_id[users["blue_b"]]] >= 1
    health_by = {(h["check_name"], h["dimension_value"]): h for h in health}
    assert health_by[("unknown_variant", None)]["statistic"] == 1
    check_exposure_table(case)
    zz = [r for r in scorecard if r["dimension_value"] == "ZZ" and r["metric"] == "signups"
          and r["variant"] == "red"]
    assert len(zz) == 1 and zz[0]["variant_units"] == 1 and zz[0]["control_units"] == 0

    sel = u.analysed()
    ctrl = sel & (u.variant == u.control)
    problems = []
    for v in treatments(case):
        trt = sel & (u.variant == v)
        for metric in PLAIN_METRICS:
            if not cuped:
                problems += check_plain(case, metric, v, sel)
                continue
            y, x = u.post[metric], u.pre[metric]
            got = case.row(metric, v)
            want = cuped_ols(y[trt], x[trt], y[ctrl], x[ctrl])
            if not close(got["abs_delta"], want["abs_delta"]):
                problems.append(f"{metric}/{v} CUPED abs_delta: wn {got['abs_delta']!r}, "
                                f"expected {want['abs_delta']!r}")
        for metric, (n, d) in RATIO_METRICS.items():
            got = case.row(metric, v)
            want = u.post[n][ctrl].sum() / u.post[d][ctrl].sum()
            if not close(got["control_mean"], want):
                problems.append(f"{metric} control_mean: wn {got['control_mean']!r}, expected {want!r}")
    assert not problems, "\n".join(problems)
