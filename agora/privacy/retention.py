"""Retention: landing and quarantine partitions older than ``retention_days`` are deleted."""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsspec

from agora import locks
from agora.config import AgoraConfig
from agora.privacy.audit import FILE_LAYERS, append_audit, has_pending, load_journal, save_journal, utc_now
from agora.privacy.errors import PrivacyInputError
from agora.privacy.rebuild import Completion, complete_locked

log = logging.getLogger("agora.privacy")


# Any year width: partitions written before names were zero-padded say `dt=1-01-01`.
_DT_DIR = re.compile(r"^dt=(\d{1,4})-(\d{1,2})-(\d{1,2})$")


@dataclass
class PurgeResult:
    as_of: str
    cutoff: str
    partitions_removed: dict[str, int] = field(default_factory=dict)
    rows_removed: dict[str, int] = field(default_factory=dict)
    completion: Completion | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_day(value: date | datetime | str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PrivacyInputError(f"as-of date {value!r} is not an ISO date (YYYY-MM-DD)") from None
    return _as_day(dt)


def _old_partitions(root: str, cutoff: date) -> Iterator[str]:
    """`<root>/<source>/dt=YYYY-MM-DD` directories whose day is before `cutoff`.

    Every ``dt=`` directory found is judged, whatever the width of its year (old unpadded
    names included); one whose name is not a date is reported, never silently kept.
    """
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        return
    for d in sorted(fs.glob(posixpath.join(path, "*", "dt=*"))):
        if not fs.isdir(d):
            continue
        m = _DT_DIR.match(posixpath.basename(d))
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
        except ValueError:
            day = None
        if day is None:
            log.warning("retention: %s is not a dt=YYYY-MM-DD partition; left for an operator", d)
        elif day < cutoff:
            yield d


def _rows_in(fs: Any, directory: str) -> int:
    import pyarrow.parquet as pq

    rows = 0
    for p in fs.find(directory):
        if p.endswith(".parquet"):
            with fs.open(p, "rb") as f:
                rows += pq.ParquetFile(f).metadata.num_rows
    return rows


def purge_retention(
    cfg: AgoraConfig,
    as_of: date | datetime | str | None = None,
    *,
    rebuild: bool = True,
    now: datetime | None = None,
) -> PurgeResult:
    """Delete landing and quarantine partitions older than `retention_days` before `as_of`.

    `as_of` is the run's logical date (the DAG passes its data interval end), never the
    wall clock, so a rerun for the same date removes the same partitions. A partition is
    kept while its day is within `retention_days` of `as_of`.
    """
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        return _purge_locked(cfg, as_of, rebuild=rebuild, now=now)


def _purge_locked(
    cfg: AgoraConfig, as_of: date | datetime | str | None, *, rebuild: bool, now: datetime | None
) -> PurgeResult:
    day = _as_day(as_of)
    cutoff = day - timedelta(days=cfg.privacy.retention_days)
    result = PurgeResult(as_of=day.isoformat(), cutoff=cutoff.isoformat())
    with locks.hold(cfg.path("state"), locks.LANDING):
        for layer in FILE_LAYERS:
            root = cfg.path(layer)
            fs, _ = fsspec.core.url_to_fs(root)
            parts = rows = 0
            for d in list(_old_partitions(root, cutoff)):
                rows += _rows_in(fs, d)
                fs.rm(d, recursive=True)
                parts += 1
            result.partitions_removed[layer] = parts
            result.rows_removed[layer] = rows
    now = now or utc_now()
    entry = {
        "event": "retention",
        "as_of": result.as_of,
        "cutoff": result.cutoff,
        "retention_days": cfg.privacy.retention_days,
        "partitions_removed": result.partitions_removed,
        "rows_removed": result.rows_removed,
    }
    log.info(
        "retention (%d days, as of %s): removed partitions before %s: %s",
        cfg.privacy.retention_days,
        result.as_of,
        result.cutoff,
        ", ".join(f"{k} {result.partitions_removed[k]} ({result.rows_removed[k]} rows)" for k in result.rows_removed),
    )
    if any(result.partitions_removed.values()):
        journal = load_journal(cfg)
        journal["entries"].append(entry)  # completed once the warehouse no longer holds them
        save_journal(cfg, journal)
    else:
        append_audit(cfg, [{**entry, "status": "completed", "completed_at": now.isoformat()}])
    if rebuild and has_pending(cfg):
        result.completion = complete_locked(cfg)
    return result
