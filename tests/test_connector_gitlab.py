"""GitLab connector against responses built from the REST API v4 docs, replayed over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import TEST_KEY, write_config

from agora.config import ConfigError, load_config
from agora.errors import is_permanent
from agora.extract import run_extract
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from agora.tombstones import add_tombstones
from connectors import registry
from connectors.gitlab import PrivateProjectError, lookup_handle
from tests.replayed import landed_rows, load_json_routes, person_values, stored_blobs

DATA = Path(__file__).parent / "data" / "gitlab"
SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = datetime(2025, 3, 8, tzinfo=UTC)
INSTANCE = "gitlab.example.org"
ISSUES = "/api/v4/projects/4242/issues"
PERSON_OBJECTS = {"author", "assignee", "closed_by", "merged_by", "merge_user"}
PERSON_SKIP = {"state", "locked"}
FREE_TEXT = {"body", "title", "description"}


def route_specs() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))]


def fixture_secrets() -> set[str]:
    """Every username, name, URL, user id and free text of a person in the fixtures."""
    found = set()
    for spec in route_specs():
        for reply in spec["replies"]:
            body = reply["body"]
            lists = {"assignees", "reviewers"}
            found |= set(person_values(body, PERSON_OBJECTS | lists, PERSON_SKIP, FREE_TEXT))
    return {v for v in found if len(v) >= 4}


def pseudo(user_id: int) -> str:
    return pseudonym(TEST_KEY, "gitlab", f"{INSTANCE}:{user_id}")


def make_config(workdir: Path, url: str, projects=("acme-oss/widgets",), **extra):
    src = {
        "name": "gl",
        "type": "gitlab",
        "base_url": url,
        "projects": list(projects),
        "instance": INSTANCE,
        "page_size": 2,
        "max_retries": 2,
        **extra,
    }
    staff = [{"platform": "gitlab", "account": f"{INSTANCE}:7100005"}]
    cfg = load_config(write_config(workdir, [src], privacy={"staff": staff}))
    add_tombstones(cfg.path("state"), {pseudo(7100004)})  # dave opted out
    return cfg


def spec_of(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def test_pages_to_the_end_drops_by_reason_and_lands_no_personal_data(workdir, caplog):
    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "gl", SINCE, UNTIL)
        first_requests = [p for p, _ in server.requests]
        rerun = run_extract(cfg, "gl", SINCE, UNTIL)

    issue_pages = [
        parse_qs(urlsplit(p).query).get("page", ["1"])[0] for p in first_requests if urlsplit(p).path == ISSUES
    ]
    assert issue_pages == ["1", "2", "3"]  # page 2 -> 3 had no Link header: X-Next-Page was followed
    assert all("updated_after=2025-03-01T00%3A00%3A00Z" in p for p in first_requests if urlsplit(p).path == ISSUES)
    paths = [urlsplit(p).path for p in first_requests]
    assert paths.count("/api/v4/projects/4242/issues/10/discussions") == 2
    # No notes (#11, !6) or confidential (#12): their discussions are never asked for.
    assert not [p for p in paths if p.split("/")[-2] in ("11", "12", "6") and p.endswith("/discussions")]
    assert len(first_requests) == 10, first_requests

    assert summary.by_type == {"thread": 3, "reply": 7}
    assert summary.dropped == {
        "system_note": 2,
        "internal_note": 1,
        "confidential_issue": 1,
        "no_account": 1,
        "opt_out": 1,
    }
    assert summary.quarantined == 0

    rows = landed_rows(cfg, "gl")
    assert len(rows) == 10 and rerun.landed == 10  # the rerun replaced its files: nothing added
    by_id = {r["record_id"]: r for r in rows}
    assert set(by_id) == {
        "4242#11",
        "4242!5",
        "4242!6",
        "note:5001",
        "note:5003",
        "note:5004",
        "note:5010",
        "note:5020",
        "note:6001",
        "note:6002",
    }
    alice, bob, carol = pseudo(7100001), pseudo(7100002), pseudo(7100003)
    assert by_id["4242#11"]["actor"] == bob and by_id["4242#11"]["thread_id"] == "4242#11"
    # A lone comment answers the issue's author (#10 was opened before the window).
    assert (by_id["note:5001"]["parent_id"], by_id["note:5001"]["parent_actor"]) == ("4242#10", alice)
    assert by_id["note:5001"]["thread_id"] == "4242#10"
    # A thread's first note answers the issue; its replies answer the first note.
    assert (by_id["note:5003"]["parent_id"], by_id["note:5003"]["parent_actor"]) == ("4242#10", alice)
    assert (by_id["note:5004"]["parent_id"], by_id["note:5004"]["parent_actor"]) == ("note:5003", carol)
    assert (by_id["note:6002"]["parent_id"], by_id["note:6002"]["parent_actor"]) == ("note:6001", bob)
    assert by_id["note:6001"]["parent_actor"] == carol and by_id["note:6001"]["thread_id"] == "4242!5"
    assert by_id["note:5010"]["parent_actor"] is None  # the issue's author is GitLab's ghost
    assert by_id["note:5020"]["parent_actor"] is None  # the issue's author opted out
    assert {k for k, r in by_id.items() if r["is_bot"]} == {"note:5010"}  # a project access token
    assert all(SINCE <= r["occurred_at"] < UNTIL for r in rows)

    secrets = fixture_secrets()
    assert {"alice-gl-3312", "Alice Gitlabber", "7100001", f"https://{INSTANCE}/carol-reviews-19"} <= secrets
    assert "Internal: customer ticket 4411 is the same." in secrets
    for path, blob in stored_blobs(workdir / "data"):
        leaked = [s for s in secrets if s.encode() in blob]
        assert not leaked, f"{path}: {leaked}"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in secrets if s in logged]


def test_429_with_retry_after_and_a_spent_quota_are_waited_out(workdir, caplog):
    caplog.set_level(logging.INFO)
    page1, page2 = spec_of("issues.page1"), spec_of("issues.page2")
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        # Quota spent on page 1: the next request waits for RateLimit-Reset instead of earning a 429.
        spent = dict(page1["replies"][0])
        spent["headers"] = {
            **spent["headers"],
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(math.ceil(time.time()) + 1),
        }
        server.add(page1["path"], [Reply(**spent)], query=page1["query"])
        limited = Reply(429, {"message": "Retry later"}, {"Retry-After": "1", "RateLimit-Remaining": "0"})
        server.add(page2["path"], [limited, Reply(**page2["replies"][0])], query=page2["query"])
        cfg = make_config(workdir, server.url)
        t0 = time.monotonic()
        summary = run_extract(cfg, "gl", SINCE, UNTIL)
        seconds = time.monotonic() - t0
        requests_sent = len(server.requests)

    assert summary.landed == 10
    assert requests_sent == 11  # one retry of page 2
    assert seconds >= 1.0  # the waits happened (upper bound left to the run's own limits)
    messages = [r.getMessage() for r in caplog.records]
    assert any("rate-limit quota exhausted" in m for m in messages)
    assert any("HTTP 429" in m and "retrying" in m for m in messages)


def test_a_truncated_body_is_fetched_again(workdir):
    page2 = spec_of("issues.page2")
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        ok = page2["replies"][0]
        server.add(page2["path"], [Reply(**ok, fault="truncate"), Reply(**ok)], query=page2["query"])
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "gl", SINCE, UNTIL)
        requests_sent = len(server.requests)
    assert summary.landed == 10 and summary.quarantined == 0
    assert requests_sent == 11


@pytest.mark.parametrize(
    ("project", "message"),
    [("acme-oss/internal-tools", "visibility is 'internal'"), ("acme-oss/secret", "not found or not public")],
)
def test_an_internal_or_private_project_is_refused_and_nothing_lands(workdir, project, message):
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url, projects=("acme-oss/widgets", project))
        with pytest.raises(PrivateProjectError, match=message):
            run_extract(cfg, "gl", SINCE, UNTIL)
    assert not list(Path(cfg.path("landing")).rglob("*.parquet"))
    assert not Path(cfg.path("state"), "gl.json").exists()  # the cursor did not move
    assert is_permanent(PrivateProjectError("x"))  # the DAG fails the task at once, no retries


def test_members_only_issues_of_a_public_project_are_not_read(workdir, caplog):
    project = spec_of("project")
    body = {**project["replies"][0]["body"], "issues_access_level": "private"}
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        server.add(project["path"], Reply(body=body))
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "gl", SINCE, UNTIL)
        paths = [urlsplit(p).path for p, _ in server.requests]
    assert not [p for p in paths if "/issues" in p]
    assert summary.by_type == {"thread": 2, "reply": 2}  # the merge requests only
    assert "issues are private, not read" in caplog.text


def test_token_is_sent_as_private_token_and_must_be_set(workdir, monkeypatch):
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url, token_env="GITLAB_TEST_TOKEN")
        with pytest.raises(ConfigError, match="GITLAB_TEST_TOKEN"):
            run_extract(cfg, "gl", SINCE, UNTIL)
        monkeypatch.setenv("GITLAB_TEST_TOKEN", "glpat-test-0000")
        run_extract(cfg, "gl", SINCE, UNTIL)
        assert {h.get("PRIVATE-TOKEN") for _, h in server.requests} == {"glpat-test-0000"}
    assert not [p for p, blob in stored_blobs(workdir / "data") if b"glpat-test-0000" in blob]


def test_a_username_resolves_to_the_instance_scoped_user_id(workdir):
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url)
        src = cfg.source("gl")
        assert lookup_handle(src, "alice-gl-3312", logging.getLogger("test")) == f"{INSTANCE}:7100001"
        assert lookup_handle(src, "nobody-here", logging.getLogger("test")) is None
        sent = len(server.requests)
        keys = registry.platform("gitlab").account_keys([src], "GitLab.Example.org:7100003")
        assert keys == {f"{INSTANCE}:7100003"}
        assert len(server.requests) == sent  # an id in key form needs no request


def fault_target():
    """This connector's row of the faults x connectors matrix (tests/fault_matrix.py)."""
    from fault_matrix import Target, specs_routes

    specs = {p.stem: json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))}
    key = lambda name: (specs[name]["path"], specs[name]["query"])  # noqa: E731
    notes = lambda body: body[0]["notes"]  # noqa: E731 - the thread d10c: a first note, a reply, an internal note
    return Target(
        name="gitlab",
        source=lambda url: {
            "type": "gitlab",
            "base_url": url,
            "projects": ["acme-oss/widgets"],
            "instance": INSTANCE,
            "page_size": 2,
        },
        routes=lambda: specs_routes(route_specs()),
        window=(SINCE.isoformat(), UNTIL.isoformat()),
        pages=(key("issues.page1"), key("issues.page2")),
        items=lambda body: body,
        record_id=lambda item: f"4242#{item['iid']}",
        required="created_at",
        time_field="created_at",
        # A rejected issue's notes are not read: break a note instead.
        leaf=(key("issue10_discussions.page2"), notes, lambda item: f"note:{item['id']}"),
        account=("author", "id"),
    )


def test_privacy_requests_name_a_gitlab_account_by_username_or_instance_scoped_id(workdir, caplog):
    from agora import privacy

    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url)
        at = datetime(2025, 1, 1, tzinfo=UTC)
        cases = {
            "alice-gl-3312": {f"{INSTANCE}:7100001"},
            "@alice-gl-3312": {f"{INSTANCE}:7100001"},
            "GitLab.Example.org:7100003": {f"{INSTANCE}:7100003"},
            "nobody-here": set(),  # not on the instance: the request stays pending with a reason
        }
        for account, expected in cases.items():
            keys, why = privacy.account_keys(cfg, privacy.Request("r.csv:2", "gitlab", account, "erasure", at))
            assert keys == expected and (why is None) == bool(expected), (account, why)
    assert "alice-gl-3312" not in "\n".join(r.getMessage() for r in caplog.records)  # handles redacted in logs


def test_privacy_requests_name_a_gitlab_account_by_its_bare_id_with_one_gitlab_source(workdir):
    from agora import privacy

    with ReplayServer() as server:
        cfg = make_config(workdir, server.url)
        at = datetime(2025, 1, 1, tzinfo=UTC)
        keys, _ = privacy.account_keys(cfg, privacy.Request("r.csv:2", "gitlab", "7100002", "erasure", at))
    assert keys == {f"{INSTANCE}:7100002"}
