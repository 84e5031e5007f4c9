"""The audit log and the journal of work awaiting a rebuild, in the state store.

The audit log (``<state>/privacy_audit.jsonl``) records what was done and when, never
who. The journal (``<state>/privacy_pending.json``) holds pseudonyms only until its
work is done. Both are read-modify-written under the ``privacy`` lock (agora.locks).
"""

from __future__ import annotations

import json
import posixpath
from datetime import UTC, datetime
from typing import Any

from agora import locks
from agora.config import AgoraConfig
from agora.storage import read_text, remove, write_text

AUDIT_FILE = "privacy_audit.jsonl"
JOURNAL_FILE = "privacy_pending.json"
#: The layers an erasure reports rows removed from; the first two are files it scrubs.
FILE_LAYERS = ("landing", "quarantine")
LAYERS = (*FILE_LAYERS, "warehouse", "serving")


def state_url(cfg: AgoraConfig, name: str) -> str:
    return posixpath.join(cfg.path("state"), name)


def read_audit(cfg: AgoraConfig) -> list[dict[str, Any]]:
    text = read_text(state_url(cfg, AUDIT_FILE)) or ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def append_audit(cfg: AgoraConfig, entries: list[dict[str, Any]]) -> None:
    """Append-only in effect: existing lines are kept verbatim (rewritten atomically, so any fsspec store works).

    Read-modify-written under the ``privacy`` lock, so two runs never drop each other's lines.
    """
    if not entries:
        return
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        url = state_url(cfg, AUDIT_FILE)
        old = read_text(url) or ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_text(url, old + "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in entries))


def completed_request_ids(cfg: AgoraConfig) -> set[str]:
    return {e["request_id"] for e in read_audit(cfg) if e.get("event") == "request" and e.get("status") == "completed"}


def load_journal(cfg: AgoraConfig) -> dict[str, Any]:
    text = read_text(state_url(cfg, JOURNAL_FILE))
    return json.loads(text) if text else {"entries": []}


def save_journal(cfg: AgoraConfig, journal: dict[str, Any]) -> None:
    url = state_url(cfg, JOURNAL_FILE)
    if journal["entries"]:
        write_text(url, json.dumps(journal, indent=1, sort_keys=True))
    else:
        remove(url)


def has_pending(cfg: AgoraConfig) -> bool:
    """Is there privacy work waiting for a rebuild (the DAG's short-circuit)?"""
    return bool(load_journal(cfg)["entries"])


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def zero_layers() -> dict[str, int]:
    return dict.fromkeys(LAYERS, 0)
