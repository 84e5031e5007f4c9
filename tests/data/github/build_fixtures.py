"""Build the GitHub replay fixtures (synthetic people, shapes from the REST API docs).

Run: python tests/data/github/build_fixtures.py. Every file is one route of the replay
server: {"path", "query" (exact, or null for any), "replies": [{status, headers, body}]}.
Users carry every personal field the real API returns (login, avatar_url, html_url, ...)
so the tests can prove none of it reaches disk. Window under test: 2025-03-01 .. 2025-03-08.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).parent
API = "https://api.github.com"
REPO, REPO_ID = "acme/widgets", 1296269
SINCE = "2025-03-01T00:00:00Z"
PER_PAGE = 3


def user(login: str, uid: int, kind: str = "User") -> dict:
    u = f"{API}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": u,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{u}/followers",
        "following_url": f"{u}/following{{/other_user}}",
        "gists_url": f"{u}/gists{{/gist_id}}",
        "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{u}/subscriptions",
        "organizations_url": f"{u}/orgs",
        "repos_url": f"{u}/repos",
        "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


ALICE = user("alice-dev-7431", 9100001)
BOB = user("bob-the-builder-55", 9100002)
CAROL = user("carol-codes-2024", 9100003)
DAVE = user("dave-optout-981", 9100004)  # opted out: tombstoned by the test
DEPENDABOT = user("dependabot[bot]", 49699333, "Bot")
CI_HELPER = user("ci-helper-xyz[bot]", 9100077)  # typed User: caught by the [bot] suffix
GHOST = user("ghost", 10137)  # GitHub's stand-in for deleted accounts


def headers(remaining: int, link: str | None = None) -> dict:
    h = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": "1741000000",
        "x-ratelimit-used": str(5000 - remaining),
        "x-ratelimit-resource": "core",
        "x-github-api-version-selected": "2022-11-28",
    }
    if link:
        h["Link"] = link
    return h


def issue(number: int, who: dict, created: str, updated: str, title: str, body: str, pr: bool = False) -> dict:
    base = f"{API}/repos/{REPO}/issues/{number}"
    item = {
        "url": base,
        "repository_url": f"{API}/repos/{REPO}",
        "labels_url": f"{base}/labels{{/name}}",
        "comments_url": f"{base}/comments",
        "events_url": f"{base}/events",
        "html_url": f"https://github.com/{REPO}/{'pull' if pr else 'issues'}/{number}",
        "id": 2800000000 + number,
        "node_id": f"I_kwDOABJWjc6{number}",
        "number": number,
        "title": title,
        "user": who,
        "labels": [],
        "state": "open",
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": 1,
        "created_at": created,
        "updated_at": updated,
        "closed_at": None,
        "author_association": "CONTRIBUTOR",
        "active_lock_reason": None,
        "body": body,
        "reactions": {"url": f"{base}/reactions", "total_count": 0, "+1": 0, "-1": 0},
        "timeline_url": f"{base}/timeline",
        "performed_via_github_app": None,
        "state_reason": None,
    }
    if pr:
        item["draft"] = False
        item["pull_request"] = {
            "url": f"{API}/repos/{REPO}/pulls/{number}",
            "html_url": f"https://github.com/{REPO}/pull/{number}",
            "diff_url": f"https://github.com/{REPO}/pull/{number}.diff",
            "patch_url": f"https://github.com/{REPO}/pull/{number}.patch",
            "merged_at": None,
        }
    return item


def issue_comment(cid: int, number: int, who: dict, created: str, updated: str, body: str) -> dict:
    return {
        "url": f"{API}/repos/{REPO}/issues/comments/{cid}",
        "html_url": f"https://github.com/{REPO}/issues/{number}#issuecomment-{cid}",
        "issue_url": f"{API}/repos/{REPO}/issues/{number}",
        "id": cid,
        "node_id": f"IC_kwDOABJWjc{cid}",
        "user": who,
        "created_at": created,
        "updated_at": updated,
        "author_association": "CONTRIBUTOR",
        "body": body,
        "reactions": {"url": f"{API}/repos/{REPO}/issues/comments/{cid}/reactions", "total_count": 0},
        "performed_via_github_app": None,
    }


def review_comment(cid: int, number: int, who: dict, created: str, body: str, reply_to: int | None = None) -> dict:
    c = {
        "url": f"{API}/repos/{REPO}/pulls/comments/{cid}",
        "pull_request_review_id": 3300000000 + cid,
        "id": cid,
        "node_id": f"PRRC_kwDOABJWjc{cid}",
        "diff_hunk": "@@ -1,3 +1,4 @@\n import os\n+import sys",
        "path": "widgets/core.py",
        "commit_id": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        "original_commit_id": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
        "user": who,
        "body": body,
        "created_at": created,
        "updated_at": created,
        "html_url": f"https://github.com/{REPO}/pull/{number}#discussion_r{cid}",
        "pull_request_url": f"{API}/repos/{REPO}/pulls/{number}",
        "author_association": "CONTRIBUTOR",
        "_links": {"self": {"href": f"{API}/repos/{REPO}/pulls/comments/{cid}"}},
        "reactions": {"total_count": 0},
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "line": 2,
        "original_line": 2,
        "side": "RIGHT",
        "original_position": 2,
        "position": 2,
        "subject_type": "line",
    }
    if reply_to is not None:
        c["in_reply_to_id"] = reply_to
    return c


def review(rid: int, number: int, who: dict, state: str, submitted: str | None, body: str) -> dict:
    r = {
        "id": rid,
        "node_id": f"PRR_kwDOABJWjc{rid}",
        "user": who,
        "body": body,
        "state": state,
        "html_url": f"https://github.com/{REPO}/pull/{number}#pullrequestreview-{rid}",
        "pull_request_url": f"{API}/repos/{REPO}/pulls/{number}",
        "author_association": "CONTRIBUTOR",
        "_links": {"html": {"href": f"https://github.com/{REPO}/pull/{number}#pullrequestreview-{rid}"}},
        "commit_id": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
    }
    if submitted:
        r["submitted_at"] = submitted
    return r


def repo(full_name: str, rid: int, private: bool) -> dict:
    owner, name = full_name.split("/")
    org = user(owner, 9000001 if owner == "acme" else 9000002, "Organization")
    return {
        "id": rid,
        "node_id": f"MDEwOlJlcG9zaXRvcnk{rid}",
        "name": name,
        "full_name": full_name,
        "private": private,
        "owner": org,
        "html_url": f"https://github.com/{full_name}",
        "description": "Widgets for everyone",
        "fork": False,
        "url": f"{API}/repos/{full_name}",
        "created_at": "2019-04-01T10:00:00Z",
        "updated_at": "2025-03-07T10:00:00Z",
        "pushed_at": "2025-03-07T10:00:00Z",
        "homepage": None,
        "stargazers_count": 120,
        "watchers_count": 120,
        "language": "Python",
        "has_issues": True,
        "forks_count": 14,
        "archived": False,
        "disabled": False,
        "open_issues_count": 9,
        "license": {"key": "apache-2.0", "name": "Apache License 2.0", "spdx_id": "Apache-2.0"},
        "visibility": "private" if private else "public",
        "default_branch": "main",
    }


def list_query(page: int | None = None, **extra) -> str:
    q = {"sort": "updated", "direction": "asc", "per_page": PER_PAGE, "since": SINCE, **extra}
    if page:
        q["page"] = page
    return urlencode(q)


def next_link(path: str, page: int, last: int, **extra) -> str:
    url = "{base_url}" + path + "?" + list_query(page, **extra)
    last_url = "{base_url}" + path + "?" + list_query(last, **extra)
    return f'<{url}>; rel="next", <{last_url}>; rel="last"'


def write(name: str, path: str, query: str | None, *replies: dict) -> None:
    (HERE / f"{name}.json").write_text(
        json.dumps({"path": path, "query": query, "replies": list(replies)}, indent=1, ensure_ascii=False) + "\n"
    )


def ok(body, remaining: int = 4990, link: str | None = None, status: int = 200) -> dict:
    return {"status": status, "headers": headers(remaining, link), "body": body}


def main() -> None:
    for old in HERE.glob("*.json"):
        old.unlink()
    write("repo", f"/repos/{REPO}", None, ok(repo(REPO, REPO_ID, False)))
    write("repo_private", "/repos/acme/secret-plans", None, ok(repo("acme/secret-plans", 1296270, True)))

    # Issues and PRs updated since the window start, oldest update first; Link paging (3 pages).
    ipath = f"/repositories/{REPO_ID}/issues"
    write(
        "issues.page1",
        f"/repos/{REPO}/issues",
        list_query(state="all"),
        ok(
            [
                issue(
                    40,
                    ALICE,
                    "2025-02-10T09:00:00Z",
                    "2025-03-01T10:00:00Z",
                    "Widget spins forever",
                    "Since 2.3 the widget spins forever on my laptop in Lisbon, cc @bob-the-builder-55",
                ),
                issue(
                    41,
                    BOB,
                    "2025-03-02T08:00:00Z",
                    "2025-03-03T12:00:00Z",
                    "Speed up widget loading",
                    "This makes loading 3x faster. Tested by Bob Builder on Windows.",
                    pr=True,
                ),
                issue(
                    42,
                    DEPENDABOT,
                    "2025-03-03T05:00:00Z",
                    "2025-03-03T05:00:00Z",
                    "Bump requests to 2.32.3",
                    "Bumps requests from 2.31.0 to 2.32.3.",
                    pr=True,
                ),
            ],
            4999,
            next_link(ipath, 2, 3, state="all"),
        ),
    )
    write(
        "issues.page2",
        ipath,
        list_query(2, state="all"),
        ok(
            [
                issue(
                    43,
                    CAROL,
                    "2025-03-04T11:00:00Z",
                    "2025-03-04T13:00:00Z",
                    "Docs: install on ARM",
                    "Carol Coder here, the install docs miss ARM wheels; my email is carol@example.org",
                ),
                issue(
                    44,
                    DAVE,
                    "2025-03-05T07:00:00Z",
                    "2025-03-05T07:30:00Z",
                    "Please add dark mode",
                    "Dave from Berlin would love a dark mode",
                ),
                issue(
                    45,
                    GHOST,
                    "2025-03-05T09:00:00Z",
                    "2025-03-05T09:00:00Z",
                    "Crash on start",
                    "Crashes on start, trace attached",
                ),
            ],
            4998,
            next_link(ipath, 3, 3, state="all"),
        ),
    )
    broken = issue(47, ALICE, "2025-03-06T00:00:00Z", "2025-03-10T00:00:00Z", "Half an issue", "Missing fields")
    del broken["created_at"]
    write(
        "issues.page3",
        ipath,
        list_query(3, state="all"),
        ok(
            [
                issue(
                    46,
                    ALICE,
                    "2025-03-09T10:00:00Z",
                    "2025-03-09T10:00:00Z",
                    "After the window",
                    "Opened after the window by alice-dev-7431",
                ),
                broken,
            ],
            4997,
        ),
    )
    # An issue whose comment is in the window but which is not in the list (fetched on demand).
    write(
        "issue39",
        f"/repos/{REPO}/issues/39",
        None,
        ok(issue(39, CAROL, "2024-11-02T10:00:00Z", "2024-12-01T10:00:00Z", "Old question", "Old body")),
    )

    cpath = f"/repositories/{REPO_ID}/issues/comments"
    write(
        "issue_comments.page1",
        f"/repos/{REPO}/issues/comments",
        list_query(),
        ok(
            [
                issue_comment(
                    2006,
                    40,
                    BOB,
                    "2025-02-20T10:00:00Z",
                    "2025-03-01T09:00:00Z",
                    "Edited in the window, written before it",
                ),
                issue_comment(
                    2001,
                    40,
                    BOB,
                    "2025-03-01T10:00:00Z",
                    "2025-03-01T10:00:00Z",
                    "@alice-dev-7431 can you share your config?",
                ),
                issue_comment(
                    2002, 41, ALICE, "2025-03-02T12:00:00Z", "2025-03-02T12:00:00Z", "Looks great, thanks Bob Builder!"
                ),
            ],
            4996,
            next_link(cpath, 2, 2),
        ),
    )
    write(
        "issue_comments.page2",
        cpath,
        list_query(2),
        ok(
            [
                issue_comment(
                    2003, 43, CI_HELPER, "2025-03-04T11:05:00Z", "2025-03-04T11:05:00Z", "Coverage report: 94%"
                ),
                issue_comment(
                    2004, 39, ALICE, "2025-03-04T15:00:00Z", "2025-03-04T15:00:00Z", "Still happening for me"
                ),
                issue_comment(
                    2005, 44, CAROL, "2025-03-05T08:00:00Z", "2025-03-05T08:00:00Z", "+1 to dark mode, @dave-optout-981"
                ),
                issue_comment(
                    2007,
                    43,
                    DAVE,
                    "2025-03-06T08:00:00Z",
                    "2025-03-06T08:00:00Z",
                    "Dave here: ARM wheels would help me too",
                ),
            ],
            4995,
        ),
    )
    write(
        "review_comments",
        f"/repos/{REPO}/pulls/comments",
        list_query(),
        ok(
            [
                review_comment(3001, 41, CAROL, "2025-03-02T15:00:00Z", "Why import sys here?"),
                review_comment(3002, 41, BOB, "2025-03-02T16:00:00Z", "For the version check, Carol", 3001),
                review_comment(3003, 41, ALICE, "2025-03-02T17:00:00Z", "Agree with the earlier note", 2999),
            ],
            4994,
        ),
    )
    write(
        "review_comment2999",
        f"/repos/{REPO}/pulls/comments/2999",
        None,
        ok(review_comment(2999, 41, BOB, "2025-02-27T10:00:00Z", "Earlier note from a draft")),
    )
    write(
        "reviews41",
        f"/repos/{REPO}/pulls/41/reviews",
        urlencode({"per_page": PER_PAGE}),
        ok(
            [
                review(4001, 41, CAROL, "APPROVED", "2025-03-03T09:00:00Z", "LGTM, nice work Bob"),
                review(4002, 41, ALICE, "PENDING", None, "Draft thoughts of alice-dev-7431"),
                review(4003, 41, ALICE, "COMMENTED", "2025-03-08T00:00:00Z", "At the window's end exactly"),
            ],
            4993,
        ),
    )
    write("reviews42", f"/repos/{REPO}/pulls/42/reviews", urlencode({"per_page": PER_PAGE}), ok([], 4992))


if __name__ == "__main__":
    main()
