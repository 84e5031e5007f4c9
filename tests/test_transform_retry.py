"""A transform run whose dbt build fails on one model, then recovers through Airflow's retries.

The demo lands once; `agora_transform` runs cleanly (the reference marts). Then one
incremental model's table is broken the way a failed migration or a hand edit would
(a column renamed), and the DAG runs again with `airflow dags test`. The producer's
single `dbt build` fails on that model and skips what depends on it; the test puts the
column back as soon as the producer has failed (the transient cause is gone); Airflow's
retries then rebuild exactly that model and its descendants, one `dbt run` each, and
nothing that had succeeded. The run ends successful with marts identical to the clean run.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from pathlib import Path

import duckdb
import pytest

from agora.airflow_local import airflow_env, dags_test, ensure_metadata
from agora.config import load_config
from agora.demo import start_demo
from agora.extract import run_extract
from agora.publish import serving_path
from agora.warehouse import manifest_path, warehouse_path

PRODUCER = "dbt.dbt_producer_watcher"
# A sensor's task id names its node: dbt.<model>.run / .test, dbt.<model>_run (no tests), dbt.<seed>_seed.
NODE_TASK = re.compile(r"^dbt\.(?P<name>\w+?)(?:\.run|\.test|_run|_seed)$")


def _marts(path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from information_schema.tables order by 1").fetchall()]
        return {t: sorted(map(repr, con.execute(f'select * from marts."{t}"').fetchall())) for t in tables}
    finally:
        con.close()


def _victim(manifest: dict) -> tuple[str, set[str]]:
    """An incremental model with models downstream of it, and those descendants (model names)."""
    nodes, children = manifest["nodes"], manifest["child_map"]

    def descendants(uid: str) -> set[str]:
        out, todo = set(), [uid]
        while todo:
            for child in children.get(todo.pop(), []):
                if child.startswith("model.") and child not in out:
                    out.add(child)
                    todo.append(child)
        return out

    candidates = [
        (len(descendants(uid)), uid)
        for uid, n in nodes.items()
        if n["resource_type"] == "model" and n["config"].get("materialized") == "incremental" and descendants(uid)
    ]
    _, uid = min(candidates)  # the fewest descendants: most of the graph must not be rebuilt
    return nodes[uid]["name"], {nodes[d]["name"] for d in descendants(uid)}


def _task_instances(airflow_home: Path, run_id: str) -> dict[str, tuple[str, int]]:
    con = sqlite3.connect(f"file:{airflow_home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
    try:
        rows = con.execute(
            "select task_id, state, try_number from task_instance where dag_id = 'agora_transform' and run_id = ?",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    return {t: (s, n) for t, s, n in rows}


def _latest_run_id(airflow_home: Path) -> str:
    con = sqlite3.connect(f"file:{airflow_home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(
            "select run_id from dag_run where dag_id = 'agora_transform' order by id desc limit 1"
        ).fetchone()[0]
    finally:
        con.close()


class ProducerWatch(threading.Thread):
    """Puts the column back once the producer's build has failed (it then holds no DuckDB handle)."""

    def __init__(self, airflow_home: Path, known_runs: int, repair):
        super().__init__(daemon=True)
        self.airflow_home, self.known_runs, self.repair = airflow_home, known_runs, repair
        self.repaired_after: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        db = self.airflow_home / "airflow.db"
        while not self.stop.is_set():
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                try:
                    row = con.execute(
                        "select ti.state from task_instance as ti join dag_run as r "
                        "on r.dag_id = ti.dag_id and r.run_id = ti.run_id "
                        "where ti.dag_id = 'agora_transform' and ti.task_id = ? "
                        "order by r.id desc limit 1 offset 0",
                        [PRODUCER],
                    ).fetchone()
                    runs = con.execute("select count(*) from dag_run where dag_id = 'agora_transform'").fetchone()[0]
                finally:
                    con.close()
            except sqlite3.OperationalError:  # locked for a moment by the run's own writes
                row, runs = None, 0
            if runs > self.known_runs and row and row[0] in ("up_for_retry", "failed", "skipped"):
                self.repair()
                self.repaired_after = row[0]
                return
            time.sleep(0.3)


@pytest.fixture(scope="module")
def retried_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("retry")
    demo = start_demo(root / "demo", seed=7, data_dir=root / "data")
    try:
        cfg = load_config(demo.config_path)
        for source in cfg.sources:
            run_extract(cfg, source.name, demo.start, demo.end)
        home = root / "airflow"
        env = airflow_env(demo.config_path, home=home)
        log = root / "airflow.log"
        ensure_metadata(env)
        dags_test("agora_transform", "2026-11-01T00:00:00+00:00", env, None, log)
        clean = _marts(serving_path(cfg))

        victim, downstream = _victim(json.loads(manifest_path().read_text()))
        con = duckdb.connect(warehouse_path(cfg))
        table = f'intermediate."{victim}"'
        column = con.execute(f"select * from {table} limit 0").description[0][0]
        con.execute(f'alter table {table} rename column "{column}" to "{column}__broken"')
        con.close()

        def repair() -> None:
            c = duckdb.connect(warehouse_path(cfg))
            try:
                c.execute(f'alter table {table} rename column "{column}__broken" to "{column}"')
            finally:
                c.close()

        watch = ProducerWatch(home, known_runs=1, repair=repair)
        watch.start()
        log_start = log.stat().st_size
        try:
            dags_test("agora_transform", "2026-11-02T00:00:00+00:00", env, None, log)
        finally:
            watch.stop.set()
            watch.join(timeout=10)
        with log.open() as f:
            f.seek(log_start)
            run_log = f.read()
        yield {
            "clean": clean,
            "after": _marts(serving_path(cfg)),
            "tis": _task_instances(home, _latest_run_id(home)),
            "victim": victim,
            "downstream": downstream,
            "repaired_after": watch.repaired_after,
            "log": run_log,
        }
    finally:
        demo.stop()


def test_the_broken_model_failed_in_the_single_build(retried_run):
    assert retried_run["repaired_after"] in ("up_for_retry", "failed"), "the producer's build must fail first"
    state, tries = retried_run["tis"][PRODUCER]
    assert (state, tries) == ("skipped", 2), "a retried producer hands on its results and never builds again"
    assert f"model.agora.{retried_run['victim']}" in retried_run["log"]


def test_only_the_failed_model_and_its_descendants_are_rebuilt(retried_run):
    rebuilt = set(re.findall(r"Retry attempt #\d+ . Running model 'model\.agora\.(\w+)'", retried_run["log"]))
    assert rebuilt == {retried_run["victim"], *retried_run["downstream"]}
    # One whole build in the run (the producer's first try); every rebuild is one model's own command.
    assert len(re.findall(r"Running command: \['[^']*dbt', 'build'", retried_run["log"])) == 1
    for task_id, (state, tries) in retried_run["tis"].items():
        m = NODE_TASK.match(task_id)
        if not m:
            continue
        assert state == "success", (task_id, state)
        if m["name"] in rebuilt:
            assert tries >= 2, task_id
        elif task_id.endswith((".run", "_run", "_seed")):
            assert tries == 1, f"{task_id} succeeded in the build and must not run again"


def test_marts_equal_a_clean_run(retried_run):
    assert retried_run["after"] == retried_run["clean"]
    assert "community_kpis_monthly" in retried_run["after"] and retried_run["after"]["community_kpis_monthly"]
