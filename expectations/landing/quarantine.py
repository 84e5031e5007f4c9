"""Moving a file that failed the contract out of landing, with the reason beside it.

On failure every file holding an offending row is moved to
``<quarantine>/<source>/dt=<day>/contract/<file>`` beside ``<file>.reason.json``
(expectation, row count, a few record ids — never actors or text), so the next run is
not blocked and nothing is lost. The ``contract/`` folder keeps these envelope files
apart from the extract rejects (``<quarantine>/<source>/dt=<day>/<run_id>.parquet``,
another schema), which they would otherwise overwrite when the names collide.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from datetime import UTC, datetime
from typing import Any

import fsspec

from expectations.landing.files import LandingFile


def quarantine(
    fs: fsspec.AbstractFileSystem,
    quarantine_root: str,
    file: LandingFile,
    problems: list[dict[str, Any]],
) -> str:
    """Move `file` under `quarantine_root` beside its ``reason.json``; returns where it went."""
    source, day_dir, name = file.rel.split("/", 2) if file.rel.count("/") >= 2 else ("unknown", "dt=unknown", file.rel)
    qfs, qroot = fsspec.core.url_to_fs(quarantine_root)
    target_dir = posixpath.join(qroot, source, day_dir, "contract")
    qfs.makedirs(target_dir, exist_ok=True)
    target = posixpath.join(target_dir, name)
    if qfs.exists(target):  # a previous quarantine of the same run: keep both
        stem = name.removesuffix(".parquet")
        target = posixpath.join(target_dir, f"{stem}.{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.parquet")
    reason = {
        "landing_file": file.rel,
        "quarantined_at": datetime.now(UTC).isoformat(),
        "rows": file.rows,
        "failures": problems,
        "recover": "fix the connector or the team file, then rerun the window (or move the file back).",
    }
    with qfs.open(f"{target}.reason.json", "w") as f:
        json.dump(reason, f, indent=2, sort_keys=True)
    if qfs is fs or type(qfs) is type(fs):
        fs.mv(file.url, target)
    else:  # different filesystems: copy then delete
        with fs.open(file.url, "rb") as src, qfs.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        fs.rm(file.url)
    return target
