"""Completing journaled work: scrub files, rebuild the warehouse afresh, verify, publish, audit."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from agora import locks
from agora.config import AgoraConfig
from agora.privacy import search
from agora.privacy.audit import FILE_LAYERS, append_audit, load_journal, save_journal, utc_now, zero_layers
from agora.privacy.errors import PrivacyError
from agora.privacy.scrub import clear_reason_ids, scrub_files
from agora.tombstones import load_tombstones

log = logging.getLogger("agora.privacy")


@dataclass
class Completion:
    rebuilt: bool = False
    requests_completed: int = 0
    retention_completed: int = 0
    rows_removed: dict[str, int] = field(default_factory=zero_layers)
    links_unset: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILE_LAYERS, 0))
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def complete_pending(cfg: AgoraConfig, *, now: datetime | None = None) -> Completion:
    """Finish journaled erasures and purges: scrub files, rebuild, verify, publish, audit.

    Order matters: staging is counted before the files change (staging views read landing);
    the warehouse is rebuilt from scratch into a new file; the mart contract must pass
    before serving is replaced; and every layer is searched for the erased pseudonyms
    before the audit says "completed". Any failure leaves the journal for the next run.
    Under the ``privacy`` lock; the scrub also under the ``landing`` lock (agora.locks).
    """
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        return complete_locked(cfg, now=now)


def complete_locked(cfg: AgoraConfig, *, now: datetime | None = None) -> Completion:
    from agora import pipeline
    from agora.landing import landing_files
    from agora.warehouse import dbt_target, spark_dir, warehouse_path

    started = time.monotonic()
    journal = load_journal(cfg)
    result = Completion()
    if not journal["entries"]:
        return result
    erasures = [e for e in journal["entries"] if e["event"] == "request"]
    erased = {p for e in erasures for p in e["pseudonyms"]}
    on_postgres = dbt_target(cfg=cfg) == "postgres"
    on_spark = dbt_target(cfg=cfg) == "spark"
    wh = warehouse_path(cfg)

    def staging_counts() -> Counter:
        if on_postgres:
            with search.pg_warehouse(cfg) as conn:
                return search.pg_staging_counts(conn, erased)
        if on_spark:
            from agora import spark_marts

            return Counter(spark_marts.staging_counts(spark_dir(cfg), erased))
        return search.staging_counts(wh, erased)

    def warehouse_rows() -> int:
        if on_postgres:
            with search.pg_warehouse(cfg) as conn:
                return search.pg_rows_mentioning(conn, erased)
        if on_spark:
            # Every file under Spark's warehouse directory, not only the tables it lists.
            from agora import spark_marts

            return spark_marts.rows_mentioning(spark_dir(cfg), erased) + search.rows_mentioning(wh, erased)
        return search.rows_mentioning(wh, erased)

    if erased:
        counts = staging_counts()
        for e in erasures:
            e["progress"].setdefault("warehouse_before", sum(counts[p] for p in e["pseudonyms"]))
        save_journal(cfg, journal)
        # Under the landing lock: no extract writes between this scrub and the tombstones
        # it re-reads (they were added before the journal entry, so it drops these accounts).
        with locks.hold(cfg.path("state"), locks.LANDING):
            tombstones = load_tombstones(cfg.path("state"))
            for layer in FILE_LAYERS:
                removed, unset, files = scrub_files(
                    cfg.path(layer), erased, also=tombstones, clear_unattributed=layer == "quarantine"
                )
                for e in erasures:
                    prog = e["progress"]
                    prog[layer] = prog.get(layer, 0) + sum(removed[p] for p in e["pseudonyms"])
                    prog[f"{layer}_links"] = prog.get(f"{layer}_links", 0) + sum(unset[p] for p in e["pseudonyms"])
                log.info(
                    "privacy: %s: %d rows removed, %d links unset, %d files rewritten",
                    layer,
                    sum(removed.values()),
                    sum(unset.values()),
                    files,
                )
            cleared = clear_reason_ids(cfg.path("quarantine"))
            if cleared:
                log.info("privacy: quarantine: sample record ids cleared from %d reason files", cleared)
        save_journal(cfg, journal)

    if not on_postgres:
        _remove_warehouse_file(wh)
    if on_spark and "://" not in spark_dir(cfg):
        # Tables, files of dropped tables and the metastore: the full refresh recreates them.
        shutil.rmtree(spark_dir(cfg), ignore_errors=True)
    # On PostgreSQL the full refresh below replaces every table (landing.events included):
    # dropped tables' files are unlinked at commit; WAL and backups age out (docs/privacy.md).
    if landing_files(cfg.path("landing")):
        try:
            pipeline.transform(cfg, full_refresh=True)
        except Exception as e:
            raise PrivacyError(f"rebuild after privacy changes failed (will be retried): {e}") from e
        result.rebuilt = True
    else:
        # Nothing left to build from: the warehouse is gone and serving keeps its aggregates.
        # (A PostgreSQL warehouse is not dropped: the check below fails if it still holds them.)
        log.warning(
            "privacy: no landing data left; %s, serving left as last published",
            "PostgreSQL warehouse left as is" if on_postgres else "warehouse removed",
        )

    after: Counter = Counter()
    if erased:
        q_removed, _, _ = scrub_files(cfg.path("quarantine"), erased, dry_run=True, clear_unattributed=True)
        left = {
            "landing": sum(scrub_files(cfg.path("landing"), erased, dry_run=True)[0].values()),
            "quarantine": sum(q_removed.values()) + clear_reason_ids(cfg.path("quarantine"), dry_run=True),
            "warehouse": warehouse_rows(),
            "serving": search.serving_rows_mentioning(cfg, erased),
        }
        if any(left.values()):
            raise PrivacyError(
                "erased pseudonyms still found after the rebuild: "
                + ", ".join(f"{k} {v} rows" for k, v in left.items() if v)
            )
        after = staging_counts()

    now = now or utc_now()
    entries = []
    for e in journal["entries"]:
        e = dict(e)
        mine = e.pop("pseudonyms", [])
        prog = e.pop("progress", {})
        if e["event"] == "request":
            before = prog.get("warehouse_before", 0)
            e["rows_removed"] = {
                "landing": prog.get("landing", 0),
                "quarantine": prog.get("quarantine", 0),
                "warehouse": before - sum(after[p] for p in mine),
                "serving": 0,  # serving holds aggregates only; checked above to hold no pseudonym
            }
            e["links_unset"] = {"landing": prog.get("landing_links", 0), "quarantine": prog.get("quarantine_links", 0)}
            result.requests_completed += 1
        else:
            result.retention_completed += 1
        e.update(status="completed", completed_at=now.isoformat(), warehouse_rebuilt=result.rebuilt)
        for layer, n in (e.get("rows_removed") or {}).items():
            result.rows_removed[layer] = result.rows_removed.get(layer, 0) + n
        for layer, n in (e.get("links_unset") or {}).items():
            result.links_unset[layer] = result.links_unset.get(layer, 0) + n
        entries.append(e)
    append_audit(cfg, entries)
    journal["entries"] = []
    save_journal(cfg, journal)
    result.seconds = round(time.monotonic() - started, 2)
    log.info(
        "privacy: completed %d erasures and %d retention purges in %.1f s; rows removed %s",
        result.requests_completed,
        result.retention_completed,
        result.seconds,
        result.rows_removed,
    )
    return result


def _remove_warehouse_file(path: str) -> None:
    """DuckDB keeps dropped rows in the file's free blocks: an erasure rebuilds into a new file."""
    for p in (path, f"{path}.wal"):
        if os.path.exists(p):
            os.remove(p)
