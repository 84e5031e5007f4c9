"""Mastodon connector: recorded hashtag-timeline pages replayed on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest
from cassettes import identifiers, leaks, serve_cassette
from conftest import TEST_KEY, write_config
from fault_matrix import Target, cassette_routes, key_of

from agora.config import ConfigError, load_config
from agora.extract import run_extract
from agora.landing import landing_files, read_state
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply

CASSETTE = Path(__file__).parent / "data" / "mastodon" / "tag_timeline.yaml"
TIMELINE = "/api/v1/timelines/tag/fediverse"
INSTANCE = "icosahedron.website"
HALCY, GREG, CANCEL, BOT = "1", "108902458015766980", "125814", "109999999999999999"


def p(account_id: str) -> str:
    return pseudonym(TEST_KEY, "mastodon", f"{INSTANCE}:{account_id}")


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


def make_cfg(workdir, server, **extra):
    source = {
        "name": "toots",
        "type": "mastodon",
        "base_url": server.url,
        "hashtag": "#fediverse",
        "instance": INSTANCE,
        "page_size": 15,
        "max_retries": 2,
        **extra,
    }
    return load_config(
        write_config(workdir, [source], privacy={"staff": [{"platform": "mastodon", "account": f"{INSTANCE}:{GREG}"}]})
    )


def landed(cfg) -> list[dict]:
    rows = []
    for f in landing_files(cfg.path("landing"), "toots"):
        rows += pq.read_table(f).to_pylist()
    return rows


def max_ids(server) -> list[str | None]:
    return [parse_qs(urlsplit(path).query).get("max_id", [None])[0] for path, _ in server.requests]


def test_timeline_lands_public_statuses_pages_to_the_end_and_counts_drops(workdir, server, caplog):
    caplog.set_level(logging.DEBUG)
    recorded = serve_cassette(server, CASSETTE)
    cfg = make_cfg(workdir, server)

    summary = run_extract(cfg, "toots", None, "2026-04-12T00:00:00Z")

    # Three pages of statuses through Link rel=next, then the empty page that ends it.
    assert max_ids(server) == [None, "116386918909911028", "116385918805268608", "101256876982565163"]
    assert all(parse_qs(urlsplit(path).query)["limit"] == ["15"] for path, _ in server.requests)
    # 39 statuses: 24 public by accounts that allow indexing, 15 dropped.
    assert summary.landed == 24
    assert summary.by_type == {"thread": 6, "reply": 18}
    assert summary.dropped == {
        "opted_out_of_indexing": 8,
        "not_public": 5,
        "locked_account": 1,
        "not_authored": 1,
    }
    assert summary.quarantined == 0
    assert {Path(f).parent.name for f in summary.files} == {"dt=2018-12-17", "dt=2026-04-10", "dt=2026-04-11"}

    rows = {r["record_id"]: r for r in landed(cfg)}
    assert len(rows) == 24
    # Account ids are pseudonymised as <instance>:<id>; staff and bots are flagged.
    assert sum(r["actor"] == p(HALCY) for r in rows.values()) == 14
    assert [r["is_bot"] for r in rows.values() if r["actor"] == p(BOT)] == [True]
    assert [r["is_staff"] for r in rows.values() if r["is_staff"]] == [True]
    assert rows["116388148912635764"]["actor"] == p(GREG)
    # Replies link to parents, also to statuses outside the timeline or dropped from it.
    reply = rows["116387892856015132"]  # halcy answering an opted-out account
    assert reply["parent_id"] == "116387888405259344" and reply["parent_actor"] == p(CANCEL)
    assert "116387888405259344" not in rows
    chain = rows["116387585496911156"]  # bazbt3 -> halcy -> bazbt3 -> halcy's thread
    assert chain["parent_id"] == "116387576467126822" and chain["thread_id"] == "116386597009442714"
    assert rows["116386597009442714"]["record_type"] == "thread"
    assert rows["116386597009442714"]["thread_id"] == "116386597009442714"
    outside = rows["116386454112930873"]  # parent not in the timeline: thread_id falls back to it
    assert outside["thread_id"] == outside["parent_id"] == "116386217157666634"
    assert rows["116388148912635764"]["thread_id"] == "116387888405259344"  # parent dropped (opted out)

    assert read_state(cfg.path("state"), "toots")["cursor"].startswith("2026-04-12T00:00:00")
    needles = identifiers(recorded)
    assert {"halcy", "cancel@merveilles.town", "PoroCYon", "Agora Fixture Bot"} <= needles
    assert leaks(workdir / "data", needles) == []
    assert not [n for n in needles if len(n) >= 4 and n in caplog.text]
    assert "X-RateLimit-Remaining 292 of 300" in caplog.text


def test_incremental_window_stops_paging_once_past_since(workdir, server):
    serve_cassette(server, CASSETTE)
    cfg = make_cfg(workdir, server)

    summary = run_extract(cfg, "toots", "2026-04-11T12:00:00Z", "2026-04-11T20:00:00Z")

    # Page 2 reaches back before `since`: page 3 is never asked for.
    assert max_ids(server) == [None, "116386918909911028"]
    rows = landed(cfg)
    since, until = datetime(2026, 4, 11, 12, tzinfo=UTC), datetime(2026, 4, 11, 20, tzinfo=UTC)
    assert rows and all(since <= r["occurred_at"] < until for r in rows)
    # Only drops inside the window count: 4 opted-out statuses and the reblog.
    assert summary.landed == 15
    assert summary.by_type == {"thread": 4, "reply": 11}
    assert summary.dropped == {"opted_out_of_indexing": 4, "not_authored": 1}


def test_rerun_of_the_window_lands_the_same_records(workdir, server):
    serve_cassette(server, CASSETTE)
    cfg = make_cfg(workdir, server)
    window = ("2026-04-11T00:00:00Z", "2026-04-12T00:00:00Z")

    first = run_extract(cfg, "toots", *window)
    rows1 = sorted((r["record_id"], r["actor"], r["thread_id"], r["parent_actor"]) for r in landed(cfg))
    second = run_extract(cfg, "toots", *window)
    rows2 = sorted((r["record_id"], r["actor"], r["thread_id"], r["parent_actor"]) for r in landed(cfg))

    assert first.files == second.files and first.landed == second.landed == 22
    assert rows1 == rows2


def test_429_waits_for_x_ratelimit_reset_and_logs_it(workdir, server, caplog):
    caplog.set_level(logging.INFO)
    recorded = serve_cassette(server, CASSETTE)
    second = recorded[1]
    reset = (datetime.now(UTC) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    limited = Reply(
        429,
        {"error": "Too many requests"},
        {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
    )
    server.add(TIMELINE, [limited, second.reply], query=second.query)
    cfg = make_cfg(workdir, server)

    started = time.monotonic()
    summary = run_extract(cfg, "toots", None, "2026-04-12T00:00:00Z")

    assert time.monotonic() - started >= 0.5
    assert summary.landed == 24
    assert len(server.requests) == 5
    assert "HTTP 429" in caplog.text and "retrying" in caplog.text


def test_token_env_must_be_set_when_configured(workdir, server):
    cfg = make_cfg(workdir, server, token_env="MASTODON_TEST_TOKEN")
    with pytest.raises(ConfigError, match="MASTODON_TEST_TOKEN"):
        run_extract(cfg, "toots", None, "2026-04-12T00:00:00Z")


def test_instance_defaults_to_base_url_host_and_page_size_is_capped(workdir):
    from connectors.mastodon import account_key, instance_of

    cfg = load_config(
        write_config(
            workdir, [{"name": "toots", "type": "mastodon", "base_url": "https://Fosstodon.org/", "hashtag": "airflow"}]
        )
    )
    assert instance_of(cfg.source("toots")) == "fosstodon.org"
    assert account_key("fosstodon.org", 42) == "fosstodon.org:42"
    with pytest.raises(ConfigError, match="page_size"):
        load_config(
            write_config(
                workdir,
                [
                    {
                        "name": "toots",
                        "type": "mastodon",
                        "base_url": "https://a.example",
                        "hashtag": "x",
                        "page_size": 80,
                    }
                ],
            )
        )


# -- the fault matrix ------------------------------------------------------------


def fault_target() -> Target:
    """This platform's entry in the faults x connectors matrix (tests/fault_matrix.py)."""

    routes = lambda: cassette_routes(CASSETTE)  # noqa: E731
    r = routes()
    return Target(
        name="mastodon",
        source=lambda url: {
            "type": "mastodon",
            "base_url": url,
            "hashtag": "#fediverse",
            "instance": INSTANCE,
            "page_size": 15,
        },
        routes=routes,
        # Page 2 reaches back past `since`: the connector must stop there, not earlier.
        window=("2026-04-11T12:00:00Z", "2026-04-11T20:00:00Z"),
        pages=(key_of(r, TIMELINE, index=0), key_of(r, TIMELINE, "max_id=116386918909911028")),
        items=lambda body: body,
        record_id=lambda item: str(item["id"]),
        required="created_at",
        time_field="created_at",
    )
