"""Load the landing zone into PostgreSQL table `landing.events` for the postgres dbt target.

DuckDB reads the landing Parquet in place; PostgreSQL cannot, so before a dbt build on
the postgres target the landing zone is copied into one table with the envelope's
columns (team sources' `title`/`text` included, null elsewhere) plus the file each row
came from. Loads are incremental by file, so their cost follows new data, not history:
`landing.files` records which version (fingerprint) of each file the table holds, and
a load copies only new or changed files and deletes the rows of changed or vanished
ones, in one transaction. Only pseudonyms are in the landing zone, so nothing personal
travels beyond what the warehouse holds.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from agora.envelope import TEAM_SCHEMA
from agora.landing import _fs, landing_file_fingerprints

if TYPE_CHECKING:
    from agora.config import AgoraConfig

log = logging.getLogger("agora.pg_landing")

# SQL here (noqa: S608) is built from the module's constant names; values go as parameters.

SCHEMA = "landing"
TABLE = "events"
FILES = "files"  # which landing file versions the table holds
FILE_COLUMN = "landing_file"

_PG_TYPES = {
    pa.string(): "text",
    pa.bool_(): "boolean",
    pa.float64(): "double precision",
    pa.timestamp("us", tz="UTC"): "timestamptz",
    pa.list_(pa.string()): "text[]",
}
COLUMNS = tuple(TEAM_SCHEMA.names)


@dataclass(frozen=True)
class PgSettings:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    sslmode: str = "prefer"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PgSettings:
        """The same AGORA_PG_* variables the dbt profile's postgres target reads."""
        env = os.environ if env is None else env
        return cls(
            host=env.get("AGORA_PG_HOST", "127.0.0.1"),
            port=int(env.get("AGORA_PG_PORT", "5432")),
            user=env.get("AGORA_PG_USER", "agora"),
            password=env.get("AGORA_PG_PASSWORD", ""),
            dbname=env.get("AGORA_PG_DBNAME", "agora"),
            sslmode=env.get("AGORA_PG_SSLMODE", "prefer"),
        )

    @classmethod
    def for_config(cls, cfg: AgoraConfig) -> PgSettings:
        """The PostgreSQL warehouse of a config: its `warehouse` block, else AGORA_PG_* (see dbt_target)."""
        from agora.warehouse import dbt_env

        return cls.from_env({**os.environ, **dbt_env(cfg)})

    @property
    def url(self) -> str:
        """For logs and results: no password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self):
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.dbname,
            sslmode=self.sslmode,
            connect_timeout=10,
            application_name="agora",
        )


@dataclass
class LoadResult:
    """What one load changed: files (re)loaded or removed, rows copied, rows the table holds."""

    files_loaded: int
    files_removed: int
    rows_loaded: int
    rows: int
    seconds: float
    warehouse: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _pg_array_literal(tags: pa.Array) -> pa.Array:
    """list<string> -> PostgreSQL array literal text (`{"a","b \\"c\\""}`), nulls kept."""
    tags = tags.combine_chunks() if isinstance(tags, pa.ChunkedArray) else tags
    offsets = pc.subtract(tags.offsets, tags.offsets[0])  # a sliced array's offsets need not start at 0
    values = pc.replace_substring(pc.replace_substring(tags.flatten(), "\\", "\\\\"), '"', '\\"')
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, quoted, mask=tags.is_null()), ",")
    return pc.binary_join_element_wise("{", joined, "}", "")


def _read_files(fs, root: str, paths: list[str]) -> pa.Table:
    """Landing files conformed to the team schema (envelope + title/text), tagged with their file.

    DuckDB reads the file list in parallel (~3x faster than pyarrow file by file on
    thousands of small files), through the landing's fsspec filesystem when it is not
    local; the empty row set supplies title/text when no team file is among them, as in
    the dbt macro `latest_landed_copies`.
    """
    if not paths:
        return TEAM_SCHEMA.append(pa.field(FILE_COLUMN, pa.string())).empty_table()
    import duckdb

    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    # No extension is ever fetched at run time: object stores go through the registered fsspec filesystem.
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        if prefix:
            con.register_filesystem(fs)
        con.execute("set TimeZone = 'UTC'")
        table = con.sql(
            f"""
            select {", ".join(COLUMNS)}, filename from (
                select * from (select cast(null as varchar) as title, cast(null as varchar) as text limit 0)
                union all by name
                select * from read_parquet($paths, union_by_name = true, filename = true, hive_partitioning = false)
            )
            """,  # noqa: S608
            params={"paths": [prefix + p for p in paths]},
        ).to_arrow_table()
    finally:
        con.close()
    names = pc.utf8_slice_codeunits(table["filename"], len(prefix + root) + 1)
    return table.drop_columns(["filename"]).cast(TEAM_SCHEMA).append_column(FILE_COLUMN, names)


def _relative(root: str, path: str) -> str:
    """`<source>/dt=<day>/<run_id>.parquet`: the same key wherever the landing root is mounted."""
    return path[len(root) :].lstrip("/")


def _csv(table: pa.Table) -> io.BytesIO:
    """COPY input in CSV (C-speed in pyarrow): null is an empty field, "" an empty string."""
    table = table.set_column(table.schema.get_field_index("tags"), "tags", _pg_array_literal(table["tags"]))
    buffer = io.BytesIO()
    csv.write_csv(table, buffer, csv.WriteOptions(include_header=False))
    buffer.seek(0)
    return buffer


def _create(cur) -> None:
    columns_sql = ", ".join(f"{c} {_PG_TYPES[TEAM_SCHEMA.field(c).type]}" for c in COLUMNS)
    cur.execute(f"create schema if not exists {SCHEMA}")
    cur.execute(f"drop table if exists {SCHEMA}.{TABLE}")
    cur.execute(f"drop table if exists {SCHEMA}.{FILES}")
    cur.execute(f"create table {SCHEMA}.{TABLE} ({columns_sql}, {FILE_COLUMN} text not null)")
    cur.execute(f"create index on {SCHEMA}.{TABLE} ({FILE_COLUMN})")
    cur.execute(
        f"create table {SCHEMA}.{FILES} ({FILE_COLUMN} text primary key, fingerprint text not null, "
        "row_count bigint not null, loaded_at timestamptz not null default now())"
    )


def _loaded(cur) -> dict[str, str] | None:
    """Files already in the table with their fingerprints; None when the tables are missing or old."""
    cur.execute(
        "select count(*) from information_schema.columns where table_schema = %s and "
        "((table_name = %s and column_name = %s) or (table_name = %s and column_name = 'fingerprint'))",
        (SCHEMA, TABLE, FILE_COLUMN, FILES),
    )
    if cur.fetchone()[0] != 2:
        return None
    cur.execute(f"select {FILE_COLUMN}, fingerprint from {SCHEMA}.{FILES}")  # noqa: S608
    return dict(cur.fetchall())


def load_landing(landing_root: str, settings: PgSettings | None = None, *, full: bool = False) -> LoadResult:
    """Bring `landing.events` up to date with the landing zone, file by file.

    Only files that are new or changed since the last load (by fingerprint: size, mtime,
    inode / ETag) are copied; rows of changed or vanished files (a rerun, an erasure
    rewrite, a quarantined file) are deleted first. All in one transaction, so readers
    see the previous state or the new one. `full` (or a missing/old table) reloads all
    into a new table: the old one is dropped, not deleted from, so its rows leave the
    disk at commit instead of lingering as dead tuples (what an erasure's rebuild needs).
    """
    settings = settings or PgSettings.from_env()
    started = time.time()
    fs, root = _fs(landing_root)
    root = root.rstrip("/")
    present = {_relative(root, p): (p, fp) for p, fp in landing_file_fingerprints(landing_root).items()}
    con = settings.connect()
    try:
        with con:  # one transaction
            with con.cursor() as cur:
                cur.execute("select pg_advisory_xact_lock(hashtext('agora.landing'))")  # one loader at a time
                loaded = None if full else _loaded(cur)
                if loaded is None:
                    _create(cur)
                    loaded = {}
                stale = sorted(k for k, fp in loaded.items() if present.get(k, (None, None))[1] != fp)
                fresh = sorted(k for k, (_, fp) in present.items() if loaded.get(k) != fp)
                if stale:
                    cur.execute(f"delete from {SCHEMA}.{TABLE} where {FILE_COLUMN} = any(%s)", (stale,))  # noqa: S608
                    cur.execute(f"delete from {SCHEMA}.{FILES} where {FILE_COLUMN} = any(%s)", (stale,))  # noqa: S608
                table = _read_files(fs, root, [present[k][0] for k in fresh])
                if len(table):
                    columns = ", ".join((*COLUMNS, FILE_COLUMN))
                    cur.copy_expert(f"copy {SCHEMA}.{TABLE} ({columns}) from stdin with (format csv)", _csv(table))
                counts = pc.value_counts(table[FILE_COLUMN]).to_pylist() if len(table) else []
                per_file = {c["values"]: c["counts"] for c in counts}
                if fresh:
                    rows = [(k, present[k][1], per_file.get(k, 0)) for k in fresh]
                    cur.executemany(
                        f"insert into {SCHEMA}.{FILES} ({FILE_COLUMN}, fingerprint, row_count) values (%s, %s, %s)",  # noqa: S608
                        rows,
                    )
                cur.execute(f"select count(*) from {SCHEMA}.{TABLE}")  # noqa: S608
                total = cur.fetchone()[0]
    finally:
        con.close()
    result = LoadResult(
        files_loaded=len(fresh),
        files_removed=len(set(stale) - set(fresh)),
        rows_loaded=len(table),
        rows=total,
        seconds=round(time.time() - started, 2),
        warehouse=settings.url,
    )
    log.info(
        "landing -> %s.%s: %d files loaded (%d rows), %d removed, %d rows in all, %.1f s",
        SCHEMA,
        TABLE,
        result.files_loaded,
        result.rows_loaded,
        result.files_removed,
        result.rows,
        result.seconds,
    )
    return result


def scrub_dead_rows(settings: PgSettings) -> None:
    """After a full rebuild: rewrite the planner statistics of the warehouse database.

    A full rebuild replaces every table (`load_landing(full=True)` and dbt's full refresh
    drop the old ones; PostgreSQL truncates a dropped table's files at commit), but
    ANALYZE (autovacuum) has copied frequent column values — pseudonyms among them — into
    `pg_statistic`, whose rows for the dropped tables are then only dead tuples, still in
    its pages. VACUUM FULL writes the catalog anew without them (the database owner may).
    """
    con = settings.connect()
    try:
        con.autocommit = True  # VACUUM cannot run in a transaction
        with con.cursor() as cur:
            cur.execute("vacuum full pg_catalog.pg_statistic")
    finally:
        con.close()
