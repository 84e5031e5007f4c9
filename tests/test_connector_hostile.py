"""Per-item robustness: every connector turns the same hostile items into quarantined
records with a reason and goes on with the rest.

For each HTTP connector one landed record of its recorded responses is replaced by a
hostile variant (wrong types, absurd ids and timestamps, missing fields, not an object);
the run must complete, that record must not land but be quarantined with a reason, and
every other record must land as on the happy path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fault_matrix import FaultServer, Target, body_of, targets, window_of, with_body
from test_faults import baseline, configure, landed_rows, quarantine_rows, serve

from agora.extract import run_extract

#: Where each platform keeps an item's author: (container key or None when flat, id key).
ACCOUNT = {
    "github": ("user", "id"),
    "mastodon": ("account", "id"),
    "discourse": (None, "user_id"),
    "stackexchange": ("owner", "user_id"),
    "mediawiki": (None, "userid"),
    "x": (None, "author_id"),
}


def _set_account(t: Target, item: dict, value: Any) -> None:
    container, key = ACCOUNT[t.name]
    (item[container] if container else item)[key] = value
    item.pop("anon", None)  # MediaWiki: a registered editor's id, not an anonymous one's address


def _set_container(t: Target, item: dict, value: Any) -> None:
    container, key = ACCOUNT[t.name]
    item[container or key] = value
    item.pop("anon", None)


def _set_time(t: Target, item: dict, when: datetime) -> None:
    t.set_time(item, when)


FUTURE = datetime.now(UTC) + timedelta(days=30)
HOSTILE: dict[str, Callable[[Target, dict], Any]] = {
    "account is a string": lambda t, i: _set_container(t, i, "x"),
    "account is a list": lambda t, i: _set_container(t, i, ["x"]),
    "fullwidth account id": lambda t, i: _set_account(t, i, "１２３"),
    "account id with a zero-width space": lambda t, i: _set_account(t, i, "123\u200b"),
    "huge account id": lambda t, i: _set_account(t, i, 10**40),
    "timestamp is a number": lambda t, i: i.__setitem__(t.time_field, 12345),
    "timestamp is an object": lambda t, i: i.__setitem__(t.time_field, {"t": 1}),
    "timestamp before 2000": lambda t, i: _set_time(t, i, datetime(1999, 12, 31, tzinfo=UTC)),
    "timestamp in year 1": lambda t, i: i.__setitem__(
        t.time_field, -62135596800 if t.epoch_seconds else "0001-01-01T00:00:00Z"
    ),
    "timestamp in the future": lambda t, i: _set_time(t, i, FUTURE),
    "timestamp missing": lambda t, i: i.pop(t.time_field),
    "item is a string": None,  # the whole item replaced
}
TARGETS = targets()
CASES = [pytest.param(t, h, id=f"{t.name}-{h}") for t in TARGETS for h in HOSTILE]


@pytest.mark.parametrize(("t", "hostile"), CASES)
def test_a_hostile_item_is_quarantined_and_the_run_goes_on(
    t: Target, hostile: str, workdir, monkeypatch, tmp_path_factory
):
    for k, v in t.env.items():
        monkeypatch.setenv(k, v)
    base = baseline(t, tmp_path_factory)
    since, until = window_of(t)
    routes = t.routes()
    key, items, record_id = t.leaf_page()
    body = body_of(routes[key][0])
    page = items(body)
    index = next(n for n, i in enumerate(page) if record_id(i) in base.ids)
    victim_id = record_id(page[index])
    if HOSTILE[hostile] is None:
        page[index] = "x"
    else:
        victim = copy.deepcopy(page[index])
        HOSTILE[hostile](t, victim)
        page[index] = victim
    routes[key] = [with_body(routes[key][0], body)]
    with FaultServer() as server:
        serve(server, routes)
        cfg = configure(t, workdir, server.url, {"max_retries": 0})
        summary = run_extract(cfg, t.name, since, until)  # completes: one bad item never fails a source

    landed = {r["record_id"] for r in landed_rows(cfg, t.name)}
    assert victim_id not in landed
    assert landed == base.ids - {victim_id}, sorted(base.ids - landed)
    assert summary.quarantined == base.quarantined + 1
    reasons = [q["reason"] for q in quarantine_rows(cfg, t.name)]
    assert all(r and "\n" not in r for r in reasons)
    for r in reasons:  # a reason never carries the offending value
        assert "１２３" not in r and "\u200b" not in r and str(10**40) not in r
