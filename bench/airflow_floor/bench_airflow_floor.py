"""Airflow's own floor: a DAG of no-op tasks, run by `python -m bench` through `airflow dags
test` beside agora_transform, so the cost Airflow adds whatever a DAG does is measured in
the same run (issue 14). The number of tasks comes from AGORA_BENCH_FLOOR_TASKS."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import chain, dag, task


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["bench"], doc_md=__doc__)
def bench_airflow_floor():
    @task
    def noop() -> None:
        """Does nothing: what remains is Airflow's cost of running a task."""

    chain(*[noop.override(task_id=f"noop_{i}")() for i in range(int(os.environ.get("AGORA_BENCH_FLOOR_TASKS", "1")))])


bench_airflow_floor()
