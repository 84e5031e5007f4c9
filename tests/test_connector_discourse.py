"""Discourse connector over real HTTP: a hand-built fixture served by ReplayServer.

What the fixture holds is listed in tests/data/discourse/README.md.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import urlencode

import pyarrow.parquet as pq
import pytest
from fault_matrix import Routes, Target, key_of

from agora.config import load_config
from agora.extract import run_extract, utc
from agora.landing import landing_files
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from connectors.discourse import DiscourseConnector
from connectors.http import HttpError
from tests.conftest import TEST_KEY, write_config

DATA = Path(__file__).parent / "data" / "discourse"
UNTIL = "2025-07-01T00:00:00Z"

# Expected for since=None, until=UNTIL (see the fixture README).
THREADS = 7  # 101, 110, 102, 103, 107, 109, 112
REPLIES = 29  # 110:1, 102:22, 103:2, 107:2, 109:1, 112:1
DROPPED = {
    "not_public": 1,
    "deleted": 2,
    "hidden": 1,
    "action_post": 1,
    "restricted_category": 2,
    "private_message": 1,
    "unlisted": 1,
    "topic_unavailable": 1,
}


def _load(name: str):
    return json.loads((DATA / name).read_text())


def fixture_routes() -> dict:
    routes = {("/categories.json", "include_subcategories=true"): _load("categories.json")}
    for f in sorted(DATA.glob("latest_page*.json")):
        n = f.stem.removeprefix("latest_page")
        routes[("/latest.json", f"order=activity&page={n}")] = _load(f.name)
    for f in sorted(DATA.glob("t_*.json")):
        parts = f.stem.split("_")
        if len(parts) == 2:
            routes[(f"/t/{parts[1]}.json", None)] = _load(f.name)
        else:
            body = _load(f.name)
            query = urlencode([("post_ids[]", p["id"]) for p in body["post_stream"]["posts"]])
            routes[(f"/t/{parts[1]}/posts.json", query)] = body
    return routes


def fixture_strings() -> set[str]:
    """Every username, name, avatar template and post text in the fixture."""
    found: set[str] = set()

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k in ("username", "name", "display_username", "avatar_template", "last_poster_username") and v:
                    found.add(v)
                elif k == "cooked" and v and "<a class" not in v:
                    found.add(v)
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for f in DATA.glob("*.json"):
        walk(_load(f.name))
    return found


@pytest.fixture
def server():
    with ReplayServer(fixture_routes()) as s:
        yield s


def forum_config(workdir: Path, url: str, **source):
    src = {
        "name": "forum",
        "type": "discourse",
        "base_url": url,
        "max_retries": 1,
        "tags": [{"tag": "topic:install", "keywords": ["install", "upgrade"]}],
        **source,
    }
    path = write_config(workdir, [src], privacy={"staff": [{"platform": "discourse", "account": "41"}]})
    return load_config(path)


def landed_rows(cfg) -> list[dict]:
    rows = []
    for f in landing_files(cfg.path("landing"), "forum"):
        rows += pq.read_table(f).to_pylist()
    return rows


def requested(server: ReplayServer) -> list[str]:
    return [path for path, _ in server.requests]


def test_lands_public_posts_and_counts_drops(workdir, server):
    cfg = forum_config(workdir, server.url)
    summary = run_extract(cfg, "forum", None, UNTIL)

    assert summary.by_type == {"thread": THREADS, "reply": REPLIES}
    assert summary.dropped == DROPPED
    assert summary.quarantined == 1
    rows = landed_rows(cfg)
    assert len(rows) == THREADS + REPLIES
    ids = {r["record_id"] for r in rows}
    # whisper, deleted, hidden, withdrawn, action post, after-until post, bad timestamp: none landed
    assert not ids & {"1202", "1206", "1102", "1103", "1104", "1302", "1002"}
    # paged to the last page, and not past it; never fetched what was dropped from the list
    paths = requested(server)
    assert any("page=1" in p for p in paths) and not any("page=2" in p for p in paths)
    assert not any(p.startswith(("/t/104", "/t/105", "/t/106", "/t/111")) for p in paths)
    assert any(p.startswith("/t/102/posts.json?") for p in paths)
    state = json.loads((Path(cfg.path("state")) / "forum.json").read_text())
    assert utc(state["cursor"]) == utc(UNTIL)


def test_maps_threads_replies_parents_bots_and_staff(workdir, server):
    cfg = forum_config(workdir, server.url)
    run_extract(cfg, "forum", None, UNTIL)
    rows = {r["record_id"]: r for r in landed_rows(cfg)}

    def actor(uid: int) -> str:
        return pseudonym(TEST_KEY, "discourse", str(uid))

    root = rows["1200"]
    assert (root["record_type"], root["thread_id"], root["parent_id"]) == ("thread", "102", None)
    assert root["actor"] == actor(91) and root["tags"] == ["topic:install"]
    thanks = rows["1203"]  # reply_to_post_number 2 -> the staff answer
    assert (thanks["parent_id"], thanks["parent_actor"]) == ("1201", actor(41))
    assert rows["1201"]["is_staff"] and not rows["1203"]["is_staff"]
    # Replied to the whisper: no parent (not the first post, whose author was not answered).
    assert (rows["1211"]["parent_id"], rows["1211"]["parent_actor"]) == (None, None)
    assert (rows["1214"]["parent_id"], rows["1214"]["parent_actor"]) == ("1211", rows["1211"]["actor"])
    assert rows["1224"]["record_type"] == "reply"  # fetched through posts.json
    assert (rows["1105"]["parent_id"], rows["1105"]["parent_actor"]) == (None, None)  # replied to the hidden post
    assert rows["1151"]["is_bot"] and rows["900"]["is_bot"]  # discobot, system
    assert not rows["1152"]["is_bot"] and rows["1152"]["actor"] == rows["1150"]["actor"]  # self-bump
    assert rows["1011"]["parent_id"] == "1010"  # reply_to_post_number null -> the first post


def test_since_stops_paging_at_older_topics_but_not_at_pinned(workdir, server):
    cfg = forum_config(workdir, server.url)
    summary = run_extract(cfg, "forum", "2025-05-16T00:00:00Z", UNTIL)

    paths = requested(server)
    assert not any("page=1" in p for p in paths)  # topic 108 (bumped 05-15) ended the listing
    assert "/t/108.json" not in paths and "/t/101.json" not in paths
    assert "/t/107.json" in paths  # listed after the old pinned topic 101
    ids = {r["record_id"] for r in landed_rows(cfg)}
    assert "1105" in ids and "1100" not in ids and "1101" not in ids  # 103: only posts since 05-16
    assert summary.by_type["thread"] == 3  # 110, 102, 107


def test_429_then_200_lands_everything(workdir, server):
    page0 = fixture_routes()[("/latest.json", "order=activity&page=0")]
    server.add(
        "/latest.json",
        [Reply(429, {"errors": ["slow down"]}, headers={"Retry-After": "0"}), Reply(body=page0)],
        query="order=activity&page=0",
    )
    cfg = forum_config(workdir, server.url)
    summary = run_extract(cfg, "forum", None, UNTIL)
    assert summary.landed == THREADS + REPLIES
    assert requested(server).count("/latest.json?order=activity&page=0") == 2


def test_failure_mid_run_writes_no_landing_and_no_cursor(workdir, server):
    server.add("/t/103.json", Reply(500, {"errors": ["boom"]}))
    cfg = forum_config(workdir, server.url)
    with pytest.raises(HttpError):
        run_extract(cfg, "forum", None, UNTIL)
    assert requested(server).count("/t/103.json") == 2  # one retry, then give up
    assert not (Path(cfg.path("state")) / "forum.json").exists()
    assert landing_files(cfg.path("landing")) == []


def test_rerun_of_the_same_window_does_not_duplicate(workdir, server):
    cfg = forum_config(workdir, server.url)
    since = "2024-01-01T00:00:00Z"  # explicit: since=None would resume from the saved cursor
    first = run_extract(cfg, "forum", since, UNTIL)
    again = run_extract(cfg, "forum", since, UNTIL)
    rows = landed_rows(cfg)
    assert len(rows) == first.landed == again.landed
    assert len({r["record_id"] for r in rows}) == len(rows)
    assert sorted(first.files) == sorted(again.files) == sorted(landing_files(cfg.path("landing"), "forum"))


def test_no_username_name_avatar_or_text_reaches_disk(workdir, server):
    cfg = forum_config(workdir, server.url)
    run_extract(cfg, "forum", None, UNTIL)
    secrets = fixture_strings()
    assert {"kenji.tanaka", "Lukas Müller", "cheap_watches_4u"} <= secrets
    data = workdir / "data"
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any("quarantine" in str(p) for p in files)
    for p in files:
        blob = p.read_bytes()
        values = json.dumps(pq.read_table(p).to_pylist(), default=str) if p.suffix == ".parquet" else ""
        for s in secrets:
            assert s.encode() not in blob, f"{s!r} in {p}"
            assert s not in values, f"{s!r} in {p}"


def test_fetching_twice_gives_identical_records(workdir, server):
    cfg = forum_config(workdir, server.url)
    src, until = cfg.source("forum"), utc(UNTIL)
    first = list(DiscourseConnector(src).extract(None, until))
    second = list(DiscourseConnector(src).extract(None, until))
    assert len(first) == THREADS + REPLIES + 1  # + the quarantined post
    assert first == second


def test_api_key_headers_come_from_the_environment(workdir, server, monkeypatch):
    monkeypatch.setenv("FORUM_API_KEY", "k" * 64)
    monkeypatch.setenv("FORUM_API_KEY_USERNAME", "agora_bot")
    cfg = forum_config(workdir, server.url, token_env="FORUM_API_KEY")
    run_extract(cfg, "forum", None, UNTIL)
    headers = server.requests[0][1]
    assert headers["Api-Key"] == "k" * 64 and headers["Api-Username"] == "agora_bot"


def test_categories_setting_keeps_selected_slugs_and_their_subcategories(workdir, server):
    cfg = forum_config(workdir, server.url, categories=["help"])
    summary = run_extract(cfg, "forum", None, UNTIL)
    threads = {r["thread_id"] for r in landed_rows(cfg)}
    assert threads == {"102", "107", "112"}  # help and help › installation
    assert summary.dropped["category_not_selected"] == 4  # 101, 110, 103, 109


# -- the fault matrix ------------------------------------------------------------


def fault_target() -> Target:
    """This platform's entry in the faults x connectors matrix (tests/fault_matrix.py)."""

    def routes() -> Routes:
        return {key: [Reply(body=copy.deepcopy(body))] for key, body in fixture_routes().items()}

    r = routes()
    posts = lambda body: body["post_stream"]["posts"]  # noqa: E731
    return Target(
        name="discourse",
        source=lambda url: {"type": "discourse", "base_url": url},
        routes=routes,
        window=("2025-05-01T00:00:00Z", "2025-07-01T00:00:00Z"),
        # Topic 102's post stream: 20 posts in /t/102.json, the other 5 from /t/102/posts.json.
        pages=(key_of(r, "/t/102.json"), key_of(r, "/t/102/posts.json")),
        items=posts,
        record_id=lambda item: str(item["id"]),
        required="created_at",
        time_field="created_at",
    )
