"""X connector: a real tweepy.Client against recorded search pages on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest
from cassettes import identifiers, leaks, load_cassette, serve_cassette
from conftest import TEST_KEY, write_config
from fault_matrix import Target, cassette_routes, key_of, x_users_on_both

from agora.config import load_config
from agora.extract import run_extract
from agora.landing import landing_files, read_state
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from connectors.http import HttpError
from connectors.x import search_window

CASSETTE = Path(__file__).parent / "data" / "x" / "search_recent.yaml"
SEARCH = "/2/tweets/search/recent"
TOKEN = "AAAAtest-bearer-token-never-logged"
SINCE, UNTIL = "2022-10-07T00:00:00Z", "2022-10-08T00:00:00Z"
TWEEPY_DEV, TWITTER, TWITTER_DEV, PATI = "1072250532645998596", "783214", "2244994945", "118589107"


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


@pytest.fixture
def cfg(workdir, server, monkeypatch):
    monkeypatch.setenv("X_TEST_TOKEN", TOKEN)
    source = {
        "name": "tweets",
        "type": "x",
        "query": "tweepy -is:retweet",
        "base_url": server.url,
        "bearer_token_env": "X_TEST_TOKEN",
        "max_retries": 2,
        "max_wait_seconds": 30,
    }
    return load_config(write_config(workdir, [source]))


def landed(cfg) -> list[dict]:
    rows = []
    for f in landing_files(cfg.path("landing"), "tweets"):
        rows += pq.read_table(f).to_pylist()
    return rows


def test_search_lands_public_posts_pages_to_the_end_and_counts_drops(cfg, server, workdir, caplog):
    caplog.set_level(logging.DEBUG)
    recorded = serve_cassette(server, CASSETTE)

    summary = run_extract(cfg, "tweets", SINCE, UNTIL)

    # Both pages fetched, the second with the first page's next_token; nothing after it.
    queries = [parse_qs(urlsplit(path).query) for path, _ in server.requests]
    assert len(queries) == 2
    assert "next_token" not in queries[0]
    assert queries[1]["next_token"] == ["b26v89c19zqg8o3fpzbn1e0ffhxjiofzw6po136rvbnul"]
    assert queries[0]["start_time"] == ["2022-10-07T00:00:00Z"] and queries[0]["end_time"] == ["2022-10-08T00:00:00Z"]
    assert queries[0]["user.fields"] == ["protected"]
    assert queries[0]["expansions"] == ["author_id,referenced_tweets.id"]
    assert all(h["Authorization"] == f"Bearer {TOKEN}" for _, h in server.requests)

    # 10 recorded posts + page 2: 2 posts (one is a quote), 4 replies; 5 dropped; 1 malformed.
    assert summary.landed == 16
    assert summary.by_type == {"thread": 12, "reply": 4}
    assert summary.dropped == {"not_authored": 1, "protected_account": 2, "withheld": 1, "author_unknown": 1}
    assert summary.quarantined == 1
    assert len(summary.files) == 1 and "dt=2022-10-07" in summary.files[0]

    rows = {r["record_id"]: r for r in landed(cfg)}
    assert len(rows) == 16
    p = lambda account: pseudonym(TEST_KEY, "x", account)  # noqa: E731
    assert Counter(r["actor"] for r in rows.values()) == Counter(
        {p(TWEEPY_DEV): 12, p(TWITTER): 2, p(TWITTER_DEV): 1, p(PATI): 1}
    )
    # A reply chain: parent ids, parent authors and the conversation root.
    replies = {r["record_id"]: r for r in rows.values() if r["record_type"] == "reply"}
    root = next(r for r in rows.values() if r["occurred_at"].hour == 20 and r["record_type"] == "thread")
    chain = sorted((r for r in replies.values() if r["thread_id"] == root["record_id"]), key=lambda r: r["occurred_at"])
    assert [r["parent_actor"] for r in chain] == [p(TWEEPY_DEV), p(TWITTER_DEV), p(PATI)]
    assert chain[0]["parent_id"] == root["record_id"]
    assert [r["parent_id"] for r in chain[1:]] == [chain[0]["record_id"], chain[1]["record_id"]]
    # A reply to a post outside the results keeps its parent and conversation.
    outside = next(r for r in replies.values() if r["parent_id"] == "1293593516040269825")
    assert outside["thread_id"] == "1293593516040269825" and outside["parent_actor"] == p(TWITTER_DEV)
    # The quote is a thread of its own, not linked to what it quotes.
    quote = next(r for r in rows.values() if r["actor"] == p(TWITTER) and r["record_type"] == "thread")
    assert quote["parent_id"] is None and quote["thread_id"] == quote["record_id"]
    assert not any(r["is_bot"] or r["is_staff"] for r in rows.values())

    # The cursor moved only after landing; nothing identifying on disk or in the logs.
    assert read_state(cfg.path("state"), "tweets")["cursor"].startswith("2022-10-08T00:00:00")
    needles = identifiers(recorded)
    assert {"TweepyDev", "Tweepy Testing", "Debashree Pati", "DanLimmert", "TwitterDev"} <= needles
    assert leaks(workdir / "data", needles) == []
    assert TOKEN not in caplog.text
    assert not [n for n in needles if len(n) >= 4 and n in caplog.text]


def test_rerun_of_the_window_lands_the_same_records(cfg, server):
    serve_cassette(server, CASSETTE)
    first = run_extract(cfg, "tweets", SINCE, UNTIL)
    rows1 = sorted((r["record_id"], r["actor"], r["parent_id"], r["occurred_at"]) for r in landed(cfg))
    requests_first = len(server.requests)
    second = run_extract(cfg, "tweets", SINCE, UNTIL)
    rows2 = sorted((r["record_id"], r["actor"], r["parent_id"], r["occurred_at"]) for r in landed(cfg))
    assert first.files == second.files
    assert rows1 == rows2 and len(rows2) == 16
    assert len(server.requests) == 2 * requests_first


def test_429_with_near_reset_is_waited_out_and_logged(cfg, server, caplog):
    caplog.set_level(logging.INFO)
    recorded = load_cassette(CASSETTE)
    serve_cassette(server, CASSETTE)
    page2 = recorded[1]
    reset = int(time.time()) + 1
    limited = Reply(
        429,
        {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429},
        {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)},
    )
    server.add(SEARCH, [limited, page2.reply], query=page2.query)

    started = time.monotonic()
    summary = run_extract(cfg, "tweets", SINCE, UNTIL)
    waited = time.monotonic() - started

    assert summary.landed == 16
    assert len(server.requests) == 3
    assert waited >= 0.9
    assert "rate limited (x-rate-limit-remaining 0 of 450)" in caplog.text
    assert "1 rate-limit waits" in caplog.text


def test_429_with_a_far_reset_fails_the_run_and_keeps_the_cursor(cfg, server):
    serve_cassette(server, CASSETTE)
    far = Reply(
        429,
        {"title": "Too Many Requests"},
        {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time()) + 3600)},
    )
    server.add(SEARCH, [far], query=load_cassette(CASSETTE)[0].query)

    with pytest.raises(HttpError, match="max_wait_seconds"):
        run_extract(cfg, "tweets", SINCE, UNTIL)
    assert landing_files(cfg.path("landing"), "tweets") == []
    assert read_state(cfg.path("state"), "tweets") == {}
    assert len(server.requests) == 1


def test_server_errors_are_retried(cfg, server):
    recorded = serve_cassette(server, CASSETTE)
    first = recorded[0]
    server.add(SEARCH, [Reply(503, {"title": "Service Unavailable"}), first.reply], query=first.query)

    summary = run_extract(cfg, "tweets", SINCE, UNTIL)
    assert summary.landed == 16
    assert len(server.requests) == 3


def test_missing_token_names_the_variable(cfg, monkeypatch):
    from agora.config import ConfigError

    monkeypatch.delenv("X_TEST_TOKEN")
    with pytest.raises(ConfigError, match="X_TEST_TOKEN"):
        run_extract(cfg, "tweets", SINCE, UNTIL)


def test_search_window_respects_the_seven_day_reach():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    # A daily window is sent as is; `until` in the future is pulled back from now.
    assert search_window(now - timedelta(days=1), now - timedelta(hours=1), now) == (
        now - timedelta(days=1),
        now - timedelta(hours=1),
    )
    assert search_window(None, now + timedelta(hours=1), now) == (None, now - timedelta(seconds=15))
    # A stale cursor is moved up to the horizon so the pipeline catches up.
    start, end = search_window(now - timedelta(days=30), now, now)
    assert start == now - timedelta(days=7) + timedelta(minutes=1) and end == now - timedelta(seconds=15)
    # A window wholly beyond reach is left for X to refuse (the run fails, the cursor stays).
    old = (now - timedelta(days=30), now - timedelta(days=20))
    assert search_window(*old, now) == old


# -- the fault matrix ------------------------------------------------------------


def fault_target() -> Target:
    """This platform's entry in the faults x connectors matrix (tests/fault_matrix.py)."""

    routes = lambda: cassette_routes(CASSETTE)  # noqa: E731
    r = routes()
    return Target(
        name="x",
        source=lambda url: {
            "type": "x",
            "query": "tweepy -is:retweet",
            "base_url": url,
            "bearer_token_env": "X_FAULT_TOKEN",
            "max_wait_seconds": 30,
        },
        routes=routes,
        window=(SINCE, UNTIL),
        pages=(key_of(r, SEARCH, index=0), key_of(r, SEARCH, "next_token")),
        items=lambda body: body["data"],
        record_id=lambda item: str(item["id"]),
        required="created_at",
        time_field="created_at",
        env={"X_FAULT_TOKEN": "AAAA-fault-token"},
        share_context=x_users_on_both,
    )
