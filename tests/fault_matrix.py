"""The connectors × faults matrix behind tests/test_faults.py.

Each `Target` is one HTTP connector with the recorded responses its own test replays
(loaded with that test's helpers), two consecutive pages of its main listing to break,
and how to find records in a page. Each `Fault` rewrites those routes the way a network
or an API misbehaves, and says what the run must do about it: complete with every good
record, quarantine the bad one, or fail clearly without landing anything.

Nothing of ours is patched: the connectors talk real HTTP to `FaultServer` (the replay
server plus a "connection dropped mid-body" fault) on 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agora.replay import ReplayServer, Reply, _query_key

Key = tuple[str, str | None]  # (path, exact query or None)
Routes = dict[Key, list[Reply]]

NEW_FIELD = "agora_fault_new_field"
NEW_FIELD_VALUE = "NEW-FIELD-VALUE-5e1d9c"  # must never reach disk


class FaultServer(ReplayServer):
    """ReplayServer plus `cut_body()`: send the headers and half the body, then drop the
    connection — a transfer cut off mid-body (the replay server's own "truncate" fault
    sends a complete HTTP message whose JSON ends early)."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._cuts: dict[tuple[str, tuple | None], int] = {}
        self._drips: set[tuple[str, tuple | None]] = set()
        super().__init__(*args, **kwargs)

    def cut_body(self, path: str, query: str | None, times: int = 1) -> None:
        self._cuts[(path, _query_key(query))] = times

    def drip_body(self, path: str, query: str | None) -> None:
        """Every answer on this route sends its body one byte per second (a slow-loris server)."""
        self._drips.add((path, _query_key(query)))

    def _take_cut(self, raw_path: str) -> bool:
        parts = urlsplit(raw_path)
        for key in ((parts.path, _query_key(parts.query)), (parts.path, None)):
            if self._cuts.get(key, 0) > 0:
                self._cuts[key] -= 1
                return True
        return False

    def _dripping(self, raw_path: str) -> bool:
        parts = urlsplit(raw_path)
        return bool({(parts.path, _query_key(parts.query)), (parts.path, None)} & self._drips)

    def _handler(self):
        base, server = super()._handler(), self

        class Handler(base):
            def do_GET(self):
                if server._dripping(self.path):
                    raw, self.wfile = self.wfile, _Drip(self.wfile)
                elif server._take_cut(self.path):
                    raw, self.wfile = self.wfile, _CutAfterHeaders(self.wfile, self.connection)
                else:
                    return super().do_GET()
                try:
                    super().do_GET()
                except OSError:
                    pass  # the client gave up on a dripping body
                finally:
                    self.wfile, self.close_connection = raw, True

        return Handler


class _Drip:
    """Passes the header block through, then the body one byte a second."""

    def __init__(self, raw: Any):
        self.raw, self.writes = raw, 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes == 1:
            return self.raw.write(data)
        for i in range(len(data)):
            self.raw.write(data[i : i + 1])
            self.raw.flush()
            time.sleep(1.0)
        return len(data)

    def flush(self) -> None:
        pass


class _CutAfterHeaders:
    """Passes the header block through, then half of the body, then shuts the socket."""

    def __init__(self, raw: Any, conn: socket.socket):
        self.raw, self.conn, self.writes = raw, conn, 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes == 1:
            return self.raw.write(data)
        if self.writes == 2:
            self.raw.write(data[: max(1, len(data) // 2)])
            self.conn.shutdown(socket.SHUT_RDWR)
        return len(data)

    def flush(self) -> None:
        pass


# --- targets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str  # connector type; also the configured source name
    source: Callable[[str], dict]  # server URL -> source config (without the fast settings)
    routes: Callable[[], Routes]  # the recorded happy path
    window: tuple[str, str]
    pages: tuple[Key, Key]  # two consecutive pages of the main listing
    items: Callable[[Any], list]  # a page's JSON body -> its (mutable) list of records
    record_id: Callable[[dict], str]  # a raw item -> the record_id it lands as
    required: str  # a field without which an item cannot be parsed
    time_field: str
    epoch_seconds: bool = False  # time_field holds Unix seconds, not ISO 8601
    env: dict[str, str] = field(default_factory=dict)
    share_context: Callable[[Any, Any], None] | None = None  # make page-bound context (X users) span both
    # Where to break a record for "missing required field" when the listing's records decide
    # later requests (a rejected question changes the answers URL, which has no recording):
    # (page, items, record_id); default the second listing page.
    leaf: tuple[Key, Callable[[Any], list], Callable[[dict], str]] | None = None
    # Where an item keeps its author's id: (container key, or None when flat; id key). The
    # contract's hostile items break it there.
    account: tuple[str | None, str] | None = None
    # The source settings naming its credential, when not one of the usual keys (token_env, ...);
    # {}: its credential is a login the replay server cannot answer (the connector's own test covers it).
    credential: dict | None = None

    def leaf_page(self) -> tuple[Key, Callable[[Any], list], Callable[[dict], str]]:
        return self.leaf or (self.pages[1], self.items, self.record_id)

    @property
    def since(self) -> datetime:
        return datetime.fromisoformat(self.window[0].replace("Z", "+00:00"))

    def set_time(self, item: dict, when: datetime) -> None:
        if self.epoch_seconds:
            item[self.time_field] = int(when.timestamp())
        else:
            item[self.time_field] = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def specs_routes(specs: list[dict]) -> Routes:
    return {(s["path"], s["query"]): [Reply(**r) for r in s["replies"]] for s in specs}


def cassette_routes(path: Path) -> Routes:
    from cassettes import load_cassette

    routes: Routes = {}
    for it in load_cassette(path):
        if it.method == "GET":
            routes.setdefault((it.path, it.query), []).append(it.reply)
    return routes


def key_of(routes: Routes, path: str, query_has: str = "", index: int = 0) -> Key:
    keys = [k for k in routes if k[0] == path and query_has in (k[1] or "")]
    return keys[index]


def x_users_on_both(a: Any, b: Any) -> None:
    users = {u["id"]: u for body in (a, b) for u in body.get("includes", {}).get("users", [])}
    for body in (a, b):
        body.setdefault("includes", {})["users"] = list(users.values())


def targets() -> list[Target]:
    """One Target per HTTP platform, from the ``fault_target`` each connector declares
    (``module:function``, by convention in its tests/test_connector_<name>.py)."""
    import importlib

    from connectors.registry import platforms

    out = []
    for p in platforms():
        if p.fault_target:
            module, function = p.fault_target.split(":")
            out.append(getattr(importlib.import_module(module), function)())
    return out


# --- faults --------------------------------------------------------------------------


def body_of(reply: Reply) -> Any:
    return copy.deepcopy(json.loads(reply.body) if isinstance(reply.body, str | bytes) else reply.body)


def with_body(reply: Reply, body: Any) -> Reply:
    return Reply(status=reply.status, body=body, headers=dict(reply.headers))


@dataclass(frozen=True)
class Plan:
    """What a fault did to the routes, for the test to check against."""

    lost: set[str] = field(default_factory=set)  # record ids that must no longer land
    quarantined: int = 0  # extra quarantined items
    reason: str | None = None  # ... whose reason must contain this
    retried: bool = False  # the run must have sent more requests than the happy path
    waited: float = 0.0  # ... and taken at least this long (a server-requested wait)


@dataclass(frozen=True)
class Fault:
    name: str
    outcome: str  # "completes" | "quarantines" | "fails"
    inject: Callable[[Target, Routes, FaultServer, set[str]], Plan]  # (target, routes, server, landed ids)
    settings: dict[str, Any] = field(default_factory=dict)  # source settings for this fault
    message: str = ""  # for "fails": the error must contain this (plus the failing path)


def _then_ok(routes: Routes, key: Key, *first: Reply) -> None:
    """Serve `first` for this page, then the recorded answer (the last reply repeats)."""
    routes[key] = [*first, routes[key][0]]


def _forever(routes: Routes, key: Key, reply: Reply) -> None:
    routes[key] = [reply]


def _retry_after_429(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    _then_ok(routes, t.pages[1], Reply(429, {"error": "Too Many Requests"}, {"Retry-After": "1"}))
    return Plan(retried=True, waited=1.0)


def _burst_5xx(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    # 500 without a hint (exponential backoff), then 502 and 503 saying Retry-After: 0 (retry now).
    _then_ok(
        routes,
        t.pages[1],
        Reply(500, {"error": "Internal Server Error"}),
        Reply(502, "<html>Bad Gateway</html>", {"Retry-After": "0"}),
        Reply(503, {"error": "Service Unavailable"}, {"Retry-After": "0"}),
    )
    return Plan(retried=True)


def _reset(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    _then_ok(routes, t.pages[1], Reply(fault="reset"))
    return Plan(retried=True)


def _timeout(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    ok = routes[t.pages[1]][0]
    _then_ok(routes, t.pages[1], Reply(ok.status, ok.body, dict(ok.headers), delay=3.0))
    return Plan(retried=True)


def _truncated(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    ok = routes[t.pages[1]][0]
    _then_ok(routes, t.pages[1], Reply(ok.status, ok.body, dict(ok.headers), fault="truncate"))
    return Plan(retried=True)


def _cut_mid_body(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    server.cut_body(*t.pages[1])
    return Plan(retried=True)


def _new_field(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    for key in t.pages:
        body = body_of(routes[key][0])
        for item in t.items(body):
            item[NEW_FIELD] = {"nested": NEW_FIELD_VALUE, "list": [NEW_FIELD_VALUE]}
        if isinstance(body, dict):
            body[NEW_FIELD] = NEW_FIELD_VALUE
        routes[key] = [with_body(routes[key][0], body)]
    return Plan()


def _first_landed(t: Target, items: list, landed: set[str]) -> dict:
    return next(i for i in items if t.record_id(i) in landed)


def _missing_field(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    key, items, record_id = t.leaf_page()
    body = body_of(routes[key][0])
    victim = next(i for i in items(body) if record_id(i) in landed)
    del victim[t.required]
    routes[key] = [with_body(routes[key][0], body)]
    return Plan(lost={record_id(victim)}, quarantined=1, reason=t.required)


def _repeated(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    first, second = (body_of(routes[k][0]) for k in t.pages)
    t.items(second).append(copy.deepcopy(_first_landed(t, t.items(first), landed)))
    if t.share_context:
        t.share_context(first, second)
    for key, body in zip(t.pages, (first, second), strict=True):
        routes[key] = [with_body(routes[key][0], body)]
    return Plan()


def _out_of_order(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    """Pages in reverse order inside, and a late arrival: a record on the first page whose
    timestamp lies before the window (it belongs to an earlier window; nothing else may be lost)."""
    first, second = (body_of(routes[k][0]) for k in t.pages)
    for body in (first, second):
        t.items(body).reverse()
    late = _first_landed(t, t.items(first), landed)
    t.set_time(late, t.since - timedelta(days=1, minutes=1))
    for key, body in zip(t.pages, (first, second), strict=True):
        routes[key] = [with_body(routes[key][0], body)]
    return Plan(lost={t.record_id(late)})


def _5xx_forever(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    _forever(routes, t.pages[1], Reply(503, {"error": "Service Unavailable"}, {"Retry-After": "0"}))
    return Plan()


def _truncated_forever(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    ok = routes[t.pages[1]][0]
    _forever(routes, t.pages[1], Reply(ok.status, ok.body, dict(ok.headers), fault="truncate"))
    return Plan()


def _reset_forever(t: Target, routes: Routes, server: FaultServer, landed: set[str]) -> Plan:
    _forever(routes, t.pages[1], Reply(fault="reset"))
    return Plan()


RETRYING = {"max_retries": 3}
FAILING = {"max_retries": 1}

FAULTS = [
    Fault("429 with Retry-After", "completes", _retry_after_429, RETRYING),
    Fault("burst of 500/502/503", "completes", _burst_5xx, RETRYING),
    Fault("connection reset", "completes", _reset, RETRYING),
    Fault("timeout", "completes", _timeout, {**RETRYING, "timeout_seconds": 1.0}),
    Fault("truncated JSON", "completes", _truncated, RETRYING),
    Fault("connection cut mid-body", "completes", _cut_mid_body, RETRYING),
    Fault("unexpected new field", "completes", _new_field, RETRYING),
    Fault("missing required field", "quarantines", _missing_field, RETRYING),
    Fault("record repeated across pages", "completes", _repeated, RETRYING),
    Fault("out-of-order timestamps", "completes", _out_of_order, RETRYING),
    Fault("503 on every retry", "fails", _5xx_forever, FAILING, "503"),
    Fault("truncated JSON on every retry", "fails", _truncated_forever, FAILING, "not valid JSON"),
    Fault("connection reset on every retry", "fails", _reset_forever, FAILING, "Connection"),
]


def source_config(t: Target, url: str, settings: dict[str, Any]) -> dict:
    return {"name": t.name, **t.source(url), **settings}


def window_of(t: Target) -> tuple[datetime, datetime]:
    since, until = (datetime.fromisoformat(w.replace("Z", "+00:00")).astimezone(UTC) for w in t.window)
    return since, until
