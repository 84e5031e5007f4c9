"""Scale-out for real: Airflow's CeleryExecutor with two workers that share nothing but
S3 (moto's server), PostgreSQL and Redis — the topology of docker-compose.yml, on one host.

Started here, all on 127.0.0.1, each stopped by its PID: PostgreSQL (Airflow metadata,
warehouse, serving), Redis (Debian `redis-server`, password required), Airflow's
api-server (FAB auth manager, admin created by `deploy/entrypoint.sh init`), scheduler,
dag-processor and triggerer, and two `airflow celery worker`s, each from its own working
directory with its own AIRFLOW_HOME, agora.yml copy and task logs. Every process gets
only the secrets its role uses, as in docker-compose.yml. The test triggers
`agora_ingest` through the REST API; `agora_transform` must start from the Asset; tasks
must have run on both workers (task instances' hostname and pid); the marts must be
published; and no secret may appear in a log, a rendered field or an XCom.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
import yaml

from agora.demo import start_demo
from agora.warehouse import parse
from tests.airflow_cluster import Api, Processes, failures, free_port, wait
from tests.postgres import PASSWORD as PG_SUPERUSER_PASSWORD
from tests.redis_server import start_redis
from tests.s3 import all_objects, moto_server

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
RUN_TIMEOUT = 1200  # seconds per DAG run on a busy 2-core machine
WORKERS = ("worker-a", "worker-b")
BUCKET = "agora-celery"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def role_env(role: str, secret: dict[str, str], urls: dict[str, str]) -> dict[str, str]:
    """The variables one docker-compose.yml service gets, by role; tests/test_compose.py checks
    that compose gives each service exactly these names. `secret` is keyed by .env names;
    `urls` holds where things listen (pg, redis, api, s3, config, admin_dsn)."""
    config = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{urls['api']}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": urls["cosmos_cache"],
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    metadata = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://airflow_celery:{secret['AIRFLOW_DB_PASSWORD']}@{urls['pg']}/airflow_celery"
        ),
        "AIRFLOW__CORE__FERNET_KEY": secret["AIRFLOW_FERNET_KEY"],
    }
    celery = {
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{secret['REDIS_PASSWORD']}@{urls['redis']}/0",
        # Results in Redis too: workers never need the metadata database's password.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://:{secret['REDIS_PASSWORD']}@{urls['redis']}/1",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    }
    s3 = {
        "AWS_ENDPOINT_URL": urls["s3"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": secret["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": secret["AWS_SECRET_ACCESS_KEY"],
    }
    jwt = {"AIRFLOW__API_AUTH__JWT_SECRET": secret["AIRFLOW_JWT_SECRET"]}
    roles = {
        "airflow-init": {
            **config,
            **metadata,
            **s3,
            "AGORA_CONFIG": urls["config"],
            "AIRFLOW_ADMIN_USER": "admin",
            "AIRFLOW_ADMIN_PASSWORD": secret["AIRFLOW_ADMIN_PASSWORD"],
            "AGORA_PG_ADMIN_DSN": urls["admin_dsn"],
            "AGORA_SERVING_PASSWORD": secret["AGORA_SERVING_PASSWORD"],
            "AGORA_READER_PASSWORD": secret["AGORA_READER_PASSWORD"],
        },
        "airflow-api-server": {
            **config,
            **metadata,
            **jwt,
            "AIRFLOW__API__SECRET_KEY": secret["AIRFLOW_API_SECRET_KEY"],
        },
        "airflow-scheduler": {**config, **metadata, **celery, **jwt},
        "airflow-dag-processor": {**config, **metadata},
        "airflow-triggerer": {**config, **metadata, **jwt},
        "airflow-worker": {
            **config,
            **celery,
            **s3,
            "AGORA_CONFIG": urls["config"],
            "AGORA_PSEUDONYM_KEY": secret["AGORA_PSEUDONYM_KEY"],
            "AGORA_WAREHOUSE_PASSWORD": secret["AGORA_WAREHOUSE_PASSWORD"],
            "AGORA_SERVING_PASSWORD": secret["AGORA_SERVING_PASSWORD"],
        },
    }
    return roles[role]


def _base_env(home: Path) -> dict[str, str]:
    """What every test process gets besides its role: no secret, nothing from the test's environment."""
    return {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": str(REPO),
    }


SECRET_NAMES = (
    "POSTGRES_PASSWORD",  # the test server's superuser: tests/postgres.py's, for init's admin DSN
    "AIRFLOW_DB_PASSWORD",
    "AGORA_WAREHOUSE_PASSWORD",
    "AGORA_SERVING_PASSWORD",
    "AGORA_READER_PASSWORD",
    "REDIS_PASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AGORA_PSEUDONYM_KEY",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_ADMIN_PASSWORD",
)


def _secrets() -> dict[str, str]:
    """Fresh values, shaped as deploy/generate_env.py makes them."""
    from deploy.generate_env import secret_for

    out = {name: secret_for(name) for name in SECRET_NAMES}
    out["POSTGRES_PASSWORD"] = PG_SUPERUSER_PASSWORD
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres):
    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("celery")
    secret = _secrets()
    redis = start_redis(secret["REDIS_PASSWORD"])
    demo = start_demo(root / "demo", seed=7, data_dir=root / "unused")
    procs = Processes(root)
    store = contextlib.ExitStack()
    try:
        # The only storage the workers share: a real S3 API (moto's server, tests/s3.py).
        s3 = store.enter_context(moto_server(buckets=(BUCKET,)))
        secret["AWS_ACCESS_KEY_ID"], secret["AWS_SECRET_ACCESS_KEY"] = (
            s3["AWS_ACCESS_KEY_ID"],
            s3["AWS_SECRET_ACCESS_KEY"],
        )
        # PostgreSQL: one role and database each for Airflow's metadata and the warehouse
        # (serving's roles and database are made by `init`, as in compose).
        postgres.psql(f"create role airflow_celery login password '{secret['AIRFLOW_DB_PASSWORD']}'")
        postgres.psql("create database airflow_celery owner airflow_celery")
        postgres.psql(f"create role agora_wh_celery login password '{secret['AGORA_WAREHOUSE_PASSWORD']}'")
        postgres.psql("create database agora_wh_celery owner agora_wh_celery")

        cfg = yaml.safe_load(demo.config_path.read_text())
        for kind in ("landing", "state", "quarantine"):
            cfg["paths"][kind] = f"s3://{BUCKET}/{kind}"
        cfg["paths"]["warehouse"] = "data/warehouse"  # per worker (unused: the warehouse is PostgreSQL)
        cfg["warehouse"] = {
            "kind": "postgres",
            "host": postgres.host,
            "port": postgres.port,
            "database": "agora_wh_celery",
            "user": "agora_wh_celery",
            "password_env": "AGORA_WAREHOUSE_PASSWORD",
            "sslmode": "disable",
        }
        cfg["serving"] = {
            "kind": "postgres",
            "host": postgres.host,
            "port": postgres.port,
            "database": "agora_serving_celery",
            "user": "agora_publisher_celery",
            "password_env": "AGORA_SERVING_PASSWORD",
            "reader_role": "agora_reader_celery",
            "sslmode": "disable",
        }

        api_port = free_port()
        urls = {
            "pg": f"{postgres.host}:{postgres.port}",
            "redis": f"127.0.0.1:{redis.port}",
            "api": f"http://127.0.0.1:{api_port}",
            "s3": s3["AWS_ENDPOINT_URL"],
            "admin_dsn": postgres.dsn,
        }
        # Test-only settings: where the api-server listens, a quicker scheduler, parse once.
        local = {
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        }

        def env(role: str, home: Path, **extra: str) -> dict[str, str]:
            role_urls = {**urls, "cosmos_cache": str(home / "cosmos"), "config": str(home.parent / "agora.yml")}
            return {**_base_env(home), **role_env(role, secret, role_urls), **local, **extra}

        central = root / "central"
        central.mkdir()
        (central / "agora.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        parse()  # the manifest Cosmos renders tasks from must match the models on disk
        init = subprocess.run(
            ["sh", str(ENTRYPOINT), "init"],
            env=env("airflow-init", central / "airflow"),
            cwd=central,
            capture_output=True,
            text=True,
            timeout=600,
        )
        (root / "init.log").write_text(init.stdout + init.stderr)
        assert init.returncode == 0, (init.stdout + init.stderr)[-4000:]

        for role, args in {
            "airflow-api-server": ["api-server", "--workers", "1"],
            "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
            "airflow-dag-processor": ["dag-processor"],
            "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
        }.items():
            procs.start(role, ["sh", str(ENTRYPOINT), *args], env(role, central / "airflow"), central)

        workdirs = {}
        for name in WORKERS:
            wdir = root / name
            wdir.mkdir()
            shutil.copytree(demo.workdir / "inputs", wdir / "inputs")  # team files ship with each worker's config
            (wdir / "agora.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
            # On separate hosts the hostname tells workers apart; here each reports its own name.
            (wdir / "worker_identity.py").write_text(f"def hostname():\n    return {name!r}\n")
            worker_env = env(
                "airflow-worker",
                wdir / "airflow",
                PYTHONPATH=f"{wdir}{os.pathsep}{REPO}",
                AIRFLOW__CORE__HOSTNAME_CALLABLE="worker_identity.hostname",
                AGORA_DEMO_X_BEARER_TOKEN=os.environ["AGORA_DEMO_X_BEARER_TOKEN"],  # the demo's X source
            )
            args = ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "1", "--skip-serve-logs"]
            procs.start(name, ["sh", str(ENTRYPOINT), *args], worker_env, wdir)
            workdirs[name] = wdir

        api = Api(urls["api"])
        wait("the api-server", api.healthy, 180, procs)
        api.login("admin", secret["AIRFLOW_ADMIN_PASSWORD"])
        wait("both DAGs parsed", lambda: api.parsed("agora_ingest", "agora_transform"), 300, procs)
        yield {
            "api": api,
            "procs": procs,
            "demo": demo,
            "cfg": cfg,
            "secret": secret,
            "root": root,
            "workdirs": workdirs,
            "postgres": postgres,
            "urls": {**urls, "cosmos_cache": "", "config": ""},
            "s3": s3,
            "t0": t0,
        }
    finally:
        alive = procs.stop()
        demo.stop()
        redis.stop()
        store.close()  # moto's server, stopped by its PID
        print(f"\nCelery live test: {time.monotonic() - t0:.0f} s")
        assert alive == [], f"processes survived the stop: {alive}"
        assert redis.proc.poll() is not None


def test_two_celery_workers_run_ingest_and_the_asset_triggered_transform(cluster):
    api, procs, demo, secret = (cluster[k] for k in ("api", "procs", "demo", "secret"))

    run_id = f"celery_{int(time.time())}"
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

    ingest = wait("agora_ingest", lambda: api.finished_run("agora_ingest", run_id), RUN_TIMEOUT, procs)
    tis = {"agora_ingest": api.task_instances("agora_ingest", run_id)}
    assert ingest["state"] == "success", failures(api, "agora_ingest", run_id)
    transform = wait(
        "agora_transform started by our ingest's Asset event",
        lambda: api.run_started_by("agora_transform", "agora_ingest", run_id),
        RUN_TIMEOUT,
        procs,
    )
    tis["agora_transform"] = api.task_instances("agora_transform", transform["dag_run_id"])
    assert transform["state"] == "success", failures(api, "agora_transform", transform["dag_run_id"])
    assert transform["run_type"] == "asset_triggered"

    # Both workers ran tasks: the hostname each reported, and the pid inside that worker's tree.
    ran = [t for ts in tis.values() for t in ts if t["state"] == "success" and t.get("hostname")]
    by_worker: dict[str, list[str]] = {}
    for t in ran:
        by_worker.setdefault(t["hostname"], []).append(t["task_id"])
        assert t["queue"] == "default", t
        if t.get("pid") in procs.seen:  # sampled every 2 s, so short tasks may be missed
            assert procs.seen[t["pid"]] == t["hostname"], (t["task_id"], t["pid"], t["hostname"])
    assert set(by_worker) == set(WORKERS), {k: len(v) for k, v in by_worker.items()}
    print("\ntasks per worker:", {k: len(v) for k, v in by_worker.items()})
    for name, wdir in cluster["workdirs"].items():
        logs = list((wdir / "airflow" / "logs").rglob("*.log"))
        assert len(logs) >= len(by_worker[name]) > 0, name  # each worker kept its own task logs

    # The warehouse was built from the bucket: load_landing copied the landed rows.
    loaded = api.get(
        f"/dags/agora_transform/dagRuns/{transform['dag_run_id']}/taskInstances/load_landing/xcomEntries/return_value"
    )["value"]
    loaded = loaded if isinstance(loaded, dict) else yaml.safe_load(str(loaded))
    assert loaded["target"] == "postgres" and loaded["rows"] > 1000, loaded

    # The marts were published to PostgreSQL serving: what the reader role sees is what dbt built.
    from agora.publish_pg import _read_marts_postgres

    serving, pg = cluster["cfg"]["serving"], cluster["postgres"]
    reader = psycopg2.connect(
        host=serving["host"],
        port=serving["port"],
        dbname=serving["database"],
        user=serving["reader_role"],
        password=secret["AGORA_READER_PASSWORD"],
    )
    warehouse = psycopg2.connect(
        host=pg.host,
        port=pg.port,
        dbname="agora_wh_celery",
        user="agora_wh_celery",
        password=secret["AGORA_WAREHOUSE_PASSWORD"],
    )
    try:
        published, built = _read_marts_postgres(reader), _read_marts_postgres(warehouse)
    finally:
        reader.close()
        warehouse.close()
    assert set(published) == set(built) and published["community_kpis_monthly"][1]
    for mart, (columns, rows) in built.items():
        assert published[mart][0] == columns, mart
        assert sorted(map(repr, published[mart][1])) == sorted(map(repr, rows)), mart

    # Landing, state and quarantine live in the bucket only; no worker wrote them locally.
    objects = all_objects(cluster["s3"], BUCKET)
    assert any(k.startswith("landing/") and k.endswith(".parquet") for k in objects), sorted(objects)[:20]
    assert any(k.startswith("state/") for k in objects), sorted(objects)[:20]
    for wdir in cluster["workdirs"].values():
        assert not list(wdir.rglob("*.parquet")) and not (wdir / "data" / "landing").exists()

    # No secret in any log, rendered field or XCom.
    values = dict(secret)
    texts = {}
    for path in cluster["root"].rglob("*"):
        if path.is_file() and (path.suffix == ".log" or "logs" in path.parts):
            texts[str(path)] = path.read_text(errors="replace")
    for dag_id, ts in tis.items():
        for t in ts:
            texts[f"rendered {dag_id}.{t['task_id']}[{t['map_index']}]"] = json.dumps(t.get("rendered_fields"))
        run = run_id if dag_id == "agora_ingest" else transform["dag_run_id"]
        for x in _xcoms(api, dag_id, run):
            texts[f"xcom {dag_id}.{x['task_id']}[{x['map_index']}]"] = json.dumps(x.get("value"))
    assert len(texts) > 50
    leaks = [(name, where) for name, value in values.items() for where, text in texts.items() if value in text]
    assert leaks == [], leaks

    # Each process got only the secrets its role uses (the names docker-compose.yml gives it).
    central_only = {"AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"}
    agora_only = {"AGORA_PSEUDONYM_KEY", "AGORA_WAREHOUSE_PASSWORD", "AGORA_SERVING_PASSWORD", "AWS_SECRET_ACCESS_KEY"}
    for name, env in procs.envs.items():
        held = {k for k, v in values.items() if any(v in value for value in env.values())}
        role = "airflow-worker" if name in WORKERS else name
        wanted = role_env(role, secret, cluster["urls"]).values()
        assert held == {k for k, v in values.items() if any(v in value for value in wanted)}, (name, held)
        assert not held & (central_only if name in WORKERS else agora_only), (name, held)


def _xcoms(api: Api, dag_id: str, run_id: str) -> list[dict]:
    entries = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/~/xcomEntries", limit=500)["xcom_entries"]
    out = []
    for e in entries:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{e['task_id']}/xcomEntries/{e['key']}"
        out.append({**e, **api.get(path, map_index=e["map_index"])})
    return out
