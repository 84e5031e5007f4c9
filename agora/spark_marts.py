"""The marts a Spark build wrote, copied into a DuckDB file the mart contract and publish read.

Spark keeps each table as Parquet files under its warehouse directory
(`<spark.sql.warehouse.dir>/marts.db/<mart>/part-*.parquet`). Reading those files needs no
Spark process: DuckDB reads them in place, so the mart contract (GX on DuckDB), publish
(DuckDB file or PostgreSQL serving) and the privacy checks work on a Spark warehouse exactly
as on a DuckDB one, and the embedded metastore stays free for the next dbt run. Only the
schema `marts` is copied: nothing else is ever published.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from agora.config import AgoraConfig

log = logging.getLogger("agora.spark_marts")

MARTS_FILE = "spark_marts.duckdb"
MARTS_SCHEMA = "marts"


class SparkMartsError(RuntimeError):
    """The Spark warehouse holds no marts to read."""


def table_dirs(spark_dir: str, schema: str) -> dict[str, str]:
    """`{table: directory}` of the Spark tables of `schema` (managed tables: `<schema>.db/<table>`)."""
    base = os.path.join(spark_dir, f"{schema}.db")
    if not os.path.isdir(base):
        return {}
    return {
        name: os.path.join(base, name)
        for name in sorted(os.listdir(base))
        if os.path.isdir(os.path.join(base, name)) and not name.startswith((".", "_")) and "__dbt" not in name
    }


def _parquet_glob(directory: str) -> str:
    # Partitioned tables nest files in key=value directories.
    return os.path.join(directory, "**", "*.parquet")


def export_marts(cfg: AgoraConfig) -> Path:
    """Copy every mart of the Spark warehouse into `<paths.warehouse>/spark_marts.duckdb` (new file, swapped in)."""
    import duckdb

    from agora.warehouse import spark_dir

    source = spark_dir(cfg)
    if "://" in source:
        raise SparkMartsError(
            f"warehouse.warehouse_dir: reading marts from {source} needs a local path or a mounted filesystem"
        )
    marts = table_dirs(source, MARTS_SCHEMA)
    if not marts:
        raise SparkMartsError(f"no marts under {source}/{MARTS_SCHEMA}.db: did the Spark build run?")
    target = Path(cfg.path("warehouse")) / MARTS_FILE
    staging = target.with_name(target.name + ".new")
    staging.unlink(missing_ok=True)
    started = time.monotonic()
    con = duckdb.connect(str(staging))
    try:
        con.execute(f"create schema {MARTS_SCHEMA}")
        for name, directory in marts.items():
            files = _parquet_glob(directory)
            con.execute(
                f'create table {MARTS_SCHEMA}."{name}" as select * from read_parquet(?)',  # noqa: S608 - name from the directory listing
                [files],
            )
    finally:
        con.close()
    os.replace(staging, target)
    log.info("copied %d Spark marts into %s in %.1f s", len(marts), target, time.monotonic() - started)
    return target


# -- privacy checks on the Spark warehouse directory ---------------------------------------------


def _files(spark_dir: str) -> list[str]:
    return [os.path.join(d, f) for d, _, names in os.walk(spark_dir) for f in names]


def staging_counts(spark_dir: str, pseudonyms: set[str]) -> dict[str, int]:
    """Rows per pseudonym in the staging table of landed records (the view models store nothing)."""
    import duckdb

    counts: dict[str, int] = {}
    table = table_dirs(spark_dir, "staging").get("stg_landing__events")
    if not pseudonyms or table is None or not any(f.endswith(".parquet") for f in _files(table)):
        return counts
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select actor, count(*) from read_parquet(?) where list_contains(?, actor) group by actor",
            [_parquet_glob(table), sorted(pseudonyms)],
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def rows_mentioning(spark_dir: str, pseudonyms: set[str]) -> int:
    """Rows or files under the Spark warehouse directory that hold one of the pseudonyms.

    Every Parquet file is read (tables, and any file a dropped table left behind), every
    string column searched; every other file (metastore, logs) is searched byte for byte.
    """
    import duckdb

    if not pseudonyms or not os.path.isdir(spark_dir):
        return 0
    pattern = "|".join(sorted(p for p in pseudonyms if p.isalnum()))
    total = 0
    con = duckdb.connect()
    try:
        for path in _files(spark_dir):
            if path.endswith(".parquet"):
                columns = con.execute("describe select * from read_parquet(?)", [path]).fetchall()
                text = [c[0] for c in columns if c[1] in ("VARCHAR", "VARCHAR[]")]
                if text:
                    cond = " or ".join(f'regexp_matches(cast("{c}" as varchar), ?)' for c in text)
                    total += con.execute(
                        f"select count(*) from read_parquet(?) where {cond}",  # noqa: S608 - names from the file's schema
                        [path, *([pattern] * len(text))],
                    ).fetchone()[0]
            else:
                with open(path, "rb") as f:
                    data = f.read()
                total += sum(data.count(p.encode()) for p in pseudonyms)
    finally:
        con.close()
    return total
