"""Landing contract: what connectors wrote must match the envelope before dbt reads it.

Two suites run in a throwaway DuckDB database (nothing is written to the warehouse):

1. ``landing_file_columns`` — one row per (file, column), read from Parquet footers. A
   file must hold exactly the envelope columns with their types; ``title``/``text`` only
   when every row of the file comes from a team platform. Files failing this are left
   out of step 2, so one malformed file cannot break the checks of the others.
2. ``landing`` — the remaining files read into one table (``read_parquet`` with
   ``union_by_name``, ``filename`` and hive ``dt``; a table rather than a view because a
   dozen checks would otherwise each re-open every file): pseudonyms are 64 lowercase hex or null, required fields present,
   ``occurred_at`` not in the future, known platform and record type, keys unique, and
   team-written text free of e-mail addresses, phone numbers and @handles.

Uniqueness: ``(source, record_type, record_id)`` must be unique within a file. Across
files a key may repeat — a rerun of an overlapping window legitimately lands a record
again — because staging keeps the copy with the latest ``extracted_at``; the contract
therefore fails only when that latest copy is ambiguous (two files tie on it).

On failure every file holding an offending row is moved to
``<quarantine>/<source>/dt=<day>/contract/<file>`` beside ``<file>.reason.json``
(expectation, row count, a few record ids — never actors or text), so the next run is
not blocked and nothing is lost. The ``contract/`` folder keeps these envelope files
apart from the extract rejects (``<quarantine>/<source>/dt=<day>/<run_id>.parquet``,
another schema), which they would otherwise overwrite when the names collide.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from agora.config import PLATFORMS, TEAM_PLATFORMS, AgoraConfig
from agora.envelope import ENVELOPE_SCHEMA, RECORD_TYPES, TEAM_TEXT_FIELDS
from agora.landing import landing_files
from expectations.result import ContractError, ContractFailed, ContractResult, Failure

log = logging.getLogger("agora.contracts.landing")

# SQL in this module (noqa: S608) is assembled from module constants and quoted file
# paths, never from values read out of the data.

# Clocks of the APIs and of this machine differ a little; more than this is a bug.
FUTURE_TOLERANCE = "INTERVAL 10 MINUTE"
SAMPLE_IDS = 5

# Personal data a person may type into a team log. Deliberately broad: a false positive
# quarantines a team file that the team can fix; a false negative publishes an address.
EMAIL_RE = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# International (+33 6 12 34 56 78, 0044 20 ...), 10-digit national (06 12 34 56 78),
# North American (555-123-4567, (555) 123-4567). Dates such as 2024-05-01 do not match.
PHONE_RE = (
    r"(\+|\b00)\d[\d ()./-]{6,}\d"
    r"|\b0\d([ .-]?\d{2}){4}\b"
    r"|(\(\d{3}\)|\b\d{3})[ .-]?\d{3}[ .-]\d{4}\b"
)
HANDLE_RE = r"(^|[^A-Za-z0-9_.@])@[A-Za-z0-9_]{2,}"

TEAM_TEXT = "coalesce(title, '') || ' ' || coalesce(text, '')"
KEY = "source, record_type, record_id"


@dataclass(frozen=True)
class Check:
    """One expectation: `sql` selects the offending rows (filename, record_id) from {batch}."""

    name: str
    description: str
    sql: str


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


ROW_CHECKS = (
    Check(
        "required_fields_not_null",
        "source, platform, record_type, record_id, occurred_at and extracted_at are set",
        "select filename, record_id from {batch} where source is null or platform is null "
        "or record_type is null or record_id is null or occurred_at is null or extracted_at is null",
    ),
    Check(
        "actor_is_pseudonym_or_null",
        "actor is 64 lowercase hex characters (an HMAC-SHA256 pseudonym) or null",
        "select filename, record_id from {batch} "
        "where actor is not null and not regexp_full_match(actor, '[0-9a-f]{64}')",
    ),
    Check(
        "parent_actor_is_pseudonym_or_null",
        "parent_actor is 64 lowercase hex characters or null",
        "select filename, record_id from {batch} "
        "where parent_actor is not null and not regexp_full_match(parent_actor, '[0-9a-f]{64}')",
    ),
    Check(
        "occurred_at_not_in_future",
        "occurred_at is not later than now (10 minutes of clock skew allowed)",
        f"select filename, record_id from {{batch}} where occurred_at > now() + {FUTURE_TOLERANCE}",  # noqa: S608
    ),
    Check(
        "platform_known",
        f"platform is one of {', '.join(PLATFORMS)}",
        f"select filename, record_id from {{batch}} where platform not in ({_in_list(PLATFORMS)})",  # noqa: S608
    ),
    Check(
        "record_type_known",
        f"record_type is one of {', '.join(RECORD_TYPES)}",
        f"select filename, record_id from {{batch}} where record_type not in ({_in_list(RECORD_TYPES)})",  # noqa: S608
    ),
    Check(
        "key_unique_within_file",
        "(source, record_type, record_id) appears once per file",
        f"select filename, record_id from (select filename, record_id, "  # noqa: S608
        f"count(*) over (partition by filename, {KEY}) as copies from {{batch}}) as counted where copies > 1",
    ),
    Check(
        "key_unique_after_dedup",
        "the latest extracted_at copy of each (source, record_type, record_id) is in one file only",
        # Only keys landed more than once need the window functions (few, usually none).
        f"select filename, record_id from (select filename, record_id, "  # noqa: S608
        f"min(filename) over (partition by {KEY}) as first_file, "
        f"max(filename) over (partition by {KEY}) as last_file "
        f"from (select * from {{batch}} semi join (select {KEY} from {{batch}} group by all having count(*) > 1) "
        f"as repeated using ({KEY}) qualify extracted_at = max(extracted_at) over (partition by {KEY})) "
        f"as latest) as tied where first_file <> last_file",
    ),
    Check(
        "team_text_has_no_email",
        "team-written title/text holds no e-mail address",
        f"select filename, record_id from {{batch}} where regexp_matches({TEAM_TEXT}, '{EMAIL_RE}')",  # noqa: S608
    ),
    Check(
        "team_text_has_no_phone",
        "team-written title/text holds no phone number",
        f"select filename, record_id from {{batch}} where regexp_matches({TEAM_TEXT}, '{PHONE_RE}')",  # noqa: S608
    ),
    Check(
        "team_text_has_no_handle",
        "team-written title/text holds no @handle",
        f"select filename, record_id from {{batch}} where regexp_matches({TEAM_TEXT}, '{HANDLE_RE}')",  # noqa: S608
    ),
)

COLUMNS_CHECK = Check(
    "columns_match_envelope",
    "each file has exactly the envelope columns and types; title/text only in team-platform files",
    "select c.filename, c.column_name from {batch} as c "
    "left join landing_expected_columns as e on e.column_name = c.column_name "
    "where e.column_name is null or not c.type_ok or (e.team_only and not c.team_file) "
    "union all "
    "select f.filename, e.column_name from (select distinct filename from {batch}) as f "
    "cross join landing_expected_columns as e "
    "where not e.team_only and not exists (select 1 from {batch} as c "
    "where c.filename = f.filename and c.column_name = e.column_name)",
)

_EXPECTED_TYPES: dict[str, pa.DataType] = {
    **{f.name: f.type for f in ENVELOPE_SCHEMA},
    **dict(TEAM_TEXT_FIELDS),
}
_TEAM_ONLY = {name for name, _ in TEAM_TEXT_FIELDS}


def _type_ok(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Same logical type; list field names and timestamp units differ between writers."""
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(actual) and actual.tz in ("UTC", "+00:00", "Etc/UTC")
    if pa.types.is_list(expected):
        return (pa.types.is_list(actual) or pa.types.is_large_list(actual)) and _type_ok(
            actual.value_type, expected.value_type
        )
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    return actual.equals(expected)


@dataclass
class _File:
    url: str  # as DuckDB and fsspec see it
    rel: str  # <source>/dt=<day>/<name>, for messages
    rows: int
    columns: list[tuple[str, str, bool]]  # name, type, type_ok
    team_file: bool


def _inspect_files(fs: fsspec.AbstractFileSystem, root: str, paths: list[str]) -> list[_File]:
    """Footers and the platform column only: cheap even for many files."""
    root_path = fs._strip_protocol(root).rstrip("/")
    out = []
    for p in paths:
        with fs.open(p, "rb") as f:
            pf = pq.ParquetFile(f)
            schema = pf.schema_arrow
            platforms: set = set()
            if "platform" in schema.names:
                platforms = set(pf.read(columns=["platform"]).column(0).unique().to_pylist())
            rows = pf.metadata.num_rows
        columns = [
            (fld.name, str(fld.type), fld.name in _EXPECTED_TYPES and _type_ok(fld.type, _EXPECTED_TYPES[fld.name]))
            for fld in schema
        ]
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        url = p if "file" in protocols else fs.unstrip_protocol(p)
        out.append(
            _File(
                url=url,
                rel=posixpath.relpath(p, root_path),
                rows=rows,
                columns=columns,
                team_file=bool(platforms) and platforms <= set(TEAM_PLATFORMS),
            )
        )
    return out


def _prepare_db(db_path: str, files: list[_File]) -> None:
    file_columns = pa.Table.from_pylist(
        [
            {"filename": f.url, "column_name": n, "column_type": t, "type_ok": ok, "team_file": f.team_file}
            for f in files
            for n, t, ok in f.columns
        ],
        schema=pa.schema(
            [
                ("filename", pa.string()),
                ("column_name", pa.string()),
                ("column_type", pa.string()),
                ("type_ok", pa.bool_()),
                ("team_file", pa.bool_()),
            ]
        ),
    )
    expected = pa.Table.from_pylist([{"column_name": n, "team_only": n in _TEAM_ONLY} for n in _EXPECTED_TYPES])
    con = duckdb.connect(db_path)
    try:  # from Arrow, not executemany: row-by-row inserts take seconds per thousand rows
        con.from_arrow(file_columns).create("landing_file_columns")
        con.from_arrow(expected).create("landing_expected_columns")
    finally:
        con.close()


def _load_landing(db_path: str, urls: list[str]) -> None:
    """Copy the files into one table: a dozen checks then scan it, not every file a dozen times."""
    # Same memory cap as the dbt profile: spill to disk rather than grow with the history.
    con = duckdb.connect(
        db_path,
        config={
            "memory_limit": os.environ.get("AGORA_DUCKDB_MEMORY_LIMIT", "2GB"),
            "preserve_insertion_order": False,
        },
    )
    try:
        src = (
            f"read_parquet([{', '.join(_quote(u) for u in urls)}], "
            "filename=true, union_by_name=true, hive_partitioning=true)"
        )
        present = {r[0] for r in con.execute(f"describe select * from {src}").fetchall()}  # noqa: S608
        # Team text columns exist only if a team file is present; the text checks need them.
        padding = "".join(f", null::varchar as {n}" for n in sorted(_TEAM_ONLY - present))
        con.execute(f"create table landing as select *{padding} from {src}")  # noqa: S608
    finally:
        con.close()


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _run_suite(context: Any, db_path: str, table: str, checks: tuple[Check, ...]) -> dict[str, int]:
    """Validate one table with GX; return {check name: offending rows} for the failed checks.

    The datasource is closed before returning: DuckDB refuses a second connection with
    another configuration to a file this process still holds.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from expectations.gx_duckdb import add_duckdb_datasource, close_datasource, gx_braces

    datasource = add_duckdb_datasource(context, f"landing_contract_{table}", db_path)
    try:
        batch = datasource.add_table_asset(name=table, table_name=table).add_batch_definition_whole_table("all")
        suite = gx.ExpectationSuite(
            name=f"landing.{table}",
            expectations=[
                gxe.UnexpectedRowsExpectation(
                    unexpected_rows_query=gx_braces(c.sql), description=c.description, meta={"check": c.name}
                )
                for c in checks
            ],
        )
        result = batch.get_batch().validate(suite)
    finally:
        close_datasource(datasource)
    failed: dict[str, int] = {}
    for r in result.results:
        name = r.expectation_config.meta["check"]
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise ContractError(f"landing: {name} could not be evaluated: {r.exception_info.get('exception_message')}")
        if not r.success:
            failed[name] = int(r.result.get("observed_value") or 0)
    return failed


def _locate(db_path: str, check: Check, table: str) -> dict[str, tuple[int, list[str]]]:
    """Offending rows per file, with a few record ids (never actors or text)."""
    rows_sql = check.sql.replace("{batch}", table)
    con = duckdb.connect(db_path, read_only=True)
    try:
        found = con.execute(
            f"select filename, count(*), array_slice(list(distinct record_id order by record_id), 1, {SAMPLE_IDS}) "  # noqa: S608
            f"from ({rows_sql}) as offending group by filename"
        ).fetchall()
    finally:
        con.close()
    return {f: (n, [i for i in ids if i is not None]) for f, n, ids in found}


def _sample_ids(fs: fsspec.AbstractFileSystem, url: str) -> list[str]:
    try:
        with fs.open(url, "rb") as f:
            ids = pq.ParquetFile(f).read(columns=["record_id"]).column(0).to_pylist()
    except Exception:  # noqa: BLE001 - a malformed file may lack the column; ids are only a hint
        return []
    return sorted({i for i in ids if i is not None})[:SAMPLE_IDS]


def _quarantine(
    fs: fsspec.AbstractFileSystem,
    quarantine_root: str,
    file: _File,
    problems: list[dict[str, Any]],
) -> str:
    source, day_dir, name = file.rel.split("/", 2) if file.rel.count("/") >= 2 else ("unknown", "dt=unknown", file.rel)
    qfs, qroot = fsspec.core.url_to_fs(quarantine_root)
    target_dir = posixpath.join(qroot, source, day_dir, "contract")
    qfs.makedirs(target_dir, exist_ok=True)
    target = posixpath.join(target_dir, name)
    if qfs.exists(target):  # a previous quarantine of the same run: keep both
        stem = name.removesuffix(".parquet")
        target = posixpath.join(target_dir, f"{stem}.{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.parquet")
    reason = {
        "landing_file": file.rel,
        "quarantined_at": datetime.now(UTC).isoformat(),
        "rows": file.rows,
        "failures": problems,
        "recover": "fix the connector or the team file, then rerun the window (or move the file back).",
    }
    with qfs.open(f"{target}.reason.json", "w") as f:
        json.dump(reason, f, indent=2, sort_keys=True)
    if qfs is fs or type(qfs) is type(fs):
        fs.mv(file.url, target)
    else:  # different filesystems: copy then delete
        with fs.open(file.url, "rb") as src, qfs.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        fs.rm(file.url)
    return target


def validate_landing(cfg: AgoraConfig) -> ContractResult:
    """Run the landing contract; quarantine offending files and raise ContractFailed on failure."""
    from expectations.gx_duckdb import ephemeral_context

    started = time.monotonic()
    root = cfg.path("landing")
    fs, _ = fsspec.core.url_to_fs(root)
    result = ContractResult(suite="landing")
    files = _inspect_files(fs, root, landing_files(root))
    result.rows_checked = sum(f.rows for f in files)
    if not files:
        result.seconds = time.monotonic() - started
        log.info("landing contract: no landing files")
        return result

    by_url = {f.url: f for f in files}
    problems: dict[str, list[dict[str, Any]]] = defaultdict(list)  # file url -> its reason.json entries
    tmp = tempfile.mkdtemp(prefix="agora-landing-contract-")
    db_path = posixpath.join(tmp, "landing.duckdb")
    try:
        _prepare_db(db_path, files)
        context = ephemeral_context()

        failed = _run_suite(context, db_path, "landing_file_columns", (COLUMNS_CHECK,))
        result.expectations_evaluated += 1
        result.expectations_passed += not failed
        bad_schema = _locate_columns(db_path) if failed else {}
        if bad_schema:
            result.failures.append(
                Failure(
                    "landing",
                    COLUMNS_CHECK.name,
                    sum(by_url[u].rows for u in bad_schema),
                    [by_url[u].rel for u in sorted(bad_schema)],
                    detail="columns: " + ", ".join(sorted({c for cols in bad_schema.values() for c in cols})),
                )
            )
            for u, cols in bad_schema.items():
                problems[u].append(
                    {
                        "expectation": COLUMNS_CHECK.name,
                        "description": COLUMNS_CHECK.description,
                        "rows": by_url[u].rows,
                        "columns": cols,
                        "sample_record_ids": _sample_ids(fs, u),
                    }
                )

        good = [f.url for f in files if f.url not in bad_schema]
        if good:
            _load_landing(db_path, good)
            failed = _run_suite(context, db_path, "landing", ROW_CHECKS)
            result.expectations_evaluated += len(ROW_CHECKS)
            result.expectations_passed += len(ROW_CHECKS) - len(failed)
            for check in ROW_CHECKS:
                if check.name not in failed:
                    continue
                located = _locate(db_path, check, "landing")
                result.failures.append(
                    Failure("landing", check.name, failed[check.name], [by_url[u].rel for u in sorted(located)])
                )
                for u, (n, ids) in located.items():
                    problems[u].append(
                        {
                            "expectation": check.name,
                            "description": check.description,
                            "rows": n,
                            "sample_record_ids": ids,
                        }
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for url in sorted(problems):
        result.quarantined.append(_quarantine(fs, cfg.path("quarantine"), by_url[url], problems[url]))
    result.seconds = time.monotonic() - started
    if result.failures:
        log.error("%s", result.summary())
        raise ContractFailed(result)
    log.info("%s", result.summary())
    return result


def _locate_columns(db_path: str) -> dict[str, list[str]]:
    """Files failing the column check, with the unexpected, mistyped or missing column names."""
    rows_sql = COLUMNS_CHECK.sql.replace("{batch}", "landing_file_columns")
    con = duckdb.connect(db_path, read_only=True)
    try:
        found = con.execute(
            f"select filename, list(distinct column_name order by column_name) from ({rows_sql}) as offending "  # noqa: S608
            "group by filename"
        ).fetchall()
    finally:
        con.close()
    return {f: cols for f, cols in found}
