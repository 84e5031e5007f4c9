"""Idempotency: a window run twice, a crash between the landing write and the cursor save,
a retry, an overlapping next run — none of it duplicates a row or changes a mart. And a
failed mart contract leaves the previous serving database in place and readable.

Every connector runs for real against its recorded responses (tests/fault_matrix.py);
dbt builds for real on DuckDB; the mart contract runs GX for real.
"""

from __future__ import annotations

import hashlib
import shutil
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import TEST_KEY, write_config
from fault_matrix import FAULTS, FaultServer, Reply, Target, source_config, targets, window_of

from agora.config import load_config
from agora.extract import run_extract
from agora.landing import landing_files, read_state, write_state
from connectors.http import HttpError

TARGETS = targets()
# Sources whose requests do not encode the window's end, so a later `until` replays too.
OVERLAP = {"github", "mastodon", "discourse"}
LATER = timedelta(hours=6)


def serve(server: FaultServer, t: Target) -> FaultServer:
    for (path, query), replies in t.routes().items():
        server.add(path, replies, query=query)
    return server


def landing_snapshot(cfg, source: str) -> tuple[list[str], list[tuple]]:
    """File names and rows, minus extracted_at (the only column a rerun may change)."""
    root = Path(cfg.path("landing"))
    files = [str(Path(f).relative_to(root)) for f in landing_files(cfg.path("landing"), source)]
    rows = []
    for f in landing_files(cfg.path("landing"), source):
        for r in pq.read_table(f).to_pylist():
            r.pop("extracted_at")
            rows.append(tuple(sorted((k, repr(v)) for k, v in r.items())))
    return files, sorted(rows)


def landed_ids(cfg, source: str) -> set[str]:
    return {r["record_id"] for f in landing_files(cfg.path("landing"), source) for r in pq.read_table(f).to_pylist()}


@pytest.mark.parametrize("t", TARGETS, ids=[t.name for t in TARGETS])
def test_rerun_and_crash_before_cursor_save_land_the_same_rows(t: Target, workdir, monkeypatch):
    for k, v in t.env.items():
        monkeypatch.setenv(k, v)
    since, until = window_of(t)
    with serve(FaultServer(), t) as server:
        cfg = load_config(write_config(workdir, [source_config(t, server.url, {})]))
        write_state(cfg.path("state"), t.name, {"cursor": since.isoformat()})

        # The process dies after the landing files are written, before the cursor is saved.
        crashed = run_extract(cfg, t.name, None, until, save_state=False)
        after_crash = landing_snapshot(cfg, t.name)
        assert after_crash[1] and read_state(cfg.path("state"), t.name) == {"cursor": since.isoformat()}

        # Airflow retries the task with the same data interval; later someone reruns it by hand.
        retried = run_extract(cfg, t.name, None, until)
        assert landing_snapshot(cfg, t.name) == after_crash
        assert read_state(cfg.path("state"), t.name)["cursor"] == until.isoformat()
        rerun = run_extract(cfg, t.name, since, until)
        assert landing_snapshot(cfg, t.name) == after_crash

    assert crashed.run_id == retried.run_id == rerun.run_id
    assert crashed.landed == retried.landed == rerun.landed == len(after_crash[1])
    keys = [dict(r)["record_id"] for r in after_crash[1]]
    assert len(keys) == len(set(keys))


def test_a_failed_rerun_leaves_the_landed_files_untouched(workdir):
    """500 for good on page 2 of a rerun: the earlier run's files stay byte for byte."""
    t = next(t for t in TARGETS if t.name == "github")
    since, until = window_of(t)
    with serve(FaultServer(), t) as server:
        cfg = load_config(write_config(workdir, [source_config(t, server.url, {"max_retries": 1})]))
        run_extract(cfg, t.name, since, until)
        before = {f: Path(f).read_bytes() for f in landing_files(cfg.path("landing"), t.name)}
        state = read_state(cfg.path("state"), t.name)
        server.add(t.pages[1][0], Reply(500, {"message": "Server Error"}, {"Retry-After": "0"}), query=t.pages[1][1])
        with pytest.raises(HttpError, match="HTTP 500"):
            run_extract(cfg, t.name, since, until)
    assert {f: Path(f).read_bytes() for f in landing_files(cfg.path("landing"), t.name)} == before
    assert read_state(cfg.path("state"), t.name) == state


def test_a_rerun_that_rejects_nothing_clears_the_windows_quarantine(workdir):
    """The API sent a status without its timestamp, then fixed it: the rerun lands it and
    the window's quarantine no longer claims it was bad."""
    t = next(t for t in TARGETS if t.name == "mastodon")
    since, until = window_of(t)
    broken = next(f for f in FAULTS if f.name == "missing required field")
    quarantine = lambda: sorted(Path(cfg.path("quarantine")).rglob("*.parquet"))  # noqa: E731
    with serve(FaultServer(), t) as server:
        cfg = load_config(write_config(workdir, [source_config(t, server.url, {})]))
        clean = run_extract(cfg, t.name, since, until)
        clean_rows = landing_snapshot(cfg, t.name)
        assert clean.quarantined == 0 and quarantine() == []
        routes = t.routes()
        plan = broken.inject(t, routes, server, landed_ids(cfg, t.name))
        for (path, query), replies in routes.items():
            server.add(path, replies, query=query)
        bad = run_extract(cfg, t.name, since, until)
        assert bad.quarantined == 1 and bad.landed == clean.landed - 1 and len(quarantine()) == 1
        serve(server, t)
        fixed = run_extract(cfg, t.name, since, until)
    assert plan.lost and fixed.landed == clean.landed
    assert landing_snapshot(cfg, t.name) == clean_rows
    assert fixed.quarantined == 0 and quarantine() == []


# --- the marts -------------------------------------------------------------------------


def mart_rows(warehouse: str) -> dict[str, list[tuple]]:
    con = duckdb.connect(warehouse, read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        return {t: con.execute(f'select * from marts."{t}" order by all').fetchall() for t in tables}
    finally:
        con.close()


def all_sources_config(directory: Path, servers: dict[str, FaultServer]):
    sources = [source_config(t, servers[t.name].url, {}) for t in TARGETS]
    return load_config(write_config(directory, sources, privacy={"k_min": 2}))


def build_marts(cfg, target_path: Path):
    """`dbt build` for real, data tests and contracts included; dbt's unit tests (fixed
    inputs, nothing to do with what landed) are tests/test_dbt.py's business."""
    from agora.warehouse import run_dbt, warehouse_path

    Path(warehouse_path(cfg)).parent.mkdir(parents=True, exist_ok=True)
    run_dbt(cfg, ["build", "--exclude", "test_type:unit"], target_path=target_path)
    return warehouse_path(cfg), target_path / "manifest.json"


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGORA_PSEUDONYM_KEY", TEST_KEY)
        for t in TARGETS:
            for k, v in t.env.items():
                mp.setenv(k, v)
        yield


@pytest.fixture(scope="module")
def servers(env):
    with ExitStack() as stack:
        yield {t.name: stack.enter_context(serve(FaultServer(), t)) for t in TARGETS}


@pytest.fixture(scope="module")
def clean(tmp_path_factory, servers):
    """Every source extracted once, cleanly, then built: the marts to compare against."""
    directory = tmp_path_factory.mktemp("clean")
    cfg = all_sources_config(directory, servers)
    for t in TARGETS:
        since, until = window_of(t)
        run_extract(cfg, t.name, since, until + LATER if t.name in OVERLAP else until)
    warehouse, manifest = build_marts(cfg, directory / "dbt_target")
    return cfg, warehouse, manifest, mart_rows(warehouse)


def test_crash_retry_overlap_and_rerun_give_the_same_marts(tmp_path_factory, servers, clean):
    _, _, _, expected = clean
    # Overlapping windows would double these if staging did not keep one row per record.
    counted = [r for r in expected["community_kpis_monthly"] if r[2] == "contributions" and r[3]]
    assert {r[1] for r in counted} >= {"discourse", "all"}, expected["community_kpis_monthly"]
    directory = tmp_path_factory.mktemp("messy")
    cfg = all_sources_config(directory, servers)
    for t in TARGETS:
        since, until = window_of(t)
        write_state(cfg.path("state"), t.name, {"cursor": since.isoformat()})
        run_extract(cfg, t.name, None, until, save_state=False)  # crash before the cursor save
        if t.name in OVERLAP:
            # The next run starts at the unmoved cursor and ends later: [since, until) lands
            # twice, in two files with different run ids (staging keeps one of each record).
            run_extract(cfg, t.name, None, until + LATER)
            run_extract(cfg, t.name, since, until + LATER)  # and the same window once more
        else:
            run_extract(cfg, t.name, None, until)  # the retry, same window
            run_extract(cfg, t.name, since, until)  # and a rerun by hand
    overlapping = [f for f in landing_files(cfg.path("landing")) if "/discourse/" in f]
    assert len({Path(f).name for f in overlapping}) == 2  # two run ids hold the same records
    warehouse, _ = build_marts(cfg, directory / "dbt_target")
    got = mart_rows(warehouse)
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table


def mart_contract_then_publish(cfg, warehouse: str, manifest: Path):
    """The tail of agora_transform: chain(..., mart_contract(), publish())."""
    from agora.publish import publish
    from expectations import validate_marts

    validate_marts(cfg, warehouse, manifest)
    return publish(cfg)


def test_a_failed_mart_contract_keeps_the_previous_serving_database(clean, servers, tmp_path):
    from agora.publish import serving_path
    from expectations import ContractFailed

    _, warehouse, manifest, _ = clean
    # Work on a copy: the clean warehouse is the other test's reference.
    cfg = all_sources_config(tmp_path, servers)
    Path(cfg.path("warehouse")).mkdir(parents=True)
    own = str(Path(cfg.path("warehouse")) / Path(warehouse).name)
    shutil.copy(warehouse, own)

    mart_contract_then_publish(cfg, own, manifest)
    serving = serving_path(cfg)
    published, digest = mart_rows(str(serving)), hashlib.sha256(serving.read_bytes()).hexdigest()
    assert published["community_kpis_monthly"]

    # A build that would publish a value describing 2 accounts (k_min is 2 here: use 1).
    con = duckdb.connect(own)
    con.execute(
        "insert into marts.community_kpis_monthly (month, platform, kpi, value, group_size, is_suppressed)"
        " values (date '2001-01-01', 'github', 'active_members', 1, 1, false)"
    )
    con.close()
    with pytest.raises(ContractFailed) as failed:
        mart_contract_then_publish(cfg, own, manifest)
    message = str(failed.value)
    assert "marts.community_kpis_monthly" in message and "small_groups_publish_no_values" in message, message

    assert hashlib.sha256(serving.read_bytes()).hexdigest() == digest
    assert not Path(f"{serving}.new").exists()
    reader = duckdb.connect(f"{serving}", read_only=True)  # as Superset opens it
    try:
        assert reader.execute("select count(*) from marts.community_kpis_monthly").fetchone()[0] == len(
            published["community_kpis_monthly"]
        )
        small = "select count(*) from marts.community_kpis_monthly where group_size < 2 and value is not null"
        assert reader.execute(small).fetchone()[0] == 0  # the bad row never reached serving
    finally:
        reader.close()
