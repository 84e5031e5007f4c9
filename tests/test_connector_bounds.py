"""Bounded work: a hostile server cannot keep an extract fetching or waiting forever.

A ``Link`` pointing at its own page, a body dripped one byte a second, and a body larger
than the cap each end the run with a clear error naming the source within its bound;
nothing lands and the cursor stays where it was.
"""

from __future__ import annotations

import time

import pytest
from fault_matrix import FaultServer, Target, body_of, targets, window_of
from test_faults import configure, serve

from agora.extract import run_extract
from agora.landing import landing_files, read_state, write_state
from agora.replay import Reply
from connectors.http import HttpError, LimitError

GITHUB = next(t for t in targets() if t.name == "github")
MASTODON = next(t for t in targets() if t.name == "mastodon")


def _fails(t: Target, workdir, routes, settings, server: FaultServer) -> tuple[HttpError, float, object]:
    since, until = window_of(t)
    serve(server, routes)
    cfg = configure(t, workdir, server.url, settings)
    write_state(cfg.path("state"), t.name, {"cursor": since.isoformat()})
    started = time.monotonic()
    with pytest.raises(HttpError) as failed:
        run_extract(cfg, t.name, None, until)
    seconds = time.monotonic() - started
    assert landing_files(cfg.path("landing"), t.name) == []  # nothing landed half-way
    assert read_state(cfg.path("state"), t.name) == {"cursor": since.isoformat()}  # cursor unchanged
    assert "\n" not in str(failed.value)
    return failed.value, seconds, cfg


@pytest.mark.parametrize("t", [GITHUB, MASTODON], ids=lambda t: t.name)
def test_a_link_to_its_own_page_stops_with_an_error_naming_the_source(t: Target, workdir):
    routes = t.routes()
    path, query = t.pages[0]
    ok = routes[t.pages[0]][0]
    headers = {k: v for k, v in ok.headers.items() if k.lower() != "link"}
    headers["Link"] = f'<{{base_url}}{path}?{query}>; rel="next"'
    routes[t.pages[0]] = [Reply(ok.status, ok.body, headers)]
    with FaultServer() as server:
        error, _, _ = _fails(t, workdir, routes, {"max_retries": 1}, server)
        looped = [p for p, _ in server.requests if p.startswith(path)]
    assert isinstance(error, LimitError)
    assert str(error).startswith(f"{t.name}: ") and "loops" in str(error), error
    assert len(looped) == 1  # the page was fetched once, not 445 times


def test_a_listing_longer_than_max_pages_stops(workdir):
    with FaultServer() as server:
        error, _, _ = _fails(GITHUB, workdir, GITHUB.routes(), {"max_pages": 2}, server)
    assert isinstance(error, LimitError) and "more than 2 pages" in str(error), error


def test_a_body_dripped_one_byte_a_second_ends_at_the_request_deadline(workdir):
    settings = {"deadline_seconds": 2, "timeout_seconds": 5, "max_retries": 1}  # per read 5 s > 1 s per byte
    with FaultServer() as server:
        server.drip_body(*GITHUB.pages[1])
        error, seconds, _ = _fails(GITHUB, workdir, GITHUB.routes(), settings, server)
    assert "DeadlineExceeded" in str(error) and GITHUB.pages[1][0] in str(error), error
    # Two attempts of a 2 s deadline and one backoff; the page alone is thousands of bytes (seconds).
    assert seconds < 30, seconds


def test_an_oversized_body_is_refused(workdir):
    routes = GITHUB.routes()
    ok = routes[GITHUB.pages[1]][0]
    body = body_of(ok)
    body[0]["padding"] = "x" * 200_000  # a field nobody reads, making the page ~200 kB
    routes[GITHUB.pages[1]] = [Reply(ok.status, body, dict(ok.headers))]
    with FaultServer() as server:
        error, _, _ = _fails(GITHUB, workdir, routes, {"max_response_bytes": 65536}, server)
        requests_to_page = [p for p, _ in server.requests if p.startswith(GITHUB.pages[1][0])]
    assert isinstance(error, LimitError)
    assert "github: " in str(error) and "65536-byte cap" in str(error), error
    assert len(requests_to_page) == 1  # not retried: a bigger body will not get smaller


@pytest.mark.parametrize(
    "value, seconds",
    [("3", 3.0), ("-5", 0.0), ("garbage", None), ("²", None), ("inf", None), ("nan", None), ("", None)],
)
def test_a_hostile_retry_after_is_ignored_never_raised_on(value, seconds):
    from connectors.http import retry_after_seconds

    assert retry_after_seconds(value) == seconds


def test_retry_after_as_an_http_date_without_a_zone_is_read_as_gmt():
    from connectors.http import retry_after_seconds

    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00") == 0.0  # in the past: retry now
    assert 0 < retry_after_seconds("Wed, 21 Oct 2099 07:28:00 GMT")
