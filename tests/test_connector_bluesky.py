"""Bluesky connector against responses built from the atproto lexicons, replayed over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import TEST_KEY, write_config

from agora.config import ConfigError, load_config
from agora.extract import run_extract
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from agora.tombstones import add_tombstones
from connectors.bluesky import lookup_handle
from connectors.http import HttpError
from tests.data.bluesky import build_fixtures as fx
from tests.replayed import landed_rows, load_json_routes, stored_blobs

DATA = Path(__file__).parent / "data" / "bluesky"
SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = datetime(2025, 3, 8, tzinfo=UTC)
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
DID = re.compile(r"did:plc:[a-z2-7]{24}")


def route_specs() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))]


def spec_of(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def fixture_secrets() -> set[str]:
    """Every DID, handle, display name, avatar, AT-URI and post text in the fixtures."""
    found: set[str] = set()

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("handle", "displayName", "avatar", "text", "uri", "did") and isinstance(v, str):
                    found.add(v)
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for spec in route_specs():
        for reply in spec["replies"]:
            walk(reply["body"])
            found.update(DID.findall(json.dumps(reply["body"])))
    return {v for v in found if len(v) >= 4}


def pseudo(person: dict) -> str:
    return pseudonym(TEST_KEY, "bluesky", person["did"])


def make_config(workdir: Path, url: str, **extra):
    src = {
        "name": "sky",
        "type": "bluesky",
        "base_url": url,
        "query": fx.QUERY,
        "feeds": [fx.FEED],
        "accounts": [fx.ALICE["handle"], "gone-away.bsky.social"],
        "page_size": fx.LIMIT,
        "max_retries": 2,
        **extra,
    }
    staff = [{"platform": "bluesky", "account": fx.MAYA["did"]}]
    cfg = load_config(write_config(workdir, [src], privacy={"staff": staff}))
    add_tombstones(cfg.path("state"), {pseudo(fx.DAVE)})  # dave opted out
    return cfg


def search_cursors(server) -> list[str | None]:
    qs = [parse_qs(urlsplit(p).query) for p, _ in server.requests if urlsplit(p).path == SEARCH]
    return [q.get("cursor", [None])[0] for q in qs]


def test_reads_search_feed_and_accounts_to_the_end_drops_by_reason_and_lands_no_personal_data(workdir, caplog):
    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "sky", SINCE, UNTIL)
        assert search_cursors(server) == [None, "3", "6", "9"]  # to the last page (no cursor)
        first_requests = len(server.requests)
        rerun = run_extract(cfg, "sky", SINCE, UNTIL)

    # search 4 pages, feed 1, Alice's feed 2 (page 2 reaches past `since`), the gone account 1.
    assert first_requests == 8
    assert summary.by_type == {"thread": 3, "reply": 6}
    assert summary.dropped == {"no_unauthenticated": 2, "not_authored": 1, "account_unavailable": 1, "opt_out": 1}
    assert summary.quarantined == 0

    rows = landed_rows(cfg, "sky")
    assert len(rows) == 9 and rerun.landed == 9  # the rerun replaced its files: nothing added
    by_id = {r["record_id"]: r for r in rows}
    assert set(by_id) == {p.cid for p in (fx.T1, fx.T2, fx.T3, fx.T5, fx.T8, fx.T9, fx.T10, fx.T11, fx.T12)}
    assert not {fx.T4.cid, fx.T6.cid, fx.T7.cid} & set(by_id)  # !no-unauthenticated (account, post), opted out
    alice, bob, maya, erin = pseudo(fx.ALICE), pseudo(fx.BOB), pseudo(fx.MAYA), pseudo(fx.ERIN)
    t3 = by_id[fx.T3.cid]
    assert (t3["actor"], t3["parent_id"], t3["parent_actor"], t3["thread_id"]) == (alice, fx.T2.cid, bob, fx.T1.cid)
    assert by_id[fx.T1.cid]["thread_id"] == fx.T1.cid and by_id[fx.T1.cid]["record_type"] == "thread"
    # A reply to an account that asked not to be shown keeps the thread, not the author.
    t5 = by_id[fx.T5.cid]
    assert (t5["thread_id"], t5["parent_id"], t5["parent_actor"]) == (fx.T4.cid, fx.T4.cid, None)
    # A reply to a deleted post keeps the post's id, not its author; the deleted post never lands.
    t8 = by_id[fx.T8.cid]
    assert (t8["parent_id"], t8["parent_actor"]) == (fx.GONE.cid, None)
    assert fx.GONE.cid not in by_id
    # The parent's author comes from the parent's AT-URI, even when the parent was not read.
    assert by_id[fx.T11.cid]["parent_actor"] == erin and fx.ERINS.cid not in by_id
    assert by_id[fx.T10.cid]["parent_actor"] == maya and by_id[fx.T9.cid]["is_staff"] is True
    # createdAt far ahead (client clock): the post counts when it was indexed.
    assert by_id[fx.T10.cid]["occurred_at"] == datetime(2025, 3, 6, 11, tzinfo=UTC)
    assert all(SINCE <= r["occurred_at"] < UNTIL for r in rows)

    secrets = fixture_secrets()
    assert {fx.ALICE["did"], fx.ALICE["handle"], "Quiet One", fx.T1.uri, fx.T4.text} <= secrets
    for path, blob in stored_blobs(workdir / "data"):
        leaked = [s for s in secrets if s.encode() in blob]
        assert not leaked, f"{path}: {leaked}"
    # Handles named in agora.yml (`accounts`) are configuration: urllib3's DEBUG lines show them in
    # request URLs, as the config file does. Nothing the API returned may reach the logs.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in secrets - {fx.ALICE["handle"]} if s in logged]
    assert fx.ALICE["handle"] not in "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


def test_keyword_tags_are_computed_at_the_edge_and_the_text_never_lands(workdir):
    tags = [{"tag": "topic:events", "keywords": ["meetup", "community call"]}]
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url, feeds=[], accounts=[], tags=tags)
        run_extract(cfg, "sky", SINCE, UNTIL)
    rows = {r["record_id"]: r for r in landed_rows(cfg, "sky")}
    assert [k for k, r in rows.items() if r["tags"]] == [fx.T9.cid]
    assert rows[fx.T9.cid]["tags"] == ["topic:events"]
    for _, blob in stored_blobs(workdir / "data"):
        assert b"Community call" not in blob and b"meetup" not in blob


def test_a_post_deleted_since_is_gone_after_the_window_is_read_again(workdir):
    page2 = spec_of("search.page2")
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url, feeds=[], accounts=[])
        run_extract(cfg, "sky", SINCE, UNTIL)
        assert fx.T5.cid in {r["record_id"] for r in landed_rows(cfg, "sky")}
        # Bob deletes his reply: the AppView no longer serves it.
        body = dict(page2["replies"][0]["body"])
        body["posts"] = [p for p in body["posts"] if p["cid"] != fx.T5.cid]
        server.add(page2["path"], Reply(body=body, headers=page2["replies"][0]["headers"]), query=page2["query"])
        again = run_extract(cfg, "sky", SINCE, UNTIL)
    assert fx.T5.cid not in {r["record_id"] for r in landed_rows(cfg, "sky")}
    assert again.landed == 6


def test_429_with_retry_after_and_a_spent_quota_are_waited_out(workdir, caplog):
    caplog.set_level(logging.INFO)
    page1, page2 = spec_of("search.page1"), spec_of("search.page2")
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        spent = dict(page1["replies"][0])
        spent["headers"] = {
            **spent["headers"],
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(math.ceil(time.time()) + 1),
        }
        server.add(page1["path"], [Reply(**spent)], query=page1["query"])
        limited = Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, {"Retry-After": "1"})
        server.add(page2["path"], [limited, Reply(**page2["replies"][0])], query=page2["query"])
        cfg = make_config(workdir, server.url)
        t0 = time.monotonic()
        summary = run_extract(cfg, "sky", SINCE, UNTIL)
        seconds = time.monotonic() - t0
        sent = len(server.requests)
    assert summary.landed == 9 and sent == 9  # one retry
    assert seconds >= 1.0
    messages = [r.getMessage() for r in caplog.records]
    assert any("rate-limit quota exhausted" in m for m in messages)
    assert any("HTTP 429" in m and "retrying" in m for m in messages)


def test_a_truncated_body_is_fetched_again(workdir):
    page3 = spec_of("search.page3")
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        ok = page3["replies"][0]
        server.add(page3["path"], [Reply(**ok, fault="truncate"), Reply(**ok)], query=page3["query"])
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "sky", SINCE, UNTIL)
        sent = len(server.requests)
    assert summary.landed == 9 and summary.quarantined == 0 and sent == 9


class SessionServer(ReplayServer):
    """The replay server plus a PDS's ``com.atproto.server.createSession`` (POST)."""

    TOKEN = "eyJ-test-access-jwt"

    def __init__(self, *args, **kwargs):
        self.logins: list[dict] = []
        super().__init__(*args, **kwargs)

    def _handler(self):
        base, server = super()._handler(), self

        class Handler(base):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.logins.append(body)
                ok = self.path == "/xrpc/com.atproto.server.createSession" and body["password"] == "abcd-efgh-ijkl-mnop"
                out = json.dumps(
                    {"accessJwt": server.TOKEN, "did": "did:plc:x"} if ok else {"error": "AuthFactorTokenRequired"}
                )
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out.encode())

        return Handler


def test_an_app_password_logs_in_once_and_the_token_goes_with_every_read(workdir, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with SessionServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(
            workdir, server.url, feeds=[], accounts=[], identifier="agora-bot.bsky.social", app_password_env="BSKY_PW"
        )
        with pytest.raises(ConfigError, match="BSKY_PW"):
            run_extract(cfg, "sky", SINCE, UNTIL)
        monkeypatch.setenv("BSKY_PW", "wrong-password-0000")
        with pytest.raises(HttpError, match="createSession: HTTP 401"):
            run_extract(cfg, "sky", SINCE, UNTIL)
        assert not server.requests  # nothing read without a session
        monkeypatch.setenv("BSKY_PW", "abcd-efgh-ijkl-mnop")
        summary = run_extract(cfg, "sky", SINCE, UNTIL)
        auth = {h.get("Authorization") for _, h in server.requests}
    assert len(server.logins) == 2 and server.logins[-1]["identifier"] == "agora-bot.bsky.social"
    assert auth == {f"Bearer {SessionServer.TOKEN}"} and summary.landed == 7  # the search alone
    for _, blob in stored_blobs(workdir / "data"):
        assert b"abcd-efgh-ijkl-mnop" not in blob and SessionServer.TOKEN.encode() not in blob
    assert "abcd-efgh-ijkl-mnop" not in caplog.text and SessionServer.TOKEN not in caplog.text


def test_the_session_token_stays_on_its_origin(workdir, monkeypatch):
    """A redirect to another origin after login is refused before any request: the token never leaves."""
    page1 = spec_of("search.page1")
    monkeypatch.setenv("BSKY_PW", "abcd-efgh-ijkl-mnop")
    with ReplayServer() as other, SessionServer() as server:
        other.add(page1["path"], Reply(body={"posts": []}))
        load_json_routes(DATA, server)
        server.add(page1["path"], Reply(302, "", {"Location": f"{other.url}{page1['path']}?q=x"}), query=page1["query"])
        cfg = make_config(
            workdir, server.url, feeds=[], accounts=[], identifier="agora-bot.bsky.social", app_password_env="BSKY_PW"
        )
        with pytest.raises(HttpError, match="refusing a redirect"):
            run_extract(cfg, "sky", SINCE, UNTIL)
    assert other.requests == []
    assert [h.get("Authorization") for _, h in server.requests] == [f"Bearer {SessionServer.TOKEN}"]
    assert not list(Path(cfg.path("landing")).rglob("*.parquet"))


def test_a_handle_resolves_to_its_did(workdir):
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        src = make_config(workdir, server.url).source("sky")
        assert lookup_handle(src, "@" + fx.ALICE["handle"], logging.getLogger("test")) == fx.ALICE["did"]
        assert lookup_handle(src, "nobody.bsky.social", logging.getLogger("test")) is None
        sent = len(server.requests)
        assert lookup_handle(src, fx.BOB["did"], logging.getLogger("test")) == fx.BOB["did"]
        assert len(server.requests) == sent  # a DID is the id already: no request


def test_a_source_needs_something_to_read(workdir):
    with pytest.raises(ConfigError, match="query, feeds or accounts"):
        load_config(write_config(workdir, [{"name": "sky", "type": "bluesky"}]))


def fault_target():
    """This connector's row of the faults x connectors matrix (tests/fault_matrix.py)."""
    from fault_matrix import Target, specs_routes

    class PostTarget(Target):
        def set_time(self, item: dict, when: datetime) -> None:
            # A post counts at min(record.createdAt, indexedAt): move both.
            super().set_time(item, when)
            item["record"]["createdAt"] = item["indexedAt"]

    specs = {p.stem: json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))}
    key = lambda name: (specs[name]["path"], specs[name]["query"])  # noqa: E731
    return PostTarget(
        name="bluesky",
        source=lambda url: {
            "type": "bluesky",
            "base_url": url,
            "query": fx.QUERY,  # the search alone: a fault changes a post there, not in the feeds
            "page_size": fx.LIMIT,
        },
        routes=lambda: specs_routes(route_specs()),
        window=(SINCE.isoformat(), UNTIL.isoformat()),
        pages=(key("search.page1"), key("search.page2")),
        items=lambda body: body["posts"],
        record_id=lambda item: item["cid"],
        required="indexedAt",
        time_field="indexedAt",
        account=("author", "did"),
        credential={},  # an app password is a session login (POST): covered by this module's own tests
    )


def test_privacy_requests_name_a_bluesky_account_by_handle_or_did(workdir, caplog):
    from agora import privacy

    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        load_json_routes(DATA, server)
        cfg = make_config(workdir, server.url)
        at = datetime(2025, 1, 1, tzinfo=UTC)
        cases = {
            fx.ALICE["handle"]: {fx.ALICE["did"]},
            "@" + fx.ALICE["handle"]: {fx.ALICE["did"]},
            fx.BOB["did"]: {fx.BOB["did"]},
            "nobody.bsky.social": set(),  # does not resolve: the request stays pending with a reason
        }
        for account, expected in cases.items():
            keys, why = privacy.account_keys(cfg, privacy.Request("r.csv:2", "bluesky", account, "erasure", at))
            assert keys == expected and (why is None) == bool(expected), (account, why)
    assert fx.ALICE["handle"] not in "\n".join(r.getMessage() for r in caplog.records)
