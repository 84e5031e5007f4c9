"""The connector contract, generated for every registered connector.

Every platform a connector module declares (connectors/registry.py) with a
``fault_target`` gets, without writing a line of test code for it:

- **privacy**: no raw account id, handle or public text of its recorded responses is in
  any byte written (landing, quarantine, state), decoded Parquet included;
- **rerun**: the same window twice lands the same records once;
- **window**: a record at exactly ``since`` lands, one at exactly ``until`` does not
  (half-open windows), and every landed record lies inside the window;
- **bounded work**: a body over ``max_response_bytes`` and a body dripped a byte a second
  each fail the run with an error naming the source, nothing landed, cursor unchanged;
- **fault injection**: the faults x connectors matrix (429, 5xx bursts, resets,
  timeouts, truncated or cut bodies, new fields, missing fields, repeats, reordering,
  permanent failures) of tests/fault_matrix.py, run by `test_fault` below;
- **bad payloads**: the same hostile items (wrong types, absurd ids and timestamps,
  missing fields, not an object) quarantined with a reason while the run goes on.

The per-platform input is the `fault_matrix.Target` its connector names (its recorded
responses and where its records sit); a non-team platform without one fails
`test_every_registered_connector_is_in_the_contract`.
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fault_matrix import (
    FAULTS,
    NEW_FIELD,
    NEW_FIELD_VALUE,
    Fault,
    FaultServer,
    Target,
    body_of,
    source_config,
    targets,
    window_of,
    with_body,
)
from test_faults import baseline, configure, landed_rows, quarantine_rows, serve, stored_bytes

from agora.extract import run_extract
from agora.landing import landing_files, read_state, write_state
from connectors.base import connector_class
from connectors.http import HttpError
from connectors.registry import Platform, names, platforms
from tests.cassettes import leaks

TARGETS = targets()


def _env(t: Target, monkeypatch) -> None:
    for k, v in t.env.items():
        monkeypatch.setenv(k, v)


def test_every_registered_connector_is_in_the_contract():
    assert {t.name for t in TARGETS} == set(names(team=False))


# -- the public notice (`agora notice`) -----------------------------------------------------------
# agora/notice.py names no platform: each declares the words the notice uses for it.


def _reasons_in_code(module: Any) -> set[str]:
    """Drop reasons written in a connector module: ``.drop("reason")`` calls and the string
    literals returned by its ``*drop_reason*`` functions."""
    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "drop":
            found |= {a.value for a in node.args[:1] if isinstance(a, ast.Constant)}
        if isinstance(node, ast.FunctionDef) and "drop_reason" in node.name:
            found |= {
                r.value.value
                for r in ast.walk(node)
                if isinstance(r, ast.Return) and isinstance(r.value, ast.Constant) and isinstance(r.value.value, str)
            }
    return found


@pytest.mark.parametrize("p", platforms(), ids=lambda p: p.name)
def test_every_drop_reason_has_plain_language_wording(p: Platform):
    declared = p.connector.drop_reasons
    assert isinstance(declared, Mapping)
    for reason, wording in declared.items():
        assert re.fullmatch(r"[a-z][a-z_]*", reason), reason
        assert isinstance(wording, str) and wording == wording.strip() and len(wording.split()) >= 2, reason
        assert wording[:1].islower() and not wording.endswith("."), f"{reason}: a phrase the notice joins with ';'"
        assert wording != reason.replace("_", " "), f"{reason}: worded only by its name"
    undeclared = _reasons_in_code(sys.modules[p.connector.__module__]) - set(declared)
    assert not undeclared, f"{p.name} drops for {sorted(undeclared)} without wording them in drop_reasons"


def _sample_source(p: Platform) -> tuple[Any, set[str]]:
    """A configured source of the platform, and the configured values a description may name."""
    if p.team:
        config = {"name": p.name, "type": p.name, "path": "inputs/team_file.csv"}
    else:
        config = source_config(next(t for t in TARGETS if t.name == p.name), "http://127.0.0.1:9", {})
    values = {v for k, v in config.items() if k not in ("name", "type") and isinstance(v, str)}
    values |= {v for k, v in config.items() if isinstance(v, list) for v in v if isinstance(v, str)}
    return p.source.model_validate(config), values


@pytest.mark.parametrize("p", platforms(), ids=lambda p: p.name)
def test_every_platform_describes_its_sources_for_the_notice(p: Platform):
    source, values = _sample_source(p)
    what = p.describe(source)
    assert isinstance(what, str) and what[:1].islower() and not what.endswith("."), what
    assert what.lower() != p.name and len(what.split()) >= 4, what
    if not p.team:  # where it reads: a URL, repository, project, tag or query of the source
        assert any(v in what for v in values), (what, values)


# -- privacy ------------------------------------------------------------------------------------

#: A dict holding any of these describes a person (a user, owner, account, author object) ...
PERSON_MARKERS = {
    "login",
    "username",
    "acct",
    "screen_name",
    "display_name",
    "avatar_template",
    "avatar_url",
    "profile_image",
    "userid",
    "user_id",
}
#: ... and these of its values are handles, names, profile links or addresses.
PERSON_KEYS = {
    "login",
    "username",
    "name",
    "display_name",
    "screen_name",
    "acct",
    "email",
    "avatar",
    "avatar_url",
    "avatar_template",
    "profile_image",
    "link",
    "html_url",
    "note",
    "bio",
    "location",
    "user",
}


def _person_values(obj: Any, out: set[str]) -> None:
    if isinstance(obj, dict):
        if PERSON_MARKERS & obj.keys():
            out.update(v for k, v in obj.items() if k in PERSON_KEYS and isinstance(v, str))
        for v in obj.values():
            _person_values(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _person_values(v, out)


def _needles(t: Target, cfg, since, until) -> set[str]:
    """What must never be written: every raw account id and text the connector holds in
    memory (read here by running it directly), and every handle-like value served."""
    needles: set[str] = set()
    src = cfg.source(t.name)
    for item in connector_class(src.type)(src, root=cfg.root).extract(since, until):
        for value in (getattr(item, "account_id", None), getattr(item, "parent_account_id", None)):
            if value:
                needles.add(str(value))
        text = getattr(item, "text", None)
        if isinstance(text, str) and len(text.strip()) >= 12:
            needles.add(text.strip()[:40])
    for replies in t.routes().values():
        for reply in replies:
            try:
                _person_values(body_of(reply), needles)
            except ValueError:
                continue
    return {n for n in needles if len(n) >= 6}


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: t.name)
def test_privacy_no_raw_id_handle_or_text_is_written(t: Target, workdir, monkeypatch):
    _env(t, monkeypatch)
    since, until = window_of(t)
    with FaultServer() as server:
        serve(server, t.routes())
        cfg = configure(t, workdir, server.url, {})
        needles = _needles(t, cfg, since, until)
        summary = run_extract(cfg, t.name, since, until)
    assert summary.landed > 0 and needles
    assert leaks(workdir / "data", needles) == []


# -- rerun --------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: t.name)
def test_rerun_of_a_window_lands_each_record_once(t: Target, workdir, monkeypatch):
    _env(t, monkeypatch)
    since, until = window_of(t)
    with FaultServer() as server:
        serve(server, t.routes())
        cfg = configure(t, workdir, server.url, {})
        first = run_extract(cfg, t.name, since, until)
        once = sorted((r["record_type"], r["record_id"]) for r in landed_rows(cfg, t.name))
        serve(server, t.routes())
        second = run_extract(cfg, t.name, since, until)
        twice = sorted((r["record_type"], r["record_id"]) for r in landed_rows(cfg, t.name))
    assert first.landed == second.landed == len(once) > 0
    assert twice == once and len(set(twice)) == len(twice)


# -- window -------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: t.name)
def test_window_is_half_open(t: Target, workdir, monkeypatch, tmp_path_factory):
    _env(t, monkeypatch)
    base = baseline(t, tmp_path_factory)
    since, until = window_of(t)
    routes = t.routes()
    # Two landed records, from the leaf page and the two listing pages (one may hold a single one).
    pages = {t.leaf_page()[0]: t.leaf_page()[1:]} | {k: (t.items, t.record_id) for k in t.pages}
    bodies = {key: body_of(routes[key][0]) for key in pages}
    found = [(i, pages[k][1]) for k in pages for i in pages[k][0](bodies[k]) if pages[k][1](i) in base.ids]
    (at_until, until_id), (at_since, since_id) = found[0], found[-1]
    assert until_id(at_until) != since_id(at_since), "needs two landed records"
    t.set_time(at_until, until)
    t.set_time(at_since, since)
    for key, body in bodies.items():
        routes[key] = [with_body(routes[key][0], body)]
    with FaultServer() as server:
        serve(server, routes)
        cfg = configure(t, workdir, server.url, {})
        run_extract(cfg, t.name, since, until)
    rows = landed_rows(cfg, t.name)
    landed = {r["record_id"]: r for r in rows}
    assert set(landed) == base.ids - {until_id(at_until)}
    assert landed[since_id(at_since)]["occurred_at"] == since
    assert all(since <= r["occurred_at"] < until for r in rows if r["record_type"] != "pageviews")


# -- bounded work -------------------------------------------------------------------------------


def _fails_cleanly(t: Target, workdir, routes, settings, server: FaultServer) -> tuple[HttpError, float]:
    since, until = window_of(t)
    serve(server, routes)
    cfg = configure(t, workdir, server.url, settings)
    write_state(cfg.path("state"), t.name, {"cursor": since.isoformat()})
    started = time.monotonic()
    with pytest.raises(HttpError) as failed:
        run_extract(cfg, t.name, None, until)
    assert landing_files(cfg.path("landing"), t.name) == []  # nothing landed half-way
    assert read_state(cfg.path("state"), t.name) == {"cursor": since.isoformat()}  # cursor unchanged
    assert "\n" not in str(failed.value)
    return failed.value, time.monotonic() - started


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: t.name)
def test_an_oversized_body_fails_the_run_naming_the_source(t: Target, workdir, monkeypatch):
    _env(t, monkeypatch)
    routes = t.routes()
    ok = routes[t.pages[1]][0]
    body = body_of(ok)
    (body if isinstance(body, dict) else body[0])["padding"] = "x" * 300_000  # nobody reads it
    routes[t.pages[1]] = [with_body(ok, body)]
    with FaultServer() as server:
        error, _ = _fails_cleanly(t, workdir, routes, {"max_response_bytes": 100_000}, server)
    assert str(error).startswith(f"{t.name}: ") and "100000-byte cap" in str(error), error


@pytest.mark.parametrize("t", TARGETS, ids=lambda t: t.name)
def test_a_dripping_body_ends_at_the_request_deadline(t: Target, workdir, monkeypatch):
    """1 byte a second: each read returns within timeout_seconds, only the total deadline stops it."""
    _env(t, monkeypatch)
    settings = {"deadline_seconds": 2, "timeout_seconds": 5, "max_retries": 1}
    with FaultServer() as server:
        server.drip_body(*t.pages[1])
        error, seconds = _fails_cleanly(t, workdir, t.routes(), settings, server)
    assert "Deadline" in str(error) and t.pages[1][0] in str(error), error
    assert seconds < 60, seconds  # 2 attempts x 2 s + backoff; the page alone would drip for hours


# -- fault injection ----------------------------------------------------------------------------

CASES = [pytest.param(t, f, id=f"{t.name}-{f.name}") for t in TARGETS for f in FAULTS]


@pytest.mark.parametrize(("t", "fault"), CASES)
def test_fault(t: Target, fault: Fault, workdir, monkeypatch, tmp_path_factory):
    """Whatever the network or the input does, every good record lands exactly once, every
    bad one is quarantined with its reason, and a run that cannot finish fails clearly,
    lands nothing and leaves the cursor where it was."""
    _env(t, monkeypatch)
    base = baseline(t, tmp_path_factory)
    since, until = window_of(t)
    routes = t.routes()
    with FaultServer() as server:
        plan = fault.inject(t, routes, server, set(base.ids))
        serve(server, routes)
        cfg = configure(t, workdir, server.url, fault.settings)

        if fault.outcome == "fails":
            # A previous run left the cursor at `since`; this run starts from it and breaks.
            write_state(cfg.path("state"), t.name, {"cursor": since.isoformat()})
            with pytest.raises(HttpError) as failed:
                run_extract(cfg, t.name, None, until)
            message = str(failed.value)
            assert fault.message in message and t.pages[1][0] in message, message
            assert "\n" not in message
            assert landing_files(cfg.path("landing"), t.name) == []  # nothing half-landed
            assert not Path(cfg.path("quarantine")).exists()
            assert read_state(cfg.path("state"), t.name) == {"cursor": since.isoformat()}  # cursor kept
            # The network recovers: the next scheduled run picks up the same window, whole.
            serve(server, t.routes())
            summary = run_extract(cfg, t.name, None, until)
            assert summary.since == since
            assert {r["record_id"] for r in landed_rows(cfg, t.name)} == base.ids
            assert read_state(cfg.path("state"), t.name)["cursor"] == until.isoformat()
            return

        started = time.monotonic()
        summary = run_extract(cfg, t.name, since, until)
        seconds = time.monotonic() - started
        requests = len(server.requests)

    rows = landed_rows(cfg, t.name)
    keys = [(r["record_type"], r["record_id"]) for r in rows]
    assert len(keys) == len(set(keys)), "a record landed twice"
    assert {r["record_id"] for r in rows} == base.ids - plan.lost
    assert summary.landed == len(rows)
    assert all(since <= r["occurred_at"] < until for r in rows)
    assert summary.quarantined == base.quarantined + plan.quarantined
    if plan.reason:
        reasons = [q["reason"] for q in quarantine_rows(cfg, t.name)]
        assert any(plan.reason in r for r in reasons), reasons
    if plan.retried:
        assert requests > base.requests
    assert seconds >= plan.waited
    assert read_state(cfg.path("state"), t.name)["cursor"] == until.isoformat()
    # An unexpected field is never read: not its value anywhere, not its name in landing
    # (quarantine keeps the key names of a rejected payload, by design).
    assert NEW_FIELD_VALUE.encode() not in stored_bytes(workdir / "data")
    assert NEW_FIELD.encode() not in stored_bytes(Path(cfg.path("landing")))


# -- bad payloads: the same hostile items for every connector ------------------------------------

#: Where each platform keeps an item's author: (container key or None when flat, id key).
ACCOUNT = {
    "github": ("user", "id"),
    "mastodon": ("account", "id"),
    "discourse": (None, "user_id"),
    "stackexchange": ("owner", "user_id"),
    "mediawiki": (None, "userid"),
    "x": (None, "author_id"),
}


def _author(t: Target) -> tuple[str | None, str]:
    return t.account or ACCOUNT[t.name]


def _set_account(t: Target, item: dict, value: Any) -> None:
    container, key = _author(t)
    (item[container] if container else item)[key] = value
    item.pop("anon", None)  # MediaWiki: a registered editor's id, not an anonymous one's address


def _set_container(t: Target, item: dict, value: Any) -> None:
    container, key = _author(t)
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
HOSTILE_CASES = [pytest.param(t, h, id=f"{t.name}-{h}") for t in TARGETS for h in HOSTILE]


@pytest.mark.parametrize(("t", "hostile"), HOSTILE_CASES)
def test_a_hostile_item_is_quarantined_and_the_run_goes_on(
    t: Target, hostile: str, workdir, monkeypatch, tmp_path_factory
):
    _env(t, monkeypatch)
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
