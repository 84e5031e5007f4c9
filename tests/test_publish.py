"""Publishing: only marts reach serving.duckdb, atomically, and readers never break."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, write_config

from agora import publish as publish_module
from agora.config import load_config
from agora.publish import PublishError, publish, serving_path

SOURCES = [{"name": "forum", "type": "discourse", "base_url": "https://discuss.example.org"}]


def build_warehouse(path: Path, value: float) -> None:
    """A warehouse as dbt leaves it: staging, a source view over Parquet, and marts."""
    parquet = path.parent / "landing.parquet"
    pq.write_table(pa.table({"actor": ["f00d"], "x": [1]}), parquet)
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists main_staging")
    con.execute("create schema if not exists marts")
    con.execute(f"create or replace view main_staging.stg_events as select * from read_parquet('{parquet}')")
    con.execute("create or replace table main_staging.int_members as select 'f00d' as actor")
    con.execute("create or replace table main.leftover as select 1 as x")
    con.execute(
        "create or replace table marts.community_kpis_monthly as select date '2025-01-01' as month, "
        "'all' as platform, 'active_members' as kpi, ?::double as value, 12::bigint as group_size, "
        "false as is_suppressed",
        [value],
    )
    con.execute("create or replace table marts.kpi_catalog as select 'active_members' as kpi, 'result' as kind")
    con.execute(f"create or replace view marts.raw_peek as select * from read_parquet('{parquet}')")
    con.close()


def served_value(path: Path | str) -> float:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select value from marts.community_kpis_monthly").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def cfg(workdir):
    cfg = load_config(write_config(workdir, SOURCES))
    Path(cfg.path("warehouse")).mkdir(parents=True)
    build_warehouse(Path(cfg.path("warehouse")) / "agora.duckdb", 1.0)
    return cfg


def test_publish_copies_only_mart_tables(cfg):
    res = publish(cfg)
    target = serving_path(cfg)
    assert Path(res.serving_path) == target and target.exists()
    assert res.tables == {"community_kpis_monthly": 1, "kpi_catalog": 1}
    assert res.skipped_views == ["raw_peek"]
    assert not glob.glob(f"{target}.*new")
    con = duckdb.connect(str(target), read_only=True)
    try:
        objects = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables order by all"
        ).fetchall()
        assert objects == [
            ("marts", "community_kpis_monthly", "BASE TABLE"),
            ("marts", "kpi_catalog", "BASE TABLE"),
        ]
        assert con.execute("select * from marts.community_kpis_monthly").fetchall()[0][3:] == (1.0, 12, False)
        # Column types survive the copy.
        types = dict(con.execute("select column_name, data_type from information_schema.columns").fetchall())
        assert types["month"] == "DATE" and types["group_size"] == "BIGINT" and types["is_suppressed"] == "BOOLEAN"
        assert not con.execute("select * from duckdb_databases() where database_name = 'warehouse'").fetchall()
    finally:
        con.close()
    # The warehouse was opened read-only and released: a writer can take it now.
    duckdb.connect(str(Path(cfg.path("warehouse")) / "agora.duckdb")).close()


def test_failure_at_the_swap_keeps_the_previous_serving_db(cfg, monkeypatch):
    publish(cfg)
    build_warehouse(Path(cfg.path("warehouse")) / "agora.duckdb", 2.0)

    def disk_trouble(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_module.os, "replace", disk_trouble)
    with pytest.raises(OSError, match="No space left"):
        publish(cfg)
    monkeypatch.undo()
    assert served_value(serving_path(cfg)) == 1.0
    assert not glob.glob(f"{serving_path(cfg)}.*new")
    publish(cfg)
    assert served_value(serving_path(cfg)) == 2.0


def test_no_marts_is_an_error_and_keeps_the_previous_serving_db(cfg):
    publish(cfg)
    con = duckdb.connect(str(Path(cfg.path("warehouse")) / "agora.duckdb"))
    con.execute("drop table marts.community_kpis_monthly")
    con.execute("drop table marts.kpi_catalog")
    con.close()
    with pytest.raises(PublishError, match="no tables in schema marts"):
        publish(cfg)
    assert served_value(serving_path(cfg)) == 1.0
    assert not glob.glob(f"{serving_path(cfg)}.*new")


# Dies the moment publish calls os.replace: the copy is complete, the swap never happens.
KILLED_BEFORE_SWAP = textwrap.dedent(
    """
    import glob, os, signal, sys
    from agora.config import load_config
    from agora.publish import publish

    def die_at_swap(frame, event, arg):
        if event == "c_call" and arg is os.replace:
            assert glob.glob(sys.argv[1]), "the copy should be on disk"
            os.kill(os.getpid(), signal.SIGKILL)

    sys.setprofile(die_at_swap)
    publish(load_config())
    """
)


def test_a_publish_killed_before_the_swap_leaves_the_previous_serving_db(cfg):
    publish(cfg)
    build_warehouse(Path(cfg.path("warehouse")) / "agora.duckdb", 3.0)
    staging = f"{serving_path(cfg)}.*.new"  # <pid>-<random>: unique per publish
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_SWAP, staging],
        cwd=cfg.root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    assert len(glob.glob(staging)) == 1, "a crash cannot clean up after itself"
    assert served_value(serving_path(cfg)) == 1.0
    # The next publish clears the half-done file and goes through.
    publish(cfg)
    assert served_value(serving_path(cfg)) == 3.0 and not glob.glob(staging)


READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    query = "select value from marts.community_kpis_monthly"
    print(con.execute(query).fetchone()[0], flush=True)
    sys.stdin.readline()  # publish happens here
    print(con.execute(query).fetchone()[0], flush=True)
    """
)


def test_readers_keep_working_across_a_publish(cfg):
    publish(cfg)
    target = serving_path(cfg)
    uri = f"{target}"
    # A reader in another process (like a Superset worker) holding the file open.
    held = subprocess.Popen(
        [sys.executable, "-c", READER, uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert held.stdout.readline().strip() == "1.0"
    in_process = duckdb.connect(str(target), read_only=True)

    build_warehouse(Path(cfg.path("warehouse")) / "agora.duckdb", 2.0)
    publish(cfg)  # no lock error although two readers hold the old file

    out, _ = held.communicate("go\n", timeout=60)
    assert out.strip() == "1.0", "an open reader keeps the snapshot it opened"
    assert in_process.execute("select value from marts.community_kpis_monthly").fetchone()[0] == 1.0
    # A new process sees the new data at once.
    fresh = subprocess.run(
        [sys.executable, "-c", READER, uri], input="\n", capture_output=True, text=True, timeout=60, check=True
    )
    assert fresh.stdout.split() == ["2.0", "2.0"]
    # In the *same* process DuckDB hands out the database instance it already has open for
    # that path, so new connections see the old file until the last one closes: a pooled
    # client (Superset) must not keep connections open (NullPool) to pick up a publish.
    assert served_value(target) == 1.0
    in_process.close()
    assert served_value(target) == 2.0
