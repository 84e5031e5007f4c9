"""The benchmark runs end to end on a tiny community, and its generator writes real landing data.

The bench itself is not timed here: these tests check that `python -m bench` works and
that what it generates is what `agora extract` would land (the landing contract passes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date

import pyarrow.parquet as pq

from agora.envelope import ENVELOPE_SCHEMA
from bench.generate import generate, generate_day
from tests.conftest import ROOT

HEX64 = re.compile(r"[0-9a-f]{64}")


def test_generator_writes_the_landing_layout(tmp_path):
    landing = tmp_path / "landing"
    g = generate(str(landing), 5000, end_day=date(2025, 3, 1), days=60)
    assert g.community_events == 5000
    assert g.first_day == "2024-12-31" and g.last_day == "2025-02-28"
    files = sorted(landing.glob("*/dt=*/*.parquet"))
    assert len(files) == g.files
    assert {f.parts[-3] for f in files} == {"forum", "gh", "so", "toots", "meta", "survey"}
    forum = pq.read_table(landing / "forum").to_pylist()  # hive dt column comes along
    assert len(forum) == 3000
    for row in forum:
        assert HEX64.fullmatch(row["actor"])
        assert row["occurred_at"].date().isoformat() == str(row["dt"])
        assert row["run_id"].startswith(str(row["dt"]).replace("-", ""))
    replies = [r for r in forum if r["record_type"] == "reply"]
    threads = {r["record_id"]: r for r in forum if r["record_type"] == "thread"}
    assert replies and threads
    for r in replies:  # a reply answers an earlier thread, and names its opener as parent
        assert threads[r["thread_id"]]["occurred_at"] <= r["occurred_at"]
        assert r["parent_actor"] == threads[r["thread_id"]]["actor"]
    assert any(r["is_bot"] for r in forum) and any(r["is_staff"] for r in forum)
    one = pq.read_table(files[0])
    assert one.schema.remove_metadata().equals(ENVELOPE_SCHEMA)

    # Power-law activity: the busiest tenth of members write most of the posts.
    counts = sorted((sum(1 for r in forum if r["actor"] == a) for a in {r["actor"] for r in forum}), reverse=True)
    assert sum(counts[: max(1, len(counts) // 10)]) > 0.4 * len(forum)

    day = generate_day(str(landing), 200, history_events=5000, day=date(2025, 3, 1), days=60)
    assert day.files == 6 and day.first_day == day.last_day == "2025-03-01"
    added = pq.read_table(landing / "forum" / "dt=2025-03-01").to_pylist()
    assert not {r["record_id"] for r in added} & {r["record_id"] for r in forum}
    # Same community: most of the day's authors were seen before.
    seen = {r["actor"] for r in forum}
    assert sum(r["actor"] in seen for r in added) > 0.5 * len(added)


def test_bench_runs_the_full_and_incremental_path(tmp_path):
    work = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--events", "3000", "--days", "60", "--workdir", str(work)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((work / "bench.json").read_text())
    stages = {(s["phase"], s["name"]) for s in report["stages"]}
    for phase in ("full", "incremental", "unchanged"):
        for name in ("landing contract", "dbt build", "mart contract", "publish"):
            assert (phase, name) in stages
    summary = report["summary"]
    assert summary["reference_seconds"] > 0 and summary["full_seconds"] > summary["reference_seconds"]
    assert 0 < summary["peak_rss_mb"] < 4096
    assert set(summary["targets"]) == {
        "full <= 3x reference",
        "added day <= 5% of full",
        "peak RSS < 4096 MB",
        "Airflow <= 1.5x CLI (nothing new)",
    }
    # The production path: the CLI's three commands, then the transform DAG through Airflow.
    assert {("cli", "agora build"), ("airflow", "dags test agora_transform")} <= stages
    dags_test = next(s for s in report["stages"] if s["name"] == "dags test agora_transform")
    assert dags_test["detail"]["tasks"] > 20  # one task per model and its tests, one dbt build
    assert summary["production_airflow_vs_cli"] == round(
        summary["production_airflow_seconds"] / summary["production_cli_seconds"], 2
    )
    # Airflow's floor in the same run: no-op DAGs of one task and of as many as the transform ran.
    floors = {s["name"]: s["detail"]["tasks"] for s in report["stages"] if s["name"].startswith("dags test floor")}
    assert floors == {
        "dags test floor (1 no-op task)": 1,
        f"dags test floor ({dags_test['detail']['tasks']} no-op tasks)": dags_test["detail"]["tasks"],
    }
    assert (
        0 < summary["production_airflow_floor_1_task_seconds"] < summary["production_airflow_floor_same_tasks_seconds"]
    )
    assert summary["production_floor_vs_cli"] > 1
    full_contract = next(s for s in report["stages"] if s["phase"] == "full" and s["name"] == "landing contract")
    incremental_contract = next(
        s for s in report["stages"] if s["phase"] == "incremental" and s["name"] == "landing contract"
    )
    # The full path checks every file; the added day only its own files (the ledger skips the rest).
    history = next(s for s in report["stages"] if s["name"] == "history")["detail"]
    added = next(s for s in report["stages"] if s["name"] == "added day")["detail"]
    assert full_contract["detail"]["files_checked"] == history["files"]
    assert full_contract["detail"]["rows_checked"] == history["rows"]
    assert full_contract["detail"]["files_unchanged"] == 0
    assert incremental_contract["detail"]["files_checked"] == added["files"]
    assert incremental_contract["detail"]["rows_checked"] == added["rows"]
    assert incremental_contract["detail"]["files_unchanged"] == history["files"]
    assert incremental_contract["detail"]["expectations_evaluated"] == 13
    assert "incremental_landing_contract_checked" in summary
    # Nothing new: the landing contract reads no file, and the day's marginal cost is reported.
    unchanged_contract = next(
        s for s in report["stages"] if s["phase"] == "unchanged" and s["name"] == "landing contract"
    )
    assert unchanged_contract["detail"]["files_checked"] == 0
    assert unchanged_contract["detail"]["files_unchanged"] == history["files"] + added["files"]
    assert summary["added_day_marginal_seconds"] == round(
        summary["incremental_seconds"] - summary["unchanged_seconds"], 2
    )
    publish = next(s for s in report["stages"] if s["phase"] == "incremental" and s["name"] == "publish")
    assert publish["detail"]["tables"]["community_kpis_monthly"] > 0
    assert any(r["node"] == "stg_landing__events" for r in report["dbt_profile"]["full"])
    assert "| full | dbt build |" in proc.stdout
    assert not (work / "landing").exists()  # removed unless --keep


def test_gathered_string_columns_are_chunked(monkeypatch):
    """100 M pseudonyms overflow one string array's 2 GB of offsets: the generator gathers them in chunks."""
    import numpy as np
    import pyarrow as pa

    import bench.generate as generate

    monkeypatch.setattr(generate, "TAKE_CHUNK", 3)
    values = pa.array([f"{i:064x}" for i in range(5)])
    indices = np.array([4, 0, 0, 3, 1, 2, 4])
    gathered = generate._take(values, indices)
    assert gathered.num_chunks == 3
    assert gathered.to_pylist() == [values[int(i)].as_py() for i in indices]


def test_a_large_generation_is_drawn_in_day_aligned_windows(tmp_path, monkeypatch):
    """Past WINDOW_EVENTS a source is drawn window by window (100 M in one table needed ~12 GB):
    the same number of events, unique ids, one file per day, replies still answer earlier threads."""
    import bench.generate as generate

    monkeypatch.setattr(generate, "WINDOW_EVENTS", 700)  # forum's 3,000 events in 5 windows
    landing = tmp_path / "landing"
    g = generate.generate(str(landing), 5000, end_day=date(2025, 3, 1), days=60)
    assert g.community_events == 5000 and g.rows == sum(g.rows_by_day.values())
    forum = pq.read_table(landing / "forum").to_pylist()
    assert len(forum) == 3000
    assert len({r["record_id"] for r in forum}) == 3000
    assert len(list((landing / "forum").glob("dt=*/*.parquet"))) == len({r["dt"] for r in forum})
    for row in forum:
        assert row["occurred_at"].date().isoformat() == str(row["dt"])
    threads = {r["record_id"]: r for r in forum if r["record_type"] == "thread"}
    replies = [r for r in forum if r["record_type"] == "reply"]
    assert replies and len(threads) >= 5  # every window opens with a thread
    for r in replies:
        assert threads[r["thread_id"]]["occurred_at"] <= r["occurred_at"]
        assert r["parent_actor"] == threads[r["thread_id"]]["actor"]
    # The windows follow the community's activity: every month of the 60 days has events.
    months = {r["occurred_at"].strftime("%Y-%m") for r in forum}
    assert months == {"2024-12", "2025-01", "2025-02"}


def test_bench_landing_on_s3_matches_local(tmp_path):
    """`--landing s3` against a moto server: the bucket holds the landing files and the state the run
    wrote there, and the marts published from the bucket equal those published from local disk."""
    import duckdb

    from tests.s3 import all_objects, moto_server

    work = tmp_path / "bench"
    with moto_server(("agora-bench",)) as env:
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "--events", "2000", "--days", "45", "--workdir", str(work)]
            + ["--landing", "s3", "--no-airflow", "--keep"],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        objects = all_objects(env, "agora-bench")
    report = json.loads((work / "bench.json").read_text())
    stages = {(s["phase"], s["name"]) for s in report["stages"]}
    for phase in ("s3 full", "s3 incremental"):
        for name in ("landing contract", "dbt build", "mart contract", "publish"):
            assert (phase, name) in stages
    assert report["s3"]["store"]["store"] == "AWS_* environment"  # the test's server, not one of its own

    # Every landing file, byte for byte, under bench/landing/; the contract's ledger in bench/state/.
    local = {p.relative_to(work / "landing").as_posix(): p.read_bytes() for p in (work / "landing").rglob("*.parquet")}
    landed = {k.removeprefix("bench/landing/"): v for k, v in objects.items() if k.startswith("bench/landing/")}
    assert local and landed == local
    assert "bench/state/landing-contract.json" in objects
    assert report["s3"]["s3 incremental"]["objects"]["landing"] == len(local)

    # Same marts: compare the two serving files here, table by table.
    def marts(path):
        con = duckdb.connect(str(path), read_only=True)
        try:
            q = "select table_schema || '.' || table_name from information_schema.tables"
            names = [r[0] for r in con.execute(q).fetchall()]
            return {n: sorted(con.execute(f"select * from {n}").fetchall(), key=repr) for n in names}  # noqa: S608
        finally:
            con.close()

    from_local, from_s3 = (
        marts(work / "warehouse" / "serving.duckdb"),
        marts(work / "s3" / "warehouse" / "serving.duckdb"),
    )
    assert from_local["marts.community_kpis_monthly"] and from_s3 == from_local
    assert report["summary"]["s3_marts_equal_local"] is True
    assert report["summary"]["s3_full_seconds"] > 0 and report["summary"]["s3_incremental_seconds"] > 0
