"""A daily (incremental) build reads only new landing partitions and gives the same marts
as a full refresh.

One multi-platform community is landed in full in one place (the reference, built with
--full-refresh) and, in another, the way daily extracts would land it: the partitions
before a cutoff day first (initial build), then the later ones (incremental build). To
prove the incremental build does not reopen old partitions, an old file is replaced by
garbage before it runs: DuckDB would fail on it if it read it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from agora.config import load_config
from agora.warehouse import build, warehouse_path
from tests.conftest import write_config
from tests.landing_factory import write_mixed_community

MARTS = (
    "community_kpis_monthly",
    "cohort_retention",
    "feedback_loop_monthly",
    "nps_quarterly",
    "team_activity_monthly",
    "learnings",
    "kpi_catalog",
)
CUTOFF = "dt=2025-04-10"  # partitions sort by name = by UTC day


def _config(directory: Path):
    return load_config(
        write_config(
            directory,
            [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}],
            privacy={"k_min": 5},
        )
    )


def _copy_partitions(src: Path, dst: Path, *, before: bool) -> list[Path]:
    copied = []
    for part in sorted(src.glob("*/dt=*")):
        if (part.name < CUTOFF) == before:
            target = dst / part.relative_to(src)
            shutil.copytree(part, target)
            copied.append(target)
    return copied


def _marts(path: str) -> dict[str, list[tuple]]:
    con = duckdb.connect(path, read_only=True)
    try:
        return {m: sorted(con.execute(f"select * from marts.{m}").fetchall(), key=repr) for m in MARTS}
    finally:
        con.close()


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    full_root, daily_root = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("daily")
    full_cfg, daily_cfg = _config(full_root), _config(daily_root)
    write_mixed_community(full_cfg.path("landing"))
    full = build(full_cfg, full_refresh=True, target_path=full_root / "t")

    landing, daily_landing = Path(full_cfg.path("landing")), Path(daily_cfg.path("landing"))
    old = _copy_partitions(landing, daily_landing, before=True)
    first = build(daily_cfg, target_path=daily_root / "t")
    con = duckdb.connect(warehouse_path(daily_cfg), read_only=True)
    rows_before = con.execute("select count(*) from staging.stg_landing__events").fetchone()[0]
    con.close()
    new = _copy_partitions(landing, daily_landing, before=False)
    # A partition well before the lookback window, made unreadable.
    oldest = next(iter(sorted(old)[0].glob("*.parquet")))
    oldest.write_bytes(b"not parquet: an incremental build must not open this file")
    daily = build(daily_cfg, target_path=daily_root / "t")
    return full_cfg, daily_cfg, full, first, daily, rows_before, len(new)


def test_incremental_build_adds_the_new_partitions(builds):
    full_cfg, daily_cfg, full, first, daily, rows_before, new_partitions = builds
    print(f"dbt build: full refresh {full.seconds} s, initial {first.seconds} s, incremental {daily.seconds} s")
    assert new_partitions > 10
    con = duckdb.connect(warehouse_path(daily_cfg), read_only=True)
    rows_after = con.execute("select count(*) from staging.stg_landing__events").fetchone()[0]
    con.close()
    con = duckdb.connect(warehouse_path(full_cfg), read_only=True)
    rows_full = con.execute("select count(*) from staging.stg_landing__events").fetchone()[0]
    con.close()
    assert rows_before < rows_after == rows_full


def test_incremental_and_full_refresh_marts_are_identical(builds):
    full_cfg, daily_cfg, *_ = builds
    full, daily = _marts(warehouse_path(full_cfg)), _marts(warehouse_path(daily_cfg))
    for mart in MARTS:
        assert full[mart], f"{mart} is empty: the comparison would prove nothing"
        assert daily[mart] == full[mart], mart


def test_full_refresh_reads_every_partition(builds):
    """The counterpart: a full refresh does open the old (now unreadable) file and fails."""
    _, daily_cfg, *_ = builds
    from agora.warehouse import WarehouseError

    with pytest.raises(WarehouseError):
        build(daily_cfg, full_refresh=True, target_path=Path(daily_cfg.path("warehouse")) / "t_full")
