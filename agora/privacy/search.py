"""Searching the warehouse and serving for pseudonyms: before and after an erasure's rebuild.

Pseudonyms are 64 lowercase hex characters, checked (`hex_list`) before they are inlined
into SQL.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from agora.config import AgoraConfig
from agora.privacy.errors import PrivacyError


def hex_list(pseudonyms: set[str]) -> str:
    """A SQL list literal of pseudonyms; they are 64 hex characters, checked here, so safe to inline."""
    for p in pseudonyms:
        if not re.fullmatch(r"[0-9a-f]{64}", p):
            raise PrivacyError("refusing a pseudonym that is not 64 lowercase hex characters")
    return ", ".join(f"'{p}'" for p in sorted(pseudonyms))


def staging_counts(path: str, pseudonyms: set[str]) -> Counter:
    """Rows per pseudonym in the warehouse's staging layer (the envelope-level staging relations)."""
    import duckdb

    counts: Counter = Counter()
    if not pseudonyms or not os.path.exists(path):
        return counts
    con = duckdb.connect(path, read_only=True)
    try:
        rels = con.execute(
            "select table_schema, table_name from information_schema.columns "
            "where table_schema like '%staging%' and column_name in ('actor', 'record_id') "
            "group by 1, 2 having count(*) = 2"
        ).fetchall()
        for schema, table in rels:
            rows = con.execute(
                f'select actor, count(*) from "{schema}"."{table}" '  # noqa: S608 - identifiers from the catalog
                f"where actor in ({hex_list(pseudonyms)}) group by actor"
            ).fetchall()
            for actor, n in rows:
                counts[actor] += n
    finally:
        con.close()
    return counts


def rows_mentioning(path: str, pseudonyms: set[str]) -> int:
    """Rows of any stored table, in any schema, with a text column containing one of the pseudonyms.

    Views are skipped: they store nothing (staging views read landing, searched separately).
    """
    import duckdb

    if not pseudonyms or not os.path.exists(path):
        return 0
    pattern = "|".join(sorted(pseudonyms))
    hex_list(pseudonyms)
    con = duckdb.connect(path, read_only=True)
    total = 0
    try:
        cols = con.execute(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns as c "
            "inner join information_schema.tables as t on t.table_catalog = c.table_catalog "
            "and t.table_schema = c.table_schema and t.table_name = c.table_name "
            "where t.table_type = 'BASE TABLE' and c.table_catalog = current_database() "
            "and (c.data_type = 'VARCHAR' or c.data_type like 'VARCHAR[]%') order by 1, 2"
        ).fetchall()
        by_table: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in cols:
            by_table.setdefault((schema, table), []).append(column)
        for (schema, table), columns in by_table.items():
            cond = " or ".join(f"regexp_matches(cast(\"{c}\" as varchar), '{pattern}')" for c in columns)
            total += con.execute(f'select count(*) from "{schema}"."{table}" where {cond}').fetchone()[0]  # noqa: S608
    finally:
        con.close()
    return total


_PG_STAGING_RELATIONS = (
    "select table_schema, table_name from information_schema.columns "
    "where table_schema like '%staging%' and column_name in ('actor', 'record_id') "
    "group by 1, 2 having count(*) = 2"
)


def pg_staging_counts(conn: Any, pseudonyms: set[str]) -> Counter:
    """`staging_counts` on the PostgreSQL warehouse (dbt target postgres)."""
    counts: Counter = Counter()
    if not pseudonyms:
        return counts
    with conn.cursor() as cur:
        cur.execute(_PG_STAGING_RELATIONS)
        for schema, table in cur.fetchall():
            cur.execute(
                f'select actor, count(*) from "{schema}"."{table}" '  # noqa: S608 - identifiers from the catalog
                f"where actor in ({hex_list(pseudonyms)}) group by actor"
            )
            for actor, n in cur.fetchall():
                counts[actor] += n
    return counts


def pg_rows_mentioning(conn: Any, pseudonyms: set[str], schema: str | None = None) -> int:
    """`rows_mentioning` on PostgreSQL: stored tables of every user schema (or of `schema` only).

    Text, varchar and their arrays are searched; landing.events (the warehouse's copy of the
    landing zone) is one of them.
    """
    if not pseudonyms:
        return 0
    pattern = "|".join(sorted(pseudonyms))
    hex_list(pseudonyms)
    total = 0
    with conn.cursor() as cur:
        cur.execute(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns as c "
            "inner join information_schema.tables as t on t.table_schema = c.table_schema "
            "and t.table_name = c.table_name "
            "where t.table_type = 'BASE TABLE' "
            "and c.table_schema not in ('pg_catalog', 'information_schema') and c.table_schema not like 'pg_toast%%' "
            "and (%s is null or c.table_schema = %s) "
            "and c.udt_name in ('text', 'varchar', 'bpchar', '_text', '_varchar') order by 1, 2",
            [schema, schema],
        )
        by_table: dict[tuple[str, str], list[str]] = {}
        for sch, table, column in cur.fetchall():
            by_table.setdefault((sch, table), []).append(column)
        for (sch, table), columns in by_table.items():
            cond = " or ".join(f"cast(\"{c}\" as text) ~ '{pattern}'" for c in columns)
            cur.execute(f'select count(*) from "{sch}"."{table}" where {cond}')  # noqa: S608
            total += cur.fetchone()[0]
    return total


@contextlib.contextmanager
def pg_warehouse(cfg: AgoraConfig) -> Iterator[Any]:
    from agora.pg_landing import PgSettings

    conn = PgSettings.for_config(cfg).connect()
    try:
        conn.set_session(readonly=True, autocommit=True)
        yield conn
    finally:
        conn.close()


def serving_rows_mentioning(cfg: AgoraConfig, pseudonyms: set[str]) -> int:
    """Rows of the published serving database holding one of the pseudonyms (DuckDB file or PostgreSQL schema)."""
    if cfg.serving.kind == "postgres":
        from agora.publish_pg import connect

        conn = connect(cfg.serving, application_name="agora-privacy")
        try:
            conn.set_session(readonly=True, autocommit=True)
            return pg_rows_mentioning(conn, pseudonyms, cfg.serving.schema_name)
        finally:
            conn.close()
    serving = serving_path(cfg)
    return rows_mentioning(serving, pseudonyms) if serving else 0


def serving_path(cfg: AgoraConfig) -> str | None:
    try:
        from agora.publish import serving_path
    except ImportError:
        return None
    return str(serving_path(cfg))
