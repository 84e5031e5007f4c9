"""The production profile on one host: real Airflow processes; Airflow metadata, the dbt
warehouse and serving all on PostgreSQL.

Starts PostgreSQL (Debian package, 127.0.0.1), then Airflow's own processes — api-server,
scheduler (LocalExecutor, parallelism 4), dag-processor, triggerer — bound to 127.0.0.1.
agora.yml says `warehouse: {kind: postgres}` and `serving: {kind: postgres}` (no
AGORA_DBT_TARGET anywhere). The test triggers `agora_ingest` through the REST API only;
`agora_transform` must then be started by the `agora://landing` Asset, not by the test,
load landing into the PostgreSQL warehouse, build it with one dbt build (Cosmos watcher
mode: the model sensors run through the triggerer if they defer), check it and
publish the marts to a PostgreSQL schema read through the read-only `agora_reader` role.
Every process started here is stopped by its own PID (Airflow's children outlive their parents).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

import psutil
import psycopg2
import pytest
import yaml

from agora.airflow_local import airflow_env, ensure_metadata
from agora.demo import start_demo
from agora.publish_pg import provision
from agora.warehouse import parse
from tests.airflow_cluster import Api, Processes, failures, free_port, wait

PUBLISHER_PASSWORD = "publisher-live-test"
READER_PASSWORD = "reader-live-test"
WAREHOUSE_ROLE, WAREHOUSE_PASSWORD = "agora_dbt_live", "warehouse-live-test"
PROCESSES = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--workers", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
RUN_TIMEOUT = 900  # seconds per DAG run; one dbt build, then ~65 sensors one by one in the warehouse pool


@pytest.fixture(scope="module")
def live(tmp_path_factory, postgres):
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("live")
    demo = start_demo(root / "demo", seed=7, data_dir=root / "data")

    # Production profile: dbt builds the warehouse in PostgreSQL, and the marts are
    # published to PostgreSQL for the read-only reader.
    cfg_raw = yaml.safe_load(demo.config_path.read_text())
    postgres.psql(f"create role {WAREHOUSE_ROLE} login password '{WAREHOUSE_PASSWORD}'")
    postgres.psql(f"create database agora_warehouse owner {WAREHOUSE_ROLE}")
    cfg_raw["warehouse"] = {
        "kind": "postgres",
        "host": "127.0.0.1",
        "port": postgres.port,
        "database": "agora_warehouse",
        "user": WAREHOUSE_ROLE,
        "password_env": "AGORA_WAREHOUSE_PASSWORD",
    }
    cfg_raw["serving"] = {"kind": "postgres", "host": "127.0.0.1", "port": postgres.port, "database": "agora_serving"}
    demo.config_path.write_text(yaml.safe_dump(cfg_raw, sort_keys=False))
    os.environ["AGORA_SERVING_PASSWORD"] = PUBLISHER_PASSWORD  # provision reads it; tasks inherit it below
    from agora.config import PostgresServing

    serving = PostgresServing(**cfg_raw["serving"])
    provision(postgres.url(), serving, READER_PASSWORD)

    postgres.create_database("airflow_meta")
    port = free_port()
    env = airflow_env(demo.config_path, home=root / "airflow")
    meta = postgres.url("airflow_meta").replace("postgresql://", "postgresql+psycopg2://")
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # Parse each file once: re-parsing every 30 s costs CPU the dbt tasks need.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AGORA_SERVING_PASSWORD": PUBLISHER_PASSWORD,
            # The workers' environment holds the secret; agora.yml names the variable only.
            "AGORA_WAREHOUSE_PASSWORD": WAREHOUSE_PASSWORD,
        }
    )
    for name in ("AGORA_DBT_TARGET", "AGORA_PG_HOST", "AGORA_PG_PORT", "AGORA_PG_USER", "AGORA_PG_PASSWORD"):
        env.pop(name, None)  # the config alone chooses the warehouse
    ensure_metadata(env)  # `db migrate` on PostgreSQL + the 1-slot agora_warehouse pool
    parse()  # the manifest Cosmos renders tasks from must match the models on disk (`make manifest`)
    timings["setup"] = time.monotonic() - t0

    procs = Processes(root)
    airflow = str(Path(sys.executable).with_name("airflow"))
    for name, args in PROCESSES.items():
        procs.start(name, [airflow, *args], env)
    api = Api(f"http://127.0.0.1:{port}")
    try:
        wait("the api-server", api.healthy, 120, procs)
        api.login()
        wait("both DAGs parsed", lambda: api.parsed("agora_ingest", "agora_transform"), 180, procs)
        timings["airflow_up"] = time.monotonic() - t0
        yield {
            "api": api,
            "procs": procs,
            "demo": demo,
            "serving": serving,
            "timings": timings,
            "t0": t0,
            "postgres": postgres,
            "root": root,
        }
    finally:
        alive = procs.stop(grace=20)
        demo.stop()
        os.environ.pop("AGORA_SERVING_PASSWORD", None)
        timings["total"] = time.monotonic() - t0
        print(f"\nlive Airflow timings (s): { {k: round(v, 1) for k, v in timings.items()} }")
        assert alive == [], f"processes survived the stop: {alive}"


def test_ingest_via_rest_api_triggers_transform_by_asset_and_publishes_to_postgres(live):
    api, procs, demo, serving, timings = (live[k] for k in ("api", "procs", "demo", "serving", "timings"))

    listening = {
        (c.laddr.ip, c.laddr.port) for p in procs.tree() for c in _connections(p) if c.status == psutil.CONN_LISTEN
    }
    assert listening, "the api-server listens somewhere"
    assert {ip for ip, _ in listening} <= {"127.0.0.1"}, f"not bound to loopback only: {listening}"

    # The test triggers ingest only; nothing here ever starts agora_transform.
    run_id = f"live_{int(time.time())}"
    api.send(
        "POST",
        "/dags/agora_ingest/dagRuns",
        {
            "dag_run_id": run_id,
            "logical_date": demo.end.isoformat(),
            "conf": {"since": demo.start.isoformat(), "until": demo.end.isoformat()},
        },
    )
    for dag_id in ("agora_ingest", "agora_transform"):
        api.send("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    state = wait("agora_ingest", lambda: api.finished_run("agora_ingest", run_id), RUN_TIMEOUT, procs)["state"]
    assert state == "success", failures(api, "agora_ingest", run_id)
    timings["ingest_done"] = time.monotonic() - live["t0"]

    run = wait(
        "agora_transform started by our ingest's Asset event",
        lambda: api.run_started_by("agora_transform", "agora_ingest", run_id),
        RUN_TIMEOUT,
        procs,
    )
    assert run["state"] == "success", failures(api, "agora_transform", run["dag_run_id"])
    assert run["run_type"] == "asset_triggered"
    timings["transform_done"] = time.monotonic() - live["t0"]
    manual = [r for r in api.get("/dags/agora_transform/dagRuns")["dag_runs"] if r["run_type"] == "manual"]
    assert manual == []

    # The warehouse was PostgreSQL: landing loaded by its own task, no DuckDB file anywhere.
    transform_run = run["dag_run_id"]
    loaded = api.get(
        f"/dags/agora_transform/dagRuns/{transform_run}/taskInstances/load_landing/xcomEntries/return_value"
    )["value"]
    loaded = loaded if isinstance(loaded, dict) else yaml.safe_load(str(loaded))
    assert loaded["target"] == "postgres" and loaded["rows"] > 0, loaded
    assert list(live["root"].rglob("*.duckdb")) == []
    # One dbt build (the producer) and a sensor per model, all green; the warehouse password
    # reached dbt through the worker's environment, never the task fields.
    dbt_tasks = [t for t in api.task_instances("agora_transform", transform_run) if t["task_id"].startswith("dbt.")]
    assert [t["task_id"] for t in dbt_tasks if t["operator"] == "DbtProducerWatcherOperator"] == [
        "dbt.dbt_producer_watcher"
    ]
    assert len(dbt_tasks) > 20 and all(t["state"] == "success" for t in dbt_tasks), [
        (t["task_id"], t["state"]) for t in dbt_tasks if t["state"] != "success"
    ]
    for t in dbt_tasks:
        assert WAREHOUSE_PASSWORD not in json.dumps(t.get("rendered_fields"))

    # What the PostgreSQL warehouse's marts hold is exactly what serving publishes.
    from agora.publish_pg import _read_marts_postgres

    pg = live["postgres"]
    warehouse = psycopg2.connect(
        host=pg.host, port=pg.port, dbname="agora_warehouse", user=WAREHOUSE_ROLE, password=WAREHOUSE_PASSWORD
    )
    reader = psycopg2.connect(
        host=serving.host, port=serving.port, dbname=serving.database, user="agora_reader", password=READER_PASSWORD
    )
    try:
        built, published = _read_marts_postgres(warehouse), _read_marts_postgres(reader)
    finally:
        warehouse.close()
        reader.close()
    assert set(published) == set(built) and "community_kpis_monthly" in built
    for mart, (columns, rows) in built.items():
        assert published[mart][0] == columns, mart
        assert sorted(map(repr, published[mart][1])) == sorted(map(repr, rows)), mart

    # The marts, as Superset's read-only role sees them.
    conn = psycopg2.connect(
        host=serving.host, port=serving.port, dbname=serving.database, user="agora_reader", password=READER_PASSWORD
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select table_schema, table_name from information_schema.tables where table_schema <> 'pg_catalog' and table_schema <> 'information_schema'"
            )
            tables = cur.fetchall()
            assert {s for s, _ in tables} == {"marts"}
            assert {"community_kpis_monthly", "kpi_catalog"} <= {t for _, t in tables}
            cur.execute(
                "select value from marts.community_kpis_monthly "
                "where platform = 'all' and month = date '2026-10-01' and kpi = 'active_members'"
            )
            assert cur.fetchone()[0] >= 5
            cur.execute(
                "select count(*) from marts.community_kpis_monthly "
                "where (group_size < 5 and value is not null) or (is_suppressed and value is not null)"
            )
            assert cur.fetchone()[0] == 0
            with pytest.raises(psycopg2.Error):
                cur.execute("delete from marts.kpi_catalog")
    finally:
        conn.close()


def _connections(p: psutil.Process) -> list:
    try:
        return p.net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
