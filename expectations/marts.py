"""Mart contract: nothing is published that could identify a person.

Runs over every table (and view) in schema ``marts`` of the warehouse dbt built: the
DuckDB file (opened read-only) or, on dbt target ``postgres``, the PostgreSQL database
(`PgSettings`). The checks are the same SQL on both engines but for one regex operator. Each mart must declare its disclosure rule in dbt (``config.meta.disclosure``,
read from ``target/manifest.json``; see the mart interface):

- ``{group_size, suppressed, values}``: every row says how many accounts its values
  describe; a row describing fewer than ``privacy.k_min`` is flagged and publishes no
  value. Checked three ways so that a wrong flag cannot hide a small group:
  ``small_groups_publish_no_values`` (the privacy rule itself),
  ``is_suppressed_matches_group_size`` and ``suppressed_rows_have_null_values``.
- ``none``: not derived from accounts (catalog, learnings, team activity).

A mart without a declaration fails (``disclosure_declared``), and so does any mart with a
column whose name could identify an account (``no_identifying_columns``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agora.config import AgoraConfig
from expectations.result import ContractError, ContractFailed, ContractResult, Failure

if TYPE_CHECKING:
    from agora.pg_landing import PgSettings

log = logging.getLogger("agora.contracts.marts")

# SQL in this module (noqa: S608) is assembled from constants, the k_min integer and
# identifiers quoted with _ident(), never from values read out of the data.

MARTS_SCHEMA = "marts"
DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "dbt_project" / "target" / "manifest.json"

# Column names that could identify an account (mart interface), matched on whole
# underscore-separated words so that e.g. `detractors_share` is not read as "actor":
# a word that is one of the stems, optionally with a prefix (co-, display-, user-...) or a
# suffix (-s, -name, -id); or a word `id`/`ids` (ids of people or of their posts).
IDENTIFYING_COLUMN_RE = (
    r"(^|_)(co|full|first|last|display|screen|nick|real|sur|user)?"
    r"(actor|pseudonym|account|user|handle|author|e_?mail|mail|login|name|ip|ip_?address|avatar|bio)"
    r"(s|name|names|id|ids)?(_|$)"
    r"|(^|_)ids?$"
)

COLUMNS_QUERY = f"select table_name, column_name from information_schema.columns where table_schema = '{MARTS_SCHEMA}'"  # noqa: S608
IDENTIFYING_CHECK = (
    f"select table_name, column_name from {{batch}} where regexp_matches(lower(column_name), '{IDENTIFYING_COLUMN_RE}')"  # noqa: S608
)
# PostgreSQL's regexp_matches returns matches, not a boolean: its operator is `~`.
IDENTIFYING_CHECK_PG = (
    f"select table_name, column_name from {{batch}} where lower(column_name) ~ '{IDENTIFYING_COLUMN_RE}'"  # noqa: S608
)


@dataclass(frozen=True)
class Disclosure:
    group_size: str
    suppressed: str
    values: tuple[str, ...]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_disclosures(manifest_path: str | Path) -> dict[str, Disclosure | str | None]:
    """Mart name -> its declared disclosure (a Disclosure, "none", or None if missing/invalid).

    Models in a ``marts`` schema win over same-named models elsewhere.
    """
    manifest = json.loads(Path(manifest_path).read_text())
    found: dict[str, tuple[bool, Any]] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        name = node.get("alias") or node.get("name")
        in_marts = node.get("schema") == MARTS_SCHEMA or (node.get("config") or {}).get("schema") == MARTS_SCHEMA
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        if name not in found or (in_marts and not found[name][0]):
            found[name] = (in_marts, meta.get("disclosure"))
    return {name: _parse_disclosure(raw) for name, (_, raw) in found.items()}


def _parse_disclosure(raw: Any) -> Disclosure | str | None:
    if raw == "none":
        return "none"
    if not isinstance(raw, dict):
        return None
    values = raw.get("values")
    if not (
        isinstance(raw.get("group_size"), str)
        and isinstance(raw.get("suppressed"), str)
        and isinstance(values, list)
        and values
        and all(isinstance(v, str) for v in values)
    ):
        return None
    return Disclosure(raw["group_size"], raw["suppressed"], tuple(values))


def _row_checks(d: Disclosure, k_min: int) -> list[tuple[str, str, str]]:
    """(name, description, offending-rows SQL over {batch}) for one mart."""
    gs, sup = _ident(d.group_size), _ident(d.suppressed)
    any_value = " or ".join(f"{_ident(v)} is not null" for v in d.values)
    return [
        (
            "small_groups_publish_no_values",
            f"a row describing fewer than {k_min} accounts publishes no value",
            f"select * from {{batch}} where {gs} < {k_min} and ({any_value})",  # noqa: S608
        ),
        (
            "is_suppressed_matches_group_size",
            f"{d.suppressed} is set and equals {d.group_size} < {k_min}",
            f"select * from {{batch}} where {gs} is null or {sup} is null or {sup} <> ({gs} < {k_min})",  # noqa: S608
        ),
        (
            "suppressed_rows_have_null_values",
            f"a suppressed row has every value column NULL ({', '.join(d.values)})",
            f"select * from {{batch}} where {sup} and ({any_value})",  # noqa: S608
        ),
    ]


def _is_pg(where: Any) -> bool:
    return not isinstance(where, str)


def _fetch(where: str | PgSettings, queries: list[str]) -> list[list[tuple]]:
    """Run read-only queries on the warehouse; one connection, closed before GX opens its own."""
    if _is_pg(where):
        import psycopg2

        try:
            con = where.connect()
        except psycopg2.OperationalError as e:
            raise ContractError(f"marts: cannot connect to the PostgreSQL warehouse {where.url} ({e})") from e
        try:
            con.set_session(readonly=True)
            with con.cursor() as cur:
                out = []
                for q in queries:
                    cur.execute(q)
                    out.append(cur.fetchall())
                return out
        finally:
            con.close()
    import duckdb

    con = duckdb.connect(where, read_only=True)
    try:
        return [con.execute(q).fetchall() for q in queries]
    finally:
        con.close()


def _identifying_check(where: str | PgSettings) -> str:
    return IDENTIFYING_CHECK_PG if _is_pg(where) else IDENTIFYING_CHECK


def _warehouse_tables(where: str | PgSettings) -> tuple[dict[str, list[str]], dict[str, int]]:
    (found,) = _fetch(where, [COLUMNS_QUERY + " order by table_name, ordinal_position"])
    columns: dict[str, list[str]] = {}
    for table, column in found:
        columns.setdefault(table, []).append(column)
    counts = _fetch(where, [f"select count(*) from {MARTS_SCHEMA}.{_ident(t)}" for t in columns])  # noqa: S608
    rows = {t: c[0][0] for t, c in zip(columns, counts, strict=True)}
    return columns, rows


def _identifying_columns(where: str | PgSettings) -> dict[str, list[str]]:
    (found,) = _fetch(where, [_identifying_check(where).replace("{batch}", f"({COLUMNS_QUERY}) as c")])
    out: dict[str, list[str]] = {}
    for table, column in found:
        out.setdefault(table, []).append(column)
    return out


def _add_datasource(context: Any, where: str | PgSettings) -> Any:
    if not _is_pg(where):
        from expectations.gx_duckdb import add_duckdb_datasource

        return add_duckdb_datasource(context, "marts_contract", where, read_only=True)
    from urllib.parse import quote

    # The password goes to psycopg2 directly, never into the connection string GX keeps.
    url = (
        f"postgresql+psycopg2://{quote(where.user, safe='')}@{where.host}:{where.port}/"
        f"{quote(where.dbname, safe='')}?sslmode={where.sslmode}"
    )
    return context.data_sources.add_postgres(
        name="marts_contract",
        connection_string=url,
        kwargs={"connect_args": {"password": where.password, "options": "-c default_transaction_read_only=on"}},
    )


def _validate(
    context: Any, where: str | PgSettings, suites: list[tuple[str, list[tuple[str, str, str]]]]
) -> dict[tuple, int]:
    """Run GX; return {(asset, check name): offending rows} for failed checks."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from expectations.gx_duckdb import close_datasource, gx_braces

    datasource = _add_datasource(context, where)
    failed: dict[tuple, int] = {}
    try:
        for asset_name, checks in suites:
            if asset_name == "mart_columns":
                asset = datasource.add_query_asset(name=asset_name, query=COLUMNS_QUERY)
            else:
                asset = datasource.add_table_asset(name=asset_name, table_name=asset_name, schema_name=MARTS_SCHEMA)
            suite = gx.ExpectationSuite(
                name=f"marts.{asset_name}",
                expectations=[
                    gxe.UnexpectedRowsExpectation(
                        unexpected_rows_query=gx_braces(sql), description=description, meta={"check": name}
                    )
                    for name, description, sql in checks
                ],
            )
            result = asset.add_batch_definition_whole_table("all").get_batch().validate(suite)
            for r in result.results:
                name = r.expectation_config.meta["check"]
                if r.exception_info and r.exception_info.get("raised_exception"):
                    raise ContractError(
                        f"marts.{asset_name}: {name} could not be evaluated: {r.exception_info.get('exception_message')}"
                    )
                if not r.success:
                    failed[(asset_name, name)] = int(r.result.get("observed_value") or 0)
    finally:
        close_datasource(datasource)
    return failed


def validate_marts(
    cfg: AgoraConfig,
    warehouse_path: str | Path | None = None,
    manifest_path: str | Path | None = None,
    *,
    postgres: PgSettings | None = None,
) -> ContractResult:
    """Run the mart contract; raise ContractFailed on any failure.

    On `<warehouse>/agora.duckdb` (or `warehouse_path`), or with `postgres` on that
    PostgreSQL warehouse (dbt target `postgres`).
    """
    from expectations.gx_duckdb import ephemeral_context

    started = time.monotonic()
    manifest = Path(manifest_path or DEFAULT_MANIFEST)
    if postgres is not None:
        path: str | PgSettings = postgres
        label = postgres.url
    else:
        path = label = str(warehouse_path or os.path.join(cfg.path("warehouse"), "agora.duckdb"))
        if not os.path.exists(path):
            raise ContractError(f"marts: warehouse {path} does not exist (run the build first)")
    if not manifest.exists():
        raise ContractError(f"marts: dbt manifest {manifest} does not exist (run dbt parse/build first)")
    k_min = cfg.privacy.k_min
    result = ContractResult(suite="marts")
    columns, rows = _warehouse_tables(path)
    if not columns:
        raise ContractError(f"marts: no tables in schema {MARTS_SCHEMA} of {label}")
    result.rows_checked = sum(rows.values())
    declared = read_disclosures(manifest)

    suites: list[tuple[str, list[tuple[str, str, str]]]] = [
        (
            "mart_columns",
            [("no_identifying_columns", "no column name could identify an account", _identifying_check(path))],
        )
    ]
    for table in sorted(columns):
        disclosure = declared.get(table)
        result.expectations_evaluated += 1  # disclosure_declared
        if disclosure is None:
            result.failures.append(
                Failure(
                    f"marts.{table}",
                    "disclosure_declared",
                    rows[table],
                    detail="no config.meta.disclosure in the dbt manifest",
                )
            )
            continue
        result.expectations_passed += 1
        if disclosure == "none":
            continue
        result.expectations_evaluated += 1  # disclosure_columns_present
        missing = [
            c for c in (disclosure.group_size, disclosure.suppressed, *disclosure.values) if c not in columns[table]
        ]
        if missing:
            result.failures.append(
                Failure(
                    f"marts.{table}",
                    "disclosure_columns_present",
                    len(missing),
                    unit="columns",
                    detail="missing: " + ", ".join(missing),
                )
            )
            continue
        result.expectations_passed += 1
        suites.append((table, _row_checks(disclosure, k_min)))

    context = ephemeral_context()
    failed = _validate(context, path, suites)
    for asset_name, checks in suites:
        result.expectations_evaluated += len(checks)
        result.expectations_passed += sum((asset_name, name) not in failed for name, _, _ in checks)
    for (asset_name, name), count in sorted(failed.items()):
        if asset_name == "mart_columns":
            for table, cols in sorted(_identifying_columns(path).items()):
                result.failures.append(
                    Failure(f"marts.{table}", name, len(cols), unit="columns", detail="columns: " + ", ".join(cols))
                )
        else:
            result.failures.append(Failure(f"marts.{asset_name}", name, count))

    result.seconds = time.monotonic() - started
    if result.failures:
        log.error("%s", result.summary())
        raise ContractFailed(result)
    log.info("%s", result.summary())
    return result
