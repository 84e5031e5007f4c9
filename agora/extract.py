"""Run one source's connector for a window and land what it yields.

This is the edge: raw account ids become pseudonyms here, opted-out accounts are
dropped here, keyword tags are computed here, and nothing reaches disk before that.
The CLI and the `agora_ingest` DAG both call `run_extract`.

Fetching takes as long as the source needs and holds no lock. Writing does: under the
state store's ``landing`` lock (agora.locks) the tombstone list is read *again*, rows and
rejects of accounts tombstoned meanwhile are dropped, and only then are landing,
quarantine and the cursor written. A privacy run adds tombstones and scrubs landing under
the same lock, so an erasure applied while an extract was fetching still wins.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agora import locks, progress
from agora.config import TEAM_PLATFORMS, AgoraConfig
from agora.envelope import RawEvent, Rejected
from agora.landing import partition_day, read_state, write_landing, write_quarantine, write_state
from agora.pseudonym import Pseudonymizer
from agora.storage import check_roots
from agora.tombstones import load_tombstones
from connectors.base import Connector, ImplausibleTime, connector_class, plausible

log = logging.getLogger("agora.extract")


@dataclass
class ExtractSummary:
    source: str
    platform: str
    run_id: str
    since: datetime | None
    until: datetime
    landed: int = 0
    files: list[str] = field(default_factory=list)
    quarantined: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["since"] = self.since.isoformat() if self.since else None
        d["until"] = self.until.isoformat()
        return d


def utc(dt: datetime | str | None) -> datetime | None:
    if dt is None:
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt.replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def make_run_id(since: datetime | None, until: datetime) -> str:
    """Depends only on the window, so a rerun of the same window replaces its own files."""
    start = since.strftime("%Y%m%dT%H%M%SZ") if since else "start"
    return f"{start}--{until.strftime('%Y%m%dT%H%M%SZ')}"


def _tagger(rules):
    lowered = [(r.tag, [k.lower() for k in r.keywords]) for r in rules]

    def tags_for(text: str | None) -> list[str]:
        if not text or not lowered:
            return []
        t = text.lower()
        return [tag for tag, kws in lowered if any(k in t for k in kws)]

    return tags_for


def run_extract(
    cfg: AgoraConfig,
    source_name: str,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    *,
    save_state: bool = True,
) -> ExtractSummary:
    """Extract [since, until) for one source; since defaults to the saved cursor."""
    src = cfg.source(source_name)
    state_root, landing_root = cfg.path("state"), cfg.path("landing")
    check_roots(cfg)
    until = utc(until) or datetime.now(UTC).replace(microsecond=0)
    if since is None:
        cursor = read_state(state_root, src.name).get("cursor")
        since = utc(cursor) if cursor else None
    since = utc(since)
    run_id = make_run_id(since, until)
    team = src.type in TEAM_PLATFORMS

    connector = connector_class(src.type)(src, root=cfg.root)
    platform = connector.platform
    pseudo = None
    if not team:
        pseudo = Pseudonymizer(
            cfg.pseudonym_key(),
            platform,
            staff={s.account for s in cfg.privacy.staff if s.platform == platform},
            bots={s.account for s in cfg.privacy.bots if s.platform == platform},
            tombstones=load_tombstones(state_root),
        )
    tags_for = _tagger(src.tags)
    extracted_at = datetime.now(UTC)
    summary = ExtractSummary(src.name, platform, run_id, since, until)
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[str, str | None, Any, str | None]] = []
    seen: set[tuple[str, str]] = set()
    privacy_drops: Counter[str] = Counter()

    with progress.track_extract(src.name) as tracker:
        for item in connector.extract(since, until):
            if isinstance(item, Rejected):
                actor = pseudo(item.account_id) if pseudo is not None else None
                rejects.append((item.reason, item.record_id, item.payload, actor))
                tracker.record(quarantined=True)
                continue
            problem = _invalid(item, connector, team)
            if problem:
                known = pseudo is not None and not connector.account_problem(item.account_id)
                rejects.append((problem, str(item.record_id), None, pseudo(item.account_id) if known else None))
                tracker.record(quarantined=True)
                continue
            tracker.record()
            if not team and connector.account_problem(item.parent_account_id):
                item.parent_account_id = None  # whom it answers is malformed: keep the record, not the link
            row = _to_row(item, src.name, platform, run_id, extracted_at, connector.version, pseudo, tags_for, team)
            if row is None:
                privacy_drops["opt_out"] += 1
                continue
            key = (row["record_type"], row["record_id"])
            if key in seen:  # the same record on two pages: land it once
                privacy_drops["duplicate_in_run"] += 1
                continue
            seen.add(key)
            rows.append(row)

    with locks.hold(state_root, locks.LANDING) as lock:
        if pseudo is not None:
            # The list as it is now, not as it was when fetching started.
            rows, rejects, late = drop_tombstoned(rows, rejects, load_tombstones(state_root))
            privacy_drops["opt_out"] += late
        summary.files = write_landing(rows, landing_root, src.name, run_id, team=team)
        summary.landed = len(rows)
        summary.by_type = dict(Counter(r["record_type"] for r in rows))
        write_quarantine(rejects, cfg.path("quarantine"), src.name, run_id, partition_day(until))
        summary.quarantined = len(rejects)
        for reason, *_ in rejects:
            log.warning("%s: quarantined: %s", src.name, reason)
        summary.dropped = dict(connector.drops + privacy_drops)
        # An object-store lease lost while writing: the tombstones may have changed under
        # us. Keep the cursor where it was (the next run redoes the window) and let the
        # landing contract, which rejects tombstoned actors, stop anything that slipped in.
        locks.ensure_held(lock)
        if save_state:
            previous = read_state(state_root, src.name).get("cursor")
            cursor = max(filter(None, [utc(previous), until]))
            write_state(state_root, src.name, {"cursor": cursor.isoformat(), "last_run_id": run_id})
    tracker.done(summary.landed, len(summary.files))
    log.info(
        "%s: landed %d records in %d files, quarantined %d, dropped %s",
        src.name,
        summary.landed,
        len(summary.files),
        summary.quarantined,
        summary.dropped or "nothing",
    )
    return summary


def _invalid(ev: RawEvent, connector: Connector, team: bool) -> str | None:
    """Why a connector's record cannot land, checked the same way for every connector: an
    absurd timestamp, or an account id not in the platform's canonical form (which would
    pseudonymise apart from the same account's real id)."""
    try:
        plausible(ev.occurred_at)
    except ImplausibleTime as e:
        return f"occurred_at: {e}"
    if not team:
        problem = connector.account_problem(ev.account_id)
        if problem:
            return f"account: {problem}"
    return None


def drop_tombstoned(
    rows: list[dict[str, Any]], rejects: list[tuple], tombstones: set[str]
) -> tuple[list[dict[str, Any]], list[tuple], int]:
    """Rows and rejects without tombstoned authors, links to tombstoned accounts unset.

    Returns (rows, rejects, rows dropped). Run under the landing lock right before writing.
    """
    if not tombstones:
        return rows, rejects, 0
    kept = []
    for r in rows:
        if r["actor"] is not None and r["actor"] in tombstones:
            continue
        if r["parent_actor"] is not None and r["parent_actor"] in tombstones:
            r = {**r, "parent_actor": None}
        kept.append(r)
    rejects = [q for q in rejects if len(q) < 4 or q[3] is None or q[3] not in tombstones]
    return kept, rejects, len(rows) - len(kept)


def _to_row(
    ev: RawEvent,
    source: str,
    platform: str,
    run_id: str,
    extracted_at: datetime,
    version: str,
    pseudo: Pseudonymizer | None,
    tags_for,
    team: bool,
) -> dict[str, Any] | None:
    actor = parent_actor = None
    is_staff = is_bot = False
    if pseudo is not None:
        actor = pseudo(ev.account_id)
        parent_actor = pseudo(ev.parent_account_id)
        if actor is not None and actor in pseudo.tombstones:
            return None
        if parent_actor in pseudo.tombstones:
            parent_actor = None  # replying to someone who opted out: keep the reply, not the link
        is_staff = actor in pseudo.staff
        is_bot = ev.is_bot or actor in pseudo.bots
    row = {
        "source": source,
        "platform": platform,
        "record_type": ev.record_type,
        "record_id": str(ev.record_id),
        "thread_id": None if ev.thread_id is None else str(ev.thread_id),
        "parent_id": None if ev.parent_id is None else str(ev.parent_id),
        "actor": actor,
        "parent_actor": parent_actor,
        "occurred_at": utc(ev.occurred_at),
        "is_bot": bool(is_bot),
        "is_staff": bool(is_staff),
        "value": ev.value,
        "tags": sorted(set(ev.tags) | set(tags_for(ev.text))),
        "extracted_at": extracted_at,
        "run_id": run_id,
        "connector_version": version,
    }
    if team:
        row["title"] = ev.title
        row["text"] = ev.body
    return row
