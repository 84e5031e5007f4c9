"""The same dbt project on Apache Spark (dbt-spark, in-process `session`, local[2]) gives the
same marts as on DuckDB, on a full build and after a daily incremental step; the mart
contract, publish, `agora summary` and erasure work on a Spark warehouse.

Heavy on purpose and few: every Spark build is one dbt process that starts a JVM, so the
module builds Spark three times (full with unit tests, daily, erasure rebuild) and checks
everything on those builds. Java 17 and the `spark` extra are installed when missing
(tests/spark.py).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import duckdb
import pytest

from agora import pipeline, privacy
from agora.config import load_config
from agora.warehouse import build, spark_dir, warehouse_path
from tests.conftest import MARTS, write_config
from tests.landing_factory import LandingFactory, actor, write_mixed_community
from tests.spark import ensure_spark
from tests.test_incremental import INTERMEDIATES, RELANDED, STEP_2, _copy, _edit, _late_cases

pytestmark = pytest.mark.timeout(3600)
ERASED = "4242"


def _config(root: Path, landing: Path, kind: str):
    root.mkdir(parents=True, exist_ok=True)
    return load_config(
        write_config(
            root,
            [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}],
            privacy={"k_min": 5, "requests": "requests.csv"},
            kpis={"targets": {"response_rate_48h": 0.8}},
            paths={"landing": str(landing)},
            warehouse={"kind": kind},
        )
    )


def _marts(path: str) -> dict[str, list[tuple]]:
    con = duckdb.connect(path, read_only=True)
    try:
        out = {}
        for mart in MARTS:
            columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'marts' and table_name = ? order by ordinal_position",
                    [mart],
                ).fetchall()
            ]
            rows = con.execute(f"select {', '.join(columns)} from marts.{mart}").fetchall()  # noqa: S608
            key = lambda r: repr(tuple(round(v, 6) if isinstance(v, float) else v for v in r))  # noqa: E731
            out[mart] = sorted(rows, key=key)
        return out
    finally:
        con.close()


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _assert_equal_marts(spark: dict, duck: dict) -> None:
    for mart in MARTS:
        assert duck[mart], f"{mart} is empty: the comparison would prove nothing"
        assert len(spark[mart]) == len(duck[mart]), mart
        for s, d in zip(spark[mart], duck[mart], strict=True):
            assert all(_same(a, b) for a, b in zip(s, d, strict=True)), (mart, s, d)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    ensure_spark()
    root = tmp_path_factory.mktemp("spark")
    complete, landing = root / "complete", root / "landing"
    write_mixed_community(str(complete))
    # An account with a numeric id (an erasure request names ids), active on both days.
    forum = LandingFactory(complete, source="erasure_src", platform="discourse")
    for day in ("2025-02-03", "2025-03-05", "2025-03-30"):
        forum.reply(ERASED, f"{day}T10:00:00Z", forum.thread("m2", f"{day}T09:00:00Z"))
    forum.write("erased-account")
    _late_cases(complete)
    _edit(complete)
    duck_cfg = _config(root / "duckdb", landing, "duckdb")
    spark_cfg = _config(root / "spark", landing, "spark")

    # Day one: everything before STEP_2 (without the late copies); both engines build in full.
    _copy(complete, landing, None, STEP_2, skip_run=RELANDED)
    duck_first = build(duck_cfg, full_refresh=True, target_path=root / "duck_t")
    spark_first = build(spark_cfg, full_refresh=True, target_path=root / "spark_t", unit_tests=True)
    first = {"duckdb": _marts(warehouse_path(duck_cfg)), "spark": _marts(warehouse_path(spark_cfg))}

    # The daily step: the remaining days, the edited copy and a post landed late.
    _copy(complete, landing, STEP_2, None)
    _copy(complete, landing, None, STEP_2, only_run=RELANDED)
    spark_daily = build(spark_cfg, target_path=root / "spark_t")
    duck_full = build(duck_cfg, full_refresh=True, target_path=root / "duck_t")
    daily = {"duckdb": _marts(warehouse_path(duck_cfg)), "spark": _marts(warehouse_path(spark_cfg))}
    return {
        "root": root,
        "duck_cfg": duck_cfg,
        "spark_cfg": spark_cfg,
        "results": (duck_first, spark_first, spark_daily, duck_full),
        "first": first,
        "daily": daily,
    }


def test_spark_builds_every_model_and_passes_data_and_unit_tests(builds):
    duck_first, spark_first, spark_daily, duck_full = builds["results"]
    print(
        f"dbt build: duckdb full {duck_first.seconds} s, spark full (with unit tests) {spark_first.seconds} s, "
        f"spark daily {spark_daily.seconds} s"
    )
    assert spark_first.models_passed == duck_first.models_passed >= 31
    assert spark_first.tests_passed == duck_first.tests_passed > 0
    assert spark_first.unit_tests_passed >= 10
    assert spark_daily.models_passed == duck_full.models_passed and spark_daily.tests_passed == duck_full.tests_passed
    assert spark_first.warehouse == spark_dir(builds["spark_cfg"])
    # Tables are Parquet files under the configured directory, beside the Derby metastore.
    tables = Path(spark_first.warehouse)
    assert list((tables / "marts.db" / "community_kpis_monthly").glob("*.parquet"))
    assert (tables / "metastore_db").is_dir()


def test_every_mart_equals_duckdb_on_a_full_build(builds):
    _assert_equal_marts(builds["first"]["spark"], builds["first"]["duckdb"])


def test_a_daily_step_on_spark_equals_a_full_refresh_on_duckdb(builds):
    _assert_equal_marts(builds["daily"]["spark"], builds["daily"]["duckdb"])
    # The step changed the marts: the comparison after it is not the first one again.
    assert builds["daily"]["duckdb"] != builds["first"]["duckdb"]


def test_daily_spark_intermediates_equal_a_full_refresh(builds):
    """Incremental models on Spark (copy-on-write delete+insert / replace_where) hold the
    same rows as DuckDB's full refresh, read from the Parquet files Spark wrote."""
    root = Path(spark_dir(builds["spark_cfg"]))
    duck = duckdb.connect(warehouse_path(builds["duck_cfg"]), read_only=True)
    try:
        for name in INTERMEDIATES:
            spark_rows = duckdb.sql(
                f"select * from read_parquet('{root}/intermediate.db/{name}/*.parquet')"  # noqa: S608
            ).fetchall()
            duck_rows = duck.execute(f"select * from intermediate.{name}").fetchall()  # noqa: S608
            assert len(spark_rows) == len(duck_rows) > 0, name
    finally:
        duck.close()


def test_mart_contract_publish_and_summary_on_spark(builds):
    cfg = builds["spark_cfg"]
    checked = pipeline.validate_marts(cfg)
    assert checked
    published = pipeline.publish(cfg)
    assert set(published["tables"]) == set(MARTS)
    month, lines = pipeline.kpi_summary(cfg)
    assert month is not None and {line.kpi for line in lines} >= {"active_members", "contributions"}
    con = duckdb.connect(published["serving_path"], read_only=True)
    try:
        schemas = {r[0] for r in con.execute("select distinct table_schema from information_schema.tables").fetchall()}
    finally:
        con.close()
    assert schemas == {"marts"}


def test_erasure_leaves_no_trace_under_the_spark_directory(builds):
    cfg = builds["spark_cfg"]
    gone = actor("discourse", ERASED)
    directory = spark_dir(cfg)

    def traces() -> int:
        total = 0
        for d, _, names in os.walk(directory):
            for name in names:
                path = os.path.join(d, name)
                if path.endswith(".parquet"):
                    rows = duckdb.sql(f"select * from read_parquet('{path}')").fetchall()  # noqa: S608
                    total += sum(gone in repr(row) for row in rows)
                else:
                    total += Path(path).read_bytes().count(gone.encode())
        return total

    assert traces() > 0, "the pseudonym was never in the Spark warehouse: the test would prove nothing"
    (Path(cfg.root) / "requests.csv").write_text(
        f"platform,account,kind,requested_at\ndiscourse,{ERASED},erasure,2025-06-01\n"
    )
    result = privacy.apply_requests(cfg)
    assert result.erasures == 1
    assert traces() == 0
    assert list(Path(directory, "marts.db").iterdir())
