"""The scratch database the suites run in, and loading the files into its narrow table."""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from typing import Any

import duckdb
import pyarrow as pa

from expectations.landing.checks import (
    EXPECTED_COLUMNS,
    EXPECTED_TYPES,
    FILE_COLUMNS,
    FILES,
    KEY,
    REPEATED_KEYS,
    ROW_CHECKS,
    ROWS,
    TEAM_ONLY,
    TOMBSTONES,
    VALIDATED_KEYS,
)
from expectations.landing.files import LandingFile


class Scratch:
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


def prepare_db(db: Scratch, files: list[LandingFile], tombstones: set[str]) -> None:
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
    expected = pa.Table.from_pylist([{"column_name": n, "team_only": n in TEAM_ONLY} for n in EXPECTED_TYPES])
    # From Arrow, not executemany: row-by-row inserts take seconds per thousand rows.
    db.con.from_arrow(file_columns).create(FILE_COLUMNS)
    db.con.from_arrow(expected).create(EXPECTED_COLUMNS)
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


def load_landing(db: Scratch, files: list[LandingFile], validated: list[str]) -> None:
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
        groups[(tuple(sorted(TEAM_ONLY & {n for n, _, _ in f.columns})), f.fresh)].append(f.url)
    selects, urls = [], []
    for (team_columns, fresh), group in sorted(groups.items()):
        # Title/text exist only in team files (the column check saw to it); without them no text rule can match.
        text = ", ".join(n if n in team_columns else f"null::varchar as {n}" for n in sorted(TEAM_ONLY))
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
    con.execute(f"create table {ROWS} as {' union all '.join(selects)}")  # noqa: S608
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
        f"select key_hash from {ROWS} union all select key_hash from {VALIDATED_KEYS})) as ordered "
        "where key_hash = previous"
    )


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
