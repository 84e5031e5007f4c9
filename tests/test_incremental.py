"""Daily (incremental) builds read only new landing partitions and give the same warehouse
as a full refresh.

One multi-platform community is landed in full in one place (the reference, built with
--full-refresh) and, in another, the way daily extracts would land it: the partitions
before a cutoff day first (initial build), then two days crossing a month boundary, then
the rest. The later steps also carry the cases an incremental model can get wrong: a late
reply to a thread opened months ago, the first answer to a thread left open since February,
an account replied to in January whose first own post comes in the last step (older replies
to them become member pairs: January changes), a member's earlier post landed after a later
one (their first contribution moves earlier), and a record edited and re-landed by a later
run. Every mart and every incremental intermediate
must equal the full refresh's. To prove the daily builds do not reopen old partitions, an
old file is replaced by garbage before the last one: DuckDB would fail on it if it read it.
"""

from __future__ import annotations

import math
import re
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from agora.config import load_config
from agora.landing import write_landing
from agora.warehouse import build, warehouse_path
from tests.conftest import MARTS, write_config
from tests.landing_factory import _row, actor, write_mixed_community
from tests.postgres import PASSWORD, SUPERUSER

# Incremental intermediates: each must match the full refresh row for row, not only
# through the marts (a stale row there would surface in a later month's KPI). Read from the
# models' own config, so a new KPI's incremental model is compared the day it is added.
INTERMEDIATES = tuple(
    sorted(
        p.stem
        for p in (Path(__file__).resolve().parents[1] / "dbt_project/models/intermediate").glob("int_*.sql")
        if re.search(r"materialized\s*=\s*'incremental'", p.read_text())
    )
)
# Partitions sort by name = by UTC day. Step 1 lands 31 March and 1 April.
STEP_1, STEP_2 = "dt=2025-03-31", "dt=2025-04-02"
SOURCE = "discourse_src"
# The run that lands a member's earlier post late (in the last step, not with its partition).
RELANDED = "relanded"


def _config(directory: Path):
    return load_config(
        write_config(
            directory,
            [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}],
            privacy={"k_min": 5},
        )
    )


def _late_cases(landing: Path) -> None:
    """The rows that reach back in time; landed with the generated community."""
    member, newbie = actor("discourse", "m1"), actor("discourse", "newbie")
    rows = [
        # A reply in January to a post by an account that has no post of its own yet.
        _row(
            SOURCE,
            "discourse",
            "reply",
            "jan-to-newbie",
            "2025-01-15T10:00:00Z",
            thread_id="t1",
            parent_id="lost",
            actor=member,
            parent_actor=newbie,
        ),
        # Months later: the newbie's first post, and a late reply to January's thread t1.
        _row(SOURCE, "discourse", "thread", "newbie-1", "2025-05-20T09:00:00Z", thread_id="newbie-1", actor=newbie),
        _row(
            SOURCE,
            "discourse",
            "reply",
            "late-to-t1",
            "2025-05-21T09:00:00Z",
            thread_id="t1",
            parent_id="1",
            actor=actor("discourse", "m4"),
        ),
    ]
    write_landing(rows, str(landing), SOURCE, "late")
    opener, answerer, early = (actor("discourse", a) for a in ("opener", "answerer", "early"))
    write_landing(
        [
            # Opened in February, unanswered until a reply in the last step: an old
            # thread's first response (February's response KPIs change).
            _row(SOURCE, "discourse", "thread", "old-open", "2025-02-10T09:00:00Z", thread_id="old-open", actor=opener),
            _row(
                SOURCE,
                "discourse",
                "reply",
                "old-open-answer",
                "2025-04-25T09:00:00Z",
                thread_id="old-open",
                parent_id="old-open",
                actor=answerer,
                parent_actor=opener,
            ),
            # A new member's first post, landed in step 1...
            _row(SOURCE, "discourse", "thread", "early-2", "2025-03-31T12:00:00Z", thread_id="early-2", actor=early),
        ],
        str(landing),
        SOURCE,
        "late-2",
    )
    # ...and an earlier post of theirs, inside the lookback window, landed only in the last
    # step: their first contribution moves earlier and the step-1 post becomes a return.
    row = _row(SOURCE, "discourse", "thread", "early-1", "2025-03-28T09:00:00Z", thread_id="early-1", actor=early)
    write_landing([row], str(landing), SOURCE, RELANDED)


def _edit(landing: Path) -> None:
    """A reply landed in step 1, edited (new parent, new time that day) and landed again."""
    row = _row(
        SOURCE,
        "discourse",
        "reply",
        "edited",
        "2025-03-31T08:00:00Z",
        thread_id="t1",
        parent_id="1",
        actor=actor("discourse", "m2"),
        parent_actor=actor("discourse", "m3"),
    )
    write_landing([row], str(landing), SOURCE, "first")
    edited = dict(
        row,
        occurred_at=datetime(2025, 3, 31, 20, tzinfo=UTC),
        parent_actor=actor("discourse", "m5"),
        extracted_at=datetime(2030, 1, 2, tzinfo=UTC),
        run_id="edit",
    )
    write_landing([edited], str(landing), SOURCE, "edit")


def _copy(
    src: Path, dst: Path, low: str | None, high: str | None, skip_run: str | None = None, only_run: str | None = None
) -> list[Path]:
    copied = []
    for part in sorted(src.glob("*/dt=*")):
        if (low is None or part.name >= low) and (high is None or part.name < high):
            for f in part.glob("*.parquet"):
                if f.stem != skip_run and only_run in (None, f.stem):
                    target = dst / f.relative_to(src)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, target)
                    copied.append(target)
    return copied


def _tables(path: str) -> dict[str, list[tuple]]:
    con = duckdb.connect(path, read_only=True)
    try:
        names = [f"marts.{m}" for m in MARTS] + [f"intermediate.{m}" for m in INTERMEDIATES]
        return {n: sorted(con.execute(f"select * from {n}").fetchall(), key=repr) for n in names}
    finally:
        con.close()


def _january_density(path: str):
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(
            "select value from marts.community_kpis_monthly "
            "where month = '2025-01-01' and platform = 'discourse' and kpi = 'interaction_density'"
        ).fetchone()[0]
    finally:
        con.close()


def _staged(path: str) -> int:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute("select count(*) from staging.stg_landing__events").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    full_root, daily_root = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("daily")
    full_cfg, daily_cfg = _config(full_root), _config(daily_root)
    landing, daily_landing = Path(full_cfg.path("landing")), Path(daily_cfg.path("landing"))
    write_mixed_community(landing)
    _late_cases(landing)
    _edit(landing)
    full = build(full_cfg, full_refresh=True, target_path=full_root / "t")

    old = _copy(landing, daily_landing, None, STEP_1, skip_run=RELANDED)
    first = build(daily_cfg, target_path=daily_root / "t")
    january_before = _january_density(warehouse_path(daily_cfg))
    rows_before = _staged(warehouse_path(daily_cfg))
    # Step 1 crosses from March into April; the edited copy is not extracted yet.
    step_1 = _copy(landing, daily_landing, STEP_1, STEP_2, skip_run="edit")
    build(daily_cfg, target_path=daily_root / "t")
    step_2 = (
        _copy(landing, daily_landing, STEP_2, None)
        + _copy(landing, daily_landing, STEP_1, STEP_2)
        + _copy(landing, daily_landing, None, STEP_1, only_run=RELANDED)
    )
    # A partition well before the lookback window, made unreadable.
    oldest = next(p for p in sorted(old) if p.parent.parent.name == SOURCE)
    oldest.write_bytes(b"not parquet: an incremental build must not open this file")
    daily = build(daily_cfg, target_path=daily_root / "t")
    return full_cfg, daily_cfg, full, first, daily, rows_before, january_before, len(step_1), len(step_2)


def test_incremental_build_adds_the_new_partitions(builds):
    full_cfg, daily_cfg, full, first, daily, rows_before, _, step_1, step_2 = builds
    print(f"dbt build: full refresh {full.seconds} s, initial {first.seconds} s, incremental {daily.seconds} s")
    assert step_1 >= 5 and step_2 > 10
    assert rows_before < _staged(warehouse_path(daily_cfg)) == _staged(warehouse_path(full_cfg))
    # Production builds leave unit tests to CI.
    assert daily.unit_tests_passed == 0 and daily.models_passed > 20


def test_incremental_and_full_refresh_warehouses_are_identical(builds):
    full_cfg, daily_cfg, *_ = builds
    full, daily = _tables(warehouse_path(full_cfg)), _tables(warehouse_path(daily_cfg))
    for name in full:
        assert full[name], f"{name} is empty: the comparison would prove nothing"
        assert daily[name] == full[name], name


def test_a_new_member_changes_the_month_of_older_replies_to_them(builds):
    full_cfg, daily_cfg, _, _, _, _, january_before, _, _ = builds
    january = _january_density(warehouse_path(daily_cfg))
    assert january is not None and january_before is not None
    assert january > january_before
    assert january == _january_density(warehouse_path(full_cfg))


def test_late_reply_and_edit_reach_the_intermediates(builds):
    _, daily_cfg, *_ = builds
    con = duckdb.connect(warehouse_path(daily_cfg), read_only=True)
    try:
        members = con.execute(
            "select count(*) from intermediate.int_members_first_contributions "
            "where platform = 'discourse' and member_key = ? and first_month = '2025-05-01'",
            [actor("discourse", "newbie")],
        ).fetchone()[0]
        edited = con.execute(
            "select occurred_at, parent_actor, run_id from staging.stg_landing__events where record_id = 'edited'"
        ).fetchall()
    finally:
        con.close()
    assert members == 1
    assert edited == [(datetime(2025, 3, 31, 20), actor("discourse", "m5"), "edit")]


def test_old_open_thread_and_earlier_post_landed_late(builds):
    """The state the incremental models keep moves the right way: an old unanswered thread
    gets its first response, a member's first contribution moves earlier (and the post that
    was their first becomes a return)."""
    _, daily_cfg, *_ = builds
    con = duckdb.connect(warehouse_path(daily_cfg), read_only=True)
    try:
        thread = con.execute(
            "select first_response_at from intermediate.int_threads_first_responses where thread_id = 'old-open'"
        ).fetchall()
        member = con.execute(
            "select first_contributed_at, returned_within_30_days from intermediate.int_members_first_contributions "
            "where member_key = ?",
            [actor("discourse", "early")],
        ).fetchall()
    finally:
        con.close()
    assert thread == [(datetime(2025, 4, 25, 9),)]
    assert member == [(datetime(2025, 3, 28, 9), True)]


def test_full_refresh_reads_every_partition(builds):
    """The counterpart: a full refresh does open the old (now unreadable) file and fails."""
    _, daily_cfg, *_ = builds
    from agora.warehouse import WarehouseError

    with pytest.raises(WarehouseError):
        build(daily_cfg, full_refresh=True, target_path=Path(daily_cfg.path("warehouse")) / "t_full")


def _pg_tables(settings, names: list[str]) -> dict[str, list[tuple]]:
    con = settings.connect()
    try:
        out = {}
        with con.cursor() as cur:
            for name in names:
                cur.execute(f"select * from {name}")
                out[name] = cur.fetchall()
        return out
    finally:
        con.close()


def _close(a, b) -> bool:
    # PostgreSQL computes some intermediate ratios as numeric; marts cast them to double.
    a, b = (float(v) if isinstance(v, Decimal) else v for v in (a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _rounded(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda r: repr(tuple(round(v, 6) if isinstance(v, float) else v for v in r)))


def test_daily_builds_on_postgres_equal_the_full_refresh(builds, postgres, tmp_path_factory, monkeypatch):
    """The same daily steps on the postgres target (the engine-neutral incremental SQL)."""
    from agora.pg_landing import PgSettings

    full_cfg = builds[0]
    root = tmp_path_factory.mktemp("pg_daily")
    cfg = _config(root)
    landing, daily_landing = Path(full_cfg.path("landing")), Path(cfg.path("landing"))
    postgres.create_database("agora_incremental")
    for name, value in {
        "AGORA_PG_HOST": postgres.host,
        "AGORA_PG_PORT": str(postgres.port),
        "AGORA_PG_USER": SUPERUSER,
        "AGORA_PG_PASSWORD": PASSWORD,
        "AGORA_PG_DBNAME": "agora_incremental",
    }.items():
        monkeypatch.setenv(name, value)
    _copy(landing, daily_landing, None, STEP_1, skip_run=RELANDED)
    build(cfg, target_path=root / "t", target="postgres")
    _copy(landing, daily_landing, STEP_1, STEP_2, skip_run="edit")
    build(cfg, target_path=root / "t", target="postgres")
    _copy(landing, daily_landing, STEP_2, None)
    _copy(landing, daily_landing, STEP_1, STEP_2)
    _copy(landing, daily_landing, None, STEP_1, only_run=RELANDED)
    build(cfg, target_path=root / "t", target="postgres")

    full = _tables(warehouse_path(full_cfg))
    daily = _pg_tables(PgSettings.from_env(), list(full))
    for name, rows in full.items():
        assert len(daily[name]) == len(rows), name
        for d, p in zip(_rounded(rows), _rounded(daily[name]), strict=True):
            assert all(_close(a, b) for a, b in zip(d, p, strict=True)), (name, d, p)
