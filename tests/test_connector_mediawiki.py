"""MediaWiki connector (talk-page revisions, support-page views) against replayed responses."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import TEST_KEY, write_config
from fault_matrix import Target, specs_routes

from agora.config import ConfigError, load_config
from agora.extract import run_extract
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from agora.tombstones import add_tombstones
from tests.replayed import landed_rows, load_json_routes, stored_blobs

DATA = Path(__file__).parent / "data" / "mediawiki"
SINCE = datetime(2025, 3, 1, tzinfo=UTC)
UNTIL = datetime(2025, 3, 8, tzinfo=UTC)
TALK_PAGES = ["Talk:Community portal", "Talk:No such page"]
SUPPORT_PAGES = ["Help:Getting started", "Help:FAQ"]


def route_specs() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))}


def personal_values(obj):
    """Editors' names and IP addresses (``user``) and account ids (``userid``)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "user" and isinstance(v, str):
                yield v
            elif k == "userid" and isinstance(v, int) and v > 0:
                yield str(v)
            else:
                yield from personal_values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from personal_values(v)


def fixture_secrets() -> set[str]:
    return {v for s in route_specs().values() for r in s["replies"] for v in personal_values(r["body"])}


def pseudo(account: str) -> str:
    return pseudonym(TEST_KEY, "mediawiki", account)


def make_config(workdir: Path, url: str, pages=TALK_PAGES, support_pages=SUPPORT_PAGES):
    src = {
        "name": "wiki",
        "type": "mediawiki",
        "api_url": f"{url}/w/api.php",
        "pageviews_url": f"{url}/api/rest_v1/metrics/pageviews",
        "project": "meta.wikimedia.org",
        "pages": list(pages),
        "support_pages": list(support_pages),
        "page_size": 3,
    }
    cfg = load_config(write_config(workdir, [src]))
    add_tombstones(cfg.path("state"), {pseudo("9200004")})  # Dave opted out
    return cfg


def test_edits_and_pageviews_land_without_names_or_ips(workdir, caplog):
    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        load_routes(server)
        cfg = make_config(workdir, server.url)
        summary = run_extract(cfg, "wiki", SINCE, UNTIL)
        first_requests = [p for p, _ in server.requests]
        run_extract(cfg, "wiki", SINCE, UNTIL)

    assert summary.by_type == {"edit": 5, "pageviews": 7}
    assert summary.dropped == {"hidden": 2, "opt_out": 1}
    assert summary.quarantined == 1
    assert len(first_requests) == 7  # 3 revision pages, 1 parent lookup, 1 missing page, 2 pageviews
    assert sum("rvcontinue=20250306100000" in p for p in first_requests) == 1  # followed to the last page
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # no waits on the happy path

    rows = landed_rows(cfg, "wiki")
    assert len(rows) == 12  # the rerun replaced its own files
    edits = {r["record_id"]: r for r in rows if r["record_type"] == "edit"}
    assert set(edits) == {"1001", "1002", "1004", "1005", "1007"}
    alice, bob, carol = pseudo("9200001"), pseudo("9200002"), pseudo("9200003")
    assert edits["1001"]["actor"] == alice and edits["1001"]["parent_actor"] == carol  # parent fetched by id
    assert edits["1002"]["actor"] == pseudo("203.0.113.45") and edits["1002"]["parent_actor"] == alice
    assert edits["1004"]["actor"] == bob and edits["1004"]["parent_actor"] is None  # parent's user hidden
    assert edits["1005"]["actor"] == pseudo("9200005") and edits["1005"]["parent_actor"] == bob  # temp account
    assert edits["1007"]["actor"] == pseudo("2001:db8:85a3::8a2e:370:7334")
    assert edits["1007"]["parent_actor"] is None  # previous editor opted out
    assert edits["1002"]["parent_id"] == "1001" and edits["1002"]["thread_id"] == "page:7701"

    views = sorted((r for r in rows if r["record_type"] == "pageviews"), key=lambda r: r["occurred_at"])
    assert [r["record_id"] for r in views][:2] == ["Help:Getting_started:2025-03-01", "Help:Getting_started:2025-03-02"]
    assert [r["value"] for r in views] == [40.0 + 3 * d for d in range(1, 8)]
    assert all(r["actor"] is None and r["parent_actor"] is None for r in views)
    assert views[-1]["occurred_at"] == datetime(2025, 3, 7, tzinfo=UTC)

    secrets = fixture_secrets()
    assert {"Alice Example", "203.0.113.45", "2001:db8:85a3::8a2e:370:7334", "~2025-31337-42", "9200001"} <= secrets
    for path, blob in stored_blobs(workdir / "data"):
        leaked = [s for s in secrets if s.encode() in blob]
        assert not leaked, f"{path}: {leaked}"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in secrets if s in logged]


def test_maxlag_and_429_are_waited_out_and_retried(workdir, caplog):
    caplog.set_level(logging.INFO)
    specs = route_specs()
    with ReplayServer() as server:
        load_routes(server)
        page2, views = specs["revisions.page2"], specs["pageviews.getting_started"]
        lagged = Reply(
            200,
            {"error": {"code": "maxlag", "info": "Waiting for 10.64.16.7: 6 seconds lagged", "lag": 6}},
            {"MediaWiki-API-Error": "maxlag", "Retry-After": "1", "X-Database-Lag": "6"},
        )
        server.add(page2["path"], [lagged, Reply(**page2["replies"][0])], query=page2["query"])
        too_many = Reply(
            429, {"type": "https://mediawiki.org/wiki/HyperSwitch/errors/request_rate_exceeded"}, {"Retry-After": "1"}
        )
        server.add(views["path"], [too_many, Reply(**views["replies"][0])])
        cfg = make_config(workdir, server.url)
        t0 = time.monotonic()
        summary = run_extract(cfg, "wiki", SINCE, UNTIL)
        seconds = time.monotonic() - t0
        assert len(server.requests) == 9  # 7 + one retry each

    assert summary.by_type == {"edit": 5, "pageviews": 7}
    assert 2.0 <= seconds < 60  # lower bound: the waits happened; upper: generous for loaded CI
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2


def test_a_day_of_views_lands_with_the_window_it_ends_in(workdir):
    """Mid-day windows: each complete day lands once, in the window containing its end."""
    with ReplayServer() as server:
        load_routes(server)
        cfg = make_config(workdir, server.url, pages=[], support_pages=["Help:Getting started"])
        # Days 2025-03-01..07 end in (03-01 05:00, 03-08 03:00]: the same request as the midnight window.
        summary = run_extract(cfg, "wiki", "2025-03-01T05:00:00Z", "2025-03-08T03:00:00Z")
        # The next window holds no complete day yet: no request, nothing landed.
        later = run_extract(cfg, "wiki", "2025-03-08T03:00:00Z", "2025-03-08T20:00:00Z")
        assert len(server.requests) == 1
    assert summary.by_type == {"pageviews": 7} and later.landed == 0


def test_support_pages_need_a_pageviews_endpoint(workdir):
    src = {
        "name": "wiki",
        "type": "mediawiki",
        "api_url": "https://wiki.example.org/w/api.php",
        "support_pages": ["Help"],
    }
    with pytest.raises(ConfigError, match="support_pages need pageviews_url and project"):
        load_config(write_config(workdir, [src]))


def load_routes(server: ReplayServer) -> None:
    load_json_routes(DATA, server)


# -- the fault matrix ------------------------------------------------------------


def fault_target() -> Target:
    """This platform's entry in the faults x connectors matrix (tests/fault_matrix.py)."""

    routes = lambda: specs_routes(list(route_specs().values()))  # noqa: E731
    specs = route_specs()
    return Target(
        name="mediawiki",
        source=lambda url: {
            "type": "mediawiki",
            "api_url": f"{url}/w/api.php",
            "pageviews_url": f"{url}/api/rest_v1/metrics/pageviews",
            "project": "meta.wikimedia.org",
            "pages": TALK_PAGES,
            "support_pages": SUPPORT_PAGES,
            "page_size": 3,
        },
        routes=routes,
        window=(SINCE.isoformat(), UNTIL.isoformat()),
        pages=tuple((specs[f"revisions.page{n}"]["path"], specs[f"revisions.page{n}"]["query"]) for n in (1, 2)),
        items=lambda body: body["query"]["pages"][0]["revisions"],
        record_id=lambda item: str(item["revid"]),
        required="timestamp",
        time_field="timestamp",
        # A rejected revision's id turns up as a parent to look up: break one on the last page.
        leaf=(
            (specs["revisions.page3"]["path"], specs["revisions.page3"]["query"]),
            lambda body: body["query"]["pages"][0]["revisions"],
            lambda item: str(item["revid"]),
        ),
    )
