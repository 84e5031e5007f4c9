"""What the live Airflow tests share: long-running processes stopped by PID, the REST API,
waiting with the processes' logs on failure, and finding the transform run an ingest started.

Used by tests/test_airflow_live.py (LocalExecutor) and tests/test_celery_live.py (Celery).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Long-running processes, each in its own process group, logs in files.

    Airflow's task processes outlive their parents, so every PID ever seen in a tree is
    remembered (`seen`: pid -> the process it belonged to) and stopped by PID.
    """

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.seen: dict[int, str] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        with (self.log_dir / f"{name}.log").open("w") as out:
            self.procs[name] = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.envs[name] = env

    def tree(self) -> list[psutil.Process]:
        """Every live process we started and all their descendants (remembered for the stop)."""
        found = []
        for name, p in self.procs.items():
            try:
                root = psutil.Process(p.pid)
                members = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            found += members
            for m in members:
                self.seen.setdefault(m.pid, name)
        return found

    def dead(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self.procs.items() if p.poll() is not None]

    def stop(self, grace: float = 30) -> list[int]:
        """SIGTERM each process group, then SIGKILL what is left; return PIDs still alive."""
        self.tree()
        for p in self.procs.values():
            _signal_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pid in self.seen:  # children that left the group or outlived their parent
            try:
                if psutil.Process(pid).is_running():
                    os.kill(pid, signal.SIGKILL)
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
        for p in self.procs.values():
            _signal_group(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        time.sleep(0.5)
        alive = []
        for pid in self.seen:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def tail(self, lines: int = 30) -> str:
        parts = []
        for name in self.procs:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()
            parts.append(f"--- {name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


class Api:
    """Airflow's public REST API (v2) with a JWT."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def login(self, username: str | None = None, password: str | None = None) -> None:
        """FAB auth manager with a user and password; the simple auth manager (all admins) without."""
        if username is None:
            r = self.session.get(f"{self.base}/auth/token", timeout=10)
        else:
            r = requests.post(f"{self.base}/auth/token", json={"username": username, "password": password}, timeout=30)
        r.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        r = self.session.get(f"{self.base}/api/v2{path}", params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def send(self, method: str, path: str, body: dict) -> dict:
        r = self.session.request(method, f"{self.base}/api/v2{path}", json=body, timeout=30)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.base}/api/v2/monitor/health", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def parsed(self, *dag_ids: str) -> bool:
        try:
            return all(self.get(f"/dags/{d}") for d in dag_ids)
        except requests.HTTPError:
            return False

    def finished_run(self, dag_id: str, run_id: str) -> dict | None:
        r = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        return r if r["state"] in ("success", "failed") else None

    def run_started_by(self, dag_id: str, source_dag_id: str, source_run_id: str) -> dict | None:
        """The finished run of `dag_id` that an Asset event of `source_run_id` created.

        Unpausing a scheduled DAG also runs its latest interval, whose Asset event starts a
        transform of its own; only the event's `created_dagruns` say which run is ours.
        """
        events = self.get("/assets/events", source_dag_id=source_dag_id, source_run_id=source_run_id)
        for event in events["asset_events"]:
            for ref in event["created_dagruns"]:
                if ref["dag_id"] == dag_id:
                    return self.finished_run(dag_id, ref["run_id"])
        return None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=500)["task_instances"]


def failures(api: Api, dag_id: str, run_id: str, lines: int = 40) -> str:
    """The tasks of a run that did not succeed, each with the end of its log: what a failed assertion shows."""
    out = []
    for t in api.task_instances(dag_id, run_id):
        if t["state"] in ("success", "skipped"):
            continue
        out.append(f"--- {t['task_id']}[{t['map_index']}] {t['state']} (try {t['try_number']}) on {t.get('hostname')}")
        if t["try_number"]:
            path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{t['task_id']}/logs/{t['try_number']}"
            try:
                log = api.get(path, map_index=t["map_index"], full_content="true")
                text = "\n".join(str(e.get("event", e)) if isinstance(e, dict) else str(e) for e in log["content"])
            except Exception as e:  # noqa: BLE001 - the diagnosis must not hide the failure
                text = f"(log unavailable: {e})"
            out.append("\n".join(text.splitlines()[-lines:]))
    return "\n".join(out) or "(every task succeeded)"


def wait(what: str, check: Callable[[], Any], timeout: float, procs: Processes, every: float = 2.0) -> Any:
    """Poll `check` until it returns something truthy; fail with the logs' tails if a process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if procs.dead():
            pytest.fail(f"a process died while waiting for {what}: {procs.dead()}\n{procs.tail()}")
        procs.tree()  # remembers the PIDs of task processes, for the stop and the pid checks
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{procs.tail()}")
