"""agora_ingest: pull every configured source into the landing zone, one mapped task each.

Each task lands one source for the run's data interval (or the `since`/`until` params,
for backfills and the demo), pseudonymised at the edge, and then emits that source's
Asset. When all sources are done the `agora://landing` Asset schedules agora_transform.
Network errors are retried with backoff; anything else fails at once (a retry would
not fix a bad config or a private repository).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from agora.assets import LANDING, LANDING_SOURCES
from dags.agora_failures import fail_at_once_if_permanent


@dag(
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["agora"],
    params={
        "since": Param(None, type=["null", "string"], description="ISO start overriding the data interval."),
        "until": Param(None, type=["null", "string"], description="ISO end overriding the data interval."),
    },
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    doc_md=__doc__,
)
def agora_ingest():
    @task
    @fail_at_once_if_permanent
    def list_sources() -> list[str]:
        """The sources agora.yml configures, one mapped extract each."""
        from agora.config import load_config

        return [s.name for s in load_config().sources]

    @task(
        outlets=[LANDING_SOURCES],
        map_index_template="{{ task.op_kwargs['source'] }}",
        execution_timeout=timedelta(hours=2),  # a hung source fails and retries instead of blocking the run
    )
    @fail_at_once_if_permanent
    def extract(source: str, params=None, data_interval_start=None, data_interval_end=None, outlet_events=None):
        """Land one source for the run's interval (or the since/until params); emits its Asset."""
        from agora.assets import source_asset
        from agora.config import load_config
        from agora.extract import run_extract

        since = (params or {}).get("since") or data_interval_start
        until = (params or {}).get("until") or data_interval_end
        summary = run_extract(load_config(), source, since, until)
        outlet_events[LANDING_SOURCES].add(source_asset(source), extra={"run_id": summary.run_id})
        return summary.as_dict()

    @task(outlets=[LANDING])
    def landing_ready(summaries: list[dict]) -> dict:
        """One event for the whole landing zone, so agora_transform runs once per ingest."""
        return {s["source"]: s["landed"] for s in summaries}

    landing_ready(extract.expand(source=list_sources()))


agora_ingest()
