"""Publishing marts to PostgreSQL: one-transaction swap, read-only reader, failures keep the old marts.

Runs against the real PostgreSQL of the `postgres` fixture and a real DuckDB warehouse.
"""

from __future__ import annotations

import threading
from datetime import date

import duckdb
import psycopg2
import pytest

from agora.config import ConfigError, load_config
from agora.publish import PublishError, publish
from agora.publish_pg import pg_type, provision
from tests.conftest import write_config

PUBLISHER_PASSWORD = "publisher-test-only"
READER_PASSWORD = "reader-test-only"


def _warehouse(directory, rows: int, extra_sql: str = "") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(directory / "agora.duckdb"))
    try:
        con.execute("create schema if not exists marts")
        con.execute("create schema if not exists staging")
        con.execute("create or replace table staging.secret as select 'not for serving' as x")
        con.execute(
            f"""create or replace table marts.kpis as
                select (date '2026-01-01' + to_months(i::integer % 12))::date as month, 'kpi_' || i as kpi,
                       i::bigint as group_size, i / 3.0 as value, i % 2 = 0 as is_suppressed, i::integer as n
                from range({rows}) as t(i)"""
        )
        con.execute("create or replace view marts.a_view as select 1 as x")
        if extra_sql:
            con.execute(extra_sql)
    finally:
        con.close()


@pytest.fixture(scope="module")
def serving_db(postgres):
    """A serving database with the publisher and reader roles, as `provision` makes them."""
    from agora.config import PostgresServing

    serving = PostgresServing(kind="postgres", host=postgres.host, port=postgres.port, database="serving_test")
    postgres.create_database("other_app")  # another database of the cluster, made before provision
    mp = pytest.MonkeyPatch()
    mp.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
    try:
        provision(postgres.url(), serving, READER_PASSWORD)
        provision(postgres.url(), serving, READER_PASSWORD)  # idempotent
    finally:
        mp.undo()
    return serving


@pytest.fixture
def cfg(tmp_path, serving_db, monkeypatch):
    monkeypatch.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
    path = write_config(
        tmp_path,
        [{"name": "survey", "type": "survey", "path": "survey.csv"}],
        paths={"warehouse": "wh"},
        serving={"kind": "postgres", "host": serving_db.host, "port": serving_db.port, "database": "serving_test"},
    )
    return load_config(path)


def _reader(serving):
    return psycopg2.connect(
        host=serving.host, port=serving.port, dbname=serving.database, user="agora_reader", password=READER_PASSWORD
    )


def _query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_publish_copies_only_mart_tables_and_the_reader_can_only_read(cfg, tmp_path, serving_db):
    _warehouse(tmp_path / "wh", rows=25)
    result = publish(cfg)
    assert result.tables == {"kpis": 25}
    assert "a_view" not in result.tables  # views are not what the contract checked
    assert PUBLISHER_PASSWORD not in result.serving_path and result.serving_path.endswith("#marts")

    conn = _reader(serving_db)
    try:
        schemas = {r[0] for r in _query(conn, "select table_schema from information_schema.tables")}
        assert "marts" in schemas and not {"staging", "marts_new", "marts_old"} & schemas
        assert _query(conn, "select table_name from information_schema.tables where table_schema = 'marts'") == [
            ("kpis",)
        ]
        row = _query(conn, "select month, kpi, group_size, value, is_suppressed from marts.kpis where n = 13")[0]
        assert row == (date(2026, 2, 1), "kpi_13", 13, pytest.approx(13 / 3.0), False)
        types = dict(
            _query(conn, "select column_name, data_type from information_schema.columns where table_name='kpis'")
        )
        assert types == {
            "month": "date",
            "kpi": "text",
            "group_size": "bigint",
            "value": "double precision",
            "is_suppressed": "boolean",
            "n": "integer",
        }
        conn.rollback()
        for forbidden in ("delete from marts.kpis", "create table marts.x (i int)", "create schema evil"):
            with pytest.raises(psycopg2.Error):
                _query(conn, forbidden)
            conn.rollback()
        # Even outside the default read-only transaction mode, it holds no write privilege.
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("set default_transaction_read_only = off")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("insert into marts.kpis (kpi) values ('x')")
    finally:
        conn.close()


def test_the_reader_connects_to_serving_only_and_cannot_create_anything(cfg, tmp_path, serving_db, postgres):
    _warehouse(tmp_path / "wh", rows=3)
    publish(cfg)
    for database in ("other_app", "postgres"):
        with pytest.raises(psycopg2.OperationalError, match=f'permission denied for database "{database}"'):
            psycopg2.connect(
                host=serving_db.host,
                port=serving_db.port,
                dbname=database,
                user="agora_reader",
                password=READER_PASSWORD,
            )
    conn = _reader(serving_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            # Not relying on the read-only default: the privileges alone must refuse these.
            cur.execute("set default_transaction_read_only = off")
            for statement, refused in (
                ("create temp table t (i int)", "permission denied to create temporary tables"),
                ("create table public.t (i int)", "permission denied for schema public"),
                ("create table marts.t (i int)", "permission denied for schema marts"),
                ("create schema s", "permission denied for database serving_test"),
                ("create function public.f() returns int language sql as 'select 1'", "permission denied"),
                ("create view marts.v as select 1", "permission denied for schema marts"),
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege, match=refused):
                    cur.execute(statement)
            cur.execute(
                "select rolsuper, rolcreatedb, rolcreaterole, rolreplication from pg_roles where rolname = current_user"
            )
            assert cur.fetchone() == (False, False, False, False)
            # Visible schemas it may use: marts only (pg_catalog/information_schema aside).
            cur.execute(
                "select nspname from pg_namespace where has_schema_privilege(oid, 'usage') "
                "and nspname not in ('pg_catalog', 'information_schema') and nspname not like 'pg_toast%'"
            )
            assert [r[0] for r in cur.fetchall()] == ["marts"]
            cur.execute("select count(*) from marts.kpis")
            assert cur.fetchone()[0] == 3
    finally:
        conn.close()
    # The owners of the other databases keep their access.
    assert postgres.psql("select current_database()", database="other_app").strip() == "other_app"


def test_failed_publish_keeps_the_previous_marts(cfg, tmp_path, serving_db):
    _warehouse(tmp_path / "wh", rows=10)
    publish(cfg)
    # A column type the publisher refuses to guess fails the copy, before any swap.
    _warehouse(tmp_path / "wh", rows=99, extra_sql="create table marts.z_lists as select [1, 2] as l")
    with pytest.raises(PublishError, match="no PostgreSQL type"):
        publish(cfg)
    conn = _reader(serving_db)
    try:
        assert _query(conn, "select count(*) from marts.kpis") == [(10,)]
        assert _query(conn, "select nspname from pg_namespace where nspname like 'marts%' order by 1") == [("marts",)]
    finally:
        conn.close()


def test_readers_never_see_a_missing_or_half_published_schema(cfg, tmp_path, serving_db):
    """Readers query in a loop while publishes alternate 40 and 7 rows: every answer is 40 or 7."""
    seen, errors, stop = [], [], threading.Event()

    def read_loop():
        conn = _reader(serving_db)
        conn.autocommit = True
        try:
            while not stop.is_set():
                try:
                    seen.append(_query(conn, "select count(*) from marts.kpis")[0][0])
                except psycopg2.Error as e:
                    errors.append(str(e))
        finally:
            conn.close()

    _warehouse(tmp_path / "wh", rows=40)
    publish(cfg)
    readers = [threading.Thread(target=read_loop) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(8):
            _warehouse(tmp_path / "wh", rows=7 if i % 2 == 0 else 40)
            publish(cfg)
    finally:
        stop.set()
        for t in readers:
            t.join(timeout=30)
    assert errors == []
    assert len(seen) > 50
    assert set(seen) == {40, 7}


def test_missing_reader_role_is_named(tmp_path, serving_db, monkeypatch):
    monkeypatch.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
    path = write_config(
        tmp_path,
        [{"name": "survey", "type": "survey", "path": "survey.csv"}],
        paths={"warehouse": "wh"},
        serving={
            "kind": "postgres",
            "host": serving_db.host,
            "port": serving_db.port,
            "database": "serving_test",
            "reader_role": "nobody_here",
        },
    )
    _warehouse(tmp_path / "wh", rows=3)
    with pytest.raises(PublishError, match="nobody_here does not exist"):
        publish(load_config(path))


def test_serving_config_is_validated_and_holds_no_secret(tmp_path, monkeypatch):
    source = [{"name": "survey", "type": "survey", "path": "survey.csv"}]
    with pytest.raises(ConfigError, match="serving"):
        load_config(write_config(tmp_path, source, serving={"kind": "postgres", "password": "inline"}))
    with pytest.raises(ConfigError, match="serving"):
        load_config(write_config(tmp_path, source, serving={"kind": "oracle"}))
    cfg = load_config(write_config(tmp_path, source, serving={"kind": "postgres", "password_env": "PW_X"}))
    monkeypatch.delenv("PW_X", raising=False)
    with pytest.raises(ConfigError, match="PW_X is unset"):
        cfg.serving.password()
    assert load_config(write_config(tmp_path, source)).serving.kind == "duckdb"


def test_type_mapping():
    assert pg_type("DECIMAL(18,3)") == "numeric(18, 3)"
    assert pg_type("TIMESTAMP WITH TIME ZONE") == "timestamptz"
    with pytest.raises(PublishError):
        pg_type("INTEGER[]")


def test_publish_from_a_postgres_warehouse(cfg, postgres, serving_db, monkeypatch):
    """dbt target `postgres`: the marts are read from the AGORA_PG_* database, types kept exactly."""
    url = postgres.create_database("warehouse_pub_test")
    postgres.psql(
        """
        drop schema if exists marts cascade;
        drop schema if exists staging cascade;
        create schema marts;
        create schema staging;
        create table staging.secret as select 'not for serving' as x;
        create table marts.kpis (month date, kpi text, value numeric(10, 2), tags text[], at timestamptz, ok boolean);
        insert into marts.kpis values
            ('2026-10-01', 'active_members', 12.50, array['a', 'b'], '2026-10-02 03:04:05+00', true),
            ('2026-11-01', 'new_members', null, null, null, null);
        create view marts.a_view as select 1 as x;
        """,
        database="warehouse_pub_test",
    )
    assert url.endswith("/warehouse_pub_test")
    monkeypatch.setenv("AGORA_DBT_TARGET", "postgres")
    for key, value in {
        "AGORA_PG_HOST": postgres.host,
        "AGORA_PG_PORT": str(postgres.port),
        "AGORA_PG_USER": "agora_admin",
        "AGORA_PG_PASSWORD": "agora-test-only",
        "AGORA_PG_DBNAME": "warehouse_pub_test",
    }.items():
        monkeypatch.setenv(key, value)
    result = publish(cfg)  # no DuckDB file exists under paths.warehouse: the source is PostgreSQL
    assert result.tables == {"kpis": 2}
    conn = _reader(serving_db)
    try:
        assert _query(conn, "select table_name from information_schema.tables where table_schema = 'marts'") == [
            ("kpis",)
        ]
        types = dict(
            _query(
                conn,
                "select column_name, format_type(atttypid, atttypmod) from information_schema.columns "
                "join pg_attribute on attrelid = 'marts.kpis'::regclass and attname = column_name "
                "where table_schema = 'marts' and table_name = 'kpis'",
            )
        )
        assert types == {
            "month": "date",
            "kpi": "text",
            "value": "numeric(10,2)",
            "tags": "text[]",
            "at": "timestamp with time zone",
            "ok": "boolean",
        }
        rows = _query(conn, "select kpi, value::text, tags, ok from marts.kpis order by month")
        assert rows == [("active_members", "12.50", ["a", "b"], True), ("new_members", None, None, None)]
    finally:
        conn.close()
