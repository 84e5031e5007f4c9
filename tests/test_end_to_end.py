"""The walking skeleton, end to end, through Airflow: demo community → published marts.

Runs the real DAGs with `airflow dags test` against a real local Airflow (SQLite
metadata), the real Discourse connector against the demo's local API server, real GX
contracts, real dbt via Cosmos on DuckDB, and the real publish step.
"""

from __future__ import annotations

import re

import duckdb
import pytest

from agora.airflow_local import airflow_env, dags_test, ensure_metadata
from agora.config import load_config
from agora.demo import start_demo
from agora.landing import landing_files
from tests.cassettes import leaks


def _serving_tables(path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select table_schema, table_name from information_schema.tables order by 1, 2").fetchall()
    finally:
        con.close()


def _duckdb_strings(path) -> list[str]:
    """Every string value of every table: DuckDB compresses strings, so raw bytes prove nothing."""
    con = duckdb.connect(str(path), read_only=True)
    values = []
    try:
        cols = con.execute(
            """
            select c.table_schema, c.table_name, c.column_name
            from information_schema.columns as c
            join information_schema.tables as t using (table_schema, table_name)
            where t.table_type = 'BASE TABLE' and c.data_type = 'VARCHAR'
            """
        ).fetchall()
        for schema, table, col in cols:
            values += [
                r[0] for r in con.execute(f'select distinct "{col}" from "{schema}"."{table}"').fetchall() if r[0]
            ]
    finally:
        con.close()
    return values


def _landing_rows(cfg) -> int:
    files = landing_files(cfg.path("landing"))
    con = duckdb.connect()
    try:
        return con.execute("select count(*) from read_parquet(?, union_by_name = true)", [files]).fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    demo = start_demo(root / "demo", seed=7, data_dir=root / "data")
    env = airflow_env(demo.config_path, home=root / "airflow")
    log = root / "airflow.log"
    ensure_metadata(env)
    logical = demo.end.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    conf = {"since": demo.start.isoformat(), "until": demo.end.isoformat()}
    started: dict[str, list[str]] = {"agora_ingest": [], "agora_transform": []}  # what `agora demo` shows
    try:
        dags_test("agora_ingest", logical, env, conf, log, on_task=started["agora_ingest"].append)
        cfg = load_config(demo.config_path)
        rows_after_first = _landing_rows(cfg)
        dags_test("agora_transform", logical, env, None, log, on_task=started["agora_transform"].append)
        demo.started = started  # type: ignore[attr-defined]
        yield demo, cfg, env, log, logical, conf, rows_after_first
    finally:
        demo.stop()


def test_serving_holds_only_marts(demo_run):
    demo, cfg, *_ = demo_run
    tables = _serving_tables(f"{cfg.path('warehouse')}/serving.duckdb")
    assert {s for s, _ in tables} == {"marts"}
    names = {t for _, t in tables}
    assert {"community_kpis_monthly", "kpi_catalog"} <= names


def test_kpis_are_published_with_suppression(demo_run):
    demo, cfg, *_ = demo_run
    con = duckdb.connect(f"{cfg.path('warehouse')}/serving.duckdb", read_only=True)
    try:
        kpis = dict(
            con.execute(
                """select kpi, value from marts.community_kpis_monthly
                   where platform = 'all' and month = date '2026-10-01'"""
            ).fetchall()
        )
        broken = con.execute(
            """select count(*) from marts.community_kpis_monthly
               where (group_size < 5 and value is not null) or (is_suppressed and value is not null)"""
        ).fetchone()[0]
    finally:
        con.close()
    for kpi in ("contributions", "active_members", "new_members", "retention_rate", "response_rate_48h"):
        assert kpi in kpis
    assert kpis["active_members"] and kpis["active_members"] >= 5
    assert 0 <= kpis["retention_rate"] <= 1
    assert broken == 0


def test_no_raw_handle_anywhere_under_data(demo_run):
    demo, cfg, *_ = demo_run
    data_dir = demo.workdir.parent / "data"
    needles = {h for h in demo.handles if len(h) >= 6}
    assert needles, "the demo must expose its handles for this test to mean anything"
    assert leaks(data_dir, needles) == []
    for db in data_dir.rglob("*.duckdb"):
        strings = _duckdb_strings(db)
        assert strings, f"{db} holds no strings: the scan would prove nothing"
        blob = "\n".join(strings)  # one search per handle, not one per (handle, string)
        hits = {n for n in needles if n in blob}
        assert hits == set(), f"{db.name} holds raw handles: {sorted(hits)[:5]}"


def test_rerunning_the_same_interval_duplicates_nothing(demo_run):
    demo, cfg, env, log, logical, conf, rows_after_first = demo_run
    dags_test("agora_ingest", logical, env, conf, log)
    assert _landing_rows(cfg) == rows_after_first


def test_the_run_names_each_task_as_it_starts_and_logs_extract_progress(demo_run):
    """`agora demo` shows the DAG and the task running from these task starts; the extract
    tasks log their pages and records (agora.progress), and no process ends with nanobind lines."""
    demo, cfg, env, log, *_ = demo_run
    ingest, transform = demo.started["agora_ingest"], demo.started["agora_transform"]
    assert (
        ingest[0] == "list_sources"
        and sorted(ingest[1:-1]) == sorted(f"extract[{i}]" for i in range(len(cfg.sources)))
        and ingest[-1] == "landing_ready"
    )
    assert transform[0] == "landing_contract" and transform[-1] == "publish", transform
    assert any(t.startswith("dbt") for t in transform), transform
    text = log.read_text()
    for source in cfg.sources:
        assert re.search(rf"extract {source.name}: [\d,]+ pages fetched, [\d,]+ records read", text), source.name
    assert "nanobind" not in text
