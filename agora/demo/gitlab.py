"""Render a platform `Community` as the GitLab REST API v4 of one public project.

Each thread is an issue, or a merge request for one in three; its replies are notes, grouped
in discussions: a reply to the opening post is a lone comment, a reply to a reply joins that
reply's discussion. What the connector must drop is there too: threads opened by accounts
that are not public (`Account.private`) are confidential issues, hidden replies
(`Post.state == HIDDEN`) are internal notes, reposts (`REPOST`) are system notes ("added
~bug"), and deleted accounts (`GONE`) show as GitLab's ``ghost`` user. Lists honour
``updated_after``, ``order_by=updated_at``, ``sort``, ``per_page`` and ``page`` with
``Link``/``X-Next-Page`` headers; usernames, names, avatars and profile URLs are included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from agora.demo.community import GONE, HIDDEN, REPOST, Account, Community
from agora.demo.server import DemoServer, iso_ms, link_next, parse_time
from agora.replay import Reply

INSTANCE = "gitlab.demo.org"
PROJECT = "demo/project"
PROJECT_ID = 4_400_001
API = "/api/v4"
GHOST = {"id": 1, "username": "ghost", "name": "Ghost User", "state": "active"}
NOTE_ID_BASE = 2_200_000_000  # 10 digits: never equal to a 9-digit account id


def _user(a: Account) -> dict[str, Any]:
    if a.role == GONE:
        return dict(GHOST)
    return {
        "id": a.id,
        "username": a.handle,
        "name": a.name,
        "state": "active",
        "locked": False,
        "avatar_url": f"https://{INSTANCE}/uploads/-/system/user/avatar/{a.id}/avatar.png",
        "web_url": f"https://{INSTANCE}/{a.handle}",
    }


@dataclass
class GitlabProject:
    """The project's items, precomputed once; handlers filter and page them per request."""

    items: dict[str, list[dict]] = field(default_factory=lambda: {"issues": [], "merge_requests": []})
    discussions: dict[tuple[str, int], list[dict]] = field(default_factory=dict)


def render_project(c: Community) -> GitlabProject:
    out = GitlabProject()
    for t in c.threads:
        opener_account = c.account(t.posts[0].account_id)
        confidential = opener_account.private
        kind = "merge_requests" if t.id % 3 == 0 and not confidential else "issues"
        discussions: list[dict] = []
        by_number: dict[int, dict] = {}
        for p in t.posts[1:]:
            note = {
                "id": NOTE_ID_BASE + p.id,
                "type": None,
                "body": "added ~bug label" if p.kind == REPOST else p.text,
                "author": _user(c.account(p.account_id)),
                "created_at": iso_ms(p.created_at),
                "updated_at": iso_ms(p.created_at),
                "system": p.kind == REPOST,
                "internal": p.state == HIDDEN,
                "confidential": p.state == HIDDEN,
                "noteable_type": "MergeRequest" if kind == "merge_requests" else "Issue",
                "noteable_iid": t.id,
                "project_id": PROJECT_ID,
            }
            target = by_number.get(p.reply_to or 1)
            if target is not None and not note["system"] and not target["notes"][0]["system"]:
                target["individual_note"] = False
                for n in target["notes"]:
                    n["type"] = "DiscussionNote"
                note["type"] = "DiscussionNote"
                target["notes"].append(note)
            else:
                target = {"id": f"{p.id:040x}", "individual_note": True, "notes": [note]}
                discussions.append(target)
            by_number[p.number] = target
        out.discussions[(kind, t.id)] = discussions
        out.items[kind].append(
            {
                "id": 5_000_000 + t.id,
                "iid": t.id,
                "project_id": PROJECT_ID,
                "title": t.title,
                "description": t.posts[0].text,
                "state": "opened",
                "created_at": iso_ms(t.posts[0].created_at),
                "updated_at": iso_ms(max(p.created_at for p in t.posts)),
                "author": _user(opener_account),
                "confidential": confidential,
                "user_notes_count": sum(1 for d in discussions for n in d["notes"] if not n["system"]),
                "web_url": f"https://{INSTANCE}/{PROJECT}/-/{kind}/{t.id}",
            }
        )
    return out


def _paged(path: str, params: dict[str, str], items: list[dict]) -> Reply:
    per_page = min(int(params.get("per_page", 20)), 100)
    page = int(params.get("page", 1))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {"RateLimit-Limit": "2000", "RateLimit-Remaining": "1999", "X-Page": str(page)}
    more = page * per_page < len(items)
    headers["X-Next-Page"] = str(page + 1) if more else ""
    if more:
        headers.update(link_next(path, params, page=page + 1))
    return Reply(body=chunk, headers=headers)


def gitlab_handler(c: Community) -> Callable[[str, dict[str, str]], Any]:
    data = render_project(c)
    meta = {
        "id": PROJECT_ID,
        "path_with_namespace": PROJECT,
        "visibility": "public",
        "issues_access_level": "enabled",
        "merge_requests_access_level": "enabled",
        "web_url": f"https://{INSTANCE}/{PROJECT}",
    }
    by_path = f"{API}/projects/{quote(PROJECT, safe='')}"
    root = f"{API}/projects/{PROJECT_ID}"

    def handle(path: str, params: dict[str, str]) -> Any:
        if path == by_path:
            return meta
        parts = path[len(root) :].strip("/").split("/") if path.startswith(root) else []
        if len(parts) == 1 and parts[0] in data.items:
            since = parse_time(params.get("updated_after"))
            items = [i for i in data.items[parts[0]] if since is None or parse_time(i["updated_at"]) >= since]
            items.sort(key=lambda i: (i["updated_at"], i["id"]), reverse=params.get("sort", "desc") == "desc")
            return _paged(path, params, items)
        if len(parts) == 3 and parts[0] in data.items and parts[1].isdigit() and parts[2] == "discussions":
            found = data.discussions.get((parts[0], int(parts[1])))
            return None if found is None else _paged(path, params, found)
        return None

    return handle


def serve_gitlab(c: Community, server: DemoServer) -> None:
    """Answer ``/api/v4/projects/...`` on `server` from the community."""
    server.handle(f"{API}/projects/", gitlab_handler(c))


def account_id(raw_id: int) -> str:
    """The id the connector pseudonymises for an account of the demo instance (for privacy.staff)."""
    return f"{INSTANCE}:{raw_id}"


def source(server_url: str) -> dict[str, Any]:
    """The demo's GitLab source."""
    return {
        "name": "gl",
        "type": "gitlab",
        "base_url": server_url,
        "projects": [PROJECT],
        "instance": INSTANCE,  # pseudonyms must not depend on the server's port
        "max_retries": 2,
    }


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

COHORT = 6.5
ID_BASE = 350_600_000
#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("confidential_issue", "internal_note", "system_note", "no_account")


def serve(c: Community, server: DemoServer, seed: int) -> None:
    serve_gitlab(c, server)


def staff_account(raw_id: int) -> str:
    """How agora.yml's privacy.staff names a demo account (the connector's key form)."""
    return account_id(raw_id)


def extra_handles(c: Community) -> list[str]:
    """The instance-qualified ids: none may reach disk either."""
    return [account_id(a.id) for a in c.accounts]
