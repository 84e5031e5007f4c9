"""A local Airflow for the embedded default: SQLite metadata in a gitignored folder.

`agora demo` runs the real DAGs through `airflow dags test` (every task in one process,
no scheduler needed), so the demo exercises exactly what production runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WAREHOUSE_POOL = "agora_warehouse"


def airflow_env(config_path: Path, home: Path | None = None) -> dict[str, str]:
    home = home or REPO / ".local" / "airflow"
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
            "AGORA_CONFIG": str(config_path),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
    )
    return env


def _airflow(args: list[str], env: dict[str, str], log_file: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    if log_file is None:
        return subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        return subprocess.run(cmd, env=env, check=False, stdout=out, stderr=subprocess.STDOUT, text=True)


def ensure_metadata(env: dict[str, str]) -> None:
    """Create/upgrade the SQLite metadata DB and the 1-slot warehouse pool (idempotent)."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    for args in (
        ["db", "migrate"],
        ["pools", "set", WAREHOUSE_POOL, "1", "DuckDB allows one writer: warehouse writers queue here"],
    ):
        res = _airflow(args, env)
        if res.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")


def dags_test(
    dag_id: str,
    logical_date: str,
    env: dict[str, str],
    conf: dict | None,
    log_file: Path,
    on_task: Callable[[str], None] | None = None,
) -> None:
    """Run one DAG run in-process; raise with the log's tail if any task failed.

    `on_task(task)` is called as each task starts (read from the run's log): its task id,
    with the map index for a mapped task (``extract[3]``)."""
    args = ["dags", "test", dag_id, logical_date]
    if conf:
        args += ["--conf", json.dumps(conf)]
    start = log_file.stat().st_size if log_file.exists() else 0
    if on_task is None:
        returncode = _airflow(args, env, log_file).returncode
    else:
        returncode = _airflow_watching(args, env, log_file, start, on_task)
    if returncode != 0:
        with log_file.open() as f:
            f.seek(start)
            run_log = f.read()
        raise RuntimeError(f"DAG {dag_id} failed (full log: {log_file}):\n{failure_summary(run_log)}")


_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)(?: map_index=(-?\d+))?")


def _airflow_watching(
    args: list[str], env: dict[str, str], log_file: Path, start: int, on_task: Callable[[str], None]
) -> int:
    """`airflow <args>` into `log_file`, reporting each task start found in the log meanwhile."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    with log_file.open() as f:
        f.seek(start)
        pending = ""
        while True:
            done = proc.poll() is not None
            pending += f.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                m = _TASK_START.search(line)
                if m:
                    mapped = m.group(2) not in (None, "-1")
                    on_task(f"{m.group(1)}[{m.group(2)}]" if mapped else m.group(1))
            if done:
                return proc.returncode
            time.sleep(0.5)


def failure_summary(run_log: str, limit: int = 40) -> str:
    """The lines that say what broke: failed tasks and the errors logged before them."""
    keep = [
        line[:400]
        for line in run_log.splitlines()
        if any(k in line for k in ("new_state=failed", "Task failed", "[ERROR]", "Error:", "failed on", "Exception:"))
        and "nanobind" not in line
    ]
    return "\n".join(keep[:limit]) or run_log[-3000:]
