"""The dbt project, for real: `dbt build` on DuckDB over synthetic landing data.

One small community is built once per module and checked by hand: every expected number
below is worked out in the comments of `_community`.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agora.config import ConfigError, load_config
from agora.envelope import ENVELOPE_SCHEMA
from agora.warehouse import PROJECT_DIR, WarehouseError, build, dbt_env, parse, run_dbt, warehouse_path
from tests.conftest import write_config
from tests.landing_factory import (
    EXTRACTED_AT,
    LandingFactory,
    write_feedback,
    write_learnings,
    write_survey,
    write_team_activity,
)

TARGETS = {"returning_newcomer_rate": 0.4, "nps": 30.0, "median_hours_to_first_response": 24.0}

MART_COLUMNS = {
    "community_kpis_monthly": [
        "month",
        "platform",
        "kpi",
        "value",
        "group_size",
        "is_suppressed",
        "release",
        "noise_scale",
    ],
    "cohort_retention": [
        "cohort_month",
        "platform",
        "months_since_first",
        "retained_members",
        "retention_rate",
        "group_size",
        "is_suppressed",
    ],
    "feedback_loop_monthly": [
        "month",
        "channel",
        "received",
        "acted_on",
        "closed_loop_rate",
        "median_days_to_action",
        "group_size",
        "is_suppressed",
        "withheld_for_quarter",
    ],
    "feedback_loop_quarterly": [
        "quarter",
        "received",
        "acted_on",
        "responded",
        "closed_loop_rate",
        "median_days_to_action",
        "group_size",
        "is_suppressed",
    ],
    "nps_quarterly": [
        "quarter",
        "respondents",
        "promoters_share",
        "detractors_share",
        "nps",
        "group_size",
        "is_suppressed",
    ],
    "team_activity_monthly": ["month", "activity_kind", "activities"],
    "learnings": ["learned_on", "title", "text", "tags", "kpis"],
    "kpi_catalog": ["kpi", "kind", "nature", "definition", "unit", "direction", "target", "mart", "origin", "release"],
}


def _config(directory: Path, k_min: int = 5, targets: dict | None = None):
    path = write_config(
        directory,
        [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}],
        privacy={"k_min": k_min},
        kpis={"targets": targets or {}},
    )
    return load_config(path)


def _community(landing: Path) -> None:
    """Six members in January 2025, three in February; k_min 5.

    January: members m1..m6 each open a thread (T1..T6); staff s1 and bot b1 reply too.
      contributions 11 (m1 2, m2 1, m3 2, m4 2, m5 3, m6 1), active 6, new 6.
      Returning newcomers: m1 (again on 1 Feb = day 30), m3 (next day), m5 (two days later);
      not m2 (day 38), m4 (second post the same day), m6 (never) -> 3/6 = 0.5.
      First responses by another non-bot account: T1 2 h (staff; the self-reply and bot
      don't count), T2 4 h, T3 30 h, T4 72 h, T5 never, T6 1 h (opened 23:30 UTC on
      31 Jan: a January thread) -> median of 5 answered = 4 h; within 48 h 4 of 6.
    February: m1, m2 and newcomer m7 -> active 3 < k_min: suppressed (NULL); retention
      from January = 2/6 over a group of 6: published.
    """
    forum = LandingFactory(landing, staff={"s1"}, bots={"b1"})
    t1 = forum.thread("m1", "2025-01-02T10:00:00Z")
    forum.reply("m1", "2025-01-02T11:00:00Z", t1)
    forum.reply("s1", "2025-01-02T12:00:00Z", t1)
    t2 = forum.thread("m2", "2025-01-03T10:00:00Z")
    forum.reply("b1", "2025-01-03T10:05:00Z", t2)
    forum.reply("m3", "2025-01-03T14:00:00Z", t2)
    t3 = forum.thread("m3", "2025-01-04T10:00:00Z")
    forum.reply("m4", "2025-01-05T16:00:00Z", t3)
    t4 = forum.thread("m4", "2025-01-05T10:00:00Z")
    forum.reply("m5", "2025-01-08T10:00:00Z", t4)
    t5 = forum.thread("m5", "2025-01-06T10:00:00Z")
    forum.reply("m5", "2025-01-06T11:00:00Z", t5)
    forum.reply("b1", "2025-01-06T12:00:00Z", t5)
    t6 = forum.thread("m6", "2025-01-31T23:30:00Z")
    forum.reply("m1", "2025-02-01T00:30:00Z", t6)
    t7 = forum.thread("m2", "2025-02-10T10:00:00Z")
    forum.reply("m7", "2025-02-10T11:00:00Z", t7)
    forum.write("run1")
    # An overlapping rerun lands T1's records again with a later extracted_at: counted once.
    forum.write("run2", rows=forum.rows[:3], extracted_at=EXTRACTED_AT.replace(year=2031))

    # Q1: 6 answers, promoters 4, detractors 1 -> NPS 50. Q2: 2 answers -> suppressed.
    write_survey(
        landing,
        [(f"2025-0{1 + i % 3}-15T12:00:00Z", s) for i, s in enumerate([10, 9, 9, 7, 3, 10])]
        + [("2025-04-02T08:00:00Z", 10), ("2025-05-02T08:00:00Z", 2)],
    )
    # 5 items in January: 3 acted on, 2 responded to.
    write_feedback(
        landing,
        [
            {
                "id": f"f{i}",
                "channel": "forum",
                "status": "closed" if i < 2 else "open",
                "received_at": f"2025-01-1{i}T09:00:00Z",
                "acted_at": f"2025-01-1{i + 2}T09:00:00Z" if i < 3 else None,
                "responded_at": f"2025-01-2{i}T09:00:00Z" if i < 2 else None,
                "summary": "Asked for a clearer onboarding page",
            }
            for i in range(5)
        ],
    )
    write_learnings(
        landing,
        [
            {
                "date": "2025-01-20",
                "title": "Welcome threads help",
                "text": "Newcomers who got a reply within a day came back.",
                "tags": ["onboarding"],
                "kpis": ["returning_newcomer_rate"],
            }
        ],
    )
    write_team_activity(landing, [("2025-01-09", "talk", "Meetup talk"), ("2025-01-23", "talk", "Conference talk")])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("community")
    cfg = _config(root, k_min=5, targets=TARGETS)
    _community(Path(cfg.path("landing")))
    with pytest.MonkeyPatch.context() as mp:
        # A host far east of UTC: months must still be UTC months (T6 stays in January).
        mp.setenv("TZ", "Pacific/Kiritimati")
        result = build(cfg, target_path=root / "dbt_target", unit_tests=True)
    con = duckdb.connect(warehouse_path(cfg), read_only=True)
    yield cfg, result, con, root / "dbt_target"
    con.close()


def _kpi(con, month: str, kpi: str, platform: str = "discourse"):
    return con.execute(
        "select value, group_size, is_suppressed from marts.community_kpis_monthly "
        "where month = ? and platform = ? and kpi = ?",
        [month, platform, kpi],
    ).fetchone()


def test_build_runs_models_unit_tests_and_data_tests(built):
    _, result, _, _ = built
    models = {p.stem for p in (PROJECT_DIR / "models").rglob("*.sql")}
    assert result.models_passed == len(models)
    assert result.unit_tests_passed >= 3
    assert result.tests_passed >= 40
    assert result.seeds_passed == 1
    print(f"dbt build: {result.seconds} s, {result.models_passed} models, {result.tests_passed} tests")


def test_marts_have_the_contract_columns_and_nothing_else(built):
    _, _, con, _ = built
    tables = {
        t: [
            c
            for (c,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                [t],
            ).fetchall()
        ]
        for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    }
    assert tables == MART_COLUMNS
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'community_kpis_monthly'"
        ).fetchall()
    )
    assert types == {
        "month": "DATE",
        "platform": "VARCHAR",
        "kpi": "VARCHAR",
        "value": "DOUBLE",
        "group_size": "BIGINT",
        "is_suppressed": "BOOLEAN",
        "release": "VARCHAR",
        "noise_scale": "DOUBLE",
    }


def test_hand_checked_january(built):
    _, _, con, _ = built
    assert _kpi(con, "2025-01-01", "active_members") == (6.0, 6, False)
    assert _kpi(con, "2025-01-01", "contributions") == (11.0, 6, False)
    assert _kpi(con, "2025-01-01", "new_members") == (6.0, 6, False)
    assert _kpi(con, "2025-01-01", "returning_newcomer_rate") == (0.5, 6, False)
    assert _kpi(con, "2025-01-01", "median_hours_to_first_response") == (4.0, 5, False)
    value, size, suppressed = _kpi(con, "2025-01-01", "response_rate_48h")
    assert (round(value, 4), size, suppressed) == (round(4 / 6, 4), 6, False)
    # The `all` rollup of a single platform equals it.
    assert _kpi(con, "2025-01-01", "active_members", "all") == (6.0, 6, False)


def test_small_groups_are_suppressed(built):
    _, _, con, _ = built
    assert _kpi(con, "2025-02-01", "active_members") == (None, 3, True)
    assert _kpi(con, "2025-02-01", "contributions") == (None, 3, True)
    assert _kpi(con, "2025-02-01", "new_members") == (None, 1, True)
    # Retention describes last month's 6 members: published.
    value, size, suppressed = _kpi(con, "2025-02-01", "retention_rate")
    assert (round(value, 4), size, suppressed) == (round(2 / 6, 4), 6, False)
    # No mart row anywhere shows a value for a group below k_min.
    leaks = con.execute(
        "select count(*) from marts.community_kpis_monthly where group_size < 5 and (value is not null or not is_suppressed)"
    ).fetchone()[0]
    assert leaks == 0
    assert con.execute("select nps, group_size from marts.nps_quarterly where quarter = '2025-04-01'").fetchone() == (
        None,
        2,
    )


def test_team_marts(built):
    _, _, con, _ = built
    assert con.execute(
        "select respondents, nps, is_suppressed from marts.nps_quarterly where quarter = '2025-01-01'"
    ).fetchone() == (6, 50.0, False)
    assert con.execute(
        "select received, acted_on, closed_loop_rate, median_days_to_action from marts.feedback_loop_monthly "
        "where month = '2025-01-01' and channel = 'all'"
    ).fetchone() == (5, 3, 0.4, 2.0)
    assert con.execute("select * from marts.team_activity_monthly").fetchall() == [(date(2025, 1, 1), "talk", 2)]
    assert con.execute("select title, tags, kpis from marts.learnings").fetchall() == [
        ("Welcome threads help", "onboarding", "returning_newcomer_rate")
    ]


def test_cohort_retention(built):
    _, _, con, _ = built
    rows = con.execute(
        "select months_since_first, retained_members, retention_rate, group_size from marts.cohort_retention "
        "where platform = 'discourse' and cohort_month = '2025-01-01' order by 1"
    ).fetchall()
    # 2 retained < k_min: the count is not published, the share of the cohort of 6 is.
    assert rows == [(0, 6, 1.0, 6), (1, None, 2 / 6, 6)]


def test_kpi_catalog_has_targets_from_the_config(built):
    _, _, con, _ = built
    catalog = {
        k: (kind, target)
        for k, kind, target in con.execute("select kpi, kind, target from marts.kpi_catalog").fetchall()
    }
    for name in (
        "contributions",
        "active_members",
        "new_members",
        "returning_newcomer_rate",
        "retention_rate",
        "median_hours_to_first_response",
        "response_rate_48h",
    ):
        assert name in catalog
    assert catalog["returning_newcomer_rate"] == ("result", 0.4)
    assert catalog["nps"][1] == 30.0
    assert catalog["contributions"] == ("activity", None)
    published = {k for (k,) in con.execute("select distinct kpi from marts.community_kpis_monthly").fetchall()}
    assert published <= set(catalog)


def test_marts_hold_no_pseudonyms(built):
    _, _, con, _ = built
    hexes = re.compile(r"[0-9a-f]{64}")
    for table in MART_COLUMNS:
        for row in con.execute(f"select * from marts.{table}").fetchall():
            assert not any(isinstance(v, str) and hexes.search(v) for v in row), table


def test_manifest_declares_disclosure_for_every_mart(built):
    _, _, _, target = built
    manifest = json.loads((target / "manifest.json").read_text())
    marts = {n["name"]: n["config"]["meta"] for n in manifest["nodes"].values() if n.get("schema") == "marts"}
    assert set(marts) == set(MART_COLUMNS)
    assert marts["community_kpis_monthly"]["disclosure"] == {
        "group_size": "group_size",
        "suppressed": "is_suppressed",
        "values": ["value"],
    }
    assert marts["kpi_catalog"]["disclosure"] == "none"
    for node in manifest["nodes"].values():
        if node.get("schema") == "marts":
            assert node["config"]["contract"]["enforced"], node["name"]
            assert node["description"].strip(), node["name"]
            assert set(node["columns"]) == set(MART_COLUMNS[node["name"]]), node["name"]
            undocumented = [c for c, col in node["columns"].items() if not col["description"].strip()]
            assert not undocumented, (node["name"], undocumented)


def test_parse_works_with_no_settings(tmp_path, monkeypatch):
    for name in ("AGORA_WAREHOUSE_PATH", "AGORA_LANDING_ROOT", "AGORA_K_MIN", "AGORA_KPI_TARGETS", "AGORA_COMMUNITY"):
        monkeypatch.delenv(name, raising=False)
    manifest = parse(None, target_path=tmp_path / "target")
    nodes = json.loads(manifest.read_text())["nodes"]
    assert "model.agora.community_kpis_monthly" in nodes


def test_dbt_env_from_config(tmp_path):
    cfg = _config(tmp_path, k_min=7, targets={"nps": 20})
    env = dbt_env(cfg)
    assert env["AGORA_K_MIN"] == "7"
    assert json.loads(env["AGORA_KPI_TARGETS"]) == {"nps": 20.0}
    assert env["AGORA_WAREHOUSE_PATH"] == str(tmp_path / "data" / "warehouse" / "agora.duckdb")
    assert env["AGORA_LANDING_ROOT"] == str(tmp_path / "data" / "landing")
    with pytest.raises(ConfigError, match="kpis.targets: unknown KPI 'happiness'"):
        dbt_env(_config(tmp_path, targets={"happiness": 1}))


def test_no_landing_data_then_staging_without_team_files_then_a_named_failure(tmp_path):
    """One workspace, three dbt runs sharing a parse: (1) an empty landing zone stops dbt with
    a readable message; (2) forum files only, so no title/text column exists anywhere: staging
    still builds; (3) a bad row fails the build with a message naming the failing test."""
    cfg = _config(tmp_path)
    target = tmp_path / "target"
    landing = Path(cfg.path("landing"))
    with pytest.raises(WarehouseError, match="no landing data under"):
        build(cfg)
    # dbt itself says so too (Cosmos runs it without our pre-check).
    landing.mkdir(parents=True)
    with pytest.raises(WarehouseError, match="no landing data: no Parquet files match"):
        run_dbt(cfg, ["build", "--select", "stg_landing__events"], target_path=target)

    forum = LandingFactory(landing)
    forum.thread("m1", "2025-01-02T10:00:00Z")
    forum.write()
    run_dbt(cfg, ["build", "--select", "path:models/staging"], target_path=target)
    con = duckdb.connect(warehouse_path(cfg), read_only=True)
    assert con.execute("select count(*) from staging.stg_learnings__entries").fetchone() == (0,)
    assert con.execute("select count(*) from staging.stg_discourse__posts").fetchone() == (1,)
    con.close()

    bad = dict(forum.rows[0], record_id="broken", occurred_at=None)
    (landing / "forum" / "dt=2025-01-03").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([bad], schema=ENVELOPE_SCHEMA), landing / "forum" / "dt=2025-01-03" / "bad.parquet"
    )
    with pytest.raises(WarehouseError) as err:
        run_dbt(cfg, ["build", "--select", "stg_landing__events"], target_path=target)
    assert "test not_null_stg_landing__events_occurred_at: fail" in str(err.value)


def test_dbt_target_from_argument_env_or_default(monkeypatch):
    from agora.warehouse import dbt_target

    monkeypatch.delenv("AGORA_DBT_TARGET", raising=False)
    assert dbt_target() == "duckdb"
    monkeypatch.setenv("AGORA_DBT_TARGET", "postgres")
    assert dbt_target() == "postgres"
    assert dbt_target("duckdb") == "duckdb"
    with pytest.raises(ConfigError, match="snowflake"):
        dbt_target("snowflake")
