"""agora_privacy: apply opt-out/erasure requests, purge expired partitions, republish.

Daily. `apply_requests` reads the requests file (`privacy.requests` in agora.yml; none
configured = nothing to apply), adds every new request's pseudonyms to the tombstone
list the connectors check, and journals erasures; `purge_retention` deletes landing and
quarantine partitions older than `privacy.retention_days` before the run's data interval
end (never the wall clock). If either left work in the journal, `rebuild_and_publish`
erases the rows from every landing and quarantine file, rebuilds the configured warehouse
(DuckDB: into a fresh file; PostgreSQL: landing reloaded, full refresh), runs the mart
contract, republishes serving, checks that no erased pseudonym remains anywhere, and
writes the audit log. Otherwise it is skipped and serving is not touched.

Every task runs in the 1-slot `agora_warehouse` pool: it changes what dbt reads or
writes. A request whose handle cannot be resolved stays pending and `report_pending`
fails the run after the rest is done, so someone looks. See docs/privacy.md.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import chain, dag, task

from agora.assets import SERVING
from dags.agora_failures import fail_at_once_if_permanent

WAREHOUSE_POOL = "agora_warehouse"


@dag(
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["agora", "privacy"],
    doc_md=__doc__,
)
def agora_privacy():
    @task(pool=WAREHOUSE_POOL)
    @fail_at_once_if_permanent
    def apply_requests() -> dict:
        """Tombstone and journal every new opt-out/erasure request of the requests file."""
        from agora import privacy
        from agora.config import load_config

        cfg = load_config()
        if cfg.privacy.requests is None:  # no requests file configured: nothing to apply
            return privacy.ApplyResult().as_dict()
        return privacy.apply_requests(cfg, rebuild=False).as_dict()

    @task(pool=WAREHOUSE_POOL)
    def purge_retention(data_interval_end=None) -> dict:
        from agora import privacy
        from agora.config import load_config

        return privacy.purge_retention(load_config(), data_interval_end, rebuild=False).as_dict()

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def anything_changed() -> bool:
        from agora import privacy
        from agora.config import load_config

        return privacy.has_pending(load_config())

    @task(pool=WAREHOUSE_POOL, outlets=[SERVING])
    def rebuild_and_publish() -> dict:
        from agora import privacy
        from agora.config import load_config

        return privacy.complete_pending(load_config()).as_dict()

    @task(trigger_rule="none_failed")
    def report_pending(applied: dict) -> int:
        from airflow.sdk.exceptions import AirflowFailException

        pending = applied.get("pending") or []
        if pending:
            lines = "; ".join(f"{where}: {why}" for where, why in pending)
            raise AirflowFailException(f"{len(pending)} privacy requests stay pending: {lines}")
        return 0

    applied = apply_requests()
    chain(applied, purge_retention(), anything_changed(), rebuild_and_publish(), report_pending(applied))


agora_privacy()
