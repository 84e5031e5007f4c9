"""The DAG files: import cleanly, parse fast, and are wired the way the design says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DAGS = ROOT / "dags"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run([sys.executable, "-m", "agora.warehouse", "parse"], cwd=ROOT, env=env, check=True)
    return env


PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk, airflow.models  # Airflow's own import, paid by every DAG processor
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
timings = {}
dags = {}
errors = {}
for f in sys.argv[1:]:
    t = time.process_time()  # CPU: what the file costs, whatever else loads the machine
    bag = DagBag(dag_folder=f)
    timings[f] = time.process_time() - t
    errors.update({k: str(v) for k, v in bag.import_errors.items()})
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "tasks": sorted(dag.task_ids),
            "schedule": type(dag.timetable).__name__ + " " + str(getattr(dag.timetable, "asset_condition", "")),
            "pools": sorted({t.pool for t in dag.tasks}),
            "outlets": sorted({str(getattr(o, "name", o)) for t in dag.tasks for o in t.outlets}),
            "kinds": {t.task_id: type(t).__name__ for t in dag.tasks},
            "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
            "docs": {t.task_id: bool(t.doc_md) for t in dag.tasks},
            "dag_doc": bool(dag.doc_md),
        }
print(json.dumps({"airflow_import": t1 - t0, "parse": timings, "errors": errors, "dags": dags}))
"""


@pytest.fixture(scope="module")
def probe(airflow_env):
    files = sorted(str(p) for p in DAGS.glob("*.py"))
    res = subprocess.run([sys.executable, "-c", PROBE, *files], env=airflow_env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_no_import_errors(probe):
    assert probe["errors"] == {}
    assert {"agora_ingest", "agora_transform"} <= set(probe["dags"])


def test_dag_files_parse_fast(probe):
    # Loose bound against regressions (top-level I/O, heavy imports); bench/ measures it precisely.
    for path, seconds in probe["parse"].items():
        assert seconds < 3, f"{path} took {seconds:.2f} s of CPU to parse"


def test_ingest_maps_one_task_per_source_and_emits_landing(probe):
    ingest = probe["dags"]["agora_ingest"]
    assert {"list_sources", "extract", "landing_ready"} <= set(ingest["tasks"])
    assert "agora://landing" in ingest["outlets"]


def test_transform_is_asset_scheduled_and_serialises_warehouse_writers(probe):
    transform = probe["dags"]["agora_transform"]
    assert "agora://landing" in transform["schedule"] or "Asset" in transform["schedule"]
    assert {"landing_contract", "mart_contract", "publish"} <= set(transform["tasks"])
    assert any(t.startswith("dbt.") for t in transform["tasks"]), "dbt models run through Cosmos"
    assert "agora_warehouse" in transform["pools"]
    assert "agora://serving/marts" in transform["outlets"]


def test_report_is_scheduled_on_the_serving_asset(probe):
    report = probe["dags"]["agora_report"]
    assert "agora://serving/marts" in report["schedule"]
    assert report["tasks"] == ["monthly_report"]


def test_transform_runs_dbt_once_and_watches_every_model(probe):
    """Watcher mode: one producer task runs `dbt build`; each model and its tests are sensors
    that start only after that build ended (success or not), behind load_landing."""
    transform = probe["dags"]["agora_transform"]
    kinds, upstream = transform["kinds"], transform["upstream"]
    producers = [t for t, k in kinds.items() if k == "DbtProducerWatcherOperator"]
    assert producers == ["dbt.dbt_producer_watcher"]
    assert upstream["dbt.dbt_producer_watcher"] == ["load_landing"]
    assert upstream["dbt.build_finished"] == ["dbt.dbt_producer_watcher"]
    sensors = [t for t, k in kinds.items() if k.endswith("WatcherOperator") and t not in producers]
    assert any(t.endswith(".test") for t in sensors) and len(sensors) > 20
    assert not [k for k in kinds.values() if k.startswith("DbtBuild") or k.endswith("LocalOperator")]
    for t in sensors:
        ups = upstream[t]
        inside = [u for u in ups if u.startswith("dbt.")]
        assert inside, f"{t} must wait for the build or an upstream model"
        if inside == ["dbt.build_finished"]:
            assert "load_landing" in ups, f"{t} would run (and fall back to building) after a failed load"
    assert all(transform["docs"][t] for t in ("landing_contract", "load_landing", "mart_contract", "publish"))


def test_every_dag_is_documented(probe):
    assert all(d["dag_doc"] for d in probe["dags"].values())


def test_permanent_errors_fail_the_task_at_once_and_transient_ones_retry():
    """dags/agora_failures.py: a private repository or a bad config fails at once; the network retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from agora.config import ConfigError
    from agora.errors import is_permanent
    from connectors.github import PrivateRepositoryError
    from connectors.http import HttpError, RetryableHttpError
    from dags.agora_failures import fail_at_once_if_permanent
    from expectations.result import ContractFailed, ContractResult

    permanent = [
        PrivateRepositoryError("github repo a/b: repository is not public"),
        ConfigError("sources[0].base_url: not a URL"),
        HttpError("repos/a/b: HTTP 401", 401),
        ContractFailed(ContractResult(suite="landing")),
    ]
    transient = [RetryableHttpError("HTTP 503", 503), HttpError("gave up after 4 attempts", None), OSError("locked")]
    assert [is_permanent(e) for e in permanent] == [True] * len(permanent)
    assert [is_permanent(e) for e in transient] == [False] * len(transient)

    def raising(e):
        @fail_at_once_if_permanent
        def task_body():
            raise e

        return task_body

    for e in permanent:
        with pytest.raises(AirflowFailException, match=type(e).__name__):
            raising(e)()
    for e in transient:
        with pytest.raises(type(e)):
            raising(e)()
