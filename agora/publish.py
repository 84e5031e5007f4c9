"""Publish the marts — only the marts — to the database Superset reads.

Superset opens ``serving.duckdb`` read-only. DuckDB lets one process write a file, and a
writer on the file Superset reads would break its queries, so the serving file is never
written in place: the marts are copied into ``serving.duckdb.<pid>-<random>.new``, that
file is closed, and ``os.replace`` swaps it in. Publishes take ``serving.duckdb.lock``
first, so two of them (a DAG run and a CLI run, two privacy rebuilds) serialise. Readers that already hold the old file keep reading it
(the old inode lives until they close); readers that open afterwards see the new one. A
failure anywhere before the swap removes the ``.new`` file and leaves the previous serving
database as it was.

Only base tables of schema ``marts`` are copied — no staging, no sources, no views (a
view would still read landing Parquet, and views are not what the mart contract checked).
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agora.config import AgoraConfig, ConfigError

log = logging.getLogger("agora.publish")

WAREHOUSE_FILE = "agora.duckdb"
SERVING_FILE = "serving.duckdb"
MARTS_SCHEMA = "marts"
LOCK_TIMEOUT = 1800.0  # seconds a publish waits for another one to finish


class PublishError(RuntimeError):
    """Nothing was published; the previous serving database is untouched."""


@dataclass
class PublishResult:
    serving_path: str
    tables: dict[str, int] = field(default_factory=dict)  # mart -> rows
    skipped_views: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "serving_path": self.serving_path,
            "tables": dict(self.tables),
            "skipped_views": list(self.skipped_views),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


def serving_path(cfg: AgoraConfig) -> Path:
    """`<paths.warehouse>/serving.duckdb`, the file Superset opens read-only."""
    return Path(_local_dir(cfg)) / SERVING_FILE


def _local_dir(cfg: AgoraConfig) -> str:
    directory = cfg.path("warehouse")
    if "://" in directory:
        # os.replace is what makes the swap atomic: it needs a local filesystem.
        raise PublishError(f"paths.warehouse: publishing needs a local directory, got {directory}")
    return directory


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _remove(path: str) -> None:
    for p in (path, f"{path}.wal"):
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_marts(source: str, target: str, result: PublishResult, released: dict | None = None) -> None:
    """Copy every base table of the warehouse's marts; with `released` (differential
    privacy, agora.release) copy only their shape and insert the released rows instead."""
    import duckdb

    con = duckdb.connect(target)
    try:
        try:
            con.execute(f"attach {_quote_literal(source)} as warehouse (read_only)")
        except duckdb.Error as e:
            raise PublishError(f"publish: cannot open the warehouse read-only ({e})") from e
        try:
            objects = con.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_catalog = 'warehouse' and table_schema = ? order by table_name",
                [MARTS_SCHEMA],
            ).fetchall()
            tables = [name for name, kind in objects if kind == "BASE TABLE"]
            result.skipped_views = [name for name, kind in objects if kind != "BASE TABLE"]
            if not tables:
                raise PublishError(f"publish: no tables in schema {MARTS_SCHEMA} of {source}")
            con.execute(f"create schema {MARTS_SCHEMA}")
            for name in tables:
                rel = f"{MARTS_SCHEMA}.{_quote_ident(name)}"
                if released is None:
                    con.execute(f"create table {rel} as select * from warehouse.{rel}")  # noqa: S608
                else:
                    # Not one exact row is copied: the file must never hold them, not even in free blocks.
                    con.execute(f"create table {rel} as select * from warehouse.{rel} limit 0")  # noqa: S608
                    cols, rows = released[name]
                    if rows:
                        marks = ", ".join("?" for _ in cols)
                        con.executemany(f"insert into {rel} values ({marks})", rows)  # noqa: S608
                result.tables[name] = con.execute(f"select count(*) from {rel}").fetchone()[0]  # noqa: S608
        finally:
            con.execute("detach warehouse")
        con.execute("checkpoint")
    finally:
        con.close()


@contextmanager
def publish_lock(target: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """One publish at a time per serving file: an exclusive lock on `<serving>.lock`.

    A second publish waits for the first (up to `timeout` seconds, then PublishError) and
    then copies the warehouse as it is by then, so neither is lost and the swap order is
    the order the locks were taken. The lock is released when its holder exits or dies.
    """
    import fcntl

    fd = os.open(f"{target}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PublishError(
                        f"publish: another publish has held {target}.lock for {timeout:.0f} s; nothing published"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


def _released(cfg: AgoraConfig, warehouse_file: str) -> dict | None:
    """With differential privacy on: the released tables to publish instead of the exact marts."""
    if cfg.privacy.differential_privacy is None:
        return None
    from agora.publish_pg import read_warehouse_marts
    from agora.release import released_marts

    return released_marts(cfg, read_warehouse_marts(cfg, warehouse_file))


def publish(cfg: AgoraConfig) -> PublishResult:
    """Copy the marts of `<warehouse>/agora.duckdb` into a fresh serving.duckdb, swapped atomically.

    With `serving: {kind: postgres}` in agora.yml they go to a PostgreSQL schema instead
    (agora.publish_pg), swapped in one transaction.
    """
    if cfg.serving.kind == "postgres":
        from agora.publish_pg import publish_postgres

        return publish_postgres(cfg)
    from agora.warehouse import dbt_target, warehouse_path

    if dbt_target(cfg=cfg) == "postgres":
        # agora.yml refuses this pair; AGORA_DBT_TARGET=postgres can still ask for it.
        raise ConfigError(
            "serving.kind: a PostgreSQL warehouse publishes to PostgreSQL serving only "
            "(set serving: {kind: postgres, ...})"
        )
    started = time.monotonic()
    directory = _local_dir(cfg)
    # agora.duckdb, or on Spark the copy of its marts (agora.warehouse.warehouse_path).
    source = warehouse_path(cfg)
    target = str(serving_path(cfg))
    if not os.path.exists(source):
        raise PublishError(f"publish: warehouse {source} does not exist (run the build first)")
    result = PublishResult(serving_path=target)
    with publish_lock(target):
        for leftover in glob.glob(glob.escape(target) + ".*.new"):
            _remove(leftover)  # left by a publish that crashed (none runs now: we hold the lock)
        staging = f"{target}.{os.getpid()}-{secrets.token_hex(4)}.new"
        try:
            _copy_marts(source, staging, result, _released(cfg, source))
            _fsync(staging)
            os.replace(staging, target)
        except BaseException:
            _remove(staging)
            raise
        _fsync(directory)  # the rename itself survives a power cut
    result.bytes = os.path.getsize(target)
    result.seconds = time.monotonic() - started
    log.info(
        "published %d marts (%s rows) to %s in %.2fs",
        len(result.tables),
        sum(result.tables.values()),
        target,
        result.seconds,
    )
    if result.skipped_views:
        log.warning("not published (views in schema %s): %s", MARTS_SCHEMA, ", ".join(result.skipped_views))
    return result
