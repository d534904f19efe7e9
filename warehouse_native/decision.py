"""The decision of an experiment: ship a variant, do not ship, keep running, or investigate.

A pure function of one run's overall scorecard rows, its health checks and the experiment's
``decision:`` rule (``project.config_models.DecisionRule``); the runner publishes the result as
one ``wn.decisions`` row per run.  The rule, in order (docs/statistics.md, "Decision"):

1. **investigate** when an overall health check fails (SRM, and any check that reports
   ``fail``): no number of the run is to be trusted until the cause is found;
2. **keep running** while fewer than ``min_days`` days of data were analysed (and the
   experiment has not ended): early results swing;
3. **ship <variant>** when a treatment is significantly better (adjusted p-value, in the
   metric's direction) on every primary metric (``ship_when: all_primary``; or on at least
   one with ``any_primary``), significantly worse on none, and no guardrail of it fails; of
   several such variants the one with the largest relative lift on the first primary metric;
4. **do not ship** when every treatment has a failing guardrail or a significantly worse
   primary metric;
5. otherwise nothing is significant yet: with an ``mde`` target, **keep running** while the
   primary metrics' current 80%-power MDE is above it (the days needed are estimated from
   the MDE shrinking as 1/sqrt(units), units arriving at the rate seen so far), and **do not
   ship** once it is reached (an effect of that size would have shown) or the experiment
   ended; without a target, keep running until the experiment's end, then do not ship.

A **holdout** (``kind: holdout``: a small control kept away from the features for months) is
never shipped or stopped: after the same two first steps, every metric of every treatment is
read for regression, as guardrails are, and the decision is **regression** (naming the
metrics) or **no regression**; the scorecard's ``guardrail_status`` of its rows already says
which (``results.py``, ``stats/holdout.py``: always-valid intervals while it runs, corrected
fixed-horizon tests at its end).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

SHIP, DO_NOT_SHIP, KEEP_RUNNING, INVESTIGATE = "ship", "do not ship", "keep running", "investigate"
# a holdout's readings
REGRESSION, NO_REGRESSION = "regression", "no regression"
KINDS = ("ab", "holdout")


@dataclass(frozen=True)
class Rule:
    """The decision settings of one experiment (see ``DecisionRule`` for the YAML)."""

    min_days: int = 7
    mde: float | None = None            # relative lift the primary metrics must detect (80% power)
    ship_when: str = "all_primary"      # all_primary | any_primary
    kind: str = "ab"                    # ab | holdout
    max_regression: float | None = None  # holdout: margin of metrics without guardrail.max_regression

    def __post_init__(self) -> None:
        if self.min_days < 0:
            raise ValueError(f"decision.min_days must be >= 0, not {self.min_days}")
        if self.mde is not None and not self.mde > 0:
            raise ValueError(f"decision.mde is a relative lift > 0 (0.02 = 2%), not {self.mde}")
        if self.ship_when not in ("all_primary", "any_primary"):
            raise ValueError(f"decision.ship_when is all_primary or any_primary, not {self.ship_when!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind is ab or holdout, not {self.kind!r}")
        if self.max_regression is not None and not 0 <= self.max_regression < 1:
            raise ValueError(f"decision.max_regression is a relative margin in [0, 1), not {self.max_regression}")

    def settings(self) -> dict[str, Any]:
        """The settings that apply to this kind (the ``rule`` JSON of wn.decisions)."""
        if self.kind == "holdout":
            return {"kind": "holdout", "min_days": self.min_days, "max_regression": self.max_regression or 0.0}
        return {"min_days": self.min_days, "mde": self.mde, "ship_when": self.ship_when}


@dataclass(frozen=True)
class VariantReading:
    """What one treatment's overall results say."""

    variant: str
    better: tuple[str, ...] = ()         # primary metrics significantly better
    worse: tuple[str, ...] = ()          # primary metrics significantly worse
    guardrails_failed: tuple[str, ...] = ()
    guardrails_warned: tuple[str, ...] = ()   # guardrails that may have regressed (not decisive)
    primaries: int = 0
    lift: float | None = None            # relative lift of the first primary metric, in its direction
    mde: float | None = None             # the largest current 80%-power relative MDE of its primaries

    def shippable(self, rule: Rule) -> bool:
        if self.worse or self.guardrails_failed or not self.better:
            return False
        return rule.ship_when == "any_primary" or len(self.better) == self.primaries

    @property
    def harmful(self) -> bool:
        return bool(self.worse or self.guardrails_failed)


@dataclass(frozen=True)
class HoldoutReading:
    """What one treatment's overall rows say against the holdout."""

    variant: str
    regressed: tuple[str, ...] = ()      # metrics worse than the holdout beyond their margin
    warned: tuple[str, ...] = ()         # point estimate worse beyond the margin, not established
    metrics: int = 0
    mde: float | None = None             # the largest current 80%-power relative MDE of its metrics


@dataclass(frozen=True)
class Decision:
    decision: str                        # ship | do not ship | keep running | investigate | (holdout) regression | no regression
    variant: str | None                  # the variant to ship
    reason: str
    days_run: int
    more_days: int | None = None         # keep running: estimated days still needed (None: unknown)
    mde_target: float | None = None
    mde_now: float | None = None
    readings: tuple[VariantReading | HoldoutReading, ...] = field(default=())
    kind: str = "ab"
    ended: bool = False
    subject: str = ""                    # holdout regression: the metrics (and variants) named

    @property
    def headline(self) -> str:
        if self.kind == "holdout":
            return self._holdout_headline()
        if self.decision == SHIP:
            return f"ship {self.variant}"
        if self.decision == KEEP_RUNNING and self.more_days:
            # (waiting for min_days, the run records no mde_now: then no MDE in the headline)
            target = f" for MDE {self.mde_target:.1%}" if self.mde_target and self.mde_now is not None else ""
            return f"keep running (needs {self.more_days} more day{'s' * (self.more_days != 1)}{target})"
        return self.decision

    def _holdout_headline(self) -> str:
        """``holdout: no regression``, ``holdout ended: regression on revenue``, ..."""
        head = "holdout ended" if self.ended else "holdout"
        if self.decision == REGRESSION:
            return f"{head}: regression on {self.subject}"
        if self.decision == KEEP_RUNNING and self.more_days:
            return f"{head}: keep running (needs {self.more_days} more day{'s' * (self.more_days != 1)})"
        return f"{head}: {self.decision}"


def _signed(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if row.get("direction") != "decrease" else -value


def read_variant(variant: str, rows: Sequence[Mapping[str, Any]], primaries: Sequence[str]) -> VariantReading:
    """The overall rows of one treatment -> what they say (significance is the adjusted one)."""
    mine = [r for r in rows if r["variant"] == variant and r.get("dimension") is None
            and r.get("metric_type") != "funnel_step"]   # funnel steps are diagnostics
    better, worse, mdes = [], [], []
    lift = None
    for name in primaries:
        row = next((r for r in mine if r["metric"] == name), None)
        if row is None:
            continue
        delta = _signed(row, "abs_delta")
        if row.get("significant") and delta is not None and delta != 0:
            (better if delta > 0 else worse).append(name)
        if name == primaries[0]:
            lift = _signed(row, "rel_delta")
        if row.get("mde_80") is not None and math.isfinite(row["mde_80"]):
            mdes.append(float(row["mde_80"]))
    def guardrails(status: str) -> tuple[str, ...]:
        return tuple(sorted(r["metric"] for r in mine if r.get("role") == "guardrail"
                            and r.get("guardrail_status") == status))

    return VariantReading(variant, tuple(better), tuple(worse), guardrails("fail"), guardrails("warn"),
                          len(primaries), lift, max(mdes) if mdes else None)


def more_days_for(mde_now: float, target: float, days_run: int) -> int:
    """Days still needed for the MDE to fall from ``mde_now`` to ``target``: the MDE shrinks as
    1/sqrt(units) and units keep arriving at the rate of the days run so far."""
    return max(1, math.ceil(days_run * ((mde_now / target) ** 2 - 1)))


def _failing_health(health: Sequence[Mapping[str, Any]]) -> str | None:
    """The overall health checks that fail, in words (None: none fails)."""
    failing = [h for h in health if h.get("status") == "fail" and h.get("dimension") is None]
    if not failing:
        return None
    what = "; ".join(f"{h['check_name']}: {h.get('detail') or 'fail'}" for h in failing)
    return f"health check failed ({what}); fix the cause before reading any result"


def _not_yet(rule: Rule, health: Sequence[Mapping[str, Any]], days_run: int, ended: bool,
             base: dict[str, Any], what: str) -> Decision | None:
    """Steps 1 and 2 of every rule: investigate a failing health check, keep running before
    ``min_days`` (unless the experiment ended); None when neither applies."""
    failing = _failing_health(health)
    if failing:
        return Decision(INVESTIGATE, None, failing, **base)
    if days_run < rule.min_days and not ended:
        return Decision(KEEP_RUNNING, None, f"{days_run} of the {rule.min_days} days the rule waits for "
                        f"before {what} (decision.min_days)", more_days=rule.min_days - days_run, **base)
    return None


def decide(rule: Rule, rows: Sequence[Mapping[str, Any]], health: Sequence[Mapping[str, Any]], *,
           treatments: Sequence[str], primaries: Sequence[str], days_run: int, ended: bool) -> Decision:
    """Apply ``rule`` to a run's scorecard rows (dicts; the overall slice is used) and health
    checks (dicts).  ``days_run``: days of data analysed; ``ended``: the analysis reached the
    experiment's last day."""
    if rule.kind == "holdout":
        return decide_holdout(rule, rows, health, treatments=treatments, days_run=days_run, ended=ended)
    base = {"days_run": days_run, "mde_target": rule.mde}
    readings = tuple(read_variant(v, rows, primaries) for v in treatments)
    base["readings"] = readings
    early = _not_yet(rule, health, days_run, ended, base, "deciding")
    if early:
        return early
    winners = [r for r in readings if r.shippable(rule)]
    if winners:
        best = max(winners, key=lambda r: r.lift if r.lift is not None else -math.inf)
        others = [r.variant for r in winners if r is not best]
        warned = f" (guardrails warning: {', '.join(best.guardrails_warned)})" if best.guardrails_warned else ""
        return Decision(SHIP, best.variant, f"{best.variant}: significantly better on {', '.join(best.better)}, "
                        f"worse on no primary metric, no guardrail fails{warned}"
                        + (f" (also shippable: {', '.join(others)}; {best.variant} has the largest lift on "
                           f"{primaries[0]})" if others else ""), **base)
    if readings and all(r.harmful for r in readings):
        why = "; ".join(f"{r.variant}: " + ", ".join(
            [f"guardrail {g} fails" for g in r.guardrails_failed] + [f"{m} significantly worse" for m in r.worse])
            for r in readings)
        return Decision(DO_NOT_SHIP, None, why, **base)
    open_ = [r for r in readings if not r.harmful]
    mde_now = max((r.mde for r in open_ if r.mde is not None), default=None)
    if rule.mde is None:
        if ended:
            return Decision(DO_NOT_SHIP, None, "the experiment ended with no variant significantly better on "
                            "its primary metrics", mde_now=mde_now, **base)
        return Decision(KEEP_RUNNING, None, "no variant is significantly better yet; set decision.mde to "
                        "know how long to wait", mde_now=mde_now, **base)
    if mde_now is not None and mde_now > rule.mde and not ended:
        more = more_days_for(mde_now, rule.mde, max(days_run, 1))
        return Decision(KEEP_RUNNING, None, f"nothing significant yet and the primary metrics can detect only "
                        f"{mde_now:.1%} (target {rule.mde:.1%}) at 80% power", more_days=more,
                        mde_now=mde_now, **base)
    if mde_now is not None and mde_now > rule.mde:
        why = f"the experiment ended under-powered (MDE {mde_now:.1%} > {rule.mde:.1%}) with no variant better"
    else:
        why = (f"no variant is significantly better although a {rule.mde:.1%} lift would show with 80% power"
               + (f" (MDE now {mde_now:.1%})" if mde_now is not None else ""))
    return Decision(DO_NOT_SHIP, None, why, mde_now=mde_now, **base)


def read_holdout(variant: str, rows: Sequence[Mapping[str, Any]]) -> HoldoutReading:
    """The overall rows of one treatment of a holdout: every metric's regression status."""
    mine = [r for r in rows if r["variant"] == variant and r.get("dimension") is None]

    def having(status: str) -> tuple[str, ...]:
        return tuple(r["metric"] for r in mine if r.get("guardrail_status") == status)

    mdes = [float(r["mde_80"]) for r in mine if r.get("mde_80") is not None and math.isfinite(r["mde_80"])]
    return HoldoutReading(variant, having("fail"), having("warn"), len(mine), max(mdes) if mdes else None)


def _named(readings: Sequence[HoldoutReading], attr: str, several: bool) -> str:
    """``revenue, dau`` (one treatment) or ``revenue (orange, red), dau (red)``."""
    by_metric: dict[str, list[str]] = {}
    for r in readings:
        for m in getattr(r, attr):
            by_metric.setdefault(m, []).append(r.variant)
    return ", ".join(m + (f" ({', '.join(vs)})" if several else "") for m, vs in by_metric.items())


def _lifts(rows: Sequence[Mapping[str, Any]], reading: HoldoutReading) -> str:
    def lift(metric: str) -> str:
        row = next((r for r in rows if r["variant"] == reading.variant and r["metric"] == metric
                    and r.get("dimension") is None), {})
        rel = row.get("rel_delta")
        return metric + (f" {rel:+.1%}" if isinstance(rel, (int, float)) and math.isfinite(rel) else "")
    return ", ".join(lift(m) for m in reading.regressed)


def decide_holdout(rule: Rule, rows: Sequence[Mapping[str, Any]], health: Sequence[Mapping[str, Any]], *,
                   treatments: Sequence[str], days_run: int, ended: bool) -> Decision:
    """A holdout's reading (docs/statistics.md, "Decision"): investigate when a health check
    fails; keep running for ``min_days``; then **regression** when some metric of some
    treatment has ``guardrail_status = fail`` (worse than the holdout beyond its margin, by the
    run's regression reading), else **no regression**.  Never ship / do not ship."""
    readings = tuple(read_holdout(v, rows) for v in treatments)
    mde_now = max((r.mde for r in readings if r.mde is not None), default=None)
    base = {"days_run": days_run, "readings": readings, "kind": "holdout", "ended": ended, "mde_now": mde_now}
    early = _not_yet(rule, health, days_run, ended, base, "reading the holdout")
    if early:
        return early
    several = len(treatments) > 1
    how = ("final reading at the planned end: one-sided tests corrected over metrics x treatments"
           if ended else "interim reading: always-valid intervals; the holdout keeps running to its end")
    warned = _named(readings, "warned", several)
    also = f"; worse beyond the margin but not established: {warned}" if warned else ""
    hit = [r for r in readings if r.regressed]
    if hit:
        what = "; ".join(f"{r.variant}: {_lifts(rows, r)}" for r in hit)
        return Decision(REGRESSION, None, f"worse than the holdout beyond the margin: {what} ({how}){also}",
                        subject=_named(readings, "regressed", several), **base)
    power = f"; regressions of {mde_now:.1%} would show with 80% power" if mde_now is not None else ""
    return Decision(NO_REGRESSION, None, f"no metric of {', '.join(treatments)} is worse than the holdout "
                    f"beyond its margin ({how}){also}{power}", **base)


def decision_row(d: Decision, rule: Rule, *, run_id: str, computed_at: Any, experiment: str,
                 as_of: Any) -> list[Any]:
    """One wn.decisions row (warehouse/tables.py DECISIONS order)."""
    return [run_id, computed_at, experiment, str(as_of), d.decision, d.variant, d.headline, d.reason,
            d.days_run, d.more_days, d.mde_target, d.mde_now, json.dumps(rule.settings(), sort_keys=True),
            json.dumps([asdict(r) for r in d.readings], sort_keys=True)]
