"""agora_transform: landing contract → dbt (via Cosmos) → mart contract → publish.

Scheduled on the `agora://landing` Asset that agora_ingest emits. Every step that
writes the DuckDB warehouse runs in the 1-slot `agora_warehouse` pool, because DuckDB
allows a single writer per file. A failed contract fails its task, so nothing after it
runs: the previous serving database stays published.

dbt settings (warehouse path, landing root, k_min, targets) come from agora.yml at run
time through the `dbt_settings` task and reach every Cosmos task as environment
variables, so parsing this file reads no config.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import chain, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior

from agora.assets import LANDING, SERVING

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
WAREHOUSE_POOL = "agora_warehouse"
DBT_ENV_KEYS = ("AGORA_WAREHOUSE_PATH", "AGORA_LANDING_ROOT", "AGORA_K_MIN", "AGORA_KPI_TARGETS", "AGORA_COMMUNITY")


@dag(
    schedule=[LANDING],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["agora"],
    doc_md=__doc__,
)
def agora_transform():
    @task
    def dbt_settings() -> dict[str, str]:
        from pathlib import Path

        from agora.config import load_config
        from agora.warehouse import dbt_env

        env = dbt_env(load_config())
        Path(env["AGORA_WAREHOUSE_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        return env

    @task(pool=WAREHOUSE_POOL)
    def landing_contract() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from agora import pipeline
        from agora.config import load_config
        from expectations import ContractFailed

        try:
            return pipeline.validate_landing(load_config())
        except ContractFailed as e:
            raise AirflowFailException(str(e)) from None

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=DBT_PROJECT / "target" / "manifest.json",
        ),
        profile_config=ProfileConfig(
            profile_name="agora",
            target_name="duckdb",
            profiles_yml_filepath=DBT_PROJECT / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            # A subprocess per dbt call: an in-process dbt-duckdb connection would block
            # the next task's DuckDB open when tasks share a process (dags test).
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=str(Path(sys.executable).with_name("dbt")),
        ),
        # BUILD: one `dbt build --select <model>` per task (run + tests + unit tests),
        # half the dbt start-ups of AFTER_EACH.
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            # A test on two models (relationships) runs after both, not inside the first.
            should_detach_multiple_parents_tests=True,
        ),
        operator_args={
            "pool": WAREHOUSE_POOL,
            "install_deps": False,
            "env": {
                **{k: f"{{{{ ti.xcom_pull(task_ids='dbt_settings')['{k}'] }}}}" for k in DBT_ENV_KEYS},
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",  # no calls home
                "DBT_VERSION_CHECK": "false",
            },
        },
    )

    @task(pool=WAREHOUSE_POOL)
    def mart_contract() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from agora import pipeline
        from agora.config import load_config
        from expectations import ContractFailed

        try:
            return pipeline.validate_marts(load_config())
        except ContractFailed as e:
            raise AirflowFailException(str(e)) from None

    @task(pool=WAREHOUSE_POOL, outlets=[SERVING])
    def publish() -> dict:
        from agora import pipeline
        from agora.config import load_config

        return pipeline.publish(load_config())

    chain(dbt_settings(), landing_contract(), dbt, mart_contract(), publish())


agora_transform()
