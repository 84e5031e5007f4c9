"""agora_transform: landing contract → (PostgreSQL: load landing) → dbt (via Cosmos) → mart contract → publish.

Scheduled on the `agora://landing` Asset that agora_ingest emits. Every step that
writes the warehouse runs in the 1-slot `agora_warehouse` pool: DuckDB allows a single
writer per file, and on PostgreSQL the landing reload must not run under a dbt task.
A failed contract fails its task, so nothing after it runs: the previous serving
database stays published.

The warehouse is the one agora.yml configures (`warehouse: {kind: duckdb|postgres}`,
overridden by AGORA_DBT_TARGET, see `agora.warehouse.dbt_target`). Parsing this file reads
no config: the `dbt_settings` task reads it at run time and every Cosmos task gets the
values as environment variables; `_runtime_target` then points the dbt command at the
chosen target and fills in the warehouse password from the worker's own environment,
so the password is never in XCom or in the rendered task fields.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import chain, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior

from agora.assets import LANDING, SERVING

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
WAREHOUSE_POOL = "agora_warehouse"
DBT_ENV_KEYS = (
    "AGORA_DBT_TARGET",
    "AGORA_WAREHOUSE_PATH",
    "AGORA_LANDING_ROOT",
    "AGORA_K_MIN",
    "AGORA_DP_MAX_CONTRIBUTIONS",
    "AGORA_KPI_TARGETS",
    "AGORA_COMMUNITY",
    # Only with `warehouse: {kind: postgres}`; otherwise empty and left to the worker's environment.
    "AGORA_PG_HOST",
    "AGORA_PG_PORT",
    "AGORA_PG_USER",
    "AGORA_PG_DBNAME",
    "AGORA_PG_SSLMODE",
    "AGORA_PG_PASSWORD_ENV",
)


def _runtime_target(context: Any, operator: Any) -> None:
    """Cosmos interceptor, run in the worker just before each dbt command is built.

    Cosmos passes `--target <ProfileConfig.target_name>`, which beats profiles.yml's own
    choice, and target_name is fixed when the DAG is parsed. Here it becomes the target
    `dbt_settings` resolved from agora.yml at run time.
    """
    import dataclasses
    import os

    from agora.config import ConfigError

    env = {k: v for k, v in (operator.env or {}).items() if v != ""}  # unset: the worker's own value stays
    target = env.get("AGORA_DBT_TARGET", "duckdb")
    password_env = env.pop("AGORA_PG_PASSWORD_ENV", None)
    if target == "postgres" and password_env:
        # Cosmos starts dbt with this process's environment plus `env`: the profile reads
        # AGORA_PG_PASSWORD, so copy the configured variable under that name, here only.
        if not os.environ.get(password_env):
            raise ConfigError(f"warehouse.password_env: environment variable {password_env} is unset on this worker")
        from airflow.sdk.log import mask_secret

        mask_secret(os.environ[password_env])  # masked in task logs and in fields rendered after the run
        env["AGORA_PG_PASSWORD"] = os.environ[password_env]
    operator.env = env
    operator.profile_config = dataclasses.replace(operator.profile_config, target_name=target)


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

        env = dbt_env(load_config(), with_password=False)
        if env["AGORA_DBT_TARGET"] == "duckdb":
            Path(env["AGORA_WAREHOUSE_PATH"]).parent.mkdir(parents=True, exist_ok=True)
        return {k: env.get(k, "") for k in DBT_ENV_KEYS}

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

    @task(pool=WAREHOUSE_POOL)
    def load_landing() -> dict:
        """PostgreSQL cannot read landing Parquet: copy it into `landing.events` (a no-op on DuckDB)."""
        from agora import pipeline
        from agora.config import load_config

        return pipeline.load_landing(load_config())

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT,
            manifest_path=DBT_PROJECT / "target" / "manifest.json",
        ),
        profile_config=ProfileConfig(
            profile_name="agora",
            # Replaced at run time by _runtime_target with the configured target.
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
            "interceptors": [_runtime_target],
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

    @task(pool=WAREHOUSE_POOL)
    def dp_release() -> dict:
        """Differential privacy (when agora.yml turns it on): release the months now due, once."""
        from airflow.sdk.exceptions import AirflowFailException

        from agora import pipeline
        from agora.config import load_config
        from agora.dp import BudgetRefused

        try:
            return pipeline.release(load_config())
        except BudgetRefused as e:
            raise AirflowFailException(str(e)) from None

    @task(pool=WAREHOUSE_POOL, outlets=[SERVING])
    def publish() -> dict:
        from agora import pipeline
        from agora.config import load_config

        return pipeline.publish(load_config())

    chain(dbt_settings(), landing_contract(), load_landing(), dbt, mart_contract(), dp_release(), publish())


agora_transform()
