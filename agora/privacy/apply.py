"""Applying the requests file: tombstone every new request, journal erasures for the rebuild."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agora import locks
from agora.config import AgoraConfig
from agora.privacy.audit import append_audit, completed_request_ids, load_journal, save_journal, utc_now, zero_layers
from agora.privacy.lookups import account_keys
from agora.privacy.rebuild import Completion, complete_locked
from agora.privacy.requests import Request, read_requests, requests_path
from agora.pseudonym import pseudonym
from agora.tombstones import add_tombstones

log = logging.getLogger("agora.privacy")


@dataclass
class ApplyResult:
    requests: int = 0
    already_done: int = 0
    awaiting_rebuild: int = 0
    opt_outs: int = 0
    erasures: int = 0
    tombstones_added: int = 0
    #: (file:line, why) of requests that could not be resolved: they stay pending.
    pending: list[tuple[str, str]] = field(default_factory=list)
    completion: Completion | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pending"] = [list(p) for p in self.pending]
        return d


def apply_requests(
    cfg: AgoraConfig,
    path: str | Path | None = None,
    *,
    rebuild: bool = True,
    now: datetime | None = None,
) -> ApplyResult:
    """Apply every new request in the file: tombstone it, and journal erasures for the rebuild.

    Requests already completed (per the audit log) are skipped, so applying the same file
    again does nothing. With `rebuild`, pending work is completed in the same call
    (`complete_pending`): the erased rows are gone from every layer when this returns.

    Runs under the state store's ``privacy`` lock: two concurrent runs take turns, and the
    second finds the first's requests done (nothing lost, nothing done twice).
    """
    key = cfg.pseudonym_key()
    now = now or utc_now()
    reqs = read_requests(cfg, requests_path(cfg, path), now=now)
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        return _apply_locked(cfg, key, reqs, rebuild=rebuild, now=now)


def _apply_locked(cfg: AgoraConfig, key: str, reqs: list[Request], *, rebuild: bool, now: datetime) -> ApplyResult:
    done = completed_request_ids(cfg)
    journal = load_journal(cfg)
    journaled = {e["request_id"] for e in journal["entries"] if e["event"] == "request"}
    result = ApplyResult(requests=len(reqs))
    seen: set[str] = set()
    tombstones: set[str] = set()
    opt_out_entries: list[dict[str, Any]] = []
    for req in reqs:
        rid = req.request_id(key)
        if rid in seen:
            continue
        seen.add(rid)
        if rid in done:
            result.already_done += 1
            continue
        if rid in journaled:
            result.awaiting_rebuild += 1
            continue
        keys, why = account_keys(cfg, req)
        if why:
            result.pending.append((req.where, why))
            log.warning("%s: %s request stays pending: %s", req.where, req.kind, why)
            continue
        pseudonyms = {pseudonym(key, req.platform, k) for k in keys}
        tombstones |= pseudonyms
        entry = {
            "event": "request",
            "request_id": rid,
            "kind": req.kind,
            "platform": req.platform,
            "requested_at": req.requested_at.isoformat(),
            "accounts": len(keys),
        }
        if req.kind == "opt_out":
            # Nothing new lands from now on; what was published stays (only aggregates).
            opt_out_entries.append(
                {**entry, "status": "completed", "completed_at": now.isoformat(), "rows_removed": zero_layers()}
            )
            result.opt_outs += 1
        else:
            journal["entries"].append({**entry, "pseudonyms": sorted(pseudonyms), "progress": {}})
            result.erasures += 1
    # Tombstones first: from here on no connector lands these accounts, whatever fails next.
    result.tombstones_added = add_tombstones(cfg.path("state"), tombstones)
    save_journal(cfg, journal)
    append_audit(cfg, opt_out_entries)
    log.info(
        "privacy requests: %d in file, %d already done, %d opt-outs and %d erasures applied, %d pending",
        result.requests,
        result.already_done,
        result.opt_outs,
        result.erasures,
        len(result.pending),
    )
    if rebuild:
        result.completion = complete_locked(cfg)
    return result
