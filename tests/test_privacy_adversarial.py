"""Tests that try hard to break the privacy promises (issue 5), through real parts only.

- team-written text naming someone (e-mail, phone, @handle) is rejected with file:line;
- platform payloads stuffed with extra personal fields land none of them;
- protected / locked / hidden items of every platform are dropped;
- a mart with a pseudonym column, or a value describing 2 accounts, fails the mart
  contract and leaves serving as it was;
- a requests file naming an unknown platform is rejected clearly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from agora import privacy
from agora.config import load_config
from agora.envelope import ENVELOPE_COLUMNS
from agora.extract import run_extract
from agora.landing import landing_files
from agora.pseudonym import pseudonym
from agora.replay import ReplayServer, Reply
from connectors.registry import names
from tests.cassettes import leaks, load_cassette
from tests.conftest import TEST_KEY, error_lines, write_config
from tests.fault_matrix import source_config, targets

# -- team-written text -------------------------------------------------------------------------

LEARNINGS = """\
- date: 2025-03-01
  title: Newcomers need a map
  text: A pinned "start here" topic halved the repeated questions. Version 2.10.3 shipped 2025-03-01.
  tags: [docs]
  kpis: [returning_newcomer_rate]
- date: 2025-03-02
  title: Call after the meetup
  text: {pii}
  tags: [events]
"""
FEEDBACK = """\
feedback_id,received_at,channel,status,acted_at,responded_at,summary
f1,2025-03-01,forum,closed,2025-03-03,2025-03-04,Docs search is slow (ticket 2025-0042)
f2,2025-03-02,email,open,,,{pii}
"""
TEAM = """\
date,kind,title
2025-03-05,talk,{pii}
2025-03-06,event,Community call number 12 (room 101-B)
"""
TEAM_FILES = {
    # source type: (file name, template, line of the offending entry, good records)
    "learnings": ("learnings.yml", LEARNINGS, 6, 1),
    "feedback_log": ("feedback.csv", FEEDBACK, 3, 3),
    "team_activity": ("team.csv", TEAM, 2, 1),
}
PII = {
    "email": "Write to ana.lopez@example.org for the slides",
    "phone": "She asked us to call +33 6 12 34 56 78 tomorrow",
    "handle": "Great talk with @jdoe_dev at FOSDEM",
}
PII_NEEDLE = {"email": "ana.lopez@example.org", "phone": "12 34 56 78", "handle": "jdoe_dev"}
CASES = [(t, k) for t in TEAM_FILES for k in PII]


def _team_source(workdir: Path, source_type: str, kind: str):
    name, template, line, good = TEAM_FILES[source_type]
    (workdir / "inputs").mkdir(exist_ok=True)
    (workdir / "inputs" / name).write_text(template.format(pii=PII[kind]))
    src = {"name": "team", "type": source_type, "path": f"inputs/{name}"}
    return load_config(write_config(workdir, [src])), f"inputs/{name}:{line}", good


@pytest.mark.parametrize("text, kind", [(PII[k], k) for k in PII] + [(f"mail {PII_NEEDLE['email']}", "email")])
def test_find_personal_data_flags_emails_phones_and_handles(text, kind):
    label = privacy.find_personal_data("a clean title", text)
    assert label and {"email": "e-mail", "phone": "phone", "handle": "handle"}[kind] in label


@pytest.mark.parametrize(
    "text",
    [
        "Released 2.10.3 on 2025-03-01",
        "Room 101-B, ticket 2025-0042",
        "Meetup #12 in Berlin",
        "a@b",
        "50% more replies",
    ],
)
def test_find_personal_data_lets_ordinary_team_text_through(text):
    assert privacy.find_personal_data(text, None) is None


@pytest.mark.parametrize("source_type, kind", CASES)
def test_team_text_naming_someone_is_rejected_at_the_edge_with_file_and_line(workdir, source_type, kind):
    cfg, where, good = _team_source(workdir, source_type, kind)
    summary = run_extract(cfg, "team", None, "2025-12-31T00:00:00Z")
    reasons = [r for f in privacy.parquet_files(cfg.path("quarantine")) for r in pq.read_table(f)["reason"].to_pylist()]
    assert summary.quarantined == 1 and summary.landed == good
    assert len(reasons) == 1 and reasons[0].startswith(where)
    assert {"email": "e-mail", "phone": "phone", "handle": "handle"}[kind] in reasons[0]
    assert leaks(workdir / "data", {PII_NEEDLE[kind]}) == []


@pytest.mark.parametrize("source_type, kind", CASES)
def test_team_text_naming_someone_never_gets_past_the_landing_contract(workdir, source_type, kind):
    """The backstop: whatever the edge did, after the landing contract no landing file holds it."""
    from expectations import ContractFailed, validate_landing

    cfg, _, _ = _team_source(workdir, source_type, kind)
    run_extract(cfg, "team", None, "2025-12-31T00:00:00Z")
    try:
        validate_landing(cfg)
    except ContractFailed as e:
        assert "team_text_has_no" in str(e)
        assert PII_NEEDLE[kind] not in str(e)
    if landing_files(cfg.path("landing")):
        assert leaks(Path(cfg.path("landing")), {PII_NEEDLE[kind]}) == []


# -- platform payloads stuffed with personal fields ----------------------------------------------

PERSON_KEYS = {"login", "user_id", "username", "acct", "userid", "display_name", "screen_name", "account_id", "handle"}
ITEM_KEYS = {"created_at", "timestamp", "creation_date", "indexedAt"}
EXTRA_FIELDS = ("email", "name", "location", "bio", "avatar", "avatar_url", "profile_image_url", "note", "description")


def stuff(body: Any, markers: set[str], platform: str) -> Any:
    """Add (or overwrite) personal fields in every person-like and item-like object."""
    body = copy.deepcopy(body)

    def walk(o):
        if isinstance(o, dict):
            if PERSON_KEYS & o.keys() or ITEM_KEYS & o.keys():
                n = len(markers)
                for f in EXTRA_FIELDS:
                    value = f"{platform}{f}leak{n:04d}" + ("@example.org" if f == "email" else "")
                    o[f] = value
                    markers.add(value)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(body)
    return body


def _spec_routes(specs, server: ReplayServer, f: Callable[[Any], Any]) -> None:
    for spec in specs:
        replies = [
            Reply(**{**r, "body": f(r["body"]) if isinstance(r.get("body"), (dict, list)) else r.get("body")})
            for r in spec["replies"]
        ]
        server.add(spec["path"], replies, query=spec["query"])


def _cassette_routes(path: Path, server: ReplayServer, f: Callable[[Any], Any]) -> None:
    grouped: dict = {}
    for it in load_cassette(path):
        if it.method != "GET":
            continue
        reply = it.reply
        try:
            reply = Reply(reply.status, json.dumps(f(json.loads(reply.body))), reply.headers)
        except (TypeError, ValueError):
            pass
        grouped.setdefault((it.path, it.query), []).append(reply)
    for (route, query), replies in grouped.items():
        server.add(route, replies, query=query)


@dataclass
class Platform:
    name: str
    source: str
    serve: Callable[[ReplayServer, Callable[[Any], Any]], None]
    config: Callable[[Path, str], Any]
    since: str | None
    until: str


def _platforms() -> dict[str, Platform]:
    from tests import test_connector_discourse as disc
    from tests import test_connector_github as gh
    from tests import test_connector_mastodon as masto
    from tests import test_connector_mediawiki as mw
    from tests import test_connector_stackexchange as se
    from tests import test_connector_x as xt

    def x_config(workdir: Path, url: str):
        src = {
            "name": "tweets",
            "type": "x",
            "query": "tweepy -is:retweet",
            "base_url": url,
            "bearer_token_env": "X_TEST_TOKEN",
            "max_retries": 0,
        }
        return load_config(write_config(workdir, [src]))

    def masto_config(workdir: Path, url: str):
        src = {
            "name": "toots",
            "type": "mastodon",
            "base_url": url,
            "hashtag": "#fediverse",
            "instance": masto.INSTANCE,
            "page_size": 15,
        }
        return load_config(write_config(workdir, [src]))

    def disc_serve(server, f):
        for (path, query), body in disc.fixture_routes().items():
            server.add(path, f(body), query=query)

    explicit = {
        "github": Platform(
            "github",
            "gh",
            lambda s, f: _spec_routes(gh.route_specs(), s, f),
            gh.make_config,
            gh.SINCE.isoformat(),
            gh.UNTIL.isoformat(),
        ),
        "stackexchange": Platform(
            "stackexchange",
            "so",
            lambda s, f: _spec_routes(se.route_specs().values(), s, f),
            se.make_config,
            se.SINCE.isoformat(),
            se.UNTIL.isoformat(),
        ),
        "mediawiki": Platform(
            "mediawiki",
            "wiki",
            lambda s, f: _spec_routes(mw.route_specs().values(), s, f),
            mw.make_config,
            mw.SINCE.isoformat(),
            mw.UNTIL.isoformat(),
        ),
        "discourse": Platform("discourse", "forum", disc_serve, lambda w, u: disc.forum_config(w, u), None, disc.UNTIL),
        "mastodon": Platform(
            "mastodon",
            "toots",
            lambda s, f: _cassette_routes(masto.CASSETTE, s, f),
            masto_config,
            None,
            "2026-04-12T00:00:00Z",
        ),
        "x": Platform("x", "tweets", lambda s, f: _cassette_routes(xt.CASSETTE, s, f), x_config, xt.SINCE, xt.UNTIL),
    }
    return {t.name: _from_target(t) for t in targets() if t.name not in explicit} | explicit


def _from_target(t: Any) -> Platform:
    """A platform without an entry above runs its fault-matrix target: its recorded routes
    and source settings, its window."""

    def serve(server: ReplayServer, f: Callable[[Any], Any]) -> None:
        for (path, query), replies in t.routes().items():
            bodies = [r.body if isinstance(r.body, (dict, list)) else json.loads(r.body or "null") for r in replies]
            server.add(
                path, [Reply(r.status, f(b), dict(r.headers)) for r, b in zip(replies, bodies, strict=True)], query
            )

    def config(workdir: Path, url: str):
        return load_config(write_config(workdir, [source_config(t, url, {})]))

    return Platform(t.name, t.name, serve, config, t.window[0], t.window[1])


PLATFORMS = list(names(team=False))  # every registered connector: an entry above, or its fault target


@pytest.mark.parametrize("name", PLATFORMS)
def test_extra_personal_fields_in_payloads_never_reach_landing(workdir, monkeypatch, caplog, name):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("X_TEST_TOKEN", "test-bearer-token")
    platform = _platforms()[name]
    markers: set[str] = set()
    with ReplayServer() as server:
        platform.serve(server, lambda body: stuff(body, markers, name))
        cfg = platform.config(workdir, server.url)
        summary = run_extract(cfg, platform.source, platform.since, platform.until)
    assert markers and summary.landed > 0, "the stuffed payload must still be read"
    assert leaks(workdir / "data", markers) == []
    for f in landing_files(cfg.path("landing")):
        assert tuple(pq.read_schema(f).names) == ENVELOPE_COLUMNS
    assert not [m for m in markers if m in caplog.text]


# -- protected, locked, private, hidden ------------------------------------------------------------


def _flip(match: Callable[[dict], bool], **fields) -> Callable[[Any], Any]:
    def f(body):
        body = copy.deepcopy(body)

        def walk(o):
            if isinstance(o, dict):
                if match(o):
                    o.update(fields)
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)

        walk(body)
        return body

    return f


HIDDEN = {
    # platform: (what to flip, account whose pseudonym must not be an actor, drop reason)
    "discourse": (_flip(lambda o: o.get("user_id") == 63 and "post_number" in o, hidden=True), "63", "hidden"),
    "mediawiki": (_flip(lambda o: o.get("userid") == 9200002 and "revid" in o, userhidden=True), "9200002", "hidden"),
    "mastodon": (
        _flip(lambda o: o.get("id") == "108902458015766980" and "acct" in o, locked=True),
        "icosahedron.website:108902458015766980",
        "locked_account",
    ),
    "x": (_flip(lambda o: o.get("id") == "783214" and "protected" in o, protected=True), "783214", "protected_account"),
}


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_protected_locked_and_hidden_items_are_dropped(workdir, monkeypatch, name):
    monkeypatch.setenv("X_TEST_TOKEN", "test-bearer-token")
    platform = _platforms()[name]
    flip, account, reason = HIDDEN[name]
    gone = pseudonym(TEST_KEY, name, account)

    (workdir / "a").mkdir()
    (workdir / "b").mkdir()
    with ReplayServer() as server:
        platform.serve(server, lambda body: body)
        baseline = run_extract(
            platform.config(workdir / "a", server.url), platform.source, platform.since, platform.until
        )
    with ReplayServer() as server:
        platform.serve(server, flip)
        cfg = platform.config(workdir / "b", server.url)
        summary = run_extract(cfg, platform.source, platform.since, platform.until)

    tables = [pq.read_table(f) for f in landing_files(cfg.path("landing"))]
    assert gone not in [a for t in tables for a in t["actor"].to_pylist()]
    assert gone not in [a for t in tables for a in t["parent_actor"].to_pylist()]
    flipped = summary.dropped.get(reason, 0) - baseline.dropped.get(reason, 0)
    assert flipped > 0 and summary.landed == baseline.landed - flipped


# -- the mart contract guards serving -------------------------------------------------------------


def _cli(args: list[str]):
    """The real `agora` command, in this process (the subprocess path is covered in test_privacy.py)."""
    from typer.testing import CliRunner

    from agora.cli import app

    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A real warehouse and serving database built from the Discourse fixture."""
    from agora import pipeline
    from tests import test_connector_discourse as disc

    workdir = tmp_path_factory.mktemp("marts")
    with pytest.MonkeyPatch.context() as mp, ReplayServer(disc.fixture_routes()) as server:
        mp.setenv("AGORA_PSEUDONYM_KEY", TEST_KEY)
        cfg = load_config(
            write_config(
                workdir,
                [{"name": "forum", "type": "discourse", "base_url": server.url, "max_retries": 0}],
                privacy={"k_min": 5},
            )
        )
        pipeline.extract(cfg, "forum", None, disc.UNTIL)
        pipeline.validate_landing(cfg)
        pipeline.build(cfg)
        pipeline.validate_marts(cfg)
        pipeline.publish(cfg)
    return workdir, cfg


def _copy(published, tmp_path: Path) -> tuple[Path, Path]:
    """A config whose warehouse dir is a fresh copy (the landing zone is shared, read-only here)."""
    workdir, cfg = published
    wh = tmp_path / "warehouse"
    shutil.copytree(cfg.path("warehouse"), wh)
    raw = yaml.safe_load((workdir / "agora.yml").read_text())
    raw["paths"] = {
        "landing": cfg.path("landing"),
        "state": str(tmp_path / "state"),
        "quarantine": str(tmp_path / "q"),
        "warehouse": str(wh),
    }
    path = tmp_path / "agora.yml"
    path.write_text(yaml.safe_dump(raw))
    return path, wh


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


TAMPER = {
    "pseudonym column": (
        "create table marts.member_activity as select month, platform, "
        f"'{'a' * 64}' as actor, 1 as contributions from marts.community_kpis_monthly limit 3",
        "no_identifying_columns",
    ),
    "value describing 2 accounts": (
        "update marts.community_kpis_monthly set group_size = 2, is_suppressed = false, value = 1 "
        "where rowid = (select min(rowid) from marts.community_kpis_monthly)",
        "small_groups_publish_no_values",
    ),
    "flag hiding a small group": (
        "update marts.community_kpis_monthly set group_size = 2, is_suppressed = true, value = 1 "
        "where rowid = (select min(rowid) from marts.community_kpis_monthly)",
        "suppressed_rows_have_null_values",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_a_mart_that_could_identify_someone_fails_the_contract_and_serving_stays(published, tmp_path, case):
    sql, check = TAMPER[case]
    config, wh = _copy(published, tmp_path)
    serving = wh / "serving.duckdb"
    before = _sha(serving)
    con = duckdb.connect(str(wh / "agora.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()
    result = _cli(["publish", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "publish failed" in result.output and check in result.output
    assert _sha(serving) == before
    assert not list(wh.glob("serving.duckdb.new*"))


# -- the requests file -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, message",
    [
        ("friendster,alice_w,erasure,2025-03-01", "unknown platform 'friendster'"),
        ("GitHub,alice_w,deletion,2025-03-01", "kind must be opt_out or erasure"),
        ("github,alice_w,erasure,yesterday", "requested_at is not an ISO date"),
        ("team_activity,alice_w,erasure,2025-03-01", "a team-written source holds no accounts"),
    ],
)
def test_cli_rejects_a_bad_requests_file_with_exit_2_and_file_line(workdir, row, message):
    cfg_path = write_config(workdir, [{"name": "t", "type": "survey", "path": "s.csv"}])
    req = workdir / "requests.csv"
    req.write_text("platform,account,kind,requested_at\ngithub,123,opt_out,2025-03-01\n" + row + "\n")
    result = _cli(["privacy", "apply", "--requests", str(req), "--config", str(cfg_path)])
    assert result.exit_code == 2, result.output
    # stderr: the step's progress line (`privacy apply …`, off a terminal) and one error line.
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and f"{req}:3: " in lines[0] and message in lines[0], result.output
    assert "error:" not in result.stdout
    assert "alice_w" not in result.output
    assert not (workdir / "data").exists()  # nothing was written, not even the good row's tombstone
