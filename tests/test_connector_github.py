"""GitHub connector against recorded responses replayed over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import TEST_KEY, write_config
from fault_matrix import Target, key_of, specs_routes

from agora.config import load_config
from agora.extract import run_extract
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from agora.tombstones import add_tombstones
from connectors.github import PrivateRepositoryError
from connectors.http import HttpError
from tests.replayed import landed_rows, load_json_routes, person_values, stored_blobs

DATA = Path(__file__).parent / "data" / "github"
SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = datetime(2025, 3, 8, tzinfo=UTC)
PERSON_OBJECTS = {"user", "owner", "reply_to_user"}
PERSON_SKIP = {"type", "user_view_type", "user_type", "gravatar_id", "site_admin"}
FREE_TEXT = {"body", "title"}


def route_specs() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))]


def personal_values(obj):
    """Every handle, name, URL, id of a person and every free text in a fixture."""
    return person_values(obj, PERSON_OBJECTS, PERSON_SKIP, FREE_TEXT)


def fixture_secrets() -> set[str]:
    # The repository objects (repo*.json) name the organisation: public, part of record ids, not a person.
    specs = [json.loads(p.read_text()) for p in sorted(DATA.glob("*.json")) if not p.name.startswith("repo")]
    return {v for s in specs for r in s["replies"] for v in personal_values(r["body"]) if len(v) >= 4}


def pseudo(account: str) -> str:
    return pseudonym(TEST_KEY, "github", account)


def make_config(workdir: Path, url: str, repos=("acme/widgets",), **extra):
    src = {"name": "gh", "type": "github", "base_url": url, "repos": list(repos), "page_size": 3, **extra}
    cfg = load_config(write_config(workdir, [src]))
    add_tombstones(cfg.path("state"), {pseudo("9100004")})  # dave opted out
    return cfg


def test_extracts_pages_to_the_end_and_lands_no_personal_data(workdir, caplog):
    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        load_routes(server)
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "gh", SINCE, UNTIL)
        first_requests = list(server.requests)
        rerun = run_extract(cfg, "gh", SINCE, UNTIL)

    assert summary.by_type == {"thread": 3, "reply": 9}
    assert summary.dropped == {"opt_out": 2, "pending_review": 1, "no_account": 1}
    assert summary.quarantined == 1
    assert len(first_requests) == 11, [p for p, _ in first_requests]
    paths = [p for p, _ in first_requests]
    assert any(p.startswith("/repositories/1296269/issues?") and "page=3" in p for p in paths)  # last page
    assert any(p.startswith("/repositories/1296269/issues/comments?") and "page=2" in p for p in paths)
    assert all(h.get("X-GitHub-Api-Version") == "2022-11-28" for _, h in first_requests)
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # no waits on the happy path

    rows = landed_rows(cfg, "gh")
    assert len(rows) == 12 and rerun.landed == 12  # the rerun replaced its files, no duplicates
    by_id = {r["record_id"]: r for r in rows}
    assert len(by_id) == 12
    assert set(by_id) == {
        "acme/widgets#41",
        "acme/widgets#42",
        "acme/widgets#43",
        "issue_comment:2001",
        "issue_comment:2002",
        "issue_comment:2003",
        "issue_comment:2004",
        "issue_comment:2005",
        "review_comment:3001",
        "review_comment:3002",
        "review_comment:3003",
        "review:4001",
    }
    alice, bob, carol = pseudo("9100001"), pseudo("9100002"), pseudo("9100003")
    assert by_id["acme/widgets#41"]["actor"] == bob
    assert "acme/widgets#45" not in by_id  # by the ghost account (deleted users): dropped as no_account
    assert by_id["issue_comment:2001"]["parent_actor"] == alice  # thread author of #40 (before the window)
    assert by_id["issue_comment:2001"]["thread_id"] == "acme/widgets#40"
    assert by_id["issue_comment:2004"]["parent_actor"] == carol  # issue #39 fetched on demand
    assert by_id["issue_comment:2005"]["parent_actor"] is None  # replied to an opted-out account
    assert by_id["review_comment:3001"]["parent_actor"] == bob
    assert by_id["review_comment:3002"]["parent_actor"] == carol
    assert by_id["review_comment:3002"]["parent_id"] == "review_comment:3001"
    assert by_id["review_comment:3003"]["parent_actor"] == bob  # replied comment fetched on demand
    assert by_id["review:4001"]["parent_actor"] == bob
    assert {k for k, r in by_id.items() if r["is_bot"]} == {"acme/widgets#42", "issue_comment:2003"}
    assert all(SINCE <= r["occurred_at"] < UNTIL for r in rows)

    secrets = fixture_secrets()
    assert {"alice-dev-7431", "9100001", "https://github.com/carol-codes-2024", "Crash on start"} <= secrets
    for path, blob in stored_blobs(workdir / "data"):
        leaked = [s for s in secrets if s.encode() in blob]
        assert not leaked, f"{path}: {leaked}"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in secrets if s in logged]


def test_rate_limits_are_waited_out_and_retried(workdir, caplog):
    caplog.set_level(logging.INFO)
    specs = {(s["path"], s["query"]): s for s in route_specs()}
    with ReplayServer() as server:
        load_routes(server)
        soon = str(math.ceil(time.time()) + 1)
        page1 = next(s for s in specs.values() if s["path"] == "/repos/acme/widgets/issues")
        page2 = next(s for (p, q), s in specs.items() if p == "/repositories/1296269/issues" and "page=2" in q)
        comments = specs[
            ("/repos/acme/widgets/pulls/comments", next(q for p, q in specs if p.endswith("/pulls/comments")))
        ]
        # Quota spent on page 1 (200): the next request waits for the reset instead of failing.
        spent = dict(
            page1["replies"][0],
            headers={**page1["replies"][0]["headers"], "x-ratelimit-remaining": "0", "x-ratelimit-reset": soon},
        )
        server.add(page1["path"], [Reply(**spent)], query=page1["query"])
        # Primary limit: 403 with an exhausted quota and a reset; secondary limit: 403 with retry-after.
        limited = Reply(
            403,
            {"message": "API rate limit exceeded"},
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(math.ceil(time.time()) + 2)},
        )
        server.add(page2["path"], [limited, Reply(**page2["replies"][0])], query=page2["query"])
        secondary = Reply(403, {"message": "You have exceeded a secondary rate limit."}, {"retry-after": "1"})
        server.add(comments["path"], [secondary, Reply(**comments["replies"][0])], query=comments["query"])
        cfg = make_config(workdir, server.url)
        t0 = time.monotonic()
        summary = run_extract(cfg, "gh", SINCE, UNTIL)
        seconds = time.monotonic() - t0
        paths = [p for p, _ in server.requests]

    assert summary.landed == 12
    assert len(paths) == 13  # 11 + one retry for each 403
    assert sum(p.startswith("/repositories/1296269/issues?") and "page=2" in p for p in paths) == 2
    assert sum(p.startswith("/repos/acme/widgets/pulls/comments?") for p in paths) == 2
    assert 2.0 <= seconds < 60  # lower bound: the waits happened; upper: generous for loaded CI
    messages = [r.getMessage() for r in caplog.records]
    assert any("rate-limit quota exhausted" in m for m in messages)
    assert sum("HTTP 403" in m and "retrying" in m for m in messages) == 2


def test_a_plain_403_is_not_retried(workdir):
    with ReplayServer() as server:
        server.add("/repos/acme/widgets", Reply(403, {"message": "Resource not accessible by integration"}))
        cfg = make_config(workdir, server.url)
        with pytest.raises(HttpError, match="HTTP 403"):
            run_extract(cfg, "gh", SINCE, UNTIL)
        assert len(server.requests) == 1


@pytest.mark.parametrize("repo", ["acme/secret-plans", "acme/not-visible"])
def test_a_private_repository_is_refused_and_nothing_lands(workdir, repo):
    with ReplayServer() as server:
        load_routes(server)  # /repos/acme/not-visible has no route: 404, as GitHub answers for private repos
        cfg = make_config(workdir, server.url, repos=("acme/widgets", repo))
        with pytest.raises(PrivateRepositoryError, match="not public"):
            run_extract(cfg, "gh", SINCE, UNTIL)
    assert not list(Path(cfg.path("landing")).rglob("*.parquet"))
    assert not Path(cfg.path("state"), "gh.json").exists()  # the cursor did not move


def load_routes(server: ReplayServer) -> None:
    load_json_routes(DATA, server)


# -- the fault matrix ------------------------------------------------------------


def fault_target() -> Target:
    """This platform's entry in the faults x connectors matrix (tests/fault_matrix.py)."""

    routes = lambda: specs_routes(route_specs())  # noqa: E731
    r = routes()
    return Target(
        name="github",
        source=lambda url: {"type": "github", "base_url": url, "repos": ["acme/widgets"], "page_size": 3},
        routes=routes,
        window=(SINCE.isoformat(), UNTIL.isoformat()),
        pages=(key_of(r, "/repos/acme/widgets/issues"), key_of(r, "/repositories/1296269/issues", "page=2")),
        items=lambda body: body,
        record_id=lambda item: f"acme/widgets#{item['number']}",
        required="created_at",
        time_field="created_at",
    )
