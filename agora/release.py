"""What publish serves when differential privacy is on: released values, never the exact marts.

`released_marts` takes the marts dbt built (exact, k-suppressed) and returns the tables
to publish instead:

- ``community_kpis_monthly``: account-based KPIs only as released by `agora.dp` (`release`
  = ``dp``, ``noise_scale`` set, ``group_size`` the noisy count, suppression applied to
  noisy values); KPIs not computed from accounts (`EXACT_KPIS`) as built; every other KPI
  is withheld (no row). A KPI nobody classified is withheld too: never a silent exact.
- ``cohort_retention``: withheld (published empty, so dashboards still load).
- ``kpi_catalog``: its ``release`` column says dp / exact / withheld per KPI.
- marts from team-kept files (`EXACT_MARTS`) as built; any other mart is published empty.

Rates come from noisy counts only (post-processing): retention_rate = retained / the
previous month's released active_members, churn_rate = 1 − it, returning_newcomer_rate =
returned newcomers (released with the next month) / the month's released new_members.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from agora import dp
from agora.config import AgoraConfig

# Published as the noisy counts themselves.
DP_COUNTS = ("active_members", "new_members", "reactivated_members", "contributions")
DP_RATES = ("retention_rate", "churn_rate", "returning_newcomer_rate")
DP_KPIS = DP_COUNTS + DP_RATES
# Not computed from individual accounts: wiki pageview aggregates; the team's survey,
# feedback log, activities and learnings (no accounts; k-suppressed as before).
EXACT_KPIS = (
    "support_page_views",
    "nps",
    "feedback_received",
    "feedback_acted_on",
    "closed_loop_rate",
    "median_days_to_action",
    "team_activities",
    "learnings",
)
EXACT_MARTS = (
    "feedback_loop_monthly",
    "feedback_loop_quarterly",
    "nps_quarterly",
    "team_activity_monthly",
    "learnings",
)
KPI_MART = "community_kpis_monthly"
CATALOG = "kpi_catalog"

Marts = dict[str, tuple[list[tuple[str, str]], list[tuple]]]


def classify(kpi: str) -> str:
    """dp, exact or withheld: how a KPI is published with differential privacy on."""
    if kpi in DP_KPIS:
        return "dp"
    return "exact" if kpi in EXACT_KPIS else "withheld"


def _count_row(month: date, cell: str, kpi: str, value: int, group: int, scale: float, k_min: int) -> dict:
    group = max(group, 0)
    suppressed = group < k_min
    return {
        "month": month,
        "platform": cell,
        "kpi": kpi,
        "value": None if suppressed else float(max(value, 0)),
        "group_size": group,
        "is_suppressed": suppressed,
        "release": "dp",
        "noise_scale": scale,
    }


def _rate_row(month: date, cell: str, kpi: str, num: tuple[int, float], den: tuple[int, float], k_min: int) -> dict:
    """num / den of two noisy counts, clipped to [0, 1]; noise_scale by the delta method."""
    (n, sn), (d, sd) = num, den
    group = max(d, 0)
    suppressed = group < k_min
    rate = min(max(n / d, 0.0), 1.0) if not suppressed else None
    scale = math.sqrt(sn**2 + (rate or 0.0) ** 2 * sd**2) / d if not suppressed else None
    if kpi == "churn_rate" and rate is not None:
        rate = 1.0 - rate
    return {
        "month": month,
        "platform": cell,
        "kpi": kpi,
        "value": rate,
        "group_size": group,
        "is_suppressed": suppressed,
        "release": "dp",
        "noise_scale": scale,
    }


def dp_rows(releases: dict[date, dict[str, Any]], k_min: int) -> list[dict]:
    """community_kpis_monthly rows from released months only (pure post-processing)."""

    def get(month: date, kpi: str, cell: str) -> tuple[int, float] | None:
        rec = releases.get(month)
        if rec is None or cell not in rec["kpis"][kpi]["values"]:
            return None
        return rec["kpis"][kpi]["values"][cell], rec["kpis"][kpi]["scale"]

    rows = []
    for month, rec in sorted(releases.items()):
        for cell in rec["cells"]:
            active = get(month, "active_members", cell)
            for kpi in ("active_members", "new_members", "reactivated_members"):
                value, scale = get(month, kpi, cell)
                rows.append(_count_row(month, cell, kpi, value, value, scale, k_min))
            value, scale = get(month, "contributions", cell)
            rows.append(_count_row(month, cell, "contributions", value, active[0], scale, k_min))
            previous = get(dp.add_months(month, -1), "active_members", cell)
            if previous is not None:
                retained = get(month, "retained_members", cell)
                for kpi in ("retention_rate", "churn_rate"):
                    rows.append(_rate_row(month, cell, kpi, retained, previous, k_min))
            returned = get(dp.add_months(month, 1), "returned_newcomers", cell)
            if returned is not None:
                rows.append(
                    _rate_row(month, cell, "returning_newcomer_rate", returned, get(month, "new_members", cell), k_min)
                )
    _check(rows, k_min)
    return rows


def _check(rows: list[dict], k_min: int) -> None:
    """The mart contract's rules, on the rows that replace what it checked."""
    for r in rows:
        if r["is_suppressed"] != (r["group_size"] < k_min) or (r["is_suppressed"] and r["value"] is not None):
            raise dp.ReleaseError(f"differential privacy: row breaks k-suppression: {r}")


def released_marts(cfg: AgoraConfig, marts: Marts) -> Marts:
    """The tables to publish in place of the exact `marts` (same tables, same columns)."""
    k_min = cfg.privacy.k_min
    out: Marts = {}
    for name, (cols, rows) in marts.items():
        names = [c for c, _ in cols]
        if name == KPI_MART:
            kpi_at = names.index("kpi")
            kept = [r for r in rows if classify(r[kpi_at]) == "exact"]
            new = [tuple(row[c] for c in names) for row in dp_rows(dp.released(cfg), k_min)]
            out[name] = (cols, kept + new)
        elif name == CATALOG:
            kpi_at, rel_at = names.index("kpi"), names.index("release")
            out[name] = (
                cols,
                [tuple(classify(r[kpi_at]) if i == rel_at else v for i, v in enumerate(r)) for r in rows],
            )
        elif name in EXACT_MARTS:
            out[name] = (cols, rows)
        else:  # cohort_retention, and any mart nobody classified: withheld
            out[name] = (cols, [])
    return out
