"""Render a platform `Community` as the GitHub REST API of one public repository.

Each thread is an issue or a pull request (its opening post is the body); replies are issue
comments, and on pull requests also submitted reviews and review comments (some answering
an earlier review comment). What the connector must drop is there too: reviews still
PENDING (no ``submitted_at``; `Post.state == HIDDEN`) and posts of deleted accounts (shown
as GitHub's ``ghost`` user). Lists honour ``since`` (updated at or after), ``sort=updated``,
``direction=asc``, ``per_page`` and ``page``, with ``Link: rel="next"``, as GitHub does.
Logins, avatars and profile URLs are included as the real API includes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agora.demo.community import GONE, HIDDEN, REPOST, STAFF, Account, Community, Post
from agora.demo.server import DemoServer, iso, link_next, parse_time
from agora.replay import Reply

REPO = "demo/project"
GHOST = {"login": "ghost", "id": 10137, "type": "User", "site_admin": False}
BOT_USER = {"login": "dependabot[bot]", "id": 49699333, "type": "Bot", "site_admin": False}
COMMENT_ID_BASE = 2_100_000_000  # 10 digits: never equal to a 9-digit account id
REVIEW_ID_BASE = 1_800_000_000
REVIEW_COMMENT_ID_BASE = 1_500_000_000


def _user(a: Account) -> dict[str, Any]:
    if a.role == GONE:
        return dict(GHOST)
    return {
        "login": a.handle,
        "id": a.id,
        "avatar_url": f"https://avatars.githubusercontent.com/u/{a.id}?v=4",
        "html_url": f"https://github.com/{a.handle}",
        "type": "User",
        "site_admin": False,
    }


@dataclass
class GithubRepo:
    """The repository's items, precomputed once; handlers filter and page them per request."""

    issues: list[dict] = field(default_factory=list)
    comments: list[dict] = field(default_factory=list)
    review_comments: list[dict] = field(default_factory=list)
    reviews: dict[int, list[dict]] = field(default_factory=dict)


def render_repo(c: Community, repo: str = REPO) -> GithubRepo:
    out = GithubRepo()
    api = f"https://api.github.com/repos/{repo}"
    for t in c.threads:
        is_pr = t.id % 3 == 0
        number = t.id
        posts = [p for p in t.posts if p.kind != REPOST]
        opener, replies = posts[0], posts[1:]
        updated = max(p.created_at for p in posts)
        issue = {
            "url": f"{api}/issues/{number}",
            "id": 3_000_000_000 + number,
            "number": number,
            "title": t.title,
            "user": _user(c.account(opener.account_id)),
            "state": "closed" if t.outcome in ("fast", "late") and is_pr else "open",
            "comments": len(replies),
            "created_at": iso(opener.created_at),
            "updated_at": iso(updated),
            "author_association": "MEMBER" if c.account(opener.account_id).role == STAFF else "CONTRIBUTOR",
            "body": opener.text,
        }
        if is_pr:
            issue["pull_request"] = {"url": f"{api}/pulls/{number}"}
            out.reviews[number] = []
        out.issues.append(issue)
        last_review_comment: int | None = None
        for i, p in enumerate(replies):
            user = _user(c.account(p.account_id))
            if is_pr and p.state == HIDDEN:
                out.reviews[number].append(_review(p, user, pending=True))
            elif is_pr and i % 3 == 1:
                out.reviews[number].append(_review(p, user))
            elif is_pr and i % 3 == 2:
                cid = REVIEW_COMMENT_ID_BASE + p.id
                rc = {
                    "url": f"{api}/pulls/comments/{cid}",
                    "id": cid,
                    "pull_request_url": f"{api}/pulls/{number}",
                    "user": user,
                    "body": p.text,
                    "path": "src/app.py",
                    "created_at": iso(p.created_at),
                    "updated_at": iso(p.created_at),
                }
                if last_review_comment is not None:
                    rc["in_reply_to_id"] = last_review_comment
                out.review_comments.append(rc)
                last_review_comment = cid
            elif p.state != HIDDEN:
                cid = COMMENT_ID_BASE + p.id
                out.comments.append(
                    {
                        "url": f"{api}/issues/comments/{cid}",
                        "id": cid,
                        "issue_url": f"{api}/issues/{number}",
                        "user": user,
                        "created_at": iso(p.created_at),
                        "updated_at": iso(p.created_at),
                        "body": p.text,
                    }
                )
        # A bot labels about one issue in ten: bots' comments land, flagged as bots.
        if number % 10 == 1 and len(posts) > 1:
            at = opener.created_at.replace(microsecond=0)
            cid = COMMENT_ID_BASE + 900_000 + number
            out.comments.append(
                {
                    "url": f"{api}/issues/comments/{cid}",
                    "id": cid,
                    "issue_url": f"{api}/issues/{number}",
                    "user": dict(BOT_USER),
                    "created_at": iso(at),
                    "updated_at": iso(at),
                    "body": "Thanks for opening this issue! A maintainer will triage it soon.",
                }
            )
    return out


def _review(p: Post, user: dict, pending: bool = False) -> dict:
    review = {
        "id": REVIEW_ID_BASE + p.id,
        "user": user,
        "body": p.text,
        "state": "PENDING" if pending else ("APPROVED" if p.id % 2 else "COMMENTED"),
        "commit_id": f"{p.id:040x}",
    }
    if not pending:
        review["submitted_at"] = iso(p.created_at)
    return review


def _updated_since(items: list[dict], params: dict[str, str]) -> list[dict]:
    since = parse_time(params.get("since"))
    kept = [i for i in items if since is None or parse_time(i["updated_at"]) >= since]
    reverse = params.get("direction", "desc") == "desc"
    return sorted(kept, key=lambda i: (i["updated_at"], i["id"]), reverse=reverse)


def _paged(path: str, params: dict[str, str], items: list[dict]) -> Any:
    per_page = min(int(params.get("per_page", 30)), 100)
    page = int(params.get("page", 1))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999"}
    if page * per_page < len(items):
        headers.update(link_next(path, params, page=page + 1))
    return Reply(body=chunk, headers=headers)


def github_handler(c: Community, repo: str = REPO) -> Callable[[str, dict[str, str]], Any]:
    data = render_repo(c, repo)
    issues = {i["number"]: i for i in data.issues}
    review_comments = {rc["id"]: rc for rc in data.review_comments}
    meta = {
        "id": 880_000_001,
        "name": repo.split("/")[1],
        "full_name": repo,
        "private": False,
        "visibility": "public",
        "owner": {"login": repo.split("/")[0], "id": 880_000_000, "type": "Organization"},
        "created_at": "2024-11-02T09:00:00Z",
    }
    root = f"/repos/{repo}"

    def handle(path: str, params: dict[str, str]) -> Any:
        rest = path[len(root) :].strip("/")
        parts = rest.split("/") if rest else []
        if not parts:
            return meta
        if parts == ["issues"]:
            return _paged(path, params, _updated_since(data.issues, params))
        if parts == ["issues", "comments"]:
            return _paged(path, params, _updated_since(data.comments, params))
        if parts == ["pulls", "comments"]:
            return _paged(path, params, _updated_since(data.review_comments, params))
        if len(parts) == 2 and parts[0] == "issues" and parts[1].isdigit():
            return issues.get(int(parts[1]))
        if len(parts) == 3 and parts[:2] == ["pulls", "comments"] and parts[2].isdigit():
            return review_comments.get(int(parts[2]))
        if len(parts) == 3 and parts[0] == "pulls" and parts[2] == "reviews" and parts[1].isdigit():
            reviews = data.reviews.get(int(parts[1]))
            return None if reviews is None else _paged(path, params, reviews)
        return None

    return handle


def serve_github(c: Community, server: DemoServer, repo: str = REPO) -> None:
    """Answer ``/repos/{repo}/...`` on `server` from the community."""
    server.handle(f"/repos/{repo}", github_handler(c, repo))


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

COHORT = 7.0  # newcomers a month
ID_BASE = 530_100_000  # account ids of its own: no id string matches another platform's
#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("pending_review", "no_account")


def serve(c: Community, server: DemoServer, seed: int) -> None:
    serve_github(c, server)


def source(server_url: str) -> dict:
    return {"name": "gh", "type": "github", "base_url": server_url, "repos": [REPO], "max_retries": 2, "page_size": 100}
