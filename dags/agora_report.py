"""agora_report: the monthly community report, made when the serving marts change.

Scheduled on the serving Asset (`agora://serving/marts`) that `agora_transform` and
`agora_privacy` emit after each publish. `monthly_report` renders the latest month that
was complete when the run was triggered (its `run_after`, never the wall clock) from the
published marts only, into `data/reports/<YYYY-MM>/report.html` and `report.pdf`. A rerun,
or a later publish in the same month, overwrites the same two files: while the month's
values are still provisional the report follows them; after that it no longer changes.
The month a run covers is in its return value (XCom): paths and the month, no data.
See docs/reports.md.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from agora.assets import SERVING


@dag(
    schedule=[SERVING],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["agora", "report"],
    doc_md=__doc__,
)
def agora_report():
    @task(retries=1)
    def monthly_report(dag_run=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from agora.config import ConfigError, load_config
        from agora.report import ReportError, build_report

        when = dag_run.run_after if dag_run is not None else None
        try:
            files = build_report(load_config(), today=when.date() if when else None)
        except (ConfigError, ReportError) as e:  # nothing to retry: say what is missing
            raise AirflowFailException(str(e)) from None
        return files.as_dict()

    monthly_report()


agora_report()
