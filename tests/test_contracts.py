"""Landing and mart contracts, run for real with GX on DuckDB.

Landing dirs are written with `agora.landing.write_landing` (good data) and with pyarrow
directly (data no connector should ever write). Mart databases are built by hand from
the mart interface, with a minimal dbt manifest holding the disclosure meta.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TEST_KEY, write_config

from agora.config import load_config
from agora.envelope import ENVELOPE_COLUMNS, ENVELOPE_SCHEMA, TEAM_SCHEMA
from agora.landing import landing_files, write_landing
from agora.pseudonym import pseudonym
from expectations import ContractError, ContractFailed, validate_landing, validate_marts

SOURCES = [
    {"name": "forum", "type": "discourse", "base_url": "https://discuss.example.org"},
    {"name": "learnings", "type": "learnings", "path": "learnings.yml"},
]
EXTRACTED = datetime(2025, 3, 1, tzinfo=UTC)


def row(record_id: str, at: datetime, *, source="forum", platform="discourse", record_type="reply", **kw) -> dict:
    r = {c: None for c in ENVELOPE_COLUMNS}
    r.update(
        source=source,
        platform=platform,
        record_type=record_type,
        record_id=record_id,
        thread_id="t1",
        actor=pseudonym(TEST_KEY, platform, f"account-{record_id}"),
        occurred_at=at,
        is_bot=False,
        is_staff=False,
        tags=[],
        extracted_at=EXTRACTED,
        run_id="run1",
        connector_version="test",
    )
    r.update(kw)
    return r


def team_row(record_id: str, at: datetime, title: str, text: str, **kw) -> dict:
    r = row(record_id, at, source="learnings", platform="learnings", record_type="learning", actor=None, **kw)
    r.update(title=title, text=text)
    return r


def write_raw(landing: Path, rel: str, rows: list[dict], schema: pa.Schema = ENVELOPE_SCHEMA) -> Path:
    """A Parquet file written without our writer, as a buggy connector might."""
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


@pytest.fixture
def community(workdir):
    cfg = load_config(write_config(workdir, SOURCES))
    landing = Path(cfg.path("landing"))
    day = datetime(2025, 2, 10, 12, tzinfo=UTC)
    write_landing([row(f"r{i}", day + timedelta(hours=i)) for i in range(20)], str(landing), "forum", "run1")
    write_landing(
        [team_row("l1", day, "Moved the meetup online", "Attendance doubled after 2024-05-01; see the wiki page.")],
        str(landing),
        "learnings",
        "run1",
        team=True,
    )
    return cfg, landing, Path(cfg.path("quarantine"))


def reasons(quarantine: Path) -> dict[str, dict]:
    return {p.name.removesuffix(".reason.json"): json.loads(p.read_text()) for p in quarantine.rglob("*.reason.json")}


def test_good_landing_passes(community, caplog):
    cfg, landing, quarantine = community
    with caplog.at_level(logging.INFO):
        res = validate_landing(cfg)
    assert not [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]
    assert res.success and res.rows_checked == 21
    assert res.expectations_evaluated == res.expectations_passed == 13
    assert len(landing_files(str(landing))) == 3
    assert not quarantine.exists()
    assert res.as_dict()["failures"] == []


def test_importing_the_package_does_not_import_gx():
    code = "import expectations, sys; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.filterwarnings("ignore:You are using a generic SQLDatasource")
def test_gx_on_duckdb_needs_the_kept_connection(tmp_path, capsys):
    """Upstream GX loses every DuckDB result (#10738, #11579); our `duckdb` datasource does not.

    When the first half starts passing, GX has fixed it and expectations/gx_duckdb.py can go.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from expectations.gx_duckdb import add_duckdb_datasource, close_datasource, ephemeral_context

    db = tmp_path / "t.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table t as select range as id, range % 7 as v from range(1000000)")
    con.close()
    suite = gx.ExpectationSuite(
        name="s",
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToBeBetween(column="v", min_value=0, max_value=6),
        ],
    )
    context = ephemeral_context()

    plain = context.data_sources.add_sql(name="plain", connection_string=f"duckdb:///{db}")
    result = plain.add_table_asset(name="t", table_name="t").add_batch_definition_whole_table("all").get_batch()
    res = result.validate(suite)
    close_datasource(plain)
    assert not res.success
    assert "list index out of range" in json.dumps([r.exception_info for r in res.results])

    kept = add_duckdb_datasource(context, "kept", str(db), read_only=True)
    batch = kept.add_table_asset(name="t", table_name="t").add_batch_definition_whole_table("all").get_batch()
    t0 = time.monotonic()
    res = batch.validate(suite)
    elapsed = time.monotonic() - t0
    close_datasource(kept)
    assert res.success and res.results[0].result["element_count"] == 1_000_000
    with capsys.disabled():
        print(f"\nGX on DuckDB, 2 expectations over 1M rows: {elapsed:.2f}s")


def test_bad_files_fail_and_are_quarantined_with_their_reason(community):
    cfg, landing, quarantine = community
    day = datetime(2025, 2, 11, 9, tzinfo=UTC)
    bad = {
        "bad_actor": (
            "actor_is_pseudonym_or_null",
            write_raw(landing, "forum/dt=2025-02-11/bad_actor.parquet", [row("a1", day, actor="alice_handle")]),
        ),
        "extra_column": (
            "columns_match_envelope",
            write_raw(
                landing,
                "forum/dt=2025-02-11/extra_column.parquet",
                [{**row("e1", day), "email": "x@example.org"}],
                pa.schema([*ENVELOPE_SCHEMA, pa.field("email", pa.string())]),
            ),
        ),
        "future": (
            "occurred_at_not_in_future",
            write_raw(
                landing,
                "forum/dt=2099-01-01/future.parquet",
                [row("f1", datetime.now(UTC) + timedelta(days=2))],
            ),
        ),
        "unknown_platform": (
            "platform_known",
            write_raw(landing, "forum/dt=2025-02-11/unknown_platform.parquet", [row("p1", day, platform="myspace")]),
        ),
        "team_email": (
            "team_text_has_no_email",
            write_raw(
                landing,
                "learnings/dt=2025-02-11/team_email.parquet",
                [team_row("l9", day, "Follow-up", "Ask jane.doe@example.org for the slides")],
                TEAM_SCHEMA,
            ),
        ),
    }
    with pytest.raises(ContractFailed) as err:
        validate_landing(cfg)
    lines = str(err.value).splitlines()
    assert len(lines) == len(bad)
    for stem, (expectation, path) in bad.items():
        line = next(ln for ln in lines if f"landing: {expectation} failed on 1 rows" in ln)
        assert f"{stem}.parquet" in line
        assert not path.exists(), f"{stem} should have left the landing zone"
        moved = next(quarantine.rglob(f"contract/{stem}.parquet"))
        assert moved.relative_to(quarantine).parts[:2] == path.relative_to(landing).parts[:2]  # <source>/dt=...
        reason = reasons(quarantine)[f"{stem}.parquet"]
        assert [f["expectation"] for f in reason["failures"]] == [expectation]
        assert reason["failures"][0]["sample_record_ids"] == [_only_id(moved)]
    assert "columns: email" in next(ln for ln in lines if "columns_match_envelope" in ln)
    # Reasons hold ids and counts, never actors or text.
    blob = "".join(p.read_text() for p in quarantine.rglob("*.reason.json"))
    assert "alice_handle" not in blob and "jane.doe" not in blob
    assert err.value.result.quarantined and len(err.value.result.quarantined) == len(bad)
    # The good files stay, and the next run is not blocked.
    assert validate_landing(cfg).success


def test_team_text_is_scanned_in_a_team_file_holding_only_a_title(community):
    """Text rules run on every team file, whichever of title/text it holds."""
    cfg, landing, quarantine = community
    rows = [team_row("l5", datetime(2025, 2, 11, 9, tzinfo=UTC), "Thanks @sam_dev", "")]
    schema = pa.schema([*ENVELOPE_SCHEMA, pa.field("title", pa.string())])
    write_raw(landing, "learnings/dt=2025-02-11/title_only.parquet", rows, schema)
    with pytest.raises(ContractFailed) as err:
        validate_landing(cfg)
    assert str(err.value) == (
        "landing: team_text_has_no_handle failed on 1 rows (files: learnings/dt=2025-02-11/title_only.parquet)"
    )
    assert reasons(quarantine)["title_only.parquet"]["failures"][0]["sample_record_ids"] == ["l5"]


def _only_id(path: Path) -> str:
    return pq.read_table(path, columns=["record_id"]).column(0)[0].as_py()


def test_duplicates_within_a_file_fail_but_reruns_across_files_pass(community):
    cfg, landing, quarantine = community
    day = datetime(2025, 2, 12, 9, tzinfo=UTC)
    # A rerun of an overlapping window lands r1 again, later: staging keeps the latest copy.
    write_raw(
        landing, "forum/dt=2025-02-10/rerun.parquet", [row("r1", day, extracted_at=EXTRACTED + timedelta(days=1))]
    )
    assert validate_landing(cfg).success
    # The same key twice in one file, and a tie on the latest copy across two files, are not.
    write_raw(landing, "forum/dt=2025-02-12/dup.parquet", [row("d1", day), row("d1", day)])
    write_raw(landing, "forum/dt=2025-02-12/tie_a.parquet", [row("t1", day)])
    write_raw(landing, "forum/dt=2025-02-12/tie_b.parquet", [row("t1", day)])
    with pytest.raises(ContractFailed) as err:
        validate_landing(cfg)
    msg = str(err.value)
    assert "landing: key_unique_within_file failed on 2 rows (files: forum/dt=2025-02-12/dup.parquet)" in msg
    assert "key_unique_after_dedup failed on 2 rows" in msg and "tie_a.parquet" in msg and "tie_b.parquet" in msg
    assert (landing / "forum/dt=2025-02-10/rerun.parquet").exists()


@pytest.mark.parametrize(
    ("text", "expectation"),
    [
        ("Call Sam on +33 6 12 34 56 78 tomorrow", "team_text_has_no_phone"),
        ("Office line (555) 123-4567", "team_text_has_no_phone"),
        ("Thanks to @sam_dev for the talk", "team_text_has_no_handle"),
        ("Mail sam@example.org", "team_text_has_no_email"),
        ("Newcomers doubled between 2024-05-01 and 2024-06-30 (1200 posts, v2.10.3)", None),
        ("Meetup at 18:30, room 4.12; contact form on the site", None),
    ],
)
def test_personal_data_patterns(text, expectation):
    """The text checks' own SQL, run in DuckDB on one row: what is flagged and what is not."""
    from expectations.landing import ROW_CHECKS

    con = duckdb.connect()
    con.execute("create table t as select ? as title, ? as text", ["", text])
    hits = [c.name for c in ROW_CHECKS if c.team_text and con.execute(f"from t where {c.predicate}").fetchall()]
    assert hits == ([expectation] if expectation else [])


@pytest.mark.parametrize(
    "value",
    [
        pseudonym(TEST_KEY, "discourse", "someone"),
        "0" * 64,
        "A" * 64,  # uppercase hex
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "é" + "0" * 62,  # 64 bytes, 63 characters
        "0" * 63 + "\n",
        " " + "0" * 63,
        "",
        "alice_handle",
    ],
)
def test_pseudonym_rule_is_the_full_hex_match(value):
    """The cheaper pseudonym test flags exactly what ``regexp_full_match(v, '[0-9a-f]{64}')`` rejects."""
    from expectations.landing import ROW_CHECKS

    rule = next(c for c in ROW_CHECKS if c.name == "actor_is_pseudonym_or_null")
    con = duckdb.connect()
    con.execute("create table t as select ?::varchar as actor", [value])
    flagged, full_match = con.execute(
        f"select {rule.predicate}, regexp_full_match(actor, '[0-9a-f]{{64}}') from t"
    ).fetchone()
    assert flagged is (not full_match)


def test_landing_contract_on_100k_rows(workdir, capsys):
    cfg = load_config(write_config(workdir, SOURCES))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [row(f"r{i}", start + timedelta(minutes=7 * i)) for i in range(100_000)]  # ~486 daily files
    write_landing(rows, cfg.path("landing"), "forum", "run1")
    t0 = time.monotonic()
    res = validate_landing(cfg)
    elapsed = time.monotonic() - t0
    assert res.success and res.rows_checked == 100_000
    with capsys.disabled():
        print(
            f"\nlanding contract: {res.rows_checked} rows in {len(landing_files(cfg.path('landing')))} files: {elapsed:.2f}s"
        )
    assert elapsed < 120


# --- ledger: only new or changed landing files are checked ---------------------------


def ledger(cfg) -> dict[str, str]:
    return json.loads((Path(cfg.path("state")) / "landing-contract.json").read_text())["files"]


def test_a_second_run_checks_no_old_file(community):
    cfg, landing, _ = community
    first = validate_landing(cfg)
    assert (first.files_checked, first.files_unchanged, first.rows_checked) == (3, 0, 21)
    assert set(ledger(cfg)) == {p.relative_to(landing).as_posix() for p in landing.rglob("*.parquet")}
    again = validate_landing(cfg)
    assert again.success and (again.files_checked, again.files_unchanged, again.rows_checked) == (0, 3, 0)
    assert again.expectations_evaluated == 0
    # A new day is checked alone; the day's partition had no validated file to compare with.
    write_landing([row("n1", datetime(2025, 2, 14, 8, tzinfo=UTC))], str(landing), "forum", "run2")
    new = validate_landing(cfg)
    assert (new.files_checked, new.files_unchanged, new.files_compared, new.rows_checked) == (1, 3, 0, 1)
    assert new.expectations_evaluated == 13
    full = validate_landing(cfg, full=True)
    assert (full.files_checked, full.files_unchanged, full.rows_checked) == (4, 0, 22)


def test_concurrent_contract_runs_check_each_file_once_and_lose_no_ledger_entry(community, workdir):
    """Two processes each land a file of their own and run the contract at the same time.

    Under the ``landing-contract`` lock they take turns: the second reads the ledger the
    first wrote, so every file is checked exactly once and every file ends in the ledger.
    """
    import multiprocessing

    cfg, landing, quarantine = community
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    cfg_path = str(workdir / "agora.yml")
    procs = [ctx.Process(target=_land_and_validate, args=(cfg_path, run, start, out)) for run in range(2)]
    for p in procs:
        p.start()
    checked = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0], checked
    files = {p.relative_to(landing).as_posix() for p in landing.rglob("*.parquet")}
    assert len(files) == 5 and sum(checked) == 5  # 3 of the fixture + 1 per process, each checked once
    assert set(ledger(cfg)) == files
    assert validate_landing(cfg).files_checked == 0 and not quarantine.exists()


def _land_and_validate(cfg_path: str, run: int, start, out) -> None:
    cfg = load_config(cfg_path)
    start.wait(120)
    at = datetime(2025, 2, 20 + run, 8, tzinfo=UTC)
    write_landing([row(f"p{run}", at)], cfg.path("landing"), "forum", f"proc{run}")
    out.put(validate_landing(cfg).files_checked)


def test_cli_validate_landing_full_rechecks_every_file(community):
    from typer.testing import CliRunner

    from agora.cli import app

    cfg, landing, _ = community
    config = str(Path(cfg.root) / "agora.yml")
    runs = [
        CliRunner().invoke(app, ["validate", "landing", *extra, "--config", config], env={"COLUMNS": "400"})
        for extra in ([], [], ["--full"])
    ]
    assert [r.exit_code for r in runs] == [0, 0, 0], [r.output for r in runs]
    checked = [json.loads(r.output.split("passed", 1)[1])["files_checked"] for r in runs]
    assert checked == [3, 0, 3]


def test_a_replaced_file_is_checked_again(community):
    cfg, landing, quarantine = community
    validate_landing(cfg)
    day = datetime(2025, 2, 10, 12, tzinfo=UTC)
    # A rerun of the window replaces the file (same name, same size even), now with a bad actor.
    write_landing(
        [row(f"r{i}", day + timedelta(hours=i), actor="x" * 64 if i == 3 else None) for i in range(20)],
        str(landing),
        "forum",
        "run1",
    )
    with pytest.raises(ContractFailed) as err:
        validate_landing(cfg)
    res = err.value.result  # run1 spans two days: both its files were replaced
    assert (res.files_checked, res.files_unchanged, res.files_compared) == (2, 1, 1)
    assert "actor_is_pseudonym_or_null failed on 1 rows (files: forum/dt=2025-02-10/run1.parquet)" in str(err.value)
    assert "forum/dt=2025-02-10/run1.parquet" not in ledger(cfg)
    # Moved back unchanged (same inode and mtime), it is not waved through by the ledger.
    moved = next(quarantine.rglob("contract/run1.parquet"))
    moved.rename(landing / "forum/dt=2025-02-10/run1.parquet")
    with pytest.raises(ContractFailed):
        validate_landing(cfg)


def test_a_new_malformed_file_is_quarantined_and_old_files_stay(community):
    cfg, landing, quarantine = community
    validate_landing(cfg)
    before = {p: p.stat().st_mtime_ns for p in landing.rglob("*.parquet")}
    bad = write_raw(
        landing, "forum/dt=2025-02-10/bad.parquet", [row("b1", datetime(2025, 2, 10, 23, tzinfo=UTC), actor="alice")]
    )
    with pytest.raises(ContractFailed) as err:
        validate_landing(cfg)
    res = err.value.result
    assert (res.files_checked, res.files_unchanged, res.files_compared) == (1, 3, 2)  # the 2 files of 2025-02-10
    assert (
        str(err.value)
        == "landing: actor_is_pseudonym_or_null failed on 1 rows (files: forum/dt=2025-02-10/bad.parquet)"
    )
    assert not bad.exists() and next(quarantine.rglob("contract/bad.parquet"))
    assert {p: p.stat().st_mtime_ns for p in landing.rglob("*.parquet")} == before
    assert set(ledger(cfg)) == {p.relative_to(landing).as_posix() for p in before}
    assert validate_landing(cfg).files_checked == 0


def test_a_tie_with_an_already_validated_file_of_the_same_day_still_fails(community):
    cfg, landing, quarantine = community
    day = datetime(2025, 2, 10, 12, tzinfo=UTC)
    # Another day with the same key and extracted_at is not compared: keys cannot move between days.
    write_raw(landing, "forum/dt=2025-02-09/other_day.parquet", [row("t9", day - timedelta(days=1))])
    validate_landing(cfg)
    # r5 is in the validated run1 file of 2025-02-10, with the same extracted_at.
    write_raw(landing, "forum/dt=2025-02-10/tie.parquet", [row("r5", day + timedelta(hours=5))])
    write_raw(landing, "forum/dt=2025-02-10/fine.parquet", [row("t9", day + timedelta(hours=1))])
    with pytest.raises(ContractFailed) as err:
        validate_landing(cfg)
    res = err.value.result
    assert (res.files_checked, res.files_compared) == (2, 2)  # forum and learnings of 2025-02-10
    assert str(err.value) == (
        "landing: key_unique_after_dedup failed on 2 rows "
        "(files: forum/dt=2025-02-10/run1.parquet, forum/dt=2025-02-10/tie.parquet)"
    )
    # Both copies leave, as when both files are new; the validated one leaves the ledger too.
    assert {p.name for p in quarantine.rglob("contract/*.parquet")} == {"run1.parquet", "tie.parquet"}
    assert reasons(quarantine)["run1.parquet"]["rows"] == 12  # r0..r11 fall on 2025-02-10
    assert "forum/dt=2025-02-10/run1.parquet" not in ledger(cfg)
    assert (landing / "forum/dt=2025-02-10/fine.parquet").exists()
    assert validate_landing(cfg).files_checked == 1  # fine.parquet, not yet in the ledger


def test_an_erasure_rewrite_is_checked_again(community):
    from agora.privacy import scrub_files

    cfg, landing, _ = community
    validate_landing(cfg)
    erased = pseudonym(TEST_KEY, "discourse", "account-r7")
    removed, _, changed = scrub_files(cfg.path("landing"), {erased})
    assert changed == 1 and removed[erased] == 1
    res = validate_landing(cfg)
    assert (res.files_checked, res.files_unchanged, res.rows_checked) == (1, 2, 11)  # 2025-02-10 less r7


# --- marts -------------------------------------------------------------------------

K_MIN = 5
DISCLOSURES = {
    "community_kpis_monthly": {"group_size": "group_size", "suppressed": "is_suppressed", "values": ["value"]},
    "cohort_retention": {
        "group_size": "group_size",
        "suppressed": "is_suppressed",
        "values": ["retained_members", "retention_rate"],
    },
    "kpi_catalog": "none",
    "learnings": "none",
}


def build_marts(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create schema main_staging")
    con.execute("create table main_staging.stg_events as select 'abc' as actor")  # not a mart: not checked
    con.execute(
        """
        create table marts.community_kpis_monthly as
        select * from (values
            (date '2025-01-01', 'discourse', 'active_members', 12.0, 12, false),
            (date '2025-01-01', 'github', 'active_members', null, 3, true),
            (date '2025-01-01', 'all', 'retention_rate', 0.5, 15, false)
        ) as t(month, platform, kpi, value, group_size, is_suppressed)
        """
    )
    con.execute(
        """
        create table marts.cohort_retention as
        select * from (values
            (date '2025-01-01', 'discourse', 0, 8, 1.0, 8, false),
            (date '2025-01-01', 'github', 0, null, null, 2, true)
        ) as t(cohort_month, platform, months_since_first, retained_members, retention_rate, group_size, is_suppressed)
        """
    )
    con.execute(
        "create table marts.kpi_catalog as select 'active_members' as kpi, 'result' as kind, "
        "'quantitative' as nature, 'distinct members' as definition, 'members' as unit, 'up' as direction, "
        "null::double as target, 'community_kpis_monthly' as mart, 'Agora' as origin"
    )
    con.execute(
        "create table marts.learnings as select date '2025-01-05' as learned_on, 'Online meetups' as title, "
        "'Attendance doubled' as text, 'events' as tags, 'active_members' as kpis"
    )
    con.close()


def write_manifest(path: Path, disclosures: dict) -> Path:
    nodes = {}
    for name, disclosure in disclosures.items():
        meta = {} if disclosure is None else {"disclosure": disclosure}
        nodes[f"model.agora.{name}"] = {
            "resource_type": "model",
            "name": name,
            "alias": name,
            "schema": "marts",
            "config": {"schema": "marts", "meta": meta},
            "meta": meta,
        }
    # A same-named staging model without meta must not shadow the mart.
    nodes["model.agora.learnings_stg"] = {"resource_type": "model", "name": "learnings", "schema": "main_staging"}
    path.write_text(json.dumps({"nodes": nodes}))
    return path


@pytest.fixture
def marts(workdir):
    cfg = load_config(write_config(workdir, SOURCES, privacy={"k_min": K_MIN}))
    wh = workdir / "agora.duckdb"
    build_marts(wh)
    return cfg, wh, write_manifest(workdir / "manifest.json", DISCLOSURES)


def test_good_marts_pass(marts):
    cfg, wh, manifest = marts
    res = validate_marts(cfg, wh, manifest)
    assert res.success and res.rows_checked == 7
    # 4 declared + 2 column sets + 3 row checks x 2 marts + the column-name check
    assert res.expectations_evaluated == res.expectations_passed == 13
    # Opened read-only and released: a writer can open it right after.
    duckdb.connect(str(wh)).close()


@pytest.mark.parametrize("suppressed", [False, True])
def test_small_group_with_a_value_fails(marts, suppressed):
    cfg, wh, manifest = marts
    con = duckdb.connect(str(wh))
    con.execute(
        "insert into marts.community_kpis_monthly values (date '2025-02-01', 'github', 'new_members', 2.0, 2, ?)",
        [suppressed],
    )
    con.close()
    with pytest.raises(ContractFailed) as err:
        validate_marts(cfg, wh, manifest)
    lines = str(err.value).splitlines()
    assert "marts.community_kpis_monthly: small_groups_publish_no_values failed on 1 rows" in lines
    second = "suppressed_rows_have_null_values" if suppressed else "is_suppressed_matches_group_size"
    assert f"marts.community_kpis_monthly: {second} failed on 1 rows" in lines
    assert len(lines) == 2


@pytest.mark.parametrize(
    ("column", "identifying"),
    [
        *[
            (c, True)
            for c in (
                "actor",
                "parent_actor",
                "user_count",
                "username",
                "author_name",
                "email",
                "e_mail",
                "record_id",
                "id",
                "display_name",
                "ip_address",
                "accounts",
                "Handle",
            )
        ],
        *[
            (c, False)
            for c in (
                "detractors_share",
                "promoters_share",
                "handled_share",
                "kpi",
                "title",
                "median_days_to_action",
                "retained_members",
                "respondents",
                "activity_kind",
            )
        ],
    ],
)
def test_identifying_column_names(column, identifying):
    from expectations.marts import IDENTIFYING_COLUMN_RE

    con = duckdb.connect()
    hit = con.execute("select regexp_matches(lower(?), ?)", [column, IDENTIFYING_COLUMN_RE]).fetchone()[0]
    assert hit is identifying


def test_identifying_column_fails(marts):
    cfg, wh, manifest = marts
    con = duckdb.connect(str(wh))
    con.execute("create table marts.top_posters as select 'f00d' as actor, 9 as posts, 9 as group_size, false as s")
    con.close()
    manifest = write_manifest(
        manifest,
        {**DISCLOSURES, "top_posters": {"group_size": "group_size", "suppressed": "s", "values": ["posts"]}},
    )
    with pytest.raises(ContractFailed) as err:
        validate_marts(cfg, wh, manifest)
    assert str(err.value) == "marts.top_posters: no_identifying_columns failed on 1 columns [columns: actor]"


def test_mart_without_disclosure_meta_fails(marts):
    cfg, wh, manifest = marts
    manifest = write_manifest(manifest, {**DISCLOSURES, "cohort_retention": None})
    with pytest.raises(ContractFailed) as err:
        validate_marts(cfg, wh, manifest)
    assert str(err.value).startswith("marts.cohort_retention: disclosure_declared failed on 2 rows")


def test_declared_columns_must_exist(marts):
    cfg, wh, manifest = marts
    broken = {**DISCLOSURES, "community_kpis_monthly": {**DISCLOSURES["community_kpis_monthly"], "values": ["score"]}}
    with pytest.raises(ContractFailed) as err:
        validate_marts(cfg, wh, write_manifest(manifest, broken))
    assert "marts.community_kpis_monthly: disclosure_columns_present failed on 1 columns [missing: score]" in str(
        err.value
    )


def test_missing_manifest_is_an_error_not_a_pass(marts, tmp_path):
    cfg, wh, _ = marts
    with pytest.raises(ContractError, match="manifest"):
        validate_marts(cfg, wh, tmp_path / "nope.json")
