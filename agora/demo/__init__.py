"""The offline demo: a simulated community on every platform, plus the team's files.

``start_demo(workdir)`` writes ``workdir/inputs/``, starts one local server that answers as
the forum (Discourse), GitHub, a MediaWiki wiki with pageviews, Stack Exchange, X and a
Mastodon instance, and writes ``workdir/agora.yml`` pointing every source at it, so every
command of the pipeline can run end to end without the internet. Each platform has its
own, smaller population (accounts are never linked across platforms). Stop the server
with ``.stop()`` or use the result as a context manager.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from agora.demo import github, mastodon, mediawiki, stackexchange, x
from agora.demo.community import END, GONE, START, Community, build_community, build_platform
from agora.demo.discourse import serve_discourse
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
#: The demo's X source reads this variable; the demo sets it to a dummy token (not a secret).
X_TOKEN_ENV = "AGORA_DEMO_X_BEARER_TOKEN"
#: Cohort size per platform (the forum's monthly cohorts are about 10-20 newcomers).
PLATFORM_COHORTS = {"github": 7.0, "mediawiki": 6.5, "stackexchange": 6.5, "x": 8.0, "mastodon": 7.0}
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
    for platform, c in platforms.items():
        for i in c.staff_ids():
            account = mastodon.account_id(i) if platform == "mastodon" else str(i)
            out.append({"platform": platform, "account": account})
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
            {"name": "forum", "type": "discourse", "base_url": server_url, "tags": FORUM_TAGS, "max_retries": 2},
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
    return [
        {
            "name": "gh",
            "type": "github",
            "base_url": server_url,
            "repos": [github.REPO],
            "max_retries": 2,
            "page_size": 100,
        },
        {
            "name": "wiki",
            "type": "mediawiki",
            "api_url": server_url + mediawiki.API_PATH,
            "pageviews_url": server_url + mediawiki.PAGEVIEWS_PATH,
            "project": mediawiki.PROJECT,
            "pages": list(mediawiki.TALK_PAGES),
            "support_pages": list(mediawiki.SUPPORT_PAGES),
            "max_retries": 2,
            "page_size": 500,
        },
        {
            "name": "so",
            "type": "stackexchange",
            "base_url": server_url + stackexchange.API_ROOT,
            "site": stackexchange.SITE,
            "tagged": [stackexchange.TAG],
            "max_retries": 2,
            "page_size": 100,
        },
        {
            "name": "x",
            "type": "x",
            "query": f"{x.HASHTAG} -is:retweet",
            "base_url": server_url,
            "bearer_token_env": X_TOKEN_ENV,
            "max_retries": 2,
        },
        {
            "name": "toots",
            "type": "mastodon",
            "base_url": server_url,
            "hashtag": mastodon.HASHTAG,
            "instance": mastodon.INSTANCE,  # pseudonyms must not depend on the server's port
            "max_retries": 2,
        },
    ]


def build_platforms(seed: int = 42) -> dict[str, Community]:
    return {p: build_platform(p, seed, cohort) for p, cohort in PLATFORM_COHORTS.items()}


def platform_handles(platforms: dict[str, Community]) -> list[str]:
    """Every raw handle, name and id string of the other platforms, plus the wiki's IP editors."""
    out: list[str] = []
    for platform, c in platforms.items():
        out += c.handles()
        if platform == "mediawiki":
            out += [mediawiki.anon_ip(a) for a in c.accounts if a.role == GONE]
        if platform == "mastodon":
            out += [mastodon.account_id(a.id) for a in c.accounts]
    return list(dict.fromkeys(out))


def serve_platforms(community: Community, platforms: dict[str, Community], seed: int) -> DemoServer:
    """One server for every platform: Discourse routes recorded, the others computed per request."""
    server = DemoServer()
    serve_discourse(community, server)
    github.serve_github(platforms["github"], server)
    mediawiki.serve_mediawiki(platforms["mediawiki"], server, seed)
    stackexchange.serve_stackexchange(platforms["stackexchange"], server)
    x.serve_x(platforms["x"], server)
    mastodon.serve_mastodon(platforms["mastodon"], server)
    return server


def start_demo(workdir: Path, seed: int = 42, data_dir: Path | None = None) -> DemoCommunity:
    """Write inputs and agora.yml into `workdir` and serve the forum; same seed, same data.

    Landing, state, quarantine and warehouse go under `data_dir` (default `workdir/data`).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_pseudonym_key(workdir)
    os.environ.setdefault(X_TOKEN_ENV, "demo-token-not-a-secret")
    community = build_community(seed)
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
