"""Terminal rendering of a scorecard: verdicts on top, one row per metric x variant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from rich.table import Table
from rich.text import Text

from ..present.formats import num as _num
from ..present.formats import pct
from ..present.formats import pvalue as _p
from .console import console

if TYPE_CHECKING:
    from ..runner import RunResult

_STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "unknown": "dim"}


def _pct(x: float | None, digits: int = 1) -> str:
    return pct(x, digits)


def verdict_style(row: dict[str, Any]) -> str:
    """green: significant in the good direction; red: significant in the bad; default otherwise."""
    if not row.get("significant") or row.get("abs_delta") is None:
        return ""
    good = (row["abs_delta"] > 0) == (row.get("direction", "increase") == "increase")
    return "green" if good else "red"


def status_text(status: str | None) -> Text:
    status = status or "unknown"
    return Text(status.upper(), style=_STATUS_STYLE.get(status, ""))


_ROLE_MARK = {"primary": "●", "secondary": "○", "guardrail": "◆"}


def scorecard_table(rows: Iterable[dict[str, Any]], title: str) -> Table:
    """One row per metric x treatment variant; ● primary, ○ secondary, ◆ guardrail."""
    table = Table(title=title, title_justify="left", header_style="bold", expand=False,
                  caption="● primary  ○ secondary  ◆ guardrail   lift in green/red: significant "
                          "good/bad (after correction for primaries)", caption_justify="left")
    for name, justify in (("metric", "left"), ("variant", "left"), ("control", "right"),
                          ("treatment", "right"), ("rel. lift [CI]", "right"), ("p adj.", "right"),
                          ("CUPED", "right"), ("verdict", "left")):
        table.add_column(name, justify=justify, no_wrap=True)
    last_metric = None
    for r in rows:
        style = verdict_style(r)
        if r.get("p_value") is None:
            lift = Text(r.get("reason") or "not computable", style="dim")
        else:
            lift = Text(f"{_pct(r.get('rel_delta'))} [{_pct(r.get('rel_ci_lower'))}, "
                        f"{_pct(r.get('rel_ci_upper'))}]", style=style)
        vr = r.get("variance_reduction")
        if r.get("guardrail_status"):
            verdict = status_text(r["guardrail_status"])
        elif style:
            verdict = Text("better" if style == "green" else "worse", style=style)
        else:
            verdict = Text("")
        first = r["metric"] != last_metric
        table.add_row(
            f"{_ROLE_MARK.get(r['role'], '')} {r['metric']}" if first else "",
            r["variant"], _num(r.get("control_mean")) if first else "", _num(r.get("variant_mean")), lift,
            Text(_p(r.get("adjusted_p_value")), style=style),
            "—" if not r.get("cuped") or vr is None else f"{-vr * 100:+.0f}% var", verdict)
        last_metric = r["metric"]
    return table


_DECISION_STYLE = {"ship": "bold green", "do not ship": "bold red", "keep running": "bold yellow",
                   "investigate": "bold magenta", "no regression": "bold green", "regression": "bold red"}


def decision_text(decision: dict[str, Any]) -> Text:
    """``decision: ship red — red: significantly better on ...`` (a wn.decisions row)."""
    return Text.assemble("decision: ", (str(decision.get("headline") or decision.get("decision")),
                                        _DECISION_STYLE.get(str(decision.get("decision")), "bold")),
                         f" — {decision.get('reason') or ''}")


def print_summary(experiment: str, run_id: str, srm_status: str, srm_p: float | None,
                  units: dict[str, int], multi: int, scorecard: list[dict[str, Any]],
                  decision: dict[str, Any] | None = None) -> None:
    overall = [r for r in scorecard if r.get("dimension") is None]
    # a holdout reads every metric as a guardrail: its rows all carry a guardrail_status
    holdout = any(r.get("guardrail_status") and r.get("role") != "guardrail" for r in overall)
    guard = [r for r in overall if r.get("role") == "guardrail" or (holdout and r.get("guardrail_status"))]
    label = "regression readings" if holdout else "guardrails"
    failing = sorted({f"{r['metric']} ({r['variant']})" for r in guard if r.get("guardrail_status") == "fail"})
    warning = sorted({f"{r['metric']} ({r['variant']})" for r in guard if r.get("guardrail_status") == "warn"})
    head = Text.assemble((f"{experiment}", "bold"), f"  run {run_id}  ",
                         "SRM ", status_text(srm_status),
                         f" (p={_p(srm_p)})  ", "units: " + ", ".join(f"{v}={n:,}" for v, n in units.items()),
                         f"  multi-exposed excluded: {multi:,}")
    console.print(head)
    if decision:
        console.print(decision_text(decision))
    if failing:
        console.print(Text(f"{label} FAILING: " + ", ".join(failing), style="bold red"))
    elif warning:
        console.print(Text(f"{label} warning: " + ", ".join(warning), style="yellow"))
    elif guard:
        console.print(Text(f"{label}: all pass", style="green"))
    console.print(scorecard_table(_ordered(overall), title="scorecard (overall)"))


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {"primary": 0, "secondary": 1, "guardrail": 2}
    return sorted(rows, key=lambda r: (order.get(r["role"], 9), r["metric"]))


def print_run(result: RunResult, *, quiet: bool = False) -> None:
    out = result.outputs
    if out is None:
        return
    rows = out.scorecard_dicts()
    decision = out.decision_dict()
    if quiet:
        sig = sum(1 for r in rows if r["dimension"] is None and r.get("significant"))
        fails = sum(1 for r in rows if r["dimension"] is None and r.get("guardrail_status") == "fail")
        console.print(f"[green]✓[/green] {result.experiment}: run {result.run_id}, SRM {out.srm_status}, "
                      f"{sig} significant results, {fails} failing guardrails, "
                      f"decision: {decision.get('headline') if decision else 'none'}, {result.seconds:.1f}s")
        return
    print_summary(result.experiment, result.run_id, out.srm_status, out.srm_p_value,
                  out.units_by_variant, out.multi_exposed, rows, decision)
    how = result.mode + (f", strategy {result.strategy}" if result.mode == "stateless" else "")
    console.print(f"[dim]{len(rows)} scorecard rows written ({result.seconds:.1f}s, {how}"
                  f"{'; ' + result.note if result.note else ''}); slices: wn show --experiment "
                  f"{result.experiment} --slices[/dim]")
