"""Differential privacy (opt-in): draw each month's noisy counts once, account for them in a ledger.

With ``privacy.differential_privacy`` in agora.yml, the account-based counts of a month
(``int_dp_counts_monthly``: exact, never published) are released through OpenDP's Gaussian
mechanism under zero-concentrated DP, once, ``release_after_days`` after the month closes.
The noisy values, with their ρ, mechanism and noise scale, are stored in the state folder
(``<state>/dp/released/<YYYY-MM>.json``) and every later publish serves exactly those
values (`agora.release`): a rebuild, an erasure rebuild or a late record never draws
again, because averaging fresh draws would undo the protection.

Every release appends a line to the budget ledger (``<state>/dp/ledger.jsonl``: month,
KPIs, ρ, mechanism, scales, time; no account data). A release that would spend more than
``rho_cap_12_months`` over any 12 consecutive months is refused: the refusal is recorded,
nothing is ever published for that month, and the step fails with a clear error.

Sensitivity: the privacy unit is one platform account (accounts are not linked across
platforms). An account adds at most 1 to one platform's cell of each count and 1 to the
`all` cell, so the vector (platform cells…, all) of a count moves by at most √2 in L2
norm; `contributions` are clamped per account and month to
``max_contributions_per_account`` (C), giving C·√2. ``rho_per_month`` is split evenly
over the six counts (`MEASURED`); OpenDP's privacy map confirms each share.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsspec

from agora import locks
from agora.config import TEAM_PLATFORMS, AgoraConfig, DifferentialPrivacy

log = logging.getLogger("agora.dp")

# The counts each monthly release measures, in ledger order. The split of rho_per_month
# is even: each gets 1/6. returned_newcomers refers to the *previous* month's newcomers,
# whose 30-day return window has closed by the time this month is released.
MEASURED = (
    "active_members",
    "new_members",
    "reactivated_members",
    "contributions",
    "retained_members",
    "returned_newcomers",
)
SPLIT = {kpi: 1 / len(MEASURED) for kpi in MEASURED}
ALL = "all"
MECHANISM = "OpenDP make_gaussian (discrete Gaussian on integer counts), zCDP"
Z95 = 1.959963984540054  # two-sided 95 % quantile of the normal distribution
DELTA = 1e-7  # the δ Wikimedia states its (ε, δ) guarantees at
COUNTS_TABLE = "intermediate.int_dp_counts_monthly"


class BudgetRefused(RuntimeError):
    """A release would exceed rho_cap_12_months: refused, recorded, nothing published for it."""


class ReleaseError(RuntimeError):
    """The release could not be computed safely (nothing was drawn)."""


def settings(cfg: AgoraConfig) -> DifferentialPrivacy | None:
    return cfg.privacy.differential_privacy


def account_platforms(cfg: AgoraConfig) -> list[str]:
    """The cells of a release: every configured platform that has accounts, fixed by config, not data."""
    return sorted({s.type for s in cfg.sources} - set(TEAM_PLATFORMS))


def epsilon(rho: float, delta: float = DELTA) -> float:
    """ε of (ε, δ)-DP implied by ρ-zCDP: ε = ρ + 2·√(ρ·ln(1/δ)) (Bun & Steinke 2016, Prop. 1.3)."""
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


# -- the mechanism (OpenDP) ------------------------------------------------------------------


def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def gaussian(scale: float):
    """OpenDP's Gaussian measurement on a vector of integer counts, L2 sensitivity as a float."""
    dp = _opendp()
    return dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="f64"), scale=scale)


def l2_sensitivity(kpi: str, contribution_bound: int) -> float:
    """One account moves its platform's cell and the `all` cell, each by at most its bound."""
    bound = contribution_bound if kpi == "contributions" else 1
    return bound * math.sqrt(2)


def scale_for(rho: float, sensitivity: float) -> float:
    """Smallest noise scale whose OpenDP privacy map gives at most `rho` at `sensitivity`."""
    dp = _opendp()
    return float(dp.binary_search_param(gaussian, d_in=sensitivity, d_out=rho, T=float))


@dataclass
class Plan:
    """What one month's release spends: per KPI its ρ share, sensitivity and noise scale."""

    rho_per_month: float
    contribution_bound: int
    kpis: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def for_settings(cls, dp_cfg: DifferentialPrivacy) -> Plan:
        plan = cls(dp_cfg.rho_per_month, dp_cfg.max_contributions_per_account)
        for kpi in MEASURED:
            share = dp_cfg.rho_per_month * SPLIT[kpi]
            sens = l2_sensitivity(kpi, plan.contribution_bound)
            scale = scale_for(share, sens)
            spent = float(gaussian(scale).map(sens))
            if spent > share * (1 + 1e-9):
                raise ReleaseError(f"OpenDP maps scale {scale} to rho {spent} > the share {share} of {kpi}")
            plan.kpis[kpi] = {"rho": spent, "l2_sensitivity": sens, "scale": scale}
        return plan

    @property
    def rho(self) -> float:
        return sum(k["rho"] for k in self.kpis.values())


def noisy(counts: list[int], scale: float) -> list[int]:
    """One draw of the mechanism: the exact counts plus discrete Gaussian noise (OS randomness)."""
    return [int(v) for v in gaussian(scale)([int(c) for c in counts])]


# -- the state folder: released values and the ledger ----------------------------------------


def _root(cfg: AgoraConfig) -> str:
    return posixpath.join(cfg.path("state"), "dp")


def ledger_url(cfg: AgoraConfig) -> str:
    return posixpath.join(_root(cfg), "ledger.jsonl")


def _release_url(cfg: AgoraConfig, month: date) -> str:
    return posixpath.join(_root(cfg), "released", f"{month:%Y-%m}.json")


def _write_text(url: str, text: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with fs.open(tmp, "w") as f:
        f.write(text)
    fs.mv(tmp, path)


def _read_text(url: str) -> str | None:
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as f:
        return f.read()


def read_ledger(cfg: AgoraConfig) -> list[dict[str, Any]]:
    text = _read_text(ledger_url(cfg)) or ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _append_ledger(cfg: AgoraConfig, entry: dict[str, Any]) -> None:
    """Existing lines kept verbatim, the file replaced atomically (any fsspec store).

    Read-modify-written under the ``dp`` lock (agora.locks), so two writers never drop
    each other's lines; on an object store the lease is checked before the write.
    """
    with locks.hold(cfg.path("state"), locks.DP) as lock:
        old = _read_text(ledger_url(cfg)) or ""
        if old and not old.endswith("\n"):
            old += "\n"
        locks.ensure_held(lock)
        _write_text(ledger_url(cfg), old + json.dumps(entry, sort_keys=True) + "\n")


def released(cfg: AgoraConfig) -> dict[date, dict[str, Any]]:
    """Every released month's stored values, by month."""
    fs, path = fsspec.core.url_to_fs(posixpath.join(_root(cfg), "released"))
    if not fs.exists(path):
        return {}
    out = {}
    for p in sorted(fs.glob(posixpath.join(path, "*.json"))):
        with fs.open(p, "r") as f:
            rec = json.load(f)
        out[date.fromisoformat(rec["month"])] = rec
    return out


def _ledger_entry(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": "release",
        "month": rec["month"],
        "kpis": list(rec["kpis"]),
        "rho": rec["rho"],
        "rho_by_kpi": {k: v["rho"] for k, v in rec["kpis"].items()},
        "mechanism": rec["mechanism"],
        "scale_by_kpi": {k: v["scale"] for k, v in rec["kpis"].items()},
        "released_at": rec["released_at"],
    }


def reconcile(cfg: AgoraConfig) -> int:
    """Ledger lines for released months that lack one (a crash between the two writes)."""
    with locks.hold(cfg.path("state"), locks.DP):
        return _reconcile_locked(cfg)


def _reconcile_locked(cfg: AgoraConfig) -> int:
    months = {e["month"] for e in read_ledger(cfg) if e.get("event") == "release"}
    added = 0
    for rec in released(cfg).values():
        if rec["month"] not in months:
            _append_ledger(cfg, _ledger_entry(rec))
            added += 1
    return added


# -- the budget ----------------------------------------------------------------------------


def _month_index(m: date) -> int:
    return m.year * 12 + m.month - 1


def add_months(m: date, n: int) -> date:
    i = _month_index(m) + n
    return date(i // 12, i % 12 + 1, 1)


def spent_by_month(ledger: list[dict[str, Any]]) -> dict[date, float]:
    out: dict[date, float] = {}
    for e in ledger:
        if e.get("event") == "release":
            m = date.fromisoformat(e["month"])
            out[m] = out.get(m, 0.0) + float(e["rho"])
    return out


def worst_window(spent: dict[date, float], month: date, rho: float) -> tuple[float, date]:
    """Largest ρ over any 12 consecutive months containing `month`, with `rho` added there."""
    best, start = -1.0, month
    for back in range(12):
        s = add_months(month, -back)
        total = rho + sum(v for m, v in spent.items() if 0 <= _month_index(m) - _month_index(s) < 12)
        if total > best:
            best, start = total, s
    return best, start


def remaining(cfg: AgoraConfig, month: date) -> float:
    """What a release of `month` could still spend without breaking the cap."""
    dp_cfg = settings(cfg)
    cap = dp_cfg.rho_cap_12_months if dp_cfg else 0.0
    worst, _ = worst_window(spent_by_month(read_ledger(cfg)), month, 0.0)
    return max(cap - worst, 0.0)


# -- releasing -----------------------------------------------------------------------------


def month_closes(month: date) -> date:
    return add_months(month, 1)


def due_months(first: date, as_of: datetime, after_days: int) -> list[date]:
    """Months from `first` whose release day (close + after_days) is on or before `as_of`."""
    out, m = [], first
    while datetime.combine(month_closes(m) + timedelta(days=after_days), datetime.min.time(), UTC) <= as_of:
        out.append(m)
        m = add_months(m, 1)
    return out


def read_counts(cfg: AgoraConfig) -> list[tuple[str, date, str, int, int]]:
    """(platform, month, kpi, exact count, clamp) rows of the warehouse's int_dp_counts_monthly."""
    from agora.warehouse import dbt_target, warehouse_path

    query = f"select platform, month, kpi, value, contribution_bound from {COUNTS_TABLE}"  # noqa: S608
    if dbt_target(cfg=cfg) == "postgres":
        from agora.pg_landing import PgSettings

        conn = PgSettings.for_config(cfg).connect()
        try:
            with conn.cursor() as cur:
                cur.execute(query)
                return list(cur.fetchall())
        finally:
            conn.close()
    import duckdb

    con = duckdb.connect(warehouse_path(cfg), read_only=True)
    try:
        return con.execute(query).fetchall()
    except duckdb.CatalogException as e:
        raise ReleaseError(f"differential privacy: {COUNTS_TABLE} is missing (run the build first): {e}") from e
    finally:
        con.close()


def draw_month(
    plan: Plan, month: date, platforms: list[str], counts: dict[tuple[str, date, str], int], now: datetime
) -> dict[str, Any]:
    """One month's release record: every measured count of every cell, drawn once."""
    rec: dict[str, Any] = {
        "month": month.isoformat(),
        "released_at": now.isoformat(timespec="seconds"),
        "mechanism": MECHANISM,
        "privacy_unit": "platform account",
        "rho": plan.rho,
        "contribution_bound": plan.contribution_bound,
        "cells": [*platforms, ALL],
        "kpis": {},
    }
    for kpi in MEASURED:
        # returned_newcomers: the previous month's newcomers, now that their window closed.
        of = add_months(month, -1) if kpi == "returned_newcomers" else month
        exact = [counts.get((p, of, kpi), 0) for p in platforms]
        exact.append(sum(exact))  # `all`: accounts are never linked across platforms
        values = noisy(exact, plan.kpis[kpi]["scale"])
        rec["kpis"][kpi] = {
            **plan.kpis[kpi],
            "of_month": of.isoformat(),
            "values": dict(zip(rec["cells"], values, strict=True)),
        }
    return rec


@dataclass
class ReleaseResult:
    enabled: bool
    released: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    already: int = 0
    rho_spent: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "released": self.released,
            "refused": self.refused,
            "already_released": self.already,
            "rho_spent": round(self.rho_spent, 6),
        }


def release_due(cfg: AgoraConfig, as_of: datetime | None = None) -> ReleaseResult:
    """Release every due month not released or refused before; raise BudgetRefused if one was refused now."""
    dp_cfg = settings(cfg)
    if dp_cfg is None:
        return ReleaseResult(enabled=False)
    now = (as_of or datetime.now(UTC)).astimezone(UTC)
    rows = read_counts(cfg)
    bounds = {r[4] for r in rows}
    if bounds and bounds != {dp_cfg.max_contributions_per_account}:
        # The noise scale assumes the configured clamp: a warehouse built with another one must not be released.
        raise ReleaseError(
            f"differential privacy: the warehouse clamps contributions at {sorted(bounds)}, agora.yml says "
            f"{dp_cfg.max_contributions_per_account}: rebuild (agora build) before releasing"
        )
    counts = {(p, m if isinstance(m, date) else date.fromisoformat(str(m)), k): int(v) for p, m, k, v, _ in rows}
    # One release at a time: the ledger read below must still be the ledger when this run
    # appends, or two runs would both draw (and spend the budget of) the same month.
    with locks.hold(cfg.path("state"), locks.DP) as lock:
        return _release_locked(cfg, dp_cfg, counts, now, lock)


def _release_locked(
    cfg: AgoraConfig, dp_cfg: DifferentialPrivacy, counts: dict, now: datetime, lock: Any
) -> ReleaseResult:
    result = ReleaseResult(enabled=True)
    _reconcile_locked(cfg)
    done = set(released(cfg))
    ledger = read_ledger(cfg)
    refused_before = {date.fromisoformat(e["month"]) for e in ledger if e.get("event") == "refused"}
    if not counts:
        return result
    platforms = account_platforms(cfg)
    plan = Plan.for_settings(dp_cfg)
    first = min(m for _, m, _ in counts)
    refusals = []
    for month in due_months(first, now, dp_cfg.release_after_days):
        if month in done or month in refused_before:
            result.already += month in done
            continue
        spent = spent_by_month(ledger)
        worst, start = worst_window(spent, month, plan.rho)
        if worst > dp_cfg.rho_cap_12_months + 1e-12:
            entry = {
                "event": "refused",
                "month": month.isoformat(),
                "kpis": list(MEASURED),
                "rho": 0.0,
                "would_spend": plan.rho,
                "window": f"{start:%Y-%m}..{add_months(start, 11):%Y-%m}",
                "window_total": worst,
                "cap": dp_cfg.rho_cap_12_months,
                "refused_at": now.isoformat(timespec="seconds"),
            }
            _append_ledger(cfg, entry)
            ledger.append(entry)
            refusals.append(
                f"{month:%Y-%m} (would bring {entry['window']} to rho {worst:.4f} > cap {dp_cfg.rho_cap_12_months})"
            )
            result.refused.append(f"{month:%Y-%m}")
            continue
        rec = draw_month(plan, month, platforms, counts, now)
        # Values first, then the ledger: a crash in between is repaired by reconcile(), never redrawn.
        locks.ensure_held(lock)
        _write_text(_release_url(cfg, month), json.dumps(rec, indent=1, sort_keys=True))
        entry = _ledger_entry(rec)
        _append_ledger(cfg, entry)
        ledger.append(entry)
        result.released.append(f"{month:%Y-%m}")
        result.rho_spent += plan.rho
        log.info("dp: released %s (rho %.4f, %s)", f"{month:%Y-%m}", plan.rho, MECHANISM)
    if refusals:
        raise BudgetRefused(
            "privacy budget: release refused, nothing will be published for "
            + "; ".join(refusals)
            + " (privacy.differential_privacy.rho_cap_12_months; see `agora privacy budget`)"
        )
    return result
