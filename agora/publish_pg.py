"""Publish the marts to a PostgreSQL schema that Superset reads through a read-only role.

The production counterpart of ``serving.duckdb``. Readers must never see half a publish,
so the marts are first copied into a fresh schema ``<schema>_new`` (its own transaction,
as slow as it needs to be), granted to the reader role, and then swapped in by ONE short
transaction: ``<schema>`` → ``<schema>_old``, ``<schema>_new`` → ``<schema>``, drop the
old one. PostgreSQL DDL is transactional, so a reader sees either the old marts or the
new ones; a failure anywhere before the commit leaves the previous schema published.

Only base tables of the warehouse's ``marts`` schema are copied (what the mart contract
checked), the same rule as the DuckDB publish. The warehouse is the DuckDB file, or the
PostgreSQL database of dbt's `postgres` target (agora.yml ``warehouse: {kind: postgres}``,
or ``AGORA_DBT_TARGET=postgres`` with ``AGORA_PG_*``; see `agora.warehouse.dbt_target`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from agora.config import AgoraConfig, ConfigError, PostgresServing
from agora.publish import LOCK_TIMEOUT, MARTS_SCHEMA, PublishError, PublishResult

log = logging.getLogger("agora.publish")

# DuckDB column type -> PostgreSQL column type; anything else is refused, not guessed.
_TYPES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(39, 0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_type(duckdb_type: str) -> str:
    """The PostgreSQL type for a DuckDB column type (decimals keep precision and scale)."""
    if duckdb_type in _TYPES:
        return _TYPES[duckdb_type]
    m = _DECIMAL.match(duckdb_type)
    if m:
        return f"numeric({m.group(1)}, {m.group(2)})"
    raise PublishError(f"publish: no PostgreSQL type for DuckDB type {duckdb_type}")


def _serving(cfg: AgoraConfig) -> PostgresServing:
    if not isinstance(cfg.serving, PostgresServing):
        raise ConfigError("serving.kind: publishing to PostgreSQL needs `serving: {kind: postgres, ...}`")
    return cfg.serving


def connect(serving: PostgresServing, **overrides: Any):
    """A psycopg2 connection as the publisher; the password comes from its env var only."""
    import psycopg2

    params = {
        "host": serving.host,
        "port": serving.port,
        "dbname": serving.database,
        "user": serving.user,
        "password": serving.password(),
        "sslmode": serving.sslmode,
        "connect_timeout": 10,
        "application_name": "agora-publish",
    }
    params.update(overrides)
    try:
        return psycopg2.connect(**params)
    except psycopg2.OperationalError as e:
        raise PublishError(f"publish: cannot connect to PostgreSQL {serving.host}:{serving.port} ({e})") from e


def serving_url(serving: PostgresServing) -> str:
    """Where the marts went, without the password (for logs and results)."""
    return f"postgresql://{serving.user}@{serving.host}:{serving.port}/{serving.database}#{serving.schema_name}"


Marts = dict[str, tuple[list[tuple[str, str]], list[tuple]]]  # table -> ([(column, pg type)], rows)


def _read_marts_postgres(conn) -> Marts:
    """Every base table of a PostgreSQL warehouse's marts schema (dbt target `postgres`)."""
    with conn.cursor() as cur:
        cur.execute(
            "select table_name from information_schema.tables "
            "where table_schema = %s and table_type = 'BASE TABLE' order by table_name",
            [MARTS_SCHEMA],
        )
        names = [r[0] for r in cur.fetchall()]
        if not names:
            raise PublishError(f"publish: no tables in schema {MARTS_SCHEMA} of the PostgreSQL warehouse")
        marts = {}
        for name in names:
            cur.execute(
                "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute as a "
                "where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum",
                [f"{_ident(MARTS_SCHEMA)}.{_ident(name)}"],
            )
            cols = cur.fetchall()
            cur.execute(f"select * from {_ident(MARTS_SCHEMA)}.{_ident(name)}")  # noqa: S608
            marts[name] = (cols, cur.fetchall())
    return marts


def _read_marts(warehouse_file: str) -> Marts:
    """Every base table of the DuckDB warehouse's marts schema: columns (name, pg type) and rows."""
    import os

    import duckdb

    if not os.path.exists(warehouse_file):
        raise PublishError(f"publish: warehouse {warehouse_file} does not exist (run the build first)")
    con = duckdb.connect(warehouse_file, read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_type = 'BASE TABLE' order by table_name",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        if not names:
            raise PublishError(f"publish: no tables in schema {MARTS_SCHEMA} of {warehouse_file}")
        marts = {}
        for name in names:
            cols = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [MARTS_SCHEMA, name],
            ).fetchall()
            rows = con.execute(f"select * from {MARTS_SCHEMA}.{_ident(name)}").fetchall()  # noqa: S608
            marts[name] = ([(c, pg_type(t)) for c, t in cols], rows)
        return marts
    finally:
        con.close()


def _build_new_schema(conn, new: str, reader: str, marts: dict, result: PublishResult) -> None:
    from psycopg2.extras import execute_values

    with conn, conn.cursor() as cur:
        cur.execute(f"drop schema if exists {_ident(new)} cascade")  # left by a publish that crashed
        cur.execute(f"create schema {_ident(new)}")
        for name, (cols, rows) in marts.items():
            rel = f"{_ident(new)}.{_ident(name)}"
            cur.execute(f"create table {rel} ({', '.join(f'{_ident(c)} {t}' for c, t in cols)})")
            if rows:
                execute_values(cur, f"insert into {rel} values %s", rows, page_size=1000)  # noqa: S608
            result.tables[name] = len(rows)
        # Granted before the swap, so the schema Superset sees is readable the moment it appears.
        cur.execute(f"grant usage on schema {_ident(new)} to {_ident(reader)}")
        cur.execute(f"grant select on all tables in schema {_ident(new)} to {_ident(reader)}")


def _swap(conn, schema: str, new: str, old: str) -> None:
    """The one transaction readers can observe: rename, rename, drop."""
    with conn, conn.cursor() as cur:
        cur.execute("set local lock_timeout = '30s'")  # a long reader query must not stall us forever
        cur.execute(f"drop schema if exists {_ident(old)} cascade")
        cur.execute("select 1 from pg_namespace where nspname = %s", [schema])
        if cur.fetchone():
            cur.execute(f"alter schema {_ident(schema)} rename to {_ident(old)}")
        cur.execute(f"alter schema {_ident(new)} rename to {_ident(schema)}")
        cur.execute(f"drop schema if exists {_ident(old)} cascade")


def _lock(conn, schema: str) -> None:
    """One publish per serving schema at a time (a session lock: released when the connection ends).

    Without it two publishes would drop each other's `<schema>_new` half-way. A second
    publish waits for the first, up to LOCK_TIMEOUT, then fails naming the wait.
    """
    import psycopg2

    try:
        with conn.cursor() as cur:
            cur.execute(f"set lock_timeout = '{int(LOCK_TIMEOUT)}s'")
            cur.execute("select pg_advisory_lock(hashtext(%s))", [f"agora.publish:{schema}"])
            cur.execute("set lock_timeout = 0")
        conn.commit()
    except psycopg2.errors.LockNotAvailable as e:
        raise PublishError(
            f"publish: another publish to schema {schema} has run for {LOCK_TIMEOUT:.0f} s; nothing published"
        ) from e


def read_warehouse_marts(cfg: AgoraConfig, warehouse_file: str | None = None) -> Marts:
    """The marts dbt built: from the PostgreSQL warehouse on target `postgres`, else the DuckDB file."""
    from agora.warehouse import dbt_target, warehouse_path

    if warehouse_file is None and dbt_target(cfg=cfg) == "postgres":
        import psycopg2

        from agora.pg_landing import PgSettings

        settings = PgSettings.for_config(cfg)
        try:
            conn = settings.connect()
        except psycopg2.OperationalError as e:
            raise PublishError(f"publish: cannot connect to the PostgreSQL warehouse {settings.url} ({e})") from e
        try:
            return _read_marts_postgres(conn)
        finally:
            conn.close()
    return _read_marts(warehouse_file or warehouse_path(cfg))


def publish_postgres(cfg: AgoraConfig, warehouse_file: str | None = None) -> PublishResult:
    """Copy the warehouse's marts into `serving.schema`, swapped in one transaction."""
    import psycopg2

    started = time.monotonic()
    serving = _serving(cfg)
    schema = serving.schema_name
    new, old = f"{schema}_new", f"{schema}_old"
    result = PublishResult(serving_path=serving_url(serving))
    conn = connect(serving)
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_roles where rolname = %s", [serving.reader_role])
            if not cur.fetchone():
                raise PublishError(
                    f"serving.reader_role: role {serving.reader_role} does not exist "
                    "(create it: python -m agora.publish_pg provision)"
                )
        conn.rollback()
        _lock(conn, schema)
        # Read under the lock: a publish that waited copies the marts as they are now.
        marts = read_warehouse_marts(cfg, warehouse_file)
        if cfg.privacy.differential_privacy is not None:
            from agora.release import released_marts

            marts = released_marts(cfg, marts)  # exact account-based values never leave the warehouse
        try:
            _build_new_schema(conn, new, serving.reader_role, marts, result)
            _swap(conn, schema, new, old)
        except psycopg2.Error as e:
            raise PublishError(f"publish: PostgreSQL refused the publish, previous marts kept ({e})") from e
    finally:
        conn.close()
    result.seconds = time.monotonic() - started
    log.info(
        "published %d marts (%s rows) to %s in %.2fs",
        len(result.tables),
        sum(result.tables.values()),
        result.serving_path,
        result.seconds,
    )
    return result


def provision(admin_dsn: str, serving: PostgresServing, reader_password: str) -> None:
    """Create the publisher and the read-only reader roles and the serving database (idempotent).

    Run once per deployment by an administrator (compose: the `airflow-init` service), and
    again after creating another database in the cluster. The reader can log in to the
    serving database only, read the published schema and nothing else: no CONNECT
    elsewhere, no TEMP, no CREATE, read-only sessions, owns nothing.
    """
    import psycopg2
    from psycopg2 import sql

    reader, publisher = sql.Identifier(serving.reader_role), sql.Identifier(serving.user)
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            for role, password in ((serving.user, serving.password()), (serving.reader_role, reader_password)):
                cur.execute("select 1 from pg_roles where rolname = %s", [role])
                verb = "alter" if cur.fetchone() else "create"
                cur.execute(
                    sql.SQL(verb + " role {} login password {}").format(sql.Identifier(role), sql.Literal(password))
                )
            cur.execute(sql.SQL("alter role {} nosuperuser nocreatedb nocreaterole noreplication").format(reader))
            cur.execute(sql.SQL("alter role {} set default_transaction_read_only = on").format(reader))
            cur.execute("select 1 from pg_database where datname = %s", [serving.database])
            if not cur.fetchone():
                cur.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(serving.database), publisher))
            _lock_down_databases(cur, serving)
            cur.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(serving.database), reader))
            cur.execute(
                sql.SQL("grant create on database {} to {}").format(sql.Identifier(serving.database), publisher)
            )
    finally:
        conn.close()
    conn = psycopg2.connect(_with_database(admin_dsn, serving.database))
    try:
        with conn, conn.cursor() as cur:
            # New databases let every role use (and before PostgreSQL 15 create in) `public`.
            cur.execute("revoke all on schema public from public")
    finally:
        conn.close()


def _lock_down_databases(cur, serving: PostgresServing) -> None:
    """PUBLIC keeps neither CONNECT nor TEMP on any database of the cluster.

    PostgreSQL grants both to PUBLIC on every new database, so without this the reader
    could open any database (Airflow's metadata included) and create temporary tables.
    Owners and superusers keep their access; any other role that needs a database must be
    granted CONNECT on it explicitly (docs/operations.md).
    """
    from psycopg2 import sql

    cur.execute("select datname from pg_database where datallowconn and not datistemplate order by datname")
    for (name,) in cur.fetchall():
        database = sql.Identifier(name)
        cur.execute(sql.SQL("revoke connect, temporary on database {} from public").format(database))
        if name != serving.database:
            # A grant made directly to the reader (by hand, earlier) goes too.
            cur.execute(
                sql.SQL("revoke all on database {} from {}").format(database, sql.Identifier(serving.reader_role))
            )
    log.info(
        "CONNECT and TEMP revoked from PUBLIC on every database; %s may connect to %s only",
        serving.reader_role,
        serving.database,
    )


def _with_database(dsn: str, database: str) -> str:
    from psycopg2.extensions import make_dsn

    return make_dsn(dsn, dbname=database)


if __name__ == "__main__":
    # `python -m agora.publish_pg provision`: AGORA_PG_ADMIN_DSN and the reader's password
    # (AGORA_READER_PASSWORD) from the environment; everything else from agora.yml.
    import os
    import sys

    from agora.config import load_config

    if sys.argv[1:] != ["provision"]:
        sys.exit("usage: python -m agora.publish_pg provision")
    logging.basicConfig(level=logging.INFO)
    provision(os.environ["AGORA_PG_ADMIN_DSN"], _serving(load_config()), os.environ["AGORA_READER_PASSWORD"])
    print("serving roles and database ready")
