"""The offline demo: a simulated community on every platform, plus the team's files.

Which platforms, and how each is generated, served and configured, comes from the connector
registry: every platform that declares ``demo="agora.demo.<name>"`` is in the demo, and
that module provides ``serve(c, server, seed)``, ``source(server_url)``, ``DROPS`` (the
drop reasons its data makes the connector meet), ``COHORT`` and ``ID_BASE`` (or
``community(seed)`` for the forum), and optionally ``staff_account(id)``,
``extra_handles(c)`` and ``environment()`` (docs/connectors.md, "Adding a source").

``start_demo(workdir)`` writes ``workdir/inputs/``, starts one local server that answers as
the forum (Discourse), GitHub, a MediaWiki wiki with pageviews, Stack Exchange, X and a
Mastodon instance, and writes ``workdir/agora.yml`` pointing every source at it, so every
command of the pipeline can run end to end without the internet. Each platform has its
own, smaller population (accounts are never linked across platforms). Stop the server
with ``.stop()`` or use the result as a context manager.
"""

from __future__ import annotations

import importlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agora.demo.community import END, START, Community, build_community, build_platform
from agora.demo.inputs import write_inputs
from agora.demo.server import DemoServer
from agora.replay import ReplayServer

__all__ = [
    "DemoCommunity",
    "start_demo",
    "ensure_pseudonym_key",
    "build_community",
    "build_platforms",
    "X_TOKEN_ENV",
    "START",
    "END",
]

KPI_TARGETS = {
    "returning_newcomer_rate": 0.4,
    "median_hours_to_first_response": 24,
    "response_rate_48h": 0.7,
    "retention_rate": 0.5,
    "nps": 30,
    "closed_loop_rate": 0.6,
}
from agora.demo.x import TOKEN_ENV as X_TOKEN_ENV  # noqa: E402 - kept for callers of agora.demo

#: The platform whose demo module builds the main community (``community(seed)``): the forum.
FORUM = "discourse"


def demo_modules() -> dict[str, Any]:
    """Platform name -> its demo module, for every platform that declares one (registry order)."""
    from connectors.registry import platforms

    return {p.name: importlib.import_module(p.demo) for p in platforms() if p.demo}


@dataclass
class DemoCommunity:
    workdir: Path
    config_path: Path
    server: ReplayServer
    community: Community
    #: The other platforms' communities: github, mediawiki, stackexchange, x, mastodon.
    platforms: dict[str, Community]
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


def _staff(platforms: dict[str, Community]) -> list[dict[str, str]]:
    out = []
    modules = demo_modules()
    for platform, c in platforms.items():
        name_account = getattr(modules[platform], "staff_account", str)
        for i in c.staff_ids():
            out.append({"platform": platform, "account": name_account(i)})
    return out


def demo_config(
    server_url: str, staff_ids: list[int], data_dir: str = "data", platforms: dict[str, Community] | None = None
) -> dict:
    platforms = platforms or {}
    return {
        "community": "Demo community",
        "privacy": {
            "k_min": 5,
            "retention_days": 800,
            "pseudonym_key_env": "AGORA_PSEUDONYM_KEY",
            "staff": [{"platform": "discourse", "account": str(i)} for i in staff_ids] + _staff(platforms),
            "contact": "privacy@demo.example.org",  # shown by `agora notice`
        },
        "paths": {
            "landing": f"{data_dir}/landing",
            "state": f"{data_dir}/state",
            "quarantine": f"{data_dir}/quarantine",
            "warehouse": f"{data_dir}/warehouse",
        },
        "sources": [
            demo_modules()[FORUM].source(server_url),
            *(platform_sources(server_url) if platforms else []),
            {"name": "survey", "type": "survey", "path": "inputs/survey.csv"},
            {"name": "feedback", "type": "feedback_log", "path": "inputs/feedback.csv"},
            {"name": "learnings", "type": "learnings", "path": "inputs/learnings.yml"},
            {"name": "team", "type": "team_activity", "path": "inputs/team_activity.csv"},
        ],
        "kpis": {"targets": KPI_TARGETS},
    }


def platform_sources(server_url: str) -> list[dict]:
    """The demo's sources on the other platforms, all served by the one local server."""
    return [m.source(server_url) for name, m in demo_modules().items() if name != FORUM]


def build_platforms(seed: int = 42) -> dict[str, Community]:
    return {
        name: build_platform(name, seed, m.COHORT, m.ID_BASE) for name, m in demo_modules().items() if name != FORUM
    }


def platform_handles(platforms: dict[str, Community]) -> list[str]:
    """Every raw handle, name and id string of the other platforms, plus what each demo module
    adds (the wiki's IP editors, the instance-qualified Mastodon ids)."""
    out: list[str] = []
    modules = demo_modules()
    for platform, c in platforms.items():
        out += c.handles()
        out += getattr(modules[platform], "extra_handles", lambda _c: [])(c)
    return list(dict.fromkeys(out))


def serve_platforms(community: Community, platforms: dict[str, Community], seed: int) -> DemoServer:
    """One server for every platform: the forum's routes recorded, the others computed per request."""
    server = DemoServer()
    for name, m in demo_modules().items():
        m.serve(community if name == FORUM else platforms[name], server, seed)
    return server


def start_demo(workdir: Path, seed: int = 42, data_dir: Path | None = None) -> DemoCommunity:
    """Write inputs and agora.yml into `workdir` and serve the forum; same seed, same data.

    Landing, state, quarantine and warehouse go under `data_dir` (default `workdir/data`).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_pseudonym_key(workdir)
    for m in demo_modules().values():
        for k, v in getattr(m, "environment", dict)().items():
            os.environ.setdefault(k, v)
    community = demo_modules()[FORUM].community(seed)
    platforms = build_platforms(seed)
    write_inputs(workdir / "inputs", seed)
    server = serve_platforms(community, platforms, seed).start()
    try:
        config_path = workdir / "agora.yml"
        data = str(Path(data_dir).resolve()) if data_dir else "data"
        cfg = demo_config(server.url, community.staff_ids(), data, platforms)
        config_path.write_text(
            "# Written by `agora demo`: a simulated community served from a local replay server.\n"
            + yaml.safe_dump(cfg, sort_keys=False)
        )
    except BaseException:
        server.stop()
        raise
    handles = list(dict.fromkeys(community.handles() + platform_handles(platforms)))
    return DemoCommunity(workdir, config_path, server, community, platforms, handles)
