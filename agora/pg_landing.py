"""Load the landing zone into PostgreSQL table `landing.events` for the postgres dbt target.

DuckDB reads the landing Parquet in place; PostgreSQL cannot, so before a dbt build on
the postgres target the whole landing zone is copied into one table with the envelope's
columns (team sources' `title`/`text` included, null elsewhere). The load is idempotent:
the table is rebuilt under a temporary name and swapped in by one short transaction, so
a rerun replaces it and a failed load leaves the previous copy in place. Only pseudonyms
are in the landing zone, so nothing personal travels beyond what the warehouse holds.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq

from agora.envelope import TEAM_SCHEMA
from agora.landing import _fs, landing_files

if TYPE_CHECKING:
    from agora.config import AgoraConfig

log = logging.getLogger("agora.pg_landing")

SCHEMA = "landing"
TABLE = "events"

_PG_TYPES = {
    pa.string(): "text",
    pa.bool_(): "boolean",
    pa.float64(): "double precision",
    pa.timestamp("us", tz="UTC"): "timestamptz",
    pa.list_(pa.string()): "text[]",
}
COLUMNS = tuple(TEAM_SCHEMA.names)


@dataclass(frozen=True)
class PgSettings:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    sslmode: str = "prefer"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PgSettings:
        """The same AGORA_PG_* variables the dbt profile's postgres target reads."""
        env = os.environ if env is None else env
        return cls(
            host=env.get("AGORA_PG_HOST", "127.0.0.1"),
            port=int(env.get("AGORA_PG_PORT", "5432")),
            user=env.get("AGORA_PG_USER", "agora"),
            password=env.get("AGORA_PG_PASSWORD", ""),
            dbname=env.get("AGORA_PG_DBNAME", "agora"),
            sslmode=env.get("AGORA_PG_SSLMODE", "prefer"),
        )

    @classmethod
    def for_config(cls, cfg: AgoraConfig) -> PgSettings:
        """The PostgreSQL warehouse of a config: its `warehouse` block, else AGORA_PG_* (see dbt_target)."""
        from agora.warehouse import dbt_env

        return cls.from_env({**os.environ, **dbt_env(cfg)})

    @property
    def url(self) -> str:
        """For logs and results: no password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self):
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.dbname,
            sslmode=self.sslmode,
            connect_timeout=10,
            application_name="agora",
        )


def _copy_text(value) -> str:
    """One field in COPY's text format: backslash escapes, \\N for null."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, list):
        # Array literal inside a COPY field: quote every element, escape \ and ".
        inner = ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value)
        value = "{" + inner + "}"
    elif hasattr(value, "isoformat"):
        value = value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _read_landing(landing_root: str) -> pa.Table:
    """Every landing file conformed to the team schema (envelope + title/text)."""
    fs, _ = _fs(landing_root)
    tables = []
    for path in landing_files(landing_root):
        with fs.open(path, "rb") as f:
            table = pq.read_table(f)
        for name in COLUMNS:
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(len(table), TEAM_SCHEMA.field(name).type))
        tables.append(table.select(list(COLUMNS)).cast(TEAM_SCHEMA))
    return pa.concat_tables(tables) if tables else TEAM_SCHEMA.empty_table()


def load_landing(landing_root: str, settings: PgSettings | None = None) -> int:
    """Replace `landing.events` with the whole landing zone; return the rows loaded."""
    settings = settings or PgSettings.from_env()
    started = time.time()
    table = _read_landing(landing_root)
    buffer = io.StringIO()
    for row in table.to_pylist():
        buffer.write("\t".join(_copy_text(row[c]) for c in COLUMNS) + "\n")
    buffer.seek(0)
    columns_sql = ", ".join(f"{c} {_PG_TYPES[TEAM_SCHEMA.field(c).type]}" for c in COLUMNS)
    con = settings.connect()
    try:
        with con:  # one transaction: readers see the old table or the new one
            with con.cursor() as cur:
                cur.execute(f"create schema if not exists {SCHEMA}")
                cur.execute(f"drop table if exists {SCHEMA}.{TABLE}_new")
                cur.execute(f"create table {SCHEMA}.{TABLE}_new ({columns_sql})")
                cur.copy_expert(f"copy {SCHEMA}.{TABLE}_new ({', '.join(COLUMNS)}) from stdin", buffer)
                cur.execute(f"drop table if exists {SCHEMA}.{TABLE}")
                cur.execute(f"alter table {SCHEMA}.{TABLE}_new rename to {TABLE}")
    finally:
        con.close()
    log.info("loaded %d landing rows into %s.%s in %.1f s", len(table), SCHEMA, TABLE, time.time() - started)
    return len(table)
