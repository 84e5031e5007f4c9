"""Stack Exchange connector against recorded responses replayed over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import TEST_KEY, write_config
from fault_matrix import Target, specs_routes

from agora.config import load_config
from agora.extract import run_extract
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from agora.tombstones import add_tombstones
from connectors.http import HttpError
from tests.replayed import landed_rows, load_json_routes, person_values, stored_blobs

DATA = Path(__file__).parent / "data" / "stackexchange"
SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = datetime(2025, 3, 8, tzinfo=UTC)
PERSON_OBJECTS = {"owner", "reply_to_user"}
PERSON_SKIP = {"user_type", "reputation", "accept_rate"}
FREE_TEXT = {"body", "title"}


def route_specs() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))}


def personal_values(obj):
    """Every display name, profile link/image and id of a person, and every free text."""
    return person_values(obj, PERSON_OBJECTS, PERSON_SKIP, FREE_TEXT)


def fixture_secrets() -> set[str]:
    specs = route_specs().values()
    return {v for s in specs for r in s["replies"] for v in personal_values(r["body"]) if len(v) >= 4}


def pseudo(account: str) -> str:
    return pseudonym(TEST_KEY, "stackexchange", account)


def make_config(workdir: Path, url: str, **extra):
    src = {
        "name": "so",
        "type": "stackexchange",
        "base_url": f"{url}/2.3",
        "site": "stackoverflow",
        "tagged": ["airflow", "dbt"],
        "page_size": 2,
        **extra,
    }
    cfg = load_config(write_config(workdir, [src]))
    add_tombstones(cfg.path("state"), {pseudo("8800004")})  # Dave opted out
    return cfg


def test_questions_answers_comments_land_without_personal_data(workdir, caplog):
    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        load_routes(server)
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "so", SINCE, UNTIL)
        first_requests = [p for p, _ in server.requests]
        rerun = run_extract(cfg, "so", SINCE, UNTIL)

    assert summary.by_type == {"thread": 2, "reply": 6}
    assert summary.dropped == {"opt_out": 2, "no_account": 1}
    assert summary.quarantined == 1
    assert len(first_requests) == 8  # 3 question pages, 3 answer pages, 2 comment pages
    assert any("/answers?" in p and "page=3" in p for p in first_requests)  # has_more followed to the end
    assert any("/comments?" in p and "page=2" in p for p in first_requests)
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    assert any("quota remaining" in r.getMessage() for r in caplog.records)

    rows = landed_rows(cfg, "so")
    assert len(rows) == 8 and rerun.landed == 8  # the rerun replaced its own files
    by_id = {r["record_id"]: r for r in rows}
    assert set(by_id) == {
        "question:7002",
        "question:7005",
        "answer:7102",
        "answer:7103",
        "answer:7104",
        "comment:7201",
        "comment:7202",
        "comment:7203",
    }
    alice, bob, carol = pseudo("8800001"), pseudo("8800002"), pseudo("8800003")
    assert by_id["question:7002"]["actor"] == bob
    assert by_id["answer:7102"]["parent_actor"] == alice and by_id["answer:7102"]["thread_id"] == "question:7001"
    assert by_id["answer:7103"]["is_bot"] and by_id["answer:7103"]["parent_actor"] == bob  # Community user
    assert by_id["answer:7104"]["parent_actor"] is None  # answered an opted-out account
    assert by_id["comment:7201"]["parent_actor"] == bob  # owner of an answer older than the window
    assert by_id["comment:7201"]["parent_id"] == "answer:7101"
    assert by_id["comment:7202"]["parent_actor"] == alice  # reply_to_user, not the question's owner
    assert by_id["comment:7203"]["parent_actor"] == carol
    assert [k for k, r in by_id.items() if r["is_bot"]] == ["answer:7103"]
    assert all(SINCE <= r["occurred_at"] < UNTIL for r in rows)

    secrets = fixture_secrets()
    assert {"Alice Stackwell", "8800001", "https://stackoverflow.com/users/8800002/bob-overflow"} <= secrets
    for path, blob in stored_blobs(workdir / "data"):
        leaked = [s for s in secrets if s.encode() in blob]
        assert not leaked, f"{path}: {leaked}"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in secrets if s in logged]


def test_backoff_field_and_throttle_violation_are_waited_out(workdir, caplog):
    caplog.set_level(logging.INFO)
    specs = route_specs()
    with ReplayServer() as server:
        load_routes(server)
        # The API asks for a 1 s pause in a successful answer page...
        answers = specs["answers.page1"]
        paused = {**answers["replies"][0], "body": {**answers["replies"][0]["body"], "backoff": 1}}
        server.add(answers["path"], [Reply(**paused)], query=answers["query"])
        # ...and throttles a comments page with HTTP 400 throttle_violation.
        comments = specs["comments.page2"]
        throttled = Reply(
            400,
            {
                "error_id": 502,
                "error_message": "too many requests from this IP, more requests available in 1 seconds",
                "error_name": "throttle_violation",
            },
        )
        server.add(comments["path"], [throttled, Reply(**comments["replies"][0])], query=comments["query"])
        cfg = make_config(workdir, server.url)
        t0 = time.monotonic()
        summary = run_extract(cfg, "so", SINCE, UNTIL)
        seconds = time.monotonic() - t0
        assert len(server.requests) == 9  # 8 + one retry

    assert summary.landed == 8
    assert 2.0 <= seconds < 60  # lower bound: both waits happened; upper: generous for loaded CI
    messages = [r.getMessage() for r in caplog.records]
    assert any("stackexchange backoff field (1s)" in m for m in messages)
    assert sum("retrying" in m and "HTTP 400" in m for m in messages) == 1


def test_spent_daily_quota_fails_the_run_clearly(workdir):
    with ReplayServer() as server:
        spent = Reply(
            400,
            {
                "error_id": 502,
                "error_message": "too many requests from this IP, more requests available in 80000 seconds",
                "error_name": "throttle_violation",
            },
        )
        server.add("/2.3/questions", spent)
        cfg = make_config(workdir, server.url)
        with pytest.raises(HttpError, match="quota exhausted, available again in 80000s"):
            run_extract(cfg, "so", SINCE, UNTIL)
        assert len(server.requests) == 1
    assert not Path(cfg.path("state"), "so.json").exists()


def test_app_key_is_sent_and_never_stored(workdir, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("SO_KEY", "k3y-for-tests-0000")
    with ReplayServer() as server:
        load_routes(server)  # routes match exact queries: register the key-carrying ones
        for spec in route_specs().values():
            query = spec["query"] + "&key=k3y-for-tests-0000"
            server.add(spec["path"], [Reply(**r) for r in spec["replies"]], query=query)
        cfg = make_config(workdir, server.url, key_env="SO_KEY")
        summary = run_extract(cfg, "so", SINCE, UNTIL)
        assert all("key=k3y-for-tests-0000" in p for p, _ in server.requests)
    assert summary.landed == 8
    assert not [p for p, blob in stored_blobs(workdir / "data") if b"k3y-for-tests" in blob]
    assert not [r for r in caplog.records if "k3y-for-tests" in r.getMessage()]


def load_routes(server: ReplayServer) -> None:
    load_json_routes(DATA, server)


# -- the fault matrix ------------------------------------------------------------


def fault_target() -> Target:
    """This platform's entry in the faults x connectors matrix (tests/fault_matrix.py)."""

    routes = lambda: specs_routes(list(route_specs().values()))  # noqa: E731
    specs = route_specs()
    return Target(
        name="stackexchange",
        source=lambda url: {
            "type": "stackexchange",
            "base_url": f"{url}/2.3",
            "site": "stackoverflow",
            "tagged": ["airflow", "dbt"],
            "page_size": 2,
        },
        routes=routes,
        window=(SINCE.isoformat(), UNTIL.isoformat()),
        pages=tuple(
            (specs[f"questions.airflow.page{n}"]["path"], specs[f"questions.airflow.page{n}"]["query"]) for n in (1, 2)
        ),
        items=lambda body: body["items"],
        record_id=lambda item: f"question:{item['question_id']}",
        required="creation_date",
        time_field="creation_date",
        epoch_seconds=True,
        # A rejected question or answer changes the ids in the next URL: break a comment instead.
        leaf=(
            (specs["comments.page2"]["path"], specs["comments.page2"]["query"]),
            lambda body: body["items"],
            lambda item: f"comment:{item['comment_id']}",
        ),
    )
