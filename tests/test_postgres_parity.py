"""The same dbt project on PostgreSQL gives the same marts as on DuckDB.

A multi-platform community is landed once; the warehouse is built on the default DuckDB
target and, after `agora.pg_landing` loads the landing zone, on a real PostgreSQL
(tests/postgres.py: installed from Debian packages when missing, on 127.0.0.1). Every row
of every mart must match, floats up to rounding.
"""

from __future__ import annotations

import json
import math
import os

import duckdb
import pytest

from agora.config import load_config
from agora.pg_landing import PgSettings, load_landing
from agora.warehouse import build, warehouse_path
from tests.conftest import MARTS, write_config
from tests.landing_factory import LandingFactory, actor, write_mixed_community
from tests.postgres import PASSWORD, SUPERUSER


def _rows(cursor, mart: str, columns: list[str]) -> list[tuple]:
    """All rows, in an order both engines agree on (floats rounded for sorting only)."""
    cursor.execute(f"select {', '.join(columns)} from marts.{mart}")
    return sorted(cursor.fetchall(), key=lambda r: repr(tuple(round(v, 6) if isinstance(v, float) else v for v in r)))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.fixture(scope="module")
def builds(tmp_path_factory, postgres):
    root = tmp_path_factory.mktemp("parity")
    cfg = load_config(
        write_config(
            root,
            [{"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}],
            privacy={"k_min": 5},
            kpis={"targets": {"response_rate_48h": 0.8}},
        )
    )
    write_mixed_community(cfg.path("landing"))
    duck = build(cfg, target_path=root / "duckdb_target", target="duckdb")
    postgres.create_database("agora_parity")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AGORA_PG_HOST": postgres.host,
            "AGORA_PG_PORT": str(postgres.port),
            "AGORA_PG_USER": SUPERUSER,
            "AGORA_PG_PASSWORD": PASSWORD,
            "AGORA_PG_DBNAME": "agora_parity",
        }.items():
            mp.setenv(name, value)
        pg = build(cfg, target_path=root / "pg_target", target="postgres")
        settings = PgSettings.from_env()
    return cfg, duck, pg, settings


def test_both_targets_build_everything(builds):
    _, duck, pg, _ = builds
    print(f"dbt build: duckdb {duck.seconds} s, postgres {pg.seconds} s")
    for result in (duck, pg):
        assert result.models_passed >= 31
        # Production builds may leave unit tests to CI (agora.warehouse.build): equal counts only.
        assert result.unit_tests_passed == duck.unit_tests_passed
        assert result.tests_passed == duck.tests_passed > 0
    assert pg.warehouse.startswith("postgresql://")


@pytest.mark.parametrize("mart", MARTS)
def test_every_mart_row_is_equal_on_duckdb_and_postgres(builds, mart):
    cfg, _, _, settings = builds
    con = duckdb.connect(warehouse_path(cfg), read_only=True)
    columns = [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'marts' and table_name = ? order by ordinal_position",
            [mart],
        ).fetchall()
    ]
    duck_rows = _rows(con.cursor(), mart, columns)
    con.close()
    pg = settings.connect()
    try:
        pg_rows = _rows(pg.cursor(), mart, columns)
    finally:
        pg.close()
    assert duck_rows, f"{mart} is empty: the comparison would prove nothing"
    assert len(duck_rows) == len(pg_rows)
    for d, p in zip(duck_rows, pg_rows, strict=True):
        assert all(_same(a, b) for a, b in zip(d, p, strict=True)), (mart, d, p)


def test_the_exact_counts_differential_privacy_adds_noise_to_are_equal_on_both_engines(builds, monkeypatch):
    """int_dp_counts_monthly (agora/dp.py's input), read the way the release reads it on each target."""
    from agora.dp import read_counts

    cfg, _, _, settings = builds
    duck = sorted(read_counts(cfg))
    for name, value in {
        "AGORA_DBT_TARGET": "postgres",
        "AGORA_PG_HOST": settings.host,
        "AGORA_PG_PORT": str(settings.port),
        "AGORA_PG_USER": settings.user,
        "AGORA_PG_PASSWORD": settings.password,
        "AGORA_PG_DBNAME": settings.dbname,
    }.items():
        monkeypatch.setenv(name, value)
    pg = sorted(read_counts(cfg))
    assert len(duck) > 20 and {r[2] for r in duck} >= {"active_members", "new_members", "contributions"}
    assert pg == duck


def test_community_kpis_cover_all_platforms_with_published_and_suppressed_values(builds):
    cfg, *_ = builds
    con = duckdb.connect(warehouse_path(cfg), read_only=True)
    platforms = {r[0] for r in con.execute("select distinct platform from marts.community_kpis_monthly").fetchall()}
    flags = {r[0] for r in con.execute("select distinct is_suppressed from marts.community_kpis_monthly").fetchall()}
    con.close()
    assert platforms == {"discourse", "github", "stackexchange", "x", "mastodon", "mediawiki", "all"}
    assert flags == {True, False}


def _landing_counts(settings: PgSettings) -> tuple[int, int, int]:
    con = settings.connect()
    with con.cursor() as cur:
        cur.execute("select count(*), count(distinct (source, record_type, record_id)) from landing.events")
        count, distinct = cur.fetchone()
        cur.execute("select count(*) from landing.events where title is not null")
        titled = cur.fetchone()[0]
    con.close()
    return count, distinct, titled


def test_landing_load_copies_only_new_or_changed_files(builds, tmp_path, postgres):
    """A daily load costs the new files, not the history; rewritten and vanished files are replaced."""
    import shutil

    import pyarrow.parquet as pq

    from agora.landing import landing_files

    cfg, *_ = builds
    root = tmp_path / "landing"
    shutil.copytree(cfg.path("landing"), root)
    postgres.create_database("agora_landing_files")
    settings = PgSettings(postgres.host, postgres.port, SUPERUSER, PASSWORD, "agora_landing_files")
    files = landing_files(str(root))
    file_rows = {f: pq.read_metadata(f).num_rows for f in files}

    first = load_landing(str(root), settings)
    count, distinct, titled = _landing_counts(settings)
    assert (first.files_loaded, first.files_removed) == (len(files), 0)
    assert first.rows == first.rows_loaded == count == distinct == sum(file_rows.values()) > 0
    assert titled > 0  # team sources keep title/text

    again = load_landing(str(root), settings)
    assert (again.files_loaded, again.files_removed, again.rows_loaded, again.rows) == (0, 0, 0, count)

    rewritten, gone = files[0], files[-1]
    table = pq.read_table(rewritten)
    pq.write_table(table.slice(0, len(table) - 1), rewritten)  # e.g. an erasure dropped a row
    os.remove(gone)
    changed = load_landing(str(root), settings)
    expected = sum(file_rows.values()) - 1 - file_rows[gone]
    assert (changed.files_loaded, changed.files_removed) == (1, 1)
    assert changed.rows_loaded == len(table) - 1
    assert changed.rows == _landing_counts(settings)[0] == expected

    full = load_landing(str(root), settings, full=True)
    assert full.files_loaded == len(files) - 1 and full.rows == expected


def test_a_full_landing_load_replaces_the_table_so_removed_rows_leave_its_files(tmp_path, postgres):
    """Why the erasure rebuild reloads landing.events in full: a DELETE (the incremental load
    of a rewritten file) leaves the removed rows in the table's pages as dead tuples; the full
    load builds a new table and drops the old one, whose files PostgreSQL truncates at commit."""
    from agora.privacy import scrub_files

    postgres.create_database("agora_landing_bytes")
    settings = PgSettings(postgres.host, postgres.port, SUPERUSER, PASSWORD, "agora_landing_bytes")
    directory = (
        postgres.data_dir
        / "base"
        / postgres.psql("select oid from pg_database where datname = 'agora_landing_bytes'").strip()
    )
    root = tmp_path / "landing"
    probe = LandingFactory(str(root), source="forum_probe", platform="discourse")
    thread = probe.thread("7007", "2025-05-10T10:00:00Z", thread_id="bytes-t1")
    probe.reply("m1", "2025-05-10T11:00:00Z", thread)
    probe.reply("7007", "2025-05-11T09:00:00Z", thread)
    probe.write("probe")
    erased = actor("discourse", "7007")
    load_landing(str(root), settings)
    postgres.psql("checkpoint")
    assert _files_holding(directory, erased)

    removed, _, _ = scrub_files(str(root), {erased})  # what an erasure does to the landing file
    assert sum(removed.values()) == 2
    load_landing(str(root), settings)  # incremental: DELETE of the rewritten file's rows
    postgres.psql("checkpoint")
    assert _files_holding(directory, erased), "deleted rows stay in the pages as dead tuples"
    assert _landing_counts(settings)[0] == 1

    load_landing(str(root), settings, full=True)
    postgres.psql("checkpoint")
    assert _files_holding(directory, erased) == []
    assert _landing_counts(settings)[0] == 1


def test_landing_load_keeps_awkward_text_and_tags_exactly(tmp_path, postgres):
    """COPY's text format and array literals need escaping: what lands is what PostgreSQL holds."""
    from tests.landing_factory import write_learnings

    text = 'Tab\there, newline\nthere, back\\slash, "quotes", {braces}, comma, and \\N'
    write_learnings(tmp_path, [{"date": "2025-01-20", "title": "Awkward", "text": text, "tags": ['a "b"', "c,d"]}])
    postgres.create_database("agora_copy")
    settings = PgSettings(postgres.host, postgres.port, SUPERUSER, PASSWORD, "agora_copy")
    assert load_landing(str(tmp_path), settings).rows == 1
    con = settings.connect()
    with con.cursor() as cur:
        cur.execute("select text, tags, occurred_at at time zone 'UTC' from landing.events")
        stored_text, tags, occurred = cur.fetchone()
    con.close()
    assert stored_text == text
    assert tags == ['a "b"', "c,d"]
    assert occurred.isoformat() == "2025-01-20T00:00:00"


# -- the production profile from agora.yml: `agora run` with warehouse and serving on PostgreSQL --

WAREHOUSE_ROLE, WAREHOUSE_PASSWORD = "agora_dbt", "warehouse-test-only"
ERASED_ID = "424242"
PUBLISHER_PASSWORD, READER_PASSWORD = "publisher-test-only", "reader-test-only"


@pytest.fixture(scope="module")
def pg_run(tmp_path_factory, postgres):
    """`agora run` (the CLI, a subprocess) on a config whose warehouse and serving are PostgreSQL."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from agora.config import PostgresServing
    from agora.publish_pg import provision

    root = tmp_path_factory.mktemp("pg_run")
    if not postgres.psql(f"select 1 from pg_roles where rolname = '{WAREHOUSE_ROLE}'").strip():
        postgres.psql(f"create role {WAREHOUSE_ROLE} login password '{WAREHOUSE_PASSWORD}'")
    postgres.psql(f"create database agora_wh_run owner {WAREHOUSE_ROLE}")
    serving = {"kind": "postgres", "host": postgres.host, "port": postgres.port, "database": "agora_serving_run"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
        provision(postgres.url(), PostgresServing(**serving), READER_PASSWORD)
    (root / "inputs").mkdir()
    (root / "inputs" / "survey.csv").write_text("response_id,answered_at,score\nR1,2025-03-02,9\nR2,2025-03-03,4\n")
    path = write_config(
        root,
        [{"name": "late_survey", "type": "survey", "path": "inputs/survey.csv"}],
        privacy={"k_min": 5},
        warehouse={
            "kind": "postgres",
            "host": postgres.host,
            "port": postgres.port,
            "database": "agora_wh_run",
            "user": WAREHOUSE_ROLE,
            "password_env": "WAREHOUSE_SECRET",
        },
        serving=serving,
    )
    cfg = load_config(path)
    write_mixed_community(cfg.path("landing"))
    # A member with a numeric id (erasure requests take ids without a lookup), erased below.
    probe = LandingFactory(cfg.path("landing"), source="forum_probe", platform="discourse")
    thread = probe.thread(ERASED_ID, "2025-05-10T10:00:00Z", thread_id="probe-t1")
    probe.reply("m1", "2025-05-10T11:00:00Z", thread)
    probe.reply(ERASED_ID, "2025-05-11T09:00:00Z", thread)
    probe.write("probe")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGORA_PG_", "AGORA_DBT_TARGET"))}
    env.update(WAREHOUSE_SECRET=WAREHOUSE_PASSWORD, AGORA_SERVING_PASSWORD=PUBLISHER_PASSWORD)
    agora = str(Path(sys.executable).with_name("agora"))
    run = subprocess.run(
        [agora, "run", "--config", str(path), "--since", "2025-01-01T00:00:00Z", "--until", "2025-06-01T00:00:00Z"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = subprocess.run([agora, "summary", "--config", str(path)], env=env, capture_output=True, text=True)
    return cfg, run, summary, serving


def test_agora_run_builds_validates_and_publishes_on_postgres(pg_run, postgres):
    cfg, run, summary, serving = pg_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "mart contract: ok" in run.stdout and "publish: ok" in run.stdout
    assert WAREHOUSE_PASSWORD not in run.stdout + run.stderr
    assert not (cfg.resolve("data/warehouse") / "agora.duckdb").exists(), "no DuckDB warehouse on this profile"

    from agora.publish_pg import _read_marts_postgres

    warehouse = PgSettings(postgres.host, postgres.port, WAREHOUSE_ROLE, WAREHOUSE_PASSWORD, "agora_wh_run").connect()
    reader = PgSettings(postgres.host, postgres.port, "agora_reader", READER_PASSWORD, serving["database"]).connect()
    try:
        built, published = _read_marts_postgres(warehouse), _read_marts_postgres(reader)
        with reader.cursor() as cur:
            with pytest.raises(Exception, match="read-only|permission denied"):
                cur.execute("delete from marts.kpi_catalog")
        reader.rollback()
        with warehouse.cursor() as cur:
            cur.execute("select count(*) from landing.events where source = 'late_survey'")
            assert cur.fetchone()[0] == 2  # extracted by this run, then loaded for dbt
    finally:
        warehouse.close()
        reader.close()
    assert set(built) >= set(MARTS)
    assert set(published) == set(built)
    for mart, (columns, rows) in built.items():
        assert published[mart][0] == columns, mart
        assert sorted(map(repr, published[mart][1])) == sorted(map(repr, rows)), mart
    assert built["community_kpis_monthly"][1], "marts are empty: the comparison would prove nothing"

    # The summary reads the published marts from PostgreSQL serving.
    assert summary.returncode == 0, summary.stderr[-2000:]
    assert "2025" in summary.stdout and "no published KPIs yet" not in summary.stdout, summary.stdout
    from agora.pipeline import kpi_summary

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
        month, lines = kpi_summary(cfg)
    active = next(line for line in lines if line.kpi == "active_members")
    names = columns_of(published, "community_kpis_monthly")
    expected = [
        dict(zip(names, r, strict=True))
        for r in published["community_kpis_monthly"][1]
        if dict(zip(names, r, strict=True))["kpi"] == "active_members"
    ]
    latest = max(r["month"] for r in expected if r["platform"] == "all")
    assert month == latest
    (row,) = [r for r in expected if r["platform"] == "all" and r["month"] == latest]
    assert active.value == pytest.approx(float(row["value"]))
    assert active.value is not None and active.value >= 5


def test_erasure_rebuilds_the_postgres_warehouse_and_republishes(pg_run, postgres, monkeypatch):
    """An erasure on the production profile: landing scrubbed, PostgreSQL warehouse rebuilt
    (landing.events reloaded, full refresh), serving republished, both searched."""
    from agora import privacy

    cfg, run, _, serving = pg_run
    assert run.returncode == 0
    monkeypatch.delenv("AGORA_DBT_TARGET", raising=False)
    monkeypatch.setenv("WAREHOUSE_SECRET", WAREHOUSE_PASSWORD)
    monkeypatch.setenv("AGORA_SERVING_PASSWORD", PUBLISHER_PASSWORD)
    erased = actor("discourse", ERASED_ID)
    with privacy.pg_warehouse(cfg) as conn:
        assert privacy.pg_rows_mentioning(conn, {erased}) >= 2  # landing.events and staging
        assert privacy.pg_staging_counts(conn, {erased})[erased] >= 2
    databases = {
        name: postgres.data_dir
        / "base"
        / postgres.psql(f"select oid from pg_database where datname = '{name}'").strip()
        for name in ("agora_wh_run", serving["database"])
    }
    postgres.psql("checkpoint")  # dirty pages reach the files (else a grep would see old files only)
    assert _files_holding(databases["agora_wh_run"], erased), "the warehouse's files hold the rows before"
    requests = cfg.resolve("requests.csv")
    requests.write_text(f"platform,account,kind,requested_at\ndiscourse,{ERASED_ID},erasure,2025-06-01\n")

    result = privacy.apply_requests(cfg, requests)

    done = result.completion
    assert done is not None and done.rebuilt and done.requests_completed == 1
    assert done.rows_removed["landing"] == 2 and done.rows_removed["warehouse"] >= 2
    with privacy.pg_warehouse(cfg) as conn:
        assert privacy.pg_rows_mentioning(conn, {erased}) == 0
        with conn.cursor() as cur:
            cur.execute("select count(*) from landing.events where source = 'forum_probe'")
            assert cur.fetchone()[0] == 1  # the other member's reply stays
    assert privacy.serving_rows_mentioning(cfg, {erased}) == 0
    assert not (cfg.resolve("data/warehouse") / "agora.duckdb").exists()
    (entry,) = [e for e in privacy.read_audit(cfg) if e.get("event") == "request"]
    assert entry["status"] == "completed" and ERASED_ID not in json.dumps(entry)
    reader = PgSettings(postgres.host, postgres.port, "agora_reader", READER_PASSWORD, serving["database"]).connect()
    try:
        with reader.cursor() as cur:
            cur.execute("select count(*) from marts.community_kpis_monthly")
            assert cur.fetchone()[0] > 0  # republished
    finally:
        reader.close()

    # No bytes left: no file of the warehouse database holds the pseudonym (tables, TOAST,
    # indexes, catalogs — pg_statistic included), nor any file of the serving database.
    postgres.psql("checkpoint")
    for database, directory in databases.items():
        assert len(list(directory.iterdir())) > 100, directory  # the database's relation files
        assert _files_holding(directory, erased) == [], database
    # The WAL still holds it (written when the rows were loaded) until its segments go:
    # docs/privacy.md gives the procedure, checked here — with wal_recycle off, a WAL
    # switch and a checkpoint, twice, remove every segment written before the erasure.
    wal = postgres.data_dir / "pg_wal"
    assert _files_holding(wal, erased), "the rows were loaded through the WAL: it must show them"
    postgres.psql("alter system set wal_recycle = off")
    postgres.psql("select pg_reload_conf()")
    try:
        for _ in range(2):
            postgres.psql("select pg_switch_wal()")
            postgres.psql("checkpoint")
        assert _files_holding(wal, erased) == []
    finally:
        postgres.psql("alter system reset wal_recycle")
        postgres.psql("select pg_reload_conf()")


def _files_holding(directory, text: str) -> list[str]:
    needle = text.encode()
    return sorted(str(p) for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes())


def columns_of(marts: dict, mart: str) -> list[str]:
    return [name for name, _ in marts[mart][0]]


# -- the mart contract on a PostgreSQL warehouse: same checks, same messages as on DuckDB --

PG_MARTS_SQL = """
drop schema if exists marts cascade;
create schema marts;
create table marts.community_kpis_monthly as
select * from (values
    (date '2025-01-01', 'discourse', 'active_members', 12.0::double precision, 12, false),
    (date '2025-01-01', 'github', 'active_members', null, 3, true),
    (date '2025-01-01', 'all', 'retention_rate', 0.5, 15, false)
) as t(month, platform, kpi, value, group_size, is_suppressed);
create table marts.cohort_retention as
select * from (values
    (date '2025-01-01', 'discourse', 0, 8, 1.0::double precision, 8, false),
    (date '2025-01-01', 'github', 0, null, null, 2, true)
) as t(cohort_month, platform, months_since_first, retained_members, retention_rate, group_size, is_suppressed);
create table marts.kpi_catalog as select 'active_members'::text as kpi, null::double precision as target;
create table marts.learnings as select date '2025-01-05' as learned_on, 'Online meetups'::text as title;
"""


@pytest.fixture(scope="module")
def pg_marts(tmp_path_factory, postgres):
    from tests.test_contracts import DISCLOSURES, K_MIN, write_manifest

    root = tmp_path_factory.mktemp("pg_contract")
    postgres.create_database("agora_contract")
    postgres.psql(PG_MARTS_SQL, "agora_contract")
    cfg = load_config(write_config(root, [{"name": "s", "type": "survey", "path": "s.csv"}], privacy={"k_min": K_MIN}))
    settings = PgSettings(postgres.host, postgres.port, SUPERUSER, PASSWORD, "agora_contract")
    return cfg, settings, write_manifest(root / "manifest.json", DISCLOSURES), postgres


def test_mart_contract_on_postgres_passes_good_marts(pg_marts):
    from expectations.marts import validate_marts

    cfg, settings, manifest, _ = pg_marts
    res = validate_marts(cfg, manifest_path=manifest, postgres=settings)
    assert res.success and res.rows_checked == 7
    assert res.expectations_evaluated == res.expectations_passed == 13  # as on DuckDB (test_contracts)


def test_mart_contract_on_postgres_names_small_groups_and_identifying_columns(pg_marts):
    from expectations import ContractFailed
    from expectations.marts import validate_marts
    from tests.test_contracts import DISCLOSURES, write_manifest

    cfg, settings, manifest, postgres = pg_marts
    postgres.psql(
        "insert into marts.community_kpis_monthly values (date '2025-02-01', 'github', 'new_members', 2.0, 2, false);"
        "create table marts.top_posters as select 'f00d'::text as actor, 9 as posts, 9 as group_size, false as s;",
        "agora_contract",
    )
    manifest = write_manifest(
        manifest, {**DISCLOSURES, "top_posters": {"group_size": "group_size", "suppressed": "s", "values": ["posts"]}}
    )
    try:
        with pytest.raises(ContractFailed) as err:
            validate_marts(cfg, manifest_path=manifest, postgres=settings)
    finally:
        postgres.psql(PG_MARTS_SQL, "agora_contract")
    assert str(err.value).splitlines() == [
        "marts.community_kpis_monthly: is_suppressed_matches_group_size failed on 1 rows",
        "marts.community_kpis_monthly: small_groups_publish_no_values failed on 1 rows",
        "marts.top_posters: no_identifying_columns failed on 1 columns [columns: actor]",
    ]


@pytest.mark.parametrize(("sslmode", "connects"), [("disable", True), ("require", False)])
def test_dbt_connects_with_the_configured_sslmode(builds, tmp_path, monkeypatch, sslmode, connects):
    """profiles.yml reads AGORA_PG_SSLMODE: `require` against this non-TLS server must fail."""
    from agora.warehouse import run_dbt

    _, _, _, settings = builds
    for name, value in {
        "AGORA_PG_HOST": settings.host,
        "AGORA_PG_PORT": str(settings.port),
        "AGORA_PG_USER": settings.user,
        "AGORA_PG_PASSWORD": settings.password,
        "AGORA_PG_DBNAME": settings.dbname,
        "AGORA_PG_SSLMODE": sslmode,
    }.items():
        monkeypatch.setenv(name, value)
    proc = run_dbt(None, ["show", "--inline", "select 1 as ok"], target_path=tmp_path, check=False, target="postgres")
    assert (proc.returncode == 0) is connects, proc.stdout[-2000:]
    if not connects:
        assert "ssl" in proc.stdout.lower(), proc.stdout[-2000:]
