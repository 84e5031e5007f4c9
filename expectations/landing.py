"""Landing contract: what connectors wrote must match the envelope before dbt reads it.

Only files that are new or changed since the last passing run are checked. A ledger in
the state directory (``<state>/landing-contract.json``) maps each validated file to the
fingerprint its filesystem reports (size, mtime and inode locally; ETag or generation on
object stores). Every writer here replaces a file by renaming a new one into place (a
rerun of a window, an erasure rewrite), so a replaced file gets a new fingerprint and is
checked again. The ledger is written atomically after a pass; after a failure only the
quarantined files are taken out (a file moved back is then checked again). So the
contract's cost follows the new data, not the history. ``full=True`` (``agora validate
--full``) ignores the ledger and checks everything.

Two suites run in a throwaway in-memory DuckDB database (nothing is written to the warehouse):

1. ``landing_file_columns`` — one row per (file, column), read from Parquet footers. A
   file must hold exactly the envelope columns with their types; ``title``/``text`` only
   when every row of the file comes from a team platform. Files failing this are left
   out of step 2, so one malformed file cannot break the checks of the others.
2. ``landing`` — the remaining files read once into one narrow table: per row its file,
   key, ``extracted_at``, a hash of the key, and one flag per row rule, computed while
   loading (a table rather than a view because a dozen checks would otherwise each
   re-open every file; flags rather than copied columns because the pseudonym columns
   are the widest and their test the costliest): pseudonyms are 64 lowercase hex or
   null, required fields present, ``occurred_at`` not in the future, known platform and
   record type, no ``actor`` or ``parent_actor`` on the tombstone list (new or changed
   files only: an opted-out account's old rows stay in files nobody rewrote), and
   team-written text (team files only) free of e-mail addresses, phone numbers and
   @handles. Each rule is still its own GX expectation, selecting its
   flagged rows. The key checks look only at keys whose hash is repeated, comparing the
   real keys there.

Uniqueness: ``(source, record_type, record_id)`` must be unique within a file. Across
files a key may repeat — a rerun of an overlapping window legitimately lands a record
again — because staging keeps the copy with the latest ``extracted_at``; the contract
therefore fails only when that latest copy is ambiguous (two files tie on it). Why
comparing the new files with the already-validated files of the *same* ``dt``
partitions is enough: a file's ``dt`` is the UTC day of its records' ``occurred_at``,
and every copy of a record carries the record's ``occurred_at``, so copies land in the
same partition. A tie needs equal ``extracted_at``, which one extraction run sets for
all its rows, and a run's files are all new together, so even a record whose
``occurred_at`` moved between two days within one run is seen among the new files.
Old-against-old ties were ruled out when those files passed.

On failure every file holding an offending row is moved to
``<quarantine>/<source>/dt=<day>/contract/<file>`` beside ``<file>.reason.json``
(expectation, row count, a few record ids — never actors or text), so the next run is
not blocked and nothing is lost. The ``contract/`` folder keeps these envelope files
apart from the extract rejects (``<quarantine>/<source>/dt=<day>/<run_id>.parquet``,
another schema), which they would otherwise overwrite when the names collide.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from agora import locks
from agora.config import PLATFORMS, TEAM_PLATFORMS, AgoraConfig
from agora.envelope import ENVELOPE_SCHEMA, RECORD_TYPES, TEAM_TEXT_FIELDS
from agora.landing import landing_file_fingerprints, read_state, write_state
from agora.tombstones import load_tombstones
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
# Keys of already-validated files in the partitions the new files touch.
VALIDATED_KEYS = "landing_validated_keys"
# Key hashes seen more than once among the checked and the compared rows: the only
# candidates for the key checks, which then compare the real keys.
REPEATED_KEYS = "landing_repeated_keys"
FILES = "landing_files"  # file_id -> filename of every file in the tables above
TOMBSTONES = "landing_tombstones"  # the state store's tombstone list when the contract runs
LEDGER = "landing-contract"  # <state>/landing-contract.json; not a valid source name


@dataclass(frozen=True)
class Check:
    """One expectation over the ``landing`` table; its query selects the offending (file_id, record_id).

    A row rule has a `predicate`: SQL over one envelope row, true when the row offends.
    Loading evaluates it once per row into the boolean column `flag`, so the expectation
    only selects the flagged rows (a dozen checks do not each re-evaluate regexes over
    every row). `team_text` rules read title/text, which only team files hold (elsewhere
    there is no text to match). A rule across rows (keys) gives its own `query`.
    """

    name: str
    description: str
    predicate: str = ""
    query: str = ""
    team_text: bool = False
    fresh_only: bool = False  # only rows of files new or changed since the ledger saw them

    @property
    def flag(self) -> str:
        return f"fails_{self.name}"

    @property
    def sql(self) -> str:
        return self.query or f"select file_id, record_id from {{batch}} where {self.flag}"  # noqa: S608


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _not_pseudonym(column: str) -> str:
    """Set and not 64 lowercase hex: the same rows as ``not regexp_full_match(c, '[0-9a-f]{64}')``.

    A string of [0-9a-f] only is ASCII, so its byte length is its length. A search for one
    character outside the class costs about half of the anchored 64-repetition match.
    """
    return f"{column} is not null and (strlen({column}) <> 64 or regexp_matches({column}, '[^0-9a-f]'))"


# Candidate rows of the key checks: key hash repeated (see REPEATED_KEYS).
_CANDIDATES = f"select file_id, {KEY}, extracted_at from {{batch}} semi join {REPEATED_KEYS} using (key_hash)"  # noqa: S608

ROW_CHECKS = (
    Check(
        "required_fields_not_null",
        "source, platform, record_type, record_id, occurred_at and extracted_at are set",
        predicate="source is null or platform is null or record_type is null or record_id is null "
        "or occurred_at is null or extracted_at is null",
    ),
    Check(
        "actor_is_pseudonym_or_null",
        "actor is 64 lowercase hex characters (an HMAC-SHA256 pseudonym) or null",
        predicate=_not_pseudonym("actor"),
    ),
    Check(
        "parent_actor_is_pseudonym_or_null",
        "parent_actor is 64 lowercase hex characters or null",
        predicate=_not_pseudonym("parent_actor"),
    ),
    Check(
        "occurred_at_not_in_future",
        "occurred_at is not later than now (10 minutes of clock skew allowed)",
        predicate=f"occurred_at > now() + {FUTURE_TOLERANCE}",
    ),
    Check(
        "actor_not_tombstoned",
        "no actor or parent_actor is on the tombstone list (opted out or erased) in a new or changed file",
        predicate=f"actor in (select pseudonym from {TOMBSTONES}) or parent_actor in (select pseudonym from {TOMBSTONES})",  # noqa: S608
        fresh_only=True,
    ),
    Check(
        "platform_known",
        f"platform is one of {', '.join(PLATFORMS)}",
        predicate=f"platform not in ({_in_list(PLATFORMS)})",
    ),
    Check(
        "record_type_known",
        f"record_type is one of {', '.join(RECORD_TYPES)}",
        predicate=f"record_type not in ({_in_list(RECORD_TYPES)})",
    ),
    Check(
        "key_unique_within_file",
        "(source, record_type, record_id) appears once per file",
        query=f"select file_id, record_id from (select file_id, record_id, "  # noqa: S608
        f"count(*) over (partition by file_id, {KEY}) as copies from ({_CANDIDATES}) as candidates) as counted "
        "where copies > 1",
    ),
    Check(
        "key_unique_after_dedup",
        "the latest extracted_at copy of each (source, record_type, record_id) is in one file only",
        # Compared with the validated files of the same dt partitions (see the module doc).
        query=f"with candidates as ({_CANDIDATES}), "  # noqa: S608
        f"keyed as (select file_id, {KEY}, extracted_at from candidates "
        f"union all select file_id, {KEY}, extracted_at from {VALIDATED_KEYS} "
        f"semi join candidates using ({KEY})), "
        f"repeated as (select {KEY} from keyed group by all having count(*) > 1), "
        f"latest as (select * from keyed semi join repeated using ({KEY}) "
        f"qualify extracted_at = max(extracted_at) over (partition by {KEY})) "
        f"select file_id, record_id from (select file_id, record_id, "
        f"min(file_id) over (partition by {KEY}) as first_file, "
        f"max(file_id) over (partition by {KEY}) as last_file from latest) as tied where first_file <> last_file",
    ),
    Check(
        "team_text_has_no_email",
        "team-written title/text holds no e-mail address",
        predicate=f"regexp_matches({TEAM_TEXT}, '{EMAIL_RE}')",
        team_text=True,
    ),
    Check(
        "team_text_has_no_phone",
        "team-written title/text holds no phone number",
        predicate=f"regexp_matches({TEAM_TEXT}, '{PHONE_RE}')",
        team_text=True,
    ),
    Check(
        "team_text_has_no_handle",
        "team-written title/text holds no @handle",
        predicate=f"regexp_matches({TEAM_TEXT}, '{HANDLE_RE}')",
        team_text=True,
    ),
)

COLUMNS_CHECK = Check(
    "columns_match_envelope",
    "each file has exactly the envelope columns and types; title/text only in team-platform files",
    query="select c.filename, c.column_name from {batch} as c "
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
    rel: str  # <source>/dt=<day>/<name>, for messages and the ledger
    rows: int
    columns: list[tuple[str, str, bool]]  # name, type, type_ok
    team_file: bool
    fresh: bool = True  # new or changed since the ledger's last pass (not only re-checked by --full)


def _rel(root_path: str, path: str) -> str:
    """Path below the landing root (posixpath.relpath costs ~70 us a call: thousands of files)."""
    prefix = root_path + "/"
    return path[len(prefix) :] if path.startswith(prefix) else posixpath.relpath(path, root_path)


def _day(rel: str) -> str:
    """The ``dt=`` partition of a landing file (its records' UTC day of occurred_at)."""
    parts = rel.split("/")
    return parts[1] if len(parts) >= 3 else ""


def _platforms(pf: pq.ParquetFile, index: int) -> set | None:
    """Platforms of a file from its row-group statistics, when they pin the set down exactly."""
    found: set = set()
    for g in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max or stats.null_count or stats.min != stats.max:
            return None
        found.add(stats.min)
    return found


def _inspect_files(fs: fsspec.AbstractFileSystem, root: str, paths: list[str]) -> list[_File]:
    """Footers only (plus the platform column when its statistics do not tell): cheap even for many files."""
    root_path = fs._strip_protocol(root).rstrip("/")
    local = _is_local(fs)
    known: dict[pa.Schema, list[tuple[str, str, bool]]] = {}
    out = []
    for p in paths:
        # Local paths go to pyarrow's own reader: a Python file object costs twice as much.
        with contextlib.nullcontext(p) if local else fs.open(p, "rb") as f:
            pf = pq.ParquetFile(f)
            schema = pf.schema_arrow
            platforms: set | None = set()
            if "platform" in schema.names:
                platforms = _platforms(pf, schema.get_field_index("platform"))
                if platforms is None:
                    platforms = set(pf.read(columns=["platform"]).column(0).unique().to_pylist())
            rows = pf.metadata.num_rows
        columns = known.get(schema)
        if columns is None:  # most files share a handful of schemas: judge each once
            columns = known[schema] = [
                (fld.name, str(fld.type), fld.name in _EXPECTED_TYPES and _type_ok(fld.type, _EXPECTED_TYPES[fld.name]))
                for fld in schema
            ]
        out.append(
            _File(
                url=_url(fs, p),
                rel=_rel(root_path, p),
                rows=rows,
                columns=columns,
                team_file=bool(platforms) and platforms <= set(TEAM_PLATFORMS),
            )
        )
    return out


class _Scratch:
    """A throwaway in-memory DuckDB database that GX opens too, by its name.

    In memory rather than a temporary file: writing the 10 M-row table to a file (compressed,
    checkpointed) cost a third more CPU than loading it. Past the memory cap DuckDB spills to
    `tmp`. DuckDB shares a named in-memory database with every connection of this process that
    opens it with the same settings; duckdb-engine adds its own (a user agent), so this side
    connects through SQLAlchemy and duckdb-engine as GX does. The database lives while a
    connection to it is open: this one, until `close`.
    """

    def __init__(self, tmp: str) -> None:
        import sqlalchemy as sa

        self.url = f"duckdb:///:memory:agora_landing_contract_{uuid.uuid4().hex}"
        # Same memory cap as the dbt profile: spill to disk rather than grow with the history.
        config: dict[str, Any] = {
            # Never fetch an extension at run time (s3:// goes through a registered fsspec filesystem).
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "memory_limit": os.environ.get("AGORA_DUCKDB_MEMORY_LIMIT", "2GB"),
            "preserve_insertion_order": False,
            "temp_directory": tmp,
        }
        self.engine_kwargs: dict[str, Any] = {"connect_args": {"config": config}}
        self._engine = sa.create_engine(self.url, **self.engine_kwargs)
        self._connection = self._engine.raw_connection()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self._connection.driver_connection  # duckdb-engine's wrapper passes calls through

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()


def _prepare_db(db: _Scratch, files: list[_File], tombstones: set[str]) -> None:
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
    # From Arrow, not executemany: row-by-row inserts take seconds per thousand rows.
    db.con.from_arrow(file_columns).create("landing_file_columns")
    db.con.from_arrow(expected).create("landing_expected_columns")
    db.con.from_arrow(pa.table({"pseudonym": pa.array(sorted(tombstones), pa.string())})).create(TOMBSTONES)


# What the row rules read. The other envelope columns (tags, run_id, ...) are held to
# their types by the column check and have no row rule: not reading them cuts the load's
# CPU by a third.
ROW_COLUMNS = (
    "source",
    "platform",
    "record_type",
    "record_id",
    "actor",
    "parent_actor",
    "occurred_at",
    "extracted_at",
)


def _load_landing(db: _Scratch, files: list[_File], validated: list[str]) -> None:
    """Read the files once into a narrow table: keys, the key hash and one flag per row rule.

    The checks then select flagged rows or repeated keys instead of each re-reading the
    files or rescanning copied actors (the pseudonym columns are read, tested and dropped).
    The files passed the column check, so each holds every envelope column: one
    ``read_parquet`` per set of team text columns present (DuckDB matches columns by name
    and casts the types the column check allows), no ``union_by_name`` pass over every
    footer. `validated` files (already passed, same partitions) contribute only their
    keys, for the cross-file tie check. Files are numbered in ``landing_files`` (a file id
    per row costs less than a file name per row).
    """
    groups: dict[tuple[tuple[str, ...], bool], list[str]] = defaultdict(list)
    for f in files:
        groups[(tuple(sorted(_TEAM_ONLY & {n for n, _, _ in f.columns})), f.fresh)].append(f.url)
    selects, urls = [], []
    for (team_columns, fresh), group in sorted(groups.items()):
        # Title/text exist only in team files (the column check saw to it); without them no text rule can match.
        text = ", ".join(n if n in team_columns else f"null::varchar as {n}" for n in sorted(_TEAM_ONLY))
        flags = ", ".join(
            f"{'false' if (c.team_text and not team_columns) or (c.fresh_only and not fresh) else c.predicate} "
            f"as {c.flag}"
            for c in ROW_CHECKS
            if c.predicate
        )
        columns = ", ".join(ROW_COLUMNS) + (f", {text}" if team_columns else "")
        selects.append(
            f"select file_index + {len(urls)} as file_id, {KEY}, extracted_at, "  # noqa: S608
            f"hash({KEY}) as key_hash, {flags} "
            f"from (select file_index, {columns} from read_parquet([{', '.join(_quote(u) for u in group)}])) as rows"
        )
        urls += group
    first_validated = len(urls)
    urls += validated
    con = db.con
    con.from_arrow(pa.table({"file_id": range(len(urls)), "filename": urls})).create(FILES)
    con.execute(f"create table landing as {' union all '.join(selects)}")  # noqa: S608
    con.execute(
        f"create table {VALIDATED_KEYS} (file_id bigint, source varchar, record_type varchar, "
        "record_id varchar, extracted_at timestamptz, key_hash ubigint)"
    )
    if validated:
        con.execute(
            f"insert into {VALIDATED_KEYS} select file_index + {first_validated}, {KEY}, "  # noqa: S608
            f"extracted_at, hash({KEY}) from read_parquet([{', '.join(_quote(u) for u in validated)}])"
        )
    # A hash equal to the one before it in hash order is repeated: one sort, cheaper than a
    # 10 M-group hash aggregate. Old-against-old repeats may enter; the checks pair every
    # candidate with a checked row's real key.
    con.execute(
        f"create table {REPEATED_KEYS} as select distinct key_hash from ("  # noqa: S608
        "select key_hash, lag(key_hash) over (order by key_hash) as previous from ("
        f"select key_hash from landing union all select key_hash from {VALIDATED_KEYS})) as ordered "
        "where key_hash = previous"
    )


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _run_suite(context: Any, db: _Scratch, table: str, checks: tuple[Check, ...]) -> dict[str, int]:
    """Validate one table with GX; return {check name: offending rows} for the failed checks.

    The datasource is closed before returning, so it holds no connection to the scratch database.
    """
    import great_expectations as gx

    from expectations.gx_duckdb import (
        UnexpectedRowCountExpectation,
        close_datasource,
        gx_braces,
    )

    datasource = context.data_sources.add_duckdb(
        name=f"landing_contract_{table}", connection_string=db.url, kwargs=db.engine_kwargs
    )
    try:
        batch = datasource.add_table_asset(name=table, table_name=table).add_batch_definition_whole_table("all")
        suite = gx.ExpectationSuite(
            name=f"landing.{table}",
            expectations=[
                UnexpectedRowCountExpectation(
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


def _locate(db: _Scratch, check: Check, table: str) -> dict[str, tuple[int, list[str]]]:
    """Offending rows per file, with a few record ids (never actors or text)."""
    rows_sql = check.sql.replace("{batch}", table)
    found = db.con.execute(
        f"select filename, count(*), array_slice(list(distinct record_id order by record_id), 1, {SAMPLE_IDS}) "  # noqa: S608
        f"from ({rows_sql}) as offending join {FILES} using (file_id) group by filename"
    ).fetchall()
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


def validate_landing(cfg: AgoraConfig, *, full: bool = False) -> ContractResult:
    """Check the landing files new or changed since the last pass (every file with `full`).

    Offending files are quarantined and ContractFailed is raised; see the module doc.
    Runs under the ``landing-contract`` lock (agora.locks): a concurrent run waits, then
    reads the ledger this one wrote, so no entry is lost and no file is quarantined twice.
    """
    with locks.hold(cfg.path("state"), locks.LANDING_CONTRACT) as lock:
        return _validate_locked(cfg, full=full, lock=lock)


def _validate_locked(cfg: AgoraConfig, *, full: bool, lock: Any) -> ContractResult:
    started = time.monotonic()
    root = cfg.path("landing")
    fs, root_path = fsspec.core.url_to_fs(root)
    root_path = root_path.rstrip("/")
    listed = {_rel(root_path, p): (p, fp) for p, fp in landing_file_fingerprints(root).items()}
    ledger: dict[str, str] = read_state(cfg.path("state"), LEDGER).get("files", {})
    todo = [rel for rel, (_, fp) in listed.items() if full or ledger.get(rel) != fp]
    result = ContractResult(suite="landing", files_unchanged=len(listed) - len(todo))
    if not todo:
        if set(ledger) != set(listed):  # files removed since: forget them
            _save_ledger(cfg, {rel: fp for rel, (_, fp) in listed.items()}, lock)
        result.seconds = time.monotonic() - started
        log.info("%s", result.summary())
        return result

    files = _inspect_files(fs, root, [listed[rel][0] for rel in todo])
    for f in files:
        f.fresh = ledger.get(f.rel) != listed[f.rel][1]
    result.files_checked = len(files)
    result.rows_checked = sum(f.rows for f in files)
    days = {_day(f.rel) for f in files}
    new = set(todo)
    validated = [_url(fs, p) for rel, (p, _) in listed.items() if rel not in new and _day(rel) in days]
    result.files_compared = len(validated)

    by_url = {f.url: f for f in files}
    tombstones = load_tombstones(cfg.path("state"))
    problems = _run_checks(cfg, db_files=files, validated=validated, fs=fs, result=result, tombstones=tombstones)
    for url in sorted(problems):
        file = by_url.get(url) or _inspect_files(fs, root, [fs._strip_protocol(url)])[0]  # a validated file in a tie
        result.quarantined.append(_quarantine(fs, cfg.path("quarantine"), file, problems[url]))
        by_url[url] = file
    result.seconds = time.monotonic() - started
    if result.failures:
        # Nothing new enters the ledger; quarantined files leave it (moved back, they are checked again).
        gone = {by_url[u].rel for u in problems}
        kept = {rel: fp for rel, fp in ledger.items() if rel not in gone and listed.get(rel, (None, None))[1] == fp}
        if kept != ledger:
            _save_ledger(cfg, kept, lock)
        log.error("%s", result.summary())
        raise ContractFailed(result)
    _save_ledger(cfg, {rel: fp for rel, (_, fp) in listed.items()}, lock)
    log.info("%s", result.summary())
    return result


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The file as DuckDB and fsspec see it: a plain path locally, protocol://... otherwise."""
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def _save_ledger(cfg: AgoraConfig, files: dict[str, str], lock: Any) -> None:
    locks.ensure_held(lock)  # an object-store lease lost meanwhile: another run may own the ledger now
    write_state(cfg.path("state"), LEDGER, {"files": files})


def _run_checks(
    cfg: AgoraConfig,
    *,
    db_files: list[_File],
    validated: list[str],
    fs: fsspec.AbstractFileSystem,
    result: ContractResult,
    tombstones: set[str] = frozenset(),
) -> dict[str, list[dict[str, Any]]]:
    """Both suites over the files to check; returns {file url: its reason.json entries}."""
    from expectations.gx_duckdb import ephemeral_context

    by_url = {f.url: f for f in db_files}
    problems: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tmp = tempfile.mkdtemp(prefix="agora-landing-contract-")  # where DuckDB spills past its memory cap
    db = None
    try:
        db = _Scratch(tmp)
        if not _is_local(fs):
            db.con.register_filesystem(fs)  # DuckDB reads the objects through fsspec: no extension download
        _prepare_db(db, db_files, tombstones)
        context = ephemeral_context()

        failed = _run_suite(context, db, "landing_file_columns", (COLUMNS_CHECK,))
        result.expectations_evaluated += 1
        result.expectations_passed += not failed
        bad_schema = _locate_columns(db) if failed else {}
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

        good = [f for f in db_files if f.url not in bad_schema]
        if good:
            _load_landing(db, good, validated)
            failed = _run_suite(context, db, "landing", ROW_CHECKS)
            result.expectations_evaluated += len(ROW_CHECKS)
            result.expectations_passed += len(ROW_CHECKS) - len(failed)
            for check in ROW_CHECKS:
                if check.name not in failed:
                    continue
                located = _locate(db, check, "landing")
                result.failures.append(
                    Failure("landing", check.name, failed[check.name], [_rel_of(cfg, u) for u in sorted(located)])
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
        if db is not None:
            db.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return problems


def _rel_of(cfg: AgoraConfig, url: str) -> str:
    """<source>/dt=<day>/<name> of a landing file URL (checked or only compared)."""
    fs, root_path = fsspec.core.url_to_fs(cfg.path("landing"))
    return _rel(root_path.rstrip("/"), fs._strip_protocol(url))


def _locate_columns(db: _Scratch) -> dict[str, list[str]]:
    """Files failing the column check, with the unexpected, mistyped or missing column names."""
    rows_sql = COLUMNS_CHECK.sql.replace("{batch}", "landing_file_columns")
    found = db.con.execute(
        f"select filename, list(distinct column_name order by column_name) from ({rows_sql}) as offending "  # noqa: S608
        "group by filename"
    ).fetchall()
    return {f: cols for f, cols in found}
