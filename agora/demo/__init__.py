"""The offline demo: a simulated community served as a Discourse API, plus the team's files.

``start_demo(workdir)`` writes ``workdir/inputs/``, starts a local server for the forum
and writes ``workdir/agora.yml`` pointing at it, so every command of the pipeline can
run end to end without the internet. Stop the server with ``.stop()`` or use the result
as a context manager.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from agora.demo.community import END, START, Community, build_community
from agora.demo.discourse import serve_discourse
from agora.demo.inputs import write_inputs
from agora.replay import ReplayServer

__all__ = ["DemoCommunity", "start_demo", "ensure_pseudonym_key", "build_community", "START", "END"]

KPI_TARGETS = {
    "returning_newcomer_rate": 0.4,
    "median_hours_to_first_response": 24,
    "response_rate_48h": 0.7,
    "retention_rate": 0.5,
    "nps": 30,
    "closed_loop_rate": 0.6,
}
FORUM_TAGS = [
    {"tag": "topic:install", "keywords": ["install", "upgrade", "setup"]},
    {"tag": "topic:docs", "keywords": ["documentation", "docs"]},
    {"tag": "topic:events", "keywords": ["meetup", "community call", "conference"]},
]


@dataclass
class DemoCommunity:
    workdir: Path
    config_path: Path
    server: ReplayServer
    community: Community
    #: Every raw handle, display name and account-id string: none of them may reach disk.
    handles: list[str]
    start: datetime = START
    end: datetime = END  # exclusive

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> DemoCommunity:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def ensure_pseudonym_key(workdir: Path, env: str = "AGORA_PSEUDONYM_KEY") -> None:
    """Use the key from the environment; else a local one in `workdir/.local/` (gitignored, 0600)."""
    if len(os.environ.get(env, "")) >= 16:
        return
    local = workdir / ".local"
    local.mkdir(parents=True, exist_ok=True)
    (local / ".gitignore").write_text("*\n")
    key_file = local / "pseudonym.key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    os.chmod(key_file, 0o600)
    os.environ[env] = key_file.read_text().strip()


def demo_config(server_url: str, staff_ids: list[int], data_dir: str = "data") -> dict:
    return {
        "community": "Demo community",
        "privacy": {
            "k_min": 5,
            "retention_days": 800,
            "pseudonym_key_env": "AGORA_PSEUDONYM_KEY",
            "staff": [{"platform": "discourse", "account": str(i)} for i in staff_ids],
        },
        "paths": {
            "landing": f"{data_dir}/landing",
            "state": f"{data_dir}/state",
            "quarantine": f"{data_dir}/quarantine",
            "warehouse": f"{data_dir}/warehouse",
        },
        "sources": [
            {"name": "forum", "type": "discourse", "base_url": server_url, "tags": FORUM_TAGS, "max_retries": 2},
            {"name": "survey", "type": "survey", "path": "inputs/survey.csv"},
            {"name": "feedback", "type": "feedback_log", "path": "inputs/feedback.csv"},
            {"name": "learnings", "type": "learnings", "path": "inputs/learnings.yml"},
            {"name": "team", "type": "team_activity", "path": "inputs/team_activity.csv"},
        ],
        "kpis": {"targets": KPI_TARGETS},
    }


def start_demo(workdir: Path, seed: int = 42, data_dir: Path | None = None) -> DemoCommunity:
    """Write inputs and agora.yml into `workdir` and serve the forum; same seed, same data.

    Landing, state, quarantine and warehouse go under `data_dir` (default `workdir/data`).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_pseudonym_key(workdir)
    community = build_community(seed)
    write_inputs(workdir / "inputs", seed)
    server = serve_discourse(community).start()
    try:
        config_path = workdir / "agora.yml"
        cfg = demo_config(server.url, community.staff_ids(), str(Path(data_dir).resolve()) if data_dir else "data")
        config_path.write_text(
            "# Written by `agora demo`: a simulated community served from a local replay server.\n"
            + yaml.safe_dump(cfg, sort_keys=False)
        )
    except BaseException:
        server.stop()
        raise
    return DemoCommunity(workdir, config_path, server, community, community.handles())
