"""Tombstones: pseudonyms of people who opted out or asked to be erased.

Only pseudonyms are stored, so the list itself identifies no one. Every connector run
checks it before landing (crowd.dev's pattern): an opted-out account never lands again.
"""

from __future__ import annotations

import posixpath

import fsspec


def tombstone_url(state_root: str) -> str:
    return posixpath.join(state_root, "tombstones.txt")


def load_tombstones(state_root: str) -> set[str]:
    fs, path = fsspec.core.url_to_fs(tombstone_url(state_root))
    if not fs.exists(path):
        return set()
    with fs.open(path, "r") as f:
        return {line.strip() for line in f if line.strip()}


def add_tombstones(state_root: str, pseudonyms: set[str]) -> int:
    """Add pseudonyms; returns how many were new. Written atomically."""
    current = load_tombstones(state_root)
    new = set(pseudonyms) - current
    if new:
        fs, path = fsspec.core.url_to_fs(tombstone_url(state_root))
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with fs.open(tmp, "w") as f:
            f.write("".join(f"{p}\n" for p in sorted(current | new)))
        fs.mv(tmp, path)
    return len(new)
