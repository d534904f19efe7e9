"""Chart specs (Vega-Lite, written with altair) rendered to SVG when the page is built.

Rendering happens here, with vl-convert (Vega's own renderer, no browser), so a page needs no
JavaScript and no network to show its charts, and one SVG costs a few kilobytes.  Both libraries
are imported on first use only.  Colours: a lift is ``good`` (significant in the metric's good
direction), ``bad`` (significant the other way, or a failing guardrail), ``warn`` (a guardrail
that cannot rule out a regression) or ``neutral``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Sequence

VERDICT_COLORS = {"good": "#1a7f37", "bad": "#cf222e", "warn": "#bf8700", "neutral": "#6e7781"}
VARIANT_COLORS = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2",
                  "#97bbf5", "#9c6b4e", "#9498a0")
_SHAPES = ("circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "wedge", "stroke")
# measured by vl-convert with this font; browsers without it fall back to narrower ones (no clipping)
_FONT = "DejaVu Sans, Verdana, sans-serif"
_CONFIG = {"font": _FONT, "aria": False, "view": {"stroke": None},
           "axis": {"labelFontSize": 11, "titleFontSize": 11, "titleFontWeight": "normal",
                    "gridColor": "#eaeef2", "domainColor": "#8c959f", "tickColor": "#8c959f"},
           "legend": {"labelFontSize": 11, "titleFontSize": 11}}
_ids = itertools.count(1)


class ChartError(RuntimeError):
    """A chart could not be rendered (a bug in the spec; never expected from user data)."""


def _alt():
    import altair as alt

    return alt


def _verdict_scale(alt):
    return alt.Scale(domain=list(VERDICT_COLORS), range=list(VERDICT_COLORS.values()))


def _zero_rule(alt):
    return alt.Chart(alt.Data(values=[{"zero": 0}])).mark_rule(color="#57606a", strokeDash=[3, 3]).encode(
        x="zero:Q")


def forest(points: Sequence[dict[str, Any]], variants: Sequence[str], *, width: int = 280) -> str:
    """Relative lift with its CI per treatment variant (one metric).

    ``points``: ``variant, rel, lo, hi, verdict`` (rows without a lift are left out)."""
    alt = _alt()
    data = alt.Data(values=[p for p in points if p.get("rel") is not None])
    x = alt.X("lo:Q", title="relative lift vs control", axis=alt.Axis(format="+~%", tickCount=5))
    y = alt.Y("variant:N", sort=list(variants), title=None)
    base = alt.Chart(data).encode(y=y, color=alt.Color("verdict:N", scale=_verdict_scale(alt), legend=None))
    chart = alt.layer(
        _zero_rule(alt),
        base.mark_rule(strokeWidth=2).encode(x=x, x2="hi:Q"),
        base.mark_point(filled=True, size=60, opacity=1).encode(x="rel:Q"),
    ).properties(width=width, height=max(24 * len(variants), 24))
    return render(chart)


def slice_forest(points: Sequence[dict[str, Any]], metrics: Sequence[str], variants: Sequence[str],
                 *, width: int = 420) -> str:
    """Every metric of one slice: relative lift and CI, one row per metric, variants offset."""
    alt = _alt()
    data = alt.Data(values=[p for p in points if p.get("rel") is not None])
    shapes = alt.Scale(domain=list(variants), range=list(_SHAPES[:len(variants)] or _SHAPES[:1]))
    x = alt.X("lo:Q", title="relative lift vs control", axis=alt.Axis(format="+~%", tickCount=5))
    base = alt.Chart(data).encode(
        y=alt.Y("metric:N", sort=list(metrics), title=None),
        yOffset=alt.YOffset("variant:N", sort=list(variants)),
        color=alt.Color("verdict:N", scale=_verdict_scale(alt), legend=None))
    chart = alt.layer(
        _zero_rule(alt),
        base.mark_rule(strokeWidth=1.5).encode(x=x, x2="hi:Q"),
        base.mark_point(filled=True, size=36, opacity=1).encode(
            x="rel:Q", shape=alt.Shape("variant:N", scale=shapes, legend=alt.Legend(title="variant",
                                                                                   orient="top"))),
    ).properties(width=width, height=alt.Step(7))   # per variant row within a metric
    return render(chart)


def variant_colors(variants: Sequence[str]) -> dict[str, str]:
    """One colour per variant (control first), the same in every chart of a page."""
    return {v: VARIANT_COLORS[i % len(VARIANT_COLORS)] for i, v in enumerate(variants)}


def _color(alt, shown: Sequence[str], colors: dict[str, str], **legend: Any):
    return alt.Color("variant:N", sort=list(shown), title="variant",
                     scale=alt.Scale(domain=list(shown), range=[colors[v] for v in shown]), **legend)


def exposures(rows: Sequence[dict[str, Any]], colors: dict[str, str], *, width: int = 640) -> str:
    """New units per day per variant (``day`` ISO date, ``variant``, ``units``)."""
    alt = _alt()
    shown = [v for v in colors if any(r["variant"] == v for r in rows)]
    chart = alt.Chart(alt.Data(values=list(rows))).mark_line(point=True, strokeWidth=2).encode(
        x=alt.X("day:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0)),
        y=alt.Y("units:Q", title="units first exposed"),
        color=_color(alt, shown, colors),
    ).properties(width=width, height=180)
    return render(chart)


def cumulative(rows: Sequence[dict[str, Any]], colors: dict[str, str], *, width: int = 640) -> str:
    """One metric's relative lift over the days it ran, with its CI band, per variant
    (``day``, ``variant``, ``rel``, ``lo``, ``hi``)."""
    alt = _alt()
    data = alt.Data(values=[r for r in rows if r.get("rel") is not None])
    shown = [v for v in colors if any(r["variant"] == v for r in rows)]
    x = alt.X("day:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0))
    base = alt.Chart(data)
    chart = alt.layer(
        base.mark_area(opacity=0.15).encode(x=x, y=alt.Y("lo:Q", title="cumulative relative lift",
                                                         axis=alt.Axis(format="+~%")), y2="hi:Q",
                                            color=_color(alt, shown, colors, legend=None)),
        base.mark_line(point=True, strokeWidth=2).encode(x=x, y="rel:Q", color=_color(alt, shown, colors)),
        alt.Chart(alt.Data(values=[{"zero": 0}])).mark_rule(color="#57606a", strokeDash=[3, 3]).encode(y="zero:Q"),
    ).properties(width=width, height=180)
    return render(chart)


_ID_RE = re.compile(r'\bid="([^"]+)"')
_LONG_DECIMAL = re.compile(r"\d+\.\d{3,}")


def _short(match: re.Match) -> str:
    return f"{float(match.group()):.2f}".rstrip("0").rstrip(".")


def render(chart: Any) -> str:
    """An altair chart -> one inline SVG element, its ids made unique within the page."""
    import vl_convert

    spec = chart.to_dict()
    spec["config"] = _CONFIG
    try:
        svg = vl_convert.vegalite_to_svg(spec)
    except Exception as exc:  # noqa: BLE001 - vl-convert raises plain ValueErrors
        raise ChartError(f"could not render a chart: {exc}") from exc
    svg = _LONG_DECIMAL.sub(_short, svg[svg.index("<svg"):])   # 1/100 px is plenty: a third smaller
    ids = set(_ID_RE.findall(svg))
    if ids:   # several inline SVGs share the page's id space (clip paths, gradients)
        prefix = f"c{next(_ids)}-"
        for name in ids:
            svg = svg.replace(f'id="{name}"', f'id="{prefix}{name}"').replace(f"#{name})", f"#{prefix}{name})")
            svg = svg.replace(f'href="#{name}"', f'href="#{prefix}{name}"')
    return svg
