"""agora_transform: landing contract → (PostgreSQL: load landing) → one `dbt build` → mart contract → DP release → publish.

Scheduled on the `agora://landing` Asset that agora_ingest emits.

**dbt runs once per run** (Cosmos watcher mode): the task `dbt.dbt_producer_watcher` runs a
single `dbt build` of the whole project (models, seeds, data tests; unit tests belong in
CI). Every model still has its own task, `dbt.<model>.run`, and its tests `dbt.<model>.test`:
these sensors read the producer's per-node results, so a failed model shows as that
model's task failing, with dbt's error in its log, and the tasks downstream of it do not
run. They start once the build has ended (`dbt.build_finished`).

**Retries**: the producer never runs a second build; a retried producer is skipped and
hands on its first attempt's results. A model task that failed retries by building its own
model (`dbt run --select <model>`), then its tests; the models downstream of it, which dbt
skipped, do the same one by one. Models that succeeded are not built again. Clearing a
failed model task (and its downstream tasks) in the UI does the same.

Every step that writes the warehouse runs in the 1-slot `agora_warehouse` pool: DuckDB
allows a single writer per file, and on PostgreSQL the landing reload must not run under
dbt. The sensors share it because their retry writes. A failed contract fails its task, so
nothing after it runs: the previous serving database stays published.

The warehouse is the one agora.yml configures (`warehouse: {kind: duckdb|postgres|spark}`,
overridden by AGORA_DBT_TARGET, see `agora.warehouse.dbt_target`). Parsing this file reads
no config: `_dbt_settings` reads it in the worker just before each dbt command, and fills
in the warehouse password from the worker's own environment, so the password is never in
XCom or in the rendered task fields.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import chain, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import PRODUCER_WATCHER_TASK_ID, ExecutionMode, InvocationMode, LoadMode, TestBehavior

from agora.assets import LANDING, SERVING
from dags.agora_failures import fail_at_once_if_permanent

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
WAREHOUSE_POOL = "agora_warehouse"


@fail_at_once_if_permanent
def _dbt_settings(context: Any, operator: Any) -> None:
    """Cosmos interceptor, run in the worker just before a dbt command is built.

    Reads agora.yml there (never at parse time) and gives dbt the settings `dbt_env`
    derives from it, as the CLI does. Cosmos passes `--target <ProfileConfig.target_name>`,
    which beats profiles.yml's own choice and is fixed when the DAG is parsed: here it
    becomes the configured target. A sensor that only reads the producer's results never
    gets here.
    """
    import dataclasses
    import logging
    import os

    from agora.config import ConfigError, load_config
    from agora.warehouse import dbt_env

    env = dbt_env(load_config(), with_password=False)
    target = env["AGORA_DBT_TARGET"]
    password_env = env.pop("AGORA_PG_PASSWORD_ENV", None)
    if target == "duckdb":
        Path(env["AGORA_WAREHOUSE_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    elif password_env:
        # Cosmos starts dbt with this process's environment plus `env`: the profile reads
        # AGORA_PG_PASSWORD, so copy the configured variable under that name, here only.
        if not os.environ.get(password_env):
            raise ConfigError(f"warehouse.password_env: environment variable {password_env} is unset on this worker")
        from airflow.sdk.log import mask_secret

        mask_secret(os.environ[password_env])  # masked in task logs and in fields rendered after the run
        env["AGORA_PG_PASSWORD"] = os.environ[password_env]
    spark_password_env = env.pop("AGORA_SPARK_PASSWORD_ENV", None)
    if target == "spark" and env.get("AGORA_SPARK_METHOD") == "thrift":
        # profiles.yml's second Spark output; its password, like PostgreSQL's, is read here.
        target = "spark_thrift"
        if spark_password_env:
            if not os.environ.get(spark_password_env):
                raise ConfigError(f"warehouse.password_env: environment variable {spark_password_env} is unset")
            from airflow.sdk.log import mask_secret

            mask_secret(os.environ[spark_password_env])
            env["AGORA_SPARK_PASSWORD"] = os.environ[spark_password_env]
    logging.getLogger("agora.transform").info("dbt target %s", target)
    operator.env = {**(operator.env or {}), **env}
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
    @task(pool=WAREHOUSE_POOL)
    @fail_at_once_if_permanent
    def landing_contract() -> dict:
        """Great Expectations on landing files new or changed since the last pass; a failure quarantines and stops."""
        from agora import pipeline
        from agora.config import load_config

        return pipeline.run_step(load_config(), "landing contract")

    @task(pool=WAREHOUSE_POOL)
    @fail_at_once_if_permanent
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
            # Replaced at run time by _dbt_settings with the configured target.
            target_name="duckdb",
            profiles_yml_filepath=DBT_PROJECT / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            # One `dbt build` (the producer task) runs the whole graph; every model and its
            # tests get a sensor that reports that node's result (see docs/architecture.md).
            execution_mode=ExecutionMode.WATCHER,
            # A subprocess: an in-process dbt-duckdb connection would block the next task's
            # DuckDB open when tasks share a process (`airflow dags test`).
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=str(Path(sys.executable).with_name("dbt")),
            setup_operator_args={
                # As `agora build`: unit tests check SQL on fixed inputs and belong in CI.
                "dbt_cmd_flags": ["--exclude-resource-type", "unit_test"],
                # A retried producer never re-runs the build: it restores the node results of
                # its first attempt and the failed nodes' sensors rebuild just their model.
                "retries": 1,
                "retry_delay": timedelta(seconds=5),
            },
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # A test sensor per model after its model sensor (BUILD is the producer itself).
            test_behavior=TestBehavior.AFTER_EACH,
        ),
        operator_args={
            # Sensors only read XCom on their first try; on a retry they run their own model
            # (`dbt run --select`), a warehouse write, so they share the writers' pool.
            "pool": WAREHOUSE_POOL,
            "retries": 2,
            "retry_delay": timedelta(seconds=10),
            "poke_interval": 2,
            "install_deps": False,
            # The publish task emits the one Asset downstream consumers need.
            "emit_datasets": False,
            "interceptors": [_dbt_settings],
            "env": {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false"},  # no calls home
        },
    )

    @task(pool=WAREHOUSE_POOL)
    @fail_at_once_if_permanent
    def mart_contract() -> dict:
        """No identifying column and nothing below k_min unsuppressed in the built marts, or nothing is published."""
        from agora import pipeline
        from agora.config import load_config

        return pipeline.run_step(load_config(), "mart contract")

    @task(pool=WAREHOUSE_POOL)
    @fail_at_once_if_permanent
    def dp_release() -> dict:
        """Differential privacy (when agora.yml turns it on): release the months now due, once."""
        from agora import pipeline
        from agora.config import load_config

        return pipeline.run_step(load_config(), "release")

    @task(pool=WAREHOUSE_POOL, outlets=[SERVING])
    @fail_at_once_if_permanent
    def publish() -> dict:
        """Copy the marts (only them) to serving atomically; emits `agora://serving/marts`."""
        from agora import pipeline
        from agora.config import load_config

        return pipeline.run_step(load_config(), "publish")

    chain(landing_contract(), load_landing(), dbt, mart_contract(), dp_release(), publish())
    _sensors_after_the_build(dbt)


def _sensors_after_the_build(dbt: DbtTaskGroup) -> None:
    """Start the model sensors once the producer's `dbt build` has finished, failed or not.

    The producer holds the warehouse pool's only slot while it builds, so no sensor could
    run meanwhile anyway. Ordering them explicitly also keeps `airflow dags test`, which
    runs one task at a time, from running a sensor first and waiting forever on a build
    that never starts. Added after `chain`, so load_landing stays upstream of the sensors:
    if it fails, they do not run (and so never fall back to building a model).
    """
    producer = dbt.children[f"{dbt.group_id}.{PRODUCER_WATCHER_TASK_ID}"]
    build_finished = EmptyOperator(
        task_id="build_finished",
        task_group=dbt,
        trigger_rule="all_done",
        doc_md="The producer's `dbt build` ended (success or failure): the model sensors may read its results.",
    )
    producer >> build_finished
    for sensor in dbt.get_roots():
        if sensor is not producer:
            build_finished >> sensor


agora_transform()
