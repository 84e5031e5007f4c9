"""Turn ReportData into the report's HTML: numbers formatted once, here, for every section."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from agora.report import charts
from agora.report.data import PROVISIONAL_DAYS, Point, ReportData, Result, add_months, quarter_start

TEMPLATES = Path(__file__).resolve().parent / "templates"


def period_label(d: date, grain: str) -> str:
    return f"Q{(d.month - 1) // 3 + 1} {d.year}" if grain == "quarter" else f"{d:%b %Y}"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "count":
        return f"{round(value):,}"
    if unit == "share":
        return f"{100 * value:.1f} %"
    if unit == "hours":
        return f"{value:.1f} h"
    return f"{value:+.0f}"


def _margin(p: Point, unit: str) -> str:
    m = p.margin
    if m is None:
        return ""
    return f"± {100 * m:.1f} pts" if unit == "share" else f"± {m:,.1f}" if unit != "count" else f"± {round(m):,}"


def change(r: Result) -> tuple[str, str]:
    """Change since the previous period, and whether it is better, worse or flat."""
    cur, prev = r.current, r.previous
    if cur is None or prev is None:
        return "no earlier value", "flat"
    if cur.value is None or prev.value is None:
        gone = "this period" if cur.value is None else period_label(prev.period, r.grain)
        return f"no comparison ({gone} not shown)", "flat"
    delta = cur.value - prev.value
    since = period_label(prev.period, r.grain).replace(" ", "\u00a0")
    if r.unit == "count":
        text = f"{delta:+,.0f} ({100 * delta / prev.value:+.1f} %) vs {since}" if prev.value else f"{delta:+,.0f}"
    elif r.unit == "share":
        text = f"{100 * delta:+.1f} pts vs {since}"
    elif r.unit == "hours":
        text = f"{delta:+.1f} h vs {since}"
    else:
        text = f"{delta:+.0f} pts vs {since}"
    if abs(delta) < 1e-12:
        return text, "flat"
    better = (delta < 0) if r.direction == "down" else (delta > 0)
    return text, "better" if better else "worse"


def target(r: Result) -> tuple[str, str]:
    if r.target is None:
        return "no target set", "none"
    prefix = "≤ " if r.direction == "down" else ""
    shown = (
        f"{100 * r.target:.0f} %"
        if r.unit == "share"
        else f"{r.target:.0f} h"
        if r.unit == "hours"
        else fmt(r.target, r.unit)
    )
    text = f"target {prefix}{shown}"
    if r.current is None or r.current.value is None:
        return text, "none"
    met = r.current.value <= r.target if r.direction == "down" else r.current.value >= r.target
    return text, "met" if met else "missed"


def notes(r: Result, k_min: int, month: date) -> list[str]:
    out = []
    who = "items" if r.kpi == "closed_loop_rate" else "people"
    if r.current is None:
        out.append("no data for this period")
    elif r.current.suppressed or r.current.value is None:
        out.append(f"suppressed: fewer than {k_min} {who} (k = {k_min})")
    if r.current is not None and r.current.margin is not None:
        out.append(f"differentially private: {_margin(r.current, r.unit)} (95 % margin)")
    if r.provisional and r.current is not None and r.current.value is not None:
        if r.grain == "quarter" and add_months(r.current.period, 3) > add_months(month, 1):
            out.append(f"provisional: quarter to date (through {month:%B}); it closes at the end of the quarter")
        else:
            out.append(f"provisional: the period ended less than {PROVISIONAL_DAYS} days ago and can still change")
    return out


def _periods(r: Result, month: date) -> list[date]:
    if r.grain == "quarter":
        q = quarter_start(month)
        return [add_months(q, -3 * i) for i in range(3, -1, -1)]
    return [add_months(month, -i) for i in range(11, -1, -1)]


def alt_trend(r: Result, periods: list[date], k_min: int) -> str:
    by_period = {p.period: p for p in r.series}
    parts = []
    for d in periods:
        p = by_period.get(d)
        parts.append(
            f"{period_label(d, r.grain)} {'no data' if p is None else fmt(p.value, r.unit) if p.value is not None else 'suppressed'}"
        )
    tail = f"; {target(r)[0]}" if r.target is not None else ""
    return f"{r.label}, trend: " + ", ".join(parts) + tail + "."


def result_rows(d: ReportData) -> list[dict[str, Any]]:
    rows = []
    for r in d.results:
        periods = _periods(r, d.month)
        shown = r.current is not None and r.current.value is not None
        change_text, change_class = change(r)
        target_text, target_class = target(r)
        scale = 100 if r.unit == "share" else 1
        rows.append(
            {
                "label": r.label,
                "kpi": r.kpi,
                "period": period_label(
                    r.current.period if r.current else (quarter_start(d.month) if r.grain == "quarter" else d.month),
                    r.grain,
                ),
                "value": fmt(r.current.value, r.unit) if shown else "suppressed" if r.current else "no data",
                "value_class": "shown" if shown else "suppressed",
                "margin": _margin(r.current, r.unit) if shown else "",
                "provisional": r.provisional and shown,
                "change": change_text,
                "change_class": change_class,
                "target": target_text,
                "target_class": target_class,
                "notes": notes(r, d.k_min, d.month),
                "trend": charts.sparkline(r.series, periods, r.target, scale=scale) if r.series else None,
                "trend_alt": alt_trend(r, periods, d.k_min),
            }
        )
    return rows


def feedback_section(d: ReportData) -> dict[str, Any]:
    month_end = add_months(d.month, 1)
    labels = [
        period_label(r["period"], d.feedback_grain)
        + (" (to date)" if d.feedback_grain == "quarter" and add_months(r["period"], 3) > month_end else "")
        for r in d.feedback
    ]
    rows = [
        {
            "period": label,
            "received": fmt(r["received"], "count") if not r["is_suppressed"] else "suppressed",
            "acted_on": fmt(r["acted_on"], "count") if not r["is_suppressed"] else "",
            "responded": fmt(r["responded"], "count") if not r["is_suppressed"] else "",
            "rate": fmt(r["closed_loop_rate"], "share") if not r["is_suppressed"] else f"fewer than {d.k_min} items",
            "suppressed": bool(r["is_suppressed"]),
        }
        for r, label in zip(d.feedback, labels, strict=True)
    ]
    alt = (
        "Feedback loop by "
        + d.feedback_grain
        + ": "
        + "; ".join(
            f"{row['period']} received {row['received']}, acted on {row['acted_on'] or '–'}, responded to "
            f"{row['responded'] or '–'}, closed-loop rate {row['rate']}"
            for row in rows
        )
    )
    return {
        "grain": d.feedback_grain,
        "rows": rows,
        "chart": charts.feedback_chart(d.feedback, labels) if d.feedback else None,
        "alt": alt + ".",
    }


def cohort_section(d: ReportData) -> dict[str, Any]:
    months = sorted({r["cohort_month"] for r in d.cohorts})
    if not months:
        return {"chart": None, "alt": ""}
    first = {r["cohort_month"]: r for r in d.cohorts if r["months_since_first"] == 1}
    parts = []
    for m in months:
        r = first.get(m)
        if r is None:
            continue
        v = (
            "suppressed (small cohort)"
            if r["is_suppressed"] or r["retention_rate"] is None
            else fmt(r["retention_rate"], "share")
        )
        parts.append(f"{m:%b %Y} {v}")
    alt = (
        f"Cohort retention heatmap, cohorts {months[0]:%b %Y} to {months[-1]:%b %Y}, 0 to 12 months after the first "
        "contribution. Share still active one month later: " + ", ".join(parts) + "."
    )
    return {"chart": charts.cohort_heatmap(d.cohorts, months), "alt": alt}


def team_section(d: ReportData) -> dict[str, Any]:
    this_month = [r for r in d.team if r["month"] == d.month]
    total = sum(r["activities"] for r in this_month)
    by_month: dict[date, int] = {}
    for r in d.team:
        by_month[r["month"]] = by_month.get(r["month"], 0) + r["activities"]
    alt = "Team activities per month: " + ", ".join(f"{m:%b %Y} {by_month.get(m, 0)}" for m in d.months) + "."
    return {
        "total": total,
        "kinds": [(r["activity_kind"], r["activities"]) for r in this_month],
        "chart": charts.team_chart(d.team, d.months) if d.team else None,
        "alt": alt,
    }


def render_html(d: ReportData) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    css = (TEMPLATES / "report.css").read_text()
    return env.get_template("report.html.j2").render(
        d=d,
        css=css,
        month_label=f"{d.month:%B %Y}",
        results=result_rows(d),
        feedback=feedback_section(d),
        cohorts=cohort_section(d),
        team=team_section(d),
    )
