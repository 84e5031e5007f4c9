"""Tombstones: pseudonyms of people who opted out or asked to be erased.

Only pseudonyms are stored, so the list itself identifies no one. Every connector run
checks it before landing (crowd.dev's pattern): an opted-out account never lands again.

The list changes only under the state store's ``landing`` lock (agora.locks), the lock
every landing write holds too: an extract re-reads the list under that lock right before
it writes, so a tombstone added while it was fetching still keeps the account out.
"""

from __future__ import annotations

import posixpath

from agora import locks
from agora.storage import read_text, write_text


def tombstone_url(state_root: str) -> str:
    return posixpath.join(state_root, "tombstones.txt")


def load_tombstones(state_root: str) -> set[str]:
    text = read_text(tombstone_url(state_root)) or ""
    return {line.strip() for line in text.splitlines() if line.strip()}


def add_tombstones(state_root: str, pseudonyms: set[str]) -> int:
    """Add pseudonyms; returns how many were new. Read-modify-written under the landing lock."""
    if not pseudonyms:
        return 0
    with locks.hold(state_root, locks.LANDING):
        current = load_tombstones(state_root)
        new = set(pseudonyms) - current
        if new:
            write_text(tombstone_url(state_root), "".join(f"{p}\n" for p in sorted(current | new)))
    return len(new)
