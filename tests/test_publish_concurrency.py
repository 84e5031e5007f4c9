"""Two builds, two publishes at the same time (a DAG run beside a CLI run, two rebuilds):
each pair serialises or fails cleanly; nothing is lost and serving stays intact.

Real processes, real DuckDB files, dbt and PostgreSQL; no patched functions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import psycopg2
import pytest

from agora.config import PostgresServing, load_config
from agora.publish import serving_path
from agora.publish_pg import provision
from tests.conftest import ROOT, write_config
from tests.landing_factory import write_mixed_community
from tests.test_publish import SOURCES, build_warehouse, served_value

PUBLISHES = 6  # per process

# Publishes PUBLISHES times in a row, after both processes are ready (a shared start file).
PUBLISHER = textwrap.dedent(
    """
    import os, sys, time
    from agora.config import load_config
    from agora.publish import publish

    cfg = load_config(sys.argv[1])
    open(sys.argv[2] + "." + str(os.getpid()), "w").close()
    while len([f for f in os.listdir(os.path.dirname(sys.argv[2])) if f.startswith("ready.")]) < 2:
        time.sleep(0.01)
    for _ in range(int(sys.argv[3])):
        print(sorted(publish(cfg).tables.items()), flush=True)
    """
)


def _concurrently(cmds: list[list[str]], cwd: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def _publishers(config: Path, root: Path) -> list[list[str]]:
    ready = root / "start" / "ready"
    ready.parent.mkdir(exist_ok=True)
    return [[sys.executable, "-c", PUBLISHER, str(config), str(ready), str(PUBLISHES)] for _ in range(2)]


def test_two_duckdb_publishes_serialise_and_serving_stays_readable(workdir):
    config = write_config(workdir, SOURCES)
    cfg = load_config(config)
    warehouse = Path(cfg.path("warehouse"))
    warehouse.mkdir(parents=True)
    build_warehouse(warehouse / "agora.duckdb", 5.0)
    target = serving_path(cfg)

    reads, errors, stop = [], [], threading.Event()

    def read_loop():
        while not stop.is_set():
            if not target.exists():
                continue
            try:
                reads.append(served_value(target))
            except duckdb.Error as e:
                errors.append(str(e))

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        runs = _concurrently(_publishers(config, workdir), workdir, {**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        stop.set()
        reader.join(timeout=60)
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.count("('community_kpis_monthly', 1)") == PUBLISHES, run.stdout
    assert errors == [] and reads and set(reads) == {5.0}
    assert served_value(target) == 5.0
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("select count(*) from marts.kpi_catalog").fetchone()[0] == 1
    finally:
        con.close()
    assert not list(warehouse.glob("*.new")), "no half-published file left"


def test_a_waiting_publish_copies_the_warehouse_as_it_is_when_its_turn_comes(workdir):
    from agora.publish import publish, publish_lock

    cfg = load_config(write_config(workdir, SOURCES))
    warehouse = Path(cfg.path("warehouse"))
    warehouse.mkdir(parents=True)
    build_warehouse(warehouse / "agora.duckdb", 1.0)
    published = []
    with publish_lock(str(serving_path(cfg))):  # a publish in progress
        waiting = threading.Thread(target=lambda: published.append(publish(cfg)))
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive(), "the second publish must wait for the first"
        build_warehouse(warehouse / "agora.duckdb", 2.0)  # a newer build lands meanwhile
    waiting.join(timeout=120)
    assert len(published) == 1 and served_value(serving_path(cfg)) == 2.0


# One `agora build`: prints its counts (not its timing) as JSON, or the one-line error.
BUILDER = textwrap.dedent(
    """
    import json, sys
    from agora.config import load_config
    from agora.warehouse import WarehouseError, build

    try:
        res = build(load_config(sys.argv[1]))
    except WarehouseError as e:
        print("ERROR", e)
        sys.exit(1)
    print(json.dumps({k: v for k, v in res.as_dict().items() if k != "seconds"}))
    """
)


def test_two_builds_at_once_serialise_or_fail_cleanly(workdir):
    """Two builds on one DuckDB warehouse: DuckDB lets one process write the file, so the
    second may fail — with a clear error, each with its own results, the warehouse intact."""
    config = write_config(workdir, SOURCES, privacy={"k_min": 5})
    cfg = load_config(config)
    write_mixed_community(cfg.path("landing"), days=60)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AGORA_DBT_TARGET", None)
    cmd = [sys.executable, "-c", BUILDER, str(config)]
    solo = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert solo.returncode == 0, solo.stdout[-2000:] + solo.stderr[-2000:]
    kpis = _kpis(cfg)
    shared = ROOT / "dbt_project" / "target"

    def written_in_place() -> dict:
        # What dbt would write into a shared target path; the manifest and the parse cache
        # are replaced whole (renamed in) after a build, and runs/ holds each invocation's own.
        return {
            p: p.stat().st_mtime_ns
            for p in shared.rglob("*")
            if p.is_file() and p.name not in ("manifest.json", "partial_parse.msgpack") and "runs" not in p.parts
        }

    before = written_in_place()
    runs_before = {d.name for d in (shared / "runs").iterdir()} if (shared / "runs").exists() else set()

    runs = _concurrently([cmd, cmd], workdir, env)

    ok = [r for r in runs if r.returncode == 0]
    assert ok, [r.stdout[-1500:] + r.stderr[-1500:] for r in runs]
    for r in runs:
        if r.returncode != 0:
            assert r.stdout.startswith("ERROR") and "lock" in r.stdout.lower(), r.stdout[-3000:] + r.stderr[-3000:]
    for r in ok:  # each reports its own dbt run, not a mix of both
        assert r.stdout == solo.stdout
    print("concurrent builds:", [r.returncode for r in runs])
    assert _kpis(cfg) == kpis, "the warehouse is intact"
    # Nothing in the shared dbt_project/target was written in place: each invocation had its
    # own directory, removed after its success; the manifest the contract reads is whole.
    assert written_in_place() == before
    kept = [d for d in (shared / "runs").iterdir() if d.name not in runs_before]
    assert len(kept) == len([r for r in runs if r.returncode != 0])  # a failed one keeps its logs
    for d in kept:
        shutil.rmtree(d)
    assert "model.agora.community_kpis_monthly" in json.loads((shared / "manifest.json").read_text())["nodes"]


def _kpis(cfg) -> list[tuple]:
    con = duckdb.connect(os.path.join(cfg.path("warehouse"), "agora.duckdb"), read_only=True)
    try:
        return con.execute("select * from marts.community_kpis_monthly order by all").fetchall()
    finally:
        con.close()


READER_PASSWORD = "reader-concurrency-test"
PUBLISHER_PASSWORD = "publisher-concurrency-test"


def test_two_postgres_publishes_serialise_and_readers_never_fail(tmp_path, postgres, monkeypatch):
    serving = PostgresServing(kind="postgres", host=postgres.host, port=postgres.port, database="serving_concurrency")
    monkeypatch.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
    provision(postgres.url(), serving, READER_PASSWORD)
    config = write_config(
        tmp_path,
        SOURCES,
        serving={"kind": "postgres", "host": postgres.host, "port": postgres.port, "database": "serving_concurrency"},
    )
    cfg = load_config(config)
    Path(cfg.path("warehouse")).mkdir(parents=True)
    build_warehouse(Path(cfg.path("warehouse")) / "agora.duckdb", 7.0)

    seen, errors, stop = [], [], threading.Event()

    def read_loop():
        conn = psycopg2.connect(
            host=postgres.host,
            port=postgres.port,
            dbname=serving.database,
            user="agora_reader",
            password=READER_PASSWORD,
        )
        conn.autocommit = True
        try:
            while not stop.is_set():
                try:
                    with conn.cursor() as cur:
                        cur.execute("select value from marts.community_kpis_monthly")
                        seen.append(cur.fetchone()[0])
                except psycopg2.errors.UndefinedTable:
                    pass  # before the first publish only (checked below)
                except psycopg2.Error as e:
                    errors.append(str(e))
        finally:
            conn.close()

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        runs = _concurrently(_publishers(config, tmp_path), tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        stop.set()
        reader.join(timeout=60)
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.count("('community_kpis_monthly', 1)") == PUBLISHES, run.stdout
    assert errors == [] and seen and set(seen) == {7.0}
    schemas = postgres.psql(
        "select string_agg(nspname, ',' order by nspname) from pg_namespace where nspname like 'marts%'",
        database=serving.database,
    ).strip()
    assert schemas == "marts"


@pytest.fixture(autouse=True)
def _no_dbt_target_override(monkeypatch):
    monkeypatch.delenv("AGORA_DBT_TARGET", raising=False)


def test_a_waiting_postgres_publish_copies_the_warehouse_as_it_is_when_its_turn_comes(tmp_path, postgres, monkeypatch):
    from agora.publish import publish

    serving = PostgresServing(kind="postgres", host=postgres.host, port=postgres.port, database="serving_wait")
    monkeypatch.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
    provision(postgres.url(), serving, READER_PASSWORD)
    cfg = load_config(
        write_config(
            tmp_path,
            SOURCES,
            serving={"kind": "postgres", "host": postgres.host, "port": postgres.port, "database": "serving_wait"},
        )
    )
    warehouse = Path(cfg.path("warehouse"))
    warehouse.mkdir(parents=True)
    build_warehouse(warehouse / "agora.duckdb", 1.0)
    holder = psycopg2.connect(postgres.url(serving.database))  # a publish in progress holds the lock
    holder.autocommit = True
    with holder.cursor() as cur:
        cur.execute("select pg_advisory_lock(hashtext('agora.publish:marts'))")
    published = []
    waiting = threading.Thread(target=lambda: published.append(publish(cfg)))
    waiting.start()
    try:
        waiting.join(timeout=2.0)
        assert waiting.is_alive(), "the second publish must wait for the first"
        build_warehouse(warehouse / "agora.duckdb", 2.0)  # a newer build lands meanwhile
    finally:
        holder.close()  # the first publish ends
    waiting.join(timeout=120)
    assert len(published) == 1
    value = postgres.psql("select value from marts.community_kpis_monthly", database=serving.database).strip()
    assert float(value) == 2.0
