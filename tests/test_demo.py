"""The offline demo: deterministic, realistic enough for every mart, and leak-free.

One full extract of every demo source (module fixture) backs the property checks: they
are measured on what landed, i.e. after the connector's public-only rules.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from agora import pipeline
from agora.config import load_config
from agora.demo import (
    END,
    FORUM,
    START,
    X_TOKEN_ENV,
    build_community,
    build_platforms,
    demo_modules,
    ensure_pseudonym_key,
    github,
    mastodon,
    mediawiki,
    stackexchange,
    start_demo,
    x,
)
from agora.demo.community import RESTRICTED_CATEGORY
from agora.demo.discourse import discourse_routes
from agora.demo.inputs import write_inputs
from agora.extract import run_extract
from agora.landing import landing_files
from connectors import registry
from tests.conftest import TEST_KEY

DEMOS = demo_modules()
#: Demo source name -> its platform, for every platform but the forum (from the demo modules).
PLATFORM_SOURCES = {m.source("http://demo")["name"]: name for name, m in DEMOS.items() if name != FORUM}
SOURCES = ("forum", *PLATFORM_SOURCES, "survey", "feedback", "learnings", "team")
#: What each platform's connector must find and drop in the demo (counted by reason): its demo module's DROPS.
EXPECTED_DROPS = {source: DEMOS[platform].DROPS for source, platform in PLATFORM_SOURCES.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Start the demo once and extract every source for the whole simulated period."""
    workdir = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGORA_PSEUDONYM_KEY", TEST_KEY)
        with start_demo(workdir, seed=42) as d:
            cfg = load_config(d.config_path)
            summaries, seconds = {}, {}
            for s in SOURCES:
                t0 = time.perf_counter()
                summaries[s] = run_extract(cfg, s, START, END)
                seconds[s] = time.perf_counter() - t0
            d.extract_seconds = seconds  # type: ignore[attr-defined]
            yield d, cfg, summaries


_ROWS: dict[tuple[str, str], list[dict]] = {}


def rows(cfg, source: str) -> list[dict]:
    """All landed rows of a source (read once per module: hundreds of daily files)."""
    key = (cfg.path("landing"), source)
    if key not in _ROWS:
        files = landing_files(cfg.path("landing"), source)
        _ROWS[key] = ds.dataset(files, format="parquet").to_table().to_pylist()
    return _ROWS[key]


def test_same_seed_same_routes_and_inputs(tmp_path):
    a, b = discourse_routes(build_community(42)), discourse_routes(build_community(42))
    assert list(a) == list(b)
    assert json.dumps(list(a.values()), sort_keys=True) == json.dumps(list(b.values()), sort_keys=True)
    assert discourse_routes(build_community(7)).keys() != a.keys()
    pa, pb = write_inputs(tmp_path / "a", 42), write_inputs(tmp_path / "b", 42)
    assert all(pa[k].read_bytes() == pb[k].read_bytes() for k in pa)


def _platform_renderings(seed: int) -> list:
    p = build_platforms(seed)
    return [
        github.render_repo(p["github"]).__dict__,
        mediawiki.render_revisions(p["mediawiki"]),
        {t: {str(k): v for k, v in days.items()} for t, days in mediawiki.render_pageviews(seed).items()},
        stackexchange.render_site(p["stackexchange"]),
        x.render_tweets(p["x"]),
        mastodon.render_timeline(p["mastodon"]),
    ]


def test_same_seed_same_platform_responses():
    a, b = _platform_renderings(42), _platform_renderings(42)
    dump = lambda v: json.dumps(v, sort_keys=True, default=str)  # noqa: E731
    assert dump(a) == dump(b)
    assert all(dump(x) != dump(y) for x, y in zip(a, _platform_renderings(7), strict=True))


def test_platform_accounts_are_independent():
    """Smaller than the forum, and no account id shared with the forum or another platform."""
    forum = build_community(42)
    platforms = build_platforms(42)
    forum_members = sum(1 for a in forum.accounts if a.role == "member")
    ids = {a.id for a in forum.accounts if a.id > 0}
    for c in platforms.values():
        assert 100 <= sum(1 for a in c.accounts if a.role == "member") < forum_members
        mine = {a.id for a in c.accounts}
        assert not mine & ids
        ids |= mine


def test_same_seed_same_landing(demo, tmp_path):
    d, cfg, _ = demo
    since, until = "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"
    with start_demo(tmp_path, seed=42) as again:
        other = load_config(again.config_path)
        run_extract(other, "forum", since, until)
    mine = load_config(d.config_path)
    run_extract(mine, "forum", since, until)

    def window_rows(c):
        files = [f for f in landing_files(c.path("landing"), "forum") if "20261001T000000Z--" in f]
        out = [r for f in files for r in pq.read_table(f).to_pylist()]
        for r in out:
            r.pop("extracted_at")
        return sorted(out, key=lambda r: r["record_id"])

    theirs, ours = window_rows(other), window_rows(mine)
    assert len(ours) > 30 and theirs == ours


def test_config_is_valid_and_points_at_the_local_server(demo):
    d, cfg, _ = demo
    assert cfg.community == "Demo community" and cfg.privacy.k_min == 5 and cfg.privacy.retention_days == 800
    assert str(cfg.source("forum").base_url).rstrip("/") == d.server.url
    forum_staff = {s.account for s in cfg.privacy.staff if s.platform == "discourse"}
    assert forum_staff == {str(i) for i in d.community.staff_ids()}
    for source, platform in PLATFORM_SOURCES.items():
        assert len([s for s in cfg.privacy.staff if s.platform == platform]) == 2, platform
        url = str(getattr(cfg.source(source), "base_url", None) or cfg.source(source).api_url)
        assert url.startswith(d.server.url), source
    assert cfg.kpis.targets["returning_newcomer_rate"] == 0.4
    assert Path(cfg.path("landing")) == d.workdir / "data" / "landing"


def test_sizes_and_drops(demo):
    d, _, summaries = demo
    forum = summaries["forum"]
    assert 2000 <= forum.landed <= 5000
    assert 250 <= sum(1 for a in d.community.accounts if a.role == "member") <= 500
    assert forum.quarantined == 0
    for reason in DEMOS[FORUM].DROPS:
        assert forum.dropped.get(reason, 0) > 0, reason
    restricted = {str(t.id) for t in d.community.threads if t.category_id == RESTRICTED_CATEGORY}
    assert restricted and not restricted & {r["thread_id"] for r in rows(load_config(d.config_path), "forum")}
    assert all(summaries[s].quarantined == 0 and summaries[s].landed > 0 for s in SOURCES)


def test_every_demo_declares_drops_its_connector_declares():
    for name, m in DEMOS.items():
        assert m.DROPS and set(m.DROPS) <= set(registry.platform(name).connector.drop_reasons), name


def test_every_platform_lands_with_its_drops(demo):
    d, cfg, summaries = demo
    for source, platform in PLATFORM_SOURCES.items():
        got = summaries[source]
        assert cfg.source(source).type == platform
        assert 800 <= got.landed <= 4000, (source, got.landed)
        assert got.quarantined == 0, source
        for reason in EXPECTED_DROPS[source]:
            assert got.dropped.get(reason, 0) > 0, (source, reason, got.dropped)
    # The demo's whole extract: measured, and bounded loosely so a slow handler shows up.
    platforms_s = sum(d.extract_seconds[s] for s in PLATFORM_SOURCES)
    assert platforms_s < 90, d.extract_seconds


def test_every_platform_has_members_and_staff_every_month(demo):
    _, cfg, _ = demo
    forum_actors = {r["actor"] for r in rows(cfg, "forum")}
    for source in PLATFORM_SOURCES:
        landed = [r for r in rows(cfg, source) if r["actor"] is not None]
        staff = {r["actor"] for r in landed if r["is_staff"]}
        assert len(staff) == 2, source  # privacy.staff names each platform's team accounts
        months = defaultdict(set)
        for r in landed:
            if not r["is_staff"] and not r["is_bot"]:
                months[r["occurred_at"].strftime("%Y-%m")].add(r["actor"])
        assert len(months) == 22 and min(len(m) for m in months.values()) >= 5, source  # k_min every month
        actors = {r["actor"] for r in landed}
        assert len(actors) < len(forum_actors) and not actors & forum_actors, source
    views = [r for r in rows(cfg, "wiki") if r["record_type"] == "pageviews"]
    assert len(views) == 2 * (END - START).days and all(r["value"] > 0 for r in views)


def test_platform_servers_honour_the_window(demo, tmp_path):
    """A one-month run lands exactly the records of that month that the full run landed."""
    d, cfg, _ = demo
    since, until = "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"
    with start_demo(tmp_path, seed=42) as again:
        other = load_config(again.config_path)
        for source in PLATFORM_SOURCES:
            run_extract(other, source, since, until)
            month = {r["record_id"] for r in rows(other, source)}
            full = {r["record_id"] for r in rows(cfg, source) if r["occurred_at"].strftime("%Y-%m") == "2026-10"}
            assert month and month == full, source


def test_landing_contract_holds_for_every_platform(demo):
    _, cfg, _ = demo
    result = pipeline.validate_landing(cfg)
    assert result["success"], result.get("failures")


def test_x_source_runs_on_a_dummy_token_and_mastodon_ids_do_not_depend_on_the_port(demo):
    _, cfg, _ = demo
    assert cfg.source("x").bearer_token_env == X_TOKEN_ENV and os.environ[X_TOKEN_ENV]
    assert cfg.source("toots").instance == mastodon.INSTANCE
    staff = {s.account for s in cfg.privacy.staff if s.platform == "mastodon"}
    assert staff and all(a.startswith(f"{mastodon.INSTANCE}:") for a in staff)


def test_community_properties_hold_in_what_landed(demo):
    _, cfg, _ = demo
    forum = rows(cfg, "forum")
    bots = {r["actor"] for r in forum if r["is_bot"]}
    staff = {r["actor"] for r in forum if r["is_staff"]}
    assert len(bots) == 2 and len(staff) == 3
    members = [r for r in forum if not r["is_bot"] and not r["is_staff"]]

    # Newcomers: some contribute again on a later day within 30 days, many do not.
    times = defaultdict(list)
    for r in members:
        times[r["actor"]].append(r["occurred_at"])
    returned = 0
    for ts in times.values():
        ts.sort()
        first = ts[0]
        returned += any(t.date() > first.date() and t - first <= timedelta(days=30) for t in ts)
    rate = returned / len(times)
    assert 0.25 < rate < 0.5, rate
    first_months = Counter(min(ts).strftime("%Y-%m") for ts in times.values())
    assert len(first_months) == 22 and min(first_months.values()) >= 5  # a cohort every month

    # Power law: the top decile of members makes a large share of contributions.
    counts = sorted(Counter(r["actor"] for r in members).values(), reverse=True)
    assert sum(counts[: len(counts) // 10]) / sum(counts) > 0.4

    # Churn and reactivation: active, then absent for a month or more, then back.
    months = defaultdict(set)
    for r in members:
        months[r["actor"]].add(r["occurred_at"].year * 12 + r["occurred_at"].month)
    reactivated = sum(1 for ms in months.values() if any(m + 1 not in ms and any(n > m + 1 for n in ms) for m in ms))
    assert reactivated >= 10

    # Questions answered fast, late and never (first reply by another non-bot account).
    by_thread = defaultdict(list)
    for r in forum:
        by_thread[r["thread_id"]].append(r)
    waits, never, self_replies, long_threads = [], 0, 0, 0
    for posts in by_thread.values():
        opener = [p for p in posts if p["record_type"] == "thread"]
        if not opener or opener[0]["is_bot"]:
            continue
        op = opener[0]
        long_threads += len(posts) > 20
        self_replies += any(p["record_type"] == "reply" and p["actor"] == op["actor"] for p in posts)
        answers = [
            p["occurred_at"]
            for p in posts
            if p["record_type"] == "reply" and not p["is_bot"] and p["actor"] != op["actor"]
        ]
        if answers:
            waits.append((min(answers) - op["occurred_at"]).total_seconds() / 3600)
        else:
            never += 1
    assert never >= 30 and self_replies >= 30 and long_threads >= 3
    assert sum(w <= 24 for w in waits) > 100 and sum(w > 48 for w in waits) > 30
    assert any(r["parent_actor"] is not None and r["parent_actor"] != r["actor"] for r in members)


def test_team_inputs_land(demo):
    _, cfg, summaries = demo
    survey = rows(cfg, "survey")
    assert len(survey) >= 60
    quarters = Counter((r["occurred_at"].year, (r["occurred_at"].month - 1) // 3) for r in survey)
    assert len(quarters) >= 6 and min(quarters.values()) < 5  # one quarter is below k_min
    assert {t for r in rows(cfg, "feedback") for t in r["tags"] if t.startswith("event:")} == {
        "event:received",
        "event:acted",
        "event:responded",
    }
    assert all(any(t.startswith("kpi:") for t in r["tags"]) for r in rows(cfg, "learnings"))
    assert {t for r in rows(cfg, "team") for t in r["tags"]} >= {"kind:event", "kind:talk", "kind:post"}


def test_no_handle_name_or_account_id_reaches_disk(demo):
    d, cfg, _ = demo
    secrets = d.handles
    members = [a for a in d.community.accounts if a.role == "member"]
    assert len(secrets) > 2000 and {members[0].handle, str(members[0].id)} <= set(secrets)
    wiki_ips = [mediawiki.anon_ip(a) for a in d.platforms["mediawiki"].accounts if a.role == "deleted"]
    gh_member = next(a for a in d.platforms["github"].accounts if a.role == "member")
    assert wiki_ips and set(wiki_ips) | {gh_member.handle, str(gh_member.id)} <= set(secrets)
    files = [p for p in (d.workdir / "data").rglob("*") if p.is_file()]
    assert len(files) > 100
    # Distinct printable runs of every file, searched once per secret (a few hundred KB, not MBs).
    runs: set[bytes] = set()
    for p in files:
        runs.update(re.findall(rb"[^\x00-\x1f]{4,}", p.read_bytes()))
    everything = b"\0".join(runs)
    hits = [s for s in secrets if s.encode() in everything]
    assert not hits, [(s, [str(p) for p in files if s.encode() in p.read_bytes()][:2]) for s in hits[:3]]
    # Compressed pages could hide a value from a byte search: check the decoded values too.
    values = {str(v) for s in SOURCES for r in rows(cfg, s) for v in r.values() if v is not None}
    text = "\0".join(values)
    assert not [s for s in secrets if s in text]


def test_local_pseudonym_key_is_created_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv("AGORA_PSEUDONYM_KEY")
    ensure_pseudonym_key(tmp_path)
    key_file = tmp_path / ".local" / "pseudonym.key"
    key = os.environ["AGORA_PSEUDONYM_KEY"]
    assert len(key) >= 32 and key_file.read_text() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (tmp_path / ".local" / ".gitignore").read_text() == "*\n"
    monkeypatch.delenv("AGORA_PSEUDONYM_KEY")
    ensure_pseudonym_key(tmp_path)
    assert os.environ["AGORA_PSEUDONYM_KEY"] == key  # reused, so pseudonyms stay stable


def test_demo_without_airflow_runs_the_whole_pipeline_and_shows_each_step(tmp_path):
    """`agora demo --no-airflow` (it used to crash on `run.callback`), output piped: each step
    is named as it starts, the extracts report pages and records, the KPIs are printed, and
    the process ends without `nanobind: leaked` lines."""
    env = {**os.environ, "AGORA_PSEUDONYM_KEY": TEST_KEY, "AGORA_PROGRESS_EVERY": "3600", "COLUMNS": "200"}
    env.pop("AGORA_CONFIG", None)
    agora = str(Path(sys.executable).with_name("agora"))
    res = subprocess.run(
        [agora, "demo", "--no-airflow", "--data", str(tmp_path / "data")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out, shown = res.stdout, res.stderr  # results on stdout, progress on stderr
    cfg = load_config(tmp_path / "data" / "demo" / "agora.yml")
    for s in cfg.sources:
        assert f"extracting {s.name} …" in shown and f"  {s.name}: landed " in out, s.name
        assert re.search(
            rf"extract {s.name}: [\d,]+ pages fetched, [\d,]+ records read.*; landed [\d,]+ records", shown
        )
    assert re.search(r"extract forum: [1-9][\d,]* pages fetched", shown)  # an HTTP source counts its pages
    for step in pipeline.STEPS:
        assert f"{step} …" in shown and re.search(rf"  {step}: ok \(\d+\.\d s\)", out), step
    assert " …" not in out  # no progress line mixed into the results
    assert "community KPIs" in out and "active_members" in out
    assert (tmp_path / "data" / "warehouse" / "serving.duckdb").exists()
    assert "nanobind" not in res.stderr and "Traceback" not in res.stderr, res.stderr[-3000:]
