"""Build the GitLab replay fixtures (synthetic people, shapes from the REST API v4 docs).

Run: python tests/data/gitlab/build_fixtures.py. Every file is one route of the replay
server: {"path", "query" (exact, or null for any), "replies": [{status, headers, body}]}.
Authors carry every personal field GitLab returns (username, name, avatar_url, web_url,
state) so the tests can prove none of it reaches disk. Window under test:
2025-03-01 .. 2025-03-08; page size 2, so lists span pages (see README.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).parent
WEB = "https://gitlab.example.org"
API = "/api/v4"
PROJECT, PROJECT_ID = "acme-oss/widgets", 4242
SINCE = "2025-03-01T00:00:00Z"
PER_PAGE = 2


def user(username: str, uid: int, name: str) -> dict:
    return {
        "id": uid,
        "username": username,
        "name": name,
        "state": "active",
        "locked": False,
        "avatar_url": f"https://secure.gravatar.com/avatar/{uid:x}?s=80&d=identicon",
        "web_url": f"{WEB}/{username}",
    }


ALICE = user("alice-gl-3312", 7100001, "Alice Gitlabber")
BOB = user("bob-builds-77", 7100002, "Bob Builder")
CAROL = user("carol-reviews-19", 7100003, "Carol Reviewer")
DAVE = user("dave-optout-42", 7100004, "Dave Optout")  # opted out: tombstoned by the test
MAYA = user("maya-maintains", 7100005, "Maya Maintainer")  # staff
TOKEN_BOT = user("project_4242_bot_5f2a1c9e", 7100090, "triage-token")  # a project access token
GHOST = user("ghost", 7100000, "Ghost User")  # stands in for deleted users


def headers(remaining: int, page: int, total_pages: int, path: str, query: dict) -> dict:
    """GitLab's offset-paging and rate-limit headers. Page 2 -> 3 of the issues carries no
    Link header (only X-Next-Page), as some proxies strip it; the connector must still go on."""
    h = {
        "RateLimit-Limit": "2000",
        "RateLimit-Observed": str(2000 - remaining),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": "1741000000",
        "RateLimit-ResetTime": "Mon, 03 Mar 2025 11:06:40 GMT",
        "X-Page": str(page),
        "X-Per-Page": str(query.get("per_page", 20)),
        "X-Prev-Page": str(page - 1) if page > 1 else "",
        "X-Next-Page": str(page + 1) if page < total_pages else "",
        "X-Total-Pages": str(total_pages),
    }
    links = []
    if page < total_pages and not (path.endswith("/issues") and page == 2):
        links.append(f'<{{base_url}}{path}?{urlencode({**query, "page": page + 1})}>; rel="next"')
    links.append(f'<{{base_url}}{path}?{urlencode({**query, "page": 1})}>; rel="first"')
    links.append(f'<{{base_url}}{path}?{urlencode({**query, "page": total_pages})}>; rel="last"')
    h["Link"] = ", ".join(links)
    return h


def issue(iid: int, who: dict, created: str, updated: str, title: str, body: str, notes: int, **extra) -> dict:
    return {
        "id": 910000 + iid,
        "iid": iid,
        "project_id": PROJECT_ID,
        "title": title,
        "description": body,
        "state": "opened",
        "created_at": created,
        "updated_at": updated,
        "closed_at": None,
        "closed_by": None,
        "labels": ["bug"],
        "milestone": None,
        "assignees": [MAYA],
        "author": who,
        "type": "ISSUE",
        "assignee": MAYA,
        "user_notes_count": notes,
        "merge_requests_count": 0,
        "upvotes": 1,
        "downvotes": 0,
        "due_date": None,
        "confidential": False,
        "discussion_locked": None,
        "issue_type": "issue",
        "web_url": f"{WEB}/{PROJECT}/-/issues/{iid}",
        "time_stats": {"time_estimate": 0, "total_time_spent": 0},
        "task_completion_status": {"count": 0, "completed_count": 0},
        "references": {"short": f"#{iid}", "relative": f"#{iid}", "full": f"{PROJECT}#{iid}"},
        "severity": "UNKNOWN",
        "_links": {"self": f"{WEB}{API}/projects/{PROJECT_ID}/issues/{iid}"},
        **extra,
    }


def merge_request(iid: int, who: dict, created: str, updated: str, title: str, body: str, notes: int) -> dict:
    return {
        "id": 820000 + iid,
        "iid": iid,
        "project_id": PROJECT_ID,
        "title": title,
        "description": body,
        "state": "opened",
        "created_at": created,
        "updated_at": updated,
        "merged_by": None,
        "merge_user": None,
        "merged_at": None,
        "target_branch": "main",
        "source_branch": f"fix-{iid}",
        "upvotes": 0,
        "downvotes": 0,
        "author": who,
        "assignees": [],
        "reviewers": [MAYA],
        "source_project_id": PROJECT_ID,
        "target_project_id": PROJECT_ID,
        "labels": [],
        "draft": False,
        "work_in_progress": False,
        "milestone": None,
        "merge_when_pipeline_succeeds": False,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable",
        "sha": "8888888888888888888888888888888888888888",
        "user_notes_count": notes,
        "discussion_locked": None,
        "squash": False,
        "web_url": f"{WEB}/{PROJECT}/-/merge_requests/{iid}",
        "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"{PROJECT}!{iid}"},
    }


def note(nid: int, who: dict, created: str, body: str, noteable: str, iid: int, **flags) -> dict:
    return {
        "id": nid,
        "type": flags.pop("type", None),
        "body": body,
        "attachment": None,
        "author": who,
        "created_at": created,
        "updated_at": created,
        "system": flags.pop("system", False),
        "noteable_id": (910000 if noteable == "Issue" else 820000) + iid,
        "noteable_type": noteable,
        "project_id": PROJECT_ID,
        "resolvable": False,
        "confidential": flags.get("internal", False),
        "internal": flags.pop("internal", False),
        "noteable_iid": iid,
        "commands_changes": {},
    }


def discussion(did: str, notes: list[dict], individual: bool) -> dict:
    return {"id": did, "individual_note": individual, "notes": notes}


def project(path: str, pid: int, visibility: str) -> dict:
    namespace, name = path.split("/")
    return {
        "id": pid,
        "description": "Widgets for everyone",
        "name": name,
        "name_with_namespace": f"Acme OSS / {name}",
        "path": name,
        "path_with_namespace": path,
        "created_at": "2019-04-01T10:00:00.000Z",
        "default_branch": "main",
        "web_url": f"{WEB}/{path}",
        "visibility": visibility,
        "namespace": {"id": 55, "name": "Acme OSS", "path": namespace, "kind": "group", "full_path": namespace},
        "issues_access_level": "enabled",
        "merge_requests_access_level": "enabled",
        "open_issues_count": 4,
        "last_activity_at": "2025-03-07T10:00:00.000Z",
    }


def route(name: str, path: str, query: dict | None, replies: list[dict]) -> None:
    spec = {"path": path, "query": urlencode(query) if query is not None else None, "replies": replies}
    (HERE / f"{name}.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")


def paged(name: str, path: str, query: dict, pages: list[list[dict]], remaining: int) -> None:
    for n, items in enumerate(pages, start=1):
        q = query if n == 1 else {**query, "page": n}
        h = headers(remaining - n, n, len(pages), path, query)
        route(f"{name}.page{n}" if len(pages) > 1 else name, path, q, [{"status": 200, "headers": h, "body": items}])


def main() -> None:
    for p in HERE.glob("*.json"):
        p.unlink()
    base = f"{API}/projects/{PROJECT_ID}"
    listing = {"scope": "all", "state": "all", "order_by": "updated_at", "sort": "asc", "per_page": PER_PAGE}
    listing["updated_after"] = SINCE

    route(
        "project",
        f"{API}/projects/acme-oss%2Fwidgets",
        None,
        [{"status": 200, "body": project(PROJECT, PROJECT_ID, "public")}],
    )
    route(
        "project_internal",
        f"{API}/projects/acme-oss%2Finternal-tools",
        None,
        [{"status": 200, "body": project("acme-oss/internal-tools", 4243, "internal")}],
    )
    # acme-oss/secret has no route: 404, which is what GitLab answers for a private project.

    issues = [
        issue(
            10,
            ALICE,
            "2025-02-20T09:00:00.000Z",
            "2025-03-05T08:00:00.000Z",
            "Crash on start with GPU",
            "It crashes when I start it on my laptop.",
            4,
        ),
        issue(
            11,
            BOB,
            "2025-03-02T10:00:00.000Z",
            "2025-03-02T10:00:00.000Z",
            "Docs: install on arm64",
            "The install docs miss arm64.",
            0,
        ),
        issue(
            12,
            CAROL,
            "2025-03-04T11:00:00.000Z",
            "2025-03-04T11:00:00.000Z",
            "Security: token in logs",
            "Reported privately: the token shows in debug logs.",
            2,
            confidential=True,
        ),
        issue(
            13,
            GHOST,
            "2025-03-05T12:00:00.000Z",
            "2025-03-05T12:30:00.000Z",
            "Old report of a deleted user",
            "Moved from the old tracker.",
            1,
        ),
        issue(
            14,
            DAVE,
            "2025-03-06T13:00:00.000Z",
            "2025-03-06T14:00:00.000Z",
            "Feature: dark mode",
            "Please add dark mode.",
            1,
        ),
    ]
    paged("issues", f"{base}/issues", listing, [issues[0:2], issues[2:4], issues[4:5]], 1990)

    I = "Issue"  # noqa: E741
    d10 = [
        discussion("d10a", [note(5001, BOB, "2025-03-02T09:00:00.000Z", "Same here on 1.4.", I, 10)], True),
        discussion(
            "d10b",
            [note(5002, ALICE, "2025-03-03T09:00:00.000Z", "changed the description", I, 10, system=True)],
            True,
        ),
        discussion(
            "d10c",
            [
                note(
                    5003,
                    CAROL,
                    "2025-03-03T10:00:00.000Z",
                    "Can you share the stack trace?",
                    I,
                    10,
                    type="DiscussionNote",
                ),
                note(
                    5004,
                    ALICE,
                    "2025-03-04T10:00:00.000Z",
                    "Here it is: segfault in init.",
                    I,
                    10,
                    type="DiscussionNote",
                ),
                note(
                    5005,
                    MAYA,
                    "2025-03-05T08:00:00.000Z",
                    "Internal: customer ticket 4411 is the same.",
                    I,
                    10,
                    type="DiscussionNote",
                    internal=True,
                ),
            ],
            False,
        ),
        discussion("d10d", [note(4999, ALICE, "2025-02-25T09:00:00.000Z", "Still happens.", I, 10)], True),
    ]
    paged("issue10_discussions", f"{base}/issues/10/discussions", {"per_page": PER_PAGE}, [d10[:2], d10[2:]], 1985)
    d13 = [
        discussion(
            "d13a", [note(5010, TOKEN_BOT, "2025-03-05T12:30:00.000Z", "Labels applied by triage.", I, 13)], True
        )
    ]
    paged("issue13_discussions", f"{base}/issues/13/discussions", {"per_page": PER_PAGE}, [d13], 1980)
    d14 = [discussion("d14a", [note(5020, ALICE, "2025-03-06T14:00:00.000Z", "+1, would love this.", I, 14)], True)]
    paged("issue14_discussions", f"{base}/issues/14/discussions", {"per_page": PER_PAGE}, [d14], 1979)

    mrs = [
        merge_request(
            5, CAROL, "2025-03-03T08:00:00.000Z", "2025-03-04T12:00:00.000Z", "Fix crash in init", "Closes #10.", 2
        ),
        merge_request(
            6, ALICE, "2025-03-07T09:00:00.000Z", "2025-03-07T09:00:00.000Z", "Docs for arm64", "Closes #11.", 0
        ),
    ]
    paged("merge_requests", f"{base}/merge_requests", listing, [mrs], 1978)
    M = "MergeRequest"
    d5 = [
        discussion(
            "d5a",
            [
                note(6001, BOB, "2025-03-03T15:00:00.000Z", "Nit: rename this variable.", M, 5, type="DiffNote"),
                note(6002, CAROL, "2025-03-04T09:00:00.000Z", "Done, thanks.", M, 5, type="DiffNote"),
            ],
            False,
        ),
        discussion(
            "d5b", [note(6003, BOB, "2025-03-04T12:00:00.000Z", "approved this merge request", M, 5, system=True)], True
        ),
    ]
    paged("mr5_discussions", f"{base}/merge_requests/5/discussions", {"per_page": PER_PAGE}, [d5], 1977)

    # Handle lookups for privacy requests: GET /users?username=...
    route("users_alice", f"{API}/users", {"username": ALICE["username"]}, [{"status": 200, "body": [ALICE]}])
    route("users_nobody", f"{API}/users", {"username": "nobody-here"}, [{"status": 200, "body": []}])


if __name__ == "__main__":
    main()
