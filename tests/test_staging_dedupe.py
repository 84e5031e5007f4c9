"""stg_landing__events keeps one copy per record, the one read last, on full and daily builds.

DuckDB ranks only the rows of files that hold a key landed more than once (macro
`latest_landed_copies`); every other file is copied as it is. These cases pin what that
shortcut must not get wrong: a rerun of an overlapping window (same day, later
extracted_at, an edited value), a record whose copies sit in two different `dt`
partitions (a team member corrected the date), two runs with the same extracted_at
(run_id breaks the tie), and files with no repeated key next to them.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from agora.config import load_config
from agora.warehouse import run_dbt, warehouse_path
from tests.conftest import write_config
from tests.landing_factory import EXTRACTED_AT, LandingFactory


@pytest.fixture
def landing_and_cfg(tmp_path):
    cfg = load_config(
        write_config(tmp_path, [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}])
    )
    return LandingFactory(cfg.path("landing")), cfg, tmp_path / "target"


def _staged(cfg) -> dict[str, tuple]:
    con = duckdb.connect(warehouse_path(cfg), read_only=True)
    try:
        rows = con.execute(
            "select record_id, count(*) over (partition by source, record_type, record_id), "
            "cast(occurred_at as date), tags, run_id from staging.stg_landing__events"
        ).fetchall()
    finally:
        con.close()
    assert all(n == 1 for _, n, *_ in rows), rows
    return {r[0]: tuple(r[2:]) for r in rows}


def _build(cfg, target, *, full: bool) -> None:
    run_dbt(
        cfg, ["build", "--select", "stg_landing__events", *(["--full-refresh"] if full else [])], target_path=target
    )


@pytest.mark.parametrize("full", [True, False], ids=["full-refresh", "daily"])
def test_one_copy_per_record_and_the_latest_wins(landing_and_cfg, full):
    forum, cfg, target = landing_and_cfg
    t1 = forum.thread("m1", "2025-03-01T10:00:00Z")
    forum.reply("m2", "2025-03-01T11:00:00Z", t1)
    t2 = forum.thread("m3", "2025-03-02T10:00:00Z")
    forum.reply("m4", "2025-03-03T09:00:00Z", t2)
    forum.thread("m5", "2025-03-05T10:00:00Z")  # in a file with no repeated key
    forum.write("run1")
    if not full:
        _build(cfg, target, full=True)  # the daily build below sees the reruns as new files
    later = EXTRACTED_AT + timedelta(days=1)
    # Overlapping rerun of 1 March: same records, edited tags, read later.
    rerun = [dict(r, tags=["edited"]) for r in forum.rows[:2]]
    forum.write("run2", rows=rerun, extracted_at=later)
    # The reply of 3 March moved to 2 March (its date was corrected): two partitions.
    moved = dict(forum.rows[3], occurred_at=forum.rows[3]["occurred_at"] - timedelta(days=1), tags=["moved"])
    forum.write("run3", rows=[moved], extracted_at=later)
    # Two runs read 2 March's thread at the same instant: the later run_id wins.
    forum.write("run4", rows=[dict(forum.rows[2], tags=["run4"])], extracted_at=later)
    forum.write("run5", rows=[dict(forum.rows[2], tags=["run5"])], extracted_at=later)

    _build(cfg, target, full=full)

    staged = _staged(cfg)
    assert set(staged) == {"1", "2", "3", "4", "5"}
    assert staged["5"][1:] == ([], "run1")
    assert staged["1"][1:] == (["edited"], "run2") and staged["2"][1:] == (["edited"], "run2")
    assert str(staged["4"][0]) == "2025-03-02" and staged["4"][1:] == (["moved"], "run3")
    assert staged["3"][1:] == (["run5"], "run5")
