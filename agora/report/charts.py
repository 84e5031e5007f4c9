"""The report's charts, drawn with matplotlib and inlined as SVG data URIs.

SVG stays sharp in print; text is drawn as paths (``svg.fonttype: path``) so a chart
looks the same on every machine. Every chart comes with alt text written from the same
numbers, for screen readers. Colours are the colour-blind-safe Okabe-Ito palette;
suppressed cells are grey with a hatch, never a colour that could be read as a value.
"""

from __future__ import annotations

import base64
import io
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap  # noqa: E402

BLUE, ORANGE, GREEN, GREY, INK = "#0072B2", "#E69F00", "#009E73", "#BBBBBB", "#222222"
KIND_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
plt.rcParams.update(
    {
        "svg.fonttype": "path",
        "svg.hashsalt": "agora",  # stable ids: the same data draws the same file
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": "#666666",
    }
)


def _uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sparkline(points: list[Any], periods: list[date], target: float | None, scale: float = 1.0) -> str:
    """A 12-month trend: a line with gaps where values are suppressed, the target dashed."""
    fig, ax = plt.subplots(figsize=(2.3, 0.62))
    by_period = {p.period: p for p in points}
    xs = list(range(len(periods)))
    ys = [
        by_period[p].value * scale if p in by_period and by_period[p].value is not None else float("nan")
        for p in periods
    ]
    ax.plot(xs, ys, color=BLUE, linewidth=1.6, marker="o", markersize=2.2)
    known = [(x, y) for x, y in zip(xs, ys, strict=True) if y == y]
    if known:
        ax.plot([known[-1][0]], [known[-1][1]], "o", color=BLUE, markersize=4)
    if target is not None:
        ax.axhline(target * scale, color=ORANGE, linestyle="--", linewidth=1)
    ax.set_xlim(-0.5, len(periods) - 0.5)
    ax.axis("off")
    return _uri(fig)


def feedback_chart(rows: list[dict[str, Any]], labels: list[str]) -> str:
    """Received / acted on / responded bars per period, the closed-loop rate as a line."""
    fig, ax = plt.subplots(figsize=(7.2, 2.6))
    xs = range(len(rows))
    width = 0.26
    for i, (key, name, colour) in enumerate(
        (("received", "Received", GREY), ("acted_on", "Acted on", BLUE), ("responded", "Responded to", GREEN))
    ):
        heights = [r[key] if r[key] is not None else 0 for r in rows]
        ax.bar([x + (i - 1) * width for x in xs], heights, width, label=name, color=colour)
    for x, r in zip(xs, rows, strict=True):
        if r["is_suppressed"]:
            ax.text(x, 0.3, "fewer than k", ha="center", va="bottom", rotation=90, fontsize=7, color="#555555")
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("items")
    rate_ax = ax.twinx()
    rates = [r["closed_loop_rate"] * 100 if r["closed_loop_rate"] is not None else float("nan") for r in rows]
    rate_ax.plot(list(xs), rates, color=ORANGE, marker="o", linewidth=2, label="Closed-loop rate")
    rate_ax.set_ylim(0, 100)
    rate_ax.set_ylabel("closed-loop rate (%)")
    rate_ax.spines["right"].set_visible(True)
    handles = ax.get_legend_handles_labels()[0] + rate_ax.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", ncols=4, frameon=False, fontsize=8)
    ax.set_ylim(0, max([r["received"] or 0 for r in rows] + [1]) * 1.35)
    return _uri(fig)


def cohort_heatmap(cohorts: list[dict[str, Any]], cohort_months: list[date], offsets: int = 13) -> str:
    """Share of each monthly cohort still active 0-12 months later; suppressed cohorts hatched grey."""
    import numpy as np

    grid = np.full((len(cohort_months), offsets), np.nan)
    hidden = np.zeros_like(grid, dtype=bool)
    index = {m: i for i, m in enumerate(cohort_months)}
    for r in cohorts:
        i, j = index.get(r["cohort_month"]), r["months_since_first"]
        if i is None or j >= offsets:
            continue
        if r["is_suppressed"] or r["retention_rate"] is None:
            hidden[i, j] = True
        else:
            grid[i, j] = float(r["retention_rate"])
    fig, ax = plt.subplots(figsize=(7.2, 0.26 * len(cohort_months) + 0.9))
    cmap = LinearSegmentedColormap.from_list("agora", ["#F2F7FB", BLUE])
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if hidden[i, j]:
                ax.add_patch(
                    plt.Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, facecolor="#E5E5E5", hatch="///", edgecolor="#AAAAAA", linewidth=0
                    )
                )
            elif grid[i, j] == grid[i, j]:
                v = grid[i, j]
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=6.5, color="white" if v > 0.55 else INK)
    ax.set_xticks(range(offsets), [str(j) for j in range(offsets)])
    ax.set_yticks(range(len(cohort_months)), [f"{m:%b %Y}" for m in cohort_months])
    ax.set_xlabel("months since first contribution")
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    return _uri(fig)


def team_chart(team: list[dict[str, Any]], months: list[date]) -> str:
    """Activities per month, stacked by kind."""
    kinds = sorted({r["activity_kind"] for r in team})
    fig, ax = plt.subplots(figsize=(7.2, 2.3))
    bottoms = [0] * len(months)
    index = {m: i for i, m in enumerate(months)}
    for k, kind in enumerate(kinds):
        heights = [0] * len(months)
        for r in team:
            if r["activity_kind"] == kind and r["month"] in index:
                heights[index[r["month"]]] = r["activities"]
        ax.bar(range(len(months)), heights, 0.7, bottom=bottoms, label=kind, color=KIND_COLOURS[k % len(KIND_COLOURS)])
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(
        range(len(months)), [f"{m:%b\n%Y}" if m.month == 1 or i == 0 else f"{m:%b}" for i, m in enumerate(months)]
    )
    ax.set_ylabel("activities")
    ax.legend(loc="upper left", ncols=min(len(kinds), 6), frameon=False, fontsize=8, bbox_to_anchor=(0, 1.18))
    return _uri(fig)
