"""Opt-out, erasure, retention and the audit log (agora/privacy/), through real parts.

Handles are resolved over real HTTP against `ReplayServer`; landing files are written by
the real extract; the end-to-end erasure runs dbt, the contracts and publish for real and
then searches every layer — and every log line — for what must be gone.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agora import privacy
from agora.config import load_config
from agora.envelope import ENVELOPE_SCHEMA
from agora.extract import run_extract
from agora.landing import landing_files, write_landing
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from agora.tombstones import load_tombstones
from tests.cassettes import leaks
from tests.conftest import ROOT, TEST_KEY, write_config
from tests.test_connector_discourse import fixture_routes

SINCE, UNTIL = "2024-01-01T00:00:00Z", "2025-07-01T00:00:00Z"  # explicit since: reruns replace files
ID_OFFSET = 9_000_000  # fixture ids are small; long ones can be searched for in logs


def _p(platform: str, account: str) -> str:
    return pseudonym(TEST_KEY, platform, account)


def _requests(path: Path, rows: list[tuple[str, str, str, str]], header: str = "platform,account,kind,requested_at"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def _cfg(workdir: Path, sources: list[dict] | None = None, **privacy_opts):
    sources = sources or [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9", "max_retries": 0}]
    return load_config(write_config(workdir, sources, privacy={"requests": "inputs/requests.csv", **privacy_opts}))


# -- the requests file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, message",
    [
        ("myspace,1234,erasure,2025-01-01", "unknown platform 'myspace'"),
        ("survey,1234,erasure,2025-01-01", "a team-written source holds no accounts"),
        ("github,1234,forget_me,2025-01-01", "kind must be opt_out or erasure"),
        ("github,1234,erasure,01/02/2025", "requested_at is not an ISO date"),
        ("github,1234,erasure,2999-01-01", "requested_at is in the future"),
        ("github,,erasure,2025-01-01", "account is empty"),
        ("github,1234,erasure", "expected 4 cells"),
        ("stackexchange,jon.skeet,erasure,2025-01-01", "stackexchange accounts must be numeric user ids"),
    ],
)
def test_a_bad_request_is_rejected_naming_file_and_line(workdir, row, message):
    cfg = _cfg(workdir)
    path = _requests(
        workdir / "inputs" / "requests.csv", [("github", "5001", "opt_out", "2025-01-01"), tuple(row.split(","))]
    )
    with pytest.raises(privacy.PrivacyInputError) as e:
        privacy.apply_requests(cfg, rebuild=False)
    text = str(e.value)
    assert text.startswith(f"{path}:3: ") and message in text and "\n" not in text
    assert "jon.skeet" not in text
    # Nothing was done: not even the good first row.
    assert not load_tombstones(cfg.path("state")) and not privacy.read_audit(cfg)


def test_header_and_mastodon_ids_are_checked(workdir):
    cfg = _cfg(workdir)
    path = _requests(
        workdir / "inputs" / "requests.csv", [("github", "1", "erasure", "2025-01-01")], header="platform,user"
    )
    with pytest.raises(privacy.PrivacyInputError, match=r"requests.csv:1: header must be .*missing: account"):
        privacy.read_requests(cfg, path)
    _requests(path, [("mastodon", "109", "erasure", "2025-01-01")])
    with pytest.raises(privacy.PrivacyInputError, match=r"requests.csv:2: a mastodon id is local to an instance"):
        privacy.read_requests(cfg, path)
    assert privacy.read_requests(cfg, _requests(path, [("mastodon", "fosstodon.org:109", "erasure", "2025-01-01")]))
    with pytest.raises(privacy.PrivacyInputError, match="requests file not found"):
        privacy.read_requests(cfg, workdir / "nope.csv")


# -- from handles to accounts, over HTTP ------------------------------------------------------


def _lookup_cfg(workdir: Path, url: str):
    sources = [
        {"name": "gh", "type": "github", "base_url": url, "repos": ["acme/widgets"], "max_retries": 0},
        {"name": "forum", "type": "discourse", "base_url": url, "max_retries": 0},
        {
            "name": "toots",
            "type": "mastodon",
            "base_url": url,
            "hashtag": "x",
            "instance": "fosstodon.org",
            "max_retries": 0,
        },
        {"name": "wiki", "type": "mediawiki", "api_url": f"{url}/w/api.php", "max_retries": 0},
        {
            "name": "tweets",
            "type": "x",
            "query": "q",
            "base_url": url,
            "bearer_token_env": "X_PRIV_TOKEN",
            "max_retries": 0,
        },
    ]
    return load_config(write_config(workdir, sources))


def _req(platform: str, account: str) -> privacy.Request:
    return privacy.Request("requests.csv:2", platform, account, "erasure", datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("text", ["１２３", "٣", "²", "123\u200b", " 123", "+123", ""])
def test_only_ascii_digits_are_an_id(text):
    from connectors.registry import is_ascii_id

    assert is_ascii_id("0123456789") and not is_ascii_id(text)


def test_a_request_in_non_ascii_digits_is_no_id(workdir):
    """ "１２３".isdigit() is True, but it is not the account 123: it must not be tombstoned as
    a key no connector writes (the request would complete having erased nothing)."""
    at = datetime(2025, 1, 1, tzinfo=UTC)
    cfg = _cfg(workdir)  # one Discourse source (unreachable), no GitHub source
    keys, why = privacy.account_keys(cfg, privacy.Request("r.csv:2", "github", "１２３", "erasure", at))
    assert keys == set() and "no configured github source" in why
    assert privacy.account_keys(cfg, privacy.Request("r.csv:2", "github", "123", "erasure", at)) == ({"123"}, None)
    path = _requests(workdir / "inputs" / "requests.csv", [("stackexchange", "１２３", "erasure", "2025-01-01")])
    with pytest.raises(privacy.PrivacyInputError, match="stackexchange accounts must be numeric user ids"):
        privacy.read_requests(cfg, path)


def test_handles_resolve_to_the_ids_connectors_pseudonymise(workdir, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # the CLI quiets it, and an in-process CLI test may have run
    monkeypatch.setenv("X_PRIV_TOKEN", "test-token")
    with ReplayServer() as server:
        server.add("/users/octo-cat", {"login": "octo-cat", "id": 5830001, "name": "Octo Cat", "email": "o@c.at"})
        server.add("/u/priya_sharma_dev.json", {"user": {"id": 91, "username": "priya_sharma_dev", "name": "Priya"}})
        server.add("/api/v1/accounts/lookup", {"id": "109777", "acct": "gargron"}, query="acct=gargron@mastodon.social")
        server.add(
            "/w/api.php",
            {"query": {"users": [{"userid": 4242, "name": "Wiki Editor"}]}},
            query={
                "action": "query",
                "format": "json",
                "formatversion": "2",
                "maxlag": "5",
                "list": "users",
                "ususers": "Wiki Editor",
            },
        )
        server.add(
            "/2/users/by/username/TwitterDev",
            {"data": {"id": "2244994945", "name": "Twitter Dev", "username": "TwitterDev"}},
        )
        cfg = _lookup_cfg(workdir, server.url)
        cases = {
            ("github", "octo-cat"): {"5830001"},
            ("github", "@12345"): set(),  # '@' forces a handle; this one is unknown -> pending
            ("github", "12345"): {"12345"},
            ("discourse", "priya_sharma_dev"): {"91"},
            ("mastodon", "@gargron@mastodon.social"): {"fosstodon.org:109777"},
            ("mastodon", "Mastodon.Social:77"): {"mastodon.social:77"},
            ("mastodon", "77"): {"fosstodon.org:77"},
            ("mediawiki", "Wiki Editor".replace(" ", "_")): set(),  # not how the wiki spells it -> 404 route
            ("mediawiki", "4242"): {"4242"},
            ("mediawiki", "192.0.2.7"): {"192.0.2.7"},
            ("x", "TwitterDev"): {"2244994945"},
            ("x", "2244994945"): {"2244994945"},
        }
        for (platform, account), expected in cases.items():
            keys, why = privacy.account_keys(cfg, _req(platform, account))
            assert keys == expected, (platform, account, why)
            assert (why is None) == bool(expected)
        keys, why = privacy.account_keys(cfg, _req("mediawiki", "Wiki Editor"))
        assert keys == {"4242"} and why is None
        keys, _ = privacy.account_keys(cfg, _req("mediawiki", "2001:db8::1"))
        assert "2001:DB8:0:0:0:0:0:1" in keys  # the wiki's spelling of an IPv6 editor
        assert "/users/octo-cat" in [p for p, _ in server.requests]
    # urllib3 logs every URL at DEBUG and a lookup URL holds the handle: it must be redacted.
    for handle in ("octo-cat", "priya_sharma_dev", "gargron", "TwitterDev", "Wiki Editor", "Wiki%20Editor"):
        assert handle not in caplog.text
    assert "<redacted>" in caplog.text


def test_unresolvable_handles_stay_pending_and_are_reported(workdir, caplog):
    caplog.set_level(logging.DEBUG)
    with ReplayServer() as server:
        server.add("/u/flaky.json", Reply(503, {"errors": ["down"]}, headers={"Retry-After": "0"}))
        cfg = load_config(
            write_config(
                workdir,
                [{"name": "forum", "type": "discourse", "base_url": server.url, "max_retries": 1}],
                privacy={"requests": "inputs/requests.csv"},
            )
        )
        path = _requests(
            workdir / "inputs" / "requests.csv",
            [
                ("discourse", "gone_user", "erasure", "2025-02-01"),
                ("discourse", "flaky", "opt_out", "2025-02-01"),
                ("github", "some-login", "erasure", "2025-02-01"),
                ("discourse", "777", "opt_out", "2025-02-02"),
            ],
        )
        res = privacy.apply_requests(cfg, rebuild=False)
        assert res.opt_outs == 1 and res.erasures == 0
        assert res.pending == [
            (f"{path}:2", "handle not found in forum (renamed or deleted? give the numeric id)"),
            (f"{path}:3", "forum: handle lookup failed (HTTP 503)"),
            (f"{path}:4", "no configured github source to look the handle up in; give the numeric id"),
        ]
        # Still pending next time; the done one is skipped.
        again = privacy.apply_requests(cfg, rebuild=False)
        assert len(again.pending) == 3 and again.already_done == 1 and again.opt_outs == 0
        # The retry warning names the URL, which holds the handle: redacted, not dropped.
        assert "retrying" in caplog.text and "flaky" not in caplog.text and "gone_user" not in caplog.text
        server.add("/u/gone_user.json", {"user": {"id": 555}})
        third = privacy.apply_requests(cfg, rebuild=False)
        assert len(third.pending) == 2 and third.erasures == 1
    assert _p("discourse", "555") in load_tombstones(cfg.path("state"))


# -- tombstones, audit log, idempotency -----------------------------------------------------------


def test_opt_out_and_erasure_tombstone_and_audit_without_identity(workdir):
    cfg = _cfg(workdir)
    _requests(
        workdir / "inputs" / "requests.csv",
        [
            ("discourse", "5001", "opt_out", "2025-03-01"),
            ("discourse", "5002", "erasure", "2025-03-02T10:00:00Z"),
            ("discourse", "5001", "opt_out", "2025-03-01"),  # a duplicate row is one request
            ("github", "5001", "opt_out", "2025-03-01"),  # another platform, another person
        ],
    )
    res = privacy.apply_requests(cfg, rebuild=False, now=datetime(2025, 3, 3, tzinfo=UTC))
    assert (res.requests, res.opt_outs, res.erasures, res.tombstones_added) == (4, 2, 1, 3)
    assert load_tombstones(cfg.path("state")) == {
        _p("discourse", "5001"),
        _p("discourse", "5002"),
        _p("github", "5001"),
    }
    audit = privacy.read_audit(cfg)
    assert [(e["kind"], e["platform"], e["status"]) for e in audit] == [
        ("opt_out", "discourse", "completed"),
        ("opt_out", "github", "completed"),
    ]
    assert audit[0]["requested_at"] == "2025-03-01T00:00:00+00:00"
    assert audit[0]["completed_at"] == "2025-03-03T00:00:00+00:00"
    assert audit[0]["rows_removed"] == {"landing": 0, "quarantine": 0, "warehouse": 0, "serving": 0}
    assert privacy.has_pending(cfg)  # the erasure waits for the rebuild
    state = Path(cfg.path("state"))
    audit_text = (state / privacy.AUDIT_FILE).read_text()
    assert "5001" not in audit_text and "5002" not in audit_text
    assert _p("discourse", "5001") not in audit_text  # not even the pseudonym
    # The request id is keyed: without the key it cannot be recomputed from a guessed account.
    unkeyed = privacy.Request("x", "discourse", "5001", "opt_out", datetime(2025, 3, 1, tzinfo=UTC))
    assert audit[0]["request_id"] == unkeyed.request_id(TEST_KEY) != unkeyed.request_id("another-key-0123456789")
    # Applying the same file again does nothing new.
    again = privacy.apply_requests(cfg, rebuild=False)
    assert (again.already_done, again.awaiting_rebuild, again.opt_outs, again.erasures) == (2, 1, 0, 0)
    assert len(privacy.read_audit(cfg)) == 2


def test_a_tombstoned_account_never_lands_again(workdir):
    with ReplayServer(fixture_routes()) as server:
        cfg = load_config(
            write_config(
                workdir,
                [{"name": "forum", "type": "discourse", "base_url": server.url, "max_retries": 0}],
                privacy={"requests": "inputs/requests.csv"},
            )
        )
        run_extract(cfg, "forum", SINCE, UNTIL)
        priya = _p("discourse", "91")
        assert priya in _column(cfg, "actor")
        _requests(workdir / "inputs" / "requests.csv", [("discourse", "91", "opt_out", "2025-07-02")])
        privacy.apply_requests(cfg, rebuild=False)
        run_extract(cfg, "forum", SINCE, UNTIL)  # the same window again replaces its files
    assert priya not in _column(cfg, "actor") and priya not in _column(cfg, "parent_actor")


def _column(cfg, name: str, root: str = "landing") -> list:
    import fsspec

    out = []
    fs, _ = fsspec.core.url_to_fs(cfg.path(root))
    for f in privacy.parquet_files(cfg.path(root)):
        with fs.open(f, "rb") as fh:
            t = pq.read_table(fh)
        if name in t.column_names:
            out += t.column(name).to_pylist()
    return out


# -- rewriting files --------------------------------------------------------------------------


def _row(record_id: str, day: str, actor: str | None, parent_actor: str | None = None) -> dict:
    return {
        "source": "forum",
        "platform": "discourse",
        "record_type": "reply" if parent_actor else "thread",
        "record_id": record_id,
        "thread_id": "t1",
        "parent_id": None,
        "actor": actor,
        "parent_actor": parent_actor,
        "occurred_at": datetime.fromisoformat(day).replace(tzinfo=UTC),
        "is_bot": False,
        "is_staff": False,
        "value": None,
        "tags": [],
        "extracted_at": datetime(2025, 7, 1, tzinfo=UTC),
        "run_id": "r1",
        "connector_version": "t",
    }


def test_scrub_drops_rows_unsets_links_and_rewrites_atomically(workdir):
    cfg = _cfg(workdir)
    gone, other = _p("discourse", "1"), _p("discourse", "2")
    landing = cfg.path("landing")
    write_landing(
        [
            _row("1", "2025-01-01T10:00:00", gone),
            _row("2", "2025-01-01T11:00:00", other, gone),
            _row("3", "2025-01-02T10:00:00", other),
            _row("4", "2025-01-03T10:00:00", gone),  # alone in its file: the file goes
        ],
        landing,
        "forum",
        "r1",
    )
    # A landing file the contract moved to quarantine holds envelope rows too.
    contract = Path(cfg.path("quarantine"), "forum", "dt=2025-01-05", "contract", "r0.parquet")
    contract.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([_row("9", "2025-01-05T10:00:00", gone)], schema=ENVELOPE_SCHEMA), contract)
    before = {f: os.stat(f).st_ino for f in landing_files(landing)}

    removed, unset, files = privacy.scrub_files(landing, {gone})
    assert (removed[gone], unset[gone], files) == (2, 1, 2)
    rows = {r["record_id"]: r for f in landing_files(landing) for r in pq.read_table(f).to_pylist()}
    assert set(rows) == {"2", "3"}
    assert rows["2"]["actor"] == other and rows["2"]["parent_actor"] is None
    assert rows["3"] == _row("3", "2025-01-02T10:00:00", other)  # untouched
    after = {f: os.stat(f).st_ino for f in landing_files(landing)}
    day2 = next(f for f in after if "2025-01-02" in f)
    day1 = next(f for f in after if "2025-01-01" in f)
    assert after[day2] == before[day2] and after[day1] != before[day1]  # replaced, not edited in place
    assert not [p for p in Path(landing).rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert pq.read_schema(day1) == ENVELOPE_SCHEMA

    removed, _, _ = privacy.scrub_files(cfg.path("quarantine"), {gone})
    assert removed[gone] == 1 and not contract.exists()
    assert privacy.scrub_files(landing, {gone}, dry_run=True)[2] == 0


def test_erasing_the_only_account_left_removes_the_warehouse_without_a_rebuild(workdir):
    cfg = _cfg(workdir)
    write_landing([_row("1", "2025-01-01T10:00:00", _p("discourse", "5003"))], cfg.path("landing"), "forum", "r1")
    wh = Path(cfg.path("warehouse"), "agora.duckdb")
    wh.parent.mkdir(parents=True)
    con = duckdb.connect(str(wh))  # a warehouse as dbt left it, holding the pseudonym
    con.execute("create schema staging; create table staging.stg_landing__events (record_id varchar, actor varchar)")
    con.execute("insert into staging.stg_landing__events values ('1', ?)", [_p("discourse", "5003")])
    con.close()
    _requests(workdir / "inputs" / "requests.csv", [("discourse", "5003", "erasure", "2025-02-01")])
    res = privacy.apply_requests(cfg)
    assert res.completion.requests_completed == 1 and not res.completion.rebuilt
    assert res.completion.rows_removed == {"landing": 1, "quarantine": 0, "warehouse": 1, "serving": 0}
    assert not landing_files(cfg.path("landing")) and not wh.exists()
    (entry,) = privacy.read_audit(cfg)
    assert entry["status"] == "completed" and entry["warehouse_rebuilt"] is False
    assert not privacy.has_pending(cfg)


# -- retention --------------------------------------------------------------------------------


def test_purge_removes_partitions_older_than_retention_as_of_the_logical_date(workdir):
    cfg = _cfg(workdir, retention_days=30)
    someone = _p("discourse", "1")
    write_landing(
        [_row(str(i), f"2025-01-{d:02d}T12:00:00", someone) for i, d in enumerate([1, 1, 15, 16, 31])],
        cfg.path("landing"),
        "forum",
        "r1",
    )
    q = Path(cfg.path("quarantine"), "forum", "dt=2025-01-10")
    q.mkdir(parents=True)
    (q / "r1.parquet.reason.json").write_text("{}")
    res = privacy.purge_retention(cfg, "2025-02-15", rebuild=False, now=datetime(2025, 2, 16, tzinfo=UTC))
    # cutoff = 2025-01-16: the 1st and 15th go, the 16th stays (exactly 30 days old).
    assert res.cutoff == "2025-01-16"
    assert res.partitions_removed == {"landing": 2, "quarantine": 1}
    assert res.rows_removed == {"landing": 3, "quarantine": 0}
    days = sorted(p.name for p in Path(cfg.path("landing"), "forum").iterdir())
    assert days == ["dt=2025-01-16", "dt=2025-01-31"]
    assert not q.exists()
    assert privacy.has_pending(cfg)  # the warehouse still holds them until the rebuild
    assert privacy.read_audit(cfg) == []
    # Same logical date again: nothing more to remove; the run is still audited.
    again = privacy.purge_retention(cfg, datetime(2025, 2, 15, 23, tzinfo=UTC), rebuild=False)
    assert again.partitions_removed == {"landing": 0, "quarantine": 0}
    audit = privacy.read_audit(cfg)
    assert audit[-1]["event"] == "retention" and audit[-1]["as_of"] == "2025-02-15"
    with pytest.raises(privacy.PrivacyInputError):
        privacy.purge_retention(cfg, "last tuesday", rebuild=False)


# -- end to end: extract -> build -> publish -> erase, and every layer searched ----------------------


def _long_ids(routes: dict) -> dict:
    """The Discourse fixture with account ids long enough to search for in logs."""
    routes = copy.deepcopy(routes)

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "user_id" and isinstance(v, int) and v > 0:
                    o[k] = v + ID_OFFSET
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(routes)
    return routes


def _people(routes: dict) -> dict[str, tuple[str, str]]:
    """id -> (username, name) of every person (not the platform's bots) in the routes."""
    found = {}

    def walk(o):
        if isinstance(o, dict):
            if isinstance(o.get("user_id"), int) and o["user_id"] > 0 and o.get("username"):
                found[str(o["user_id"])] = (o["username"], o.get("name") or o["username"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(routes)
    return found


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


def _agora(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", **(env or {})}
    exe = Path(sys.executable).with_name("agora")
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


ERASED, OPTED_OUT = str(91 + ID_OFFSET), str(57 + ID_OFFSET)


@pytest.fixture(scope="module")
def erased_run(tmp_path_factory):
    """One community taken through the whole pipeline, then an erasure by handle, an opt-out
    by id and a retention purge applied in one privacy run; every log record captured."""
    workdir = tmp_path_factory.mktemp("privacy_e2e")
    routes = _long_ids(fixture_routes())
    people = _people(routes)
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    out: dict = {"workdir": workdir, "people": people, "logs": capture.lines}
    with pytest.MonkeyPatch.context() as mp, ReplayServer(routes) as server:
        mp.setenv("AGORA_PSEUDONYM_KEY", TEST_KEY)
        server.add("/u/priya_sharma_dev.json", {"user": {"id": int(ERASED), "username": "priya_sharma_dev"}})
        cfg_path = write_config(
            workdir,
            [{"name": "forum", "type": "discourse", "base_url": server.url, "max_retries": 0}],
            privacy={
                "k_min": 2,
                "retention_days": 395,
                "requests": "inputs/requests.csv",
                "staff": [{"platform": "discourse", "account": str(41 + ID_OFFSET)}],
            },
        )
        cfg = load_config(cfg_path)
        out["cfg"] = cfg
        from agora import pipeline
        from agora.publish import serving_path
        from agora.warehouse import warehouse_path

        pipeline.extract(cfg, "forum", SINCE, UNTIL)
        pipeline.validate_landing(cfg)
        pipeline.build(cfg)
        pipeline.validate_marts(cfg)
        pipeline.publish(cfg)
        gone = _p("discourse", ERASED)
        out["landing_actor_rows"] = _column(cfg, "actor").count(gone)
        out["landing_parent_rows"] = _column(cfg, "parent_actor").count(gone)
        out["staging_rows"] = privacy.staging_counts(warehouse_path(cfg), {gone})[gone]
        out["warehouse_mentions_before"] = privacy.rows_mentioning(warehouse_path(cfg), {gone})
        out["serving_mentions_before"] = privacy.rows_mentioning(str(serving_path(cfg)), {gone})
        out["serving_before"] = os.stat(serving_path(cfg)).st_ino
        out["other_rows_before"] = sorted(
            r for r in zip(_column(cfg, "record_id"), _column(cfg, "actor"), strict=True) if r[1] != gone
        )
        _requests(
            workdir / "inputs" / "requests.csv",
            [
                ("discourse", "priya_sharma_dev", "erasure", "2025-07-02T09:30:00Z"),
                ("discourse", OPTED_OUT, "opt_out", "2025-07-02"),
            ],
        )
        out["purge"] = privacy.purge_retention(cfg, "2025-12-31", rebuild=False)
        out["apply"] = privacy.apply_requests(cfg)
        out["serving_after"] = os.stat(serving_path(cfg)).st_ino
        out["serving_path"] = serving_path(cfg)
        out["warehouse_path"] = warehouse_path(cfg)
        # The CLI on the same files (a second run: nothing left to do), logging at DEBUG.
        out["cli_apply"] = _agora(["-v", "privacy", "apply", "--config", str(cfg_path)], workdir)
        out["cli_purge"] = _agora(
            ["-v", "privacy", "purge", "--as-of", "2025-12-31", "--config", str(cfg_path)], workdir
        )
        # And the connector again over the same window: the erased person must not come back.
        out["reextract"] = pipeline.extract(cfg, "forum", SINCE, UNTIL)
    root.removeHandler(capture)
    root.setLevel(old_level)
    return out


def test_erasure_removes_the_person_from_every_layer_in_one_run(erased_run):
    cfg, res = erased_run["cfg"], erased_run["apply"]
    gone = _p("discourse", ERASED)
    assert res.erasures == 1 and res.opt_outs == 1 and not res.pending
    assert res.completion.rebuilt and res.completion.requests_completed == 1
    assert res.completion.retention_completed == 1
    assert erased_run["landing_actor_rows"] > 0 and erased_run["landing_parent_rows"] > 0
    # Landing and quarantine, after the re-extract too.
    for root in ("landing", "quarantine"):
        assert gone not in _column(cfg, "actor", root) and gone not in _column(cfg, "parent_actor", root)
    # Warehouse (a fresh file) and serving: not in any text column of any table.
    assert erased_run["warehouse_mentions_before"] > 0  # the search does find them when they are there
    assert erased_run["serving_mentions_before"] == 0  # serving never held a pseudonym
    assert privacy.rows_mentioning(erased_run["warehouse_path"], {gone}) == 0
    assert privacy.rows_mentioning(str(erased_run["serving_path"]), {gone}) == 0
    assert erased_run["serving_after"] != erased_run["serving_before"]  # republished
    # Everyone else's records are still there (bar the purged partition).
    purged_day = {r for r in erased_run["other_rows_before"] if r[0] == "900"}  # topic 101, 2024-11-20
    now = sorted(r for r in zip(_column(cfg, "record_id"), _column(cfg, "actor"), strict=True))
    opted = _p("discourse", OPTED_OUT)
    expected = [r for r in erased_run["other_rows_before"] if r not in purged_day and r[1] != opted]
    assert [r for r in now if r[1] != opted and r[0] != "900"] == expected
    # The opted-out person's past rows stay until re-extracted; the re-extract dropped them.
    assert opted not in _column(cfg, "actor")
    assert erased_run["reextract"]["dropped"].get("opt_out", 0) > 0


def test_the_audit_log_records_counts_per_layer_and_no_identity(erased_run):
    cfg = erased_run["cfg"]
    audit = privacy.read_audit(cfg)
    erasure = next(e for e in audit if e.get("kind") == "erasure")
    print(json.dumps(erasure, sort_keys=True), erased_run["apply"].completion.seconds, "s")
    assert erasure["status"] == "completed" and erasure["requested_at"] == "2025-07-02T09:30:00+00:00"
    assert erasure["rows_removed"] == {
        "landing": erased_run["landing_actor_rows"],
        "quarantine": 0,
        "warehouse": erased_run["staging_rows"],
        "serving": 0,
    }
    assert erasure["links_unset"]["landing"] == erased_run["landing_parent_rows"]
    assert erased_run["staging_rows"] == erased_run["landing_actor_rows"]
    retention = next(e for e in audit if e.get("event") == "retention" and e["partitions_removed"]["landing"])
    assert retention["status"] == "completed" and retention["cutoff"] == "2024-12-01"
    assert retention["partitions_removed"] == {"landing": 1, "quarantine": 0}
    assert not privacy.has_pending(cfg)
    # Idempotent: the CLI's second apply found both requests done and changed nothing.
    cli = erased_run["cli_apply"]
    assert cli.returncode == 0, cli.stderr
    assert re.search(r"already done\W+2\b", cli.stdout) and re.search(r"rebuild\W+not needed", cli.stdout)
    assert sum(1 for e in audit if e.get("event") == "request") == 2
    text = (Path(cfg.path("state")) / privacy.AUDIT_FILE).read_text()
    for account, (handle, name) in erased_run["people"].items():
        assert account not in text and handle not in text and name not in text
    assert _p("discourse", ERASED) not in text


def test_nothing_identifying_in_any_log_line_or_file_of_the_full_run(erased_run):
    people = erased_run["people"]
    needles = {s for account, names in people.items() for s in (account, *names)}
    assert len(people) >= 6 and ERASED in people
    logs = "\n".join(erased_run["logs"])
    assert "privacy: completed 1 erasures" in logs  # the capture did see the run
    for proc in (erased_run["cli_apply"], erased_run["cli_purge"]):
        assert proc.returncode == 0, proc.stderr
        logs += "\n" + proc.stdout + "\n" + proc.stderr
    dbt_log = ROOT / "dbt_project" / "target" / "logs" / "dbt.log"
    if dbt_log.exists():
        logs += "\n" + dbt_log.read_text(errors="replace")
    found = sorted(n for n in needles if n in logs)
    assert found == [], f"identifying strings in logs: {found}"
    assert leaks(erased_run["workdir"] / "data", needles) == []


# -- races: an erasure against a running extract, two privacy runs at once -----------------------


class GatedServer(ReplayServer):
    """A replay server whose `gate_path` stalls, once armed, until the test opens the gate."""

    def __init__(self, routes: dict, gate_path: str):
        super().__init__(routes)
        self.gate_path = gate_path
        self.armed = False
        self.reached = threading.Event()
        self.gate = threading.Event()

    def _next_reply(self, path: str, query: str):
        if self.armed and path == self.gate_path:
            self.reached.set()
            self.gate.wait(900)
        return super()._next_reply(path, query)


def erasure_race(cfg, server: GatedServer, workdir: Path) -> dict:
    """An extract stalls mid-fetch; an erasure is applied in full; the extract finishes.

    What the issue reproduced: the extract had read the tombstones when it started and
    landed the erased rows again after the audit said "completed".
    """
    from agora import pipeline

    run_extract(cfg, "forum", SINCE, UNTIL)
    gone = _p("discourse", "91")
    landed_before = _column(cfg, "actor").count(gone)
    server.armed = True
    out: dict = {}

    def slow_extract():
        try:
            out["extract"] = run_extract(cfg, "forum", SINCE, UNTIL)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            out["error"] = e

    thread = threading.Thread(target=slow_extract)
    thread.start()
    try:
        assert server.reached.wait(120), "the extract never reached the stalled page"
        _requests(workdir / "inputs" / "requests.csv", [("discourse", "91", "erasure", "2025-07-02")])
        out["apply"] = privacy.apply_requests(cfg)
    finally:
        server.gate.set()
        thread.join(300)
    assert "error" not in out, out.get("error")
    out["landed_before"] = landed_before
    out["landing_after"] = _column(cfg, "actor").count(gone) + _column(cfg, "parent_actor").count(gone)
    out["quarantine_after"] = _column(cfg, "actor", "quarantine").count(gone)
    # The next transform run builds from what the extract left.
    pipeline.validate_landing(cfg)
    pipeline.build(cfg)
    from agora.warehouse import warehouse_path

    out["staging_after"] = privacy.staging_counts(warehouse_path(cfg), {gone})[gone]
    out["warehouse_after"] = privacy.rows_mentioning(warehouse_path(cfg), {gone})
    out["audit"] = privacy.read_audit(cfg)
    return out


def race_config(workdir: Path, server_url: str, paths: dict | None = None):
    extra = {"paths": paths} if paths else {}
    return load_config(
        write_config(
            workdir,
            [{"name": "forum", "type": "discourse", "base_url": server_url, "max_retries": 0, "timeout_seconds": 900}],
            privacy={"requests": "inputs/requests.csv", "k_min": 2},
            **extra,
        )
    )


def check_erasure_won(out: dict) -> None:
    res = out["apply"]
    assert out["landed_before"] > 0
    assert res.erasures == 1 and res.completion.requests_completed == 1 and res.completion.rebuilt
    # The stalled extract finished after the erasure and dropped the account at write time.
    assert out["extract"].dropped.get("opt_out", 0) >= out["landed_before"]
    assert out["landing_after"] == 0 and out["quarantine_after"] == 0
    assert out["staging_after"] == 0 and out["warehouse_after"] == 0
    (entry,) = [e for e in out["audit"] if e.get("kind") == "erasure"]
    assert entry["status"] == "completed" and entry["rows_removed"]["landing"] == out["landed_before"]


def test_an_erasure_applied_while_an_extract_is_fetching_wins(workdir):
    with GatedServer(fixture_routes(), "/t/110.json") as server:
        cfg = race_config(workdir, server.url)
        out = erasure_race(cfg, server, workdir)
    check_erasure_won(out)


def test_the_landing_contract_rejects_a_tombstoned_actor_in_a_new_file(workdir):
    from agora import pipeline
    from expectations.result import ContractFailed

    cfg = _cfg(workdir)
    gone, other = _p("discourse", "1"), _p("discourse", "2")
    write_landing([_row("1", "2025-01-01T10:00:00", other)], cfg.path("landing"), "forum", "r1")
    pipeline.validate_landing(cfg)
    privacy.add_tombstones(cfg.path("state"), {gone})
    # An old file that passed before the opt-out is not judged again (its rows may stay) ...
    pipeline.validate_landing(cfg, full=True)
    # ... but a file written afterwards by anything that skipped the tombstones is stopped.
    write_landing([_row("2", "2025-01-02T10:00:00", gone)], cfg.path("landing"), "forum", "r2")
    write_landing([_row("3", "2025-01-03T10:00:00", other, gone)], cfg.path("landing"), "forum", "r3")
    with pytest.raises(ContractFailed) as e:
        pipeline.validate_landing(cfg)
    assert {f.expectation for f in e.value.result.failures} == {"actor_not_tombstoned"}
    assert len(e.value.result.quarantined) == 2
    assert gone not in _column(cfg, "actor") and gone not in _column(cfg, "parent_actor")
    reasons = sorted(Path(cfg.path("quarantine")).rglob("*.reason.json"))
    assert len(reasons) == 2 and '"2"' in "".join(r.read_text() for r in reasons)  # sample record ids
    # An erasure clears the samples: they may be the erased person's records.
    assert privacy.clear_reason_ids(cfg.path("quarantine")) == 2
    assert all(not f["sample_record_ids"] for r in reasons for f in json.loads(r.read_text())["failures"])
    assert privacy.clear_reason_ids(cfg.path("quarantine"), dry_run=True) == 0


REQUESTS_PER_RUN = 200


def test_two_concurrent_privacy_runs_lose_nothing(workdir):
    """Two processes apply 200 opt-outs each at the same time: 400 tombstones, 400 audit lines."""
    cfg_path = write_config(
        workdir,
        [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9", "max_retries": 0}],
        privacy={"requests": "inputs/requests.csv"},
    )
    files = []
    for run in range(2):
        rows = [("discourse", str(100_000 * (run + 1) + i), "opt_out", "2025-07-02") for i in range(REQUESTS_PER_RUN)]
        files.append(_requests(workdir / "inputs" / f"requests-{run}.csv", rows))
    exe = Path(sys.executable).with_name("agora")
    procs = [
        subprocess.Popen(
            [str(exe), "privacy", "apply", "--no-rebuild", "--requests", str(f), "--config", str(cfg_path)],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for f in files
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    cfg = load_config(cfg_path)
    tombstones = load_tombstones(cfg.path("state"))
    expected = {_p("discourse", str(100_000 * (run + 1) + i)) for run in range(2) for i in range(REQUESTS_PER_RUN)}
    assert tombstones == expected
    audit = privacy.read_audit(cfg)
    assert len(audit) == 2 * REQUESTS_PER_RUN and all(e["status"] == "completed" for e in audit)
    assert not list(Path(cfg.path("state")).rglob("*.tmp"))


def test_concurrent_tombstone_writers_keep_every_pseudonym(workdir):
    """The lower-level failure of the issue (297 of 400 kept): two writers, 200 adds each, one at a time."""
    import multiprocessing

    cfg = _cfg(workdir)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)  # both write at the same time, after their (slow) interpreter start
    procs = [ctx.Process(target=_add_many, args=(cfg.path("state"), run, start)) for run in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(load_tombstones(cfg.path("state"))) == 2 * REQUESTS_PER_RUN


def _add_many(state_root: str, run: int, start) -> None:
    start.wait(120)
    for i in range(REQUESTS_PER_RUN):
        privacy.add_tombstones(state_root, {pseudonym(TEST_KEY, "discourse", f"{run}-{i}")})


# -- partitions and quarantine --------------------------------------------------------------------


def test_partitions_are_zero_padded_and_retention_purges_every_partition(workdir):
    cfg = _cfg(workdir, retention_days=30)
    someone = _p("discourse", "1")
    write_landing([_row("1", "0001-01-01T00:00:00", someone)], cfg.path("landing"), "forum", "r1")
    assert [p.name for p in Path(cfg.path("landing"), "forum").iterdir()] == ["dt=0001-01-01"]
    # A partition written before names were padded, and one that is not a date at all.
    legacy = Path(cfg.path("landing"), "forum", "dt=1-01-02")
    legacy.mkdir()
    pq.write_table(
        pa.Table.from_pylist([_row("2", "0001-01-02T00:00:00", someone)], schema=ENVELOPE_SCHEMA), legacy / "r0.parquet"
    )
    odd = Path(cfg.path("landing"), "forum", "dt=unknown")
    odd.mkdir()
    res = privacy.purge_retention(cfg, "2025-02-15", rebuild=False)
    assert res.partitions_removed["landing"] == 2 and res.rows_removed["landing"] == 2
    assert [p.name for p in Path(cfg.path("landing"), "forum").iterdir()] == ["dt=unknown"]


def test_an_erasure_reaches_quarantined_rejects(workdir):
    from agora.landing import write_quarantine

    cfg = _cfg(workdir)
    gone, other = _p("discourse", "1"), _p("discourse", "2")
    write_landing(
        [_row("1", "2025-01-01T10:00:00", gone), _row("2", "2025-01-01T11:00:00", other)],
        cfg.path("landing"),
        "forum",
        "r1",
    )
    write_quarantine(
        [
            ("bad timestamp", "501", {"id": 501, "user_id": 1}, gone),
            ("bad timestamp", "502", {"id": 502, "user_id": 2}, other),
            ("no id", "503", {"id": 503}, None),  # the connector could not tell the author
        ],
        cfg.path("quarantine"),
        "forum",
        "r1",
        "2025-01-02",
    )
    _requests(workdir / "inputs" / "requests.csv", [("discourse", "1", "erasure", "2025-02-01")])
    privacy.apply_requests(cfg, rebuild=False)
    done = privacy.complete_pending(cfg)
    assert done.requests_completed == 1 and done.rows_removed["quarantine"] == 1
    rows = {r["reason"] + str(r["actor"]): r for r in _table_rows(cfg.path("quarantine"))}
    assert gone not in {r["actor"] for r in rows.values()}
    assert rows["bad timestamp" + other]["record_id"] == "502"  # attributed to someone else: kept
    anon = rows["no idNone"]
    assert anon["record_id"] is None and anon["payload_sha256"] is None and anon["reason"] == "no id"


def _table_rows(root: str) -> list[dict]:
    return [r for f in privacy.parquet_files(root) for r in pq.read_table(f).to_pylist()]
