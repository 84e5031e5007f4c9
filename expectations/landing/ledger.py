"""The ledger: which landing files passed the contract, as the filesystem fingerprinted them.

Only files that are new or changed since the last passing run are checked. A ledger in
the state directory (``<state>/landing-contract.json``) maps each validated file to the
fingerprint its filesystem reports (size, mtime and inode locally; ETag or generation on
object stores). Every writer here replaces a file by renaming a new one into place (a
rerun of a window, an erasure rewrite), so a replaced file gets a new fingerprint and is
checked again. The ledger is written atomically after a pass; after a failure only the
quarantined files are taken out (a file moved back is then checked again). So the
contract's cost follows the new data, not the history. ``full=True`` (``agora validate
--full``) ignores the ledger and checks everything.
"""

from __future__ import annotations

from typing import Any

from agora import locks
from agora.config import AgoraConfig
from agora.landing import read_state, write_state

LEDGER = "landing-contract"  # <state>/landing-contract.json; not a valid source name


def read_ledger(cfg: AgoraConfig) -> dict[str, str]:
    """{<source>/dt=<day>/<name>: fingerprint} of the files the last passing run validated."""
    return read_state(cfg.path("state"), LEDGER).get("files", {})


def save_ledger(cfg: AgoraConfig, files: dict[str, str], lock: Any) -> None:
    locks.ensure_held(lock)  # an object-store lease lost meanwhile: another run may own the ledger now
    write_state(cfg.path("state"), LEDGER, {"files": files})
